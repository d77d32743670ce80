/*-------------------------------------------------------------------------
 *
 * job_runner.c
 *	  Runs one claimed job in a job worker, isolated from the jobs before
 *	  and after it, and owns what can stop a running handler: the job
 *	  timeout, cancels and the cancel grace.
 *
 * A job runs in its own subtransaction of the batch's transaction.  Inside
 * it, in this order:
 *
 *	1. a GUC nest level, with the owner's ALTER ROLE ... [IN DATABASE] SET
 *	   settings applied on top of the worker's (those of a new session);
 *	2. the switch to the handler function's owner;
 *	3. the handler call (handler.c), under the job timeout;
 *	4. the deferred triggers and constraints the job queued, fired now, as
 *	   the owner, under the timeout: their error is the job's error;
 *	5. what the job left for later in the session is removed: cursors
 *	   (held or not), temporary objects;
 *	6. every setting the handler changed (SET, SET LOCAL, set_config) is
 *	   reverted, the identity restored.
 * Before it, when the owner differs from the previous job's, sequence state
 * (currval, lastval) is forgotten; after it, successful or not, prepared
 * statements and session advisory locks are dropped.
 *
 * Step 4 fires deferred events inside a subtransaction with
 * AfterTriggerFireDeferred, which frees the event chunks it has fired.
 * That is safe here because every job starts with no unfired deferred
 * event in the transaction (the previous job fired or rolled back all of
 * its own, and the worker's statements queue none): a subtransaction
 * abort then restores the list to empty chunks.
 *
 * SET CONSTRAINTS changes transaction state that nothing can revert short
 * of an abort; a job that ran it is marked split_after and the caller
 * commits before the next job.  Transaction-scoped state of other kinds
 * (open large objects, transaction advisory locks) only reaches jobs of
 * the same owner: the caller runs each owner's jobs in a transaction of
 * their own.
 *
 * Stopping a handler: a job timeout, a stop of the worker (SIGTERM) or a
 * pg_cancel_backend (SIGINT) cancel the running handler, as a query cancel
 * does.  A handler that catches the cancel (a PL/pgSQL block with WHEN
 * query_canceled) is ended graphile_worker.cancel_grace later by a FATAL
 * error, which no handler can catch; the worker then exits, and its exit
 * callback (job_worker.c) records the job's fate.  The grace timer is a
 * POSIX timer, armed from the signal handlers (timer_settime is
 * async-signal-safe), delivering SIGUSR2.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <time.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_type.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "compat.h"
#include "graphile_worker.h"
#include "job_worker.h"

/* Why the running handler was cancelled (the first reason wins). */
typedef enum CancelReason
{
	CANCEL_NONE,
	CANCEL_TIMEOUT,
	CANCEL_STOP,
	CANCEL_USER,				/* pg_cancel_backend */
	CANCEL_JOB					/* graphile_worker.cancel_job */
} CancelReason;

/* A cancel_job ends even a handler that catches it within this. */
#define GW_CANCEL_JOB_GRACE_MS 1000

/* Set by signal and timeout handlers, read by the worker. */
static volatile sig_atomic_t stop_kind = GW_STOP_NONE;
static volatile sig_atomic_t in_handler = false;
static volatile sig_atomic_t cancel_reason = CANCEL_NONE;
static volatile sig_atomic_t grace_armed = false;
static volatile sig_atomic_t grace_expired = false;

static TimeoutId job_timeout_id;
static int	armed_timeout_ms = 0;
static timer_t grace_timer;
static bool grace_timer_ok = false;

/* Set by the utility hook while a handler runs. */
static bool constraints_set = false;
static ProcessUtility_hook_type prev_utility_hook = NULL;

/* The owner whose job ran last (for sequence state). */
static Oid	last_owner = InvalidOid;

/*
 * Owner settings read from pg_db_role_setting, once per owner per batch:
 * the arrays of (0, owner) and (this database, owner), NULL if none.
 */
typedef struct OwnerSettings
{
	Oid			owner;
	ArrayType  *all_databases;
	ArrayType  *this_database;
} OwnerSettings;

#define GW_MAX_CACHED_OWNERS 16
static MemoryContext settings_cxt = NULL;
static OwnerSettings owner_settings[GW_MAX_CACHED_OWNERS];
static int	nowner_settings = 0;

/*
 * cancel_handler cancels the running handler, as a query cancel would, and
 * starts the grace after which the worker ends it.  Signal-safe.
 */
