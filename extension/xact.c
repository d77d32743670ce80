/*-------------------------------------------------------------------------
 *
 * xact.c
 *	  The one place where our processes start and end their transactions
 *	  and keep SPI plans.
 *
 * gw_xact_begin starts a transaction, connects SPI, pushes a snapshot and
 * reports the activity; gw_xact_commit undoes all of that in order and
 * commits.  Both leave CurrentMemoryContext as the caller had it when it
 * called gw_xact_begin: SPI calls switch to SPI's procedure context, which
 * SPI_finish deletes, and a commit switches to TopMemoryContext, so code
 * that keeps anything across a transaction names the context it allocates
 * in and never relies on CurrentMemoryContext after such a call.
 *
 * gw_spi_connect connects SPI for a SQL-callable function; gw_prepare_once
 * keeps a plan for the life of the process.
 *
 * Used by the supervisor, the job workers and the SQL-callable functions
 * that run SQL from C.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "graphile_worker.h"

/* The caller's context at gw_xact_begin; NULL outside our transactions. */
static MemoryContext xact_caller_cxt = NULL;

/*
 * gw_xact_begin starts a transaction with SPI connected and a snapshot
 * pushed; activity is what pg_stat_activity shows meanwhile.
 */
void
gw_xact_begin(const char *activity)
{
	Assert(xact_caller_cxt == NULL);
	Assert(!IsTransactionState());
	xact_caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	gw_spi_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * gw_xact_commit commits the transaction of gw_xact_begin and switches back
 * to the caller's memory context.
 */
void
gw_xact_commit(void)
{
	MemoryContext caller = xact_caller_cxt;

	Assert(caller != NULL);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	xact_caller_cxt = NULL;
	MemoryContextSwitchTo(caller);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * gw_xact_abort rolls back everything (subtransactions too) after an error
 * was caught and flushed, and switches back to the caller's memory context of gw_xact_begin, or to
 * fallback if no transaction of ours was open.
 */
void
gw_xact_abort(MemoryContext fallback)
{
	MemoryContext caller = xact_caller_cxt ? xact_caller_cxt : fallback;

	AbortOutOfAnyTransaction();
	xact_caller_cxt = NULL;
	MemoryContextSwitchTo(caller);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * gw_spi_connect connects to SPI, in our transactions and in SQL-callable
 * functions that run SQL; SPI_finish disconnects.
 */
void
gw_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * gw_prepare_once prepares sql into *plan the first time, and keeps it.  The
 * plan is generic from the start: these statements run again and again,
 * and a custom plan would cost more to make than to run.
 */
SPIPlanPtr
gw_prepare_once(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare_cursor(sql, nargs, argtypes,
										   CURSOR_OPT_GENERIC_PLAN);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}
