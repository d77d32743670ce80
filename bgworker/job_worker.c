/*-------------------------------------------------------------------------
 *
 * job_worker.c
 *	  The job worker process: claims batches of due jobs and runs them.  A
 *	  supervisor keeps graphile_worker.concurrency of them per database,
 *	  each in a numbered slot (supervisor.c).
 *
 * Life of a batch (see the README's job life cycle):
 *  1. Claim, in its own transaction, committed before anything runs, so
 *	   the attempt counts even if a handler then crashes the server.
 *  2. Run the jobs of each handler owner in a transaction of their own:
 *	   each job in its own subtransaction (job_runner.c); a failure is
 *	   recorded in the same transaction, the successful jobs are deleted at
 *	   its end, so a job's writes and its completion commit together.  A
 *	   job that ran SET CONSTRAINTS ends its transaction early.
 *  3. Should such a transaction fail as a whole (at commit, say), its jobs
 *	   run again one per transaction, so that only the culprit fails, with
 *	   its own error.
 *  4. Each transaction also writes the history rows of its jobs, and after
 *	   its commit their statistics, waiters and failure log are told
 *	   (outcome.c).
 *
 * Every claimed job is "finalized" once its completion, failure or return
 * has committed.  Whatever ends the process before that (a FATAL error,
 * such as the cancel grace running out) leaves the rest to the exit
 * callback, which gives them back or fails them in a last transaction;
 * if even that fails, the supervisor's sweep releases them (recovery.c).
 *
 * Memory: worker_cxt for the process's loop, batch_cxt for a batch's jobs
 * and their errors (reset after each batch), job_cxt for one job's work
 * (reset after each job).  Transactions are begun and ended by xact.c,
 * which brings the caller's context back.
 *
 * Signals: SIGTERM stops the worker.  When the postmaster sent it (a
 * shutdown) or a command of ours asked this worker to stop (DROP DATABASE,
 * DROP EXTENSION, ...), the running job is given back without counting
 * its attempt; otherwise (pg_terminate_backend) the attempt counts and the
 * job fails with "worker was terminated while running this job".  SIGINT
 * (pg_cancel_backend, or cancel_job for a job of this worker) cancels the
 * running handler only.  Jobs not started yet are always given back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "graphile_worker.h"
#include "job_worker.h"

/*
 * Jobs claimed per statement: as many as take about GW_BATCH_TARGET_US by
 * the measured average job time, at least 1, at most GW_BATCH_MAX, or
 * GW_BATCH_MAX_WRITING when handlers of the last batch wrote: each writing
 * handler takes a subtransaction id, a backend caches 64 of them, and more
 * would slow every snapshot in the server while the transaction lasts.
 */
#define GW_BATCH_MAX 200
#define GW_BATCH_MAX_WRITING 60
#define GW_BATCH_TARGET_US 20000.0

static bool last_batch_wrote = true;
static double avg_job_us = GW_BATCH_TARGET_US;	/* moving average */

static char worker_id[GW_WORKER_ID_LEN];
static int	my_slot;
static uint32 my_gen;

/* The database's settings as this worker last read them (db_settings.c). */
GwDbSettings gw_worker_settings;
static uint32 settings_gen = 0;

static MemoryContext worker_cxt = NULL;
static MemoryContext batch_cxt = NULL;
static MemoryContext job_cxt = NULL;

/* The current batch, for the exit callback. */
static GwJob *batch_jobs = NULL;
static int	batch_n = 0;
static GwJob *running_job = NULL;

/*
 * SIGTERM: who sent it decides whether the running job's attempt counts
 * (see the file header).
 */
static void
handle_sigterm(int signo, siginfo_t *info, void *context)
{
	int			save_errno = errno;
	bool		ours = (info != NULL && info->si_pid == PostmasterPid) ||
		(gw_my_proc != NULL && gw_my_proc->stop_requested);

	gw_runner_stop(ours ? GW_STOP_ADMIN : GW_STOP_TERMINATE);
	errno = save_errno;
}

static void
handle_sigint(SIGNAL_ARGS)
{
	int			save_errno = errno;

	gw_runner_cancel();
	errno = save_errno;
}

