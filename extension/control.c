/*-------------------------------------------------------------------------
 *
 * control.c
 *	  The control functions that record who acted (pause_queue,
 *	  resume_queue, pause_task, resume_task, cancel_job) and the signal that
 *	  cancels a running job's handler.
 *
 * Each of those public functions is this one C entry point, gw_sql_control:
 * it notes the calling role (GetUserId(), as the function is SECURITY
 * INVOKER), becomes the owner of the queue's tables as a SECURITY DEFINER
 * function would, and runs the internal function named like the public one
 * with a leading underscore (granted to nobody) with the same arguments and
 * the caller's role name last.  So "by whom" is the caller's own name, which
 * no caller can forge.  A job row it returns hides payload and last_error
 * from a caller who may not read them (job_access.c).
 *
 * _signal_job_cancel(job_id, locked_by, by) asks, when its transaction
 * commits, our job worker that claimed job_id (if it lives) to cancel its
 * handler:
 * it sets cancel_job_id and cancel_by in the worker's shared-memory entry
 * and sends it SIGINT; the worker then fails the job with "cancelled by
 * <role>" (job_runner.c), ending its handler within a second even if it
 * catches the cancel.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_control);
PG_FUNCTION_INFO_V1(gw_sql_signal_job_cancel);

#define GW_MAX_PENDING_CANCELS 64

/* Cancels the current transaction asks for, delivered at commit. */
typedef struct PendingCancel
{
	int64		job_id;
	char		worker_id[GW_WORKER_ID_LEN];	/* its locked_by */
	NameData	by;
} PendingCancel;

static PendingCancel pending[GW_MAX_PENDING_CANCELS];
static int	npending = 0;
static bool callback_registered = false;

/* The owner of graphile_worker._private_jobs: whom the control runs as. */
static Oid
queue_owner(void)
{
	Oid			relid = get_relname_relid("_private_jobs",
										  get_namespace_oid(GW_SCHEMA, false));
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "graphile_worker._private_jobs is missing");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * hide_from_caller: a returned job row with payload and last_error NULL
 * where the caller may not read them, as add_job and co. return it.
 */
static Datum
hide_from_caller(Datum row, Oid rowtype, Oid caller, Oid owner, int sec_context)
{
	TupleDesc	desc = lookup_rowtype_tupdesc_copy(rowtype, -1);
	GwJobAccess access;
	GwCaller	c;
	int			hide;

	gw_job_access_init(&access, desc);
	c.userid = caller;
	c.sec_context = sec_context;
	c.owner = caller == owner;
	hide = gw_hidden_columns(&access, &c);
	return hide ? gw_hide_in_row(&access, hide, row, desc) : row;
}

/*
 * gw_sql_control runs graphile_worker._<name>(args..., caller) as the owner
 * of the queue's tables, <name> being the called function's name, and
 * returns its result.
 */
Datum
gw_sql_control(PG_FUNCTION_ARGS)
{
	Oid			fnoid = fcinfo->flinfo->fn_oid;
	HeapTuple	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(fnoid));
	Form_pg_proc form;
	int			nargs = PG_NARGS();
	Oid		   *types = palloc(sizeof(Oid) * (nargs + 1));
	Datum	   *values = palloc(sizeof(Datum) * (nargs + 1));
	char	   *nulls = palloc(nargs + 2);
	Oid			rettype;
	bool		retbyval;
	int16		retlen;
	StringInfoData sql;
	Oid			caller = GetUserId();
	Oid			save_userid;
	int			save_sec_context;
	Oid			owner;
	Datum		result = (Datum) 0;
	bool		isnull = true;

	if (!HeapTupleIsValid(proc))
		elog(ERROR, "cache lookup failed for function %u", fnoid);
	form = (Form_pg_proc) GETSTRUCT(proc);
	rettype = form->prorettype;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT graphile_worker.%s(",
					 quote_identifier(psprintf("_%s", NameStr(form->proname))));
	for (int i = 0; i < nargs; i++)
	{
		types[i] = form->proargtypes.values[i];
		values[i] = PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		appendStringInfo(&sql, "$%d, ", i + 1);
	}
	ReleaseSysCache(proc);
	types[nargs] = TEXTOID;
	values[nargs] = CStringGetTextDatum(GetUserNameFromId(caller, false));
	nulls[nargs] = ' ';
	nulls[nargs + 1] = '\0';
	appendStringInfo(&sql, "$%d)", nargs + 1);
	get_typlenbyval(rettype, &retlen, &retbyval);

	owner = queue_owner();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	gw_spi_connect();
	if (SPI_execute_with_args(sql.data, nargs + 1, types, values, nulls, false, 1)
		!= SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not run %s", sql.data);
	if (rettype != VOIDOID)
	{
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			result = SPI_datumTransfer(result, retbyval, retlen);
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);

	if (rettype == VOIDOID)
		PG_RETURN_VOID();
	if (isnull)
		PG_RETURN_NULL();
	if (type_is_rowtype(rettype))
		result = hide_from_caller(result, rettype, caller, owner, save_sec_context);
	return result;
}

/* Delivers the cancels of a committed transaction. */
static void
deliver_cancels(void)
{
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	for (int c = 0; c < npending; c++)
	{
		for (int i = 0; i < gw_shared->nprocs; i++)
		{
			GwProc	   *p = &gw_shared->procs[i];

			if (p->in_use && p->kind == GW_KIND_WORKER &&
				strcmp(p->worker_id, pending[c].worker_id) == 0)
			{
				p->cancel_job_id = pending[c].job_id;
				p->cancel_by = pending[c].by;
				kill(p->pid, SIGINT);
			}
		}
	}
	LWLockRelease(gw_shared->lock);
}

static void
cancel_xact_callback(XactEvent event, void *arg)
{
	if (npending == 0)
		return;
	if (event == XACT_EVENT_COMMIT)
		deliver_cancels();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		npending = 0;
}

/*
 * _signal_job_cancel(job_id bigint, locked_by text, cancelled_by text): at
 * commit, cancel the handler of job_id in our job worker locked_by, if it
 * lives; a job it claimed but has not started yet is cancelled as it
 * starts.
 */
Datum
gw_sql_signal_job_cancel(PG_FUNCTION_ARGS)
{
	char	   *worker = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *by = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (gw_shared == NULL)
		PG_RETURN_VOID();		/* no workers of ours without preloading */
	if (!callback_registered)
	{
		RegisterXactCallback(cancel_xact_callback, NULL);
		callback_registered = true;
	}
	if (npending >= GW_MAX_PENDING_CANCELS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot cancel more than %d running jobs in one transaction",
						GW_MAX_PENDING_CANCELS)));
	pending[npending].job_id = PG_GETARG_INT64(0);
	strlcpy(pending[npending].worker_id, worker, GW_WORKER_ID_LEN);
	namestrcpy(&pending[npending].by, by);
	npending++;
	PG_RETURN_VOID();
}
