/*-------------------------------------------------------------------------
 *
 * job_access.c
 *	  What a caller of add_job, add_jobs and remove_job may see of the job
 *	  rows they return, and running those functions as the queue's owner.
 *
 * The three public functions are SECURITY INVOKER (0.2.0): they look at
 * the caller (GetUserId()), switch to the owner of
 * graphile_worker._private_jobs, as SECURITY DEFINER would, to run their
 * work (the internal functions _add_job_keyed, _add_jobs and _remove_job,
 * granted to nobody, or add_job's own INSERT), switch back, and hide from
 * the returned rows what the caller may not read:
 *
 *	- payload, unless the caller may read _private_jobs.payload: SELECT on
 *	  the table or the column, and not subject to the table's row-level
 *	  security (its owner, a superuser, a BYPASSRLS role);
 *	- last_error, unless the caller may SELECT graphile_worker.jobs (or its
 *	  last_error column).
 *
 * Hidden columns are NULL.  Without this, a role granted only EXECUTE on
 * add_job could read another role's payload through job_key (unsafe_dedupe
 * returns the existing job, add_jobs concatenates array payloads with the
 * same key, remove_job returns the row it deleted).
 *
 * The search_path of the three functions is pinned by their SET clause, so
 * nothing here depends on the caller's.  An error while running as the
 * owner needs no clean-up: the abort of the (sub)transaction restores the
 * user id, as for SECURITY DEFINER functions.
 *
 * add_job itself is in add_job.c.  With the 0.1.0 definitions (SECURITY
 * DEFINER), the caller seen here is the definer: nothing is switched or
 * hidden, as before.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_add_jobs);
PG_FUNCTION_INFO_V1(gw_sql_remove_job);

/*
 * Bumped whenever a catalog row that decides what a caller may see could
 * have changed (a relation's owner, ACL or row-level security, a column's
 * ACL, a role's attributes or memberships), here or in another session:
 * the owner and the hidden columns kept in a GwJobAccess are valid while
 * it stays the same, so that add_job does not pay for the checks at every
 * call.
 */
static uint64 access_epoch = 1;
static bool callbacks_registered = false;

static void
access_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	access_epoch++;
}

