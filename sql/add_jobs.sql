-- add_jobs: several specs in one call, keyed specs, array payload merging,
-- job_key_preserve_run_at, and the empty and NULL array.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
CREATE VIEW q AS
  SELECT j.task_identifier, j.queue_name, p.payload::text, j.priority, j.run_at,
         j.attempts, j.max_attempts, j.key, j.revision, j.flags
    FROM graphile_worker.jobs j JOIN graphile_worker._private_jobs p USING (id)
   ORDER BY j.run_at;
SET timezone = 'UTC';

SELECT task_id, payload, priority, max_attempts, key, flags, revision
  FROM graphile_worker.add_jobs(ARRAY[
    ('a', '{"n":1}', NULL, '2030-01-01', NULL, NULL, NULL, NULL),
    ('b', NULL, 'qb', '2030-01-02', 5, 'kb', 3, ARRAY['f']),
    ('a', '[1]', NULL, '2030-01-03', NULL, 'ka', NULL, NULL)
  ]::graphile_worker.job_spec[])
 ORDER BY payload::text;
SELECT * FROM q;

-- array payloads of the same key are concatenated; other payloads replace
SELECT payload, revision FROM graphile_worker.add_jobs(ARRAY[
    ('a', '[2,3]', NULL, '2030-02-01', NULL, 'ka', NULL, NULL)]::graphile_worker.job_spec[]);
SELECT payload, revision FROM graphile_worker.add_jobs(ARRAY[
    ('a', '{"x":1}', NULL, '2030-02-01', NULL, 'ka', NULL, NULL)]::graphile_worker.job_spec[]);
SELECT payload, revision FROM graphile_worker.add_jobs(ARRAY[
    ('a', '[4]', NULL, '2030-02-01', NULL, 'ka', NULL, NULL)]::graphile_worker.job_spec[]);

-- job_key_preserve_run_at keeps the old run_at of a never-attempted job
SELECT run_at, revision FROM graphile_worker.add_jobs(ARRAY[
    ('b', NULL, 'qb', '2031-01-01', NULL, 'kb', NULL, NULL)]::graphile_worker.job_spec[], true);
-- ... and not after an attempt
UPDATE graphile_worker._private_jobs SET attempts = 1 WHERE key = 'kb';
SELECT run_at, attempts, revision FROM graphile_worker.add_jobs(ARRAY[
    ('b', NULL, 'qb', '2032-01-01', NULL, 'kb', NULL, NULL)]::graphile_worker.job_spec[], true);

-- the same key twice in one call is a clear error and writes nothing
SELECT count(*) AS before FROM graphile_worker._private_jobs;
SELECT * FROM graphile_worker.add_jobs(ARRAY[
    ('a', NULL, NULL, NULL, NULL, 'dup', NULL, NULL),
    ('a', NULL, NULL, NULL, NULL, 'dup', NULL, NULL)]::graphile_worker.job_spec[]);
SELECT count(*) AS after FROM graphile_worker._private_jobs;

-- an empty or NULL array adds nothing
SELECT count(*) FROM graphile_worker.add_jobs('{}');
SELECT count(*) FROM graphile_worker.add_jobs(NULL);

-- 10,000 specs in one call
SELECT count(*) FROM graphile_worker.add_jobs(
  (SELECT array_agg(('bulk', json_build_object('i', i), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec)
     FROM generate_series(1, 10000) i));
SELECT count(*) FROM graphile_worker.jobs WHERE task_identifier = 'bulk';

DROP VIEW q;
DROP EXTENSION graphile_worker;
