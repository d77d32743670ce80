-- job_key_modes: every row of Graphile Worker's job_key table.  For each
-- state of an existing job with the same key (none, pending, failed with
-- retries left, locked, permanently failed) and each job_key_mode (replace,
-- preserve_run_at, unsafe_dedupe), add_job is called with new data; the
-- returned row and then every job row are shown.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
SET timezone = 'UTC';

CREATE FUNCTION scenario(state text, mode text)
RETURNS TABLE (row_is text, payload text, run_at timestamptz, attempts smallint,
               max_attempts smallint, last_error text, revision int, key text,
               locked_by text)
LANGUAGE plpgsql AS $$
DECLARE
  r graphile_worker._private_jobs;
BEGIN
  DELETE FROM graphile_worker._private_jobs;
  IF state <> 'none' THEN
    PERFORM graphile_worker.add_job('t', '{"v":"old"}', job_key => 'k',
                                    run_at => '2030-01-01', max_attempts => 5);
  END IF;
  IF state = 'failed' THEN
    UPDATE graphile_worker._private_jobs j SET attempts = 1, last_error = 'boom',
           run_at = '2030-01-01 00:00:03' WHERE j.key = 'k';
  ELSIF state = 'locked' THEN
    UPDATE graphile_worker._private_jobs j SET attempts = 1, locked_at = now(),
           locked_by = 'w1' WHERE j.key = 'k';
  ELSIF state = 'permafailed' THEN
    UPDATE graphile_worker._private_jobs j SET attempts = 5, last_error = 'dead'
     WHERE j.key = 'k';
  END IF;
  r := graphile_worker.add_job('t', '{"v":"new"}', job_key => 'k', run_at => '2031-01-01',
                               max_attempts => 7, job_key_mode => mode);
  RETURN QUERY
    SELECT 'returned', r.payload::text, r.run_at, r.attempts, r.max_attempts,
           r.last_error, r.revision, r.key, r.locked_by
    UNION ALL
    (SELECT 'stored', j.payload::text, j.run_at, j.attempts, j.max_attempts,
            j.last_error, j.revision, j.key, j.locked_by
       FROM graphile_worker._private_jobs j ORDER BY j.id);
END $$;

-- no job with the key: every mode inserts
SELECT * FROM scenario('none', 'replace');
SELECT * FROM scenario('none', 'preserve_run_at');
SELECT * FROM scenario('none', 'unsafe_dedupe');
-- pending, never attempted: replace updates everything, preserve_run_at all
-- but run_at, unsafe_dedupe only bumps revision
SELECT * FROM scenario('pending', 'replace');
SELECT * FROM scenario('pending', 'preserve_run_at');
SELECT * FROM scenario('pending', 'unsafe_dedupe');
-- failed with retries left: replace and preserve_run_at both update run_at
-- (attempts > 0) and reset attempts and last_error; unsafe_dedupe keeps it
SELECT * FROM scenario('failed', 'replace');
SELECT * FROM scenario('failed', 'preserve_run_at');
SELECT * FROM scenario('failed', 'unsafe_dedupe');
-- locked (running): the old job is detached and a new one inserted, except
-- unsafe_dedupe which returns the running job
SELECT * FROM scenario('locked', 'replace');
SELECT * FROM scenario('locked', 'preserve_run_at');
SELECT * FROM scenario('locked', 'unsafe_dedupe');
-- permanently failed: detached and replaced, except unsafe_dedupe which
-- returns the dead job and schedules nothing
SELECT * FROM scenario('permafailed', 'replace');
SELECT * FROM scenario('permafailed', 'preserve_run_at');
SELECT * FROM scenario('permafailed', 'unsafe_dedupe');
-- a NULL mode behaves as replace
SELECT * FROM scenario('pending', NULL);

-- debounce: replace with a later run_at pushes the job back
DELETE FROM graphile_worker._private_jobs;
SELECT run_at FROM graphile_worker.add_job('t', job_key => 'd', run_at => '2030-01-01 00:00:10');
SELECT run_at FROM graphile_worker.add_job('t', job_key => 'd', run_at => '2030-01-01 00:00:20');
-- throttle: preserve_run_at keeps the first run_at
SELECT run_at FROM graphile_worker.add_job('t', job_key => 'th', run_at => '2030-01-01 00:00:10',
                                           job_key_mode => 'preserve_run_at');
SELECT run_at FROM graphile_worker.add_job('t', job_key => 'th', run_at => '2030-01-01 00:00:20',
                                           job_key_mode => 'preserve_run_at');

DROP FUNCTION scenario(text, text);
DROP EXTENSION graphile_worker;
