/*-------------------------------------------------------------------------
 *
 * gw_example_handlers.c
 *	  Task handlers written in C, used by the tests and the demo.
 *
 *	  CREATE FUNCTION graphile_worker_tasks.c_log(payload jsonb) RETURNS void
 *		AS 'gw_example_handlers', 'gw_example_log' LANGUAGE C STRICT;
 *
 * c_log inserts its payload into public.c_handler_log through SPI, in the
 * job's transaction, and fails (so the job is retried) when the payload
 * has "fail": true.
 *
 * gw_example_crash dereferences NULL: the backend dies of SIGSEGV and the
 * server restarts, as a buggy C handler would make it.  The tests use it
 * to show that such a job cannot take the server down forever.
 *
 * gw_example_hold inserts its payload into public.c_handler_log, then
 * busy-waits "ms" milliseconds (from the payload) with interrupts held off,
 * as C code that never checks for interrupts would: a cancel or a SIGTERM
 * that comes meanwhile reaches the worker only after it returns.
 *
 * gw_example_effect is the handler of the torture test (tests/torture) and
 * may be declared with any of the four handler signatures, e.g.
 *
 *	  CREATE FUNCTION graphile_worker_tasks.c_json_job(payload json,
 *			job graphile_worker.jobs) RETURNS void
 *		AS 'gw_example_handlers', 'gw_example_effect' LANGUAGE C;
 *
 * In the job's transaction, through SPI, it inserts one row into
 * public.effects: the payload's "token", and the job's id, attempts and
 * last_error when it takes the job, and its own function name.  Then, as
 * the payload asks, it inserts "rows" rows into public.bulk, a row
 * breaking the deferred foreign key of public.fk_child ("fk": true), adds
 * a job of task "child" whose token is the token followed by ".c", sleeps
 * "sleep" seconds (checking for interrupts), and last fails with a DETAIL
 * and a HINT when "fail" is true or the job's attempts are at most
 * "fail_until".  Its writes must then be rolled back with the attempt.
 *
 * Any C function taking (jsonb) or (json), optionally followed by
 * (graphile_worker.jobs), can be a handler the same way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(gw_example_log);
PG_FUNCTION_INFO_V1(gw_example_crash);
PG_FUNCTION_INFO_V1(gw_example_hold);
PG_FUNCTION_INFO_V1(gw_example_effect);

Datum
gw_example_log(PG_FUNCTION_ARGS)
{
	Datum		payload = PG_GETARG_DATUM(0);
	Oid			argtypes[1] = {JSONBOID};
	bool		isnull;
	bool		fail;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (SPI_execute_with_args("SELECT coalesce(($1 OPERATOR(pg_catalog.->>) 'fail')::pg_catalog.bool, false)",
							  1, argtypes, &payload, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the payload");
	fail = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (fail)
		ereport(ERROR,
				(errcode(ERRCODE_RAISE_EXCEPTION),
				 errmsg("c_log was asked to fail")));

	if (SPI_execute_with_args("INSERT INTO public.c_handler_log (payload) VALUES ($1)",
							  1, argtypes, &payload, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into c_handler_log");

	SPI_finish();
	PG_RETURN_VOID();
}

Datum
gw_example_crash(PG_FUNCTION_ARGS)
{
	volatile int *nowhere = NULL;

	*nowhere = 1;
	PG_RETURN_VOID();
}

Datum
gw_example_hold(PG_FUNCTION_ARGS)
{
	Datum		payload = PG_GETARG_DATUM(0);
	Oid			argtypes[1] = {JSONBOID};
	bool		isnull;
	int			ms;
	TimestampTz until;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("INSERT INTO public.c_handler_log (payload) VALUES ($1)",
							  1, argtypes, &payload, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into c_handler_log");
	if (SPI_execute_with_args("SELECT coalesce(($1 OPERATOR(pg_catalog.->>) 'ms')::pg_catalog.int4, 0)",
							  1, argtypes, &payload, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the payload");
	ms = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	HOLD_INTERRUPTS();
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	while (GetCurrentTimestamp() < until)
		pg_usleep(10000L);
	RESUME_INTERRUPTS();
	PG_RETURN_VOID();
}

/* The payload's fields, read in one statement whatever its type. */
static const char *const effect_read_sql =
"SELECT p OPERATOR(pg_catalog.->>) 'token',"
"       coalesce((p OPERATOR(pg_catalog.->>) 'fail')::pg_catalog.bool, false),"
"       coalesce((p OPERATOR(pg_catalog.->>) 'fail_until')::pg_catalog.int4, 0),"
"       coalesce((p OPERATOR(pg_catalog.->>) 'rows')::pg_catalog.int4, 0),"
"       coalesce((p OPERATOR(pg_catalog.->>) 'fk')::pg_catalog.bool, false),"
"       coalesce((p OPERATOR(pg_catalog.->>) 'sleep')::pg_catalog.float8, 0),"
"       p OPERATOR(pg_catalog.->>) 'child'"
"  FROM (SELECT $1::pg_catalog.jsonb AS p) AS s";

