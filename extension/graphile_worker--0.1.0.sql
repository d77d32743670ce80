/*
 * graphile_worker--0.1.0.sql: the install script.
 *
 * Creates the schema of the Node package graphile-worker 0.18.0 at migration
 * 20, object for object (tables, column order, defaults, checks, generated
 * columns, identity sequences, constraint and index names, RLS, type
 * job_spec, view jobs, the seven public functions), plus the rows 1..20 of
 * graphile_worker.migrations, so that Node and Rust Graphile Worker
 * processes accept this database as already migrated.
 *
 * Differences from Node, all of them stricter or safer, never a different
 * result for valid input:
 *  - add_job, add_jobs and remove_job are SECURITY DEFINER, so a role that
 *    is granted EXECUTE can enqueue without any table privilege;
 *  - every function runs with search_path = pg_catalog, pg_temp and names
 *    every relation and function with its schema;
 *  - bad input (empty identifier, over-long names, NULL flags, ...) is
 *    rejected with a clear error before anything is written;
 *  - keyed inserts are serialised per job_key, so add_job never returns an
 *    all-NULL row (graphile/worker#580).
 *
 * Nothing is granted to PUBLIC.
 */

\echo Use "CREATE EXTENSION graphile_worker" to load this file. \quit

/*
 * The schema belongs to the extension (the control file names pg_catalog,
 * as pg_cron does), so DROP EXTENSION removes it, pg_dump does not dump it
 * separately, and installing fails rather than adopting a schema that
 * someone else created.
 */
CREATE SCHEMA graphile_worker;

/* ---------------------------------------------------------------------
 * Types and tables (Node migration 20 shape)
 * ---------------------------------------------------------------------
 */

CREATE TYPE graphile_worker.job_spec AS (
	identifier text,
	payload json,
	queue_name text,
	run_at timestamp with time zone,
	max_attempts smallint,
	job_key text,
	priority smallint,
	flags text[]
);

CREATE TABLE graphile_worker._private_jobs (
	id bigint NOT NULL,
	job_queue_id integer,
	task_id integer NOT NULL,
	payload json DEFAULT '{}'::json NOT NULL,
	priority smallint DEFAULT 0 NOT NULL,
	run_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,
	attempts smallint DEFAULT 0 NOT NULL,
	max_attempts smallint DEFAULT 25 NOT NULL,
	last_error text,
	created_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,
	updated_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,
	key text,
	locked_at timestamp with time zone,
	locked_by text,
	revision integer DEFAULT 0 NOT NULL,
	flags jsonb,
	is_available boolean GENERATED ALWAYS AS (((locked_at IS NULL) AND
		(attempts OPERATOR(pg_catalog.<) max_attempts))) STORED NOT NULL,
	CONSTRAINT jobs_key_check CHECK (((pg_catalog.length(key) OPERATOR(pg_catalog.>) 0) AND
		(pg_catalog.length(key) OPERATOR(pg_catalog.<=) 512))),
	CONSTRAINT jobs_max_attempts_check CHECK ((max_attempts OPERATOR(pg_catalog.>=) 1))
);

CREATE TABLE graphile_worker._private_job_queues (
	id integer NOT NULL,
	queue_name text NOT NULL,
	locked_at timestamp with time zone,
	locked_by text,
	is_available boolean GENERATED ALWAYS AS ((locked_at IS NULL)) STORED NOT NULL,
	CONSTRAINT job_queues_queue_name_check CHECK ((pg_catalog.length(queue_name) OPERATOR(pg_catalog.<=) 128))
);

CREATE TABLE graphile_worker._private_known_crontabs (
	identifier text NOT NULL,
	known_since timestamp with time zone NOT NULL,
	last_execution timestamp with time zone
);

CREATE TABLE graphile_worker._private_tasks (
	id integer NOT NULL,
	identifier text NOT NULL,
	CONSTRAINT tasks_identifier_check CHECK ((pg_catalog.length(identifier) OPERATOR(pg_catalog.<=) 128))
);

