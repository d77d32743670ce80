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
 * control functions (pausing, cancel_job, crontab entries); visibility
 * (job_history, task_stats, queue_stats, unhandled_tasks, metrics(),
 * wait_for_job, cleanup, grant_monitor), the last section.
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
  update graphile_worker._private_job_queues as q
    set locked_by = v_locked_by, locked_at = v_locked_at
    where q.id operator(pg_catalog.=) v_id
      and q.locked_by operator(pg_catalog.=) 'graphile_worker:paused';
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
		p.paused_by
	FROM graphile_worker._private_job_queues AS q
		LEFT JOIN graphile_worker._private_pauses AS p
			ON p.kind OPERATOR(pg_catalog.=) 'queue' AND p.name OPERATOR(pg_catalog.=) q.queue_name;

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
    ' graphile_worker.remove_crontab_entry(text) TO %I', role_name);
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
    ' graphile_worker.remove_crontab_entry(text) FROM %I', role_name);
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
	graphile_worker.revoke_control(name) FROM PUBLIC;

COMMENT ON FUNCTION graphile_worker.pause_queue(text) IS
	'No new job of this named queue starts (ours or Node''s); running ones finish; survives restarts';
COMMENT ON FUNCTION graphile_worker.resume_queue(text) IS 'Undoes pause_queue';
COMMENT ON FUNCTION graphile_worker.pause_task(text) IS
	'Our workers start no new job of this task; running ones finish; survives restarts';
COMMENT ON FUNCTION graphile_worker.resume_task(text) IS 'Undoes pause_task';
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
COMMENT ON VIEW graphile_worker.queues IS 'Named queues: paused or not, since when, by whom';
COMMENT ON VIEW graphile_worker.tasks IS 'Tasks: paused or not, since when, by whom';

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
 * Partitioned by finish time: one partition per UTC day, created ahead by
 * the supervisor (_history_maintain); retention drops whole partitions.
 * The default partition only catches rows whose day has no partition (a
 * clock far off); its rows move to their day's partition when that is
 * created.  The partitions are members of the extension: pg_dump leaves
 * history out, DROP EXTENSION drops it.
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
 * _history_partition(day): the partition of that UTC day, created if
 * missing (with the day's rows moved out of the default partition) and made
 * a member of the extension.  Returns whether it was created.
 */
CREATE FUNCTION graphile_worker._history_partition(day date)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_name text := '_private_job_history_' operator(pg_catalog.||) pg_catalog.to_char(day, 'YYYYMMDD');
  v_from timestamp with time zone := (day::timestamp without time zone) operator(pg_catalog.||) '+00';
  v_to timestamp with time zone := ((day operator(pg_catalog.+) 1)::timestamp without time zone) operator(pg_catalog.||) '+00';
  v_moved integer;
begin
  if day is null then
    raise exception 'day must not be null' using errcode = '22004';
  end if;
  if pg_catalog.to_regclass(pg_catalog.quote_ident('graphile_worker') operator(pg_catalog.||) '.'
                            operator(pg_catalog.||) pg_catalog.quote_ident(v_name)) is not null then
    return false;
  end if;
  v_moved := 0;
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
  return true;
end;
$$;

/*
 * _history_maintain(retention, days_ahead): creates the partitions of
 * today and the next days_ahead UTC days, and drops the partitions whose
 * whole day is older than now() - retention.  Run by the supervisor.
 */
CREATE FUNCTION graphile_worker._history_maintain(retention interval,
	days_ahead integer DEFAULT 2, OUT created integer, OUT dropped integer)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
declare
  v_today date := (pg_catalog.now() at time zone 'UTC')::date;
  v_part record;
begin
  created := 0;
  dropped := 0;
  for i in 0 .. coalesce(days_ahead, 2) loop
    if graphile_worker._history_partition(v_today operator(pg_catalog.+) i) then
      created := created operator(pg_catalog.+) 1;
    end if;
  end loop;
  if retention is null then
    return;
  end if;
  for v_part in
    select c.relname
      from pg_catalog.pg_inherits as i
      join pg_catalog.pg_class as c on c.oid operator(pg_catalog.=) i.inhrelid
     where i.inhparent operator(pg_catalog.=) 'graphile_worker._private_job_history'::pg_catalog.regclass
       and c.relname operator(pg_catalog.~) '^_private_job_history_[0-9]{8}$'
       and ((pg_catalog.to_date(pg_catalog.substr(c.relname, 22), 'YYYYMMDD') operator(pg_catalog.+) 1)
             ::timestamp without time zone operator(pg_catalog.||) '+00')::timestamp with time zone
           operator(pg_catalog.<=) (pg_catalog.now() operator(pg_catalog.-) retention)
     order by c.relname
  loop
    execute pg_catalog.format('ALTER EXTENSION graphile_worker DROP TABLE graphile_worker.%I',
      v_part.relname);
    execute pg_catalog.format('DROP TABLE graphile_worker.%I', v_part.relname);
    dropped := dropped operator(pg_catalog.+) 1;
  end loop;
end;
$$;

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
             pg_catalog.round(EXTRACT(epoch FROM coalesce(qs.oldest_due_age, '0'::pg_catalog.interval)), 3)),
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

REVOKE ALL ON FUNCTION graphile_worker._history_partition(date),
	graphile_worker._history_maintain(interval, integer),
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
	'One row per finished attempt of a job run by this extension''s workers (graphile_worker.history); partitioned by UTC day of finished_at';
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
