-- admin_functions: remove_job, complete_jobs, permanently_fail_jobs,
-- reschedule_jobs and force_unlock_workers, including the rule that a lock
-- older than 4 hours counts as released.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE VIEW q AS
  SELECT j.task_identifier AS task, j.queue_name, j.key, j.priority, j.run_at,
         j.attempts, j.max_attempts, j.last_error, j.locked_by
    FROM graphile_worker.jobs j ORDER BY j.id;
CREATE FUNCTION lock_job(k text, worker text, age interval) RETURNS void
LANGUAGE sql AS $$
  UPDATE graphile_worker._private_jobs SET locked_at = now() - age, locked_by = worker,
         attempts = attempts + 1 WHERE key = k;
  UPDATE graphile_worker._private_job_queues SET locked_at = now() - age, locked_by = worker
   WHERE id = (SELECT job_queue_id FROM graphile_worker._private_jobs WHERE key = k);
$$;
CREATE FUNCTION job_ids(VARIADIC keys text[]) RETURNS bigint[]
LANGUAGE sql AS $$
  SELECT array_agg(id ORDER BY id) FROM graphile_worker._private_jobs WHERE key = ANY (keys)
$$;

-- remove_job
SELECT (graphile_worker.add_job('t', job_key => k, run_at => '2030-01-01', queue_name => 'q_' || k)).id IS NOT NULL
  FROM unnest(ARRAY['free', 'busy', 'stale']) k;
SELECT lock_job('busy', 'w1', '1 minute');
SELECT lock_job('stale', 'w2', '5 hours');
-- unlocked: deleted and returned
SELECT key, attempts FROM graphile_worker.remove_job('free');
-- locked: kept running, key cleared, no retry
SELECT key, attempts, max_attempts, locked_by FROM graphile_worker.remove_job('busy');
-- locked more than 4 hours ago: deleted
SELECT key, locked_by FROM graphile_worker.remove_job('stale');
-- unknown key: an all-NULL row; NULL key: STRICT, NULL
SELECT id IS NULL AS no_job FROM graphile_worker.remove_job('nope');
SELECT graphile_worker.remove_job(NULL) IS NULL AS strict_null;
SELECT * FROM q;
DELETE FROM graphile_worker._private_jobs;

-- complete_jobs deletes unlocked and stale-locked jobs only
SELECT (graphile_worker.add_job('t', job_key => k, run_at => '2030-01-01')).id IS NOT NULL
  FROM unnest(ARRAY['c1', 'c2', 'c3', 'c4']) k;
SELECT lock_job('c2', 'w1', '1 minute');
SELECT lock_job('c3', 'w1', '5 hours');
SELECT key FROM graphile_worker.complete_jobs(job_ids('c1', 'c2', 'c3')) ORDER BY key;
SELECT * FROM q;
DELETE FROM graphile_worker._private_jobs;

-- permanently_fail_jobs: default and given message, locked jobs untouched
SELECT (graphile_worker.add_job('t', job_key => k, run_at => '2030-01-01', max_attempts => 4)).id IS NOT NULL
  FROM unnest(ARRAY['p1', 'p2', 'p3']) k;
SELECT lock_job('p3', 'w1', '1 minute');
SELECT key, attempts, last_error FROM graphile_worker.permanently_fail_jobs(job_ids('p1'));
SELECT key, attempts, last_error FROM graphile_worker.permanently_fail_jobs(job_ids('p2', 'p3'), 'gave up');
SELECT j.key, p.is_available FROM graphile_worker.jobs j
  JOIN graphile_worker._private_jobs p USING (id) ORDER BY j.id;

-- reschedule_jobs revives a permanently failed job; NULL arguments keep values
SELECT key, run_at, priority, attempts, max_attempts
  FROM graphile_worker.reschedule_jobs(job_ids('p1'), run_at => '2031-05-05', attempts => 0);
SELECT key, run_at, priority, attempts, max_attempts
  FROM graphile_worker.reschedule_jobs(job_ids('p2'), priority => 9, max_attempts => 10);
SELECT key FROM graphile_worker.reschedule_jobs(job_ids('p3'), priority => 1);
SELECT * FROM q;
DELETE FROM graphile_worker._private_jobs;

-- force_unlock_workers releases jobs and queues of the given workers only;
-- attempts are not refunded
SELECT (graphile_worker.add_job('t', job_key => k, queue_name => 'fq_' || k, run_at => '2030-01-01')).id IS NOT NULL
  FROM unnest(ARRAY['f1', 'f2', 'f3']) k;
SELECT lock_job('f1', 'dead-1', '1 minute');
SELECT lock_job('f2', 'dead-2', '1 minute');
SELECT lock_job('f3', 'alive', '1 minute');
SELECT graphile_worker.force_unlock_workers(ARRAY['dead-1', 'dead-2']);
SELECT key, attempts, locked_by FROM graphile_worker.jobs ORDER BY id;
SELECT queue_name, locked_by, is_available FROM graphile_worker._private_job_queues
 WHERE queue_name LIKE 'fq_%' ORDER BY id;

DROP VIEW q;
DROP FUNCTION lock_job(text, text, interval);
DROP FUNCTION job_ids(text[]);
DROP EXTENSION graphile_worker;
