-- grant_worker: grant_worker(role) gives a role what a Node or Rust
-- Graphile Worker process uses (table rights, a permissive row-level
-- security policy per table, the job functions) and nothing else;
-- revoke_worker takes it back; bad roles get a clear error that changes
-- nothing.  The statements run as the role are those of graphile-worker
-- 0.18 (taskIdentifiers.js, getJobs.js, completeJobs.js, failJobs.js,
-- cron.js, migrate.js), abridged.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
SET client_min_messages = warning;
CREATE ROLE gw_node_worker LOGIN;
CREATE ROLE gw_plain LOGIN;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- What the role holds, as one list.
CREATE FUNCTION worker_rights(role_name name) RETURNS SETOF text LANGUAGE sql AS $$
  SELECT 'schema usage' WHERE has_schema_privilege(role_name, 'graphile_worker', 'USAGE')
  UNION ALL
  SELECT format('table %s %s', c.relname, string_agg(p, ',' ORDER BY p))
    FROM pg_class c
    CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p
   WHERE c.relnamespace = 'graphile_worker'::regnamespace AND c.relkind IN ('r', 'v', 'S')
     AND has_table_privilege(role_name, c.oid, p)
   GROUP BY c.relname
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure
    FROM pg_proc p WHERE p.pronamespace = 'graphile_worker'::regnamespace
     AND has_function_privilege(role_name, p.oid, 'EXECUTE')
  UNION ALL
  SELECT format('policy %s %s %s %s to %s using %s check %s', tablename, policyname, cmd,
                permissive, roles, qual, with_check)
    FROM pg_policies WHERE schemaname = 'graphile_worker' AND role_name = ANY (roles)
  ORDER BY 1
$$;

SELECT * FROM worker_rights('gw_node_worker');
SELECT graphile_worker.grant_worker('gw_node_worker');
SELECT * FROM worker_rights('gw_node_worker');
-- granting again changes nothing
SELECT graphile_worker.grant_worker('gw_node_worker');
SELECT count(*) AS policies FROM pg_policies WHERE 'gw_node_worker' = ANY (roles);

-- A role with every table right but no policy sees no row and may write none.
GRANT USAGE ON SCHEMA graphile_worker TO gw_plain;
GRANT ALL ON ALL TABLES IN SCHEMA graphile_worker TO gw_plain;
SELECT (graphile_worker.add_job('node_task', '{"n": 1}', queue_name => 'q')).id;
SET ROLE gw_plain;
SELECT count(*) FROM graphile_worker._private_jobs;
insert into graphile_worker._private_tasks as tasks (identifier)
  select i from unnest(array['node_task', 'other_task']::text[]) as u(i)
  where not exists (select 1 from graphile_worker._private_tasks as existing where existing.identifier = u.i)
  on conflict do nothing;
RESET ROLE;

-- The worker role does what a Node worker does.
SET ROLE gw_node_worker;
select (select id from graphile_worker.migrations order by id desc limit 1) as id,
  (select id from graphile_worker.migrations where breaking is true order by id desc limit 1) as biggest_breaking_id;
insert into graphile_worker._private_tasks as tasks (identifier)
  select i from unnest(array['node_task', 'other_task']::text[]) as u(i)
  where not exists (select 1 from graphile_worker._private_tasks as existing where existing.identifier = u.i)
  on conflict do nothing;
select identifier from graphile_worker._private_tasks as tasks
  where identifier = any(array['node_task', 'other_task']) order by id;
-- claim (getJobs.js, one job)
with j as (
  select jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
    from graphile_worker._private_jobs as jobs
   where jobs.is_available = true and run_at <= now()
     and task_id = any(select id from graphile_worker._private_tasks where identifier = 'node_task')
     and (jobs.job_queue_id is null or jobs.job_queue_id in (
       select id from graphile_worker._private_job_queues as job_queues
        where job_queues.is_available = true for update skip locked))
   order by priority asc, run_at asc limit 1 for update skip locked
), q as (
  update graphile_worker._private_job_queues as job_queues
     set locked_by = 'pool-test', locked_at = now()
    from j where job_queues.id = j.job_queue_id
)
update graphile_worker._private_jobs as jobs
   set attempts = jobs.attempts + 1, locked_by = 'pool-test', locked_at = now()
  from j where jobs.id = j.id
returning jobs.attempts, jobs.locked_by, (select queue_name from graphile_worker._private_job_queues where id = jobs.job_queue_id);
-- fail it (failJobs.js), then claim and complete it (completeJobs.js)
with j as (
  update graphile_worker._private_jobs as jobs
     set last_error = 'boom', run_at = greatest(now(), run_at) + exp(least(attempts, 10)) * interval '1 second',
         locked_by = null, locked_at = null
   where id = (select id from graphile_worker._private_jobs limit 1) and locked_by = 'pool-test'
  returning *
)
update graphile_worker._private_job_queues as job_queues
   set locked_by = null, locked_at = null
  from j where job_queues.id = j.job_queue_id and job_queues.locked_by = 'pool-test';
