/*-------------------------------------------------------------------------
 *
 * handler.c
 *	  Task handlers: finding the function that runs a task, and calling it
 *	  with the job's arguments.  Runs in job workers; job_runner.c calls
 *	  it, as the handler's owner, and owns the job timeout.
 *
 * A job with task identifier X runs the function named X in the first
 * schema of graphile_worker.task_schemas that has one with an accepted
 * signature:
 *
 *		X(payload json | jsonb [, job graphile_worker.jobs])
 *
 * When several overloads match in that schema, (payload, job) is preferred
 * to (payload), and json to jsonb.  Only plain functions (not procedures,
 * not set-returning) qualify; a json or jsonb result is kept for the
 * job's history row (job_runner.c, outcome.c), any other is ignored.  The language
 * does not matter: SQL, PL/pgSQL and C handlers are called the same way.
 *
 * A handler function may carry its own job timeout, overriding
 * graphile_worker.job_timeout for its task:
 *
 *		ALTER FUNCTION graphile_worker_tasks.slow(json)
 *			SET graphile_worker.job_timeout = '30s';
 *
 * The table of handlers is built in the claim's transaction and rebuilt
 * there after any change to pg_proc or pg_namespace (syscache callbacks)
 * or a reload; it never changes while a batch runs.  Its list of
 * identifiers is what the claim query asks for, so jobs whose task has no
 * handler here are never claimed.  A handler's function is looked up by
 * fmgr (its library loaded) at its first call, inside a job: a handler
 * that cannot be loaded fails its own jobs, never the claim.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "compat.h"
#include "graphile_worker.h"
#include "job_worker.h"

struct GwHandler
{
	NameData	identifier;		/* hash key: the function name */
	Oid			fnoid;
	Oid			owner;
	bool		takes_jsonb;
	bool		takes_job;
	int			timeout_ms;		/* its SET graphile_worker.job_timeout, or -1 */
	Oid			result_type;	/* what it returns */
	bool		flinfo_ready;	/* flinfo is set up (on its first call) */
	FmgrInfo	flinfo;
};

/*
 * The table lives in handler_cxt and is rebuilt only by
 * gw_handler_identifiers, which a job worker calls in its claim
 * transaction: entries found for the jobs of a batch stay valid until the
 * worker claims again.  The syscache callbacks only mark it stale.
 */
static MemoryContext handler_cxt = NULL;
static HTAB *handlers = NULL;
static Datum identifiers = (Datum) 0;	/* text[] of the hash's keys */
static int	nhandlers = 0;
static Oid	jobs_type = InvalidOid;		/* graphile_worker.jobs rowtype */
static TupleDesc jobs_desc = NULL;
static bool handlers_valid = false;
static uint64 invalidations = 0;	/* counts invalidate_handlers calls */
static bool callbacks_registered = false;

static const char *const find_handlers_sql =
"SELECT p.oid, p.proname::pg_catalog.text, p.proowner,"
"       p.proargtypes[0] OPERATOR(pg_catalog.=) 'pg_catalog.jsonb'::pg_catalog.regtype,"
"       p.pronargs OPERATOR(pg_catalog.=) 2,"
"       (SELECT pg_catalog.substr(c, 29) FROM pg_catalog.unnest(p.proconfig) AS c"
"         WHERE c OPERATOR(pg_catalog.~~) 'graphile_worker.job_timeout=%' LIMIT 1),"
"       p.prorettype"
"  FROM pg_catalog.pg_proc p"
"  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace"
" WHERE n.nspname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])"
"   AND p.prokind OPERATOR(pg_catalog.=) 'f' AND NOT p.proretset"
"   AND p.pronargs OPERATOR(pg_catalog.>=) 1 AND p.pronargs OPERATOR(pg_catalog.<=) 2"
"   AND p.proargtypes[0] OPERATOR(pg_catalog.=) ANY"
"       (ARRAY['pg_catalog.json'::pg_catalog.regtype, 'pg_catalog.jsonb'::pg_catalog.regtype]::pg_catalog.oid[])"
"   AND (p.pronargs OPERATOR(pg_catalog.=) 1"
"        OR p.proargtypes[1] OPERATOR(pg_catalog.=) $2::pg_catalog.oid)"
" ORDER BY pg_catalog.array_position($1::pg_catalog.name[], n.nspname),"
"          p.pronargs DESC,"
"          p.proargtypes[0] OPERATOR(pg_catalog.=) 'pg_catalog.jsonb'::pg_catalog.regtype";

