/*-------------------------------------------------------------------------
 *
 * job_worker.h
 *	  What the files of a job worker share: a claimed job, and the claim,
 *	  handler and run entry points.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_JOB_WORKER_H
#define GW_JOB_WORKER_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/elog.h"

/* Columns of the graphile_worker.jobs view, in its order. */
#define GW_JOBS_VIEW_NATTS 15

/* A claimed job, copied out of the claim transaction. */
typedef struct GwJob
{
	int64		id;
	char	   *task_identifier;
	bool		has_queue;
	Datum		payload;		/* json */
	Datum		row_values[GW_JOBS_VIEW_NATTS];	/* a graphile_worker.jobs row */
	bool		row_nulls[GW_JOBS_VIEW_NATTS];
} GwJob;

/* claim.c */
extern int	gw_claim_jobs(const char *worker_id, int limit, GwJob **jobs);
extern void gw_complete_jobs(int64 *ids, int n, const char *worker_id);
extern void gw_return_job(GwJob *job, const char *worker_id);
extern TimestampTz gw_fail_job(GwJob *job, const char *worker_id,
							   const char *message, bool *permanently);

/* handler.c */
extern Datum gw_handler_identifiers(int *count);
extern void gw_handlers_invalidate(void);
extern void gw_call_handler(GwJob *job);

/* job_worker.c */
extern void gw_arm_job_timeout(int timeout_ms);
extern void gw_disarm_job_timeout(void);
extern char *gw_format_error(ErrorData *edata);

#endif							/* GW_JOB_WORKER_H */