static void
cancel_handler(CancelReason reason)
{
	if (!in_handler)
		return;
	if (cancel_reason == CANCEL_NONE)
		cancel_reason = reason;
	InterruptPending = true;
	QueryCancelPending = true;
	if (!grace_armed && grace_timer_ok)
	{
		struct itimerspec its;
		int			grace_ms = reason == CANCEL_JOB ?
			Min(gw_cancel_grace_ms, GW_CANCEL_JOB_GRACE_MS) : gw_cancel_grace_ms;

		memset(&its, 0, sizeof(its));
		its.it_value.tv_sec = grace_ms / 1000;
		its.it_value.tv_nsec = (long) (grace_ms % 1000) * 1000000L;
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;
		grace_armed = true;
		(void) timer_settime(grace_timer, 0, &its, NULL);
	}
	SetLatch(MyLatch);
}

static void
handle_job_timeout(void)
{
	cancel_handler(CANCEL_TIMEOUT);
}

/* SIGUSR2: the grace after a cancel is over. */
static void
handle_grace(SIGNAL_ARGS)
{
	int			save_errno = errno;

	if (in_handler && grace_armed)
	{
		grace_expired = true;
		InterruptPending = true;
		ProcDiePending = true;
		SetLatch(MyLatch);
	}
	errno = save_errno;
}

/*
 * gw_runner_stop records that the worker must stop and cancels the running
 * handler, if any.  Called from the SIGTERM handler.
 */
void
gw_runner_stop(GwStopKind kind)
{
	if (kind > stop_kind)
		stop_kind = kind;
	cancel_handler(CANCEL_STOP);
	SetLatch(MyLatch);
}

/*
 * gw_runner_cancel cancels the running handler only (SIGINT): for
 * cancel_job if it asked for this job (one it asked for that has not
 * started yet is cancelled as it starts), else as pg_cancel_backend.
 */
void
gw_runner_cancel(void)
{
	int64		cancel = gw_my_proc ? gw_my_proc->cancel_job_id : 0;

	if (cancel == 0)
		cancel_handler(CANCEL_USER);
	else if (cancel == gw_my_proc->job_id)
		cancel_handler(CANCEL_JOB);
}

/* gw_runner_end_batch forgets a cancel_job request once its batch is over. */
void
gw_runner_end_batch(void)
{
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	gw_my_proc->cancel_job_id = 0;
	LWLockRelease(gw_shared->lock);
}

/* "cancelled by <role>", for a job cancelled by cancel_job */
static char *
cancelled_by(void)
{
	NameData	by;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	by = gw_my_proc->cancel_by;
	LWLockRelease(gw_shared->lock);
	return psprintf("cancelled by %s", NameStr(by));
}

/* gw_runner_stop_kind: GW_STOP_NONE unless the worker must stop. */
GwStopKind
gw_runner_stop_kind(void)
{
	return (GwStopKind) stop_kind;
}

/* The worker-only utility hook: notes SET CONSTRAINTS run by a handler. */
static void
runner_utility_hook(GW_UTILITY_PARAMS)
{
	if (in_handler && IsA(pstmt->utilityStmt, ConstraintsSetStmt))
		constraints_set = true;
	if (prev_utility_hook)
		prev_utility_hook(GW_UTILITY_ARGS);
	else
		standard_ProcessUtility(GW_UTILITY_ARGS);
}

/*
 * gw_runner_init prepares the runner in a job worker that has connected to
 * its database: timeouts, the grace timer, the utility hook, and settings
 * the worker's own transactions must not take from the database's or
 * role's defaults (read-only or serializable transactions).
 */
void
gw_runner_init(void)
{
	struct sigevent sev;
	struct sigaction act;

	job_timeout_id = RegisterTimeout(USER_TIMEOUT, handle_job_timeout);

	memset(&act, 0, sizeof(act));
	act.sa_handler = handle_grace;
	sigemptyset(&act.sa_mask);
	act.sa_flags = SA_RESTART;
	(void) sigaction(SIGUSR2, &act, NULL);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR2;
	grace_timer_ok = (timer_create(CLOCK_MONOTONIC, &sev, &grace_timer) == 0);
	if (!grace_timer_ok)
		ereport(WARNING,
				(errmsg("could not create the cancel grace timer: %m"),
				 errdetail("A job handler that ignores a cancel will not be ended.")));

	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = runner_utility_hook;

	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off",
					PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_deferrable", "off",
					PGC_SUSET, PGC_S_OVERRIDE);

	settings_cxt = AllocSetContextCreate(TopMemoryContext,
										 "graphile_worker owner settings",
										 ALLOCSET_SMALL_SIZES);
}

