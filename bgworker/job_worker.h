/*-------------------------------------------------------------------------
 *
 * job_worker.h
 *	  What the files of a job worker share: a claimed job, and the entry
 *	  points of claim.c (the queue statements), handler.c (finding and
 *	  calling handlers), job_runner.c (running one job in isolation) and
 *	  outcome.c (history rows, statistics, waiters, the failure log).
 *
 *	  job_worker.c (the process) calls the other four; job_runner.c calls
 *	  handler.c; none calls back.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_JOB_WORKER_H
#define GW_JOB_WORKER_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/elog.h"

#include "graphile_worker.h"

/* Columns of the graphile_worker.jobs view, in its order. */
#define GW_JOBS_VIEW_NATTS 15
/* Their positions used here */
#define GW_JOBS_COL_PRIORITY 3
#define GW_JOBS_COL_RUN_AT 4
#define GW_JOBS_COL_KEY 10
#define GW_JOBS_COL_REVISION 13

typedef struct GwHandler GwHandler;

/* What became of a claimed job in the current transaction. */
typedef enum GwJobOutcome
{
	GW_JOB_PENDING,				/* not run (yet) */
	GW_JOB_SUCCEEDED,			/* its handler returned; delete it */
	GW_JOB_FAILED,				/* its handler failed; error is set */
	GW_JOB_STOPPED				/* cancelled by a stop of the worker */
} GwJobOutcome;

/*
 * A claimed job.  Everything it points to lives in the batch's memory
 * context (job_worker.c), but handler, which lives in handler.c's table
 * until the next claim.
 */
typedef struct GwJob
{
	int64		id;
	char	   *task_identifier;
	Datum		payload;		/* json as stored: maybe compressed or a
								 * TOAST pointer; detoasted only to run */
	Datum		row_values[GW_JOBS_VIEW_NATTS];	/* a graphile_worker.jobs row */
	bool		row_nulls[GW_JOBS_VIEW_NATTS];
	GwHandler  *handler;		/* NULL: none any more */

	GwJobOutcome outcome;
	char	   *error;			/* last_error text of a failure */
	bool		wrote;			/* its handler wrote something */
	bool		split_after;	/* it changed transaction state (SET
								 * CONSTRAINTS): commit before the next job */
	bool		finalized;		/* its completion, failure or return has
								 * committed: nothing more to do for it */

	/* what outcome.c records of the attempt (history, statistics) */
	TimestampTz started_at;		/* when its handler was called; 0: never */
	TimestampTz finished_at;
	GwOutcome	failure;		/* a failure's kind: GW_OUTCOME_FAILED,
								 * _TIMED_OUT or _CANCELLED */
	int			sqlerrcode;		/* of a failure's error, or 0 */
	bool		permanently;	/* failed with no attempt left */
	Datum		result;			/* the handler's json(b) result as jsonb,
								 * in the batch's context; 0: none kept */
} GwJob;

/* job_worker.c: the database's settings as the worker last read them */
extern GwDbSettings gw_worker_settings;

/* claim.c */
extern int	gw_claim_jobs(const char *worker_id, int limit, MemoryContext cxt,
						  GwJob **jobs);
extern void gw_claim_end_batch(void);
extern void gw_complete_jobs(GwJob **jobs, int n, const char *worker_id);
extern void gw_return_job(GwJob *job, const char *worker_id);
extern TimestampTz gw_fail_job(GwJob *job, const char *worker_id,
							   const char *message, bool *permanently);

/* handler.c */
extern Datum gw_handler_identifiers(int *count);
extern void gw_handlers_invalidate(void);
extern GwHandler *gw_handler_find(const char *task);
extern Oid	gw_handler_owner(const GwHandler *h);
extern Oid	gw_handler_result_type(const GwHandler *h);
extern int	gw_handler_timeout_ms(const GwHandler *h);
extern Datum gw_handler_call(GwHandler *h, GwJob *job, bool *isnull);
extern char *gw_format_error(ErrorData *edata);

/* job_runner.c */

/* Why the worker is being stopped; the order is of increasing weight. */
typedef enum GwStopKind
{
	GW_STOP_NONE,
	GW_STOP_TERMINATE,			/* pg_terminate_backend and the like: the
								 * running job's attempt counts */
	GW_STOP_ADMIN				/* server shutdown or a command of ours: the
								 * running job is given back */
} GwStopKind;

extern void gw_runner_init(void);
extern void gw_runner_stop(GwStopKind kind);
extern void gw_runner_cancel(void);
extern void gw_runner_end_batch(void);
extern GwStopKind gw_runner_stop_kind(void);
extern void gw_run_job(GwJob *job, MemoryContext job_cxt, MemoryContext keep_cxt);
extern void gw_runner_settings_for_batch(void);
extern const char *gw_runner_exit_reason(bool *refund, GwOutcome *failure);

/* outcome.c */
extern GwOutcome gw_job_outcome(const GwJob *job);
extern bool gw_outcome_keeps_results(void);
extern void gw_outcome_write_history(GwJob **jobs, int n, const char *worker_id);
extern void gw_outcome_report(GwJob **jobs, int n);

#endif							/* GW_JOB_WORKER_H */
