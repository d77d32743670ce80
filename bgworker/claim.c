/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  The three statements a job worker runs against the queue: claim,
 *	  complete and fail.  They are the statements of Graphile Worker 0.18
 *	  (getJobs, completeJobs, failJobs), so Node workers, the jobs view and
 *	  the admin functions see exactly what they expect:
 *
 *	  - claim locks due, available jobs of tasks that have a handler here,
 *		in priority then run_at order, skipping locked rows and locked
 *		named queues and jobs with a forbidden flag, keeping one job per
 *		named queue, and sets attempts + 1, locked_at, locked_by on the job
 *		and its queue;
 *	  - a named queue with a concurrency limit of n (set_queue_concurrency,
 *		_private_queue_limits) is claimed apart, first: the claim locks its
 *		limit row (others claiming at that moment skip the queue), counts
 *		our job workers whose batch holds one of its jobs (shared memory:
 *		each publishes the limited queues of its batch before its claim
 *		commits, so the next claimer, who gets the limit row after that
 *		commit, sees them), and takes one job of it if fewer than n do,
 *		without locking the queue's row;
 *	  - complete deletes the jobs of a batch that succeeded and unlocks their
 *		queues;
 *	  - fail records last_error, sets run_at to greatest(now(), run_at) +
 *		exp(least(attempts, 10)) seconds and unlocks job and queue;
 *	  - return (shutdown) unlocks job and queue and gives the attempt back,
 *		as Node's returnJobs does.
 *
 *	  Complete and fail only touch rows still locked by this worker.  Every
 *	  function and operator is schema-qualified, as the worker is a
 *	  superuser session.  Plans are prepared once per process.
 *
 *	  Callers are connected to SPI inside a transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "graphile_worker.h"
#include "job_worker.h"

/* Payload bytes (as stored) claimed in one batch at most, but one job. */
#define GW_CLAIM_MAX_BYTES (16 * 1024 * 1024)

/*
 * The end of both claims: lock the jobs of CTE j for worker $1, counting
 * the attempt, and return the columns of the graphile_worker.jobs view, in
 * order, then payload (q: the jobs' queues).
 */
#define CLAIM_LOCK_JOBS_OF_J \
"UPDATE graphile_worker._private_jobs AS jobs" \
"   SET attempts = jobs.attempts OPERATOR(pg_catalog.+) 1::pg_catalog.int2," \
"       locked_by = $1::pg_catalog.text," \
"       locked_at = pg_catalog.now()" \
"  FROM j" \
"  JOIN graphile_worker._private_tasks AS tasks ON true"
#define CLAIM_RETURNING \
" RETURNING jobs.id, q.queue_name, tasks.identifier, jobs.priority, jobs.run_at," \
"           jobs.attempts, jobs.max_attempts, jobs.last_error, jobs.created_at," \
"           jobs.updated_at, jobs.key, jobs.locked_at, jobs.locked_by," \
"           jobs.revision, jobs.flags, jobs.payload"

/* Our workers start no job of a paused task (pause_task). */
#define SKIP_PAUSED_TASKS \
"AND NOT EXISTS (SELECT FROM graphile_worker._private_pauses AS p" \
"                 WHERE p.kind OPERATOR(pg_catalog.=) 'task'" \
"                   AND p.name OPERATOR(pg_catalog.=) tasks.identifier)"

/*
 * $1 worker id, $2 task identifiers with a handler, $3 forbidden flags (or
 * NULL), $4 how many jobs at most, $5 how many payload bytes (as stored) at
 * most, but always one job.  The result starts with the columns of the
 * graphile_worker.jobs view, in order, then payload.
 *
 * Rows that j_raw locks but the byte bound leaves out stay available: the
 * row locks end with the claim's transaction.
 *
 * The first %s is skip_paused_tasks and the second skip_limited_queues,
 * or both nothing in a database whose extension is still at 0.1.0.
 */
