/*
 * graphile_worker--0.1.0--0.2.0.sql: the update from 0.1.0 to 0.2.0.
 *
 * A database gets 0.2.0 either with ALTER EXTENSION graphile_worker UPDATE
 * or, for a new install, from CREATE EXTENSION, which runs the 0.1.0 script
 * and then this one.  Released scripts are never edited; each change to the
 * extension's SQL objects goes into the update script of the next version.
 *
 * Nothing here touches the objects Graphile Worker's Node and Rust ports
 * know (the _private_* tables, the jobs view, job_spec, migrations) beyond
 * what they accept.
 */

\echo Use "ALTER EXTENSION graphile_worker UPDATE TO '0.2.0'" to load this file. \quit

/* ---------------------------------------------------------------------
 * Every function of the extension runs with search_path = pg_catalog,
 * pg_temp, like the SQL ones of 0.1.0: the C functions below had no SET
 * clause, so anything they (or a future body) resolve by name would have
 * followed the caller's search_path.
 * ---------------------------------------------------------------------
 */
ALTER FUNCTION graphile_worker._wake_at_commit(integer, timestamp with time zone, integer)
	SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION graphile_worker._extension_created()
	SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION graphile_worker._workers()
	SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION graphile_worker._cron_tick(timestamp with time zone)
	SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION graphile_worker._cron_backfill(timestamp with time zone)
	SET search_path = pg_catalog, pg_temp;

/* ---------------------------------------------------------------------
 * The per-key lock of keyed inserts (job_key_lock.c).  0.1.0 took
 * pg_advisory_xact_lock(1735852033, hashtext(key)), which any session can
 * take too, and so hold up add_job with that key (a cron entry's key would
 * stall the supervisor).  The lock is now one that no SQL function can
 * take: a session holds a key's lock only while it has an add_job or
 * add_jobs call with that key in an open transaction.
 * ---------------------------------------------------------------------
 */
CREATE FUNCTION graphile_worker._take_job_key_locks(keys text[])
RETURNS void
LANGUAGE C
STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_take_job_key_locks';
REVOKE ALL ON FUNCTION graphile_worker._take_job_key_locks(text[]) FROM PUBLIC;
COMMENT ON FUNCTION graphile_worker._take_job_key_locks(text[]) IS
	'Internal: lock these job keys for the transaction (a lock SQL cannot take otherwise)';

/*
 * _lock_job_keys serialises keyed inserts: the per-key locks (in hash
 * order, so two callers never deadlock), then row locks on the existing
 * jobs with those keys, so no worker can claim one of them between the
 * detach step and the upsert of add_jobs.  This is what makes add_job
 * never return an all-NULL row (graphile/worker#580).
 */
