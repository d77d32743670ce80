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
 *	  set_crontab is strict: it accepts a text only if every entry parses
 *	  and firing it cannot fail in add_job.  Reading the stored text is
 *	  lenient, since it may have been written without those checks: a line
 *	  or entry with an error is left out with a WARNING and the rest is used.
 *
 * Runs in any backend that calls these functions, and in supervisors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "crontab.h"
#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_set_crontab);
PG_FUNCTION_INFO_V1(gw_sql_crontab_line_id);
PG_FUNCTION_INFO_V1(gw_sql_crontab_entries);

/* add_job's limit on job_key (the jobs_key_check constraint) */
#define GW_MAX_JOB_KEY_CHARS	512

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
 * json_error returns the message of the error that conversion "fn" of
 * json raises, or NULL when it accepts it.  Both conversions used here
 * (json_in, jsonb_in) only parse, so the error is caught without a
 * subtransaction.
 */
static char *
json_error(PGFunction fn, char *json)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile message = NULL;

	PG_TRY();
	{
		(void) DirectFunctionCall1(fn, CStringGetDatum(json));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (edata->detail != NULL)
		{
			/* "message: detail", the detail without its final period */
			int			len = strlen(edata->detail);

			if (len > 0 && edata->detail[len - 1] == '.')
				len--;
			message = psprintf("%s: %.*s", edata->message, len, edata->detail);
		}
		else
			message = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return message;
}

/*
 * skip_line is the GwCronReportFn of a lenient parse: the line is left out
 * with a WARNING.
 */
static void
skip_line(const GwCronError *err, void *arg)
{
	ereport(WARNING,
			(errmsg("crontab line %d is skipped: column %d: %s",
					err->line, err->column, err->message),
			 errhint("Correct the crontab with graphile_worker.set_crontab.")));
}

/*
 * entry_error reports an error of entry e: in a strict parse as the error
 * of set_crontab, else as a WARNING saying the entry is skipped.
 */
static void
entry_error(bool strict, int sqlstate, const char *text, const GwCronEntry *e,
			int column, const char *message)
{
	GwCronError err;

	if (strict)
		crontab_error(sqlstate, text, e->line, column, message);
	err.line = e->line;
	err.column = column;
	strlcpy(err.message, message, sizeof(err.message));
	skip_line(&err, NULL);
}

/*
 * check_for_add_job makes sure that firing entry e will not fail in
 * add_job: a jobKey of at most 512 characters in the database encoding, a
 * payload that converts to jsonb (firing merges _cron into it as jsonb,
 * which refuses \u0000, for one).  Reports as set_crontab does.
 */
static void
check_for_add_job(const char *text, const GwCronEntry *e, char *json)
{
	if (e->job_key != NULL)
	{
		int			len = strlen(e->job_key);

		if (!pg_verifymbstr(e->job_key, len, true))
			crontab_error(ERRCODE_SYNTAX_ERROR, text, e->line, e->job_key_column,
						  psprintf("jobKey is not valid in encoding \"%s\"",
								   GetDatabaseEncodingName()));
		if (pg_mbstrlen_with_len(e->job_key, len) > GW_MAX_JOB_KEY_CHARS)
			crontab_error(ERRCODE_SYNTAX_ERROR, text, e->line, e->job_key_column,
						  psprintf("jobKey is longer than %d characters",
								   GW_MAX_JOB_KEY_CHARS));
	}
	if (json != NULL)
	{
		char	   *message = json_error(jsonb_in, json);

		if (message != NULL)
			crontab_error(ERRCODE_INVALID_TEXT_REPRESENTATION, text, e->line,
						  e->payload_column,
						  psprintf("invalid payload: %s", message));
	}
}

/*
 * crontab_build parses a crontab text, resolves its time zones and
 * converts its payloads.  Strict (set_crontab), it reports the first error
 * with its line and column, and also rejects what add_job would refuse
 * when the entry fires.  Otherwise (a stored crontab, which may predate
 * those checks or have been written without set_crontab), each line or
 * entry with an error is left out with a WARNING, and the others are
 * returned.
 */