static const char *const claim_sql_format =
"WITH j_raw AS ("
"  SELECT jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id,"
"         pg_catalog.pg_column_size(jobs.payload) AS size"
"    FROM graphile_worker._private_jobs AS jobs"
"   WHERE jobs.is_available OPERATOR(pg_catalog.=) true"
"     AND jobs.run_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
"     AND jobs.task_id OPERATOR(pg_catalog.=) ANY (ARRAY("
"           SELECT tasks.id FROM graphile_worker._private_tasks AS tasks"
"            WHERE tasks.identifier OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])"
"              %s))"
"     AND (jobs.job_queue_id IS NULL OR jobs.job_queue_id OPERATOR(pg_catalog.=) ANY (ARRAY("
"           SELECT job_queues.id FROM graphile_worker._private_job_queues AS job_queues"
"            WHERE job_queues.is_available OPERATOR(pg_catalog.=) true"
"              %s"
"              FOR UPDATE SKIP LOCKED)))"
"     AND ($3::pg_catalog.text[] IS NULL"
"          OR (jobs.flags OPERATOR(pg_catalog.?|) $3::pg_catalog.text[]) IS NOT TRUE)"
"   ORDER BY jobs.priority, jobs.run_at"
"   LIMIT $4"
"     FOR UPDATE SKIP LOCKED"
"), j_one AS ("
"  SELECT DISTINCT ON (j_raw.job_queue_id,"
"                      CASE WHEN j_raw.job_queue_id IS NULL THEN j_raw.id END)"
"         j_raw.job_queue_id, j_raw.id, j_raw.priority, j_raw.run_at, j_raw.size"
"    FROM j_raw"
"   ORDER BY j_raw.job_queue_id,"
"            CASE WHEN j_raw.job_queue_id IS NULL THEN j_raw.id END,"
"            j_raw.priority, j_raw.run_at"
"), j AS ("
"  SELECT s.job_queue_id, s.id FROM ("
"    SELECT j_one.job_queue_id, j_one.id, j_one.size,"
"           pg_catalog.sum(j_one.size) OVER (ORDER BY j_one.priority, j_one.run_at, j_one.id) AS total"
"      FROM j_one) AS s"
"   WHERE s.total OPERATOR(pg_catalog.-) s.size OPERATOR(pg_catalog.<) $5::pg_catalog.int8"
"), q AS ("
"  UPDATE graphile_worker._private_job_queues AS job_queues"
"     SET locked_by = $1::pg_catalog.text, locked_at = pg_catalog.now()"
"    FROM j"
"   WHERE job_queues.id OPERATOR(pg_catalog.=) j.job_queue_id"
"  RETURNING job_queues.id, job_queues.queue_name"
")"
CLAIM_LOCK_JOBS_OF_J
"  LEFT JOIN q ON q.id OPERATOR(pg_catalog.=) j.job_queue_id"
" WHERE jobs.id OPERATOR(pg_catalog.=) j.id"
"   AND tasks.id OPERATOR(pg_catalog.=) jobs.task_id"
CLAIM_RETURNING;

/*
 * The end of complete, fail and return: unlock the named queues of the jobs
 * in CTE j that the worker (parameter worker) still holds.
 */
#define UNLOCK_QUEUES_OF_J(worker) \
"UPDATE graphile_worker._private_job_queues AS job_queues" \
"   SET locked_by = NULL, locked_at = NULL" \
"  FROM j" \
" WHERE job_queues.id OPERATOR(pg_catalog.=) j.job_queue_id" \
"   AND job_queues.locked_by OPERATOR(pg_catalog.=) " worker "::pg_catalog.text"

/* $1 job ids, $2 worker id */
static const char *const complete_sql =
"WITH j AS ("
"  DELETE FROM graphile_worker._private_jobs AS jobs"
"   WHERE jobs.id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])"
"     AND jobs.locked_by OPERATOR(pg_catalog.=) $2::pg_catalog.text"
"  RETURNING jobs.job_queue_id"
")"
UNLOCK_QUEUES_OF_J("$2");

