/*-------------------------------------------------------------------------
 *
 * wait_job.c
 *	  graphile_worker.wait_for_job(job_id, timeout): waits until a job will
 *	  not run again and returns its outcome, result and error; and
 *	  _job_finished_at_commit, which wakes the waiters of a job that SQL
 *	  finished (cancel_job).
 *
 * The caller takes a waiter slot in shared memory (stats.c) and sleeps on
 * its latch.  Our job worker that finishes the job gives the slot the
 * outcome and sets the latch right after its commit (gw_report_finished),
 * and has written the job's history row in the job's transaction, whatever
 * graphile_worker.history says, since a job with a waiter always gets one:
 * that row holds the handler's result.  Each time it wakes, and once a
 * second in any case, the caller also looks at the job's row (with a fresh
 * snapshot: READ COMMITTED only), which is how it learns of a job that a
 * Node or Rust worker, complete_jobs or permanently_fail_jobs finished.
 *
 * "Will not run again": completed (the row is gone), or failed with no
 * attempt left (attempts >= max_attempts and not locked), cancelled
 * included.  A job already gone when the call starts is looked up in its
 * history rows and in the ring of recent final outcomes of our workers
 * (stats.c); found in neither, it is an error.
 *
 * The queries run as the owner of the queue's tables, as add_job does
 * (EXECUTE on wait_for_job is the right to read outcomes, results and
 * errors).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "graphile_worker.h"
#include "stats.h"

PG_FUNCTION_INFO_V1(gw_sql_wait_for_job);
PG_FUNCTION_INFO_V1(gw_sql_job_finished_at_commit);

/* How often a waiter looks at the table without being woken. */
#define GW_WAIT_RECHECK_MS 1000

/* $1 job id */
static const char *const job_state_sql =
"SELECT jobs.attempts OPERATOR(pg_catalog.>=) jobs.max_attempts AND jobs.locked_at IS NULL,"
"       jobs.last_error, jobs.xmin::pg_catalog.text"
"  FROM graphile_worker._private_jobs AS jobs"
" WHERE jobs.id OPERATOR(pg_catalog.=) $1::pg_catalog.int8";

/* $1 job id */
static const char *const last_history_sql =
"SELECT h.outcome, h.result, h.error"
"  FROM graphile_worker._private_job_history AS h"
" WHERE h.job_id OPERATOR(pg_catalog.=) $1::pg_catalog.int8"
" ORDER BY h.finished_at DESC LIMIT 1";

static SPIPlanPtr job_state_plan = NULL;
static SPIPlanPtr last_history_plan = NULL;

/* The waiter slot this backend holds, for the exit callback. */
static int	my_slot = -1;
static bool exit_callback_registered = false;

/* What a look at the tables found. */
typedef struct JobLook
{
	bool		exists;
	bool		failed_for_good;	/* no attempt left, not locked */
	bool		ours;			/* added or changed by this transaction */
	char	   *last_error;
	bool		has_history;
	GwOutcome	history_outcome;
	Datum		history_result; /* jsonb, or 0 */
	char	   *history_error;
} JobLook;

static void
release_at_exit(int code, Datum arg)
{
	if (my_slot >= 0)
		gw_waiter_release(my_slot);
	my_slot = -1;
}

/* The owner of graphile_worker._private_jobs. */
static Oid
queue_owner(void)
{
	Oid			relid = get_relname_relid("_private_jobs",
										  get_namespace_oid(GW_SCHEMA, false));
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "graphile_worker._private_jobs is missing");
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * look_at_job reads the job's row and its latest history row, as the
 * queue's owner, with a fresh snapshot; what it keeps is allocated in cxt.
 */
static void
look_at_job(int64 job_id, MemoryContext cxt, JobLook *look)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		arg = Int64GetDatum(job_id);
	Oid			save_userid;
	int			save_sec_context;
	bool		isnull;

	memset(look, 0, sizeof(*look));
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(queue_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	if (SPI_execute_plan(gw_prepare_once(&job_state_plan, job_state_sql, 1, argtypes),
						 &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read job %lld", (long long) job_id);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *xmin = SPI_getvalue(tup, desc, 3);

		look->exists = true;
		look->failed_for_good = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
		if (SPI_getbinval(tup, desc, 2, &isnull), !isnull)
			look->last_error = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 2));
		look->ours = xmin != NULL &&
			TransactionIdIsCurrentTransactionId((TransactionId) strtoul(xmin, NULL, 10));
	}

	if (SPI_execute_plan(gw_prepare_once(&last_history_plan, last_history_sql, 1, argtypes),
						 &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the history of job %lld", (long long) job_id);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Datum		d;

		look->has_history = true;
		look->history_outcome = gw_outcome_from_name(SPI_getvalue(tup, desc, 1));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			look->history_result = datumCopy(d, false, -1);
			MemoryContextSwitchTo(old);
		}
		if (SPI_getbinval(tup, desc, 3, &isnull), !isnull)
			look->history_error = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 3));
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/* A final history outcome: the job does not run again after it. */
static bool
final_history(const JobLook *look)
{
	return look->has_history &&
		(look->history_outcome == GW_OUTCOME_COMPLETED ||
		 look->history_outcome == GW_OUTCOME_PERMANENTLY_FAILED);
}

