/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Live statistics of the job workers, the waiters of wait_for_job and
 *	  the recent outcomes they may have missed, all in shared memory under
 *	  one LWLock (tranche "graphile_worker_stats").  No table is written.
 *
 * A job worker reports the attempts of a transaction after its commit
 * (gw_report_finished, from bgworker/outcome.c), taking the lock once:
 *
 *	- per (database, task) entry of a fixed-size shared hash table: counters
 *	  by outcome, the failed attempts after which the job runs again
 *	  ("retried"), and a histogram of run times whose buckets are also those
 *	  of metrics(); an entry is made at its first report and removed by
 *	  stats_reset(), so its stats_reset is when it was made.  When the table
 *	  is full (GW_STATS_MAX_TASKS entries), new tasks are not counted;
 *	- a job that will not run again (completed, or failed with no attempt
 *	  left) goes into a ring of recent final outcomes, and the waiters of
 *	  wait_for_job on it (wait_job.c) get the outcome and their latch set.
 *
 * The SQL functions _task_stats() (behind the task_stats view) and
 * stats_reset() read and reset the entries of the current database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "graphile_worker.h"
#include "stats.h"

PG_FUNCTION_INFO_V1(gw_sql_task_stats);
PG_FUNCTION_INFO_V1(gw_sql_stats_reset);

#define GW_STATS_TRANCHE "graphile_worker_stats"

const char *const gw_outcome_names[GW_NUM_OUTCOMES] = {
	"", "completed", "failed", "permanently_failed", "cancelled", "timed_out",
	"worker_died"
};

/* Upper bounds of the run time buckets, in microseconds; the last is +Inf. */
static const int64 bucket_le_us[GW_DURATION_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000, 60000000, 300000000,
	PG_INT64_MAX
};

typedef struct GwTaskStatsKey
{
	Oid			dboid;
	char		task[GW_TASK_DISPLAY_LEN];
} GwTaskStatsKey;

typedef struct GwTaskStats
{
	GwTaskStatsKey key;
	int64		outcomes[GW_NUM_OUTCOMES];
	int64		retried;
	int64		buckets[GW_DURATION_BUCKETS];
	double		run_time_sum_s;
	TimestampTz since;
} GwTaskStats;

/* A recent final outcome. */
typedef struct GwRecent
{
	Oid			dboid;
	int64		job_id;
	GwOutcome	outcome;
} GwRecent;

typedef struct GwStatsShared
{
	LWLock	   *lock;
	pg_atomic_uint32 nwaiters;
	uint32		recent_next;
	GwRecent	recent[GW_RECENT_OUTCOMES];
	GwWaiter	waiters[GW_MAX_WAITERS];
} GwStatsShared;

static GwStatsShared *stats_shared = NULL;
static HTAB *task_stats = NULL;

GwOutcome
gw_outcome_from_name(const char *name)
{
	for (int i = 1; i < GW_NUM_OUTCOMES; i++)
		if (strcmp(gw_outcome_names[i], name) == 0)
			return (GwOutcome) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown job outcome \"%s\"", name)));
	return GW_OUTCOME_NONE;		/* keep the compiler quiet */
}

/* gw_stats_shmem_request asks for the memory and the lock (while preloading). */
void
gw_stats_shmem_request(void)
{
	RequestAddinShmemSpace(add_size(sizeof(GwStatsShared),
									hash_estimate_size(GW_STATS_MAX_TASKS,
													   sizeof(GwTaskStats))));
	RequestNamedLWLockTranche(GW_STATS_TRANCHE, 1);
}

