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
 *
 * 0.2.0 brings: SECURITY INVOKER add_job/add_jobs/remove_job that hide what
 * the caller may not read; a per-key lock no SQL function can take; the
 * control functions (pausing, cancel_job, crontab entries); Node and Rust
 * workers as application roles (grant_worker); adopting a schema that
 * graphile-worker 0.18 created; visibility (job_history, task_stats,
 * queue_stats, unhandled_tasks, metrics(), wait_for_job, cleanup,
 * grant_monitor), the last section.
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

/*
 * Control: pausing named queues and tasks, cancelling jobs, editing and
 * running crontab entries.  The public functions that record who did it
 * (pause_*, resume_*, cancel_job) are C entry points (control.c) that note
 * the calling role and run the internal function of the same name with a
 * leading underscore as the owner of the queue's tables; none of it is
 * granted to anyone: grant_control(role) grants the set.
 */

/* What is paused, since when, by whom. */
CREATE TABLE graphile_worker._private_pauses (
	kind text NOT NULL CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['queue', 'task'])),
	name text NOT NULL,
	paused_at timestamp with time zone NOT NULL DEFAULT pg_catalog.now(),
	paused_by text NOT NULL,
	PRIMARY KEY (kind, name)
);
ALTER TABLE graphile_worker._private_pauses ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('graphile_worker._private_pauses', '');

/*
 * A paused queue's row is locked by this marker until 'infinity', so that
 * no worker, ours or Node's, starts a job of it (the 4-hour rule never
 * releases it).  A job of the queue running when it was paused finishes;
 * its completion does not unlock the queue (the lock is no longer its).
 */