static void
invalidate_handlers(Datum arg, int cacheid, uint32 hashvalue)
{
	handlers_valid = false;
	invalidations++;
}

/*
 * gw_handlers_invalidate forgets the handler table; it is rebuilt on the
 * next claim.  Called after a configuration reload.
 */
void
gw_handlers_invalidate(void)
{
	handlers_valid = false;
}

/* The task schemas setting as a name[] datum, in the current context. */
static Datum
task_schemas_datum(void)
{
	char	   *raw = pstrdup(gw_worker_settings.task_schemas);
	List	   *names = NIL;
	ListCell   *lc;
	Datum	   *elems;
	int			n = 0;

	if (!SplitIdentifierString(raw, ',', &names))
		names = NIL;			/* rejected by the check hook already */
	elems = palloc(sizeof(Datum) * Max(list_length(names), 1));
	foreach(lc, names)
	{
		Name		name = palloc0(NAMEDATALEN);

		namestrcpy(name, (char *) lfirst(lc));
		elems[n++] = NameGetDatum(name);
	}
	return PointerGetDatum(construct_array(elems, n, NAMEOID, NAMEDATALEN,
										   false, TYPALIGN_CHAR));
}

/*
 * rebuild_handlers reads the handler functions through SPI.  The caller
 * is connected to SPI inside a transaction.
 */
static void
rebuild_handlers(void)
{
	HASHCTL		ctl;
	Datum		args[2];
	Oid			argtypes[2] = {NAMEARRAYOID, OIDOID};
	Oid			jobs_rel;
	Datum	   *names;
	MemoryContext oldcxt;
	int			ret;
	uint64		invalidations_before = invalidations;

	if (handler_cxt == NULL)
		handler_cxt = AllocSetContextCreate(TopMemoryContext,
											"graphile_worker handlers",
											ALLOCSET_SMALL_SIZES);
	handlers_valid = false;
	MemoryContextReset(handler_cxt);
	handlers = NULL;
	jobs_desc = NULL;
	identifiers = (Datum) 0;
	nhandlers = 0;

	/*
	 * Without the extension (DROP EXTENSION) there is nothing to claim; the
	 * supervisor notices too and stops this worker.
	 */
	if (!OidIsValid(get_extension_oid(GW_EXTENSION_NAME, true)))
	{
		handlers_valid = (invalidations == invalidations_before);
		return;
	}
	jobs_rel = get_relname_relid("jobs", get_namespace_oid(GW_SCHEMA, false));
	if (!OidIsValid(jobs_rel))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("view graphile_worker.jobs does not exist")));
	jobs_type = get_rel_type_id(jobs_rel);

	args[0] = task_schemas_datum();
	args[1] = ObjectIdGetDatum(jobs_type);
	/* not read-only: a fresh snapshot sees functions committed meanwhile */
	ret = SPI_execute_with_args(find_handlers_sql, 2, argtypes, args, NULL,
								false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not list task handlers: %s", SPI_result_code_string(ret));

	oldcxt = MemoryContextSwitchTo(handler_cxt);
	jobs_desc = lookup_rowtype_tupdesc_copy(jobs_type, -1);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(GwHandler);
	ctl.hcxt = handler_cxt;
	handlers = hash_create("graphile_worker handlers", 64, &ctl,
						   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	names = palloc(sizeof(Datum) * Max(SPI_processed, 1));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		NameData	key;
		GwHandler  *h;
		bool		found;

		namestrcpy(&key, name);
		h = hash_search(handlers, &key, HASH_ENTER, &found);
		if (found)
			continue;			/* an earlier schema or overload wins */
		h->fnoid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		h->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		h->takes_jsonb = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		h->takes_job = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		h->timeout_ms = -1;
		h->result_type = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
		{
			Datum		t = SPI_getbinval(tup, desc, 6, &isnull);

			if (!isnull &&
				!parse_int(TextDatumGetCString(t), &h->timeout_ms, GUC_UNIT_MS, NULL))
				h->timeout_ms = -1;
		}
		/* set up at its first call, so a broken one fails only its jobs */
		h->flinfo_ready = false;
		names[nhandlers++] = CStringGetTextDatum(name);
	}
	identifiers = PointerGetDatum(construct_array(names, nhandlers, TEXTOID,
												  -1, false, TYPALIGN_INT));
	MemoryContextSwitchTo(oldcxt);

	/* a function changed while we read: read again next time */
	handlers_valid = (invalidations == invalidations_before);
}

