/*-------------------------------------------------------------------------
 *
 * cron_fire.c
 *	  Fires crontab entries: adds their jobs for a minute, back-fills after
 *	  downtime, and the supervisor's ticker that does both on time.
 *
 *	  Each firing is Graphile Worker's statement: for every due entry it
 *	  upserts _private_known_crontabs.last_execution = the minute, only if
 *	  that advances it, and adds a job only for the rows the upsert returned.
 *	  Concurrent tickers (supervisors, Node workers with the same entries,
 *	  _cron_tick) serialise on those rows, so a minute of an entry id fires
 *	  once.  The job runs at the minute, with _cron {ts, backfilled} merged
 *	  into its payload.
 *
 *	  The ticker runs in the supervisor (supervisor.c): when it starts it
 *	  back-fills as Node does at start-up, then fires each minute as it
 *	  begins, catching up minute by minute when late.  An error (a lock or
 *	  statement timeout, say) is logged and the minute retried with
 *	  backoff; the supervisor itself keeps running.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "crontab.h"
#include "graphile_worker.h"
#include "job_worker.h"

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

/* The ticker's state (supervisor only) */
static bool ticker_started = false;
static int64 last_fired = 0;	/* the last minute fired */
static TimestampTz retry_at = 0;
static int	retry_ms = 0;

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
 * gw_cron_fire adds the jobs of the entries due at minute (eligible ones
 * only, if eligible is not NULL) that no other ticker fired for it yet.
 * SPI must be connected.  Returns the number of jobs added.
 */
int64
gw_cron_fire(GwCrontab *ct, int64 minute, bool backfilled, const bool *eligible)
{
	int			n = 0;
	int			cap = Max(ct->nentries, 1);
	char	  **ids = palloc(sizeof(char *) * cap);
	char	  **tasks = palloc(sizeof(char *) * cap);
	char	  **payloads = palloc(sizeof(char *) * cap);
	char	  **queues = palloc(sizeof(char *) * cap);
	char	  **keys = palloc(sizeof(char *) * cap);
	char	  **modes = palloc(sizeof(char *) * cap);
	int		   *max_attempts = palloc(sizeof(int) * cap);
	bool	   *has_max = palloc(sizeof(bool) * cap);
	int		   *priorities = palloc(sizeof(int) * cap);
	bool	   *has_priority = palloc(sizeof(bool) * cap);
	Oid			types[FIRE_NARGS] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
	TIMESTAMPTZOID, TEXTOID, BOOLOID};
	Datum		args[FIRE_NARGS];
	TimestampTz at = gw_cron_minute_start(minute);
	bool		isnull;
	Datum		count;

	for (int i = 0; i < ct->nentries; i++)
	{
		GwCronEntry *e = &ct->entries[i];

		if (eligible != NULL && !eligible[i])
			continue;
		if (!gw_cron_due(&e->pattern, minute, gw_crontab_offset, ct->zones[i]))
			continue;
		ids[n] = (char *) e->id;
		tasks[n] = (char *) e->task;
		payloads[n] = ct->payloads[i];
		queues[n] = (char *) e->queue;
		keys[n] = (char *) e->job_key;
		modes[n] = (char *) e->job_key_mode;
		max_attempts[n] = e->max_attempts;
		has_max[n] = e->max_attempts > 0;
		priorities[n] = e->priority;
		has_priority[n] = e->has_priority;
		n++;
	}
	if (n == 0)
		return 0;

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
			total += gw_cron_fire(ct, m, true, eligible);
	}
	return total;
}

/*
 * fire_minutes fires every minute after last_fired up to and including
 * upto, one transaction each; last_fired advances with each success.
 */
static void
fire_minutes(int64 upto)
{
	while (last_fired < upto)
	{
		int64		m = last_fired + 1;
		GwCrontab  *ct;

		CHECK_FOR_INTERRUPTS();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "graphile_worker: firing crontab entries");
		ct = gw_crontab_load();
		if (ct != NULL)
			(void) gw_cron_fire(ct, m, false, NULL);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		last_fired = m;
	}
}

/* start_ticker back-fills as of now, in one transaction. */
static void
start_ticker(TimestampTz now)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "graphile_worker: back-filling crontab entries");
	(void) gw_cron_backfill(now);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* the back-fill covered minutes before now; the next one starts after */
	last_fired = gw_cron_minute_of(now);
	if (gw_cron_minute_start(last_fired) == now)
		last_fired--;
	ticker_started = true;
}

/*
 * gw_cron_ticker is called by the supervisor's loop: it fires what is due
 * and returns when it wants to be called next.  Errors are logged, never
 * thrown: the supervisor must keep running.
 */
TimestampTz
gw_cron_ticker(TimestampTz now)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (now < retry_at)
		return retry_at;
	PG_TRY();
	{
		if (!ticker_started)
			start_ticker(now);
		fire_minutes(gw_cron_minute_of(now));
		retry_ms = 0;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		retry_ms = Min(Max(retry_ms * 2, 200), 60000);
		retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry_ms);
		ereport(LOG,
				(errmsg("graphile_worker could not fire crontab entries, retrying in %d ms: %s",
						retry_ms, edata->message)));
		FreeErrorData(edata);
		pgstat_report_activity(STATE_IDLE, NULL);
		return retry_at;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return gw_cron_minute_start(last_fired + 1);
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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ct = gw_crontab_load();
	if (ct != NULL)
		n = gw_cron_fire(ct, minute, false, NULL);
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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = gw_cron_backfill(PG_GETARG_TIMESTAMPTZ(0));
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}
