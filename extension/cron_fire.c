/*-------------------------------------------------------------------------
 *
 * cron_fire.c
 *	  Fires crontab entries: adds their jobs for a minute, and back-fills
 *	  after downtime; the supervisor's ticker (bgworker/cron_ticker.c) calls
 *	  both on time, and so do the test hooks _cron_tick and _cron_backfill.
 *
 *	  Each firing is Graphile Worker's statement: for every due entry it
 *	  upserts _private_known_crontabs.last_execution = the minute, only if
 *	  that advances it, and adds a job only for the rows the upsert returned.
 *	  Concurrent tickers (supervisors, Node workers with the same entries,
 *	  _cron_tick) serialise on those rows, so a minute of an entry id fires
 *	  once.  The job runs at the minute, with _cron {ts, backfilled} merged
 *	  into its payload.
 *
 *	  One entry never keeps the others from firing: the due entries of a
 *	  minute are fired together in a subtransaction and, should that fail,
 *	  each in its own.  An entry that fails for a reason of its own (a
 *	  payload add_job rejects, say, in a crontab stored before set_crontab
 *	  checked for it) is skipped with a WARNING naming it; one that fails
 *	  for a passing reason (a lock it waited for too long, a deadlock) is
 *	  deferred: the others of the minute commit and the ticker tries the
 *	  minute again later, which fires only what is still due.
 *
 *	  Runs in the supervisor and in any backend calling the test hooks;
 *	  callers are connected to SPI in a transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "crontab.h"
#include "errors.h"
#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_cron_tick);
PG_FUNCTION_INFO_V1(gw_sql_cron_backfill);

#define FIRE_NARGS 11


static const char *const fire_sql =
"WITH specs AS ("
"  SELECT s.* FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
"      pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
"      pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8))"
"    WITH ORDINALITY AS s(id, task, payload, queue_name, max_attempts,"
"      job_key, job_key_mode, priority, n)"
"), locks AS ("
"  INSERT INTO graphile_worker._private_known_crontabs AS known"
"    (identifier, known_since, last_execution)"
"  SELECT specs.id, $9, $9 FROM specs"
"  ON CONFLICT (identifier) DO UPDATE"
"    SET last_execution = excluded.last_execution"
"    WHERE known.last_execution IS NULL"
"       OR known.last_execution OPERATOR(pg_catalog.<) excluded.last_execution"
"  RETURNING known.identifier"
"), due AS ("
"  SELECT specs.* FROM specs"
"  JOIN locks ON locks.identifier OPERATOR(pg_catalog.=) specs.id"
"  ORDER BY specs.n OFFSET 0"
")"
"SELECT pg_catalog.count(graphile_worker.add_job("
"    due.task,"
"    (COALESCE(due.payload::pg_catalog.jsonb, '{}'::pg_catalog.jsonb)"
"      OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('_cron',"
"        pg_catalog.jsonb_build_object('ts', $10, 'backfilled', $11)))::pg_catalog.json,"
"    due.queue_name, $9, due.max_attempts, due.job_key, due.priority, NULL,"
"    COALESCE(due.job_key_mode, 'replace')))"
"  FROM due";

static SPIPlanPtr fire_plan = NULL;

/*
 * $1 id, $2 minute: the entry counts as fired for the minute (as the
 * upsert of fire_sql would have made it), though it added no job.
 */
static const char *const skip_sql =
"INSERT INTO graphile_worker._private_known_crontabs AS known"
"  (identifier, known_since, last_execution)"
"VALUES ($1, $2, $2)"
"ON CONFLICT (identifier) DO UPDATE"
"  SET last_execution = excluded.last_execution"
"  WHERE known.last_execution IS NULL"
"     OR known.last_execution OPERATOR(pg_catalog.<) excluded.last_execution";

static SPIPlanPtr skip_plan = NULL;

/* text[] of n nullable C strings */
static Datum
text_array(char **strs, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = strs[i] == NULL;
		elems[i] = strs[i] ? CStringGetTextDatum(strs[i]) : (Datum) 0;
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  TEXTOID, -1, false, TYPALIGN_INT));
}