static GwCrontab *
crontab_build(const char *text, bool strict)
{
	GwCrontab  *ct = palloc0(sizeof(GwCrontab));
	char	   *buf = pstrdup(text);
	int			max = gw_cron_max_entries(buf);
	GwCronError err;
	pg_tz	   *default_zone = pg_tzset(gw_cron_timezone);
	int			kept = 0;

	if (default_zone == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("graphile_worker.cron_timezone names no time zone: \"%s\"",
						gw_cron_timezone)));
	ct->entries = palloc0(sizeof(GwCronEntry) * Max(max, 1));
	if (strict)
	{
		ct->nentries = gw_cron_parse(buf, ct->entries, max, &err);
		if (ct->nentries < 0)
			crontab_error(ERRCODE_SYNTAX_ERROR, text, err.line, err.column,
						  err.message);
	}
	else
		ct->nentries = gw_cron_parse_lenient(buf, ct->entries, max, skip_line,
											 NULL);

	ct->zones = palloc0(sizeof(pg_tz *) * Max(ct->nentries, 1));
	ct->payloads = palloc0(sizeof(char *) * Max(ct->nentries, 1));
	for (int i = 0; i < ct->nentries; i++)
	{
		GwCronEntry *e = &ct->entries[i];
		pg_tz	   *zone = default_zone;
		char	   *json = NULL;

		if (e->tz != NULL)
		{
			zone = pg_tzset(e->tz);
			if (zone == NULL || !pg_tz_acceptable(zone))
			{
				entry_error(strict, ERRCODE_INVALID_PARAMETER_VALUE, text, e,
							e->tz_column,
							psprintf("time zone \"%s\" is not recognized", e->tz));
				continue;
			}
		}
		if (e->payload != NULL)
		{
			size_t		cap = GW_CRON_JSON_OUTCAP(strlen(e->payload));
			char	   *message;

			json = palloc(cap);
			if (!gw_cron_json5_to_json(e->payload, json, cap, &err))
			{
				entry_error(strict, ERRCODE_INVALID_TEXT_REPRESENTATION, text, e,
							e->payload_column + err.column - 1, err.message);
				continue;
			}
			message = json_error(json_in, json);
			if (message != NULL)
			{
				entry_error(strict, ERRCODE_INVALID_TEXT_REPRESENTATION, text, e,
							e->payload_column, message);
				continue;
			}
		}
		if (strict)
			check_for_add_job(text, e, json);
		ct->entries[kept] = *e;
		ct->zones[kept] = zone;
		ct->payloads[kept] = json;
		kept++;
	}
	ct->nentries = kept;
	return ct;
}

/*
 * gw_crontab_parse parses a crontab text as set_crontab accepts it, or
 * reports the first error with its line and column.
 */
GwCrontab *
gw_crontab_parse(const char *text)
{
	return crontab_build(text, true);
}

/*
 * gw_crontab_load reads and parses this database's stored crontab, leaving
 * out (with a WARNING) whatever set_crontab would not accept; NULL when none
 * was set.  SPI must be connected.
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
	return crontab_build(TextDatumGetCString(d), false);
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

	gw_spi_connect();
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

/*
 * _crontab_line_id(line text) returns the id of the one entry of line,
 * checked as set_crontab checks an entry (set_crontab_entry).
 */
Datum
gw_sql_crontab_line_id(PG_FUNCTION_ARGS)
{
	char	   *line = text_to_cstring(PG_GETARG_TEXT_PP(0));
	GwCrontab  *ct;

	if (strchr(line, '\n') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a crontab entry is one line"),
				 errhint("Use set_crontab to set several entries at once.")));
	ct = gw_crontab_parse(line);
	if (ct->nentries != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the line holds no crontab entry"),
				 errdetail("Line: %s", line)));
	PG_RETURN_TEXT_P(cstring_to_text(ct->entries[0].id));
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
	gw_spi_connect();
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