/* The index in desc of the live column named name, or -1. */
static int
column_index(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

/*
 * gw_job_access_init fills *access for job rows of type rowdesc (the
 * row type of graphile_worker._private_jobs).
 */
void
gw_job_access_init(GwJobAccess *access, TupleDesc rowdesc)
{
	Oid			nsp = get_namespace_oid(GW_SCHEMA, false);

	if (!callbacks_registered)
	{
		CacheRegisterSyscacheCallback(RELOID, access_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(ATTNUM, access_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, access_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, access_changed, (Datum) 0);
		callbacks_registered = true;
	}
	access->epoch = 0;			/* nothing known yet */

	access->jobs_relid = get_relname_relid("_private_jobs", nsp);
	access->view_relid = get_relname_relid("jobs", nsp);
	if (!OidIsValid(access->jobs_relid) || !OidIsValid(access->view_relid))
		elog(ERROR, "graphile_worker._private_jobs or graphile_worker.jobs is missing");
	access->payload_attnum = get_attnum(access->jobs_relid, "payload");
	access->view_last_error_attnum = get_attnum(access->view_relid, "last_error");
	access->payload_index = column_index(rowdesc, "payload");
	access->last_error_index = column_index(rowdesc, "last_error");
}

/*
 * gw_become_queue_owner saves the caller's identity in *caller and, when
 * the caller is not the owner of _private_jobs, makes the owner the
 * current user, as a SECURITY DEFINER function would.
 */
void
gw_become_queue_owner(GwJobAccess *access, GwCaller *caller)
{
	if (access->epoch != access_epoch)
	{
		HeapTuple	tup = SearchSysCache1(RELOID,
										  ObjectIdGetDatum(access->jobs_relid));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", access->jobs_relid);
		access->owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
		access->hide_for = InvalidOid;
		access->epoch = access_epoch;
	}
	GetUserIdAndSecContext(&caller->userid, &caller->sec_context);
	caller->owner = access->owner == caller->userid;
	if (!caller->owner)
		SetUserIdAndSecContext(access->owner,
							   caller->sec_context | SECURITY_LOCAL_USERID_CHANGE);
}

/* gw_restore_caller makes the caller the current user again. */
void
gw_restore_caller(const GwCaller *caller)
{
	if (!caller->owner)
		SetUserIdAndSecContext(caller->userid, caller->sec_context);
}

/* may_select: SELECT on relation relid, or on its column attnum. */
static bool
may_select(Oid relid, AttrNumber attnum, Oid roleid)
{
	return pg_class_aclcheck(relid, roleid, ACL_SELECT) == ACLCHECK_OK ||
		(attnum != InvalidAttrNumber &&
		 pg_attribute_aclcheck(relid, attnum, roleid, ACL_SELECT) == ACLCHECK_OK);
}

/*
 * gw_hidden_columns returns which columns of the returned job rows the
 * caller may not read (GW_HIDE_PAYLOAD, GW_HIDE_LAST_ERROR).
 */
int
gw_hidden_columns(GwJobAccess *access, const GwCaller *caller)
{
	int			hide = 0;

	if (caller->owner)
		return 0;
	if (access->epoch == access_epoch && access->hide_for == caller->userid)
		return access->hide;
	if (!superuser_arg(caller->userid))
	{
		if (check_enable_rls(access->jobs_relid, caller->userid, true) == RLS_ENABLED ||
			!may_select(access->jobs_relid, access->payload_attnum, caller->userid))
			hide |= GW_HIDE_PAYLOAD;
		if (!may_select(access->view_relid, access->view_last_error_attnum,
						caller->userid))
			hide |= GW_HIDE_LAST_ERROR;
	}
	/* the checks read the catalogs: valid only if nothing changed meanwhile */
	if (access->epoch == access_epoch)
	{
		access->hide_for = caller->userid;
		access->hide = hide;
	}
	return hide;
}

/* gw_hide_in_nulls marks the hidden columns of a deformed job row NULL. */
void
gw_hide_in_nulls(const GwJobAccess *access, int hide, bool *nulls)
{
	if ((hide & GW_HIDE_PAYLOAD) && access->payload_index >= 0)
		nulls[access->payload_index] = true;
	if ((hide & GW_HIDE_LAST_ERROR) && access->last_error_index >= 0)
		nulls[access->last_error_index] = true;
}

/*
 * gw_hide_in_row returns the composite job row datum "row" (of type desc)
 * with the hidden columns NULL, allocated in the current memory context.
 */
Datum
gw_hide_in_row(const GwJobAccess *access, int hide, Datum row, TupleDesc desc)
{
	HeapTupleHeader hdr = DatumGetHeapTupleHeader(row);
	HeapTupleData tuple;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);

	tuple.t_len = HeapTupleHeaderGetDatumLength(hdr);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = hdr;
	heap_deform_tuple(&tuple, desc, values, nulls);
	gw_hide_in_nulls(access, hide, nulls);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/* What a call site of add_jobs or remove_job keeps between calls. */
typedef struct JobFunctionCache
{
	FmgrInfo	inner;			/* _add_jobs or _remove_job */
	TupleDesc	rowdesc;		/* graphile_worker._private_jobs */
	GwJobAccess access;
} JobFunctionCache;

/*
 * get_cache returns the call site's cache, made on the first call: the
 * internal function "name", which has the signature of the called one,
 * and the job row type.
 */
static JobFunctionCache *
get_cache(FunctionCallInfo fcinfo, const char *name)
{
	JobFunctionCache *cache = fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		List	   *qualified = list_make2(makeString(pstrdup(GW_SCHEMA)),
										   makeString(pstrdup(name)));
		Oid		   *argtypes;
		int			nargs;
		TupleDesc	desc;

		cache = palloc0(sizeof(JobFunctionCache));
		(void) get_func_signature(fcinfo->flinfo->fn_oid, &argtypes, &nargs);
		fmgr_info_cxt(LookupFuncName(qualified, nargs, argtypes, false),
					  &cache->inner, fcinfo->flinfo->fn_mcxt);
		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "%s: return type must be a row type", name);
		cache->rowdesc = CreateTupleDescCopy(desc);
		gw_job_access_init(&cache->access, cache->rowdesc);
		MemoryContextSwitchTo(oldcxt);
		fcinfo->flinfo->fn_extra = cache;
	}
	return cache;
}

