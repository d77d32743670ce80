/*-------------------------------------------------------------------------
 *
 * crontab.c
 *	  The crontab of a database: graphile_worker.set_crontab, which checks a
 *	  whole text and stores it, and the graphile_worker.crontab view's
 *	  entries.  The stored text (graphile_worker._private_crontab) is parsed
 *	  again wherever it is used (here and by the supervisor's ticker,
 *	  cron_fire.c), with the backend-free grammar of cron_parse.c; this file
 *	  adds what needs the server: time zones (each entry's tz option, else
 *	  graphile_worker.cron_timezone) and payloads as checked JSON.
 *
 * Runs in any backend that calls these functions, and in supervisors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "crontab.h"
#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_set_crontab);
PG_FUNCTION_INFO_V1(gw_sql_crontab_entries);

/* Seconds from the Unix epoch to PostgreSQL's (2000-01-01) */
#define GW_EPOCH_DIFF_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* gw_cron_minute_of gives the minute (since the Unix epoch) that holds t. */
int64
gw_cron_minute_of(TimestampTz t)
{
	int64		secs = t / USECS_PER_SEC + GW_EPOCH_DIFF_SECS;

	if (t < 0 && t % USECS_PER_SEC != 0)
		secs--;
	return secs >= 0 ? secs / 60 : -((-secs + 59) / 60);
}

/* gw_cron_minute_start gives the instant a minute begins. */
TimestampTz
gw_cron_minute_start(int64 minute)
{
	return (minute * 60 - GW_EPOCH_DIFF_SECS) * USECS_PER_SEC;
}

/* gw_crontab_offset is the GwCronOffsetFn of a pg_tz. */
int32_t
gw_crontab_offset(int64_t utc_seconds, void *arg)
{
	pg_time_t	t = (pg_time_t) utc_seconds;
	struct pg_tm *tm = pg_localtime(&t, (pg_tz *) arg);

	return tm ? (int32_t) tm->tm_gmtoff : 0;
}

/*
 * crontab_error reports a crontab error at a line and column; the detail
 * quotes the line.
 */
static void
crontab_error(int sqlstate, const char *text, int line, int column,
			  const char *message)
{
	const char *start = text;
	const char *end;

	for (int l = 1; l < line && start != NULL; l++)
	{
		start = strchr(start, '\n');
		if (start)
			start++;
	}
	if (start == NULL)
		start = "";
	end = strchr(start, '\n');
	if (end == NULL)
		end = start + strlen(start);
	if (end > start && end[-1] == '\r')
		end--;
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("invalid crontab at line %d, column %d: %s",
					line, column, message),
			 errdetail("Line %d is: %.*s", line, (int) (end - start), start)));
}

/*
 * check_json makes sure the converted payload is JSON the server accepts,
 * reporting any failure at the payload's position.
 */
static void
check_json(const char *text, const GwCronEntry *e, char *json)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		(void) DirectFunctionCall1(json_in, CStringGetDatum(json));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		crontab_error(ERRCODE_INVALID_TEXT_REPRESENTATION, text, e->line,
					  e->payload_column, edata->message);
	}
	PG_END_TRY();
}

/*
 * gw_crontab_parse parses a crontab text, resolves its time zones and
 * converts its payloads, or reports the first error with its line and
 * column.
 */
GwCrontab *
gw_crontab_parse(const char *text)
{
	GwCrontab  *ct = palloc0(sizeof(GwCrontab));
	char	   *buf = pstrdup(text);
	int			max = gw_cron_max_entries(buf);
	GwCronError err;
	pg_tz	   *default_zone = pg_tzset(gw_cron_timezone);

	if (default_zone == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("graphile_worker.cron_timezone names no time zone: \"%s\"",
						gw_cron_timezone)));
	ct->entries = palloc0(sizeof(GwCronEntry) * Max(max, 1));
	ct->nentries = gw_cron_parse(buf, ct->entries, max, &err);
	if (ct->nentries < 0)
		crontab_error(ERRCODE_SYNTAX_ERROR, text, err.line, err.column,
					  err.message);

	ct->zones = palloc0(sizeof(pg_tz *) * Max(ct->nentries, 1));
	ct->payloads = palloc0(sizeof(char *) * Max(ct->nentries, 1));
	for (int i = 0; i < ct->nentries; i++)
	{
		GwCronEntry *e = &ct->entries[i];

		ct->zones[i] = default_zone;
		if (e->tz != NULL)
		{
			ct->zones[i] = pg_tzset(e->tz);
			if (ct->zones[i] == NULL || !pg_tz_acceptable(ct->zones[i]))
			{
				char	   *msg = psprintf("time zone \"%s\" is not recognized", e->tz);

				crontab_error(ERRCODE_INVALID_PARAMETER_VALUE, text, e->line,
							  e->tz_column, msg);
			}
		}
		if (e->payload != NULL)
		{
			size_t		cap = GW_CRON_JSON_OUTCAP(strlen(e->payload));
			char	   *json = palloc(cap);

			if (!gw_cron_json5_to_json(e->payload, json, cap, &err))
				crontab_error(ERRCODE_INVALID_TEXT_REPRESENTATION, text, e->line,
							  e->payload_column + err.column - 1, err.message);
			check_json(text, e, json);
			ct->payloads[i] = json;
		}
	}
	return ct;
}