static void
install_signals(void)
{
	struct sigaction act;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGINT, handle_sigint);
	memset(&act, 0, sizeof(act));
	act.sa_sigaction = handle_sigterm;
	sigemptyset(&act.sa_mask);
	act.sa_flags = SA_SIGINFO | SA_RESTART;
	(void) sigaction(SIGTERM, &act, NULL);
}

/*
 * record_outcome writes what became of job in the current transaction:
 * a failure (last_error, backoff), or its return.  Successful jobs are
 * deleted together by gw_complete_jobs.
 */
static void
record_outcome(GwJob *job)
{
	switch (job->outcome)
	{
		case GW_JOB_FAILED:
			{
				TimestampTz retry_at = gw_fail_job(job, worker_id, job->error,
												   &job->permanently);

				if (retry_at != 0 && !job->permanently)
					gw_add_timer(MyDatabaseId, retry_at);
				break;
			}
		case GW_JOB_STOPPED:
		case GW_JOB_PENDING:
			gw_return_job(job, worker_id);
			break;
		case GW_JOB_SUCCEEDED:
			break;
	}
}

/*
 * run_transactions runs jobs[0..n-1] that are not finalized yet, in as few
 * transactions as it may: a new one after a job marked split_after, and
 * after every job if one_per_txn.
 */