/* gw_runner_settings_for_batch forgets the owner settings read so far. */
void
gw_runner_settings_for_batch(void)
{
	MemoryContextReset(settings_cxt);
	nowner_settings = 0;
}

/* The settings array of (dboid, owner), copied into settings_cxt, or NULL. */
static ArrayType *
read_setting(Relation rel, Oid dboid, Oid owner)
{
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	ArrayType  *result = NULL;

	ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase,
				BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(dboid));
	ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole,
				BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(owner));
	scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true,
							  NULL, 2, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_db_role_setting_setconfig,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(settings_cxt);

			result = DatumGetArrayTypePCopy(d);
			MemoryContextSwitchTo(old);
		}
	}
	systable_endscan(scan);
	return result;
}

/*
 * apply_settings sets each "name=value" of array in the current GUC nest
 * level, as session settings, so that the nest level's end reverts them.
 * (ProcessGUCArray with the sources PostgreSQL uses at login would change
 * the settings' reset values too, which no nest level reverts.)  Like
 * PostgreSQL at login, values were checked when they were stored, and one
 * that no longer applies gives a WARNING.  role and session_authorization
 * are left out: the worker's session user is the bootstrap superuser, a
 * member of every role, so "ALTER ROLE owner SET role = x" would let the
 * owner's handlers run as any x.
 */
static void
apply_settings(ArrayType *array)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *item;
		char	   *value;

		if (nulls[i])
			continue;

		/*
		 * "name=value" as ALTER ROLE ... SET stored it, split in place (not
		 * with ParseLongOption, whose results are malloc'd in older
		 * releases and palloc'd in 18).
		 */
		item = TextDatumGetCString(elems[i]);
		value = strchr(item, '=');
		if (value != NULL)
		{
			*value++ = '\0';
			/* a handler runs as its function's owner, never as another role */
			if (pg_strcasecmp(item, "role") != 0 &&
				pg_strcasecmp(item, "session_authorization") != 0)
				(void) set_config_option(item, value, PGC_SUSET, PGC_S_SESSION,
										 GUC_ACTION_SET, true, WARNING, false);
		}
		pfree(item);
	}
}

/*
 * apply_owner_settings applies the owner's role settings in the current
 * GUC nest level, as a new session of the owner would have them: for all
 * databases, then for this one (which win).
 */
static void
apply_owner_settings(Oid owner)
{
	OwnerSettings *s = NULL;

	for (int i = 0; i < nowner_settings; i++)
		if (owner_settings[i].owner == owner)
			s = &owner_settings[i];
	if (s == NULL)
	{
		Relation	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
		OwnerSettings fresh;

		fresh.owner = owner;
		fresh.all_databases = read_setting(rel, InvalidOid, owner);
		fresh.this_database = read_setting(rel, MyDatabaseId, owner);
		table_close(rel, AccessShareLock);
		if (nowner_settings >= GW_MAX_CACHED_OWNERS)
			gw_runner_settings_for_batch();
		owner_settings[nowner_settings] = fresh;
		s = &owner_settings[nowner_settings++];
	}
	if (s->all_databases)
		apply_settings(s->all_databases);
	if (s->this_database)
		apply_settings(s->this_database);
}

/* begin_handler arms the job timeout; from here on cancels reach it. */
static void
begin_handler(int64 job_id, int timeout_ms)
{
	cancel_reason = CANCEL_NONE;
	grace_expired = false;
	constraints_set = false;
	armed_timeout_ms = timeout_ms;
	in_handler = true;
	if (stop_kind != GW_STOP_NONE)
		cancel_handler(CANCEL_STOP);
	if (gw_my_proc->cancel_job_id == job_id)
		cancel_handler(CANCEL_JOB);
	if (timeout_ms > 0)
		enable_timeout_after(job_timeout_id, timeout_ms);
}

/*
 * end_handler disarms the timers once the handler and what runs for it are
 * done, successful or not.  A cancel meant for it (a timeout or a SIGTERM
 * that came as it returned) must not cancel what follows: completing the
 * batch, or recording the job's outcome; a stop goes on through stop_kind.
 */
