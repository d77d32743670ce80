-- control.sql: pause_queue/resume_queue, pause_task/resume_task,
-- cancel_job, set_crontab_entry/remove_crontab_entry, run_crontab_now,
-- grant_control/revoke_control: semantics, errors that change nothing, the
-- queues and tasks views, and who may call them.
CREATE EXTENSION graphile_worker;
SET client_min_messages = warning;
CREATE ROLE ctl_boss LOGIN;
CREATE ROLE ctl_nobody LOGIN;
RESET client_min_messages;

SELECT count(*) FROM (
  SELECT graphile_worker.add_job('mail', '{"n":1}', queue_name => 'q1'),
         graphile_worker.add_job('mail', '{"n":2}', queue_name => 'q1'),
         graphile_worker.add_job('sms', '{"n":3}')) AS added;

-- pausing a queue: its row is locked by the pause marker (Node skips it too)
SELECT graphile_worker.pause_queue('q1');
SELECT queue_name, paused, paused_by = current_user AS by_me, paused_at <= now() AS since
  FROM graphile_worker.queues;
SELECT locked_by, locked_at = 'infinity' AS forever, is_available
  FROM graphile_worker._private_job_queues WHERE queue_name = 'q1';
-- pausing again keeps the first pause
SELECT graphile_worker.pause_queue('q1');
SELECT count(*) FROM graphile_worker._private_pauses;
SELECT graphile_worker.resume_queue('q1');
SELECT queue_name, paused, paused_at, paused_by FROM graphile_worker.queues;
SELECT locked_by, locked_at, is_available
  FROM graphile_worker._private_job_queues WHERE queue_name = 'q1';
-- resuming a queue that is not paused does nothing
SELECT graphile_worker.resume_queue('q1');

-- resuming while a job of the queue runs gives the lock back to its worker
UPDATE graphile_worker._private_jobs SET locked_by = 'w1', locked_at = now()
  WHERE payload->>'n' = '1';
UPDATE graphile_worker._private_job_queues SET locked_by = 'w1', locked_at = now()
  WHERE queue_name = 'q1';
SELECT graphile_worker.pause_queue('q1');
SELECT graphile_worker.resume_queue('q1');
SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'q1';
UPDATE graphile_worker._private_jobs SET locked_by = NULL, locked_at = NULL;
UPDATE graphile_worker._private_job_queues SET locked_by = NULL, locked_at = NULL;

-- tasks
SELECT graphile_worker.pause_task('sms');
SELECT task_identifier, paused, paused_by = current_user AS by_me FROM graphile_worker.tasks
  ORDER BY 1;
SELECT graphile_worker.resume_task('sms');
SELECT task_identifier, paused FROM graphile_worker.tasks ORDER BY 1;

-- set_queue_concurrency: at most n jobs of the queue at once
SELECT graphile_worker.set_queue_concurrency('q1', 3);
SELECT queue_name, concurrency, concurrency_set_by = current_user AS by_me,
       concurrency_set_at <= now() AS since
  FROM graphile_worker.queues;
SELECT graphile_worker.set_queue_concurrency('q1', 5);
SELECT queue_name, max_running FROM graphile_worker._private_queue_limits;
-- the queue's row stays unlocked: it is claimed without it
SELECT locked_by, is_available FROM graphile_worker._private_job_queues WHERE queue_name = 'q1';
-- 1 makes it serial again: a claim deletes the row once no job of it runs
SELECT graphile_worker.set_queue_concurrency('q1', 1);
SELECT queue_name, concurrency FROM graphile_worker.queues;
DELETE FROM graphile_worker._private_queue_limits;
-- 1 for a queue without a limit changes nothing
SELECT graphile_worker.set_queue_concurrency('q1', 1);
SELECT count(*) FROM graphile_worker._private_queue_limits;
-- resuming a paused queue of limited concurrency does not lock its row
SELECT graphile_worker.set_queue_concurrency('q1', 2);
UPDATE graphile_worker._private_jobs SET locked_by = 'w1', locked_at = now()
  WHERE payload->>'n' = '1';
SELECT graphile_worker.pause_queue('q1');
SELECT graphile_worker.resume_queue('q1');
SELECT locked_by, is_available FROM graphile_worker._private_job_queues WHERE queue_name = 'q1';
UPDATE graphile_worker._private_jobs SET locked_by = NULL, locked_at = NULL;