/* $1 job id, $2 message, $3 worker id */
static const char *const fail_sql =
"WITH j AS ("
"  UPDATE graphile_worker._private_jobs AS jobs"
"     SET last_error = $2::pg_catalog.text,"
"         run_at = GREATEST(pg_catalog.now(), jobs.run_at) OPERATOR(pg_catalog.+)"
"                  (pg_catalog.exp(LEAST(jobs.attempts, 10::pg_catalog.int2)::pg_catalog.float8)"
"                   OPERATOR(pg_catalog.*) '1 second'::pg_catalog.interval),"
"         locked_by = NULL,"
"         locked_at = NULL"
"   WHERE jobs.id OPERATOR(pg_catalog.=) $1::pg_catalog.int8"
"     AND jobs.locked_by OPERATOR(pg_catalog.=) $3::pg_catalog.text"
"  RETURNING jobs.job_queue_id, jobs.run_at, jobs.attempts, jobs.max_attempts"
"), q AS ("
UNLOCK_QUEUES_OF_J("$3")
")"
"SELECT j.run_at, j.attempts OPERATOR(pg_catalog.>=) j.max_attempts FROM j";

/*
 * $1 job id, $2 worker id, $3 its job_key and $4 its revision when
 * claimed: give an unstarted or interrupted job back.  A job whose key or
 * revision changed since (remove_job or an add_job replacing it detached
 * it, cancel_job cancelled it, all of them setting attempts to
 * max_attempts) is only unlocked: it must not run again.
 */
static const char *const return_sql =
"WITH j AS ("
"  UPDATE graphile_worker._private_jobs AS jobs"
"     SET attempts = CASE WHEN jobs.key IS NOT DISTINCT FROM $3::pg_catalog.text"
"                          AND jobs.revision OPERATOR(pg_catalog.=) $4::pg_catalog.int4"
"           THEN GREATEST(0::pg_catalog.int2, jobs.attempts OPERATOR(pg_catalog.-) 1::pg_catalog.int2)"
"           ELSE jobs.attempts END,"
"         locked_by = NULL, locked_at = NULL"
"   WHERE jobs.id OPERATOR(pg_catalog.=) $1::pg_catalog.int8"
"     AND jobs.locked_by OPERATOR(pg_catalog.=) $2::pg_catalog.text"
"  RETURNING jobs.job_queue_id"
")"
UNLOCK_QUEUES_OF_J("$2");

static const char *const skip_paused_tasks = SKIP_PAUSED_TASKS;

static const char *const skip_limited_queues =
"AND NOT EXISTS (SELECT FROM graphile_worker._private_queue_limits AS l"
"                 WHERE l.queue_name OPERATOR(pg_catalog.=) job_queues.queue_name)";

/*
 * The queues of limited concurrency that can take a job now, their limit
 * rows locked for the claim's transaction; limit rows another claim holds
 * are skipped.
 */
static const char *const limits_sql =
"SELECT q.id, l.max_running, l.queue_name"
"  FROM graphile_worker._private_queue_limits AS l"
"  JOIN graphile_worker._private_job_queues AS q"
"    ON q.queue_name OPERATOR(pg_catalog.=) l.queue_name"
" WHERE q.is_available OPERATOR(pg_catalog.=) true"
"   FOR UPDATE OF l SKIP LOCKED";

/* $1 queue names: limits of 1 left for queues none of whose jobs runs */
static const char *const drop_limits_sql =
"DELETE FROM graphile_worker._private_queue_limits AS l"
" WHERE l.queue_name OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[])"
"   AND l.max_running OPERATOR(pg_catalog.=) 1";

/*
 * The claim of jobs of queues of limited concurrency: $1 to $5 as in the
 * claim ($4 at most GW_MAX_LIMITED), $6 the ids of the queues that may
 * take a job (limits_sql); one job of each at most; their queue rows are
 * not locked.
 */