/*
 * hide_in_tuplestore replaces the rows of a materialized result with
 * copies whose hidden columns are NULL.
 */
static void
hide_in_tuplestore(const GwJobAccess *access, int hide, ReturnSetInfo *rsinfo)
{
	MemoryContext oldcxt =
		MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	TupleDesc	desc = rsinfo->setDesc;
	Tuplestorestate *masked = tuplestore_begin_heap(true, false, work_mem);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);

	MemoryContextSwitchTo(oldcxt);
	while (tuplestore_gettupleslot(rsinfo->setResult, true, false, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		memcpy(nulls, slot->tts_isnull, sizeof(bool) * desc->natts);
		gw_hide_in_nulls(access, hide, nulls);
		tuplestore_putvalues(masked, desc, slot->tts_values, nulls);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(rsinfo->setResult);
	rsinfo->setResult = masked;
}

/*
 * graphile_worker.add_jobs(specs job_spec[], job_key_preserve_run_at
 * boolean) runs _add_jobs as the queue's owner and returns its rows, with
 * what the caller may not read hidden.
 */
Datum
gw_sql_add_jobs(PG_FUNCTION_ARGS)
{
	JobFunctionCache *cache = get_cache(fcinfo, "_add_jobs");
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	LOCAL_FCINFO(inner_fcinfo, 2);
	GwCaller	caller;
	int			hide;

	InitFunctionCallInfoData(*inner_fcinfo, &cache->inner, 2,
							 PG_GET_COLLATION(), NULL, (Node *) rsinfo);
	for (int i = 0; i < 2; i++)
		inner_fcinfo->args[i] = fcinfo->args[i];

	gw_become_queue_owner(&cache->access, &caller);
	(void) FunctionCallInvoke(inner_fcinfo);
	gw_restore_caller(&caller);

	hide = gw_hidden_columns(&cache->access, &caller);
	if (hide != 0 && rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) &&
		rsinfo->returnMode == SFRM_Materialize && rsinfo->setResult != NULL)
		hide_in_tuplestore(&cache->access, hide, rsinfo);
	fcinfo->isnull = inner_fcinfo->isnull;
	return (Datum) 0;
}

/*
 * graphile_worker.remove_job(job_key text) runs _remove_job as the queue's
 * owner and returns its row, with what the caller may not read hidden.
 */
Datum
gw_sql_remove_job(PG_FUNCTION_ARGS)
{
	JobFunctionCache *cache = get_cache(fcinfo, "_remove_job");
	LOCAL_FCINFO(inner_fcinfo, 1);
	GwCaller	caller;
	Datum		result;
	int			hide;

	InitFunctionCallInfoData(*inner_fcinfo, &cache->inner, 1,
							 PG_GET_COLLATION(), NULL, NULL);
	inner_fcinfo->args[0] = fcinfo->args[0];

	gw_become_queue_owner(&cache->access, &caller);
	result = FunctionCallInvoke(inner_fcinfo);
	gw_restore_caller(&caller);

	if (inner_fcinfo->isnull)
		PG_RETURN_NULL();
	hide = gw_hidden_columns(&cache->access, &caller);
	if (hide != 0)
		result = gw_hide_in_row(&cache->access, hide, result, cache->rowdesc);
	PG_RETURN_DATUM(result);
}
