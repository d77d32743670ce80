/*-------------------------------------------------------------------------
 *
 * add_job.c
 *	  graphile_worker.add_job, the way one job is enqueued.
 *
 * A job without a job_key is checked and inserted here: the same checks,
 * in the same order and with the same errors as add_job and
 * _check_job_specs in PL/pgSQL, then the wake-up of our workers at commit
 * and the "jobs:insert" NOTIFY of add_jobs, then one INSERT ... RETURNING
 * with a plan kept for the life of the backend.  That INSERT joins the
 * existing task (and queue) rows; only when one is missing are the missing
 * rows inserted, as add_jobs inserts them (without consuming an identity
 * value when they exist), and the INSERT is run again.
 *
 * A job with a job_key, in any job_key_mode, is handed to the PL/pgSQL
 * function _add_job_keyed with the same arguments and collation: the
 * per-key locking and upsert live there.
 *
 * add_job runs as the caller (SECURITY INVOKER since 0.2.0) with a fixed
 * search_path: it switches to the queue's owner for its work and hides from
 * the row it returns what the caller may not read (job_access.c).  The kept
 * plans name every relation, function and operator with its schema all the
 * same, and always run as the owner.  The fixed search_path also keeps them
 * valid: the plan cache analyses a kept plan again whenever search_path (or
 * the user, with row-level security) differs from the one it was made
 * with.  Runs in any backend that calls add_job, including supervisors
 * firing crontab entries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "errors.h"
#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_add_job);

/* add_job's arguments, in order */
enum
{
	ARG_IDENTIFIER,
	ARG_PAYLOAD,
	ARG_QUEUE_NAME,
	ARG_RUN_AT,
	ARG_MAX_ATTEMPTS,
	ARG_JOB_KEY,
	ARG_PRIORITY,
	ARG_FLAGS,
	ARG_JOB_KEY_MODE,
	ADD_JOB_NARGS
};

/* Limits of the table constraints (tasks, job_queues) */
#define GW_MAX_NAME_CHARS	128

/*
 * $1 identifier, $2 payload, $3 queue_name, $4 run_at, $5 max_attempts,
 * $6 priority, $7 flags.  No row when the task, or the named queue, does
 * not exist yet.
 */
static const char *const insert_job_sql =
"INSERT INTO graphile_worker._private_jobs AS jobs"
"  (job_queue_id, task_id, payload, run_at, max_attempts, priority, flags)"
"SELECT job_queues.id, tasks.id,"
"       COALESCE($2, '{}'::pg_catalog.json),"
"       COALESCE($4, pg_catalog.now()),"
"       COALESCE($5, 25::pg_catalog.int2),"
"       COALESCE($6, 0::pg_catalog.int2),"
"       (SELECT pg_catalog.jsonb_object_agg(item.flag, true)"
"          FROM pg_catalog.unnest($7) AS item(flag))"
"  FROM graphile_worker._private_tasks AS tasks"
"  LEFT JOIN graphile_worker._private_job_queues AS job_queues"
"    ON job_queues.queue_name OPERATOR(pg_catalog.=) $3"
" WHERE tasks.identifier OPERATOR(pg_catalog.=) $1"
"   AND ($3 IS NULL OR job_queues.id IS NOT NULL)"
" RETURNING *";

/* $1 identifier */
static const char *const insert_task_sql =
"INSERT INTO graphile_worker._private_tasks AS tasks (identifier)"
"SELECT $1"
" WHERE NOT EXISTS ("
"   SELECT 1 FROM graphile_worker._private_tasks AS existing"
"    WHERE existing.identifier OPERATOR(pg_catalog.=) $1)"
"ON CONFLICT DO NOTHING";

/* $1 queue_name */
static const char *const insert_queue_sql =
"INSERT INTO graphile_worker._private_job_queues AS job_queues (queue_name)"
"SELECT $1"
" WHERE NOT EXISTS ("
"   SELECT 1 FROM graphile_worker._private_job_queues AS existing"
"    WHERE existing.queue_name OPERATOR(pg_catalog.=) $1)"
"ON CONFLICT DO NOTHING";

static SPIPlanPtr insert_job_plan = NULL;
static SPIPlanPtr insert_task_plan = NULL;
static SPIPlanPtr insert_queue_plan = NULL;

/* What a call site of add_job keeps between calls, in fn_extra. */
typedef struct AddJobCache
{
	TupleDesc	result_desc;	/* graphile_worker._private_jobs */
	GwJobAccess access;
	bool		have_keyed;
	FmgrInfo	keyed;			/* graphile_worker._add_job_keyed */
} AddJobCache;