CREATE TABLE graphile_worker.migrations (
	id integer NOT NULL,
	ts timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,
	breaking boolean DEFAULT false NOT NULL
);

ALTER TABLE graphile_worker._private_job_queues ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
	SEQUENCE NAME graphile_worker.job_queues_id_seq
	START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1
);
ALTER TABLE graphile_worker._private_jobs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
	SEQUENCE NAME graphile_worker.jobs_id_seq1
	START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1
);
ALTER TABLE graphile_worker._private_tasks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
	SEQUENCE NAME graphile_worker.tasks_id_seq
	START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1
);

ALTER TABLE ONLY graphile_worker._private_job_queues
	ADD CONSTRAINT job_queues_pkey1 PRIMARY KEY (id);
ALTER TABLE ONLY graphile_worker._private_job_queues
	ADD CONSTRAINT job_queues_queue_name_key UNIQUE (queue_name);
ALTER TABLE ONLY graphile_worker._private_jobs
	ADD CONSTRAINT jobs_key_key1 UNIQUE (key);
ALTER TABLE ONLY graphile_worker._private_jobs
	ADD CONSTRAINT jobs_pkey1 PRIMARY KEY (id);
ALTER TABLE ONLY graphile_worker._private_known_crontabs
	ADD CONSTRAINT known_crontabs_pkey PRIMARY KEY (identifier);
ALTER TABLE ONLY graphile_worker.migrations
	ADD CONSTRAINT migrations_pkey PRIMARY KEY (id);
ALTER TABLE ONLY graphile_worker._private_tasks
	ADD CONSTRAINT tasks_identifier_key UNIQUE (identifier);
ALTER TABLE ONLY graphile_worker._private_tasks
	ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

CREATE INDEX jobs_main_index ON graphile_worker._private_jobs
	USING btree (priority, run_at) INCLUDE (id, task_id, job_queue_id)
	WHERE (is_available OPERATOR(pg_catalog.=) true);
CREATE INDEX jobs_no_queue_index ON graphile_worker._private_jobs
	USING btree (priority, run_at) INCLUDE (id, task_id)
	WHERE ((is_available OPERATOR(pg_catalog.=) true) AND (job_queue_id IS NULL));

ALTER TABLE graphile_worker._private_job_queues ENABLE ROW LEVEL SECURITY;
ALTER TABLE graphile_worker._private_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE graphile_worker._private_known_crontabs ENABLE ROW LEVEL SECURITY;
ALTER TABLE graphile_worker._private_tasks ENABLE ROW LEVEL SECURITY;

CREATE VIEW graphile_worker.jobs AS
	SELECT jobs.id,
		job_queues.queue_name,
		tasks.identifier AS task_identifier,
		jobs.priority,
		jobs.run_at,
		jobs.attempts,
		jobs.max_attempts,
		jobs.last_error,
		jobs.created_at,
		jobs.updated_at,
		jobs.key,
		jobs.locked_at,
		jobs.locked_by,
		jobs.revision,
		jobs.flags
	FROM ((graphile_worker._private_jobs jobs
		JOIN graphile_worker._private_tasks tasks
			ON ((tasks.id OPERATOR(pg_catalog.=) jobs.task_id)))
		LEFT JOIN graphile_worker._private_job_queues job_queues
			ON ((job_queues.id OPERATOR(pg_catalog.=) jobs.job_queue_id)));

/*
 * _private_workers: the heartbeat table of the Rust port, same columns.
 * Our job workers are listed here while they live (the supervisor keeps
 * the rows and heartbeats); Rust workers with recovery enabled heartbeat
 * here too, and a stale heartbeat releases their locks (recovery.c).  Node
 * does not know the table.  Rows are not dumped: they describe processes.
 */
CREATE TABLE graphile_worker._private_workers (
	id text NOT NULL,
	last_heartbeat_at timestamp with time zone NOT NULL,
	started_at timestamp with time zone DEFAULT pg_catalog.now() NOT NULL,
	metadata jsonb,
	CONSTRAINT _private_workers_pkey PRIMARY KEY (id)
);
CREATE INDEX _private_workers_last_heartbeat_at_idx
	ON graphile_worker._private_workers USING btree (last_heartbeat_at);