static void
end_handler(void)
{
	in_handler = false;
	if (armed_timeout_ms > 0)
		disable_timeout(job_timeout_id, false);
	if (grace_armed)
	{
		struct itimerspec its;

		memset(&its, 0, sizeof(its));
		(void) timer_settime(grace_timer, 0, &its, NULL);
		grace_armed = false;
	}
	QueryCancelPending = false;
}

/*
 * gw_runner_exit_reason tells the worker's exit callback what became of a
 * job whose handler was running when the worker exited: whether to give it
 * back (*refund) and, if not, its last_error and the kind of its failure
 * (*failure).  Returns NULL when the exit did not come from a cancel of
 * ours.
 */
const char *
gw_runner_exit_reason(bool *refund, GwOutcome *failure)
{
	*refund = false;
	*failure = GW_OUTCOME_FAILED;
	if (!grace_expired)
		return NULL;
	if (cancel_reason == CANCEL_TIMEOUT)
		*failure = GW_OUTCOME_TIMED_OUT;
	else if (cancel_reason == CANCEL_USER || cancel_reason == CANCEL_JOB)
		*failure = GW_OUTCOME_CANCELLED;
	switch ((CancelReason) cancel_reason)
	{
		case CANCEL_TIMEOUT:
			return psprintf("job timed out after %d ms; the handler went on for graphile_worker.cancel_grace (%d ms) after its cancel, and its worker exited",
							armed_timeout_ms, gw_cancel_grace_ms);
		case CANCEL_STOP:
			if (stop_kind == GW_STOP_ADMIN)
			{
				*refund = true;
				return "";
			}
			return psprintf("worker was terminated while running this job; the handler went on for graphile_worker.cancel_grace (%d ms) after its cancel",
							gw_cancel_grace_ms);
		case CANCEL_USER:
			return psprintf("canceling statement due to user request; the handler went on for graphile_worker.cancel_grace (%d ms) after its cancel, and its worker exited",
							gw_cancel_grace_ms);
		case CANCEL_JOB:
			return cancelled_by();
		case CANCEL_NONE:
			break;
	}
	return NULL;
}

/*
 * failure_of classifies the error that ended a job's subtransaction: the
 * job was stopped (give it back), or failed with the returned last_error,
 * allocated in keep_cxt; *failure says whether it timed out, was cancelled
 * (pg_cancel_backend, cancel_job) or failed otherwise.
 */
static char *
failure_of(ErrorData *edata, MemoryContext keep_cxt, bool *stopped,
		   GwOutcome *failure)
{
	MemoryContext old = MemoryContextSwitchTo(keep_cxt);
	char	   *message = NULL;

	*stopped = false;
	*failure = GW_OUTCOME_FAILED;
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
	{
		if (cancel_reason == CANCEL_TIMEOUT)
			*failure = GW_OUTCOME_TIMED_OUT;
		else if (cancel_reason == CANCEL_USER || cancel_reason == CANCEL_JOB)
			*failure = GW_OUTCOME_CANCELLED;
		switch ((CancelReason) cancel_reason)
		{
			case CANCEL_TIMEOUT:
				message = psprintf("job timed out after %d ms%s%s", armed_timeout_ms,
								   edata->context ? "\nCONTEXT: " : "",
								   edata->context ? edata->context : "");
				break;
			case CANCEL_STOP:
				if (stop_kind == GW_STOP_ADMIN)
					*stopped = true;
				else
					message = pstrdup("worker was terminated while running this job");
				break;
			case CANCEL_JOB:
				message = cancelled_by();
				break;
			case CANCEL_USER:
			case CANCEL_NONE:
				break;
		}
	}
	if (message == NULL && !*stopped)
		message = gw_format_error(edata);
	MemoryContextSwitchTo(old);
	return message;
}

/*
 * keep_result keeps the json or jsonb result of job's handler, as jsonb in
 * keep_cxt, when results are wanted (outcome.c).  A json text that jsonb
 * refuses (\u0000, a number beyond numeric) keeps no result and fails
 * nothing: it is converted in a subtransaction of its own.
 */