CREATE OR REPLACE FUNCTION graphile_worker._lock_job_keys(keys text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
begin
  perform graphile_worker._take_job_key_locks(keys);
  perform 1
  from graphile_worker._private_jobs as jobs
  where jobs.key = any (keys)
  order by jobs.id
  for update;
end;
$$;

/* ---------------------------------------------------------------------
 * add_job, add_jobs and remove_job run as their caller (job_access.c).
 *
 * In 0.1.0 they were SECURITY DEFINER and returned whole job rows, so a
 * role granted EXECUTE on them alone could read another role's payload
 * through a job_key (unsafe_dedupe returns the existing job, add_jobs
 * concatenates array payloads with the same key, remove_job returns the row
 * it deleted or detached).  Now they are SECURITY INVOKER C functions: they
 * switch to the owner of _private_jobs to do their work (the bodies below,
 * granted to nobody), switch back, and return payload and last_error only
 * to a caller who may read them:
 *   payload     SELECT on _private_jobs (or its payload column), and not
 *               subject to its row-level security (owner, superuser,
 *               BYPASSRLS);
 *   last_error  SELECT on the jobs view (or its last_error column).
 * Otherwise those columns are NULL.  Signatures and defaults are unchanged,
 * and so are the rows returned, but for those two columns.
 * ---------------------------------------------------------------------
 */

/* _add_jobs: what add_jobs did in 0.1.0, run as the queue's owner. */
CREATE FUNCTION graphile_worker._add_jobs(
	specs graphile_worker.job_spec[],
	job_key_preserve_run_at boolean DEFAULT false)
RETURNS SETOF graphile_worker._private_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- planning these statements for each call would cost 4x running them
SET plan_cache_mode = force_generic_plan
AS $$
declare
  keys text[];
begin
  perform graphile_worker._check_job_specs(specs);
  if coalesce(pg_catalog.cardinality(specs), 0) = 0 then
    return;
  end if;

  select pg_catalog.array_agg(spec.job_key) into keys
  from pg_catalog.unnest(specs) as spec
  where spec.job_key is not null;
  if keys is not null then
    perform graphile_worker._lock_job_keys(keys);
  end if;

  -- Ensure all the tasks exist (insert only missing identifiers so identity is not consumed)
  insert into graphile_worker._private_tasks as tasks (identifier)
  select distinct spec.identifier
  from pg_catalog.unnest(specs) as spec
  where not exists (
    select 1
    from graphile_worker._private_tasks as existing
    where existing.identifier = spec.identifier
  )
  on conflict do nothing;

  -- Ensure all the queues exist
  insert into graphile_worker._private_job_queues as job_queues (queue_name)
  select distinct spec.queue_name
  from pg_catalog.unnest(specs) as spec
  where spec.queue_name is not null
  and not exists (
    select 1
    from graphile_worker._private_job_queues as existing
    where existing.queue_name = spec.queue_name
  )
  on conflict do nothing;

  -- A locked (running) or permanently failed job with one of the keys is
  -- detached: it keeps running or stays failed, and a new job takes the key.
  if keys is not null then
    update graphile_worker._private_jobs as jobs
    set
      key = null,
      attempts = jobs.max_attempts,
      updated_at = pg_catalog.now()
    where jobs.key = any (keys)
    and jobs.is_available is not true;
  end if;

  -- Our workers are woken at commit; Node and Rust workers by the NOTIFY,
  -- whose count is an over-estimate when keyed rows are updated, as in Node.
  perform graphile_worker._wake_at_commit(
    (pg_catalog.count(*) filter (where spec.run_at is null or spec.run_at <= pg_catalog.now()))::integer,
    pg_catalog.min(spec.run_at) filter (where spec.run_at > pg_catalog.now()),
    (pg_catalog.count(*) filter (where spec.run_at > pg_catalog.now()))::integer)
  from pg_catalog.unnest(specs) as spec;
  if pg_catalog.current_setting('graphile_worker.notify_on_add')::pg_catalog.bool then
    perform pg_catalog.pg_notify('jobs:insert',
      '{"r":' || pg_catalog.random()::text || ',"count":' ||
      pg_catalog.cardinality(specs)::text || '}');
  end if;

  return query insert into graphile_worker._private_jobs as jobs (
    job_queue_id,
    task_id,
    payload,
    run_at,
    max_attempts,
    key,
    priority,
    flags
  )
    select
      job_queues.id,
      tasks.id,
      coalesce(spec.payload, '{}'::json),
      coalesce(spec.run_at, pg_catalog.now()),
      coalesce(spec.max_attempts, 25),
      spec.job_key,
      coalesce(spec.priority, 0),
      (
        select pg_catalog.jsonb_object_agg(flag, true)
        from pg_catalog.unnest(spec.flags) as item(flag)
      )
    from pg_catalog.unnest(specs) as spec
    inner join graphile_worker._private_tasks as tasks
    on tasks.identifier = spec.identifier
    left join graphile_worker._private_job_queues as job_queues
    on job_queues.queue_name = spec.queue_name
  on conflict (key) do update set
    job_queue_id = excluded.job_queue_id,
    task_id = excluded.task_id,
    payload =
      case
      when pg_catalog.json_typeof(jobs.payload) = 'array'
       and pg_catalog.json_typeof(excluded.payload) = 'array' then
        (jobs.payload::jsonb || excluded.payload::jsonb)::json
      else
        excluded.payload
      end,
    max_attempts = excluded.max_attempts,
    run_at = (case
      when job_key_preserve_run_at is true and jobs.attempts = 0 then jobs.run_at
      else excluded.run_at
    end),
    priority = excluded.priority,
    revision = jobs.revision + 1,
    flags = excluded.flags,
    -- always reset error/retry state
    attempts = 0,
    last_error = null,
    updated_at = pg_catalog.now()
  where jobs.locked_at is null
  returning *;
end;
$$;

/* _remove_job: what remove_job did in 0.1.0, run as the queue's owner. */
CREATE FUNCTION graphile_worker._remove_job(job_key text)
RETURNS graphile_worker._private_jobs
LANGUAGE plpgsql
STRICT
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_job graphile_worker._private_jobs;
begin
  -- Delete job if not locked
  delete from graphile_worker._private_jobs as jobs
    where key = job_key
    and (
      locked_at is null
    or
      locked_at < pg_catalog.now() - interval '4 hours'
    )
  returning * into v_job;
  if not (v_job is null) then
    perform pg_catalog.pg_notify('jobs:insert',
      '{"r":' || pg_catalog.random()::text || ',"count":-1}');
    return v_job;
  end if;
  -- Otherwise prevent job from retrying, and clear the key
  update graphile_worker._private_jobs as jobs
  set
    key = null,
    attempts = jobs.max_attempts,
    updated_at = pg_catalog.now()
  where key = job_key
  returning * into v_job;
  return v_job;
end;
$$;

/*
 * _add_job_keyed: add_job for a job with a job_key, in every job_key_mode
 * (the C function add_job hands such calls over, with the same arguments,
 * as the queue's owner); it now calls _add_jobs, not the public add_jobs.
 */
CREATE OR REPLACE FUNCTION graphile_worker._add_job_keyed(
	identifier text,
	payload json,
	queue_name text,
	run_at timestamp with time zone,
	max_attempts integer,
	job_key text,
	priority integer,
	flags text[],
	job_key_mode text)
RETURNS graphile_worker._private_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
declare
  v_job graphile_worker._private_jobs;
  v_spec graphile_worker.job_spec;
begin
  if job_key_mode is not null
     and job_key_mode not in ('replace', 'preserve_run_at', 'unsafe_dedupe') then
    raise exception 'Invalid job_key_mode value, expected ''replace'', ''preserve_run_at'' or ''unsafe_dedupe''.'
      using errcode = 'GWBKM';
  end if;
  if _add_job_keyed.max_attempts is not null
     and (_add_job_keyed.max_attempts < 1 or _add_job_keyed.max_attempts > 32767) then
    raise exception 'max_attempts must be between 1 and 32767'
      using errcode = 'invalid_parameter_value',
            detail = format('max_attempts is %s.', _add_job_keyed.max_attempts);
  end if;
  if _add_job_keyed.priority is not null
     and (_add_job_keyed.priority < -32768 or _add_job_keyed.priority > 32767) then
    raise exception 'priority must be between -32768 and 32767'
      using errcode = 'numeric_value_out_of_range',
            detail = format('priority is %s.', _add_job_keyed.priority);
  end if;

  v_spec := (
    _add_job_keyed.identifier,
    _add_job_keyed.payload,
    _add_job_keyed.queue_name,
    _add_job_keyed.run_at,
    _add_job_keyed.max_attempts::smallint,
    _add_job_keyed.job_key,
    _add_job_keyed.priority::smallint,
    _add_job_keyed.flags
  )::graphile_worker.job_spec;

  if job_key is null or job_key_mode is distinct from 'unsafe_dedupe' then
    select * into v_job
    from graphile_worker._add_jobs(
      ARRAY[v_spec],
      (job_key_mode = 'preserve_run_at')
    )
    limit 1;
    if v_job.id is null then
      raise exception 'unable to schedule job for key "%"', _add_job_keyed.job_key
        using errcode = 'GWNOR',
              detail = 'A job with this key was changed concurrently by a writer that bypassed add_job.';
    end if;
    return v_job;
  end if;

  -- unsafe_dedupe: insert, or return the existing job with this key
  -- (whatever its state) with only revision and updated_at bumped.
  perform graphile_worker._check_job_specs(ARRAY[v_spec]);
  perform graphile_worker._lock_job_keys(ARRAY[_add_job_keyed.job_key]);

  insert into graphile_worker._private_tasks as tasks (identifier)
  select _add_job_keyed.identifier
  where not exists (
    select 1
    from graphile_worker._private_tasks as existing
    where existing.identifier = _add_job_keyed.identifier
  )
  on conflict do nothing;
  if _add_job_keyed.queue_name is not null then
    insert into graphile_worker._private_job_queues as job_queues (queue_name)
    select _add_job_keyed.queue_name
    where not exists (
      select 1
      from graphile_worker._private_job_queues as existing
      where existing.queue_name = _add_job_keyed.queue_name
    )
    on conflict do nothing;
  end if;

  insert into graphile_worker._private_jobs as jobs (
    job_queue_id,
    task_id,
    payload,
    run_at,
    max_attempts,
    key,
    priority,
    flags
  )
    select
      job_queues.id,
      tasks.id,
      coalesce(_add_job_keyed.payload, '{}'::json),
      coalesce(_add_job_keyed.run_at, pg_catalog.now()),
      coalesce(_add_job_keyed.max_attempts::smallint, 25::smallint),
      _add_job_keyed.job_key,
      coalesce(_add_job_keyed.priority::smallint, 0::smallint),
      (
        select pg_catalog.jsonb_object_agg(flag, true)
        from pg_catalog.unnest(_add_job_keyed.flags) as item(flag)
      )
    from graphile_worker._private_tasks as tasks
    left join graphile_worker._private_job_queues as job_queues
    on job_queues.queue_name = _add_job_keyed.queue_name
    where tasks.identifier = _add_job_keyed.identifier
  on conflict (key)
    do update set
      revision = jobs.revision + 1,
      updated_at = pg_catalog.now()
    returning * into v_job;
  if v_job.revision = 0 then
    if v_job.run_at > pg_catalog.now() then
      perform graphile_worker._wake_at_commit(0, v_job.run_at, 1);
    else
      perform graphile_worker._wake_at_commit(1, null, 0);
    end if;
    if pg_catalog.current_setting('graphile_worker.notify_on_add')::pg_catalog.bool then
      perform pg_catalog.pg_notify('jobs:insert',
        '{"r":' || pg_catalog.random()::text || ',"count":1}');
    end if;
  end if;
  return v_job;
end;
$$;

REVOKE ALL ON FUNCTION graphile_worker._add_jobs(graphile_worker.job_spec[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._remove_job(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION graphile_worker.add_job(
	identifier text,
	payload json DEFAULT NULL::json,
	queue_name text DEFAULT NULL::text,
	run_at timestamp with time zone DEFAULT NULL::timestamp with time zone,
	max_attempts integer DEFAULT NULL::integer,
	job_key text DEFAULT NULL::text,
	priority integer DEFAULT NULL::integer,
	flags text[] DEFAULT NULL::text[],
	job_key_mode text DEFAULT 'replace'::text)
RETURNS graphile_worker._private_jobs
LANGUAGE C
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_add_job';

CREATE OR REPLACE FUNCTION graphile_worker.add_jobs(
	specs graphile_worker.job_spec[],
	job_key_preserve_run_at boolean DEFAULT false)
RETURNS SETOF graphile_worker._private_jobs
LANGUAGE C
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_add_jobs';

CREATE OR REPLACE FUNCTION graphile_worker.remove_job(job_key text)
RETURNS graphile_worker._private_jobs
LANGUAGE C
STRICT
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_remove_job';

COMMENT ON FUNCTION graphile_worker._add_jobs(graphile_worker.job_spec[], boolean) IS
	'Internal: the work of add_jobs, run as the queue''s owner';
COMMENT ON FUNCTION graphile_worker._remove_job(text) IS
	'Internal: the work of remove_job, run as the queue''s owner';
COMMENT ON FUNCTION graphile_worker.add_job(text, json, text, timestamp with time zone, integer, text, integer, text[], text) IS
	'Enqueue one job; job_key with job_key_mode replace, preserve_run_at or unsafe_dedupe de-duplicates; payload and last_error are NULL in the result for a caller who may not read them';
COMMENT ON FUNCTION graphile_worker.add_jobs(graphile_worker.job_spec[], boolean) IS
	'Enqueue many jobs in one call; payload and last_error are NULL in the results for a caller who may not read them';
COMMENT ON FUNCTION graphile_worker.remove_job(text) IS
	'Delete the pending job with this key, or stop a running one from retrying; payload and last_error are NULL in the result for a caller who may not read them';
