/*-------------------------------------------------------------------------
 *
 * recovery.c
 *	  The supervisor's sweep: releasing the locks of workers that are gone,
 *	  and keeping our rows in graphile_worker._private_workers.
 *
 * Run by the supervisor of each database when it starts (after a crash
 * restart that is within a second of the server accepting connections),
 * when one of its workers exits unexpectedly, and every sweep_interval.
 * One transaction does, in order:
 *
 *  1. Our dead workers.  A lock whose locked_by is a worker id of this
 *	   server (worker_id.c) naming no live process is released as a failed
 *	   attempt: the attempt stays counted, last_error says the worker died,
 *	   run_at backs off as for any failure, so a job that crashes the server
 *	   every time (a poison job) is retried with backoff and ends
 *	   permanently failed after max_attempts.  Locks of Node and Rust
 *	   workers never match.
 *	   The live set is read after the locks: a worker registers in shared
 *	   memory before it claims, so every lock seen belongs to a process that
 *	   is either in the live set or gone.  Each released job gets a
 *	   "worker_died" history row (unless graphile_worker.history is off).
 *	   A lock whose id is ours but names another system identifier is
 *	   released the same way at once, with a last_error saying so.  A
 *	   database lives in one cluster, and only a process of that cluster can
 *	   have written to it; every copy that keeps the system identifier
 *	   (a standby, promoted or not, pg_basebackup, a file-level copy) is
 *	   covered by the rule above.  So an id naming another system was
 *	   written before the database came here by pg_dump and restore,
 *	   pg_upgrade or logical replication, and its process can never complete
 *	   the job in this database: without this rule the job would wait for
 *	   Node's 4-hour rule.  (A logical subscriber of the queue tables must
 *	   not run workers at all: both sides would run the same jobs.)
 *  2. Heartbeats: a row per live job worker of this database is upserted
 *	   into _private_workers; our rows naming no live process are deleted.
 *  3. Node's rule: jobs and queues locked more than 4 hours ago by anyone
 *	   but our live workers are unlocked (attempt not refunded, run_at =
 *	   greatest(run_at, now())), as graphile-worker's resetLockedAt does.
 *  4. The Rust port's rule: workers (not ours) whose heartbeat is older
 *	   than 5 minutes are deleted and their jobs and queues released as its
 *	   recover_dead_worker_jobs does (attempt refunded).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "graphile_worker.h"

/* every lock held by a worker id of ours, of whatever server */
static const char *const candidates_sql =
"SELECT jobs.locked_by FROM graphile_worker._private_jobs AS jobs"
" WHERE jobs.locked_by OPERATOR(pg_catalog.~~) 'gw-%'"
" UNION "
"SELECT job_queues.locked_by FROM graphile_worker._private_job_queues AS job_queues"
" WHERE job_queues.locked_by OPERATOR(pg_catalog.~~) 'gw-%'";

/*
 * $1 worker ids whose locks are released, $2 the last_error of each, $3
 * whether each names another server; returns the jobs released for ids of
 * this server and of others.  %s is record_died_sql in a database that has
 * the history table (0.2.0), else nothing.
 */
static const char *const release_dead_sql_format =
"WITH dead AS ("
"  SELECT * FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]),"
"                           pg_catalog.unnest($2::pg_catalog.text[]),"
"                           pg_catalog.unnest($3::pg_catalog.bool[])) AS d(id, message, foreign_id)"
"), old AS ("
"  SELECT jobs.id, jobs.locked_at, jobs.locked_by, dead.message, dead.foreign_id"
"    FROM graphile_worker._private_jobs AS jobs"
"    JOIN dead ON jobs.locked_by OPERATOR(pg_catalog.=) dead.id"
"     FOR UPDATE OF jobs"
"), j AS ("
"  UPDATE graphile_worker._private_jobs AS jobs"
"     SET last_error = old.message,"
"         run_at = GREATEST(pg_catalog.now(), jobs.run_at) OPERATOR(pg_catalog.+)"
"                  (pg_catalog.exp(LEAST(jobs.attempts, 10::pg_catalog.int2)::pg_catalog.float8)"
"                   OPERATOR(pg_catalog.*) '1 second'::pg_catalog.interval),"
"         locked_by = NULL, locked_at = NULL"
"    FROM old"
"   WHERE jobs.id OPERATOR(pg_catalog.=) old.id"
"  RETURNING jobs.id, jobs.task_id, jobs.job_queue_id, jobs.key, jobs.payload,"
"            jobs.attempts, jobs.last_error, old.locked_at, old.locked_by, old.foreign_id"
"), q AS ("
"  UPDATE graphile_worker._private_job_queues AS job_queues"
"     SET locked_by = NULL, locked_at = NULL"
"   WHERE job_queues.locked_by OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])"
")%s "
"SELECT pg_catalog.count(*) FILTER (WHERE NOT j.foreign_id),"
"       pg_catalog.count(*) FILTER (WHERE j.foreign_id) FROM j";