/* int4[] of n values, null where given[i] is false */
static Datum
int_array(int *vals, bool *given, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = !given[i];
		elems[i] = Int32GetDatum(vals[i]);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  INT4OID, 4, true, TYPALIGN_INT));
}

/* Node's _cron.ts: JavaScript's toISOString() of the minute, in UTC */
static char *
iso_minute(TimestampTz at)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(at, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return psprintf("%04d-%02d-%02dT%02d:%02d:00.000Z",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min);
}

/*
 * fire_entries runs the firing statement for the entries idx[0..n) of ct
 * at minute; returns the number of jobs it added.  SPI must be connected.
 */
static int64
fire_entries(GwCrontab *ct, const int *idx, int n, int64 minute,
			 bool backfilled)
{
	char	  **ids = palloc(sizeof(char *) * n);
	char	  **tasks = palloc(sizeof(char *) * n);
	char	  **payloads = palloc(sizeof(char *) * n);
	char	  **queues = palloc(sizeof(char *) * n);
	char	  **keys = palloc(sizeof(char *) * n);
	char	  **modes = palloc(sizeof(char *) * n);
	int		   *max_attempts = palloc(sizeof(int) * n);
	bool	   *has_max = palloc(sizeof(bool) * n);
	int		   *priorities = palloc(sizeof(int) * n);
	bool	   *has_priority = palloc(sizeof(bool) * n);
	Oid			types[FIRE_NARGS] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
	TIMESTAMPTZOID, TEXTOID, BOOLOID};
	Datum		args[FIRE_NARGS];
	TimestampTz at = gw_cron_minute_start(minute);
	bool		isnull;
	Datum		count;

	for (int k = 0; k < n; k++)
	{
		GwCronEntry *e = &ct->entries[idx[k]];

		/* what add_job would store unchecked: a key it cannot compare */
		if (e->job_key != NULL)
			(void) pg_verifymbstr(e->job_key, strlen(e->job_key), false);
		ids[k] = (char *) e->id;
		tasks[k] = (char *) e->task;
		payloads[k] = ct->payloads[idx[k]];
		queues[k] = (char *) e->queue;
		keys[k] = (char *) e->job_key;
		modes[k] = (char *) e->job_key_mode;
		max_attempts[k] = e->max_attempts;
		has_max[k] = e->max_attempts > 0;
		priorities[k] = e->priority;
		has_priority[k] = e->has_priority;
	}

	args[0] = text_array(ids, n);
	args[1] = text_array(tasks, n);
	args[2] = text_array(payloads, n);
	args[3] = text_array(queues, n);
	args[4] = int_array(max_attempts, has_max, n);
	args[5] = text_array(keys, n);
	args[6] = text_array(modes, n);
	args[7] = int_array(priorities, has_priority, n);
	args[8] = TimestampTzGetDatum(at);
	args[9] = CStringGetTextDatum(iso_minute(at));
	args[10] = BoolGetDatum(backfilled);

	if (SPI_execute_plan(gw_prepare_once(&fire_plan, fire_sql, FIRE_NARGS, types),
						 args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not fire crontab entries");
	count = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetInt64(count);
}

/*
 * fire_in_subxact runs fire_entries in a subtransaction.  Returns the
 * number of jobs added; on error, -1 with the error in *edata (allocated in
 * the caller's memory context) and nothing of it left behind.
 */
static int64
fire_in_subxact(GwCrontab *ct, const int *idx, int n, int64 minute,
				bool backfilled, ErrorData **edata)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile int64 count = -1;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		count = fire_entries(ct, idx, n, minute, backfilled);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		*edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return count;
}

/*
 * error_is_passing tells the errors after which an entry may well fire if
 * tried again (waiting too long for a lock, deadlocks and serialization
 * failures, a shortage of resources, a concurrent writer) from those that
 * will happen again (the entry's own data).
 */
static bool
error_is_passing(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_TO_CATEGORY(ERRCODE_TRANSACTION_ROLLBACK):
		case ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES):
		case ERRCODE_TO_CATEGORY(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE):
		case ERRCODE_TO_CATEGORY(ERRCODE_SYSTEM_ERROR):
			return true;
		default:
			return sqlerrcode == ERRCODE_GW_NO_ROW;
	}
}

