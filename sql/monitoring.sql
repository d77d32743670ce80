-- monitoring: the views and functions of job visibility and who may use
-- them: job_history and its partitions (as wide as the retention wants,
-- created ahead, dropped whole by retention), task_stats and stats_reset
-- (shared memory; no worker runs here, so they stay empty), queue_stats by
-- state, unhandled_tasks and its hints, metrics() text, wait_for_job
-- without a worker (timeout, finished jobs, cancel_job), cleanup() as
-- Node's --cleanup, and grant_monitor: exactly the views and metrics(),
-- payloads only when asked; the workers view works for a role granted
-- SELECT on it alone.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
\set VERBOSITY terse

-- history: partitions of a UTC day, hour or minute as the retention
-- wants, made by _history_maintain (the supervisor's chore; here with a
-- fixed "now"), members of the extension (pg_dump leaves history out)
\set parts 'SELECT relname, to_char(from_at AT TIME ZONE ''UTC'', ''DD HH24:MI'') AS from_utc, to_char(to_at AT TIME ZONE ''UTC'', ''DD HH24:MI'') AS to_utc, (SELECT count(*) FROM graphile_worker._private_job_history h WHERE h.tableoid = (''graphile_worker.'' || quote_ident(relname))::regclass) AS n FROM graphile_worker._history_partitions() WHERE from_at >= ''2030-01-01 00:00+00'' ORDER BY from_at'
-- CREATE EXTENSION made today's partition and the next two days'
SELECT count(*) AS partitions, min(from_at) = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS from_today,
       bool_and(to_at - from_at = interval '1 day') AS days
  FROM graphile_worker._history_partitions();
-- a row with no partition for it lands in the default partition
INSERT INTO graphile_worker._private_job_history
  (job_id, task_identifier, attempt, outcome, error, sqlstate, started_at, finished_at, worker_id)
