-- add_job: defaults, every argument, task and queue rows created on demand
-- without consuming identity values (migration 20), flags as a jsonb set,
-- identifiers containing '/' and ':', and the row returned, also after the
-- extension is dropped and created again in the same session.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- a view of the queue without ids and timestamps, for stable output
CREATE VIEW q AS
  SELECT j.task_identifier, j.queue_name, p.payload::text, j.priority,
         j.attempts, j.max_attempts, j.last_error, j.key, j.revision, j.flags,
         j.locked_by, p.is_available
    FROM graphile_worker.jobs j JOIN graphile_worker._private_jobs p USING (id)
   ORDER BY j.id;

-- defaults: payload {}, run_at now() (transaction time), 25 attempts, priority 0
BEGIN;
SELECT payload, priority, run_at = now() AS run_at_now, attempts, max_attempts,
       last_error, created_at = now() AS created_now, updated_at = now() AS updated_now,
       key, locked_at, locked_by, revision, flags, is_available
  FROM graphile_worker.add_job('send_email');
COMMIT;

-- every argument given
SELECT payload, priority, run_at, max_attempts, key, flags, revision
  FROM graphile_worker.add_job('send_email', '{"to": "a@b.c"}', queue_name => 'mail',
       run_at => '2030-01-01 00:00:00+00', max_attempts => 3, job_key => 'k1',
       priority => -5, flags => ARRAY['slow', 'remote', 'slow']);

-- positional arguments work too (Node documents named ones)
SELECT payload, queue_name IS NULL AS no_queue
  FROM graphile_worker.add_job('positional', '[1,2]', NULL, NULL, NULL, NULL, NULL, NULL, 'replace') j
  LEFT JOIN graphile_worker._private_job_queues q ON q.id = j.job_queue_id;

-- identifiers of Node's nested tasks, and queue names with ':'
SELECT (graphile_worker.add_job('users/emails:verify', queue_name => 'q:1/2')).id IS NOT NULL AS added;
SELECT task_identifier, queue_name FROM graphile_worker.jobs WHERE task_identifier LIKE 'users/%';

SELECT * FROM q;
SELECT identifier FROM graphile_worker._private_tasks ORDER BY id;
SELECT queue_name, locked_at, locked_by, is_available FROM graphile_worker._private_job_queues ORDER BY id;

-- adding more jobs for known tasks and queues does not consume identity
-- values (Node migration 20, graphile/worker#619)
SELECT (graphile_worker.add_job('send_email', queue_name => 'mail')).id IS NOT NULL AS added
  FROM generate_series(1, 5);
SELECT (graphile_worker.add_job('a_new_task')).id IS NOT NULL AS added;
SELECT id, identifier FROM graphile_worker._private_tasks ORDER BY id;
SELECT id, queue_name FROM graphile_worker._private_job_queues ORDER BY id;

-- a job added in a transaction that rolls back leaves nothing behind
BEGIN;
SELECT (graphile_worker.add_job('rolled_back', queue_name => 'rb_queue')).id IS NOT NULL AS added;
ROLLBACK;
SELECT count(*) FROM graphile_worker.jobs WHERE task_identifier = 'rolled_back';

-- run_at given as NULL means now(), and flags as an empty array means none
BEGIN;
SELECT run_at = now() AS run_at_now, flags FROM graphile_worker.add_job('t', run_at => NULL, flags => '{}');
COMMIT;

DROP VIEW q;
DROP EXTENSION graphile_worker;

-- in the same session, after the extension is created again and a column
-- of the jobs table is dropped, add_job still inserts and returns the row
CREATE EXTENSION graphile_worker;
SELECT id, task_id, payload FROM graphile_worker.add_job('again', '{"n": 1}');
ALTER TABLE graphile_worker._private_jobs ADD COLUMN scratch integer;
ALTER TABLE graphile_worker._private_jobs DROP COLUMN scratch;
SELECT id, task_id, payload, is_available FROM graphile_worker.add_job('again', '{"n": 2}', queue_name => 'again');
DROP EXTENSION graphile_worker;