-- errors, and nothing changed
SELECT graphile_worker.set_queue_concurrency('nope', 2);
SELECT graphile_worker.set_queue_concurrency(NULL, 2);
SELECT graphile_worker.set_queue_concurrency('q1', NULL);
SELECT graphile_worker.set_queue_concurrency('q1', 0);
SELECT graphile_worker.set_queue_concurrency('q1', -5);
SELECT queue_name, max_running FROM graphile_worker._private_queue_limits;
DELETE FROM graphile_worker._private_queue_limits;
SELECT graphile_worker.pause_queue('nope');
SELECT graphile_worker.pause_queue(NULL);
SELECT graphile_worker.resume_queue('nope');
SELECT graphile_worker.pause_task('nope');
SELECT graphile_worker.pause_task(NULL);
SELECT graphile_worker.resume_task('nope');
SELECT count(*) FROM graphile_worker._private_pauses;

-- cancel_job: a queued job is permanently failed, with who cancelled it
SELECT id AS sms_id FROM graphile_worker.jobs WHERE task_identifier = 'sms' \gset
SELECT attempts = max_attempts AS permanently_failed, last_error = 'cancelled by ' || current_user AS msg,
       revision, locked_by
  FROM graphile_worker.cancel_job(:sms_id);
SELECT attempts, max_attempts, last_error IS NOT NULL AS has_error
  FROM graphile_worker.jobs WHERE id = :sms_id;
SELECT graphile_worker.cancel_job(-1);
SELECT graphile_worker.cancel_job(NULL);

-- crontab entries
SELECT graphile_worker.set_crontab($$
0 4 * * * daily ?id=d
*/5 * * * * often {a: 1}
$$);
SELECT graphile_worker.set_crontab_entry('0 5 * * * daily ?id=d&max=3');
SELECT id, task_identifier, schedule, max_attempts FROM graphile_worker.crontab ORDER BY line;
SELECT graphile_worker.set_crontab_entry('1 1 * * * new_one');
SELECT line, id FROM graphile_worker.crontab ORDER BY line;
SELECT graphile_worker.remove_crontab_entry('often');
SELECT line, id FROM graphile_worker.crontab ORDER BY line;
-- bad lines change nothing
SELECT graphile_worker.set_crontab_entry('61 * * * * bad');
SELECT graphile_worker.set_crontab_entry('# only a comment');
SELECT graphile_worker.set_crontab_entry(E'1 * * * * a\n2 * * * * b');
SELECT graphile_worker.set_crontab_entry(NULL);
SELECT graphile_worker.remove_crontab_entry('nope');
SELECT graphile_worker.remove_crontab_entry(NULL);
SELECT count(*) FROM graphile_worker.crontab;

-- run_crontab_now adds the entry's job now, leaving its schedule alone
SELECT j.max_attempts, j.run_at = now() AS now,
       (j.payload::jsonb->'_cron'->>'backfilled')::boolean AS backfilled,
       (j.payload::jsonb->'_cron'->>'ts')::timestamptz = date_trunc('milliseconds', now()) AS ts
  FROM graphile_worker.run_crontab_now('d') AS j;
SELECT task_identifier FROM graphile_worker.jobs ORDER BY id DESC LIMIT 1;
SELECT count(*) FROM graphile_worker._private_known_crontabs WHERE last_execution IS NOT NULL;
SELECT graphile_worker.run_crontab_now('nope');

-- who may call them: nobody but the extension owner, until grant_control
SET ROLE ctl_boss;
SELECT graphile_worker.pause_queue('q1');
RESET ROLE;
SELECT graphile_worker.grant_control('ctl_boss');
SET ROLE ctl_boss;
SELECT graphile_worker.pause_queue('q1');
SELECT queue_name, paused, paused_by FROM graphile_worker.queues;
SELECT graphile_worker.resume_queue('q1');
SELECT graphile_worker.set_queue_concurrency('q1', 4);
SELECT queue_name, concurrency, concurrency_set_by FROM graphile_worker.queues;
-- what it may not read stays hidden in the row cancel_job returns
SELECT payload, last_error, attempts = max_attempts AS failed FROM graphile_worker.cancel_job(:sms_id);
RESET ROLE;
SELECT last_error FROM graphile_worker.jobs WHERE id = :sms_id;
SET ROLE ctl_boss;
-- the internals stay out of reach
SELECT graphile_worker._pause_queue('q1', 'someone else');
SELECT * FROM graphile_worker._private_pauses;
SELECT graphile_worker._set_queue_concurrency('q1', 9, 'someone else');
DELETE FROM graphile_worker._private_queue_limits;
SELECT graphile_worker.grant_control('ctl_nobody');
RESET ROLE;
SELECT graphile_worker.revoke_control('ctl_boss');
SET ROLE ctl_boss;
SELECT graphile_worker.pause_queue('q1');
SELECT graphile_worker.set_queue_concurrency('q1', 2);
RESET ROLE;
SELECT queue_name, max_running, set_by FROM graphile_worker._private_queue_limits;

DROP EXTENSION graphile_worker;
DROP ROLE ctl_boss;
DROP ROLE ctl_nobody;