/*
 * The history rows of the released jobs ("worker_died"), when $4 (history
 * is not off); with their payloads when $5.
 */
static const char *const record_died_sql =
", h AS ("
"  INSERT INTO graphile_worker._private_job_history"
"    (job_id, task_identifier, queue_name, key, payload, attempt, outcome,"
"     error, started_at, finished_at, worker_id)"
"  SELECT j.id, tasks.identifier, job_queues.queue_name, j.key,"
"         CASE WHEN $5::pg_catalog.bool THEN j.payload END, j.attempts, 'worker_died',"
"         j.last_error, j.locked_at, pg_catalog.now(), j.locked_by"
"    FROM j"
"    JOIN graphile_worker._private_tasks AS tasks"
"      ON tasks.id OPERATOR(pg_catalog.=) j.task_id"
"    LEFT JOIN graphile_worker._private_job_queues AS job_queues"
"      ON job_queues.id OPERATOR(pg_catalog.=) j.job_queue_id"
"   WHERE $4::pg_catalog.bool"
")";

/*
 * $1 live worker ids of this database, $2 their start times, $3 their
 * metadata, $4 LIKE pattern of this server's ids, $5 every live worker id
 */
static const char *const heartbeat_sql =
"WITH up AS ("
"  INSERT INTO graphile_worker._private_workers AS w (id, last_heartbeat_at, started_at, metadata)"
"  SELECT l.id, pg_catalog.now(), l.started_at, l.metadata"
"    FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]),"
"                    pg_catalog.unnest($2::pg_catalog.timestamptz[]),"
"                    pg_catalog.unnest($3::pg_catalog.jsonb[])) AS l(id, started_at, metadata)"
"  ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = pg_catalog.now()"
")"
"DELETE FROM graphile_worker._private_workers AS w"
" WHERE w.id OPERATOR(pg_catalog.~~) $4::pg_catalog.text"
"   AND w.id OPERATOR(pg_catalog.<>) ALL ($5::pg_catalog.text[])";

/* $1 every live worker id of ours */
static const char *const node_stale_sql =
"WITH j AS ("
"  UPDATE graphile_worker._private_jobs AS jobs"
"     SET locked_at = NULL, locked_by = NULL,"
"         run_at = GREATEST(jobs.run_at, pg_catalog.now())"
"   WHERE jobs.locked_at OPERATOR(pg_catalog.<)"
"         (pg_catalog.now() OPERATOR(pg_catalog.-) '4 hours'::pg_catalog.interval)"
"     AND jobs.locked_by OPERATOR(pg_catalog.<>) ALL ($1::pg_catalog.text[])"
"  RETURNING jobs.id"
"), q AS ("
"  UPDATE graphile_worker._private_job_queues AS job_queues"
"     SET locked_at = NULL, locked_by = NULL"
"   WHERE job_queues.locked_at OPERATOR(pg_catalog.<)"
"         (pg_catalog.now() OPERATOR(pg_catalog.-) '4 hours'::pg_catalog.interval)"
"     AND job_queues.locked_by OPERATOR(pg_catalog.<>) ALL ($1::pg_catalog.text[])"
")"
"SELECT pg_catalog.count(*) FROM j";

/* $1 LIKE pattern of this server's ids */
static const char *const rust_stale_sql =
"WITH dead AS ("
"  DELETE FROM graphile_worker._private_workers AS w"
"   WHERE w.last_heartbeat_at OPERATOR(pg_catalog.<)"
"         (pg_catalog.now() OPERATOR(pg_catalog.-) '5 minutes'::pg_catalog.interval)"
"     AND w.id OPERATOR(pg_catalog.!~~) $1::pg_catalog.text"
"  RETURNING w.id"
"), j AS ("
"  UPDATE graphile_worker._private_jobs AS jobs"
"     SET attempts = GREATEST(0::pg_catalog.int2, jobs.attempts OPERATOR(pg_catalog.-) 1::pg_catalog.int2),"
"         locked_at = NULL, locked_by = NULL,"
"         run_at = GREATEST(jobs.run_at, pg_catalog.now()),"
"         last_error = 'Job recovered after worker interruption',"
"         updated_at = pg_catalog.now()"
"    FROM dead"
"   WHERE jobs.locked_by OPERATOR(pg_catalog.=) dead.id"
"  RETURNING jobs.id"
"), q AS ("
"  UPDATE graphile_worker._private_job_queues AS job_queues"
"     SET locked_at = NULL, locked_by = NULL"
"    FROM dead"
"   WHERE job_queues.locked_by OPERATOR(pg_catalog.=) dead.id"
")"
"SELECT (SELECT pg_catalog.count(*) FROM dead), (SELECT pg_catalog.count(*) FROM j)";

