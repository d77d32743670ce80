-- upgrade: a database still at 0.1.0 keeps working with this library (its
-- C functions keep their 0.1.0 meaning: add_job SECURITY DEFINER, every
-- row whole), and ALTER EXTENSION UPDATE brings it to 0.2.0 with its jobs
-- and crontab.
DROP EXTENSION IF EXISTS graphile_worker;
CREATE EXTENSION graphile_worker VERSION '0.1.0';
\set SHOW_CONTEXT never
\set VERBOSITY terse
SELECT extversion FROM pg_extension WHERE extname = 'graphile_worker';
CREATE ROLE gw_old_app;
GRANT USAGE ON SCHEMA graphile_worker TO gw_old_app;
GRANT EXECUTE ON FUNCTION graphile_worker.add_job, graphile_worker.add_jobs,
  graphile_worker.remove_job TO gw_old_app;
SET ROLE gw_old_app;
SELECT payload FROM graphile_worker.add_job('t', '{"n": 1}');
SELECT payload, key FROM graphile_worker.add_job('t', '{"n": 2}', job_key => 'k');
SELECT payload, revision FROM graphile_worker.add_job('t', '{"n": 3}', job_key => 'k',
                                                       job_key_mode => 'unsafe_dedupe');
SELECT payload FROM graphile_worker.add_jobs(ARRAY[
  ('t', '{"n": 4}', NULL, NULL, NULL, 'k2', NULL, NULL)]::graphile_worker.job_spec[]);
SELECT payload FROM graphile_worker.remove_job('k2');
RESET ROLE;
SELECT graphile_worker.set_crontab('0 * * * * hourly ?jobKey=hourly') AS entries;
SELECT graphile_worker._cron_tick('2026-12-01 10:00+00') AS added;
SELECT id, schedule FROM graphile_worker.crontab;
SELECT count(*) >= 0 AS workers_view FROM graphile_worker.workers;

ALTER EXTENSION graphile_worker UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'graphile_worker';
-- the jobs and the crontab are still there and used
SELECT t.identifier, j.key, j.payload::text
  FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
 ORDER BY j.id;
SELECT graphile_worker._cron_tick('2026-12-01 11:00+00') AS added;
SET ROLE gw_old_app;
SELECT payload, revision FROM graphile_worker.add_job('t', '{"n": 5}', job_key => 'k',
                                                       job_key_mode => 'unsafe_dedupe');
SELECT key FROM graphile_worker.remove_job('k');
RESET ROLE;
DROP EXTENSION graphile_worker;
DROP OWNED BY gw_old_app;
DROP ROLE gw_old_app;
