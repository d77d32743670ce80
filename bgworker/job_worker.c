/*-------------------------------------------------------------------------
 *
 * job_worker.c
 *	  The job worker process: claims due jobs and runs their handlers.
 *	  A supervisor keeps graphile_worker.concurrency of them per database.
 *
 * Life of a batch (see the README's job life cycle):
 *  1. Claim, in its own transaction, committed before anything runs, so
 *	   the attempt counts even if the handler then crashes the server.
 *  2. Run, in one transaction: each job in its own subtransaction, where
 *	   the handler runs as its function's owner and, on success, the job is
 *	   deleted; so a job's own writes and its completion commit together.
 *	   On error the subtransaction rolls back and the failure (last_error,
 *	   backoff run_at, unlock) is written in the outer transaction.
 *
 * Between batches the worker sleeps on its latch; wakeup.c sets it when a
 * transaction that added jobs commits, the supervisor sets it at a job's
 * run_at and every poll_interval.  Memory of a batch lives in a context
 * reset after each batch.
 *
 * SIGTERM (shutdown, pg_terminate_backend, DROP DATABASE) is graceful: a
 * running handler is cancelled, its subtransaction rolls back, and the job
 * and any claimed job not yet started are given back without counting the
 * attempt, then the worker exits.  A handler running longer than its job
 * timeout is cancelled too, and the job fails with "job timed out".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "graphile_worker.h"
#include "job_worker.h"

/*
 * Jobs claimed per statement and run in one transaction: as many as take
 * about GW_BATCH_TARGET_US by the measured average job time, at least 1,
 * at most GW_BATCH_MAX, or GW_BATCH_MAX_WRITING when handlers of the last
 * batch wrote: each writing handler takes a subtransaction id, a backend
 * caches 64 of them, and more would slow every snapshot in the server
 * while the transaction lasts.
 */
#define GW_BATCH_MAX 200
#define GW_BATCH_MAX_WRITING 60
#define GW_BATCH_TARGET_US 20000.0

static bool last_batch_wrote = true;

static double avg_job_us = GW_BATCH_TARGET_US;	/* moving average */

static char worker_id[GW_WORKER_ID_LEN];

/* Set by signal and timeout handlers. */
static volatile sig_atomic_t shutdown_requested = false;
static volatile sig_atomic_t in_handler = false;
static volatile sig_atomic_t job_timed_out = false;
static TimeoutId job_timeout_id;
static int	armed_timeout_ms = 0;

/* Cancels the running handler, as a query cancel would. */
static void
cancel_handler(void)
{
	if (in_handler)
	{
		InterruptPending = true;
		QueryCancelPending = true;
	}
	SetLatch(MyLatch);
}

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	shutdown_requested = true;
	cancel_handler();
	errno = save_errno;
}

static void
handle_job_timeout(void)
{
	job_timed_out = true;
	cancel_handler();
}

/*
 * gw_arm_job_timeout is called right before a handler runs, with the
 * handler's job timeout (0: none).
 */
void
gw_arm_job_timeout(int timeout_ms)
{
	job_timed_out = false;
	armed_timeout_ms = timeout_ms;
	in_handler = true;
	if (shutdown_requested)
		cancel_handler();
	if (timeout_ms > 0)
		enable_timeout_after(job_timeout_id, timeout_ms);
}

/* gw_disarm_job_timeout is called when the handler returns or fails. */
void
gw_disarm_job_timeout(void)
{
	in_handler = false;
	if (armed_timeout_ms > 0)
		disable_timeout(job_timeout_id, false);
	armed_timeout_ms = 0;

	/*
	 * A cancel aimed at the handler (its timeout, or a SIGTERM, maybe a
	 * second one, that came as it returned or failed) must not cancel what
	 * follows: completing the batch, or giving the job back.  Shutdown goes
	 * on through shutdown_requested.
	 */
	QueryCancelPending = false;
}