/*
 * gw_handler_identifiers returns the identifiers that have a handler here,
 * as a text[] datum, rebuilding the table first if it is stale.  *count is
 * set to their number.  The caller is connected to SPI in a transaction.
 */
Datum
gw_handler_identifiers(int *count)
{
	if (!callbacks_registered)
	{
		CacheRegisterSyscacheCallback(PROCOID, invalidate_handlers, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_handlers, (Datum) 0);
		callbacks_registered = true;
	}
	if (!handlers_valid)
		rebuild_handlers();
	*count = nhandlers;
	return identifiers;
}

/*
 * gw_handler_find returns the handler of task as of the latest
 * gw_handler_identifiers, or NULL.  The result stays valid until the next
 * call of gw_handler_identifiers.
 */
GwHandler *
gw_handler_find(const char *task)
{
	NameData	key;

	if (handlers == NULL || strlen(task) >= NAMEDATALEN)
		return NULL;
	namestrcpy(&key, task);
	return hash_search(handlers, &key, HASH_FIND, NULL);
}

/* gw_handler_owner: the role a handler runs as (its function's owner). */
Oid
gw_handler_owner(const GwHandler *h)
{
	return h->owner;
}

/* gw_handler_result_type: the type the handler's function returns. */
Oid
gw_handler_result_type(const GwHandler *h)
{
	return h->result_type;
}

/* gw_handler_timeout_ms: the handler's own job timeout, or -1. */
int
gw_handler_timeout_ms(const GwHandler *h)
{
	return h->timeout_ms;
}

/*
 * gw_handler_call calls handler h for job, as the current user (the caller
 * has switched to the owner), and returns what it returns.  Arguments are
 * built in CurrentMemoryContext, which the caller resets after the job:
 * the payload is detoasted there (one copy; for a jsonb handler the json
 * text is converted and freed), the job row is formed there.  The function
 * is looked up at its first call, so a handler whose library cannot be
 * loaded fails its own jobs, not the claim.  Errors propagate: the caller
 * runs this in the job's subtransaction.
 */
Datum
gw_handler_call(GwHandler *h, GwJob *job, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		result;

	if (!SearchSysCacheExists1(PROCOID, ObjectIdGetDatum(h->fnoid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("no handler for task \"%s\"", job->task_identifier),
				 errdetail("The handler function was dropped after the job was claimed.")));
	if (gw_proc_aclcheck(h->fnoid, h->owner, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", get_func_name(h->fnoid)),
				 errdetail("The owner of a task handler needs EXECUTE on it.")));
	if (!h->flinfo_ready)
	{
		fmgr_info_cxt(h->fnoid, &h->flinfo, handler_cxt);
		h->flinfo_ready = true;
	}

	InitFunctionCallInfoData(*fcinfo, &h->flinfo, h->takes_job ? 2 : 1,
							 InvalidOid, NULL, NULL);
	if (h->takes_jsonb)
	{
		char	   *json_text = TextDatumGetCString(job->payload);

		fcinfo->args[0].value = DirectFunctionCall1(jsonb_in, CStringGetDatum(json_text));
		pfree(json_text);
	}
	else
		fcinfo->args[0].value = PointerGetDatum(PG_DETOAST_DATUM(job->payload));
	fcinfo->args[0].isnull = false;
	if (h->takes_job)
	{
		HeapTuple	row = heap_form_tuple(jobs_desc, job->row_values, job->row_nulls);

		fcinfo->args[1].value = HeapTupleGetDatum(row);
		fcinfo->args[1].isnull = false;
	}
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * gw_format_error turns an error into last_error text: the message, then
 * DETAIL, HINT and CONTEXT lines when present.
 */
char *
gw_format_error(ErrorData *edata)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, edata->message ? edata->message : "unknown error");
	if (edata->detail)
		appendStringInfo(&buf, "\nDETAIL: %s", edata->detail);
	if (edata->hint)
		appendStringInfo(&buf, "\nHINT: %s", edata->hint);
	if (edata->context)
		appendStringInfo(&buf, "\nCONTEXT: %s", edata->context);
	return buf.data;
}