static const char *const claim_limited_sql =
"WITH j_raw AS ("
"  SELECT jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id,"
"         pg_catalog.pg_column_size(jobs.payload) AS size"
"    FROM graphile_worker._private_jobs AS jobs"
"   WHERE jobs.is_available OPERATOR(pg_catalog.=) true"
"     AND jobs.run_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
"     AND jobs.job_queue_id OPERATOR(pg_catalog.=) ANY ($6::pg_catalog.int4[])"
"     AND jobs.task_id OPERATOR(pg_catalog.=) ANY (ARRAY("
"           SELECT tasks.id FROM graphile_worker._private_tasks AS tasks"
"            WHERE tasks.identifier OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])"
"              " SKIP_PAUSED_TASKS "))"
"     AND ($3::pg_catalog.text[] IS NULL"
"          OR (jobs.flags OPERATOR(pg_catalog.?|) $3::pg_catalog.text[]) IS NOT TRUE)"
"   ORDER BY jobs.priority, jobs.run_at"
"   LIMIT 4 OPERATOR(pg_catalog.*) $4"
"     FOR UPDATE SKIP LOCKED"
"), j_one AS ("
"  SELECT DISTINCT ON (j_raw.job_queue_id)"
"         j_raw.job_queue_id, j_raw.id, j_raw.priority, j_raw.run_at, j_raw.size"
"    FROM j_raw"
"   ORDER BY j_raw.job_queue_id, j_raw.priority, j_raw.run_at, j_raw.id"
"), j AS ("
"  SELECT s.job_queue_id, s.id FROM ("
"    SELECT j_one.job_queue_id, j_one.id, j_one.size, j_one.priority, j_one.run_at,"
"           pg_catalog.sum(j_one.size) OVER (ORDER BY j_one.priority, j_one.run_at, j_one.id) AS total"
"      FROM j_one) AS s"
"   WHERE s.total OPERATOR(pg_catalog.-) s.size OPERATOR(pg_catalog.<) $5::pg_catalog.int8"
"   ORDER BY s.priority, s.run_at, s.id"
"   LIMIT $4"
")"
CLAIM_LOCK_JOBS_OF_J
"  JOIN graphile_worker._private_job_queues AS q ON q.id OPERATOR(pg_catalog.=) j.job_queue_id"
" WHERE jobs.id OPERATOR(pg_catalog.=) j.id"
"   AND tasks.id OPERATOR(pg_catalog.=) jobs.task_id"
CLAIM_RETURNING ", jobs.job_queue_id";

static SPIPlanPtr claim_plan = NULL;
static bool claim_plan_v020 = false;
static SPIPlanPtr limits_plan = NULL;
static SPIPlanPtr drop_limits_plan = NULL;
static SPIPlanPtr claim_limited_plan = NULL;
static SPIPlanPtr return_plan = NULL;
static SPIPlanPtr complete_plan = NULL;
static SPIPlanPtr fail_plan = NULL;

/* The forbidden flags setting as a text[] datum, or NULL if empty. */
static bool
forbidden_flags_datum(Datum *result)
{
	char	   *raw = pstrdup(gw_worker_settings.forbidden_flags);
	List	   *flags = NIL;
	ListCell   *lc;
	Datum	   *elems;
	int			n = 0;

	if (!SplitGUCList(raw, ',', &flags) || flags == NIL)
		return false;
	elems = palloc(sizeof(Datum) * list_length(flags));
	foreach(lc, flags)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	*result = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
											  TYPALIGN_INT));
	return true;
}

/*
 * claim_statement returns the kept claim plan for this database's version
 * of the extension, preparing it again after ALTER EXTENSION ... UPDATE;
 * *v020 tells whether the database has the tables of 0.2.0 (pauses and
 * queue limits).
 */