static void
keep_result(GwHandler *h, Datum result, bool isnull, GwJob *job,
			MemoryContext keep_cxt)
{
	Oid			type = gw_handler_result_type(h);
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	if (isnull || (type != JSONOID && type != JSONBOID) || !gw_outcome_keeps_results())
		return;
	if (type == JSONBOID)
	{
		MemoryContextSwitchTo(keep_cxt);
		job->result = PointerGetDatum(PG_DETOAST_DATUM_COPY(result));
		MemoryContextSwitchTo(cxt);
		return;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		char	   *json_text = TextDatumGetCString(result);
		Datum		jsonb = DirectFunctionCall1(jsonb_in, CStringGetDatum(json_text));

		MemoryContextSwitchTo(keep_cxt);
		job->result = datumCopy(jsonb, false, -1);
		MemoryContextSwitchTo(cxt);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		job->result = (Datum) 0;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/*
 * cleanup_session drops what a job may leave in the session whether its
 * subtransaction committed or not: prepared statements and session
 * advisory locks (pg_advisory_lock).
 */
static void
cleanup_session(void)
{
	DropAllPreparedStatements();
	LockReleaseSession(USER_LOCKMETHOD);
}

/*
 * gw_run_job runs job in a subtransaction of the current transaction (see
 * the file header) and sets job->outcome: GW_JOB_SUCCEEDED (the caller
 * deletes the job in this transaction), GW_JOB_FAILED with job->error in
 * keep_cxt, or GW_JOB_STOPPED, and what outcome.c records: when the
 * handler started and ended, the kind and SQLSTATE of a failure, the
 * handler's json(b) result (in keep_cxt) when results are kept.  Work memory is job_cxt, reset before
 * returning.  The caller is in a transaction, connected to SPI.
 */
void
gw_run_job(GwJob *job, MemoryContext job_cxt, MemoryContext keep_cxt)
{
	MemoryContext outer_cxt = CurrentMemoryContext;
	ResourceOwner outer_owner = CurrentResourceOwner;
	GwHandler  *h = job->handler;
	Oid			owner = h ? gw_handler_owner(h) : InvalidOid;
	Oid			save_userid;
	int			save_sec_context;
	int			timeout_ms;
	char		activity[128];

	snprintf(activity, sizeof(activity), "graphile_worker job %lld: %s",
			 (long long) job->id, job->task_identifier);
	gw_set_job(job->id, job->task_identifier);
	pgstat_report_activity(STATE_RUNNING, activity);
	if (stop_kind != GW_STOP_NONE)
	{
		job->outcome = GW_JOB_STOPPED;
		return;
	}
	job->started_at = GetCurrentTimestamp();
	/* currval and lastval of another owner's job are not this one's */
	if (owner != last_owner)
	{
		ResetSequenceCaches();
		last_owner = owner;
	}
	cancel_reason = CANCEL_NONE;
	grace_expired = false;
	timeout_ms = h && gw_handler_timeout_ms(h) >= 0 ?
		gw_handler_timeout_ms(h) : gw_job_timeout_ms;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(job_cxt);
	PG_TRY();
	{
		int			nest;
		bool		isnull;
		Datum		result;

		if (h == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("no handler for task \"%s\"", job->task_identifier),
					 errdetail("The handler function was dropped after the job was claimed.")));

		nest = NewGUCNestLevel();
		apply_owner_settings(owner);
		SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		MyXactFlags &= ~XACT_FLAGS_ACCESSEDTEMPNAMESPACE;

		begin_handler(job->id, timeout_ms);
		result = gw_handler_call(h, job, &isnull);
		keep_result(h, result, isnull, job, keep_cxt);
		AfterTriggerFireDeferred();
		PortalHashTableDeleteAll();
		if (MyXactFlags & XACT_FLAGS_ACCESSEDTEMPNAMESPACE)
			ResetTempTableNamespace();
		end_handler();

		AtEOXact_GUC(false, nest);
		SetUserIdAndSecContext(save_userid, save_sec_context);
		job->wrote = TransactionIdIsValid(GetCurrentTransactionIdIfAny());
		job->split_after = constraints_set;
		ReleaseCurrentSubTransaction();
		job->outcome = GW_JOB_SUCCEEDED;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		stopped;

		end_handler();
		MemoryContextSwitchTo(keep_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* restores the identity and the settings too */
		RollbackAndReleaseCurrentSubTransaction();
		job->error = failure_of(edata, keep_cxt, &stopped, &job->failure);
		job->sqlerrcode = edata->sqlerrcode;
		job->outcome = stopped ? GW_JOB_STOPPED : GW_JOB_FAILED;
		job->result = (Datum) 0;
		FreeErrorData(edata);
	}
	PG_END_TRY();
	job->finished_at = GetCurrentTimestamp();
	MemoryContextSwitchTo(outer_cxt);
	CurrentResourceOwner = outer_owner;
	MemoryContextReset(job_cxt);
	cleanup_session();
	Assert(GetUserId() == save_userid);
}