Datum
gw_example_effect(PG_FUNCTION_ARGS)
{
	Oid			fn_oid = fcinfo->flinfo->fn_oid;
	Oid		   *fn_argtypes;
	int			fn_nargs;
	char	   *name = get_func_name(fn_oid);
	Datum		payload = PG_GETARG_DATUM(0);
	Datum		job_id = (Datum) 0;
	Datum		attempts = (Datum) 0;
	Datum		last_error = (Datum) 0;
	bool		has_job = PG_NARGS() > 1 && !PG_ARGISNULL(1);
	bool		no_last_error = true;
	TupleDesc	desc;
	HeapTuple	row;
	bool		isnull;
	char	   *token;
	bool		fail;
	int			fail_until;
	int			rows;
	bool		fk;
	double		sleep_s;
	char	   *child;

	(void) get_func_signature(fn_oid, &fn_argtypes, &fn_nargs);
	if (has_job)
	{
		HeapTupleHeader job = PG_GETARG_HEAPTUPLEHEADER(1);

		job_id = GetAttributeByName(job, "id", &isnull);
		attempts = Int32GetDatum((int32) DatumGetInt16(GetAttributeByName(job, "attempts", &isnull)));
		last_error = GetAttributeByName(job, "last_error", &no_last_error);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (SPI_execute_with_args(effect_read_sql, 1, &fn_argtypes[0], &payload,
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the payload");
	desc = SPI_tuptable->tupdesc;
	row = SPI_tuptable->vals[0];
	token = SPI_getvalue(row, desc, 1);
	fail = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
	fail_until = DatumGetInt32(SPI_getbinval(row, desc, 3, &isnull));
	rows = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
	fk = DatumGetBool(SPI_getbinval(row, desc, 5, &isnull));
	sleep_s = DatumGetFloat8(SPI_getbinval(row, desc, 6, &isnull));
	child = SPI_getvalue(row, desc, 7);
	if (token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the payload has no token", name)));

	{
		Oid			types[5] = {TEXTOID, INT8OID, INT4OID, TEXTOID, TEXTOID};
		Datum		values[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

		values[0] = CStringGetTextDatum(token);
		values[1] = job_id;
		values[2] = attempts;
		values[3] = CStringGetTextDatum(name);
		values[4] = last_error;
		if (!has_job)
			nulls[1] = nulls[2] = 'n';
		if (no_last_error)
			nulls[4] = 'n';
		if (SPI_execute_with_args("INSERT INTO public.effects"
								  " (token, job_id, attempt, handler, prev_error)"
								  " VALUES ($1, $2, $3, $4, $5)",
								  5, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into public.effects");
	}

	if (rows > 0)
	{
		Oid			types[2] = {TEXTOID, INT4OID};
		Datum		values[2] = {CStringGetTextDatum(token), Int32GetDatum(rows)};

		if (SPI_execute_with_args("INSERT INTO public.bulk (token, i)"
								  " SELECT $1, i FROM pg_catalog.generate_series(1, $2) AS i",
								  2, types, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into public.bulk");
	}

	if (fk)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(token)};

		/* no parent -1: the deferred check fails when the job commits */
		if (SPI_execute_with_args("INSERT INTO public.fk_child (parent_id, token)"
								  " VALUES (-1, $1)",
								  1, types, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into public.fk_child");
	}

	if (child != NULL)
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {CStringGetTextDatum(child), CStringGetTextDatum(token)};

		if (SPI_execute_with_args("SELECT graphile_worker.add_job($1, pg_catalog.json_build_object("
								  "'token', $2 OPERATOR(pg_catalog.||) '.c'))",
								  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not add the child job");
	}

	if (sleep_s > 0)
	{
		TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														(int64) (sleep_s * 1000.0));

		while (GetCurrentTimestamp() < until)
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(5000L);
		}
	}

	if (fail || (has_job && DatumGetInt32(attempts) <= fail_until))
		ereport(ERROR,
				(errcode(ERRCODE_RAISE_EXCEPTION),
				 errmsg("torture: %s fails on purpose", token),
				 errdetail("handler %s, attempt %d", name,
						   has_job ? DatumGetInt32(attempts) : 0),
				 errhint("its writes must be rolled back")));

	SPI_finish();
	PG_RETURN_VOID();
}
