/*-------------------------------------------------------------------------
 *
 * workers_view.c
 *	  graphile_worker._workers(), behind the graphile_worker.workers view:
 *	  every process of this extension, read from shared memory (database,
 *	  pid, kind, state, worker id, current job and task, since when).
 *	  Executable by PUBLIC since 0.2.0: it checks itself that the caller
 *	  may SELECT the view (monitor.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_workers);

static const char *const kind_names[] = {"launcher", "supervisor", "job worker"};
static const char *const state_names[] = {"starting", "idle", "woken", "busy", "paused"};

Datum
gw_sql_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GwProc	   *copy;
	int			n = 0;

	gw_require_view_select("workers");
	gw_init_materialized_srf(fcinfo);
	if (gw_shared == NULL)
		PG_RETURN_VOID();		/* not preloaded: no processes */

	copy = palloc(sizeof(GwProc) * gw_shared->nprocs);
	LWLockAcquire(gw_shared->lock, LW_SHARED);
	for (int i = 0; i < gw_shared->nprocs; i++)
		if (gw_shared->procs[i].in_use)
			copy[n++] = gw_shared->procs[i];
	LWLockRelease(gw_shared->lock);

	for (int i = 0; i < n; i++)
	{
		GwProc	   *p = &copy[i];
		Datum		values[9];
		bool		nulls[9] = {0};
		char	   *dbname = OidIsValid(p->dboid) ? get_database_name(p->dboid) : NULL;

		values[0] = ObjectIdGetDatum(p->dboid);
		nulls[0] = !OidIsValid(p->dboid);
		values[1] = dbname ? CStringGetTextDatum(dbname) : (Datum) 0;
		nulls[1] = dbname == NULL;
		values[2] = Int32GetDatum(p->pid);
		values[3] = CStringGetTextDatum(kind_names[p->kind]);
		values[4] = CStringGetTextDatum(state_names[p->state]);
		values[5] = CStringGetTextDatum(p->worker_id);
		nulls[5] = p->worker_id[0] == '\0';
		values[6] = Int64GetDatum(p->job_id);
		nulls[6] = p->job_id == 0;
		values[7] = CStringGetTextDatum(p->task);
		nulls[7] = p->job_id == 0;
		values[8] = TimestampTzGetDatum(p->state_since);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
