-- common.sql: tables and the wait procedure that tests/bench/bench.sh
-- creates in both benchmark databases (ours, with the extension, and
-- Node's, migrated by graphile-worker itself), after the graphile_worker
-- schema exists.

-- insert_row handlers write here: the job id and when the handler ran
-- (database clock).
CREATE TABLE public.bench_sink (job_id bigint, at timestamptz);
-- the reference time of each job: the adding transaction's clock just
-- before COMMIT (add->start latency) or the job's run_at (lateness).
CREATE TABLE public.bench_added (job_id bigint PRIMARY KEY, t timestamptz);

-- Reference rows for the enqueue workloads.
CREATE TABLE public.bench_plain (id bigserial PRIMARY KEY, payload json,
	created_at timestamptz DEFAULT now());
CREATE TABLE public.bench_due (id bigserial PRIMARY KEY,
	run_at timestamptz NOT NULL DEFAULT now(), payload json);

-- bench_wait_empty returns when graphile_worker._private_jobs has no row
-- left.  It looks every 5 ms through the primary key (min(id) from the
-- previous minimum on, an index probe that skips the entries of jobs
-- already deleted; no job is added meanwhile) and commits between looks so
-- that it holds no snapshot that would keep deleted jobs from being
-- pruned.  Raises after timeout_s seconds.
CREATE PROCEDURE public.bench_wait_empty(timeout_s float8 DEFAULT 900)
LANGUAGE plpgsql AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + timeout_s * interval '1 second';
	low bigint := (SELECT min(id) FROM graphile_worker._private_jobs);
BEGIN
	WHILE low IS NOT NULL LOOP
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'jobs still queued after % s', timeout_s;
		END IF;
		COMMIT;
		PERFORM pg_sleep(0.005);
		COMMIT;
		low := (SELECT min(id) FROM graphile_worker._private_jobs WHERE id >= low);
	END LOOP;
END $$;

-- bench_wait_rows returns when bench_sink has at least n rows.
CREATE PROCEDURE public.bench_wait_rows(n bigint, timeout_s float8 DEFAULT 120)
LANGUAGE plpgsql AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + timeout_s * interval '1 second';
BEGIN
	LOOP
		EXIT WHEN (SELECT count(*) FROM public.bench_sink) >= n;
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'fewer than % handler rows after % s', n, timeout_s;
		END IF;
		COMMIT;
		PERFORM pg_sleep(0.05);
		COMMIT;
	END LOOP;
END $$;

-- bench_enqueue adds n jobs of a task in one add_jobs call.
CREATE FUNCTION public.bench_enqueue(task text, n int) RETURNS bigint
LANGUAGE sql AS $$
	SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
		SELECT (task, '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
		  FROM generate_series(1, n)))
$$;