static AddJobCache *
get_cache(FunctionCallInfo fcinfo)
{
	AddJobCache *cache = fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		TupleDesc	desc;

		cache = palloc0(sizeof(AddJobCache));
		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "add_job: return type must be a row type");
		cache->result_desc = CreateTupleDescCopy(desc);
		gw_job_access_init(&cache->access, cache->result_desc);
		MemoryContextSwitchTo(oldcxt);
		fcinfo->flinfo->fn_extra = cache;
	}
	return cache;
}

/*
 * job_key_mode_is compares as the PL/pgSQL add_job did: with the
 * collation of the call, or the default one when the call has none.
 */
static bool
job_key_mode_is(FunctionCallInfo fcinfo, const char *mode)
{
	Oid			collation = PG_GET_COLLATION();

	if (!OidIsValid(collation))
		collation = DEFAULT_COLLATION_OID;
	return DatumGetBool(DirectFunctionCall2Coll(texteq, collation,
												PG_GETARG_DATUM(ARG_JOB_KEY_MODE),
												CStringGetTextDatum(mode)));
}

/*
 * check_arguments raises the first error that add_job and _check_job_specs
 * would raise for an unkeyed job (as "Job spec 1"), in their order.
 */
static void
check_arguments(FunctionCallInfo fcinfo)
{
	/* Graphile Worker's message, word for word */
	if (!PG_ARGISNULL(ARG_JOB_KEY_MODE) &&
		!job_key_mode_is(fcinfo, "replace") &&
		!job_key_mode_is(fcinfo, "preserve_run_at") &&
		!job_key_mode_is(fcinfo, "unsafe_dedupe"))
		ereport(ERROR,
				(errcode(ERRCODE_GW_BAD_JOB_KEY_MODE),
				 errmsg("Invalid job_key_mode value, expected 'replace', 'preserve_run_at' or 'unsafe_dedupe'.")));
	if (!PG_ARGISNULL(ARG_MAX_ATTEMPTS))
	{
		int32		max_attempts = PG_GETARG_INT32(ARG_MAX_ATTEMPTS);

		if (max_attempts < 1 || max_attempts > PG_INT16_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_attempts must be between 1 and 32767"),
					 errdetail("max_attempts is %d.", max_attempts)));
	}
	if (!PG_ARGISNULL(ARG_PRIORITY))
	{
		int32		priority = PG_GETARG_INT32(ARG_PRIORITY);

		if (priority < PG_INT16_MIN || priority > PG_INT16_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("priority must be between -32768 and 32767"),
					 errdetail("priority is %d.", priority)));
	}

	if (PG_ARGISNULL(ARG_IDENTIFIER))
	{
		/* a job_spec whose fields are all NULL IS NULL */
		if (PG_ARGISNULL(ARG_PAYLOAD) && PG_ARGISNULL(ARG_QUEUE_NAME) &&
			PG_ARGISNULL(ARG_RUN_AT) && PG_ARGISNULL(ARG_MAX_ATTEMPTS) &&
			PG_ARGISNULL(ARG_PRIORITY) && PG_ARGISNULL(ARG_FLAGS))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("job spec 1 is NULL")));
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("task identifier must not be NULL"),
				 errdetail("Job spec 1 has no identifier.")));
	}
	else
	{
		text	   *identifier = PG_GETARG_TEXT_PP(ARG_IDENTIFIER);
		int32		len;

		if (VARSIZE_ANY_EXHDR(identifier) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("task identifier must not be empty"),
					 errdetail("Job spec 1 has an empty identifier.")));
		len = DatumGetInt32(DirectFunctionCall1(textlen,
												PointerGetDatum(identifier)));
		if (len > GW_MAX_NAME_CHARS)
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("task identifier is too long"),
					 errdetail("Job spec 1 has an identifier of %d characters; the limit is 128.",
							   len)));
	}
	if (!PG_ARGISNULL(ARG_QUEUE_NAME))
	{
		int32		len = DatumGetInt32(DirectFunctionCall1(textlen,
															PG_GETARG_DATUM(ARG_QUEUE_NAME)));

		if (len > GW_MAX_NAME_CHARS)
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("queue name is too long"),
					 errdetail("Job spec 1 has a queue_name of %d characters; the limit is 128.",
							   len)));
	}
	if (!PG_ARGISNULL(ARG_FLAGS) &&
		array_contains_nulls(PG_GETARG_ARRAYTYPE_P(ARG_FLAGS)))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("flags must not contain NULL"),
				 errdetail("Job spec 1 has a NULL flag.")));
}