static void
begin_transaction(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
commit_transaction(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

/*
 * run_job runs one claimed job in a subtransaction of the current
 * transaction.  On failure it records the failure and returns false; on
 * success it returns true, sets *wrote if the handler wrote anything, and
 * the caller deletes the job in the same transaction (gw_complete_jobs).
 */
static bool
run_job(GwJob *job, MemoryContext error_cxt, bool *wrote)
{
	volatile bool ok = true;

	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char		activity[128];

	snprintf(activity, sizeof(activity), "graphile_worker job %lld: %s",
			 (long long) job->id, job->task_identifier);
	gw_set_job(job->id, job->task_identifier);
	pgstat_report_activity(STATE_RUNNING, activity);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		gw_call_handler(job);
		*wrote = TransactionIdIsValid(GetCurrentTransactionIdIfAny());
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		TimestampTz retry_at;
		bool		permanently;

		int			timeout_ms = armed_timeout_ms;

		ok = false;
		gw_disarm_job_timeout();
		MemoryContextSwitchTo(error_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		if (shutdown_requested && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			gw_return_job(job, worker_id);
		else
		{
			char	   *message = gw_format_error(edata);

			if (job_timed_out && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
				message = psprintf("job timed out after %d ms%s%s", timeout_ms,
								   edata->context ? "\nCONTEXT: " : "",
								   edata->context ? edata->context : "");
			retry_at = gw_fail_job(job, worker_id, message, &permanently);
			if (retry_at != 0 && !permanently)
				gw_add_timer(MyDatabaseId, retry_at);
		}
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return ok;
}

/*
 * run_batch claims a batch of jobs and runs them.  Returns how many were
 * claimed.
 */
static int
run_batch(MemoryContext batch_cxt)
{
	GwJob	   *jobs;
	int64	   *done;
	int			ndone = 0;
	int			nwrote = 0;
	int			n;
	int			limit;
	MemoryContext oldcxt;
	TimestampTz started;

	limit = (int) Max(1.0, Min((double) (last_batch_wrote ? GW_BATCH_MAX_WRITING : GW_BATCH_MAX),
							   GW_BATCH_TARGET_US / avg_job_us));
	begin_transaction("graphile_worker: claiming jobs");
	oldcxt = MemoryContextSwitchTo(batch_cxt);
	n = gw_claim_jobs(worker_id, limit, &jobs);
	done = palloc(sizeof(int64) * Max(n, 1));
	MemoryContextSwitchTo(oldcxt);
	commit_transaction();
	if (n == 0)
		return 0;

	/* there may be more: let another idle worker look too */
	if (n == limit)
		gw_wake_workers(MyDatabaseId, 1);

	started = GetCurrentTimestamp();
	begin_transaction("graphile_worker: running jobs");
	if (!gw_synchronous_commit)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	for (int i = 0; i < n; i++)
	{
		bool		wrote = false;

		CHECK_FOR_INTERRUPTS();
		if (shutdown_requested)
			gw_return_job(&jobs[i], worker_id);
		else if (run_job(&jobs[i], batch_cxt, &wrote))
			done[ndone++] = jobs[i].id;
		if (wrote)
			nwrote++;
	}
	gw_complete_jobs(done, ndone, worker_id);
	commit_transaction();
	gw_set_job(0, NULL);
	last_batch_wrote = nwrote > 0;

	avg_job_us = 0.8 * avg_job_us +
		0.2 * ((double) (GetCurrentTimestamp() - started) / n);
	return n;
}

/*
 * supervisor_alive says whether the supervisor that started this worker is
 * still running and not stopping.  A worker registered after its
 * supervisor told the others to stop (supervisor.c, stop_workers) learns
 * it here.
 */
static bool
supervisor_alive(void)
{
	pid_t		supervisor = MyBgworkerEntry->bgw_notify_pid;
	bool		alive = false;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->kind == GW_KIND_SUPERVISOR && p->pid == supervisor &&
			!p->stop_requested)
			alive = true;
	}
	LWLockRelease(gw_shared->lock);
	return alive;
}

void
gw_job_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext batch_cxt;
	GwWorkerId	id;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, handle_sigterm);
	/* a reload signalled before the handler was installed was lost */
	ConfigReloadPending = true;
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	job_timeout_id = RegisterTimeout(USER_TIMEOUT, handle_job_timeout);

	id.system_id = GetSystemIdentifier();
	id.pid = (uint32_t) MyProcPid;
	id.started_us = (uint64_t) MyStartTimestamp;
	gw_worker_id_format(&id, worker_id, sizeof(worker_id));
	gw_register_proc(GW_KIND_WORKER, dboid);
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	strlcpy(gw_my_proc->worker_id, worker_id, GW_WORKER_ID_LEN);
	LWLockRelease(gw_shared->lock);
	if (!supervisor_alive())
		proc_exit(0);

	batch_cxt = AllocSetContextCreate(TopMemoryContext,
									  "graphile_worker batch",
									  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			gw_handlers_invalidate();
		}
		if (gw_my_proc->stop_requested || shutdown_requested)
			proc_exit(0);

		if (!gw_paused)
		{
			int			n;

			gw_set_state(GW_STATE_BUSY);
			n = run_batch(batch_cxt);
			MemoryContextReset(batch_cxt);
			if (n > 0 || gw_consume_pending_or_idle())
				continue;
		}
		else
			gw_set_state(GW_STATE_PAUSED);

		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
