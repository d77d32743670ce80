/*-------------------------------------------------------------------------
 *
 * outcome.c
 *	  What a job worker records of each finished attempt:
 *
 *	  - in the job's own transaction, before it commits: its row in
 *		graphile_worker._private_job_history (graphile_worker.history =
 *		failures or all; and, whatever the setting, for a job that will not
 *		run again and that a session waits for in wait_for_job, which reads
 *		the handler's result there), one INSERT for the whole transaction,
 *		in a subtransaction: should it fail, the outcomes commit without
 *		their rows (and a WARNING);
 *	  - after the commit: the statistics in shared memory and the waiters of
 *		wait_for_job (stats.c), and the failure log
 *		(graphile_worker.log_failures).
 *
 *	  A job given back (a shutdown, a job not started) finished no attempt
 *	  and is not recorded.  A database whose extension is still at 0.1.0
 *	  has no history table: nothing is written there.
 *
 *	  Runs in job workers, connected to SPI inside a transaction for
 *	  gw_outcome_write_history.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "graphile_worker.h"
#include "job_worker.h"

#define HISTORY_NARGS 13

/* $1 .. $12 one array per column, $13 the worker id */
static const char *const insert_history_sql =
"INSERT INTO graphile_worker._private_job_history"
"  (job_id, task_identifier, queue_name, key, payload, attempt, outcome, result,"
"   error, sqlstate, started_at, finished_at, worker_id)"
"SELECT r.job_id, r.task_identifier, r.queue_name, r.key, r.payload, r.attempt,"
"       r.outcome, r.result, r.error, r.sqlstate, r.started_at, r.finished_at,"
"       $13::pg_catalog.text"
"  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]),"
"                  pg_catalog.unnest($2::pg_catalog.text[]),"
"                  pg_catalog.unnest($3::pg_catalog.text[]),"
"                  pg_catalog.unnest($4::pg_catalog.text[]),"
"                  pg_catalog.unnest($5::pg_catalog.json[]),"
"                  pg_catalog.unnest($6::pg_catalog.int2[]),"
"                  pg_catalog.unnest($7::pg_catalog.text[]),"
"                  pg_catalog.unnest($8::pg_catalog.jsonb[]),"
"                  pg_catalog.unnest($9::pg_catalog.text[]),"
"                  pg_catalog.unnest($10::pg_catalog.text[]),"
"                  pg_catalog.unnest($11::pg_catalog.timestamptz[]),"
"                  pg_catalog.unnest($12::pg_catalog.timestamptz[]))"
"       AS r(job_id, task_identifier, queue_name, key, payload, attempt, outcome,"
"            result, error, sqlstate, started_at, finished_at)";

static SPIPlanPtr insert_history_plan = NULL;

/* Positions in the jobs view row of a claimed job (job_worker.h) */
#define COL_QUEUE_NAME 1
#define COL_ATTEMPTS 5
#define COL_MAX_ATTEMPTS 6

/*
 * gw_job_outcome classifies what became of job in its transaction:
 * GW_OUTCOME_NONE when it finished no attempt (given back).
 */
GwOutcome
gw_job_outcome(const GwJob *job)
{
	switch (job->outcome)
	{
		case GW_JOB_SUCCEEDED:
			return GW_OUTCOME_COMPLETED;
		case GW_JOB_FAILED:
			if (job->failure == GW_OUTCOME_TIMED_OUT ||
				job->failure == GW_OUTCOME_CANCELLED)
				return job->failure;
			return job->permanently ? GW_OUTCOME_PERMANENTLY_FAILED : GW_OUTCOME_FAILED;
		case GW_JOB_STOPPED:
		case GW_JOB_PENDING:
			break;
	}
	return GW_OUTCOME_NONE;
}

/* A job that finished this attempt for good: it does not run again. */
static bool
is_final(const GwJob *job)
{
	return job->outcome == GW_JOB_SUCCEEDED ||
		(job->outcome == GW_JOB_FAILED && job->permanently);
}

/*
 * gw_outcome_keeps_results says whether handlers' results are worth
 * keeping: they go into history rows of completed jobs (history = all) or
 * of jobs someone waits for.
 */
bool
gw_outcome_keeps_results(void)
{
	return gw_history == GW_HISTORY_ALL || gw_any_waiters();
}

/* Whether job gets a history row. */
static bool
wants_history(const GwJob *job)
{
	GwOutcome	outcome = gw_job_outcome(job);

	if (outcome == GW_OUTCOME_NONE)
		return false;
	if (gw_history == GW_HISTORY_ALL ||
		(gw_history == GW_HISTORY_FAILURES && outcome != GW_OUTCOME_COMPLETED))
		return true;
	return is_final(job) && gw_job_has_waiter(MyDatabaseId, job->id);
}

static Datum
array_of(Datum *elems, bool *nulls, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		len;
	bool		byval;
	char		align;

	get_typlenbyvalalign(type, &len, &byval, &align);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type,
											  len, byval, align));
}

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = s == NULL;
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * gw_outcome_write_history inserts the history rows of jobs[0..n-1] in the
 * current transaction (one statement).  Allocates in the current (SPI)
 * context.
 */