/* gw_stats_shmem_startup attaches to (or creates) the shared state. */
void
gw_stats_shmem_startup(void)
{
	bool		found;
	HASHCTL		ctl;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	stats_shared = ShmemInitStruct(GW_STATS_TRANCHE, sizeof(GwStatsShared), &found);
	if (!found)
	{
		memset(stats_shared, 0, sizeof(GwStatsShared));
		stats_shared->lock = &(GetNamedLWLockTranche(GW_STATS_TRANCHE))->lock;
		pg_atomic_init_u32(&stats_shared->nwaiters, 0);
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(GwTaskStatsKey);
	ctl.entrysize = sizeof(GwTaskStats);
	task_stats = ShmemInitHash("graphile_worker task stats",
							   GW_STATS_MAX_TASKS, GW_STATS_MAX_TASKS,
							   &ctl, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	LWLockRelease(AddinShmemInitLock);
}

static void
make_key(GwTaskStatsKey *key, Oid dboid, const char *task)
{
	memset(key, 0, sizeof(*key));
	key->dboid = dboid;
	strlcpy(key->task, task, sizeof(key->task));
}

/*
 * wake_waiters_locked gives outcome to the waiters of job_id in dboid and
 * sets their latches.  Caller holds the lock exclusively.
 */
static void
wake_waiters_locked(Oid dboid, int64 job_id, GwOutcome outcome)
{
	for (int i = 0; i < GW_MAX_WAITERS; i++)
	{
		GwWaiter   *w = &stats_shared->waiters[i];

		if (w->pid != 0 && w->dboid == dboid && w->job_id == job_id)
		{
			w->outcome = outcome;
			SetLatch(w->latch);
		}
	}
}

/* remember_final_locked puts a final outcome in the ring.  Lock held. */
static void
remember_final_locked(Oid dboid, int64 job_id, GwOutcome outcome)
{
	GwRecent   *r = &stats_shared->recent[stats_shared->recent_next++ % GW_RECENT_OUTCOMES];

	r->dboid = dboid;
	r->job_id = job_id;
	r->outcome = outcome;
}

/*
 * gw_report_finished counts the attempts of a committed transaction and,
 * for jobs that will not run again, remembers the outcome and wakes the
 * waiters.  Called by job workers after each commit, and by
 * _job_finished_at_commit.
 */
void
gw_report_finished(Oid dboid, const GwFinished *finished, int n)
{
	bool		waiters;

	if (stats_shared == NULL || n == 0)
		return;
	waiters = pg_atomic_read_u32(&stats_shared->nwaiters) > 0;
	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		const GwFinished *f = &finished[i];

		if (f->task != NULL)
		{
			GwTaskStatsKey key;
			GwTaskStats *s;
			bool		found;
			int			b = 0;

			make_key(&key, dboid, f->task);
			s = hash_search(task_stats, &key, HASH_ENTER_NULL, &found);
			if (s != NULL)
			{
				if (!found)
				{
					memset((char *) s + sizeof(GwTaskStatsKey), 0,
						   sizeof(GwTaskStats) - sizeof(GwTaskStatsKey));
					s->since = GetCurrentTimestamp();
				}
				s->outcomes[f->outcome]++;
				if (f->outcome != GW_OUTCOME_COMPLETED && !f->final)
					s->retried++;
				while (b < GW_DURATION_BUCKETS - 1 && f->run_time_us > bucket_le_us[b])
					b++;
				s->buckets[b]++;
				s->run_time_sum_s += (double) f->run_time_us / 1000000.0;
			}
		}
		if (f->final)
		{
			remember_final_locked(dboid, f->job_id, f->outcome);
			if (waiters)
				wake_waiters_locked(dboid, f->job_id, f->outcome);
		}
	}
	LWLockRelease(stats_shared->lock);
}

/* gw_any_waiters: whether some backend waits in wait_for_job (a hint). */
bool
gw_any_waiters(void)
{
	return stats_shared != NULL && pg_atomic_read_u32(&stats_shared->nwaiters) > 0;
}

/* gw_job_has_waiter says whether a backend waits for job_id of dboid. */
bool
gw_job_has_waiter(Oid dboid, int64 job_id)
{
	bool		found = false;

	if (!gw_any_waiters())
		return false;
	LWLockAcquire(stats_shared->lock, LW_SHARED);
	for (int i = 0; i < GW_MAX_WAITERS && !found; i++)
	{
		GwWaiter   *w = &stats_shared->waiters[i];

		found = w->pid != 0 && w->dboid == dboid && w->job_id == job_id;
	}
	LWLockRelease(stats_shared->lock);
	return found;
}

/*
 * gw_waiter_register takes a waiter slot for job_id of this database and
 * returns its index; ERROR when every slot is taken.
 */
int
gw_waiter_register(int64 job_id)
{
	int			slot = -1;

	if (stats_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wait_for_job needs graphile_worker in shared_preload_libraries")));
	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < GW_MAX_WAITERS; i++)
	{
		GwWaiter   *w = &stats_shared->waiters[i];

		if (w->pid == 0)
		{
			w->pid = MyProcPid;
			w->dboid = MyDatabaseId;
			w->job_id = job_id;
			w->latch = MyLatch;
			w->outcome = GW_OUTCOME_NONE;
			pg_atomic_fetch_add_u32(&stats_shared->nwaiters, 1);
			slot = i;
			break;
		}
	}
	LWLockRelease(stats_shared->lock);
	if (slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many sessions are in wait_for_job"),
				 errdetail("At most %d sessions of the server may wait at the same time.",
						   GW_MAX_WAITERS)));
	return slot;
}

/* gw_waiter_outcome: the outcome given to slot so far (GW_OUTCOME_NONE). */
GwOutcome
gw_waiter_outcome(int slot)
{
	GwOutcome	outcome;

	LWLockAcquire(stats_shared->lock, LW_SHARED);
	outcome = stats_shared->waiters[slot].outcome;
	LWLockRelease(stats_shared->lock);
	return outcome;
}

/* gw_waiter_release frees slot (taken by this backend). */
void
gw_waiter_release(int slot)
{
	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	if (stats_shared->waiters[slot].pid == MyProcPid)
	{
		memset(&stats_shared->waiters[slot], 0, sizeof(GwWaiter));
		pg_atomic_fetch_sub_u32(&stats_shared->nwaiters, 1);
	}
	LWLockRelease(stats_shared->lock);
}

/*
 * gw_recent_outcome: the final outcome of job_id of this database if it is
 * still in the ring of recent ones, else GW_OUTCOME_NONE.
 */