static SPIPlanPtr
claim_statement(Oid *argtypes, bool *v020)
{
	*v020 = OidIsValid(get_relname_relid("_private_queue_limits",
										 get_namespace_oid(GW_SCHEMA, false)));
	if (claim_plan != NULL && *v020 != claim_plan_v020)
	{
		SPI_freeplan(claim_plan);
		claim_plan = NULL;
	}
	if (claim_plan == NULL)
	{
		(void) gw_prepare_once(&claim_plan,
							   psprintf(claim_sql_format,
										*v020 ? skip_paused_tasks : "",
										*v020 ? skip_limited_queues : ""),
							   5, argtypes);
		claim_plan_v020 = *v020;
	}
	return claim_plan;
}

/*
 * copy_claimed copies the rows a claim returned into jobs[0..], allocated
 * in cxt.  Returns how many.
 */
static int
copy_claimed(GwJob *jobs, MemoryContext cxt)
{
	int			n = (int) SPI_processed;

	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		GwJob	   *job = &jobs[i];
		MemoryContext spi_cxt = MemoryContextSwitchTo(cxt);
		bool		isnull;

		for (int col = 0; col < GW_JOBS_VIEW_NATTS; col++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, col);
			Datum		v = SPI_getbinval(tup, desc, col + 1, &job->row_nulls[col]);

			job->row_values[col] = job->row_nulls[col] ? (Datum) 0 :
				datumCopy(v, att->attbyval, att->attlen);
		}
		job->id = DatumGetInt64(job->row_values[0]);
		job->task_identifier = TextDatumGetCString(job->row_values[2]);
		/* as stored: a TOAST pointer stays one until the job runs */
		job->payload = datumCopy(SPI_getbinval(tup, desc, GW_JOBS_VIEW_NATTS + 1, &isnull),
								 false, -1);
		job->outcome = GW_JOB_PENDING;
		MemoryContextSwitchTo(spi_cxt);
	}
	return n;
}

/*
 * limited_running returns how many of our other job workers of this
 * database hold a job of queue_id in their batch.
 */
static int
limited_running(int32 queue_id)
{
	int			running = 0;

	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (!p->in_use || p == gw_my_proc || p->kind != GW_KIND_WORKER ||
			p->dboid != MyDatabaseId)
			continue;
		for (int k = 0; k < p->nlimited; k++)
			if (p->limited[k] == queue_id)
				running++;
	}
	return running;
}

/* Publishes (or, with n 0, clears) the limited queues of this batch. */
static void
publish_limited(const int32 *queue_ids, int n)
{
	Assert(n <= GW_MAX_LIMITED);
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
		gw_my_proc->limited[i] = queue_ids[i];
	gw_my_proc->nlimited = n;
	LWLockRelease(gw_shared->lock);
}

/*
 * gw_claim_end_batch: the batch's jobs are finalized (or the worker
 * leaves): its limited queues may take other workers' jobs.
 */
void
gw_claim_end_batch(void)
{
	if (gw_my_proc != NULL && gw_my_proc->nlimited > 0)
		publish_limited(NULL, 0);
}

/*
 * claim_limited claims up to limit jobs of queues of limited concurrency
 * (one per queue) into jobs[0..], allocated in cxt, and publishes their
 * queues; args and nulls are the claim's first five.  Limits of 1 whose
 * queue has no job running are deleted: the queue is serial again.
 * Returns how many jobs were claimed.
 */
