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