/*
 * entry_failed deals with the error of entry i at minute: a cancel or
 * shutdown, and a passing error when the caller cannot try again
 * (deferred is NULL), are thrown again; any other passing error is logged
 * and sets *deferred; an error of the entry's own is a WARNING naming it,
 * and the entry counts as fired for the minute, so that neither a retry of
 * the minute nor a back-fill tries it again.
 */
static void
entry_failed(GwCrontab *ct, int i, int64 minute, ErrorData *edata,
			 bool *deferred)
{
	GwCronEntry *e = &ct->entries[i];
	char	   *ts = iso_minute(gw_cron_minute_start(minute));

	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) ==
		ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) ||
		(error_is_passing(edata->sqlerrcode) && deferred == NULL))
		ReThrowError(edata);
	if (error_is_passing(edata->sqlerrcode))
	{
		ereport(LOG,
				(errmsg("graphile_worker will fire crontab entry \"%s\" (line %d) for %s later: %s",
						e->id, e->line, ts, edata->message)));
		*deferred = true;
	}
	else
	{
		Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
		Datum		args[2];

		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not fire crontab entry \"%s\" (line %d) for %s: %s",
						e->id, e->line, ts, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("The other entries are not affected.  Correct this one with graphile_worker.set_crontab.")));
		args[0] = CStringGetTextDatum(e->id);
		args[1] = TimestampTzGetDatum(gw_cron_minute_start(minute));
		if (SPI_execute_plan(gw_prepare_once(&skip_plan, skip_sql, 2, types),
							 args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record crontab entry \"%s\" as fired", e->id);
	}
	FreeErrorData(edata);
}

/*
 * gw_cron_fire adds the jobs of the entries due at minute (eligible ones
 * only, if eligible is not NULL) that no other ticker fired for it yet.
 * The due entries are fired together, or, if that fails, each in its own
 * subtransaction, so that a failing entry is skipped (see entry_failed)
 * and the others fire.  With deferred NULL a passing error is thrown; else
 * it sets *deferred, and the minute should be fired again later.  SPI must
 * be connected.  Returns the number of jobs added.
 */
int64
gw_cron_fire(GwCrontab *ct, int64 minute, bool backfilled, const bool *eligible,
			 bool *deferred)
{
	int		   *due = palloc(sizeof(int) * Max(ct->nentries, 1));
	int			n = 0;
	int64		count;
	int64		total = 0;
	ErrorData  *edata = NULL;

	for (int i = 0; i < ct->nentries; i++)
	{
		GwCronEntry *e = &ct->entries[i];

		if (eligible != NULL && !eligible[i])
			continue;
		if (!gw_cron_due(&e->pattern, minute, gw_crontab_offset, ct->zones[i]))
			continue;
		due[n++] = i;
	}
	if (n == 0)
		return 0;

	count = fire_in_subxact(ct, due, n, minute, backfilled, &edata);
	if (count >= 0)
		return count;
	if (n == 1)
	{
		entry_failed(ct, due[0], minute, edata, deferred);
		return 0;
	}
	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) ==
		ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) ||
		(error_is_passing(edata->sqlerrcode) && deferred == NULL))
		ReThrowError(edata);
	FreeErrorData(edata);

	for (int k = 0; k < n; k++)
	{
		CHECK_FOR_INTERRUPTS();
		count = fire_in_subxact(ct, &due[k], 1, minute, backfilled, &edata);
		if (count >= 0)
			total += count;
		else
			entry_failed(ct, due[k], minute, edata, deferred);
	}
	return total;
}

/*
 * gw_cron_register_ids makes the crontab's ids that _private_known_crontabs
 * does not have yet known since "since" (never fired).  SPI must be
 * connected.
 */