static SPIPlanPtr candidates_plan, release_dead_plan, heartbeat_plan,
			node_stale_plan, rust_stale_plan;
static bool release_dead_plan_records = false;

static Datum
text_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* The live job workers: all of them, and those of dboid with details. */
typedef struct LiveSet
{
	int			nall;
	Datum	   *all;			/* text: worker ids of every database */
	int			nmine;
	Datum	   *mine;			/* text: worker ids of dboid */
	Datum	   *mine_started;	/* timestamptz */
	Datum	   *mine_metadata;	/* jsonb */
} LiveSet;

static void
read_live_set(Oid dboid, LiveSet *live)
{
	GwProc	   *copy = palloc(sizeof(GwProc) * gw_shared->nprocs);
	int			n = 0;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	for (int i = 0; i < gw_shared->nprocs; i++)
		if (gw_shared->procs[i].in_use && gw_shared->procs[i].worker_id[0] != '\0')
			copy[n++] = gw_shared->procs[i];
	LWLockRelease(gw_shared->lock);

	live->all = palloc(sizeof(Datum) * Max(n, 1));
	live->mine = palloc(sizeof(Datum) * Max(n, 1));
	live->mine_started = palloc(sizeof(Datum) * Max(n, 1));
	live->mine_metadata = palloc(sizeof(Datum) * Max(n, 1));
	live->nall = live->nmine = 0;
	for (int i = 0; i < n; i++)
	{
		Datum		id = CStringGetTextDatum(copy[i].worker_id);

		live->all[live->nall++] = id;
		if (copy[i].dboid == dboid)
		{
			char		meta[64];

			snprintf(meta, sizeof(meta), "{\"pid\": %d, \"kind\": \"job worker\"}",
					 copy[i].pid);
			live->mine[live->nmine] = id;
			live->mine_started[live->nmine] = TimestampTzGetDatum(copy[i].started_at);
			live->mine_metadata[live->nmine] =
				DirectFunctionCall1(jsonb_in, CStringGetDatum(meta));
			live->nmine++;
		}
	}
}

static bool
id_in(const char *id, LiveSet *live)
{
	for (int i = 0; i < live->nall; i++)
		if (strcmp(id, TextDatumGetCString(live->all[i])) == 0)
			return true;
	return false;
}

/*
 * Step 1: releases the locks of our workers that died and of our workers
 * of other servers; sets *died and *foreign to the number of jobs
 * released of each.  Fills *live.
 */
