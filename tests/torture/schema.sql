-- tests/torture/schema.sql: the tables and helper functions of the torture
-- test (torture.pl), created in its database after the extension.  The
-- handler functions themselves are made by torture.pl, one per language,
-- signature and owner.
--
-- ledger   one row per job the test added (its token is in the payload),
--          written in the transaction of the add_job/add_jobs call, with
--          what is expected of it:
--            once     must end completed, with exactly one effect
--            fail     must end permanently failed, with no effect
--            none     replaced in place or deduplicated before it ran: its
--                     payload is gone, so it must never have an effect
--            atmost1  its job was running (or done) when a newer job took
--                     its job_key: detached, so at most one effect
-- effects  one row per committed handler run; deliberately without any
--          unique constraint, so a job whose effect committed twice shows
--          up as two rows
-- bulk     the rows of "many rows" jobs
-- fk_parent, fk_child  a DEFERRABLE INITIALLY DEFERRED foreign key that
--          "fk" jobs break (checked when the job's transaction commits)

CREATE TABLE public.ledger (
	token text PRIMARY KEY,
	task text NOT NULL,
	behaviour text NOT NULL,
	expect text NOT NULL CHECK (expect IN ('once', 'fail', 'none', 'atmost1')),
	job_id bigint,
	max_attempts int NOT NULL,
	fail_until int NOT NULL DEFAULT 0,
	nrows int NOT NULL DEFAULT 0,
	child_task text,
	queue_name text,
	job_key text,
	key_mode text,
	delay_ms int,
	via text NOT NULL,
	added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	note text
);
CREATE INDEX ON public.ledger (job_key) WHERE job_key IS NOT NULL;

CREATE TABLE public.effects (
	token text NOT NULL,
	job_id bigint,					-- NULL for handlers without the job argument
	attempt int,					-- job.attempts as the handler saw it, or NULL
	handler text NOT NULL,
	phase text NOT NULL DEFAULT 'done',	-- 'inner': a write a handler rolled back itself
	prev_error text,				-- job.last_error as the handler saw it
	who name NOT NULL DEFAULT current_user,
	pid int NOT NULL DEFAULT pg_backend_pid(),
	at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ON public.effects (token);

CREATE TABLE public.bulk (token text NOT NULL, i int NOT NULL);

CREATE TABLE public.fk_parent (id int PRIMARY KEY);
INSERT INTO public.fk_parent VALUES (1);
CREATE TABLE public.fk_child (
	parent_id int NOT NULL REFERENCES public.fk_parent
		DEFERRABLE INITIALLY DEFERRED,
	token text NOT NULL
);

-- Two non-superuser roles own handlers (the superuser owns a third of them).
CREATE ROLE torture_a;
CREATE ROLE torture_b;
GRANT INSERT ON public.effects, public.bulk, public.fk_child TO torture_a, torture_b;
GRANT USAGE ON SCHEMA graphile_worker TO torture_a, torture_b;
GRANT EXECUTE ON FUNCTION graphile_worker.add_job TO torture_a, torture_b;

-- torture_fail raises the deliberate failure of a job, with DETAIL and HINT
-- (SQL handlers call it; PL/pgSQL and C handlers raise the same error
-- themselves).
CREATE FUNCTION public.torture_fail(token text, handler text, attempt int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'torture: % fails on purpose', token
		USING DETAIL = format('handler %s, attempt %s', handler, coalesce(attempt, 0)),
			HINT = 'its writes must be rolled back';
END $$;

-- torture_record writes the ledger row of spec (a job the test asked for)
-- given the row add_job or add_jobs returned for it, and revises what is
-- expected of the earlier tokens of its job_key.
CREATE FUNCTION public.torture_record(spec jsonb, job graphile_worker._private_jobs, via text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	v_token text := spec->>'token';
	v_live text := job.payload->>'token';
	v_expect text := spec->>'expect';
	v_note text;
BEGIN
	IF v_live IS DISTINCT FROM v_token THEN
		-- unsafe_dedupe returned the existing job: this payload was dropped
		v_expect := 'none';
		v_note := format('deduplicated into job %s (%s)', job.id, v_live);
	ELSIF spec->>'key' IS NOT NULL THEN
		-- the key's job was updated in place: the tokens it carried before
		-- were never completed and now never will be
		UPDATE public.ledger AS l
		   SET expect = 'none', note = format('replaced in job %s by %s', job.id, v_token)
		 WHERE l.job_key = spec->>'key' AND l.job_id = job.id AND l.expect <> 'none';
		-- the key's earlier jobs that were running, failed or done: detached
		UPDATE public.ledger AS l
		   SET expect = 'atmost1', note = format('detached or done when %s took the key', v_token)
		 WHERE l.job_key = spec->>'key' AND l.job_id <> job.id AND l.expect = 'once';
	END IF;
	INSERT INTO public.ledger (token, task, behaviour, expect, job_id, max_attempts,
			fail_until, nrows, child_task, queue_name, job_key, key_mode, delay_ms, via, note)
	VALUES (v_token, spec->>'task', spec->>'behaviour', v_expect, job.id, job.max_attempts,
			coalesce((spec->'payload'->>'fail_until')::int, 0),
			coalesce((spec->'payload'->>'rows')::int, 0),
			spec->'payload'->>'child', spec->>'queue', spec->>'key', spec->>'mode',
			(spec->>'delay_ms')::int, via, v_note);
END $$;

-- torture_add adds the jobs of specs (a JSON array; see torture.pl) with
-- one add_job call each or one add_jobs call for all, and records them.
CREATE FUNCTION public.torture_add(specs jsonb, via text, preserve_run_at bool DEFAULT false)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	s jsonb;
	j graphile_worker._private_jobs;
	n int := 0;
BEGIN
	IF via = 'add_job' THEN
		FOR s IN SELECT * FROM jsonb_array_elements(specs) LOOP
			j := graphile_worker.add_job(s->>'task', (s->'payload')::json,
				queue_name => s->>'queue',
				run_at => now() + ((s->>'delay_ms')::int * interval '1 ms'),
				max_attempts => (s->>'max_attempts')::int,
				job_key => s->>'key',
				priority => (s->>'priority')::int,
				job_key_mode => coalesce(s->>'mode', 'replace'));
			PERFORM public.torture_record(s, j, via);
			n := n + 1;
		END LOOP;
	ELSE
		FOR j IN SELECT * FROM graphile_worker.add_jobs(ARRAY(
				SELECT ROW(x->>'task', (x->'payload')::json, x->>'queue',
						now() + ((x->>'delay_ms')::int * interval '1 ms'),
						(x->>'max_attempts')::smallint, x->>'key',
						(x->>'priority')::smallint, NULL)::graphile_worker.job_spec
				  FROM jsonb_array_elements(specs) AS e(x)), preserve_run_at) LOOP
			SELECT e.x INTO s FROM jsonb_array_elements(specs) AS e(x)
			 WHERE e.x->>'token' = j.payload->>'token';
			PERFORM public.torture_record(s, j, via);
			n := n + 1;
		END LOOP;
		IF n <> jsonb_array_length(specs) THEN
			RAISE EXCEPTION 'add_jobs returned % rows for % specs', n, jsonb_array_length(specs);
		END IF;
	END IF;
	RETURN n;
END $$;
