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