static void
release_our_dead(uint64 system_id, Oid dboid, LiveSet *live, int64 *died,
				 int64 *foreign)
{
	Oid			types[5] = {TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID, BOOLOID, BOOLOID};
	Datum		args[5];
	bool		records;
	Datum	   *dead;
	Datum	   *messages;
	Datum	   *foreign_ids;
	int			ndead = 0;
	int			ncand;
	bool		isnull;

	*died = *foreign = 0;
	if (SPI_execute_plan(gw_prepare_once(&candidates_plan, candidates_sql, 0, NULL),
						 NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read locked jobs");
	ncand = (int) SPI_processed;
	dead = palloc(sizeof(Datum) * Max(ncand, 1));
	messages = palloc(sizeof(Datum) * Max(ncand, 1));
	foreign_ids = palloc(sizeof(Datum) * Max(ncand, 1));

	/* the live set is read after the locks: see the file header */
	read_live_set(dboid, live);
	for (int i = 0; i < ncand; i++)
	{
		char	   *id = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));
		GwWorkerId	parsed;

		if (!gw_worker_id_parse(id, &parsed))
			continue;
		if (parsed.system_id != system_id)
		{
			messages[ndead] = CStringGetTextDatum(psprintf(
				"worker %s belongs to another PostgreSQL server: this database was copied from it while the job ran",
				id));
			foreign_ids[ndead] = BoolGetDatum(true);
		}
		else if (id_in(id, live))
			continue;
		else
		{
			messages[ndead] = CStringGetTextDatum(psprintf(
				"worker %s died while running this job", id));
			foreign_ids[ndead] = BoolGetDatum(false);
		}
		dead[ndead++] = CStringGetTextDatum(id);
	}
	if (ndead == 0)
		return;

	/* a database still at 0.1.0 has no history table */
	records = OidIsValid(get_relname_relid("_private_job_history",
										   get_namespace_oid(GW_SCHEMA, false)));
	if (release_dead_plan != NULL && records != release_dead_plan_records)
	{
		SPI_freeplan(release_dead_plan);
		release_dead_plan = NULL;
	}
	release_dead_plan_records = records;
	args[0] = text_array(dead, ndead);
	args[1] = text_array(messages, ndead);
	args[2] = PointerGetDatum(construct_array(foreign_ids, ndead, BOOLOID,
											  1, true, TYPALIGN_CHAR));
	args[3] = BoolGetDatum(gw_history != GW_HISTORY_OFF);
	args[4] = BoolGetDatum(gw_history_payloads);
	if (SPI_execute_plan(gw_prepare_once(&release_dead_plan,
										 psprintf(release_dead_sql_format,
												  records ? record_died_sql : ""),
										 records ? 5 : 3, types),
						 args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not release the jobs of dead workers");
	*died = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*foreign = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

static void
heartbeat(const char *pattern, LiveSet *live)
{
	Oid			types[5] = {TEXTARRAYOID, TIMESTAMPTZARRAYOID, JSONBARRAYOID, TEXTOID, TEXTARRAYOID};
	Datum		args[5];

	args[0] = text_array(live->mine, live->nmine);
	args[1] = PointerGetDatum(construct_array(live->mine_started, live->nmine,
											  TIMESTAMPTZOID, sizeof(TimestampTz),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[2] = PointerGetDatum(construct_array(live->mine_metadata, live->nmine,
											  JSONBOID, -1, false, TYPALIGN_INT));
	args[3] = CStringGetTextDatum(pattern);
	args[4] = text_array(live->all, live->nall);
	if (SPI_execute_plan(gw_prepare_once(&heartbeat_plan, heartbeat_sql, 5, types),
						 args, NULL, false, 0) < 0)
		elog(ERROR, "could not record worker heartbeats");
}

/*
 * gw_sweep runs the four steps of the file header in one transaction, in
 * the supervisor of dboid.
 */
void
gw_sweep(Oid dboid)
{
	uint64		system_id = GetSystemIdentifier();
	char		pattern[32];
	LiveSet		live;
	Oid			ta[1] = {TEXTARRAYOID};
	Oid			t1[1] = {TEXTOID};
	Datum		arg;
	bool		isnull;
	int64		released;
	int64		foreign;
	int64		stale;

	snprintf(pattern, sizeof(pattern), "gw-%016llx-%%", (unsigned long long) system_id);

	gw_xact_begin("graphile_worker: sweeping locks of dead workers");

	release_our_dead(system_id, dboid, &live, &released, &foreign);
	if (released > 0)
		ereport(LOG,
				(errmsg("graphile_worker released %lld jobs locked by workers that died",
						(long long) released)));
	if (foreign > 0)
		ereport(LOG,
				(errmsg("graphile_worker released %lld jobs locked by workers of another server",
						(long long) foreign),
				 errdetail("This database was copied from that server while they ran; they cannot complete them here.")));

	heartbeat(pattern, &live);

	arg = text_array(live.all, live.nall);
	if (SPI_execute_plan(gw_prepare_once(&node_stale_plan, node_stale_sql, 1, ta),
						 &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not release stale locks");
	stale = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (stale > 0)
		ereport(LOG,
				(errmsg("graphile_worker released %lld jobs locked more than 4 hours ago",
						(long long) stale)));

	arg = CStringGetTextDatum(pattern);
	if (SPI_execute_plan(gw_prepare_once(&rust_stale_plan, rust_stale_sql, 1, t1),
						 &arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not release jobs of workers with a stale heartbeat");
	stale = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (stale > 0)
		ereport(LOG,
				(errmsg("graphile_worker removed %lld workers whose heartbeat is older than 5 minutes",
						(long long) stale)));

	gw_xact_commit();
}