void
gw_cron_register_ids(GwCrontab *ct, TimestampTz since)
{
	char	  **ids = palloc(sizeof(char *) * Max(ct->nentries, 1));
	Oid			types[2] = {TEXTARRAYOID, TIMESTAMPTZOID};
	Datum		args[2];

	for (int i = 0; i < ct->nentries; i++)
		ids[i] = (char *) ct->entries[i].id;
	args[0] = text_array(ids, ct->nentries);
	args[1] = TimestampTzGetDatum(since);
	if (SPI_execute_with_args("INSERT INTO graphile_worker._private_known_crontabs"
							  " (identifier, known_since)"
							  " SELECT id, $2 FROM pg_catalog.unnest($1) AS id"
							  " ON CONFLICT (identifier) DO NOTHING",
							  2, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record crontab ids");
}

/* A known entry id's row of _private_known_crontabs. */
typedef struct KnownRow
{
	bool		found;
	TimestampTz not_before;		/* coalesce(last_execution, known_since) */
} KnownRow;

/*
 * gw_cron_backfill does what a Node worker does when it starts at start:
 * ids it does not know yet become known since start (and are never
 * back-filled); for known entries with a fill window, every minute before
 * start that the window reaches (start - fill, rounded up, as Node) and
 * that is not before the entry's last firing (or, never fired, the moment
 * it became known) is fired, oldest first, as backfilled.  SPI must be connected.  Returns the
 * number of jobs added.
 */
int64
gw_cron_backfill(TimestampTz start)
{
	GwCrontab  *ct = gw_crontab_load();
	KnownRow   *known;
	bool	   *eligible;
	TimestampTz earliest = 0;
	bool		any_fill = false;
	int64		total = 0;
	int64		first;

	if (ct == NULL || ct->nentries == 0)
		return 0;
	known = palloc0(sizeof(KnownRow) * ct->nentries);
	eligible = palloc0(sizeof(bool) * ct->nentries);

	if (SPI_execute("SELECT identifier, COALESCE(last_execution, known_since)"
					" FROM graphile_worker._private_known_crontabs", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read known crontab ids");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		char	   *id = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		Datum		nb = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);

		for (int i = 0; i < ct->nentries; i++)
			if (strcmp(ct->entries[i].id, id) == 0)
			{
				known[i].found = true;
				known[i].not_before = DatumGetTimestampTz(nb);
			}
	}
	/*
	 * The walk starts at the earliest minute any entry may fill: start -
	 * fill, but not before its last firing or the moment it became known
	 * (so a long fill costs only the downtime).
	 */
	for (int i = 0; i < ct->nentries; i++)
	{
		GwCronEntry *e = &ct->entries[i];

		if (known[i].found && e->fill_seconds > 0)
		{
			TimestampTz from = Max(start - e->fill_seconds * USECS_PER_SEC,
								   known[i].not_before);

			earliest = any_fill ? Min(earliest, from) : from;
			any_fill = true;
		}
	}
	gw_cron_register_ids(ct, start);
	if (!any_fill)
		return 0;

	/* rounded up to a minute */
	first = gw_cron_minute_of(earliest);
	if (gw_cron_minute_start(first) < earliest)
		first++;
	for (int64 m = first; gw_cron_minute_start(m) < start; m++)
	{
		TimestampTz ts = gw_cron_minute_start(m);
		bool		any = false;

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < ct->nentries; i++)
		{
			GwCronEntry *e = &ct->entries[i];

			eligible[i] = known[i].found && e->fill_seconds > 0 &&
				start - ts <= e->fill_seconds * USECS_PER_SEC &&
				ts >= known[i].not_before;
			any |= eligible[i];
		}
		if (any)
			total += gw_cron_fire(ct, m, true, eligible, NULL);
	}
	return total;
}

/*
 * _cron_tick(at) fires the entries due in the minute of at, as the ticker
 * would at that minute; returns the number of jobs added.  Internal, for
 * tests.
 */
Datum
gw_sql_cron_tick(PG_FUNCTION_ARGS)
{
	int64		minute = gw_cron_minute_of(PG_GETARG_TIMESTAMPTZ(0));
	GwCrontab  *ct;
	int64		n = 0;

	gw_spi_connect();
	ct = gw_crontab_load();
	if (ct != NULL)
		n = gw_cron_fire(ct, minute, false, NULL, NULL);
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}

/*
 * _cron_backfill(start) back-fills as a ticker starting at start would;
 * returns the number of jobs added.  Internal, for tests.
 */
Datum
gw_sql_cron_backfill(PG_FUNCTION_ARGS)
{
	int64		n;

	gw_spi_connect();
	n = gw_cron_backfill(PG_GETARG_TIMESTAMPTZ(0));
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}
