-- ours.sql: the extension's task handlers for the benchmark, created in
-- the database that has the extension.  Node's counterparts are
-- tests/bench/node/tasks/*.cjs.
CREATE SCHEMA graphile_worker_tasks;

-- no-op: the handler does nothing; the job is claimed, run and deleted.
CREATE FUNCTION graphile_worker_tasks.noop(payload json) RETURNS void
LANGUAGE sql AS '';

-- one INSERT, committed together with the job's completion.
CREATE FUNCTION graphile_worker_tasks.insert_row(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO public.bench_sink (job_id, at) VALUES (job.id, clock_timestamp())
$$;