select attempts, last_error, locked_by from graphile_worker._private_jobs;
delete from graphile_worker._private_jobs as jobs where id = (select id from graphile_worker._private_jobs limit 1);
-- cron (cron.js): known crontabs, then a minute fired with add_job
INSERT INTO graphile_worker._private_known_crontabs AS known_crontabs (identifier, known_since)
  SELECT identifier, '2026-01-01 00:00+00' FROM unnest(array['hourly']) AS u(identifier)
  ON CONFLICT DO NOTHING;
with locks as (
  insert into graphile_worker._private_known_crontabs as known_crontabs (identifier, known_since, last_execution)
    values ('hourly', now(), '2026-01-01 01:00+00')
  on conflict (identifier) do update set last_execution = excluded.last_execution
  where (known_crontabs.last_execution is null or known_crontabs.last_execution < excluded.last_execution)
  returning known_crontabs.identifier
)
select (graphile_worker.add_job('hourly_task', '{"_cron": {}}', run_at => '2026-01-01 01:00+00')).attempts
  from locks;
-- the 4-hour sweep (resetLockedAt.js)
with j as (
  update graphile_worker._private_jobs as jobs set locked_at = null, locked_by = null,
         run_at = greatest(run_at, now())
   where locked_at < now() - interval '4 hours'
)
update graphile_worker._private_job_queues as job_queues set locked_at = null, locked_by = null
 where locked_at < now() - interval '4 hours';
-- WorkerUtils
SELECT count(*) FROM graphile_worker.complete_jobs(ARRAY(SELECT id FROM graphile_worker._private_jobs));
SELECT count(*) FROM graphile_worker._private_jobs;
-- and nothing more: not the crontab, the control functions, our tables,
-- the jobs view, DELETE on tasks and queues
SELECT graphile_worker.set_crontab('');
SELECT graphile_worker.pause_queue('q');
SELECT count(*) FROM graphile_worker._private_crontab;
SELECT count(*) FROM graphile_worker.jobs;
DELETE FROM graphile_worker._private_tasks;
DELETE FROM graphile_worker._private_job_queues;
RESET ROLE;

-- Bad roles: a clear error with its SQLSTATE, nothing granted.
\set VERBOSITY sqlstate
SELECT graphile_worker.grant_worker(NULL);
SELECT graphile_worker.grant_worker('no_such_role');
SELECT graphile_worker.grant_worker('public');
SELECT graphile_worker.revoke_worker('no_such_role');
\set VERBOSITY default
SELECT graphile_worker.grant_worker('no_such_role');
SELECT graphile_worker.grant_worker('public');
SELECT count(*) AS public_policies FROM pg_policies WHERE 'public' = ANY (roles);

-- Nobody but the owner may call them.
SET ROLE gw_node_worker;
SELECT graphile_worker.grant_worker('gw_plain');
RESET ROLE;

-- revoke_worker takes everything back but USAGE on the schema.
SELECT graphile_worker.revoke_worker('gw_node_worker');
SELECT * FROM worker_rights('gw_node_worker');

-- A role name too long for "worker_" + name names its policies by oid.
SET client_min_messages = warning;
CREATE ROLE gw_worker_with_a_very_long_name_that_takes_up_almost_all_63_b;
RESET client_min_messages;
SELECT graphile_worker.grant_worker('gw_worker_with_a_very_long_name_that_takes_up_almost_all_63_b');
SELECT count(*) AS policies,
       bool_and(policyname = 'worker_' || 'gw_worker_with_a_very_long_name_that_takes_up_almost_all_63_b'::regrole::oid) AS named_by_oid
  FROM pg_policies WHERE 'gw_worker_with_a_very_long_name_that_takes_up_almost_all_63_b' = ANY (roles);
SELECT graphile_worker.revoke_worker('gw_worker_with_a_very_long_name_that_takes_up_almost_all_63_b');
SELECT count(*) AS policies FROM pg_policies
 WHERE 'gw_worker_with_a_very_long_name_that_takes_up_almost_all_63_b' = ANY (roles);

DROP FUNCTION worker_rights(name);
DROP EXTENSION graphile_worker;
DROP OWNED BY gw_node_worker, gw_plain, gw_worker_with_a_very_long_name_that_takes_up_almost_all_63_b;
DROP ROLE gw_node_worker, gw_plain, gw_worker_with_a_very_long_name_that_takes_up_almost_all_63_b;
