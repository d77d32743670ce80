-- privileges: nothing is granted to PUBLIC (but the functions behind the
-- monitoring views, which check the caller); a role with USAGE on the schema
-- and EXECUTE on add_job can enqueue without any table privilege, but can
-- neither read payloads (not even in what add_job returns) nor call the
-- admin functions.  Function bodies are
-- immune to search_path tricks.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- but the functions behind the monitoring views, which check themselves
-- that the caller may SELECT their view (see monitoring)
SELECT p.proname AS public_function_grants
  FROM pg_proc p, aclexplode(p.proacl) a
 WHERE p.pronamespace = 'graphile_worker'::regnamespace AND a.grantee = 0
 ORDER BY 1;
SELECT count(*) AS public_table_grants
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'graphile_worker'::regnamespace AND a.grantee = 0;
SELECT has_schema_privilege('public', 'graphile_worker', 'USAGE') AS public_schema_usage;
-- only set_crontab and _crontab_entries are SECURITY DEFINER (add_job,
-- add_jobs and remove_job switch to the queue's owner themselves, see
-- job_visibility), and every SQL function pins search_path
SELECT proname, prosecdef, proconfig FROM pg_proc
 WHERE pronamespace = 'graphile_worker'::regnamespace ORDER BY proname;
-- no function of the extension, C ones included, runs with the caller's
-- search_path
SELECT p.proname AS without_pinned_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'graphile_worker'::regnamespace
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
 ORDER BY 1;

CREATE ROLE gw_app LOGIN;
-- without a grant: nothing
SET ROLE gw_app;
SELECT graphile_worker.add_job('t');
SELECT count(*) FROM graphile_worker.jobs;
RESET ROLE;
GRANT USAGE ON SCHEMA graphile_worker TO gw_app;
SET ROLE gw_app;
SELECT graphile_worker.add_job('t');
SELECT count(*) FROM graphile_worker.jobs;
RESET ROLE;

-- with EXECUTE on add_job: enqueue works, nothing else does; the payload
-- comes back NULL (gw_app may not read payloads)
GRANT EXECUTE ON FUNCTION graphile_worker.add_job TO gw_app;
SET ROLE gw_app;
SELECT task_id IS NOT NULL AS enqueued, payload FROM graphile_worker.add_job('t', '{"secret": 1}');
SELECT payload FROM graphile_worker._private_jobs;
SELECT count(*) FROM graphile_worker.jobs;
SELECT graphile_worker.add_jobs(ARRAY[('t', NULL, NULL, NULL, NULL, NULL, NULL, NULL)]::graphile_worker.job_spec[]);
SELECT graphile_worker.remove_job('k');
SELECT graphile_worker.complete_jobs(ARRAY[1::bigint]);
SELECT graphile_worker.permanently_fail_jobs(ARRAY[1::bigint]);
SELECT graphile_worker.reschedule_jobs(ARRAY[1::bigint]);
SELECT graphile_worker.force_unlock_workers(ARRAY['w']);
DELETE FROM graphile_worker._private_jobs;
INSERT INTO graphile_worker._private_tasks (identifier) VALUES ('evil');
RESET ROLE;
SELECT t.identifier, j.payload FROM graphile_worker._private_jobs j
  JOIN graphile_worker._private_tasks t ON t.id = j.task_id;

-- a hostile operator and function earlier in search_path change nothing
CREATE SCHEMA evil;
CREATE FUNCTION evil.texteq_always(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq_always);
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
SET search_path = evil, pg_catalog, public;
SELECT (graphile_worker.add_job('other_task', job_key => 'x')).id IS NOT NULL AS added;
SELECT (graphile_worker.add_job('t', job_key => 'y')).id IS NOT NULL AS added;
SELECT t.identifier, j.key, j.run_at > '2020-01-01' AS real_now
  FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
 WHERE j.key IS NOT NULL ORDER BY j.id;
RESET search_path;
DROP SCHEMA evil CASCADE;

DROP EXTENSION graphile_worker;
DROP OWNED BY gw_app;
DROP ROLE gw_app;
