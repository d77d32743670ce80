/*-------------------------------------------------------------------------
 *
 * monitor.c
 *	  What the monitoring views share: the privilege check of the functions
 *	  behind them, and _task_schemas() for unhandled_tasks.
 *
 * A view calls its functions as its caller (only its tables are read as
 * the view's owner), so a role granted SELECT on graphile_worker.workers
 * alone could not call _workers().  The functions behind such views are
 * executable by PUBLIC instead (who still needs USAGE on the schema) and
 * check here that the caller may SELECT their view.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"

#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_task_schemas);

/*
 * gw_require_view_select raises an error unless the current user may
 * SELECT graphile_worker.<view>.  A database without that view (an older
 * version of the extension) has nothing to check.
 */
void
gw_require_view_select(const char *view)
{
	Oid			nsp = get_namespace_oid(GW_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(view, nsp) : InvalidOid;

	if (!OidIsValid(relid))
		return;
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for view %s", view),
				 errhint("GRANT SELECT ON graphile_worker.%s, or use graphile_worker.grant_monitor().",
						 view)));
}

/*
 * graphile_worker._task_schemas(): graphile_worker.task_schemas as name[],
 * for the unhandled_tasks view (the setting is visible to superusers only).
 */
Datum
gw_sql_task_schemas(PG_FUNCTION_ARGS)
{
	char	   *raw;
	List	   *names = NIL;
	ListCell   *lc;
	Datum	   *elems;
	int			n = 0;

	gw_require_view_select("unhandled_tasks");
	raw = pstrdup(gw_task_schemas ? gw_task_schemas : "");
	if (!SplitIdentifierString(raw, ',', &names))
		names = NIL;			/* rejected by the check hook already */
	elems = palloc(sizeof(Datum) * Max(list_length(names), 1));
	foreach(lc, names)
	{
		Name		name = palloc0(NAMEDATALEN);

		namestrcpy(name, (char *) lfirst(lc));
		elems[n++] = NameGetDatum(name);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, NAMEOID, NAMEDATALEN,
										  false, TYPALIGN_CHAR));
}