VALUES (1, 'old_task', 1, 'failed', 'boom', 'P0001', '2030-01-01 09:59:29+00', '2030-01-01 09:59:30+00', 'w');
SELECT tableoid::regclass::text AS partition FROM graphile_worker._private_job_history;
-- on 2030-01-01, 7 days: whole days, that day's and two ahead (the row
-- moves into its day); the partitions of today (2026) are long expired
SELECT * FROM graphile_worker._history_maintain(interval '7 days', '2030-01-01 10:00:30+00');
:parts;
SELECT * FROM graphile_worker._history_maintain(interval '7 days', '2030-01-01 10:00:30+00');
SELECT bool_and(EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')) AS members
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'graphile_worker._private_job_history'::regclass;
SELECT job_id, task_identifier, queue_name, key, payload, attempt, outcome, result,
       error, sqlstate, run_time, worker_id
  FROM graphile_worker.job_history;
-- shortened to 1 minute: the empty days ahead go, today's ends with the
-- minute after its last row (or after now), minutes follow it
SELECT * FROM graphile_worker._history_maintain(interval '1 minute', '2030-01-01 10:05:10+00');
:parts;
INSERT INTO graphile_worker._private_job_history (job_id, task_identifier, attempt, outcome, finished_at)
VALUES (2, 'minute_task', 1, 'completed', '2030-01-01 10:06:30+00'),
       (3, 'too_old', 1, 'completed', '2029-12-01 00:00:00+00');
-- partitions that ended a retention ago are dropped whole; default rows
-- that old are deleted; so the table stays a few minutes long
SELECT * FROM graphile_worker._history_maintain(interval '1 minute', '2030-01-01 10:07:30+00');
:parts;
SELECT * FROM graphile_worker._history_maintain(interval '1 minute', '2030-01-01 10:09:00+00');
:parts;
SELECT job_id FROM graphile_worker.job_history ORDER BY job_id;
-- 2 hours: hours; back to 7 days: the next partition fills the rest of the
-- day, then whole days
SELECT * FROM graphile_worker._history_maintain(interval '2 hours', '2030-01-01 10:09:30+00');
:parts;
SELECT * FROM graphile_worker._history_maintain(interval '7 days', '2030-01-01 10:10:00+00');
:parts;
SELECT count(*) AS rows_in_default FROM graphile_worker._private_job_history_default;
\set VERBOSITY sqlstate
SELECT graphile_worker._history_partition(now(), 'week');
SELECT graphile_worker._history_maintain(interval '1 day', NULL);
\set VERBOSITY terse
INSERT INTO graphile_worker._private_job_history
  (job_id, task_identifier, attempt, outcome, started_at, finished_at)
VALUES (2, 'new_task', 1, 'completed', now(), now());
-- an outcome must be one of the six
\set VERBOSITY sqlstate
INSERT INTO graphile_worker._private_job_history
  (job_id, task_identifier, attempt, outcome, finished_at) VALUES (3, 't', 1, 'exploded', now());
\set VERBOSITY terse

-- live statistics: empty without workers; stats_reset works
SELECT * FROM graphile_worker.task_stats;
SELECT graphile_worker.stats_reset();

-- queue_stats: one row per task, one per named queue
SELECT count(*) FROM graphile_worker.add_jobs(ARRAY[
  ('a', '{"n": "running"}', NULL, NULL, NULL, NULL, NULL, NULL),
  ('a', NULL, 'q1', NULL, NULL, NULL, NULL, NULL),
  ('a', NULL, NULL, now() + interval '1 hour', NULL, NULL, NULL, NULL),
  ('b', NULL, 'q1', NULL, NULL, NULL, NULL, NULL),
  ('b', '{"n": "dead"}', NULL, NULL, 1, NULL, NULL, NULL),
  ('b', '{"n": "retry"}', NULL, NULL, NULL, NULL, NULL, NULL),
  ('c', NULL, 'q2', NULL, NULL, NULL, NULL, NULL)]::graphile_worker.job_spec[]);
-- make a running job, a retry-waiting one and a permanently failed one
UPDATE graphile_worker._private_jobs SET locked_at = now(), locked_by = 'w1', attempts = 1
 WHERE payload->>'n' = 'running';
UPDATE graphile_worker._private_jobs SET attempts = 1, last_error = 'x', run_at = now() + interval '1 minute'
 WHERE payload->>'n' = 'retry';
UPDATE graphile_worker._private_jobs SET attempts = 1, last_error = 'x'
 WHERE payload->>'n' = 'dead';
SELECT task_identifier, queue_name, queued, scheduled, running, retry_waiting,
       permanently_failed, oldest_due_age IS NOT NULL AS has_due
  FROM graphile_worker.queue_stats ORDER BY task_identifier NULLS LAST, queue_name;

-- unhandled_tasks: every task with due jobs has no handler here (no
-- graphile_worker_tasks schema yet); hints for near functions
CREATE SCHEMA graphile_worker_tasks;
CREATE FUNCTION graphile_worker_tasks.a(payload json) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION graphile_worker_tasks.b(payload text) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION graphile_worker_tasks.sendemail(payload json) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION public.c(payload json) RETURNS void LANGUAGE sql AS '';
SELECT count(*) FROM graphile_worker.add_job('sendEmail');
SELECT count(*) FROM graphile_worker.add_job(repeat('x', 70));
SELECT task_identifier, due_jobs, oldest IS NOT NULL AS has_oldest, hint
  FROM graphile_worker.unhandled_tasks ORDER BY task_identifier;

-- metrics(): OpenMetrics text (the ages masked)
SELECT regexp_replace(graphile_worker.metrics(), '(_age_seconds\{[^}]*\}) [0-9.]+', '\1 AGE', 'g')
  AS metrics;

-- wait_for_job without a worker
SELECT * FROM graphile_worker.wait_for_job(
  (SELECT id FROM graphile_worker.jobs WHERE task_identifier = 'c'), '50 ms');
SELECT graphile_worker.wait_for_job(-1, '0');
SELECT graphile_worker.wait_for_job(NULL, '1s');
SELECT graphile_worker.wait_for_job(1, '-1s');
-- a permanently failed job is done at once; so is a cancelled one, which
-- cancel_job announces at commit
SELECT outcome, result, error FROM graphile_worker.wait_for_job(
  (SELECT id FROM graphile_worker.jobs WHERE max_attempts = 1), '10s');
SELECT last_error FROM graphile_worker.cancel_job(
  (SELECT id FROM graphile_worker.jobs WHERE task_identifier = 'c'));
SELECT outcome, result, error FROM graphile_worker.wait_for_job(
  (SELECT id FROM graphile_worker.jobs WHERE task_identifier = 'c'), '10s');
-- a job added or changed by the waiting transaction cannot be waited for
BEGIN;
SELECT graphile_worker.wait_for_job((graphile_worker.add_job('d')).id, '10s');
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT graphile_worker.wait_for_job(1, '10s');
ROLLBACK;

-- a monitoring role: nothing until granted; then the views and metrics(),
-- job_history without its payload column
CREATE ROLE gw_monitor;
SET ROLE gw_monitor;
SELECT count(*) FROM graphile_worker.queue_stats;
RESET ROLE;
SELECT graphile_worker.grant_monitor('gw_monitor');
SET ROLE gw_monitor;
SELECT count(*) > 0 AS sees_queue_stats FROM graphile_worker.queue_stats;
SELECT count(*) >= 0 AS sees_task_stats FROM graphile_worker.task_stats;
SELECT count(*) > 0 AS sees_unhandled FROM graphile_worker.unhandled_tasks;
SELECT count(*) >= 0 AS sees_workers FROM graphile_worker.workers;
SELECT length(graphile_worker.metrics()) > 0 AS metrics;
SELECT job_id, outcome FROM graphile_worker.job_history;
SELECT payload FROM graphile_worker.job_history;
SELECT count(*) FROM graphile_worker.jobs;
SELECT count(*) FROM graphile_worker._private_job_history;
SELECT graphile_worker.stats_reset();
SELECT graphile_worker.wait_for_job(1, '0');
SELECT graphile_worker.cleanup();
RESET ROLE;
SELECT graphile_worker.grant_monitor('gw_monitor', with_payloads => true);
SET ROLE gw_monitor;
SELECT payload FROM graphile_worker.job_history;
RESET ROLE;
SELECT graphile_worker.revoke_monitor('gw_monitor');
SET ROLE gw_monitor;
SELECT count(*) FROM graphile_worker.task_stats;
RESET ROLE;
-- the functions behind the views check the view's privilege themselves
GRANT USAGE ON SCHEMA graphile_worker TO gw_monitor;
SET ROLE gw_monitor;
SELECT count(*) FROM graphile_worker._workers();
SELECT count(*) FROM graphile_worker._task_stats();
SELECT graphile_worker._task_schemas();
RESET ROLE;
-- the workers view works for a role granted SELECT on it alone
GRANT SELECT ON graphile_worker.workers TO gw_monitor;
SET ROLE gw_monitor;
SELECT count(*) >= 0 AS sees_workers FROM graphile_worker.workers;
RESET ROLE;

-- cleanup: Node's --cleanup; permanently failed jobs only when asked
SELECT count(*) AS queues_before FROM graphile_worker._private_job_queues;
UPDATE graphile_worker._private_jobs SET locked_at = NULL, locked_by = NULL;
DELETE FROM graphile_worker._private_jobs
 WHERE task_id IN (SELECT id FROM graphile_worker._private_tasks WHERE identifier IN ('a', 'sendEmail'));
SELECT graphile_worker.pause_task('sendEmail');
SELECT * FROM graphile_worker.cleanup();
SELECT identifier FROM graphile_worker._private_tasks ORDER BY identifier;
SELECT queue_name FROM graphile_worker._private_job_queues ORDER BY queue_name;
SELECT * FROM graphile_worker.cleanup(false, false, interval '1 hour');
SELECT * FROM graphile_worker.cleanup(false, false, interval '0');
SELECT t.identifier, j.attempts, j.max_attempts
  FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
 ORDER BY j.id;
-- a second run finds nothing left
SELECT * FROM graphile_worker.cleanup(true, true, NULL);

DROP FUNCTION public.c(json);
DROP SCHEMA graphile_worker_tasks CASCADE;
DROP EXTENSION graphile_worker;
DROP OWNED BY gw_monitor;
DROP ROLE gw_monitor;
