/*-------------------------------------------------------------------------
 *
 * bgworker.h
 *	  The processes of graphile_worker: their entry points (named by
 *	  string when extension/start_worker.c registers them), what a
 *	  supervisor tells a job worker it starts, and the supervisor's
 *	  periodic work (the sweep, the cron ticker, the housekeeping).
 *
 *	  Files in bgworker/ call into extension/ and extension/core/, never
 *	  the other way round.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_BGWORKER_H
#define GW_BGWORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* What a supervisor puts in bgw_extra for a job worker it starts. */
typedef struct GwWorkerStart
{
	int			slot;			/* 0 .. concurrency - 1 */
	uint32		gen;			/* the slot's generation at the start */
} GwWorkerStart;

/* launcher.c, supervisor.c, job_worker.c */
extern PGDLLEXPORT void gw_launcher_main(Datum arg);
extern PGDLLEXPORT void gw_supervisor_main(Datum arg);
extern PGDLLEXPORT void gw_job_worker_main(Datum arg);

/* recovery.c */
extern void gw_sweep(Oid dboid);

/* cron_ticker.c */
extern TimestampTz gw_cron_ticker(TimestampTz now);

/* maintenance.c */
extern TimestampTz gw_maintenance(TimestampTz now);

#endif							/* GW_BGWORKER_H */