ALTER TABLE graphile_worker._private_workers ENABLE ROW LEVEL SECURITY;

/*
 * The Node package's migration ledger: ids 1..20 are applied, the breaking
 * ones flagged, so graphile-worker 0.18 runs no migration against us.
 */
INSERT INTO graphile_worker.migrations (id, breaking)
	SELECT i, i OPERATOR(pg_catalog.=) ANY ('{1,3,11,13,14,16,19}'::integer[])
	FROM pg_catalog.generate_series(1, 20) AS i;

/*
 * Queued jobs, queues, task ids and cron bookkeeping are user data: pg_dump
 * must dump them (and the identity sequences' positions).
 */
SELECT pg_catalog.pg_extension_config_dump('graphile_worker._private_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('graphile_worker._private_job_queues', '');
SELECT pg_catalog.pg_extension_config_dump('graphile_worker._private_tasks', '');
SELECT pg_catalog.pg_extension_config_dump('graphile_worker._private_known_crontabs', '');
SELECT pg_catalog.pg_extension_config_dump('graphile_worker.jobs_id_seq1', '');
SELECT pg_catalog.pg_extension_config_dump('graphile_worker.job_queues_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('graphile_worker.tasks_id_seq', '');

/* ---------------------------------------------------------------------
 * Input validation (ours; Node has none of it)
 * ---------------------------------------------------------------------
 */

/*
 * _check_job_specs raises a clear error for the first bad spec, before the
 * caller writes anything.  Limits are those of the table constraints and of
 * smallint; the messages say which spec and which field.
 */
CREATE FUNCTION graphile_worker._check_job_specs(specs graphile_worker.job_spec[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
declare
  spec graphile_worker.job_spec;
  n integer := 0;
  flag text;
  seen_keys text[] := '{}';
begin
  if specs is null then
    return;
  end if;
  foreach spec in array specs loop
    n := n + 1;
    if spec is null then
      raise exception 'job spec % is NULL', n
        using errcode = 'null_value_not_allowed';
    end if;
    if spec.identifier is null then
      raise exception 'task identifier must not be NULL'
        using errcode = 'null_value_not_allowed',
              detail = format('Job spec %s has no identifier.', n);
    end if;
    if spec.identifier = '' then
      raise exception 'task identifier must not be empty'
        using errcode = 'invalid_parameter_value',
              detail = format('Job spec %s has an empty identifier.', n);
    end if;
    if length(spec.identifier) > 128 then
      raise exception 'task identifier is too long'
        using errcode = 'string_data_right_truncation',
              detail = format('Job spec %s has an identifier of %s characters; the limit is 128.',
                              n, length(spec.identifier));
    end if;
    if spec.queue_name is not null and length(spec.queue_name) > 128 then
      raise exception 'queue name is too long'
        using errcode = 'string_data_right_truncation',
              detail = format('Job spec %s has a queue_name of %s characters; the limit is 128.',
                              n, length(spec.queue_name));
    end if;
    if spec.job_key is not null then
      if spec.job_key = '' then
        raise exception 'job_key must not be empty'
          using errcode = 'invalid_parameter_value',
                detail = format('Job spec %s has an empty job_key.', n),
                hint = 'Pass NULL for a job without a key.';
      end if;
      if length(spec.job_key) > 512 then
        raise exception 'job_key is too long'
          using errcode = 'string_data_right_truncation',
                detail = format('Job spec %s has a job_key of %s characters; the limit is 512.',
                                n, length(spec.job_key));
      end if;
      if spec.job_key = any (seen_keys) then
        raise exception 'job_key "%" appears more than once', spec.job_key
          using errcode = 'invalid_parameter_value',
                detail = format('Job spec %s repeats the key of an earlier spec.', n);
      end if;
      seen_keys := seen_keys || spec.job_key;
    end if;
    if spec.max_attempts is not null and spec.max_attempts < 1 then
      raise exception 'max_attempts must be at least 1'
        using errcode = 'invalid_parameter_value',
              detail = format('Job spec %s has max_attempts %s.', n, spec.max_attempts);
    end if;
    if spec.flags is not null then
      foreach flag in array spec.flags loop
        if flag is null then
          raise exception 'flags must not contain NULL'
            using errcode = 'null_value_not_allowed',
                  detail = format('Job spec %s has a NULL flag.', n);
        end if;
      end loop;
    end if;
  end loop;
end;
$$;

/*
 * _lock_job_keys serialises keyed inserts: it takes a transaction advisory
 * lock per distinct key (in hash order, so two callers never deadlock), then
 * row-locks the existing jobs with those keys, so no worker can claim one of
 * them between the detach step and the upsert of add_jobs.  This is what
 * makes add_job never return an all-NULL row (graphile/worker#580).
 * The two-argument lock space (class 0x67770001) keeps clear of
 * applications' single-bigint advisory locks.
 */
CREATE FUNCTION graphile_worker._lock_job_keys(keys text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
begin
  perform pg_catalog.pg_advisory_xact_lock(1735852033, h)
  from (
    select distinct pg_catalog.hashtext(k) as h
    from pg_catalog.unnest(keys) as k
    where k is not null
  ) as hashes
  order by h;
  perform 1
  from graphile_worker._private_jobs as jobs
  where jobs.key = any (keys)
  order by jobs.id
  for update;
end;
$$;

/* ---------------------------------------------------------------------
 * Background worker support (C, graphile_worker.so)
 * ---------------------------------------------------------------------
 */

/*
 * _wake_at_commit: when the calling transaction commits, wake "due" idle
 * job workers of this database and set a timer for first_future (the
 * earliest of "future" jobs scheduled later).  Does nothing when the
 * library is not preloaded.
 */
CREATE FUNCTION graphile_worker._wake_at_commit(due integer,
	first_future timestamp with time zone, future integer)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'gw_sql_wake_at_commit';

/* _extension_created: at commit, the launcher starts this database's workers. */
CREATE FUNCTION graphile_worker._extension_created()
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'gw_sql_extension_created';

CREATE FUNCTION graphile_worker._workers(
	OUT datid oid, OUT datname text, OUT pid integer, OUT kind text,
	OUT state text, OUT worker_id text, OUT job_id bigint,
	OUT task_identifier text, OUT state_since timestamp with time zone)
RETURNS SETOF record
LANGUAGE C
AS 'MODULE_PATHNAME', 'gw_sql_workers';

CREATE VIEW graphile_worker.workers AS
	SELECT datid, datname, pid, kind, state, worker_id, job_id,
		task_identifier, state_since
	FROM graphile_worker._workers();

/* ---------------------------------------------------------------------
 * Recurring jobs (crontab.c, cron_fire.c).  The crontab text is kept as
 * set; entries are parsed again wherever they are used.  Firing uses Node's
 * _private_known_crontabs protocol, so Node workers with the same entries
 * never fire a minute twice.
 * ---------------------------------------------------------------------
 */
CREATE TABLE graphile_worker._private_crontab (
	id integer DEFAULT 1 NOT NULL PRIMARY KEY CHECK (id = 1),
	crontab text NOT NULL,
	updated_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE graphile_worker._private_crontab ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('graphile_worker._private_crontab', '');

CREATE FUNCTION graphile_worker.set_crontab(crontab text)
RETURNS integer
LANGUAGE C
STRICT
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_set_crontab';

CREATE FUNCTION graphile_worker._crontab_entries(
	OUT line integer, OUT id text, OUT task_identifier text,
	OUT schedule text, OUT time_zone text, OUT fill interval,
	OUT max_attempts smallint, OUT queue_name text, OUT job_key text,
	OUT job_key_mode text, OUT priority smallint, OUT payload json,
	OUT next_run_at timestamp with time zone)
RETURNS SETOF record
LANGUAGE C
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_crontab_entries';

CREATE VIEW graphile_worker.crontab AS
	SELECT e.line, e.id, e.task_identifier, e.schedule, e.time_zone, e.fill,
		e.max_attempts, e.queue_name, e.job_key, e.job_key_mode, e.priority,
		e.payload, known.known_since, known.last_execution, e.next_run_at
	FROM graphile_worker._crontab_entries() AS e
	LEFT JOIN graphile_worker._private_known_crontabs AS known
	ON known.identifier OPERATOR(pg_catalog.=) e.id;

/* Internal, for tests: fire the minute of at, or back-fill as of start. */
CREATE FUNCTION graphile_worker._cron_tick(at timestamp with time zone)
RETURNS integer
LANGUAGE C
STRICT
AS 'MODULE_PATHNAME', 'gw_sql_cron_tick';

CREATE FUNCTION graphile_worker._cron_backfill(start timestamp with time zone)
RETURNS integer
LANGUAGE C
STRICT
AS 'MODULE_PATHNAME', 'gw_sql_cron_backfill';

/* ---------------------------------------------------------------------
 * The public API (signatures, defaults and results as Node 0.18)
 * ---------------------------------------------------------------------
 */

CREATE FUNCTION graphile_worker.add_jobs(
	specs graphile_worker.job_spec[],
	job_key_preserve_run_at boolean DEFAULT false)
RETURNS SETOF graphile_worker._private_jobs
LANGUAGE plpgsql
SECURITY DEFINER
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

/*
 * _add_job_keyed: add_job for a job with a job_key, in every job_key_mode
 * (the C function add_job hands such calls over, with the same arguments).
 * It is the whole of add_job in PL/pgSQL and also accepts unkeyed jobs.
 */
CREATE FUNCTION graphile_worker._add_job_keyed(
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
    from graphile_worker.add_jobs(
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

/*
 * add_job (add_job.c): unkeyed jobs are checked and inserted in C, with a
 * plan kept per backend (generic from the start, so no plan_cache_mode);
 * keyed ones go to _add_job_keyed.
 */
CREATE FUNCTION graphile_worker.add_job(
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
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'gw_sql_add_job';

CREATE FUNCTION graphile_worker.remove_job(job_key text)
RETURNS graphile_worker._private_jobs
LANGUAGE plpgsql
STRICT
SECURITY DEFINER
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

CREATE FUNCTION graphile_worker.complete_jobs(job_ids bigint[])
RETURNS SETOF graphile_worker._private_jobs
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  delete from graphile_worker._private_jobs as jobs
    where id = any(job_ids)
    and (
      locked_at is null
    or
      locked_at < pg_catalog.now() - interval '4 hours'
    )
    returning *;
$$;

CREATE FUNCTION graphile_worker.permanently_fail_jobs(
	job_ids bigint[],
	error_message text DEFAULT NULL::text)
RETURNS SETOF graphile_worker._private_jobs
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  update graphile_worker._private_jobs as jobs
    set
      last_error = coalesce(error_message, 'Manually marked as failed'),
      attempts = max_attempts,
      updated_at = pg_catalog.now()
    where id = any(job_ids)
    and (
      locked_at is null
    or
      locked_at < pg_catalog.now() - interval '4 hours'
    )
    returning *;
$$;

CREATE FUNCTION graphile_worker.reschedule_jobs(
	job_ids bigint[],
	run_at timestamp with time zone DEFAULT NULL::timestamp with time zone,
	priority integer DEFAULT NULL::integer,
	attempts integer DEFAULT NULL::integer,
	max_attempts integer DEFAULT NULL::integer)
RETURNS SETOF graphile_worker._private_jobs
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  update graphile_worker._private_jobs as jobs
    set
      run_at = coalesce(reschedule_jobs.run_at, jobs.run_at),
      priority = coalesce(reschedule_jobs.priority::smallint, jobs.priority),
      attempts = coalesce(reschedule_jobs.attempts::smallint, jobs.attempts),
      max_attempts = coalesce(reschedule_jobs.max_attempts::smallint, jobs.max_attempts),
      updated_at = pg_catalog.now()
    where id = any(job_ids)
    and (
      locked_at is null
    or
      locked_at < pg_catalog.now() - interval '4 hours'
    )
    returning *;
$$;

CREATE FUNCTION graphile_worker.force_unlock_workers(worker_ids text[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
update graphile_worker._private_jobs as jobs
set locked_at = null, locked_by = null
where locked_by = any(worker_ids);
update graphile_worker._private_job_queues as job_queues
set locked_at = null, locked_by = null
where locked_by = any(worker_ids);
$$;

/* ---------------------------------------------------------------------
 * Privileges: nothing for PUBLIC.  A DBA grants USAGE on the schema and
 * EXECUTE on add_job/add_jobs/remove_job to application roles.
 * ---------------------------------------------------------------------
 */
REVOKE ALL ON FUNCTION graphile_worker._wake_at_commit(integer, timestamp with time zone, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._extension_created() FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._workers() FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._check_job_specs(graphile_worker.job_spec[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._lock_job_keys(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker.add_jobs(graphile_worker.job_spec[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._add_job_keyed(text, json, text, timestamp with time zone, integer, text, integer, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker.add_job(text, json, text, timestamp with time zone, integer, text, integer, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker.remove_job(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker.complete_jobs(bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker.permanently_fail_jobs(bigint[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker.reschedule_jobs(bigint[], timestamp with time zone, integer, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker.force_unlock_workers(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker.set_crontab(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._crontab_entries() FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._cron_tick(timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION graphile_worker._cron_backfill(timestamp with time zone) FROM PUBLIC;

COMMENT ON TABLE graphile_worker._private_jobs IS
	'The job queue (Graphile Worker 0.18 schema); read through graphile_worker.jobs';
COMMENT ON VIEW graphile_worker.jobs IS
	'Jobs without their payload: the stable read interface';
COMMENT ON TABLE graphile_worker.migrations IS
	'Graphile Worker migration ledger; ids 1..20 mark this schema as migration 20';
COMMENT ON FUNCTION graphile_worker.add_job(text, json, text, timestamp with time zone, integer, text, integer, text[], text) IS
	'Enqueue one job; job_key with job_key_mode replace, preserve_run_at or unsafe_dedupe de-duplicates';
COMMENT ON FUNCTION graphile_worker.add_jobs(graphile_worker.job_spec[], boolean) IS
	'Enqueue many jobs in one call';
COMMENT ON FUNCTION graphile_worker.remove_job(text) IS
	'Delete the pending job with this key, or stop a running one from retrying';
COMMENT ON FUNCTION graphile_worker.complete_jobs(bigint[]) IS
	'Delete these jobs unless locked (locks older than 4 hours count as released)';
COMMENT ON FUNCTION graphile_worker.permanently_fail_jobs(bigint[], text) IS
	'Mark these jobs permanently failed unless locked';
COMMENT ON FUNCTION graphile_worker.reschedule_jobs(bigint[], timestamp with time zone, integer, integer, integer) IS
	'Change run_at, priority, attempts or max_attempts of these jobs unless locked';
COMMENT ON FUNCTION graphile_worker.force_unlock_workers(text[]) IS
	'Release the jobs and queues locked by these (dead) worker ids';
COMMENT ON VIEW graphile_worker.workers IS
	'The processes of graphile_worker in this server: launcher, supervisors, job workers';
COMMENT ON TABLE graphile_worker._private_crontab IS
	'This database''s crontab text, as given to set_crontab';
COMMENT ON FUNCTION graphile_worker.set_crontab(text) IS
	'Replace this database''s crontab (Graphile Worker grammar); returns the number of entries';
COMMENT ON VIEW graphile_worker.crontab IS
	'The crontab entries with their options, last firing and next firing';
COMMENT ON FUNCTION graphile_worker._cron_tick(timestamp with time zone) IS
	'Internal (tests): fire the crontab entries due in the minute of at';
COMMENT ON FUNCTION graphile_worker._cron_backfill(timestamp with time zone) IS
	'Internal (tests): back-fill as a supervisor starting at start would';

/* Start this database's workers once the installing transaction commits. */
SELECT graphile_worker._extension_created();