CREATE FUNCTION graphile_worker._pause_queue(queue_name text, paused_by text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_id integer;
begin
  if queue_name is null then
    raise exception 'queue name must not be null' using errcode = '22004';
  end if;
  select q.id into v_id from graphile_worker._private_job_queues as q
    where q.queue_name operator(pg_catalog.=) _pause_queue.queue_name for update;
  if not found then
    raise exception 'queue "%" does not exist', queue_name
      using errcode = '42704',
            hint = 'A named queue exists once a job has been added to it.';
  end if;
  insert into graphile_worker._private_pauses (kind, name, paused_by)
    values ('queue', queue_name, paused_by)
    on conflict (kind, name) do nothing;
  update graphile_worker._private_job_queues as q
    set locked_by = 'graphile_worker:paused', locked_at = 'infinity'
    where q.id operator(pg_catalog.=) v_id;
end;
$$;

/*
 * Resuming gives the queue's lock back to the worker of a job of it that
 * still runs (locking that job's row first, so that a completion under way
 * is waited for), or releases it.
 */
CREATE FUNCTION graphile_worker._resume_queue(queue_name text, resumed_by text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_id integer;
  v_locked_by text;
  v_locked_at timestamp with time zone;
begin
  if queue_name is null then
    raise exception 'queue name must not be null' using errcode = '22004';
  end if;
  select q.id into v_id from graphile_worker._private_job_queues as q
    where q.queue_name operator(pg_catalog.=) _resume_queue.queue_name for update;
  if not found then
    raise exception 'queue "%" does not exist', queue_name
      using errcode = '42704',
            hint = 'A named queue exists once a job has been added to it.';
  end if;
  delete from graphile_worker._private_pauses as p
    where p.kind operator(pg_catalog.=) 'queue'
      and p.name operator(pg_catalog.=) _resume_queue.queue_name;
  if not found then
    return;
  end if;
  select j.locked_by, j.locked_at into v_locked_by, v_locked_at
    from graphile_worker._private_jobs as j
    where j.job_queue_id operator(pg_catalog.=) v_id and j.locked_at is not null
    order by j.locked_at desc
    limit 1
    for update;
  -- a queue of limited concurrency is claimed without its row lock
  if exists (select from graphile_worker._private_queue_limits as l
             where l.queue_name operator(pg_catalog.=) _resume_queue.queue_name) then
    v_locked_by := null;
    v_locked_at := null;
  end if;
  update graphile_worker._private_job_queues as q
    set locked_by = v_locked_by, locked_at = v_locked_at
    where q.id operator(pg_catalog.=) v_id
      and q.locked_by operator(pg_catalog.=) 'graphile_worker:paused';
  -- the workers may claim its jobs again now
  perform graphile_worker._wake_at_commit(1, null, 0);
end;
$$;

/* Tasks have no lock in the schema: only our workers skip a paused task. */
CREATE FUNCTION graphile_worker._pause_task(identifier text, paused_by text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
begin
  if identifier is null then
    raise exception 'task identifier must not be null' using errcode = '22004';
  end if;
  perform from graphile_worker._private_tasks as t
    where t.identifier operator(pg_catalog.=) _pause_task.identifier;
  if not found then
    raise exception 'task "%" does not exist', identifier
      using errcode = '42704',
            hint = 'A task exists once a job has been added for it.';
  end if;
  insert into graphile_worker._private_pauses (kind, name, paused_by)
    values ('task', identifier, paused_by)
    on conflict (kind, name) do nothing;
end;
$$;

CREATE FUNCTION graphile_worker._resume_task(identifier text, resumed_by text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
begin
  if identifier is null then
    raise exception 'task identifier must not be null' using errcode = '22004';
  end if;
  perform from graphile_worker._private_tasks as t
    where t.identifier operator(pg_catalog.=) _resume_task.identifier;
  if not found then
    raise exception 'task "%" does not exist', identifier
      using errcode = '42704',
            hint = 'A task exists once a job has been added for it.';
  end if;
  delete from graphile_worker._private_pauses as p
    where p.kind operator(pg_catalog.=) 'task'
      and p.name operator(pg_catalog.=) _resume_task.identifier;
  -- the workers may claim its jobs again now
  perform graphile_worker._wake_at_commit(1, null, 0);
end;
$$;

/*
 * How many jobs of a named queue may run at once, where that is not 1
 * (the schema's serial queue, whose row lock Node workers share).  A
 * queue with a row here is claimed by our workers without locking its row
 * (claim.c): each claim takes one of its jobs at most, and only while
 * fewer than max_running of our job workers hold one.  A row with 1 is
 * left by set_queue_concurrency(name, 1) while jobs of the queue still
 * run; a claim deletes it once none does, and the queue is serial again.
 */
CREATE TABLE graphile_worker._private_queue_limits (
	queue_name text PRIMARY KEY,
	max_running integer NOT NULL CHECK (max_running OPERATOR(pg_catalog.>=) 1),
	set_at timestamp with time zone NOT NULL DEFAULT pg_catalog.now(),
	set_by text NOT NULL
);
ALTER TABLE graphile_worker._private_queue_limits ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('graphile_worker._private_queue_limits', '');

CREATE FUNCTION graphile_worker._set_queue_concurrency(queue_name text, n integer, set_by text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
begin
  if queue_name is null then
    raise exception 'queue name must not be null' using errcode = '22004';
  end if;
  if n is null then
    raise exception 'queue concurrency must not be null' using errcode = '22004';
  end if;
  if n operator(pg_catalog.<) 1 then
    raise exception 'queue concurrency must be at least 1, not %', n
      using errcode = '22023',
            hint = 'To stop a queue''s jobs from starting, use pause_queue.';
  end if;
  perform from graphile_worker._private_job_queues as q
    where q.queue_name operator(pg_catalog.=) _set_queue_concurrency.queue_name;
  if not found then
    raise exception 'queue "%" does not exist', queue_name
      using errcode = '42704',
            hint = 'A named queue exists once a job has been added to it.';
  end if;
  if n operator(pg_catalog.=) 1 then
    -- the next claim that finds none of its jobs running deletes the row
    update graphile_worker._private_queue_limits as l
      set max_running = 1, set_at = pg_catalog.now(), set_by = _set_queue_concurrency.set_by
      where l.queue_name operator(pg_catalog.=) _set_queue_concurrency.queue_name;
  else
    insert into graphile_worker._private_queue_limits (queue_name, max_running, set_by)
      values (queue_name, n, set_by)
      on conflict on constraint _private_queue_limits_pkey do update
        set max_running = excluded.max_running, set_at = excluded.set_at,
            set_by = excluded.set_by;
  end if;
  -- a raised limit lets more of its jobs start now
  perform graphile_worker._wake_at_commit(n, null, 0);
end;
$$;

CREATE FUNCTION graphile_worker.set_queue_concurrency(queue_name text, n integer)
RETURNS void LANGUAGE C SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_control';

/*
 * _signal_job_cancel(job_id, locked_by, by): at commit, cancel the handler
 * of job_id in our job worker locked_by, if it lives (control.c).
 */
CREATE FUNCTION graphile_worker._signal_job_cancel(job_id bigint, locked_by text,
	cancelled_by text)
RETURNS void
LANGUAGE C
STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_signal_job_cancel';

/*
 * A queued job becomes permanently failed; a running one too, and its
 * handler is cancelled at commit if one of our workers runs it (it then
 * fails with this last_error; a Node worker's job ends as its handler
 * does, but is not retried).  The revision moves on, so that a worker
 * stopping meanwhile does not give the job back.
 */
CREATE FUNCTION graphile_worker._cancel_job(job_id bigint, cancelled_by text)
RETURNS graphile_worker._private_jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_job graphile_worker._private_jobs;
begin
  if job_id is null then
    raise exception 'job id must not be null' using errcode = '22004';
  end if;
  update graphile_worker._private_jobs as jobs
    set attempts = greatest(jobs.attempts, jobs.max_attempts),
        last_error = 'cancelled by ' operator(pg_catalog.||) cancelled_by,
        revision = jobs.revision operator(pg_catalog.+) 1,
        updated_at = pg_catalog.now()
    where jobs.id operator(pg_catalog.=) _cancel_job.job_id
    returning * into v_job;
  if not found then
    raise exception 'job % does not exist', job_id using errcode = '42704';
  end if;
  if v_job.locked_by is not null then
    perform graphile_worker._signal_job_cancel(job_id, v_job.locked_by, cancelled_by);
  else
    -- wait_for_job callers learn it at commit (a running job: from its worker)
    perform graphile_worker._job_finished_at_commit(job_id, 'cancelled');
  end if;
  return v_job;
end;
$$;

CREATE FUNCTION graphile_worker.pause_queue(queue_name text)
RETURNS void LANGUAGE C SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_control';
CREATE FUNCTION graphile_worker.resume_queue(queue_name text)
RETURNS void LANGUAGE C SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_control';
CREATE FUNCTION graphile_worker.pause_task(identifier text)
RETURNS void LANGUAGE C SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_control';
CREATE FUNCTION graphile_worker.resume_task(identifier text)
RETURNS void LANGUAGE C SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_control';
CREATE FUNCTION graphile_worker.cancel_job(job_id bigint)
RETURNS graphile_worker._private_jobs LANGUAGE C SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_control';

/* _crontab_line_id(line): the id of the one crontab entry of line. */
CREATE FUNCTION graphile_worker._crontab_line_id(line text)
RETURNS text
LANGUAGE C
STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_crontab_line_id';

/*
 * set_crontab_entry(line): the entry of line replaces the entry with the
 * same id, on its line, or is added at the end; the whole crontab is then
 * checked and stored as set_crontab does.  Returns the number of entries.
 */
CREATE FUNCTION graphile_worker.set_crontab_entry(line text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_id text;
  v_text text;
  v_lines text[];
  v_line integer;
begin
  if line is null then
    raise exception 'crontab line must not be null' using errcode = '22004';
  end if;
  v_id := graphile_worker._crontab_line_id(line);
  select c.crontab into v_text from graphile_worker._private_crontab as c for update;
  v_lines := pg_catalog.string_to_array(coalesce(v_text, ''), E'\n');
  select e.line into v_line from graphile_worker._crontab_entries() as e
    where e.id operator(pg_catalog.=) v_id;
  if found then
    v_lines[v_line] := set_crontab_entry.line;
  else
    v_lines := v_lines operator(pg_catalog.||) set_crontab_entry.line;
  end if;
  return graphile_worker.set_crontab(pg_catalog.array_to_string(v_lines, E'\n'));
end;
$$;

/* remove_crontab_entry(identifier): deletes the entry's line; returns the number left. */
CREATE FUNCTION graphile_worker.remove_crontab_entry(identifier text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_text text;
  v_lines text[];
  v_line integer;
begin
  if identifier is null then
    raise exception 'crontab entry id must not be null' using errcode = '22004';
  end if;
  select c.crontab into v_text from graphile_worker._private_crontab as c for update;
  select e.line into v_line from graphile_worker._crontab_entries() as e
    where e.id operator(pg_catalog.=) identifier;
  if not found then
    raise exception 'crontab entry "%" does not exist', identifier using errcode = '42704';
  end if;
  v_lines := pg_catalog.string_to_array(v_text, E'\n');
  v_lines := v_lines[1:v_line - 1] operator(pg_catalog.||) v_lines[v_line + 1:];
  return graphile_worker.set_crontab(pg_catalog.array_to_string(v_lines, E'\n'));
end;
$$;

/*
 * run_crontab_now(identifier): adds the entry's job now, with _cron.ts =
 * now and backfilled false, as the ticker would, but leaves its schedule
 * (_private_known_crontabs) alone.  Returns the job.
 */
CREATE FUNCTION graphile_worker.run_crontab_now(identifier text)
RETURNS graphile_worker._private_jobs
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_entry record;
  v_now timestamp with time zone := pg_catalog.now();
begin
  if identifier is null then
    raise exception 'crontab entry id must not be null' using errcode = '22004';
  end if;
  select * into v_entry from graphile_worker._crontab_entries() as e
    where e.id operator(pg_catalog.=) identifier;
  if not found then
    raise exception 'crontab entry "%" does not exist', identifier using errcode = '42704';
  end if;
  return graphile_worker.add_job(
    v_entry.task_identifier,
    (coalesce(v_entry.payload::pg_catalog.jsonb, '{}'::pg_catalog.jsonb)
      operator(pg_catalog.||) pg_catalog.jsonb_build_object('_cron',
        pg_catalog.jsonb_build_object(
          'ts', pg_catalog.to_char(pg_catalog.timezone('UTC', v_now),
                                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
          'backfilled', false)))::pg_catalog.json,
    v_entry.queue_name, v_now, v_entry.max_attempts, v_entry.job_key,
    v_entry.priority, null, coalesce(v_entry.job_key_mode, 'replace'));
end;
$$;

CREATE VIEW graphile_worker.queues AS
	SELECT q.queue_name,
		p.name IS NOT NULL AS paused,
		p.paused_at,
		p.paused_by,
		COALESCE(l.max_running, 1) AS concurrency,
		l.set_at AS concurrency_set_at,
		l.set_by AS concurrency_set_by
	FROM graphile_worker._private_job_queues AS q
		LEFT JOIN graphile_worker._private_pauses AS p
			ON p.kind OPERATOR(pg_catalog.=) 'queue' AND p.name OPERATOR(pg_catalog.=) q.queue_name
		LEFT JOIN graphile_worker._private_queue_limits AS l
			ON l.queue_name OPERATOR(pg_catalog.=) q.queue_name;

CREATE VIEW graphile_worker.tasks AS
	SELECT t.identifier AS task_identifier,
		p.name IS NOT NULL AS paused,
		p.paused_at,
		p.paused_by
	FROM graphile_worker._private_tasks AS t
		LEFT JOIN graphile_worker._private_pauses AS p
			ON p.kind OPERATOR(pg_catalog.=) 'task' AND p.name OPERATOR(pg_catalog.=) t.identifier;

/*
 * grant_control(role) / revoke_control(role): the control functions and
 * views, and USAGE on the schema, to or from role.
 */
CREATE FUNCTION graphile_worker.grant_control(role_name name)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
begin
  if role_name is null then
    raise exception 'role name must not be null' using errcode = '22004';
  end if;
  execute pg_catalog.format('GRANT USAGE ON SCHEMA graphile_worker TO %I', role_name);
  execute pg_catalog.format('GRANT EXECUTE ON FUNCTION graphile_worker.pause_queue(text),'
    ' graphile_worker.resume_queue(text), graphile_worker.pause_task(text),'
    ' graphile_worker.resume_task(text), graphile_worker.cancel_job(bigint),'
    ' graphile_worker.run_crontab_now(text), graphile_worker.set_crontab_entry(text),'
    ' graphile_worker.remove_crontab_entry(text),'
    ' graphile_worker.set_queue_concurrency(text, integer) TO %I', role_name);
  execute pg_catalog.format('GRANT SELECT ON graphile_worker.queues, graphile_worker.tasks TO %I',
    role_name);
end;
$$;

CREATE FUNCTION graphile_worker.revoke_control(role_name name)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
begin
  if role_name is null then
    raise exception 'role name must not be null' using errcode = '22004';
  end if;
  execute pg_catalog.format('REVOKE EXECUTE ON FUNCTION graphile_worker.pause_queue(text),'
    ' graphile_worker.resume_queue(text), graphile_worker.pause_task(text),'
    ' graphile_worker.resume_task(text), graphile_worker.cancel_job(bigint),'
    ' graphile_worker.run_crontab_now(text), graphile_worker.set_crontab_entry(text),'
    ' graphile_worker.remove_crontab_entry(text),'
    ' graphile_worker.set_queue_concurrency(text, integer) FROM %I', role_name);
  execute pg_catalog.format('REVOKE SELECT ON graphile_worker.queues, graphile_worker.tasks FROM %I',
    role_name);
end;
$$;

REVOKE ALL ON FUNCTION graphile_worker._pause_queue(text, text), graphile_worker._resume_queue(text, text),
	graphile_worker._pause_task(text, text), graphile_worker._resume_task(text, text),
	graphile_worker._signal_job_cancel(bigint, text, text), graphile_worker._cancel_job(bigint, text),
	graphile_worker.pause_queue(text), graphile_worker.resume_queue(text),
	graphile_worker.pause_task(text), graphile_worker.resume_task(text),
	graphile_worker.cancel_job(bigint), graphile_worker._crontab_line_id(text),
	graphile_worker.set_crontab_entry(text), graphile_worker.remove_crontab_entry(text),
	graphile_worker.run_crontab_now(text), graphile_worker.grant_control(name),
	graphile_worker.revoke_control(name),
	graphile_worker._set_queue_concurrency(text, integer, text),
	graphile_worker.set_queue_concurrency(text, integer) FROM PUBLIC;

COMMENT ON FUNCTION graphile_worker.pause_queue(text) IS
	'No new job of this named queue starts (ours or Node''s); running ones finish; survives restarts';
COMMENT ON FUNCTION graphile_worker.resume_queue(text) IS 'Undoes pause_queue';
COMMENT ON FUNCTION graphile_worker.pause_task(text) IS
	'Our workers start no new job of this task; running ones finish; survives restarts';
COMMENT ON FUNCTION graphile_worker.resume_task(text) IS 'Undoes pause_task';
COMMENT ON FUNCTION graphile_worker.set_queue_concurrency(text, integer) IS
	'At most n jobs of this named queue run at once in our workers (1: the serial queue, shared with Node workers)';
COMMENT ON FUNCTION graphile_worker.cancel_job(bigint) IS
	'Permanently fails the job with last_error ''cancelled by <role>''; a running handler of ours is cancelled within a second';
COMMENT ON FUNCTION graphile_worker.set_crontab_entry(text) IS
	'Replaces the crontab entry with the same id, or adds it';
COMMENT ON FUNCTION graphile_worker.remove_crontab_entry(text) IS 'Removes the crontab entry with this id';
COMMENT ON FUNCTION graphile_worker.run_crontab_now(text) IS
	'Adds the crontab entry''s job now, without changing its schedule';
COMMENT ON FUNCTION graphile_worker.grant_control(name) IS
	'Grants the control functions and the queues and tasks views to a role';
COMMENT ON FUNCTION graphile_worker.revoke_control(name) IS 'Revokes what grant_control granted';
COMMENT ON VIEW graphile_worker.queues IS
	'Named queues: paused or not, since when, by whom; how many of its jobs may run at once';
COMMENT ON VIEW graphile_worker.tasks IS 'Tasks: paused or not, since when, by whom';

/* ---------------------------------------------------------------------
 * Node and Rust workers as an application role.
 *
 * The _private_* tables have row-level security enabled without policies
 * (as Node creates them), so a role that does not own them sees no row and
 * may insert none, whatever its grants: a Node worker connected as such a
 * role fails with "new row violates row-level security policy for table
 * _private_tasks".  grant_worker(role) grants what a graphile-worker (Node)
 * or graphile_worker (Rust) worker process and its WorkerUtils use, and
 * gives the role a permissive policy on each table it uses:
 *
 *   schema graphile_worker     USAGE
 *   migrations                 SELECT        (the version check at start)
 *   _private_tasks             SELECT, INSERT (task registration)
 *   _private_jobs              SELECT, UPDATE, DELETE (claim, fail, complete,
 *                              give back, the 4-hour sweep)
 *   _private_job_queues        SELECT, UPDATE (queue locks)
 *   _private_known_crontabs    SELECT, INSERT, UPDATE (cron)
 *   _private_workers           SELECT, INSERT, UPDATE, DELETE (Rust heartbeats)
 *   add_job, add_jobs, remove_job, complete_jobs, permanently_fail_jobs,
 *   reschedule_jobs, force_unlock_workers   EXECUTE
 *
 * The admin functions only do what those table rights allow anyway.  Not
 * granted: DELETE on tasks and queues (graphile-worker --cleanup), the
 * crontab, the control functions, our _private_crontab and _private_pauses.
 * The policies are named "worker_<role>" (or "worker_<role oid>" when that
 * is longer than an identifier may be); revoke_worker finds them by role.
 * ---------------------------------------------------------------------
 */

/* _worker_role(role_name): the role's oid, or a clear error. */
CREATE FUNCTION graphile_worker._worker_role(role_name name)
RETURNS oid
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_oid oid;
begin
  if role_name is null then
    raise exception 'role name must not be null' using errcode = '22004';
  end if;
  if role_name operator(pg_catalog.=) 'public' then
    raise exception 'worker rights cannot be granted to PUBLIC'
      using errcode = '22023',
            hint = 'Create a role for the workers and name it instead.';
  end if;
  select r.oid into v_oid from pg_catalog.pg_roles as r
    where r.rolname operator(pg_catalog.=) role_name;
  if not found then
    raise exception 'role "%" does not exist', role_name using errcode = '42704';
  end if;
  return v_oid;
end;
$$;

/* The tables a worker uses, each with the privileges it needs there. */
CREATE FUNCTION graphile_worker._worker_tables(OUT table_name name, OUT privileges text)
RETURNS SETOF record
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  values ('migrations'::name, 'SELECT'),
         ('_private_tasks', 'SELECT, INSERT'),
         ('_private_jobs', 'SELECT, UPDATE, DELETE'),
         ('_private_job_queues', 'SELECT, UPDATE'),
         ('_private_known_crontabs', 'SELECT, INSERT, UPDATE'),
         ('_private_workers', 'SELECT, INSERT, UPDATE, DELETE');
$$;

/* _worker_policies(role): the policies grant_worker made for role. */
CREATE FUNCTION graphile_worker._worker_policies(role_oid oid,
	OUT table_name name, OUT policy_name name)
RETURNS SETOF record
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  select c.relname, p.polname
    from pg_catalog.pg_policy as p
    join pg_catalog.pg_class as c on c.oid operator(pg_catalog.=) p.polrelid
   where c.relnamespace operator(pg_catalog.=) 'graphile_worker'::pg_catalog.regnamespace
     and p.polroles operator(pg_catalog.=) array[role_oid]
     and p.polname operator(pg_catalog.~~) 'worker\_%';
$$;

CREATE FUNCTION graphile_worker.grant_worker(role_name name)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_role oid := graphile_worker._worker_role(role_name);
  v_policy text;
  v_table record;
begin
  v_policy := 'worker_' operator(pg_catalog.||) role_name;
  if pg_catalog.octet_length(v_policy) > 63 then
    v_policy := 'worker_' operator(pg_catalog.||) v_role::text;
  end if;
  execute pg_catalog.format('GRANT USAGE ON SCHEMA graphile_worker TO %I', role_name);
  for v_table in select * from graphile_worker._worker_tables() loop
    execute pg_catalog.format('GRANT %s ON graphile_worker.%I TO %I',
      v_table.privileges, v_table.table_name, role_name);
    if v_table.table_name operator(pg_catalog.<>) 'migrations'
       and not exists (select from graphile_worker._worker_policies(v_role) as p
                        where p.table_name operator(pg_catalog.=) v_table.table_name) then
      execute pg_catalog.format('CREATE POLICY %I ON graphile_worker.%I AS PERMISSIVE'
        ' FOR ALL TO %I USING (true) WITH CHECK (true)',
        v_policy, v_table.table_name, role_name);
    end if;
  end loop;
  execute pg_catalog.format('GRANT EXECUTE ON FUNCTION'
    ' graphile_worker.add_job(text, json, text, timestamp with time zone, integer, text, integer, text[], text),'
    ' graphile_worker.add_jobs(graphile_worker.job_spec[], boolean),'
    ' graphile_worker.remove_job(text),'
    ' graphile_worker.complete_jobs(bigint[]),'
    ' graphile_worker.permanently_fail_jobs(bigint[], text),'
    ' graphile_worker.reschedule_jobs(bigint[], timestamp with time zone, integer, integer, integer),'
    ' graphile_worker.force_unlock_workers(text[]) TO %I', role_name);
end;
$$;

/* revoke_worker(role): undoes grant_worker but for USAGE on the schema. */
CREATE FUNCTION graphile_worker.revoke_worker(role_name name)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_role oid := graphile_worker._worker_role(role_name);
  v_table record;
  v_policy record;
begin
  for v_policy in select * from graphile_worker._worker_policies(v_role) loop
    execute pg_catalog.format('DROP POLICY %I ON graphile_worker.%I',
      v_policy.policy_name, v_policy.table_name);
  end loop;
  for v_table in select * from graphile_worker._worker_tables() loop
    execute pg_catalog.format('REVOKE %s ON graphile_worker.%I FROM %I',
      v_table.privileges, v_table.table_name, role_name);
  end loop;
  execute pg_catalog.format('REVOKE EXECUTE ON FUNCTION'
    ' graphile_worker.add_job(text, json, text, timestamp with time zone, integer, text, integer, text[], text),'
    ' graphile_worker.add_jobs(graphile_worker.job_spec[], boolean),'
    ' graphile_worker.remove_job(text),'
    ' graphile_worker.complete_jobs(bigint[]),'
    ' graphile_worker.permanently_fail_jobs(bigint[], text),'
    ' graphile_worker.reschedule_jobs(bigint[], timestamp with time zone, integer, integer, integer),'
    ' graphile_worker.force_unlock_workers(text[]) FROM %I', role_name);
end;
$$;

REVOKE ALL ON FUNCTION graphile_worker._worker_role(name), graphile_worker._worker_tables(),
	graphile_worker._worker_policies(oid), graphile_worker.grant_worker(name),
	graphile_worker.revoke_worker(name) FROM PUBLIC;

COMMENT ON FUNCTION graphile_worker.grant_worker(name) IS
	'Grants a role what a Node or Rust Graphile Worker process needs: table rights, row-level security policies, the job functions';
COMMENT ON FUNCTION graphile_worker.revoke_worker(name) IS
	'Revokes what grant_worker granted (but USAGE on the schema) and drops its policies';

/* ---------------------------------------------------------------------
 * Adopting the schema of graphile-worker 0.18 (Node migration 20).
 *
 * CREATE EXTENSION graphile_worker in a database where the Node package
 * already created schema graphile_worker (adopt.c): the utility hook locks
 * the Node tables and renames that schema to graphile_worker_adopting_<oid>,
 * the install and update scripts create the extension's schema as usual,
 * and then _adopt_node_schema(old schema) checks that the old schema is
 * exactly what graphile-worker 0.18 creates, moves its rows in (ids kept),
 * sets the identity sequences where the old ones were, keeps the ledger's
 * timestamps, grants again what had been granted on the old objects, and
 * drops the old schema.  Any error rolls the whole CREATE EXTENSION back:
 * the old schema is left as it was.
 *
 * Why move the rows instead of making the existing objects members of the
 * extension: the scripts cannot skip their own CREATE statements, the
 * objects they create are the members (with their ACLs in pg_init_privs,
 * their dump configuration, and comments), and the result is then the
 * same as a fresh install whatever path PostgreSQL took to the version,
 * which a test compares catalog entry by catalog entry.  The cost is a
 * copy of the queue while its tables are locked.
 * ---------------------------------------------------------------------
 */

/*
 * _node_shape(nsp): what the Graphile Worker objects of schema nsp look like,
 * one fact per line, names written without their schema; object is the
 * name of the table, view, type, sequence or function the fact is about.
 * Two schemas made by graphile-worker 0.18 give the same lines.
 */
CREATE FUNCTION graphile_worker._node_shape(nsp oid, OUT object name, OUT line text)
RETURNS SETOF record
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  with s as (
    select pg_catalog.quote_ident(n.nspname) operator(pg_catalog.||) '.' as prefix
      from pg_catalog.pg_namespace as n where n.oid operator(pg_catalog.=) nsp
  ), rels as (
    select c.* from pg_catalog.pg_class as c
     where c.relnamespace operator(pg_catalog.=) nsp
  )
  -- everything that lives in the schema
  select coalesce(c.relname, t.typname, p.proname, ''),
         'object ' operator(pg_catalog.||)
         pg_catalog.replace(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), s.prefix, '')
    from pg_catalog.pg_depend as d cross join s
    left join pg_catalog.pg_class as c
      on d.classid operator(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
     and c.oid operator(pg_catalog.=) d.objid
    left join pg_catalog.pg_type as t
      on d.classid operator(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
     and t.oid operator(pg_catalog.=) d.objid
    left join pg_catalog.pg_proc as p
      on d.classid operator(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
     and p.oid operator(pg_catalog.=) d.objid
   where d.refclassid operator(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
     and d.refobjid operator(pg_catalog.=) nsp
     and d.deptype operator(pg_catalog.=) 'n'
  union all
  select c.relname,
         pg_catalog.format('relation %s kind %s persistence %s rls %s force %s options %s',
           c.relname, c.relkind, c.relpersistence, c.relrowsecurity,
           c.relforcerowsecurity, coalesce(c.reloptions::text, '-'))
    from rels as c
   where c.relkind operator(pg_catalog.<>) 'i'
  union all
  select c.relname,
         pg_catalog.format('column %s.%s %s %s%s%s%s%s%s', c.relname, a.attnum, a.attname,
           pg_catalog.format_type(a.atttypid, a.atttypmod),
           case when a.attcollation operator(pg_catalog.<>) ty.typcollation
                then ' collate ' operator(pg_catalog.||) a.attcollation::pg_catalog.regcollation::text else '' end,
           case when a.attnotnull then ' not null' else '' end,
           coalesce(' default ' operator(pg_catalog.||)
                    pg_catalog.replace(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), s.prefix, ''), ''),
           case a.attgenerated when 's' then ' stored' else '' end,
           case a.attidentity when 'a' then ' identity always'
                              when 'd' then ' identity default' else '' end)
    from rels as c cross join s
    join pg_catalog.pg_attribute as a on a.attrelid operator(pg_catalog.=) c.oid
    join pg_catalog.pg_type as ty on ty.oid operator(pg_catalog.=) a.atttypid
    left join pg_catalog.pg_attrdef as ad
      on ad.adrelid operator(pg_catalog.=) a.attrelid and ad.adnum operator(pg_catalog.=) a.attnum
   where a.attnum operator(pg_catalog.>) 0 and not a.attisdropped
     and c.relkind operator(pg_catalog.<>) 'i'
  union all
  -- NOT NULL is a column's fact (above): the NOT NULL constraints that
  -- PostgreSQL 18 adds to pg_constraint are named after the table they were
  -- created in, which graphile-worker renamed since
  select c.relname,
         pg_catalog.format('constraint %s %s %s', c.relname, con.conname,
           pg_catalog.replace(pg_catalog.pg_get_constraintdef(con.oid), s.prefix, ''))
    from rels as c cross join s
    join pg_catalog.pg_constraint as con on con.conrelid operator(pg_catalog.=) c.oid
   where con.contype operator(pg_catalog.<>) 'n'
  union all
  select c.relname,
         pg_catalog.format('index %s %s%s', c.relname,
           pg_catalog.replace(pg_catalog.pg_get_indexdef(i.indexrelid), s.prefix, ''),
           case when i.indisvalid then '' else ' invalid' end)
    from rels as c cross join s
    join pg_catalog.pg_index as i on i.indrelid operator(pg_catalog.=) c.oid
  union all
  select c.relname,
         pg_catalog.format('sequence %s %s start %s increment %s min %s max %s cache %s cycle %s owned by %s',
           c.relname, pg_catalog.format_type(q.seqtypid, null), q.seqstart, q.seqincrement,
           q.seqmin, q.seqmax, q.seqcache, q.seqcycle,
           coalesce((select tc.relname operator(pg_catalog.||) '.' operator(pg_catalog.||) ta.attname
                       from pg_catalog.pg_depend as dep
                       join pg_catalog.pg_class as tc on tc.oid operator(pg_catalog.=) dep.refobjid
                       join pg_catalog.pg_attribute as ta
                         on ta.attrelid operator(pg_catalog.=) dep.refobjid
                        and ta.attnum operator(pg_catalog.=) dep.refobjsubid
                      where dep.classid operator(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                        and dep.objid operator(pg_catalog.=) c.oid
                        and dep.refclassid operator(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                        and dep.deptype operator(pg_catalog.=) any (array['a', 'i']::"char"[])), '-'))
    from rels as c
    join pg_catalog.pg_sequence as q on q.seqrelid operator(pg_catalog.=) c.oid
  union all
  select c.relname,
         pg_catalog.format('trigger %s %s', c.relname,
           pg_catalog.replace(pg_catalog.pg_get_triggerdef(tg.oid), s.prefix, ''))
    from rels as c cross join s
    join pg_catalog.pg_trigger as tg on tg.tgrelid operator(pg_catalog.=) c.oid
   where not tg.tgisinternal
  union all
  select c.relname,
         pg_catalog.format('policy %s %s %s %s using %s check %s', c.relname, pol.polname,
           pol.polcmd, pol.polpermissive,
           coalesce(pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), '-'),
           coalesce(pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), '-'))
    from rels as c
    join pg_catalog.pg_policy as pol on pol.polrelid operator(pg_catalog.=) c.oid
  union all
  select c.relname,
         pg_catalog.format('rule %s %s', c.relname,
           pg_catalog.replace(pg_catalog.pg_get_ruledef(r.oid), s.prefix, ''))
    from rels as c cross join s
    join pg_catalog.pg_rewrite as r on r.ev_class operator(pg_catalog.=) c.oid
   where r.rulename operator(pg_catalog.<>) '_RETURN'
  union all
  select c.relname,
         pg_catalog.format('view %s %s', c.relname,
           pg_catalog.replace(pg_catalog.pg_get_viewdef(c.oid), s.prefix, ''))
    from rels as c cross join s
   where c.relkind operator(pg_catalog.=) any (array['v', 'm']::"char"[])
  union all
  select p.proname,
         pg_catalog.format('function %s(%s) returns %s kind %s strict %s volatility %s',
           p.proname,
           pg_catalog.replace(pg_catalog.pg_get_function_arguments(p.oid), s.prefix, ''),
           pg_catalog.replace(pg_catalog.pg_get_function_result(p.oid), s.prefix, ''),
           p.prokind, p.proisstrict, p.provolatile)
    from pg_catalog.pg_proc as p cross join s
   where p.pronamespace operator(pg_catalog.=) nsp;
$$;

/*
 * _node_schema_dependents(nsp): the objects outside schema nsp (and not
 * parts of its tables, such as their constraints and defaults) that depend
 * on it or on an object in it: views (named for themselves, not their
 * rules), functions taking its row types, triggers, policies, foreign
 * keys, publications, extensions installed in it.  Dropping the old schema
 * would drop them.
 */
CREATE FUNCTION graphile_worker._node_schema_dependents(nsp oid)
RETURNS SETOF text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  with rels as (
    select c.oid from pg_catalog.pg_class as c where c.relnamespace operator(pg_catalog.=) nsp
  ), types as (
    select t.oid from pg_catalog.pg_type as t where t.typnamespace operator(pg_catalog.=) nsp
  ), procs as (
    select p.oid from pg_catalog.pg_proc as p where p.pronamespace operator(pg_catalog.=) nsp
  )
  select distinct
         case when d.classid operator(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
              then (select pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, r.ev_class, 0)
                      from pg_catalog.pg_rewrite as r where r.oid operator(pg_catalog.=) d.objid)
              else pg_catalog.pg_describe_object(d.classid, d.objid, 0) end
    from pg_catalog.pg_depend as d
   where d.deptype operator(pg_catalog.=) any (array['n', 'a']::"char"[])
     and ((d.refclassid operator(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
           and d.refobjid operator(pg_catalog.=) nsp)
       or (d.refclassid operator(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           and d.refobjid in (select oid from rels))
       or (d.refclassid operator(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
           and d.refobjid in (select oid from types))
       or (d.refclassid operator(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           and d.refobjid in (select oid from procs)))
     and not ((d.classid operator(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               and d.objid in (select oid from rels))
           or (d.classid operator(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
               and d.objid in (select oid from types))
           or (d.classid operator(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
               and d.objid in (select oid from procs))
           or (d.classid operator(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass
               and d.objid in (select con.oid from pg_catalog.pg_constraint as con
                                where con.conrelid in (select oid from rels)
                                   or con.contypid in (select oid from types)))
           or (d.classid operator(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass
               and d.objid in (select ad.oid from pg_catalog.pg_attrdef as ad
                                where ad.adrelid in (select oid from rels)))
           or (d.classid operator(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
               and d.objid in (select r.oid from pg_catalog.pg_rewrite as r
                                where r.ev_class in (select oid from rels)
                                  and r.rulename operator(pg_catalog.=) '_RETURN')))
   order by 1;
$$;

/*
 * _adopt_node_schema(node_schema): takes the queue of node_schema, a schema
 * that graphile-worker 0.18 created (renamed by adopt.c), into this
 * extension's empty tables, then drops node_schema.  Refuses, changing
 * nothing, unless node_schema is exactly migration 20 of graphile-worker
 * and nothing outside it depends on it.
 */
CREATE FUNCTION graphile_worker._adopt_node_schema(node_schema oid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_old name;
  v_node_objects name[] := array['_private_jobs', '_private_job_queues', '_private_tasks',
    '_private_known_crontabs', 'migrations', 'jobs', 'job_spec', 'jobs_id_seq1',
    'job_queues_id_seq', 'tasks_id_seq', 'add_job', 'add_jobs', 'remove_job',
    'complete_jobs', 'permanently_fail_jobs', 'reschedule_jobs', 'force_unlock_workers'];
  v_ids integer[];
  v_breaking integer[];
  v_diff text[];
  v_owner oid;
  v_counts bigint[];
  v_grant record;
  v_grants integer := 0;
  v_seq name;
  v_messages text;
begin
  select n.nspname into v_old from pg_catalog.pg_namespace as n
   where n.oid operator(pg_catalog.=) node_schema;
  if not found then
    raise exception 'schema with OID % does not exist', node_schema using errcode = '3F000';
  end if;
  if exists (select from graphile_worker._private_jobs)
     or exists (select from graphile_worker._private_job_queues)
     or exists (select from graphile_worker._private_tasks)
     or exists (select from graphile_worker._private_known_crontabs) then
    raise exception 'cannot adopt schema "%": the extension''s queue is not empty', v_old
      using errcode = '55000',
            hint = 'A graphile-worker schema is adopted only by the CREATE EXTENSION that creates the extension.';
  end if;

  -- Graphile Worker's own ledger says which migration the schema is at.
  if (select pg_catalog.array_agg(a.attname::text order by a.attnum)
        from pg_catalog.pg_attribute as a
       where a.attrelid operator(pg_catalog.=) pg_catalog.to_regclass(
               pg_catalog.quote_ident(v_old) operator(pg_catalog.||) '.migrations')
         and a.attnum operator(pg_catalog.>) 0 and not a.attisdropped)
     is distinct from array['id', 'ts', 'breaking'] then
    raise exception 'schema "graphile_worker" already exists and was not created by graphile-worker 0.18'
      using errcode = '42P06',
            detail = 'It has no table migrations(id, ts, breaking), Graphile Worker''s migration ledger.',
            hint = 'Rename or drop that schema, then create the extension.';
  end if;
  execute pg_catalog.format('select pg_catalog.array_agg(id order by id),'
    ' pg_catalog.array_agg(id order by id) filter (where breaking) from %I.migrations', v_old)
    into v_ids, v_breaking;
  if coalesce(v_ids[pg_catalog.array_upper(v_ids, 1)], 0) operator(pg_catalog.<) 20 then
    raise exception 'schema "graphile_worker" is at graphile-worker migration %, not 20',
        coalesce(v_ids[pg_catalog.array_upper(v_ids, 1)], 0)
      using errcode = '55000',
            detail = 'The extension adopts the schema of graphile-worker 0.18 (migration 20) only.',
            hint = 'Run graphile-worker 0.18 against this database once (e.g. graphile-worker --schema-only) to migrate it, then create the extension.';
  end if;
  if v_ids[pg_catalog.array_upper(v_ids, 1)] operator(pg_catalog.>) 20 then
    raise exception 'schema "graphile_worker" is at graphile-worker migration %, not 20',
        v_ids[pg_catalog.array_upper(v_ids, 1)]
      using errcode = '55000',
            detail = 'A graphile-worker newer than 0.18 migrated it; this version of the extension knows migrations 1 to 20.',
            hint = 'Use a version of the extension that supports that migration.';
  end if;
  if v_ids is distinct from (select pg_catalog.array_agg(i) from pg_catalog.generate_series(1, 20) as i)
     or v_breaking is distinct from '{1,3,11,13,14,16,19}'::integer[] then
    raise exception 'schema "graphile_worker" has a migration ledger that graphile-worker did not write'
      using errcode = '55000',
            detail = pg_catalog.format('Its migrations are %s, the breaking ones %s; graphile-worker 0.18 writes 1 to 20, breaking {1,3,11,13,14,16,19}.',
                                       v_ids, coalesce(v_breaking::text, '{}')),
            hint = 'Restore the table migrations as graphile-worker wrote it, then create the extension.';
  end if;

  -- The objects, exactly as graphile-worker 0.18 creates them.
  select pg_catalog.array_agg(l order by l) into v_diff from (
    (select 'not in graphile-worker 0.18: ' operator(pg_catalog.||) o.line as l
       from graphile_worker._node_shape(node_schema) as o
     except
     select 'not in graphile-worker 0.18: ' operator(pg_catalog.||) f.line
       from graphile_worker._node_shape('graphile_worker'::pg_catalog.regnamespace) as f
      where f.object operator(pg_catalog.=) any (v_node_objects))
    union all
    (select 'missing: ' operator(pg_catalog.||) f.line
       from graphile_worker._node_shape('graphile_worker'::pg_catalog.regnamespace) as f
      where f.object operator(pg_catalog.=) any (v_node_objects)
     except
     select 'missing: ' operator(pg_catalog.||) o.line
       from graphile_worker._node_shape(node_schema) as o)) as diff;
  if v_diff is not null then
    raise exception 'schema "graphile_worker" differs from the one graphile-worker 0.18 creates'
      using errcode = '55000',
            detail = pg_catalog.array_to_string(v_diff[1:20], E'\n')
                     operator(pg_catalog.||) case when pg_catalog.cardinality(v_diff) > 20
                       then pg_catalog.format(E'\n(and %s more differences)', pg_catalog.cardinality(v_diff) - 20)
                       else '' end,
            hint = 'Undo those changes to the schema (drop what was added, restore what was changed), then create the extension.';
  end if;

  select pg_catalog.array_agg(d) into v_diff
    from graphile_worker._node_schema_dependents(node_schema) as d;
  if v_diff is not null then
    raise exception 'objects outside schema "graphile_worker" depend on it'
      using errcode = '2BP01',
            detail = pg_catalog.replace(pg_catalog.array_to_string(v_diff[1:20], E'\n'),
                                        pg_catalog.quote_ident(v_old) operator(pg_catalog.||) '.',
                                        'graphile_worker.'),
            hint = 'Drop them, create the extension, then create them again.';
  end if;

  -- The rows, with their ids; the identity sequences where they were.
  execute pg_catalog.format(
    'lock table %1$I._private_jobs, %1$I._private_job_queues, %1$I._private_tasks,'
    ' %1$I._private_known_crontabs, %1$I.migrations in access exclusive mode', v_old);
  execute pg_catalog.format($sql$
    with q as (
      insert into graphile_worker._private_job_queues (id, queue_name, locked_at, locked_by)
        overriding system value
        select id, queue_name, locked_at, locked_by from %1$I._private_job_queues
        returning 1
    ), t as (
      insert into graphile_worker._private_tasks (id, identifier)
        overriding system value
        select id, identifier from %1$I._private_tasks
        returning 1
    ), j as (
      insert into graphile_worker._private_jobs (id, job_queue_id, task_id, payload, priority,
          run_at, attempts, max_attempts, last_error, created_at, updated_at, key, locked_at,
          locked_by, revision, flags)
        overriding system value
        select id, job_queue_id, task_id, payload, priority, run_at, attempts, max_attempts,
          last_error, created_at, updated_at, key, locked_at, locked_by, revision, flags
          from %1$I._private_jobs
        returning 1
    ), k as (
      insert into graphile_worker._private_known_crontabs (identifier, known_since, last_execution)
        select identifier, known_since, last_execution from %1$I._private_known_crontabs
        returning 1
    ), m as (
      update graphile_worker.migrations as m set ts = o.ts
        from %1$I.migrations as o where o.id operator(pg_catalog.=) m.id
    )
    select array[(select pg_catalog.count(*) from j), (select pg_catalog.count(*) from q),
                 (select pg_catalog.count(*) from t), (select pg_catalog.count(*) from k)]
    $sql$, v_old) into v_counts;
  foreach v_seq in array array['jobs_id_seq1', 'job_queues_id_seq', 'tasks_id_seq']::name[] loop
    execute pg_catalog.format('select pg_catalog.setval(%L, s.last_value, s.is_called) from %I.%I as s',
      'graphile_worker.' operator(pg_catalog.||) v_seq, v_old, v_seq);
  end loop;

  -- What was granted on the old objects is granted on the new ones.
  for v_grant in
    select pg_catalog.format('GRANT %s%s ON %s TO %s%s', a.privilege_type,
             coalesce(' (' operator(pg_catalog.||) pg_catalog.quote_ident(o.column_name) operator(pg_catalog.||) ')', ''),
             o.target,
             case when a.grantee operator(pg_catalog.=) 0 then 'PUBLIC'
                  else pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) end,
             case when a.is_grantable then ' WITH GRANT OPTION' else '' end) as stmt
      from (
        select 'SCHEMA graphile_worker' as target, null::name as column_name,
               n.nspacl as acl, n.nspowner as owner
          from pg_catalog.pg_namespace as n where n.oid operator(pg_catalog.=) node_schema
        union all
        select case c.relkind when 'S' then 'SEQUENCE ' else 'TABLE ' end
               operator(pg_catalog.||) 'graphile_worker.' operator(pg_catalog.||) pg_catalog.quote_ident(c.relname),
               null, c.relacl, c.relowner
          from pg_catalog.pg_class as c
         where c.relnamespace operator(pg_catalog.=) node_schema
           and c.relkind operator(pg_catalog.<>) all (array['i', 'c']::"char"[])
        union all
        select 'TABLE graphile_worker.' operator(pg_catalog.||) pg_catalog.quote_ident(c.relname),
               a.attname, a.attacl, c.relowner
          from pg_catalog.pg_class as c
          join pg_catalog.pg_attribute as a on a.attrelid operator(pg_catalog.=) c.oid
         where c.relnamespace operator(pg_catalog.=) node_schema and a.attacl is not null
        union all
        select 'FUNCTION graphile_worker.' operator(pg_catalog.||) pg_catalog.quote_ident(p.proname)
               operator(pg_catalog.||) '(' operator(pg_catalog.||)
               pg_catalog.replace(pg_catalog.pg_get_function_identity_arguments(p.oid),
                                  pg_catalog.quote_ident(v_old) operator(pg_catalog.||) '.', 'graphile_worker.')
               operator(pg_catalog.||) ')',
               null, p.proacl, p.proowner
          from pg_catalog.pg_proc as p where p.pronamespace operator(pg_catalog.=) node_schema
        union all
        select 'TYPE graphile_worker.' operator(pg_catalog.||) pg_catalog.quote_ident(t.typname),
               null, t.typacl, t.typowner
          from pg_catalog.pg_type as t
         where t.typnamespace operator(pg_catalog.=) node_schema and t.typtype operator(pg_catalog.=) 'c'
           and t.typrelid in (select c.oid from pg_catalog.pg_class as c
                               where c.relkind operator(pg_catalog.=) 'c')
      ) as o
      cross join lateral pg_catalog.aclexplode(o.acl) as a
     where a.grantee operator(pg_catalog.<>) o.owner
  loop
    execute v_grant.stmt;
    v_grants := v_grants operator(pg_catalog.+) 1;
  end loop;

  -- The role that owned the queue keeps running its Node workers.
  select c.relowner into v_owner from pg_catalog.pg_class as c
   where c.relnamespace operator(pg_catalog.=) node_schema
     and c.relname operator(pg_catalog.=) '_private_jobs';
  if not (select r.rolsuper or r.rolbypassrls from pg_catalog.pg_roles as r
           where r.oid operator(pg_catalog.=) v_owner) then
    perform graphile_worker.grant_worker(pg_catalog.pg_get_userbyid(v_owner));
    execute pg_catalog.format('GRANT SELECT ON graphile_worker.jobs TO %I',
      pg_catalog.pg_get_userbyid(v_owner));
    raise notice 'role "%", the owner of the graphile-worker tables, now has grant_worker''s rights and SELECT on graphile_worker.jobs',
      pg_catalog.pg_get_userbyid(v_owner);
  end if;

  v_messages := pg_catalog.current_setting('client_min_messages');
  perform pg_catalog.set_config('client_min_messages', 'warning', true);
  execute pg_catalog.format('drop schema %I cascade', v_old);
  perform pg_catalog.set_config('client_min_messages', v_messages, true);

  if v_grants > 0 then
    raise notice 'adopted the graphile-worker 0.18 schema: % jobs, % queues, % tasks, % known crontab entries',
      v_counts[1], v_counts[2], v_counts[3], v_counts[4]
      using detail = pg_catalog.format('%s privileges granted on its objects were granted again on the extension''s.',
                                       v_grants);
  else
    raise notice 'adopted the graphile-worker 0.18 schema: % jobs, % queues, % tasks, % known crontab entries',
      v_counts[1], v_counts[2], v_counts[3], v_counts[4];
  end if;
end;
$$;

REVOKE ALL ON FUNCTION graphile_worker._node_shape(oid),
	graphile_worker._node_schema_dependents(oid),
	graphile_worker._adopt_node_schema(oid) FROM PUBLIC;

COMMENT ON FUNCTION graphile_worker._adopt_node_schema(oid) IS
	'Internal (CREATE EXTENSION): takes the queue of a graphile-worker 0.18 schema into the extension and drops that schema';

/* ---------------------------------------------------------------------
 * Visibility: job history, live statistics, queue statistics, metrics,
 * unhandled tasks, wait_for_job, the monitoring grant and cleanup.
 *
 * Only jobs run by this extension's workers have history rows and
 * statistics: a Node or Rust worker writes neither.  Node knows none of
 * these objects.
 * ---------------------------------------------------------------------
 */

/*
 * One row per finished attempt of a job run by our workers, written in the
 * job's own transaction (with its completion or failure) by the job worker
 * (graphile_worker.history = off | failures | all), and for "worker_died"
 * by the supervisor's sweep as it releases a dead worker's job.
 * Partitioned by finish time: partitions of a UTC day, hour or minute,
 * as the retention wants, created ahead by the supervisor
 * (_history_maintain); retention drops whole partitions.  The default
 * partition only catches rows that no partition covers (before the
 * supervisor first ran, or a clock far off); its rows move to a partition
 * created for their time, or are deleted once older than the retention.
 * The partitions are members of the extension: pg_dump leaves history
 * out, DROP EXTENSION drops it.
 */
CREATE TABLE graphile_worker._private_job_history (
	job_id bigint NOT NULL,
	task_identifier text NOT NULL,
	queue_name text,
	key text,
	payload json,
	attempt smallint NOT NULL,
	outcome text NOT NULL CHECK (outcome OPERATOR(pg_catalog.=) ANY (ARRAY['completed',
		'failed', 'permanently_failed', 'cancelled', 'timed_out', 'worker_died'])),
	result jsonb,
	error text,
	sqlstate text,
	started_at timestamp with time zone,
	finished_at timestamp with time zone NOT NULL,
	worker_id text
) PARTITION BY RANGE (finished_at);
ALTER TABLE graphile_worker._private_job_history ENABLE ROW LEVEL SECURITY;
/* this job's attempts */
CREATE INDEX _private_job_history_job_idx
	ON graphile_worker._private_job_history (job_id, finished_at);
/* recent failures of this task (completed attempts stay out of it) */
CREATE INDEX _private_job_history_failures_idx
	ON graphile_worker._private_job_history (task_identifier, finished_at)
	WHERE outcome OPERATOR(pg_catalog.<>) 'completed';
CREATE TABLE graphile_worker._private_job_history_default
	PARTITION OF graphile_worker._private_job_history DEFAULT;

/*
 * The partitions of the history: each covers [from_at, to_at) of
 * finished_at, read from the catalog (the default partition is left out).
 */
CREATE FUNCTION graphile_worker._history_partitions(
	OUT relname name, OUT from_at timestamp with time zone, OUT to_at timestamp with time zone)
RETURNS SETOF record
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
  SELECT c.relname, b[1]::pg_catalog.timestamptz, b[2]::pg_catalog.timestamptz
    FROM pg_catalog.pg_inherits AS i
    JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
   CROSS JOIN LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
         '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') AS b
   WHERE i.inhparent OPERATOR(pg_catalog.=) 'graphile_worker._private_job_history'::pg_catalog.regclass
     AND b IS NOT NULL
$$;

/*
 * _history_unit(retention): the width of the partitions for a retention,
 * so that a few partitions hold all the history kept: a UTC day from two
 * days up (and without a retention), an hour from two hours up, else a
 * minute.
 */
CREATE FUNCTION graphile_worker._history_unit(retention interval)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN retention IS NULL OR retention OPERATOR(pg_catalog.>=) interval '2 days' THEN 'day'
              WHEN retention OPERATOR(pg_catalog.>=) interval '2 hours' THEN 'hour'
              ELSE 'minute' END
$$;

/*
 * _history_partition(at, unit): creates the partition for instant at, if
 * no partition covers it: the UTC day, hour or minute (unit) of at, cut
 * short where it would overlap a partition of another width.  It is named
 * for its start (_private_job_history_YYYYMMDD for a whole day, else
 * _YYYYMMDD_HHMI), gets the rows of its range from the default partition
 * and is made a member of the extension.  Returns the partition's end, or
 * NULL when one already covered at.
 */
CREATE FUNCTION graphile_worker._history_partition(at timestamp with time zone, unit text)
RETURNS timestamp with time zone
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
declare
  v_from timestamp with time zone;
  v_to timestamp with time zone;
  v_name text;
  v_moved integer := 0;
begin
  if at is null or unit is null or unit operator(pg_catalog.<>) all (array['day', 'hour', 'minute']) then
    raise exception 'invalid history partition unit "%"', unit
      using errcode = '22023', hint = 'The unit is day, hour or minute, for a time that is not null.';
  end if;
  if exists (select from graphile_worker._history_partitions() as p
              where p.from_at operator(pg_catalog.<=) at and p.to_at operator(pg_catalog.>) at) then
    return null;
  end if;
  v_from := pg_catalog.date_trunc(unit, at);
  v_to := v_from operator(pg_catalog.+) ('1 ' operator(pg_catalog.||) unit)::pg_catalog.interval;
  select greatest(v_from, pg_catalog.max(p.to_at)) into v_from
    from graphile_worker._history_partitions() as p where p.to_at operator(pg_catalog.<=) at;
  select least(v_to, pg_catalog.min(p.from_at)) into v_to
    from graphile_worker._history_partitions() as p where p.from_at operator(pg_catalog.>) at;
  v_name := '_private_job_history_' operator(pg_catalog.||) pg_catalog.to_char(v_from,
    case when unit operator(pg_catalog.=) 'day' and v_from operator(pg_catalog.=) pg_catalog.date_trunc('day', v_from)
         then 'YYYYMMDD' else 'YYYYMMDD"_"HH24MI' end);
  if exists (select from graphile_worker._private_job_history_default as h
              where h.finished_at operator(pg_catalog.>=) v_from
                and h.finished_at operator(pg_catalog.<) v_to) then
    create temporary table pg_temp._gw_history_moved
      (like graphile_worker._private_job_history) on commit drop;
    with moved as (
      delete from graphile_worker._private_job_history_default as h
       where h.finished_at operator(pg_catalog.>=) v_from and h.finished_at operator(pg_catalog.<) v_to
      returning h.*)
    insert into pg_temp._gw_history_moved select * from moved;
    get diagnostics v_moved = row_count;
  end if;
  execute pg_catalog.format('CREATE TABLE graphile_worker.%I PARTITION OF graphile_worker._private_job_history'
    ' FOR VALUES FROM (%L) TO (%L)', v_name, v_from, v_to);
  if not exists (select from pg_catalog.pg_depend as d
                  where d.classid operator(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                    and d.objid operator(pg_catalog.=) pg_catalog.format('graphile_worker.%I', v_name)::pg_catalog.regclass
                    and d.deptype operator(pg_catalog.=) 'e') then
    execute pg_catalog.format('ALTER EXTENSION graphile_worker ADD TABLE graphile_worker.%I', v_name);
  end if;
  if v_moved operator(pg_catalog.>) 0 then
    insert into graphile_worker._private_job_history select * from pg_temp._gw_history_moved;
    drop table pg_temp._gw_history_moved;
  end if;
  return v_to;
end;
$$;

/* Drops a partition of the history (a member of the extension). */
CREATE FUNCTION graphile_worker._history_drop(relname name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
begin
  execute pg_catalog.format('ALTER EXTENSION graphile_worker DROP TABLE graphile_worker.%I', relname);
  execute pg_catalog.format('DROP TABLE graphile_worker.%I', relname);
end;
$$;

/* Whether a partition of the history has no row. */
CREATE FUNCTION graphile_worker._history_empty(relname name)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_any boolean;
begin
  execute pg_catalog.format('SELECT EXISTS (SELECT FROM graphile_worker.%I)', relname) into v_any;
  return not v_any;
end;
$$;

/*
 * _history_narrow(at, unit): after the retention was shortened, the
 * partition that covers at may be wider than the unit now wanted: it is
 * detached and attached again ending with the unit after its last row (or
 * after at), and its empty successors wider than the unit are dropped, so
 * that narrower partitions follow it at once.  Detaching locks the history
 * table until the transaction ends.  Returns whether it changed anything.
 */
CREATE FUNCTION graphile_worker._history_narrow(at timestamp with time zone, unit text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
declare
  v_unit interval := ('1 ' operator(pg_catalog.||) unit)::pg_catalog.interval;
  v_part record;
  v_last timestamp with time zone;
  v_end timestamp with time zone;
  v_changed boolean := false;
begin
  for v_part in
    select p.relname from graphile_worker._history_partitions() as p
     where p.from_at operator(pg_catalog.>) at
       and (p.to_at operator(pg_catalog.-) p.from_at) operator(pg_catalog.>) v_unit
  loop
    if graphile_worker._history_empty(v_part.relname) then
      perform graphile_worker._history_drop(v_part.relname);
      v_changed := true;
    end if;
  end loop;
  select p.* into v_part from graphile_worker._history_partitions() as p
   where p.from_at operator(pg_catalog.<=) at and p.to_at operator(pg_catalog.>) at;
  if not found then
    return v_changed;
  end if;
  v_end := pg_catalog.date_trunc(unit, at) operator(pg_catalog.+) v_unit;
  if v_part.to_at operator(pg_catalog.<=) v_end then
    return v_changed;
  end if;
  execute pg_catalog.format('ALTER TABLE graphile_worker._private_job_history DETACH PARTITION graphile_worker.%I',
    v_part.relname);
  execute pg_catalog.format('SELECT pg_catalog.max(finished_at) FROM graphile_worker.%I', v_part.relname)
    into v_last;
  if v_last operator(pg_catalog.>=) v_end then
    v_end := least(v_part.to_at,
      pg_catalog.date_trunc(unit, v_last) operator(pg_catalog.+) v_unit);
  end if;
  execute pg_catalog.format('ALTER TABLE graphile_worker._private_job_history ATTACH PARTITION graphile_worker.%I'
    ' FOR VALUES FROM (%L) TO (%L)', v_part.relname, v_part.from_at, v_end);
  return true;
end;
$$;

/*
 * _history_maintain(retention, at): run by the supervisor (at = now).  It
 * makes the partitions as wide as the retention wants (_history_unit),
 * narrowing the current one after a shorter retention (_history_narrow);
 * creates them from at to two units ahead, three for minutes; drops the
 * partitions that ended at least retention before at, and deletes the
 * rows of the default partition that are that old.
 */
CREATE FUNCTION graphile_worker._history_maintain(retention interval,
	at timestamp with time zone DEFAULT pg_catalog.now(), OUT created integer, OUT dropped integer)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
declare
  v_unit text := graphile_worker._history_unit(retention);
  v_until timestamp with time zone;
  v_t timestamp with time zone := at;
  v_end timestamp with time zone;
  v_part record;
begin
  if at is null then
    raise exception 'at must not be null' using errcode = '22004';
  end if;
  created := 0;
  dropped := 0;
  v_until := at operator(pg_catalog.+) ((case v_unit when 'minute' then '3 ' else '2 ' end)
    operator(pg_catalog.||) v_unit)::pg_catalog.interval;
  perform graphile_worker._history_narrow(at, v_unit);
  while v_t operator(pg_catalog.<=) v_until loop
    v_end := graphile_worker._history_partition(v_t, v_unit);
    if v_end is not null then
      created := created operator(pg_catalog.+) 1;
    else
      select p.to_at into v_end from graphile_worker._history_partitions() as p
       where p.from_at operator(pg_catalog.<=) v_t and p.to_at operator(pg_catalog.>) v_t;
    end if;
    v_t := v_end;
  end loop;
  if retention is null then
    return;
  end if;
  for v_part in
    select p.relname from graphile_worker._history_partitions() as p
     where p.to_at operator(pg_catalog.<=) (at operator(pg_catalog.-) retention)
     order by p.from_at
  loop
    perform graphile_worker._history_drop(v_part.relname);
    dropped := dropped operator(pg_catalog.+) 1;
  end loop;
  delete from graphile_worker._private_job_history_default as h
   where h.finished_at operator(pg_catalog.<) (at operator(pg_catalog.-) retention);
end;
$$;

/* today's and the next two days' partitions, until the supervisor runs */
SELECT graphile_worker._history_maintain(NULL);

CREATE VIEW graphile_worker.job_history AS
	SELECT h.job_id, h.task_identifier, h.queue_name, h.key, h.payload, h.attempt,
		h.outcome, h.result, h.error, h.sqlstate, h.started_at, h.finished_at,
		h.finished_at OPERATOR(pg_catalog.-) h.started_at AS run_time, h.worker_id
	FROM graphile_worker._private_job_history AS h;

/*
 * Live statistics of our workers, per task of this database, from shared
 * memory (no table is written): counters since stats_reset, run time
 * quantiles from a histogram per task.  _task_stats() also gives the
 * histogram itself, for metrics().
 */
CREATE FUNCTION graphile_worker._task_stats(
	OUT task_identifier text, OUT succeeded bigint, OUT failed bigint,
	OUT permanently_failed bigint, OUT cancelled bigint, OUT timed_out bigint,
	OUT retried bigint, OUT run_time_p50 interval, OUT run_time_p99 interval,
	OUT run_time_sum double precision, OUT bucket_le double precision[],
	OUT bucket_count bigint[], OUT stats_reset timestamp with time zone)
RETURNS SETOF record
LANGUAGE C
PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_task_stats';

CREATE VIEW graphile_worker.task_stats AS
	SELECT s.task_identifier, s.succeeded, s.failed, s.permanently_failed,
		s.cancelled, s.timed_out, s.retried, s.run_time_p50, s.run_time_p99,
		s.stats_reset
	FROM graphile_worker._task_stats() AS s;

CREATE FUNCTION graphile_worker.stats_reset()
RETURNS void
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_stats_reset';

/*
 * Jobs by state, per task (queue_name NULL) and per named queue
 * (task_identifier NULL), from the table: one scan of _private_jobs, each
 * row given its state by one CASE and counted by (task_id, job_queue_id,
 * state) first.
 */
CREATE VIEW graphile_worker.queue_stats AS
	WITH per AS (
		SELECT j.task_id, j.job_queue_id,
			CASE WHEN j.locked_at IS NOT NULL THEN 3	-- running
				WHEN j.attempts OPERATOR(pg_catalog.>=) j.max_attempts THEN 5	-- permanently failed
				WHEN j.run_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 1	-- queued
				WHEN j.attempts OPERATOR(pg_catalog.=) 0 THEN 2	-- scheduled
				ELSE 4	-- retry-waiting
			END AS state,
			pg_catalog.count(*) AS n,
			pg_catalog.min(j.run_at) AS oldest
		FROM graphile_worker._private_jobs AS j
		GROUP BY 1, 2, 3)
	SELECT t.identifier AS task_identifier, q.queue_name,
		coalesce(pg_catalog.sum(per.n) FILTER (WHERE per.state OPERATOR(pg_catalog.=) 1), 0)::bigint AS queued,
		coalesce(pg_catalog.sum(per.n) FILTER (WHERE per.state OPERATOR(pg_catalog.=) 2), 0)::bigint AS scheduled,
		coalesce(pg_catalog.sum(per.n) FILTER (WHERE per.state OPERATOR(pg_catalog.=) 3), 0)::bigint AS running,
		coalesce(pg_catalog.sum(per.n) FILTER (WHERE per.state OPERATOR(pg_catalog.=) 4), 0)::bigint AS retry_waiting,
		coalesce(pg_catalog.sum(per.n) FILTER (WHERE per.state OPERATOR(pg_catalog.=) 5), 0)::bigint AS permanently_failed,
		pg_catalog.now() OPERATOR(pg_catalog.-)
			pg_catalog.min(per.oldest) FILTER (WHERE per.state OPERATOR(pg_catalog.=) 1) AS oldest_due_age
	FROM per
		JOIN graphile_worker._private_tasks AS t ON t.id OPERATOR(pg_catalog.=) per.task_id
		LEFT JOIN graphile_worker._private_job_queues AS q
			ON q.id OPERATOR(pg_catalog.=) per.job_queue_id
	GROUP BY GROUPING SETS ((t.identifier), (q.queue_name))
	HAVING GROUPING(q.queue_name) OPERATOR(pg_catalog.=) 1 OR q.queue_name IS NOT NULL;

/* _task_schemas(): graphile_worker.task_schemas as a name[] (for unhandled_tasks). */
CREATE FUNCTION graphile_worker._task_schemas()
RETURNS name[]
LANGUAGE C
STABLE
PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_task_schemas';

/*
 * Identifiers with due jobs and no handler in this database, with a hint
 * when a function of a near name, of the wrong signature or in another
 * schema exists.  The supervisor logs one WARNING per identifier per hour.
 */
CREATE VIEW graphile_worker.unhandled_tasks AS
	WITH due AS (
		SELECT j.task_id, pg_catalog.count(*) AS due_jobs, pg_catalog.min(j.run_at) AS oldest
		FROM graphile_worker._private_jobs AS j
		WHERE j.is_available AND j.run_at OPERATOR(pg_catalog.<=) pg_catalog.now()
		GROUP BY j.task_id),
	settings AS (SELECT graphile_worker._task_schemas() AS schemas),
	candidates AS (
		SELECT p.oid, p.proname, n.nspname,
			n.nspname OPERATOR(pg_catalog.=) ANY (settings.schemas) AS in_task_schema,
			p.prokind OPERATOR(pg_catalog.=) 'f' AND NOT p.proretset
				AND p.pronargs OPERATOR(pg_catalog.>=) 1 AND p.pronargs OPERATOR(pg_catalog.<=) 2
				AND p.proargtypes[0] OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.json'::pg_catalog.regtype,
					'pg_catalog.jsonb'::pg_catalog.regtype]::pg_catalog.oid[])
				AND (p.pronargs OPERATOR(pg_catalog.=) 1 OR p.proargtypes[1] OPERATOR(pg_catalog.=)
					'graphile_worker.jobs'::pg_catalog.regtype) AS good_signature
		FROM pg_catalog.pg_proc AS p
			JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace,
			settings
		WHERE n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema']::pg_catalog.name[]))
	SELECT t.identifier AS task_identifier, due.due_jobs, due.oldest,
		CASE WHEN pg_catalog.octet_length(t.identifier) OPERATOR(pg_catalog.>) 63
			THEN 'longer than 63 bytes: no function can have this name, so only a Node or Rust worker can run it'
		ELSE (SELECT CASE
				WHEN c.in_task_schema AND c.proname OPERATOR(pg_catalog.=) t.identifier
					THEN pg_catalog.format('%I.%I(%s) has the wrong signature: a handler takes (payload json or jsonb [, job graphile_worker.jobs]), is a function and returns no set',
						c.nspname, c.proname, pg_catalog.pg_get_function_identity_arguments(c.oid))
				WHEN c.in_task_schema
					THEN pg_catalog.format('%I.%I(%s) differs only in case: the handler of %s must be created with a quoted name, e.g. CREATE FUNCTION %I.%I(payload json)',
						c.nspname, c.proname, pg_catalog.pg_get_function_identity_arguments(c.oid),
						pg_catalog.quote_literal(t.identifier), c.nspname, t.identifier)
				ELSE pg_catalog.format('%I.%I(%s) is not in a schema of graphile_worker.task_schemas (%s)',
						c.nspname, c.proname, pg_catalog.pg_get_function_identity_arguments(c.oid),
						pg_catalog.array_to_string(settings.schemas, ', '))
				END
			FROM candidates AS c, settings
			WHERE pg_catalog.lower(c.proname::pg_catalog.text) OPERATOR(pg_catalog.=) pg_catalog.lower(t.identifier)
				AND NOT (c.in_task_schema AND c.good_signature AND c.proname OPERATOR(pg_catalog.=) t.identifier)
			ORDER BY c.in_task_schema DESC, c.proname OPERATOR(pg_catalog.=) t.identifier DESC,
				pg_catalog.array_position(settings.schemas, c.nspname), c.nspname, c.oid
			LIMIT 1)
		END AS hint
	FROM due
		JOIN graphile_worker._private_tasks AS t ON t.id OPERATOR(pg_catalog.=) due.task_id,
		settings
	WHERE NOT EXISTS (
		SELECT FROM candidates AS c
		WHERE c.in_task_schema AND c.good_signature
			AND c.proname OPERATOR(pg_catalog.=) t.identifier);

/*
 * metrics(): the statistics of this database as OpenMetrics text (also
 * read by Prometheus as its text format): jobs by outcome, queue depth by
 * state, the age of the oldest due job, and the run time histogram.  The
 * functions it calls are parallel restricted or safe, so that the scan of
 * queue_stats may run in parallel workers.
 */
CREATE FUNCTION graphile_worker._metric_label(value text)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(value, E'\\', E'\\\\'),
    '"', E'\\"'), E'\n', E'\\n')
$$;

CREATE FUNCTION graphile_worker.metrics()
RETURNS text
LANGUAGE sql
STABLE
PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
  WITH db AS (
    SELECT 'database="' OPERATOR(pg_catalog.||) graphile_worker._metric_label(pg_catalog.current_database())
      OPERATOR(pg_catalog.||) '"' AS label),
  ts AS (SELECT * FROM graphile_worker._task_stats()),
  qs AS (SELECT * FROM graphile_worker.queue_stats),
  jobs AS (
    SELECT pg_catalog.string_agg(pg_catalog.format('graphile_worker_jobs_total{%s,task="%s",outcome="%s"} %s',
             db.label, graphile_worker._metric_label(ts.task_identifier), o.outcome, o.n),
             E'\n' ORDER BY ts.task_identifier, o.ord) AS lines
    FROM ts, db,
      LATERAL (VALUES (1, 'completed', ts.succeeded), (2, 'failed', ts.failed),
                      (3, 'permanently_failed', ts.permanently_failed), (4, 'cancelled', ts.cancelled),
                      (5, 'timed_out', ts.timed_out)) AS o(ord, outcome, n)),
  retried AS (
    SELECT pg_catalog.string_agg(pg_catalog.format('graphile_worker_jobs_retried_total{%s,task="%s"} %s',
             db.label, graphile_worker._metric_label(ts.task_identifier), ts.retried),
             E'\n' ORDER BY ts.task_identifier) AS lines
    FROM ts, db),
  depth AS (
    SELECT pg_catalog.string_agg(pg_catalog.format('graphile_worker_queue_depth{%s,%s="%s",state="%s"} %s',
             db.label, CASE WHEN qs.task_identifier IS NULL THEN 'queue' ELSE 'task' END,
             graphile_worker._metric_label(coalesce(qs.task_identifier, qs.queue_name)), s.state, s.n),
             E'\n' ORDER BY qs.task_identifier IS NULL, coalesce(qs.task_identifier, qs.queue_name), s.ord) AS lines
    FROM qs, db,
      LATERAL (VALUES (1, 'queued', qs.queued), (2, 'scheduled', qs.scheduled), (3, 'running', qs.running),
                      (4, 'retry_waiting', qs.retry_waiting),
                      (5, 'permanently_failed', qs.permanently_failed)) AS s(ord, state, n)),
  age AS (
    SELECT pg_catalog.string_agg(pg_catalog.format('graphile_worker_oldest_due_job_age_seconds{%s,%s="%s"} %s',
             db.label, CASE WHEN qs.task_identifier IS NULL THEN 'queue' ELSE 'task' END,
             graphile_worker._metric_label(coalesce(qs.task_identifier, qs.queue_name)),
             -- (EXTRACT gives double precision before PostgreSQL 14)
             pg_catalog.round(EXTRACT(epoch FROM coalesce(qs.oldest_due_age, '0'::pg_catalog.interval))::pg_catalog.numeric, 3)),
             E'\n' ORDER BY qs.task_identifier IS NULL, coalesce(qs.task_identifier, qs.queue_name)) AS lines
    FROM qs, db),
  hist AS (
    SELECT pg_catalog.string_agg(h.lines, E'\n' ORDER BY h.task_identifier) AS lines
    FROM (
      SELECT ts.task_identifier,
        (SELECT pg_catalog.string_agg(pg_catalog.format('graphile_worker_job_duration_seconds_bucket{%s,task="%s",le="%s"} %s',
                  db.label, graphile_worker._metric_label(ts.task_identifier),
                  CASE WHEN b.le = 'Infinity'::pg_catalog.float8 THEN '+Inf' ELSE b.le::text END, b.n),
                  E'\n' ORDER BY b.i)
           FROM ROWS FROM (pg_catalog.unnest(ts.bucket_le), pg_catalog.unnest(ts.bucket_count))
             WITH ORDINALITY AS b(le, n, i))
        OPERATOR(pg_catalog.||) E'\n' OPERATOR(pg_catalog.||)
        pg_catalog.format('graphile_worker_job_duration_seconds_sum{%s,task="%s"} %s',
          db.label, graphile_worker._metric_label(ts.task_identifier), pg_catalog.round(ts.run_time_sum::pg_catalog.numeric, 6))
        OPERATOR(pg_catalog.||) E'\n' OPERATOR(pg_catalog.||)
        pg_catalog.format('graphile_worker_job_duration_seconds_count{%s,task="%s"} %s',
          db.label, graphile_worker._metric_label(ts.task_identifier),
          ts.bucket_count[pg_catalog.array_length(ts.bucket_count, 1)]) AS lines
      FROM ts, db) AS h)
  SELECT pg_catalog.concat_ws(E'\n',
    '# HELP graphile_worker_jobs Finished job attempts run by this database''s workers, by outcome, since stats_reset.',
    '# TYPE graphile_worker_jobs counter', jobs.lines,
    '# HELP graphile_worker_jobs_retried Failed job attempts after which the job runs again.',
    '# TYPE graphile_worker_jobs_retried counter', retried.lines,
    '# HELP graphile_worker_queue_depth Jobs by state, per task and per named queue.',
    '# TYPE graphile_worker_queue_depth gauge', depth.lines,
    '# HELP graphile_worker_oldest_due_job_age_seconds Age of the oldest job that is due and not running.',
    '# TYPE graphile_worker_oldest_due_job_age_seconds gauge', age.lines,
    '# HELP graphile_worker_job_duration_seconds Run time of job attempts.',
    '# TYPE graphile_worker_job_duration_seconds histogram', hist.lines,
    '# EOF') OPERATOR(pg_catalog.||) E'\n'
  FROM jobs, retried, depth, age, hist
$$;

/*
 * wait_for_job(job_id, timeout): waits until the job will not run again
 * and returns its outcome, its handler's result (json or jsonb handlers;
 * kept in the job's history row) and its error; NULL after timeout.  It
 * sleeps on its latch: our job worker that finishes the job wakes it at
 * commit, as cancel_job does; for a job finished otherwise (a Node or Rust
 * worker, complete_jobs, permanently_fail_jobs) it looks at the table once
 * a second.
 */
CREATE FUNCTION graphile_worker.wait_for_job(job_id bigint,
	timeout interval DEFAULT '30 seconds',
	OUT outcome text, OUT result jsonb, OUT error text)
RETURNS record
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_wait_for_job';

/* _job_finished_at_commit(job_id, outcome): at commit, wake its waiters. */
CREATE FUNCTION graphile_worker._job_finished_at_commit(job_id bigint, outcome text)
RETURNS void
LANGUAGE C
STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_job_finished_at_commit';

/*
 * cleanup(tasks, queues, permanently_failed_older_than): Node's --cleanup.
 * DELETE_PERMAFAILED_JOBS when permanently_failed_older_than is given
 * (permanently failed, unlocked jobs that last failed or changed that long
 * ago; '0' for all, as Node), then GC_TASK_IDENTIFIERS (tasks no job uses, but paused ones) and
 * GC_JOB_QUEUES (unlocked queues no job uses).  Tasks and queues are
 * collected under a lock of _private_jobs that waits for transactions
 * adding or running jobs (at most lock_timeout, 200 ms), so that no job can
 * be added for a task or queue being deleted; when it is not granted they
 * are left for the next run (NULL counts, and a NOTICE).
 */
CREATE FUNCTION graphile_worker.cleanup(tasks boolean DEFAULT true,
	queues boolean DEFAULT true,
	permanently_failed_older_than interval DEFAULT NULL,
	OUT deleted_jobs bigint, OUT deleted_tasks bigint, OUT deleted_queues bigint)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '200ms'
AS $$
begin
  deleted_jobs := 0;
  if permanently_failed_older_than is not null then
    delete from graphile_worker._private_jobs as jobs
     where jobs.attempts operator(pg_catalog.>=) jobs.max_attempts
       and jobs.locked_at is null
       -- when it last failed: its run_at is that plus the backoff
       and greatest(jobs.updated_at,
                    jobs.run_at operator(pg_catalog.-)
                    (pg_catalog.exp(least(jobs.attempts, 10::pg_catalog.int2)::pg_catalog.float8)
                     operator(pg_catalog.*) '1 second'::pg_catalog.interval))
           operator(pg_catalog.<=) (pg_catalog.now() operator(pg_catalog.-) permanently_failed_older_than);
    get diagnostics deleted_jobs = row_count;
  end if;
  if not coalesce(tasks, false) and not coalesce(queues, false) then
    return;
  end if;
  begin
    lock table graphile_worker._private_jobs in share row exclusive mode;
  exception when lock_not_available then
    raise notice 'tasks and queues were not collected: jobs are being added or run'
      using detail = 'cleanup waits at most 200 ms for transactions that add or run jobs.';
    return;
  end;
  if coalesce(tasks, false) then
    delete from graphile_worker._private_tasks as t
     where not exists (select from graphile_worker._private_jobs as jobs
                        where jobs.task_id operator(pg_catalog.=) t.id)
       and not exists (select from graphile_worker._private_pauses as p
                        where p.kind operator(pg_catalog.=) 'task'
                          and p.name operator(pg_catalog.=) t.identifier);
    get diagnostics deleted_tasks = row_count;
  end if;
  if coalesce(queues, false) then
    delete from graphile_worker._private_job_queues as q
     where q.locked_at is null
       and not exists (select from graphile_worker._private_jobs as jobs
                        where jobs.job_queue_id operator(pg_catalog.=) q.id);
    get diagnostics deleted_queues = row_count;
  end if;
end;
$$;

/*
 * grant_monitor(role, with_payloads) / revoke_monitor(role): what the
 * monitoring views and metrics() need, and nothing that shows a payload
 * unless with_payloads: USAGE on the schema, SELECT on workers, task_stats,
 * queue_stats, unhandled_tasks, job_history (without its payload column),
 * EXECUTE on metrics().
 */
CREATE FUNCTION graphile_worker.grant_monitor(role_name name, with_payloads boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
begin
  if role_name is null then
    raise exception 'role name must not be null' using errcode = '22004';
  end if;
  execute pg_catalog.format('GRANT USAGE ON SCHEMA graphile_worker TO %I', role_name);
  execute pg_catalog.format('GRANT SELECT ON graphile_worker.workers, graphile_worker.task_stats,'
    ' graphile_worker.queue_stats, graphile_worker.unhandled_tasks TO %I', role_name);
  execute pg_catalog.format('GRANT EXECUTE ON FUNCTION graphile_worker.metrics() TO %I', role_name);
  if coalesce(with_payloads, false) then
    execute pg_catalog.format('GRANT SELECT ON graphile_worker.job_history TO %I', role_name);
  else
    execute pg_catalog.format('REVOKE SELECT ON graphile_worker.job_history FROM %I', role_name);
    execute pg_catalog.format('GRANT SELECT (job_id, task_identifier, queue_name, key, attempt,'
      ' outcome, result, error, sqlstate, started_at, finished_at, run_time, worker_id)'
      ' ON graphile_worker.job_history TO %I', role_name);
  end if;
end;
$$;

CREATE FUNCTION graphile_worker.revoke_monitor(role_name name)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
begin
  if role_name is null then
    raise exception 'role name must not be null' using errcode = '22004';
  end if;
  execute pg_catalog.format('REVOKE SELECT ON graphile_worker.workers, graphile_worker.task_stats,'
    ' graphile_worker.queue_stats, graphile_worker.unhandled_tasks, graphile_worker.job_history'
    ' FROM %I', role_name);
  execute pg_catalog.format('REVOKE SELECT (job_id, task_identifier, queue_name, key, payload, attempt,'
    ' outcome, result, error, sqlstate, started_at, finished_at, run_time, worker_id)'
    ' ON graphile_worker.job_history FROM %I', role_name);
  execute pg_catalog.format('REVOKE EXECUTE ON FUNCTION graphile_worker.metrics() FROM %I', role_name);
end;
$$;

REVOKE ALL ON FUNCTION graphile_worker._history_partitions(),
	graphile_worker._history_unit(interval),
	graphile_worker._history_partition(timestamp with time zone, text),
	graphile_worker._history_drop(name), graphile_worker._history_empty(name),
	graphile_worker._history_narrow(timestamp with time zone, text),
	graphile_worker._history_maintain(interval, timestamp with time zone),
	graphile_worker.stats_reset(), graphile_worker._metric_label(text),
	graphile_worker.metrics(), graphile_worker.wait_for_job(bigint, interval),
	graphile_worker._job_finished_at_commit(bigint, text),
	graphile_worker.cleanup(boolean, boolean, interval),
	graphile_worker.grant_monitor(name, boolean), graphile_worker.revoke_monitor(name)
	FROM PUBLIC;

/*
 * The functions behind views that read shared memory or a setting are
 * executable by PUBLIC (who still needs USAGE on the schema to reach them)
 * and check for themselves that the caller may SELECT their view: a view
 * calls functions as its caller, so GRANT SELECT ON graphile_worker.workers
 * alone now works (it used to fail with "permission denied for function
 * _workers").  metrics() reads the views as its caller.
 */
GRANT EXECUTE ON FUNCTION graphile_worker._workers(), graphile_worker._task_stats(),
	graphile_worker._task_schemas(), graphile_worker._metric_label(text) TO PUBLIC;

COMMENT ON TABLE graphile_worker._private_job_history IS
	'One row per finished attempt of a job run by this extension''s workers (graphile_worker.history); partitioned by finished_at (a UTC day, hour or minute each, as graphile_worker.history_retention wants)';
COMMENT ON VIEW graphile_worker.job_history IS
	'Finished attempts of jobs run by this extension''s workers: outcome, result, error, timing';
COMMENT ON VIEW graphile_worker.task_stats IS
	'Live counters and run time quantiles per task of this database, from shared memory, since stats_reset';
COMMENT ON VIEW graphile_worker.queue_stats IS
	'Jobs by state per task (queue_name NULL) and per named queue (task_identifier NULL)';
COMMENT ON VIEW graphile_worker.unhandled_tasks IS
	'Task identifiers with due jobs and no handler here, with a hint when a near function exists';
COMMENT ON FUNCTION graphile_worker.stats_reset() IS 'Resets this database''s task_stats';
COMMENT ON FUNCTION graphile_worker.metrics() IS
	'task_stats and queue_stats of this database as OpenMetrics (Prometheus) text';
COMMENT ON FUNCTION graphile_worker.wait_for_job(bigint, interval) IS
	'Waits until the job will not run again; returns its outcome, result and error, or NULL after the timeout';
COMMENT ON FUNCTION graphile_worker.cleanup(boolean, boolean, interval) IS
	'Deletes unused tasks and queues and, if asked, permanently failed jobs (Node''s --cleanup)';
COMMENT ON FUNCTION graphile_worker.grant_monitor(name, boolean) IS
	'Grants the monitoring views and metrics() to a role; job payloads only with with_payloads';
COMMENT ON FUNCTION graphile_worker.revoke_monitor(name) IS 'Revokes what grant_monitor granted';