Datum
gw_sql_wait_for_job(PG_FUNCTION_ARGS)
{
	MemoryContext callcxt = CurrentMemoryContext;
	int64		job_id;
	Interval   *timeout;
	int64		timeout_us;
	TimestampTz deadline;
	TupleDesc	desc;
	volatile GwOutcome outcome = GW_OUTCOME_NONE;
	volatile Datum result = (Datum) 0;
	char	   *volatile error = NULL;
	volatile bool seen = false;
	int			slot;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job id and timeout must not be null")));
	job_id = PG_GETARG_INT64(0);
	timeout = PG_GETARG_INTERVAL_P(1);
	timeout_us = timeout->time + (int64) timeout->day * USECS_PER_DAY +
		(int64) timeout->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (timeout_us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("wait_for_job needs a READ COMMITTED transaction"),
				 errdetail("In REPEATABLE READ and SERIALIZABLE the job's changes are never seen.")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "wait_for_job: return type must be a row type");
	deadline = GetCurrentTimestamp() + timeout_us;

	if (!exit_callback_registered)
	{
		before_shmem_exit(release_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	slot = gw_waiter_register(job_id);
	my_slot = slot;
	PG_TRY();
	{
		for (;;)
		{
			JobLook		look;
			GwOutcome	posted;
			TimestampTz now;
			long		wait_ms;

			CHECK_FOR_INTERRUPTS();
			ResetLatch(MyLatch);
			posted = gw_waiter_outcome(slot);
			look_at_job(job_id, callcxt, &look);
			if (look.ours)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("cannot wait for job %lld: this transaction added or changed it",
								(long long) job_id),
						 errhint("Commit first: no worker runs the job before that.")));
			if (posted != GW_OUTCOME_NONE)
			{
				outcome = posted;
				result = look.history_result;
				error = look.history_error ? look.history_error : look.last_error;
				break;
			}
			if (look.exists)
			{
				seen = true;
				if (look.failed_for_good)
				{
					GwOutcome	recent = gw_recent_outcome(job_id);

					/* how its last attempt ended, when that is known */
					if (recent != GW_OUTCOME_NONE)
						outcome = recent;
					else if (look.has_history &&
							 look.history_outcome != GW_OUTCOME_COMPLETED &&
							 look.history_outcome != GW_OUTCOME_FAILED)
						outcome = look.history_outcome;
					else
						outcome = GW_OUTCOME_PERMANENTLY_FAILED;
					if (look.has_history)
						result = look.history_result;
					error = look.last_error;
					break;
				}
			}
			else
			{
				GwOutcome	recent = gw_recent_outcome(job_id);

				if (final_history(&look) || (look.has_history && !seen))
					outcome = look.history_outcome;
				else if (recent != GW_OUTCOME_NONE)
					outcome = recent;
				else if (seen)
					outcome = GW_OUTCOME_COMPLETED; /* deleted while we waited */
				else
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_OBJECT),
							 errmsg("job %lld does not exist", (long long) job_id),
							 errhint("A job that completed before the call is only known with graphile_worker.history = all, or for a short while after.")));
				if (look.has_history)
				{
					result = look.history_result;
					error = look.history_error;
				}
				break;
			}

			now = GetCurrentTimestamp();
			if (now >= deadline)
				break;
			wait_ms = (long) Min((deadline - now + 999) / 1000, GW_WAIT_RECHECK_MS);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
		}
	}
	PG_FINALLY();
	{
		gw_waiter_release(slot);
		my_slot = -1;
	}
	PG_END_TRY();

	if (outcome == GW_OUTCOME_NONE)
		PG_RETURN_NULL();
	{
		Datum		values[3];
		bool		nulls[3] = {false, result == (Datum) 0, error == NULL};

		values[0] = CStringGetTextDatum(gw_outcome_names[outcome]);
		values[1] = result;
		values[2] = error ? CStringGetTextDatum(error) : (Datum) 0;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc),
														  values, nulls)));
	}
}

/* Jobs the current transaction finished in SQL, announced at commit. */
#define GW_MAX_PENDING_FINISHED 256
static GwFinished pending[GW_MAX_PENDING_FINISHED];
static int	npending = 0;
static bool xact_callback_registered = false;

static void
finished_xact_callback(XactEvent event, void *arg)
{
	if (npending == 0)
		return;
	if (event == XACT_EVENT_COMMIT)
		gw_report_finished(MyDatabaseId, pending, npending);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		npending = 0;
}

/*
 * _job_finished_at_commit(job_id, outcome): when the transaction commits,
 * the waiters of job_id get outcome (the job will not run again).  Beyond
 * GW_MAX_PENDING_FINISHED jobs in one transaction, the waiters of the rest
 * notice within a second.
 */
Datum
gw_sql_job_finished_at_commit(PG_FUNCTION_ARGS)
{
	GwOutcome	outcome = gw_outcome_from_name(text_to_cstring(PG_GETARG_TEXT_PP(1)));

	if (!xact_callback_registered)
	{
		RegisterXactCallback(finished_xact_callback, NULL);
		xact_callback_registered = true;
	}
	if (npending < GW_MAX_PENDING_FINISHED)
	{
		pending[npending].job_id = PG_GETARG_INT64(0);
		pending[npending].task = NULL;
		pending[npending].outcome = outcome;
		pending[npending].final = true;
		pending[npending].run_time_us = 0;
		npending++;
	}
	PG_RETURN_VOID();
}