static int
claim_limited(Datum *args, char *nulls, int limit, GwJob *jobs, MemoryContext cxt)
{
	Oid			argtypes[6] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, INT8OID,
	INT4ARRAYOID};
	Oid			drop_type = TEXTARRAYOID;
	Datum		largs[6];
	char		lnulls[7];
	Datum	   *ids;
	Datum	   *serial;
	int			nids = 0;
	int			nserial = 0;
	int			nrows;
	int			n;
	int32		published[GW_MAX_LIMITED];
	int			ret;

	ret = SPI_execute_plan(gw_prepare_once(&limits_plan, limits_sql, 0, NULL),
						   NULL, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading queue limits failed: %s", SPI_result_code_string(ret));
	nrows = (int) SPI_processed;
	if (nrows == 0)
		return 0;
	/* scratch in SPI's procedure context, gone at SPI_finish */
	ids = palloc(sizeof(Datum) * nrows);
	serial = palloc(sizeof(Datum) * nrows);
	LWLockAcquire(gw_shared->lock, LW_SHARED);
	for (int i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int32		id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		int32		max = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		int			running = limited_running(id);

		if (max == 1 && running == 0)
			serial[nserial++] = SPI_getbinval(tup, desc, 3, &isnull);
		else if (running < max)
			ids[nids++] = Int32GetDatum(id);
	}
	LWLockRelease(gw_shared->lock);

	if (nserial > 0)
	{
		Datum		names = PointerGetDatum(construct_array(serial, nserial, TEXTOID,
															-1, false, TYPALIGN_INT));

		ret = SPI_execute_plan(gw_prepare_once(&drop_limits_plan, drop_limits_sql, 1,
											   &drop_type),
							   &names, NULL, false, 0);
		if (ret != SPI_OK_DELETE)
			elog(ERROR, "dropping queue limits failed: %s", SPI_result_code_string(ret));
	}
	if (nids == 0)
		return 0;

	memcpy(largs, args, sizeof(Datum) * 5);
	memcpy(lnulls, nulls, 5);
	largs[3] = Int32GetDatum(Min(limit, GW_MAX_LIMITED));
	largs[5] = PointerGetDatum(construct_array(ids, nids, INT4OID, sizeof(int32),
											   true, TYPALIGN_INT));
	lnulls[5] = ' ';
	lnulls[6] = '\0';
	ret = SPI_execute_plan(gw_prepare_once(&claim_limited_plan, claim_limited_sql, 6,
										   argtypes),
						   largs, lnulls, false, 0);
	if (ret != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "claiming jobs of limited queues failed: %s",
			 SPI_result_code_string(ret));
	n = copy_claimed(jobs, cxt);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		published[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc,
												   GW_JOBS_VIEW_NATTS + 2, &isnull));
	}
	publish_limited(published, n);
	return n;
}

/* Orders claimed jobs by priority, then run_at, then id. */
static int
compare_jobs(const void *a, const void *b)
{
	const GwJob *x = (const GwJob *) a;
	const GwJob *y = (const GwJob *) b;
	int16		px = DatumGetInt16(x->row_values[GW_JOBS_COL_PRIORITY]);
	int16		py = DatumGetInt16(y->row_values[GW_JOBS_COL_PRIORITY]);
	TimestampTz rx = DatumGetTimestampTz(x->row_values[GW_JOBS_COL_RUN_AT]);
	TimestampTz ry = DatumGetTimestampTz(y->row_values[GW_JOBS_COL_RUN_AT]);

	if (px != py)
		return px < py ? -1 : 1;
	if (rx != ry)
		return rx < ry ? -1 : 1;
	return x->id < y->id ? -1 : (x->id > y->id ? 1 : 0);
}

/*
 * gw_claim_jobs claims up to limit jobs for worker_id and returns them in
 * *jobs, allocated in cxt (which must outlive the transaction), in the
 * order to run them.  Returns how many were claimed.  The caller is
 * connected to SPI in a transaction.
 */