/*
 * notify_jobs_insert sends what add_jobs sends for one job:
 * NOTIFY "jobs:insert", '{"r":<random()>,"count":1}'.  The random value
 * comes from random() itself, so setseed() makes it repeatable and two
 * notifications of a transaction are never folded into one.  (pg_notify
 * also refuses to run during recovery, which the caller has ruled out.)
 */
static void
notify_jobs_insert(void)
{
	LOCAL_FCINFO(random_fcinfo, 0);
	Datum		r;

	InitFunctionCallInfoData(*random_fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	r = drandom(random_fcinfo);
	Async_Notify("jobs:insert",
				 psprintf("{\"r\":%s,\"count\":1}",
						  DatumGetCString(DirectFunctionCall1(float8out, r))));
}

/* run_insert runs one of the kept INSERTs; returns the rows it inserted. */
static uint64
run_insert(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	int			ret = SPI_execute_plan(plan, values, nulls, false, 0);

	if (ret != expected)
		elog(ERROR, "add_job: INSERT failed: %s", SPI_result_code_string(ret));
	return SPI_processed;
}

/*
 * job_row copies the row that the job INSERT returned into a
 * graphile_worker._private_jobs datum allocated in cxt, with the columns
 * in "hide" NULL.  RETURNING * has the table's live columns in order; a
 * dropped column stays NULL.
 */
static Datum
job_row(AddJobCache *cache, int hide, MemoryContext cxt)
{
	TupleDesc	desc = cache->result_desc;
	HeapTuple	returned = SPI_tuptable->vals[0];
	TupleDesc	returned_desc = SPI_tuptable->tupdesc;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	int			col = 0;
	MemoryContext oldcxt;
	Datum		result;

	for (int i = 0; i < desc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
		{
			values[i] = (Datum) 0;
			nulls[i] = true;
			continue;
		}
		if (++col > returned_desc->natts)
			elog(ERROR, "add_job: INSERT returned too few columns");
		values[i] = SPI_getbinval(returned, returned_desc, col, &nulls[i]);
	}
	if (col != returned_desc->natts)
		elog(ERROR, "add_job: INSERT returned too many columns");
	gw_hide_in_nulls(&cache->access, hide, nulls);

	oldcxt = MemoryContextSwitchTo(cxt);
	result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
	MemoryContextSwitchTo(oldcxt);
	return result;
}

/*
 * add_job_keyed calls _add_job_keyed with add_job's arguments and the
 * call's collation, as add_job's own PL/pgSQL body ran with them.
 */
static Datum
add_job_keyed(FunctionCallInfo fcinfo, AddJobCache *cache)
{
	LOCAL_FCINFO(keyed_fcinfo, ADD_JOB_NARGS);
	Datum		result;

	if (!cache->have_keyed)
	{
		Oid			argtypes[ADD_JOB_NARGS] = {
			TEXTOID, JSONOID, TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID,
			INT4OID, TEXTARRAYOID, TEXTOID
		};
		List	   *name = list_make2(makeString(pstrdup(GW_SCHEMA)),
									  makeString(pstrdup("_add_job_keyed")));

		fmgr_info_cxt(LookupFuncName(name, ADD_JOB_NARGS, argtypes, false),
					  &cache->keyed, fcinfo->flinfo->fn_mcxt);
		cache->have_keyed = true;
	}

	InitFunctionCallInfoData(*keyed_fcinfo, &cache->keyed, ADD_JOB_NARGS,
							 PG_GET_COLLATION(), NULL, NULL);
	for (int i = 0; i < ADD_JOB_NARGS; i++)
		keyed_fcinfo->args[i] = fcinfo->args[i];
	result = FunctionCallInvoke(keyed_fcinfo);
	fcinfo->isnull = keyed_fcinfo->isnull;
	return result;
}

/*
 * graphile_worker.add_job(identifier, payload, queue_name, run_at,
 * max_attempts, job_key, priority, flags, job_key_mode) returns the job
 * row inserted (or, with a job_key, inserted or updated), with what the
 * caller may not read hidden.
 */
Datum
gw_sql_add_job(PG_FUNCTION_ARGS)
{
	AddJobCache *cache = get_cache(fcinfo);
	MemoryContext callercxt = CurrentMemoryContext;
	Oid			job_types[7] = {
		TEXTOID, JSONOID, TEXTOID, TIMESTAMPTZOID, INT2OID, INT2OID,
		TEXTARRAYOID
	};
	Datum		values[7];
	char		nulls[7];
	GwCaller	caller;
	int			hide;
	Datum		result;

	if (!PG_ARGISNULL(ARG_JOB_KEY))
	{
		gw_become_queue_owner(&cache->access, &caller);
		result = add_job_keyed(fcinfo, cache);
		gw_restore_caller(&caller);
		hide = gw_hidden_columns(&cache->access, &caller);
		if (hide != 0 && !fcinfo->isnull)
			result = gw_hide_in_row(&cache->access, hide, result,
									cache->result_desc);
		return result;
	}

	check_arguments(fcinfo);

	/*
	 * As add_jobs: the wake-up and the NOTIFY, then the row.  add_jobs wrote
	 * the task row first, so a read-only transaction failed before random()
	 * was drawn: fail the same way, here.
	 */
	PreventCommandIfReadOnly("INSERT");
	if (PG_ARGISNULL(ARG_RUN_AT) ||
		PG_GETARG_TIMESTAMPTZ(ARG_RUN_AT) <= GetCurrentTransactionStartTimestamp())
		gw_wake_at_commit(1, DT_NOEND, 0);
	else
		gw_wake_at_commit(0, PG_GETARG_TIMESTAMPTZ(ARG_RUN_AT), 1);
	if (gw_notify_on_add)
		notify_jobs_insert();

	values[0] = PG_GETARG_DATUM(ARG_IDENTIFIER);
	values[1] = PG_GETARG_DATUM(ARG_PAYLOAD);
	values[2] = PG_GETARG_DATUM(ARG_QUEUE_NAME);
	values[3] = PG_GETARG_DATUM(ARG_RUN_AT);
	values[4] = PG_ARGISNULL(ARG_MAX_ATTEMPTS) ? (Datum) 0 :
		Int16GetDatum((int16) PG_GETARG_INT32(ARG_MAX_ATTEMPTS));
	values[5] = PG_ARGISNULL(ARG_PRIORITY) ? (Datum) 0 :
		Int16GetDatum((int16) PG_GETARG_INT32(ARG_PRIORITY));
	values[6] = PG_GETARG_DATUM(ARG_FLAGS);
	nulls[0] = ' ';
	nulls[1] = PG_ARGISNULL(ARG_PAYLOAD) ? 'n' : ' ';
	nulls[2] = PG_ARGISNULL(ARG_QUEUE_NAME) ? 'n' : ' ';
	nulls[3] = PG_ARGISNULL(ARG_RUN_AT) ? 'n' : ' ';
	nulls[4] = PG_ARGISNULL(ARG_MAX_ATTEMPTS) ? 'n' : ' ';
	nulls[5] = PG_ARGISNULL(ARG_PRIORITY) ? 'n' : ' ';
	nulls[6] = PG_ARGISNULL(ARG_FLAGS) ? 'n' : ' ';

	gw_become_queue_owner(&cache->access, &caller);
	gw_spi_connect();
	if (run_insert(gw_prepare_once(&insert_job_plan, insert_job_sql, 7, job_types),
				   values, nulls, SPI_OK_INSERT_RETURNING) == 0)
	{
		/* a new task or queue: create what is missing, then insert again */
		Oid			name_type[1] = {TEXTOID};

		run_insert(gw_prepare_once(&insert_task_plan, insert_task_sql, 1, name_type),
				   &values[0], &nulls[0], SPI_OK_INSERT);
		if (!PG_ARGISNULL(ARG_QUEUE_NAME))
			run_insert(gw_prepare_once(&insert_queue_plan, insert_queue_sql, 1,
									name_type),
					   &values[2], &nulls[2], SPI_OK_INSERT);
		if (run_insert(insert_job_plan, values, nulls,
					   SPI_OK_INSERT_RETURNING) == 0)
			/* the task row went away meanwhile; add_job's guard said so */
			ereport(ERROR,
					(errcode(ERRCODE_GW_NO_ROW),
					 errmsg("unable to schedule job for key \"%s\"", "<NULL>"),
					 errdetail("A job with this key was changed concurrently by a writer that bypassed add_job.")));
	}
	hide = gw_hidden_columns(&cache->access, &caller);
	result = job_row(cache, hide, callercxt);
	SPI_finish();
	gw_restore_caller(&caller);
	PG_RETURN_DATUM(result);
}