/*
 * gw_crontab_load reads and parses this database's stored crontab; NULL
 * when none was set.  SPI must be connected.
 */
GwCrontab *
gw_crontab_load(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute("SELECT crontab FROM graphile_worker._private_crontab",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the crontab");
	if (SPI_processed == 0)
		return NULL;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return gw_crontab_parse(TextDatumGetCString(d));
}

/*
 * set_crontab(crontab text) replaces this database's crontab.  The whole
 * text is checked first; on any error nothing changes.  New entry ids are
 * known from now on: they are never back-filled before this moment.
 * Returns the number of entries.
 */
Datum
gw_sql_set_crontab(PG_FUNCTION_ARGS)
{
	char	   *src = text_to_cstring(PG_GETARG_TEXT_PP(0));
	GwCrontab  *ct = gw_crontab_parse(src);
	Oid			types[1] = {TEXTOID};
	Datum		arg;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	arg = PointerGetDatum(cstring_to_text(src));
	if (SPI_execute_with_args(
							  "INSERT INTO graphile_worker._private_crontab AS c (id, crontab)"
							  " VALUES (1, $1) ON CONFLICT (id) DO UPDATE"
							  " SET crontab = excluded.crontab, updated_at = pg_catalog.now()",
							  1, types, &arg, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store the crontab");
	gw_cron_register_ids(ct, GetCurrentTransactionStartTimestamp());
	SPI_finish();
	PG_RETURN_INT32(ct->nentries);
}

/* The text of a nullable C string. */
static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = s == NULL;
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * _crontab_entries() returns one row per entry of the stored crontab, with
 * the next time it fires after the current minute (NULL if never within
 * ten years).
 */
Datum
gw_sql_crontab_entries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GwCrontab  *ct;
	int64		now_minute = gw_cron_minute_of(GetCurrentTransactionStartTimestamp());

	gw_init_materialized_srf(fcinfo);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ct = gw_crontab_load();
	if (ct == NULL)
	{
		SPI_finish();
		PG_RETURN_VOID();
	}
	for (int i = 0; i < ct->nentries; i++)
	{
		GwCronEntry *e = &ct->entries[i];
		Datum		values[13];
		bool		nulls[13] = {0};
		char		schedule[GW_CRON_PATTERN_TEXT_LEN];
		int64		next;

		gw_cron_pattern_format(&e->pattern, schedule, sizeof(schedule));
		next = gw_cron_next_fire(&e->pattern, now_minute, gw_crontab_offset,
								 ct->zones[i]);
		values[0] = Int32GetDatum(e->line);
		values[1] = CStringGetTextDatum(e->id);
		values[2] = CStringGetTextDatum(e->task);
		values[3] = CStringGetTextDatum(schedule);
		values[4] = CStringGetTextDatum(pg_get_timezone_name(ct->zones[i]));
		values[5] = DirectFunctionCall7(make_interval,
										Int32GetDatum(0), Int32GetDatum(0), Int32GetDatum(0),
										Int32GetDatum((int32) (e->fill_seconds / SECS_PER_DAY)),
										Int32GetDatum(0), Int32GetDatum(0),
										Float8GetDatum((double) (e->fill_seconds % SECS_PER_DAY)));
		values[6] = Int16GetDatum((int16) e->max_attempts);
		nulls[6] = e->max_attempts == 0;
		values[7] = text_or_null(e->queue, &nulls[7]);
		values[8] = text_or_null(e->job_key, &nulls[8]);
		values[9] = text_or_null(e->job_key_mode, &nulls[9]);
		values[10] = Int16GetDatum((int16) e->priority);
		nulls[10] = !e->has_priority;
		values[11] = ct->payloads[i] ?
			DirectFunctionCall1(json_in, CStringGetDatum(ct->payloads[i])) : (Datum) 0;
		nulls[11] = ct->payloads[i] == NULL;
		values[12] = TimestampTzGetDatum(gw_cron_minute_start(next));
		nulls[12] = next < 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	PG_RETURN_VOID();
}