void
gw_outcome_write_history(GwJob **jobs, int n, const char *worker_id)
{
	Oid			types[HISTORY_NARGS] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, JSONARRAYOID, INT2ARRAYOID, TEXTARRAYOID, JSONBARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TEXTOID};
	Oid			elemtypes[HISTORY_NARGS - 1] = {INT8OID, TEXTOID, TEXTOID, TEXTOID,
		JSONOID, INT2OID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
	TIMESTAMPTZOID};
	Datum	   *cols[HISTORY_NARGS - 1];
	bool	   *nulls[HISTORY_NARGS - 1];
	Datum		args[HISTORY_NARGS];
	int			m = 0;
	Oid			nsp;
	MemoryContext cxt;
	ResourceOwner owner;
	volatile int nrows;

	if (gw_history == GW_HISTORY_OFF && !gw_any_waiters())
		return;
	for (int c = 0; c < HISTORY_NARGS - 1; c++)
	{
		cols[c] = palloc(sizeof(Datum) * Max(n, 1));
		nulls[c] = palloc0(sizeof(bool) * Max(n, 1));
	}
	for (int i = 0; i < n; i++)
	{
		GwJob	   *job = jobs[i];

		if (!wants_history(job))
			continue;
		cols[0][m] = Int64GetDatum(job->id);
		cols[1][m] = CStringGetTextDatum(job->task_identifier);
		cols[2][m] = job->row_values[COL_QUEUE_NAME];
		nulls[2][m] = job->row_nulls[COL_QUEUE_NAME];
		cols[3][m] = job->row_values[GW_JOBS_COL_KEY];
		nulls[3][m] = job->row_nulls[GW_JOBS_COL_KEY];
		cols[4][m] = job->payload;
		nulls[4][m] = !gw_history_payloads;
		cols[5][m] = job->row_values[COL_ATTEMPTS];
		cols[6][m] = CStringGetTextDatum(gw_outcome_names[gw_job_outcome(job)]);
		cols[7][m] = job->result;
		nulls[7][m] = job->result == (Datum) 0;
		cols[8][m] = text_or_null(job->outcome == GW_JOB_FAILED ? job->error : NULL,
								  &nulls[8][m]);
		cols[9][m] = text_or_null(job->sqlerrcode ? unpack_sql_state(job->sqlerrcode) : NULL,
								  &nulls[9][m]);
		cols[10][m] = TimestampTzGetDatum(job->started_at);
		nulls[10][m] = job->started_at == 0;
		cols[11][m] = TimestampTzGetDatum(job->finished_at ? job->finished_at :
										  GetCurrentTimestamp());
		m++;
	}
	if (m == 0)
		return;
	nrows = m;
	nsp = get_namespace_oid(GW_SCHEMA, true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("_private_job_history", nsp)))
		return;					/* still at 0.1.0 */

	for (int c = 0; c < HISTORY_NARGS - 1; c++)
		args[c] = array_of(cols[c], nulls[c], m, elemtypes[c]);
	args[HISTORY_NARGS - 1] = CStringGetTextDatum(worker_id);

	/*
	 * In a subtransaction: should the insert fail (a damaged history table),
	 * the jobs' outcomes still commit, without their history rows.
	 */
	cxt = CurrentMemoryContext;
	owner = CurrentResourceOwner;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (SPI_execute_plan(gw_prepare_once(&insert_history_plan, insert_history_sql,
											 HISTORY_NARGS, types),
							 args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert the history rows");
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(WARNING,
				(errmsg("graphile_worker could not record the history of %d jobs: %s",
						nrows, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/*
 * gw_outcome_report tells the statistics and the waiters what became of
 * jobs[0..n-1], whose transaction has committed, and logs their failures
 * as graphile_worker.log_failures asks.
 */
void
gw_outcome_report(GwJob **jobs, int n)
{
	GwFinished *finished = palloc(sizeof(GwFinished) * Max(n, 1));
	int			m = 0;

	for (int i = 0; i < n; i++)
	{
		GwJob	   *job = jobs[i];
		GwOutcome	outcome = gw_job_outcome(job);
		GwFinished *f = &finished[m];

		if (outcome == GW_OUTCOME_NONE)
			continue;
		f->job_id = job->id;
		f->task = job->task_identifier;
		f->outcome = outcome;
		f->final = is_final(job);
		f->run_time_us = job->started_at && job->finished_at > job->started_at ?
			job->finished_at - job->started_at : 0;
		m++;

		if (outcome != GW_OUTCOME_COMPLETED &&
			(gw_log_failures == GW_LOG_FAILURES_ALL ||
			 (gw_log_failures == GW_LOG_FAILURES_PERMANENT && f->final)))
			ereport(LOG,
					(errmsg("graphile_worker job %lld of task \"%s\" %s on attempt %d of %d: %s",
							(long long) job->id, job->task_identifier,
							f->final ? "failed permanently" : "failed",
							(int) DatumGetInt16(job->row_values[COL_ATTEMPTS]),
							(int) DatumGetInt16(job->row_values[COL_MAX_ATTEMPTS]),
							job->error ? job->error : "unknown error")));
	}
	gw_report_finished(MyDatabaseId, finished, m);
	pfree(finished);
}
