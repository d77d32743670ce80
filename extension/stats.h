/*-------------------------------------------------------------------------
 *
 * stats.h
 *	  What stats.c (the shared memory of statistics, waiters and recent
 *	  outcomes) offers wait_job.c: the waiter slots of wait_for_job and the
 *	  ring of recent final outcomes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_STATS_H
#define GW_STATS_H

#include "graphile_worker.h"

/* (database, task) entries of the statistics, at most */
#define GW_STATS_MAX_TASKS		1024
/* run time histogram buckets (the last one is +Inf) */
#define GW_DURATION_BUCKETS		18
/* final outcomes remembered for a wait_for_job that comes late */
#define GW_RECENT_OUTCOMES		4096
/* sessions of the server that may be in wait_for_job at once */
#define GW_MAX_WAITERS			256

/* A session in wait_for_job; pid 0: a free slot. */
typedef struct GwWaiter
{
	int			pid;
	Oid			dboid;
	int64		job_id;
	Latch	   *latch;
	GwOutcome	outcome;		/* set by whoever finished the job */
} GwWaiter;

extern int	gw_waiter_register(int64 job_id);
extern GwOutcome gw_waiter_outcome(int slot);
extern void gw_waiter_release(int slot);
extern GwOutcome gw_recent_outcome(int64 job_id);

#endif							/* GW_STATS_H */
