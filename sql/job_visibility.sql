-- job_visibility: add_job, add_jobs and remove_job never show a caller the
-- payload or last_error of a job it may not read.  They run as the caller
-- (SECURITY INVOKER), do their work as the queue's owner, and return
--   payload     only to a caller with SELECT on _private_jobs (or its
--               payload column) that row-level security does not filter
--               (owner, superuser, BYPASSRLS);
--   last_error  only to a caller with SELECT on the jobs view (or its
--               last_error column);
-- NULL otherwise, in every row they return, for every job_key mode.  A role
-- with EXECUTE only could otherwise read other roles' payloads through a
-- job_key: unsafe_dedupe returns the existing job, add_jobs concatenates
-- array payloads, remove_job returns the row it deletes or detaches.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
\set VERBOSITY terse
CREATE ROLE gw_enqueuer;
CREATE ROLE gw_reader;
CREATE ROLE gw_column_reader;
CREATE ROLE gw_table_reader;
CREATE ROLE gw_bypass BYPASSRLS;
GRANT USAGE ON SCHEMA graphile_worker
  TO gw_enqueuer, gw_reader, gw_column_reader, gw_table_reader, gw_bypass;
GRANT EXECUTE ON FUNCTION graphile_worker.add_job, graphile_worker.add_jobs,
  graphile_worker.remove_job
  TO gw_enqueuer, gw_reader, gw_column_reader, gw_table_reader, gw_bypass;
GRANT SELECT ON graphile_worker.jobs TO gw_reader;
GRANT SELECT (id, last_error) ON graphile_worker.jobs TO gw_column_reader;
GRANT SELECT ON graphile_worker._private_jobs TO gw_table_reader, gw_bypass;

-- the owner's secrets: a job that failed once (its error names the secret),
-- and a batch job with an array payload
CREATE FUNCTION secrets() RETURNS void LANGUAGE sql AS $$
  DELETE FROM graphile_worker._private_jobs;
  SELECT graphile_worker.add_job('t', '{"secret": "s3cr3t"}', job_key => 'k1');
  UPDATE graphile_worker._private_jobs
     SET attempts = 1, last_error = 'failed on s3cr3t' WHERE key = 'k1';
  SELECT graphile_worker.add_job('t', '["s3cr3t"]', job_key => 'k2');
$$;
SELECT secrets();

-- what a role gets back: payload and last_error, the rest as usual
CREATE FUNCTION seen(j graphile_worker._private_jobs) RETURNS text LANGUAGE sql AS
$$ SELECT format('key=%s revision=%s attempts=%s payload=%s last_error=%s',
                 j.key, j.revision, j.attempts, coalesce(j.payload::text, '<null>'),
                 coalesce(j.last_error, '<null>')) $$;
GRANT EXECUTE ON FUNCTION seen TO PUBLIC;

-- EXECUTE only: no payload, no last_error, in any result
SET ROLE gw_enqueuer;
SELECT seen(graphile_worker.add_job('t', '{"mine": 1}', job_key => 'k1',
                                    job_key_mode => 'unsafe_dedupe'));
SELECT seen(j) FROM graphile_worker.add_jobs(ARRAY[
  ('t', '["mine"]', NULL, NULL, NULL, 'k2', NULL, NULL)]::graphile_worker.job_spec[]) AS j;
SELECT seen(graphile_worker.remove_job('k1'));
SELECT seen(graphile_worker.remove_job('k2'));
-- nor its own: the rule is per caller, not per row
SELECT seen(graphile_worker.add_job('t', '{"mine": 2}'));
SELECT seen(graphile_worker.add_job('t', '{"mine": 3}', job_key => 'k3'));
-- it runs as itself, before and after, also after an error
SELECT current_user;
SELECT graphile_worker.add_job('t', job_key => 'k4', max_attempts => 0);
SELECT current_user;
-- and cannot call the internal functions
SELECT graphile_worker._add_jobs(ARRAY[]::graphile_worker.job_spec[]);
SELECT graphile_worker._remove_job('k3');
SELECT graphile_worker._add_job_keyed('t', NULL, NULL, NULL, NULL, 'k', NULL, NULL, 'replace');
RESET ROLE;
-- the calls did their work all the same
SELECT t.identifier, j.key, j.payload::text, j.last_error
  FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
 ORDER BY j.id;

-- SELECT on the jobs view (or its last_error column): last_error, no payload
SELECT secrets();
SET ROLE gw_reader;
SELECT seen(graphile_worker.add_job('t', job_key => 'k1', job_key_mode => 'unsafe_dedupe'));
RESET ROLE;
SET ROLE gw_column_reader;
SELECT seen(graphile_worker.remove_job('k1'));
RESET ROLE;

-- SELECT on _private_jobs but filtered by row-level security: no payload
SELECT secrets();
SET ROLE gw_table_reader;
SELECT seen(graphile_worker.add_job('t', job_key => 'k1', job_key_mode => 'unsafe_dedupe'));
RESET ROLE;
-- BYPASSRLS and SELECT on _private_jobs: the payload (no last_error
-- without SELECT on the jobs view)
SET ROLE gw_bypass;
SELECT seen(graphile_worker.add_job('t', job_key => 'k1', job_key_mode => 'unsafe_dedupe'));
SELECT seen(j) FROM graphile_worker.add_jobs(ARRAY[
  ('t', '["theirs"]', NULL, NULL, NULL, 'k2', NULL, NULL)]::graphile_worker.job_spec[]) AS j;
RESET ROLE;
-- the owner (a superuser here) sees everything
SELECT seen(graphile_worker.remove_job('k1'));

-- a handler or function owned by a reader sees what its owner may see
SELECT secrets();
CREATE FUNCTION reader_dedupe() RETURNS text LANGUAGE sql SECURITY DEFINER AS
$$ SELECT seen(graphile_worker.add_job('t', job_key => 'k1', job_key_mode => 'unsafe_dedupe')) $$;
ALTER FUNCTION reader_dedupe() OWNER TO gw_reader;
GRANT EXECUTE ON FUNCTION reader_dedupe() TO gw_enqueuer;
SET ROLE gw_enqueuer;
SELECT reader_dedupe();
RESET ROLE;

-- a privilege taken away counts from the next call on, even for the same
-- call site in the same transaction
SELECT secrets();
CREATE FUNCTION revoke_reader() RETURNS void LANGUAGE sql SECURITY DEFINER AS
$$ REVOKE SELECT ON graphile_worker.jobs FROM gw_reader $$;
GRANT EXECUTE ON FUNCTION revoke_reader() TO gw_reader;
CREATE FUNCTION twice() RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..2 LOOP
    RETURN NEXT seen(graphile_worker.add_job('t', job_key => 'k1', job_key_mode => 'unsafe_dedupe'));
    PERFORM revoke_reader();
  END LOOP;
END $$;
SET ROLE gw_reader;
SELECT * FROM twice();
RESET ROLE;
DROP FUNCTION twice();
DROP FUNCTION revoke_reader();

DROP FUNCTION reader_dedupe();
DROP FUNCTION seen(graphile_worker._private_jobs);
DROP FUNCTION secrets();
DROP EXTENSION graphile_worker;
DROP ROLE gw_enqueuer, gw_reader, gw_column_reader, gw_table_reader, gw_bypass;