static void
run_transactions(GwJob **jobs, int n, bool one_per_txn)
{
	int			i = 0;

	while (i < n)
	{
		GwJob	  **done = MemoryContextAlloc(batch_cxt, sizeof(GwJob *) * n);
		int			ndone = 0;

		gw_xact_begin("graphile_worker: running jobs");
		if (!gw_synchronous_commit)
			(void) set_config_option("synchronous_commit", "off", PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
		for (; i < n; i++)
		{
			GwJob	   *job = jobs[i];

			if (job->finalized)
				continue;
			CHECK_FOR_INTERRUPTS();
			running_job = job;
			gw_run_job(job, job_cxt, batch_cxt);
			running_job = NULL;
			record_outcome(job);
			done[ndone++] = job;
			if (one_per_txn || job->split_after)
			{
				i++;
				break;
			}
		}
		gw_complete_jobs(done, ndone, worker_id);
		gw_outcome_write_history(done, ndone, worker_id);
		gw_xact_commit();
		for (int k = 0; k < ndone; k++)
			done[k]->finalized = true;
		gw_set_job(0, NULL);
		gw_outcome_report(done, ndone);
	}
}

/*
 * run_alone runs one job in a transaction of its own.  If that transaction
 * fails as a whole, the job fails with that error, recorded in another
 * transaction (an error there ends the worker: the exit callback and the
 * sweep take over).
 */
static void
run_alone(GwJob *job)
{
	PG_TRY();
	{
		run_transactions(&job, 1, true);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *message;

		running_job = NULL;
		MemoryContextSwitchTo(batch_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		gw_xact_abort(worker_cxt);
		message = gw_format_error(edata);
		ereport(WARNING,
				(errmsg("graphile_worker job %lld failed as its transaction ended: %s",
						(long long) job->id, edata->message)));
		MemoryContextSwitchTo(worker_cxt);

		gw_xact_begin("graphile_worker: recording a failed job");
		if (job->outcome == GW_JOB_STOPPED)
			gw_return_job(job, worker_id);
		else
		{
			job->outcome = GW_JOB_FAILED;
			job->error = message;
			job->failure = GW_OUTCOME_FAILED;
			job->sqlerrcode = edata->sqlerrcode;
			job->result = (Datum) 0;
			(void) gw_fail_job(job, worker_id, message, &job->permanently);
			gw_outcome_write_history(&job, 1, worker_id);
		}
		gw_xact_commit();
		job->finalized = true;
		gw_outcome_report(&job, 1);
	}
	PG_END_TRY();
}

/*
 * run_segment runs the jobs of one owner.  If their transaction fails as a
 * whole, everything it did is gone: each job not finalized runs again in a
 * transaction of its own.
 */
static void
run_segment(GwJob **jobs, int n)
{
	PG_TRY();
	{
		run_transactions(jobs, n, false);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		running_job = NULL;
		MemoryContextSwitchTo(batch_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		gw_xact_abort(worker_cxt);
		ereport(WARNING,
				(errmsg("graphile_worker could not commit a batch of jobs: %s",
						edata->message),
				 errdetail("Its jobs run again, one per transaction.")));
		for (int i = 0; i < n; i++)
		{
			if (jobs[i]->finalized)
				continue;
			jobs[i]->error = NULL;
			jobs[i]->result = (Datum) 0;
			jobs[i]->failure = GW_OUTCOME_NONE;
			jobs[i]->sqlerrcode = 0;
			if (jobs[i]->outcome != GW_JOB_STOPPED)
				jobs[i]->outcome = GW_JOB_PENDING;
			run_alone(jobs[i]);
		}
	}
	PG_END_TRY();
}

/*
 * run_by_owner runs the claimed jobs grouped by the owner of their handler
 * (in claim order within an owner), one group at a time.
 */
static void
run_by_owner(GwJob *jobs, int n)
{
	GwJob	  **group = MemoryContextAlloc(batch_cxt, sizeof(GwJob *) * n);
	bool	   *taken = MemoryContextAllocZero(batch_cxt, sizeof(bool) * n);

	for (int i = 0; i < n; i++)
	{
		Oid			owner;
		int			m = 0;

		if (taken[i])
			continue;
		owner = jobs[i].handler ? gw_handler_owner(jobs[i].handler) : InvalidOid;
		for (int k = i; k < n; k++)
		{
			Oid			o = jobs[k].handler ? gw_handler_owner(jobs[k].handler) : InvalidOid;

			if (!taken[k] && o == owner)
			{
				taken[k] = true;
				group[m++] = &jobs[k];
			}
		}
		run_segment(group, m);
	}
}

/*
 * run_batch claims a batch of jobs and runs them.  Returns how many were
 * claimed.
 */
static int
run_batch(void)
{
	GwJob	   *jobs;
	int			n;
	int			nwrote = 0;
	int			limit;
	TimestampTz started;

	Assert(CurrentMemoryContext == worker_cxt);
	limit = (int) Max(1.0, Min((double) (last_batch_wrote ? GW_BATCH_MAX_WRITING : GW_BATCH_MAX),
							   GW_BATCH_TARGET_US / avg_job_us));
	gw_xact_begin("graphile_worker: claiming jobs");
	n = gw_claim_jobs(worker_id, limit, batch_cxt, &jobs);
	for (int i = 0; i < n; i++)
		jobs[i].handler = gw_handler_find(jobs[i].task_identifier);
	gw_xact_commit();
	Assert(CurrentMemoryContext == worker_cxt);
	if (n == 0)
		return 0;
	batch_jobs = jobs;
	batch_n = n;

	/*
	 * there may be more: let another idle worker look too (a queue of
	 * limited concurrency may take another job in another worker)
	 */
	if (n == limit || gw_my_proc->nlimited > 0)
		gw_wake_workers(MyDatabaseId, 1);

	started = GetCurrentTimestamp();
	gw_runner_settings_for_batch();
	run_by_owner(jobs, n);
	Assert(CurrentMemoryContext == worker_cxt);

	for (int i = 0; i < n; i++)
	{
		Assert(jobs[i].finalized);
		if (jobs[i].wrote)
			nwrote++;
	}
	batch_jobs = NULL;
	batch_n = 0;
	gw_claim_end_batch();
	gw_runner_end_batch();
	last_batch_wrote = nwrote > 0;
	avg_job_us = 0.8 * avg_job_us +
		0.2 * ((double) (GetCurrentTimestamp() - started) / n);
	return n;
}

/*
 * read_settings takes the database's settings its supervisor published;
 * the handler table is rebuilt when task_schemas changed.
 */
static void
read_settings(void)
{
	GwDbSettings fresh;
	uint32		gen = gw_db_settings(MyDatabaseId, &fresh);

	if (gen == settings_gen && gen != 0)
		return;
	if (strcmp(fresh.task_schemas, gw_worker_settings.task_schemas) != 0)
		gw_handlers_invalidate();
	gw_worker_settings = fresh;
	settings_gen = gen;
}

/*
 * news_since_look: whether something the main loop reacts to came while it
 * was not looking: a reload, a stop, a new generation of its slot or of the
 * database's settings.  The SetLatch that told of it may have been spent
 * by the batch: code that sleeps on MyLatch resets it (a lock wait, a
 * condition variable; from PostgreSQL 18 on, each read that waits for
 * asynchronous I/O), so the loop asks before it sleeps.
 */
static bool
news_since_look(Oid dboid)
{
	GwDbSettings fresh;

	return ConfigReloadPending ||
		gw_runner_stop_kind() != GW_STOP_NONE ||
		!gw_worker_slot_current(dboid, my_slot, my_gen) ||
		gw_db_settings(dboid, &fresh) != settings_gen;
}

/*
 * exit_callback: jobs of the batch not finalized when the process exits
 * (a FATAL error, e.g. the cancel grace running out) are given back, or,
 * for the job whose handler was running, failed with the reason.  An error
 * here ends the callback; the supervisor's sweep then releases the jobs.
 */
static void
exit_callback(int code, Datum arg)
{
	int			pending = 0;
	bool		refund;
	GwOutcome	failure;
	const char *reason;
	GwJob	   *failed = NULL;

	for (int i = 0; i < batch_n; i++)
		if (!batch_jobs[i].finalized)
			pending++;
	if (pending == 0 || !PostmasterIsAlive())
		return;

	gw_xact_abort(worker_cxt);
	reason = gw_runner_exit_reason(&refund, &failure);
	gw_xact_begin("graphile_worker: releasing jobs at exit");
	for (int i = 0; i < batch_n; i++)
	{
		GwJob	   *job = &batch_jobs[i];

		if (job->finalized)
			continue;
		if (job == running_job && !refund)
		{
			job->outcome = GW_JOB_FAILED;
			job->error = MemoryContextStrdup(worker_cxt, reason ? reason :
											 "worker exited while running this job (see the server log)");
			job->failure = failure;
			job->sqlerrcode = reason ? ERRCODE_QUERY_CANCELED : 0;
			job->result = (Datum) 0;
			job->finished_at = GetCurrentTimestamp();
			(void) gw_fail_job(job, worker_id, job->error, &job->permanently);
			gw_outcome_write_history(&job, 1, worker_id);
			failed = job;
		}
		else
			gw_return_job(job, worker_id);
	}
	gw_xact_commit();
	if (failed)
		gw_outcome_report(&failed, 1);
	batch_n = 0;
	ereport(LOG,
			(errmsg("graphile_worker job worker released %d claimed jobs as it exited",
					pending)));
}

void
gw_job_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	GwWorkerStart start;
	GwWorkerId	id;

	install_signals();
	/* a reload signalled before the handler was installed was lost */
	ConfigReloadPending = true;
	BackgroundWorkerUnblockSignals();
	memcpy(&start, MyBgworkerEntry->bgw_extra, sizeof(start));
	my_slot = start.slot;
	my_gen = start.gen;
	/* stopped before it started: it need not connect */
	if (!gw_worker_slot_wanted(dboid, my_slot, my_gen))
		proc_exit(0);
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	id.system_id = GetSystemIdentifier();
	id.pid = (uint32_t) MyProcPid;
	id.started_us = (uint64_t) MyStartTimestamp;
	gw_worker_id_format(&id, worker_id, sizeof(worker_id));
	/* stopped while it connected: it leaves without being seen working */
	if (gw_register_job_worker(dboid, my_slot, my_gen, worker_id) == NULL)
		proc_exit(0);

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "graphile_worker job worker",
									   ALLOCSET_DEFAULT_SIZES);
	batch_cxt = AllocSetContextCreate(worker_cxt, "graphile_worker batch",
									  ALLOCSET_DEFAULT_SIZES);
	job_cxt = AllocSetContextCreate(worker_cxt, "graphile_worker job",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_cxt);
	gw_runner_init();
	/* after gw_register_job_worker: runs before the entry is freed */
	before_shmem_exit(exit_callback, (Datum) 0);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			gw_handlers_invalidate();
		}
		if (gw_runner_stop_kind() != GW_STOP_NONE ||
			!gw_worker_slot_current(dboid, my_slot, my_gen))
			proc_exit(0);
		read_settings();

		if (!gw_worker_settings.paused)
		{
			int			n;

			gw_set_state(GW_STATE_BUSY);
			n = run_batch();
			MemoryContextReset(batch_cxt);
			if (n > 0 || gw_consume_pending_or_idle())
				continue;
		}
		else
			gw_set_state(GW_STATE_PAUSED);

		pgstat_report_activity(STATE_IDLE, NULL);
		if (!news_since_look(dboid))
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L,
							 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