int
gw_claim_jobs(const char *worker_id, int limit, MemoryContext cxt, GwJob **jobs)
{
	Oid			argtypes[5] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, INT8OID};
	Datum		args[5];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', '\0'};
	int			nidentifiers;
	int			ret;
	int			n = 0;
	int			save_nestlevel;
	bool		v020;
	SPIPlanPtr	plan;
	GwJob	   *result;

	*jobs = NULL;
	gw_claim_end_batch();
	args[1] = gw_handler_identifiers(&nidentifiers);
	if (nidentifiers == 0)
		return 0;
	args[0] = CStringGetTextDatum(worker_id);
	if (!forbidden_flags_datum(&args[2]))
		nulls[2] = 'n';
	args[4] = Int64GetDatum(GW_CLAIM_MAX_BYTES);
	result = MemoryContextAllocZero(cxt, sizeof(GwJob) * limit);
	plan = claim_statement(argtypes, &v020);

	/*
	 * The claim must walk jobs_main_index in (priority, run_at) order and
	 * stop after "limit" rows.  Right after a bulk insert, before the table
	 * is analyzed, the planner may think a bitmap scan and a sort of the
	 * whole queue is cheaper; it never is for this query.
	 */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* the disabled paths' cost would otherwise make the plan look worth JIT */
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* queues of limited concurrency first: they take one job each at most */
	if (v020)
		n = claim_limited(args, nulls, limit, result, cxt);
	if (n < limit)
	{
		args[3] = Int32GetDatum(limit - n);
		ret = SPI_execute_plan(plan, args, nulls, false, 0);
		if (ret != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "claiming jobs failed: %s", SPI_result_code_string(ret));
		n += copy_claimed(result + n, cxt);
	}
	AtEOXact_GUC(true, save_nestlevel);

	/* run them in the queue's order (UPDATE ... RETURNING has none) */
	qsort(result, n, sizeof(GwJob), compare_jobs);
	*jobs = result;
	return n;
}

/*
 * gw_complete_jobs deletes the jobs of jobs[0..n-1] that succeeded and
 * unlocks their queues, in the transaction of their handlers' writes.
 */
void
gw_complete_jobs(GwJob **jobs, int n, const char *worker_id)
{
	Oid			argtypes[2] = {INT8ARRAYOID, TEXTOID};
	Datum		args[2];
	Datum	   *elems;
	int			ndone = 0;
	int			ret;

	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (jobs[i]->outcome == GW_JOB_SUCCEEDED)
			elems[ndone++] = Int64GetDatum(jobs[i]->id);
	if (ndone == 0)
		return;
	args[0] = PointerGetDatum(construct_array(elems, ndone, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = CStringGetTextDatum(worker_id);
	ret = SPI_execute_plan(gw_prepare_once(&complete_plan, complete_sql, 2, argtypes),
						   args, NULL, false, 0);
	if (ret < 0)
		elog(ERROR, "completing jobs failed: %s", SPI_result_code_string(ret));
}

/*
 * gw_fail_job records a failed attempt and unlocks job and queue.  Returns
 * the job's new run_at and sets *permanently when no attempt is left.
 * Returns 0 if the job was no longer locked by this worker.
 */
TimestampTz
gw_fail_job(GwJob *job, const char *worker_id, const char *message,
			bool *permanently)
{
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		args[3];
	bool		isnull;
	int			ret;

	args[0] = Int64GetDatum(job->id);
	args[1] = CStringGetTextDatum(message);
	args[2] = CStringGetTextDatum(worker_id);
	ret = SPI_execute_plan(gw_prepare_once(&fail_plan, fail_sql, 3, argtypes),
						   args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "failing job %lld failed: %s", (long long) job->id,
			 SPI_result_code_string(ret));
	*permanently = false;
	if (SPI_processed == 0)
		return 0;
	*permanently = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 2, &isnull));
	return DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * gw_return_job gives back a job this worker claimed but did not run, or
 * whose run a shutdown or a command of ours interrupted: the attempt is not
 * counted (unless the job was detached meanwhile, see return_sql).
 */
void
gw_return_job(GwJob *job, const char *worker_id)
{
	Oid			argtypes[4] = {INT8OID, TEXTOID, TEXTOID, INT4OID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			ret;

	args[0] = Int64GetDatum(job->id);
	args[1] = CStringGetTextDatum(worker_id);
	args[2] = job->row_values[GW_JOBS_COL_KEY];
	if (job->row_nulls[GW_JOBS_COL_KEY])
		nulls[2] = 'n';
	args[3] = job->row_values[GW_JOBS_COL_REVISION];
	ret = SPI_execute_plan(gw_prepare_once(&return_plan, return_sql, 4, argtypes),
						   args, nulls, false, 0);
	if (ret < 0)
		elog(ERROR, "returning job %lld failed: %s", (long long) job->id,
			 SPI_result_code_string(ret));
}
