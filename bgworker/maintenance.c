/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  The supervisor's housekeeping of its database, besides the sweep and
 *	  the crontab:
 *
 *	  - job history partitions (a UTC day, hour or minute each, as the
 *		retention wants): the coming ones are created and the ones older
 *		than graphile_worker.history_retention dropped, whole
 *		(_history_maintain), when the supervisor starts, when the
 *		retention changes, and every 10 minutes (every minute for
 *		partitions of a minute);
 *	  - unhandled tasks: every 10 minutes, one WARNING per task identifier
 *		with due jobs and no handler here (the unhandled_tasks view), at
 *		most once an hour per identifier;
 *	  - graphile_worker.cleanup() every graphile_worker.cleanup_interval
 *		(off by default).
 *
 *	  Each chore runs in a transaction of its own that waits at most
 *	  250 ms for a lock (the history partitions' DDL must not queue the job
 *	  workers' inserts behind a long reader).  Errors are logged and the
 *	  chore is tried again a minute later: the supervisor keeps running.  A
 *	  database whose extension is still at 0.1.0 has none of these objects
 *	  and nothing is done.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "compat.h"
#include "graphile_worker.h"

#define CHORE_EVERY_MS			(10 * 60 * 1000)
#define CHORE_RETRY_MS			(60 * 1000)
#define HISTORY_MINUTES_EVERY_MS (60 * 1000)
#define UNHANDLED_WARN_EVERY_MS	(60 * 60 * 1000)
#define CHORE_LOCK_TIMEOUT		"250ms"
#define WARNED_KEY_LEN			256

typedef struct Warned
{
	char		identifier[WARNED_KEY_LEN];
	TimestampTz at;
} Warned;

static TimestampTz next_history = 0;
static TimestampTz next_unhandled = 0;
static TimestampTz next_cleanup = 0;
static int	history_retention_done = -1;
static int	cleanup_interval_done = 0;
static HTAB *warned = NULL;

/* Whether this database has graphile_worker.<relname> (0.2.0 objects). */
static bool
has_relation(const char *relname)
{
	Oid			nsp = get_namespace_oid(GW_SCHEMA, true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid(relname, nsp));
}

static void
begin_chore(const char *activity)
{
	gw_xact_begin(activity);
	(void) set_config_option("lock_timeout", CHORE_LOCK_TIMEOUT,
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
}

/* Creates the coming days' history partitions and drops the expired ones. */
static void
maintain_history(void)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		arg = Int32GetDatum(gw_history_retention_min);
	bool		isnull;
	int			created;
	int			dropped;

	begin_chore("graphile_worker: maintaining job history partitions");
	if (!has_relation("_private_job_history"))
	{
		gw_xact_commit();
		return;
	}
	if (SPI_execute_with_args("SELECT m.created, m.dropped"
							  "  FROM graphile_worker._history_maintain("
							  "         pg_catalog.make_interval(mins => $1)) AS m",
							  1, argtypes, &arg, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not maintain the job history partitions");
	created = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	dropped = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	gw_xact_commit();
	if (dropped > 0)
		ereport(LOG,
				(errmsg("graphile_worker dropped %d job history partitions older than graphile_worker.history_retention",
						dropped)));
	if (created > 0)
		ereport(DEBUG1,
				(errmsg("graphile_worker created %d job history partitions", created)));
}

/*
 * warn_unhandled gives one WARNING per identifier of the unhandled_tasks
 * view not warned about within the hour.
 */
static void
warn_unhandled(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	Warned	   *w;

	if (warned == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = WARNED_KEY_LEN;
		ctl.entrysize = sizeof(Warned);
		ctl.hcxt = TopMemoryContext;
		warned = hash_create("graphile_worker unhandled tasks warned", 64, &ctl,
							 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	/* forget the warnings older than an hour */
	hash_seq_init(&seq, warned);
	while ((w = hash_seq_search(&seq)) != NULL)
		if (now - w->at >= UNHANDLED_WARN_EVERY_MS * INT64CONST(1000))
			(void) hash_search(warned, w->identifier, HASH_REMOVE, NULL);

	begin_chore("graphile_worker: looking for unhandled tasks");
	if (!has_relation("unhandled_tasks"))
	{
		gw_xact_commit();
		return;
	}
	if (SPI_execute("SELECT u.task_identifier, u.due_jobs, u.hint"
					"  FROM graphile_worker.unhandled_tasks AS u"
					" ORDER BY u.task_identifier", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read graphile_worker.unhandled_tasks");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *identifier = SPI_getvalue(tup, desc, 1);
		char	   *due = SPI_getvalue(tup, desc, 2);
		char	   *hint = SPI_getvalue(tup, desc, 3);
		char		key[WARNED_KEY_LEN];
		bool		found;

		CHECK_FOR_INTERRUPTS();
		strlcpy(key, identifier, sizeof(key));
		w = hash_search(warned, key, HASH_ENTER, &found);
		if (found)
			continue;
		w->at = now;
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("graphile_worker: %s due jobs of task \"%s\" have no handler in database \"%s\"",
						due, identifier, get_database_name(MyDatabaseId)),
				 hint ? errhint("%s.", hint) :
				 errhint("Create a function %s(payload json) in a schema of graphile_worker.task_schemas, or run the task with a Node or Rust worker.",
						 quote_identifier(identifier))));
	}
	gw_xact_commit();
}

/* Runs graphile_worker.cleanup() as graphile_worker.cleanup_* say. */
static void
run_cleanup(void)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		arg = Int32GetDatum(gw_cleanup_permanently_failed_after_min);
	int64		counts[3] = {0, 0, 0};

	begin_chore("graphile_worker: cleanup");
	if (!has_relation("job_history"))	/* cleanup() came with it */
	{
		gw_xact_commit();
		return;
	}
	if (SPI_execute_with_args("SELECT c.deleted_jobs, c.deleted_tasks, c.deleted_queues"
							  "  FROM graphile_worker.cleanup(true, true,"
							  "         CASE WHEN $1 OPERATOR(pg_catalog.>=) 0"
							  "              THEN pg_catalog.make_interval(mins => $1) END) AS c",
							  1, argtypes, &arg, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not run graphile_worker.cleanup()");
	for (int c = 0; c < 3; c++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &isnull);

		counts[c] = isnull ? 0 : DatumGetInt64(d);
	}
	gw_xact_commit();
	if (counts[0] + counts[1] + counts[2] > 0)
		ereport(LOG,
				(errmsg("graphile_worker cleanup deleted %lld permanently failed jobs, %lld unused tasks and %lld unused queues",
						(long long) counts[0], (long long) counts[1], (long long) counts[2])));
}

/*
 * run_chore runs chore and returns when it is due next: every_ms later, or
 * CHORE_RETRY_MS after an error (logged, never thrown).
 */
static TimestampTz
run_chore(void (*chore) (TimestampTz), const char *what, TimestampTz now, int every_ms)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool failed = false;

	PG_TRY();
	{
		chore(now);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		gw_xact_abort(cxt);
		ereport(LOG,
				(errmsg("graphile_worker could not %s, retrying in %d s: %s",
						what, CHORE_RETRY_MS / 1000, edata->message)));
		FreeErrorData(edata);
		failed = true;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
									   failed ? CHORE_RETRY_MS : every_ms);
}

/*
 * How often the history partitions are looked after: partitions of a
 * minute (a retention under 2 hours, _history_unit) are made 3 minutes
 * ahead, so every minute; others every 10 minutes.
 */
static int
history_every_ms(void)
{
	return gw_history_retention_min < 120 ? HISTORY_MINUTES_EVERY_MS : CHORE_EVERY_MS;
}

static void
history_chore(TimestampTz now)
{
	maintain_history();
	history_retention_done = gw_history_retention_min;
}

static void
cleanup_chore(TimestampTz now)
{
	run_cleanup();
}

/*
 * gw_maintenance is called by the supervisor's loop: it runs the chores
 * that are due and returns when it wants to be called next.
 */
TimestampTz
gw_maintenance(TimestampTz now)
{
	TimestampTz next;

	if (gw_history_retention_min != history_retention_done)
		next_history = 0;
	if (gw_cleanup_interval_s != cleanup_interval_done)
	{
		cleanup_interval_done = gw_cleanup_interval_s;
		next_cleanup = gw_cleanup_interval_s > 0 ?
			TimestampTzPlusMilliseconds(now, gw_cleanup_interval_s * INT64CONST(1000)) : 0;
	}

	if (now >= next_history)
		next_history = run_chore(history_chore, "maintain the job history partitions",
								 now, history_every_ms());
	if (now >= next_unhandled)
		next_unhandled = run_chore(warn_unhandled, "look for unhandled tasks",
								   now, CHORE_EVERY_MS);
	next = Min(next_history, next_unhandled);
	if (gw_cleanup_interval_s > 0)
	{
		if (now >= next_cleanup)
			next_cleanup = run_chore(cleanup_chore, "run graphile_worker.cleanup()", now,
									 (int) Min((int64) gw_cleanup_interval_s * 1000, INT_MAX));
		next = Min(next, next_cleanup);
	}
	return next;
}
