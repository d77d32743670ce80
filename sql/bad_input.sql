-- bad_input: every kind of bad input gets a clear error with its SQLSTATE,
-- and nothing is written (the row counts are checked after each).
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
\set VERBOSITY sqlstate
CREATE FUNCTION counts() RETURNS text LANGUAGE sql AS $$
  SELECT format('jobs=%s tasks=%s queues=%s',
    (SELECT count(*) FROM graphile_worker._private_jobs),
    (SELECT count(*) FROM graphile_worker._private_tasks),
    (SELECT count(*) FROM graphile_worker._private_job_queues))
$$;
SELECT (graphile_worker.add_job('ok', job_key => 'existing', queue_name => 'q')).id IS NOT NULL AS seeded;
SELECT counts();

-- unknown job_key_mode: GWBKM, with or without a key
SELECT graphile_worker.add_job('x', job_key => 'k', job_key_mode => 'bogus');
SELECT graphile_worker.add_job('x', job_key_mode => 'bogus');
-- NULL or empty identifier
SELECT graphile_worker.add_job(NULL);
SELECT graphile_worker.add_job('');
-- identifier or queue name over 128 characters (128 is fine)
SELECT graphile_worker.add_job(repeat('i', 129));
SELECT graphile_worker.add_job('x', queue_name => repeat('q', 129));
-- job_key empty or over 512 characters
SELECT graphile_worker.add_job('x', job_key => '');
SELECT graphile_worker.add_job('x', job_key => repeat('k', 513));
-- max_attempts below 1, priority and max_attempts outside smallint
SELECT graphile_worker.add_job('x', max_attempts => 0);
SELECT graphile_worker.add_job('x', max_attempts => 32768);
SELECT graphile_worker.add_job('x', priority => 32768);
SELECT graphile_worker.add_job('x', priority => -32769);
-- payload that is not JSON
SELECT graphile_worker.add_job('x', '{not json');
-- flags containing NULL
SELECT graphile_worker.add_job('x', flags => ARRAY['a', NULL]);
-- the unsafe_dedupe path validates too
SELECT graphile_worker.add_job('', job_key => 'k', job_key_mode => 'unsafe_dedupe');
-- add_jobs: a NULL element, and bad fields of a later element
SELECT graphile_worker.add_jobs(ARRAY[('x', NULL, NULL, NULL, NULL, NULL, NULL, NULL), NULL]::graphile_worker.job_spec[]);
SELECT graphile_worker.add_jobs(ARRAY[('x', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                                      ('y', NULL, NULL, NULL, 0, NULL, NULL, NULL)]::graphile_worker.job_spec[]);
SELECT graphile_worker.add_jobs(ARRAY[('x', NULL, NULL, NULL, NULL, 'existing', NULL, ARRAY[NULL])]::graphile_worker.job_spec[]);
SELECT counts();

-- the messages themselves
\set VERBOSITY default
SELECT graphile_worker.add_job('x', job_key => 'k', job_key_mode => 'bogus');
SELECT graphile_worker.add_job(repeat('i', 129));
SELECT graphile_worker.add_jobs(ARRAY[('x', NULL, NULL, NULL, NULL, NULL, NULL, NULL), NULL]::graphile_worker.job_spec[]);
SELECT graphile_worker.add_job('x', flags => ARRAY['a', NULL]);
SELECT graphile_worker.add_job('x', priority => 40000);
SELECT graphile_worker.add_job(NULL);
SELECT graphile_worker.add_job(NULL, '{}');
SELECT graphile_worker.add_job('');
SELECT graphile_worker.add_job('x', queue_name => repeat('q', 129));
SELECT graphile_worker.add_job('x', max_attempts => 0);
-- the first error wins: job_key_mode, then max_attempts and priority, then
-- the identifier
SELECT graphile_worker.add_job('', job_key_mode => 'bogus', max_attempts => 0);
SELECT graphile_worker.add_job('', max_attempts => 0, priority => 40000);
SELECT graphile_worker.add_job('', priority => 40000);
SELECT counts();

-- the limits themselves are accepted
SELECT (graphile_worker.add_job(repeat('i', 128), queue_name => repeat('q', 128),
       job_key => repeat('k', 512), max_attempts => 32767, priority => -32768)).id IS NOT NULL AS accepted;
SELECT counts();

DROP FUNCTION counts();
DROP EXTENSION graphile_worker;
