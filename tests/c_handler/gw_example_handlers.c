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
 * Any C function taking (jsonb) or (json), optionally followed by
 * (graphile_worker.jobs), can be a handler the same way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(gw_example_log);
PG_FUNCTION_INFO_V1(gw_example_crash);
PG_FUNCTION_INFO_V1(gw_example_hold);

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