GwOutcome
gw_recent_outcome(int64 job_id)
{
	GwOutcome	outcome = GW_OUTCOME_NONE;

	if (stats_shared == NULL)
		return outcome;
	LWLockAcquire(stats_shared->lock, LW_SHARED);
	for (int i = 0; i < GW_RECENT_OUTCOMES; i++)
	{
		GwRecent   *r = &stats_shared->recent[i];

		if (r->job_id == job_id && r->dboid == MyDatabaseId)
			outcome = r->outcome;
	}
	LWLockRelease(stats_shared->lock);
	return outcome;
}

/*
 * quantile estimates the q-quantile of the run times in buckets (n in all),
 * interpolating linearly inside the bucket it falls in; in microseconds.
 */
static int64
quantile(const int64 *buckets, int64 n, double q)
{
	double		target = q * (double) n;
	int64		cum = 0;

	for (int b = 0; b < GW_DURATION_BUCKETS; b++)
	{
		int64		lower = b == 0 ? 0 : bucket_le_us[b - 1];

		if (buckets[b] > 0 && (double) (cum + buckets[b]) >= target)
		{
			if (b == GW_DURATION_BUCKETS - 1)
				return lower;
			return lower + (int64) ((target - (double) cum) / (double) buckets[b] *
									(double) (bucket_le_us[b] - lower));
		}
		cum += buckets[b];
	}
	return 0;
}

static Datum
interval_us(int64 us)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = us;
	return IntervalPGetDatum(iv);
}

/*
 * graphile_worker._task_stats(): the entries of this database, for the
 * task_stats view and metrics().  The caller needs SELECT on task_stats.
 */
Datum
gw_sql_task_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GwTaskStats *copy;
	int			n = 0;
	HASH_SEQ_STATUS seq;
	GwTaskStats *s;
	Datum		le[GW_DURATION_BUCKETS];

	gw_require_view_select("task_stats");
	gw_init_materialized_srf(fcinfo);
	if (stats_shared == NULL)
		PG_RETURN_VOID();

	copy = palloc(sizeof(GwTaskStats) * GW_STATS_MAX_TASKS);
	LWLockAcquire(stats_shared->lock, LW_SHARED);
	hash_seq_init(&seq, task_stats);
	while ((s = hash_seq_search(&seq)) != NULL)
		if (s->key.dboid == MyDatabaseId && n < GW_STATS_MAX_TASKS)
			copy[n++] = *s;
	LWLockRelease(stats_shared->lock);

	for (int b = 0; b < GW_DURATION_BUCKETS; b++)
		le[b] = Float8GetDatum(b == GW_DURATION_BUCKETS - 1 ? get_float8_infinity() :
							   (double) bucket_le_us[b] / 1000000.0);
	for (int i = 0; i < n; i++)
	{
		Datum		values[13];
		bool		nulls[13] = {0};
		Datum		cum[GW_DURATION_BUCKETS];
		int64		total = 0;

		CHECK_FOR_INTERRUPTS();
		s = &copy[i];
		for (int b = 0; b < GW_DURATION_BUCKETS; b++)
		{
			total += s->buckets[b];
			cum[b] = Int64GetDatum(total);
		}
		values[0] = CStringGetTextDatum(s->key.task);
		values[1] = Int64GetDatum(s->outcomes[GW_OUTCOME_COMPLETED]);
		values[2] = Int64GetDatum(s->outcomes[GW_OUTCOME_FAILED]);
		values[3] = Int64GetDatum(s->outcomes[GW_OUTCOME_PERMANENTLY_FAILED]);
		values[4] = Int64GetDatum(s->outcomes[GW_OUTCOME_CANCELLED]);
		values[5] = Int64GetDatum(s->outcomes[GW_OUTCOME_TIMED_OUT]);
		values[6] = Int64GetDatum(s->retried);
		values[7] = interval_us(quantile(s->buckets, total, 0.5));
		values[8] = interval_us(quantile(s->buckets, total, 0.99));
		nulls[7] = nulls[8] = total == 0;
		values[9] = Float8GetDatum(s->run_time_sum_s);
		values[10] = PointerGetDatum(construct_array(le, GW_DURATION_BUCKETS, FLOAT8OID,
													 sizeof(float8), FLOAT8PASSBYVAL,
													 TYPALIGN_DOUBLE));
		values[11] = PointerGetDatum(construct_array(cum, GW_DURATION_BUCKETS, INT8OID,
													 sizeof(int64), FLOAT8PASSBYVAL,
													 TYPALIGN_DOUBLE));
		values[12] = TimestampTzGetDatum(s->since);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

/* graphile_worker.stats_reset(): forgets the statistics of this database. */
Datum
gw_sql_stats_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	GwTaskStats *s;

	if (stats_shared == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, task_stats);
	while ((s = hash_seq_search(&seq)) != NULL)
		if (s->key.dboid == MyDatabaseId)
			(void) hash_search(task_stats, &s->key, HASH_REMOVE, NULL);
	LWLockRelease(stats_shared->lock);
	PG_RETURN_VOID();
}
