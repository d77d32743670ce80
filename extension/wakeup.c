/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Waking job workers without LISTEN/NOTIFY or polling.
 *
 * add_jobs (any backend) calls _wake_at_commit, and add_job its C side
 * gw_wake_at_commit, which remembers how many due jobs and which future
 * run_at the transaction added.  At commit, an xact callback sets the
 * latches of that many idle workers of the database (one per job, never
 * all) and records the future run_at as a timer for the database's
 * supervisor, which sleeps until exactly then.  Nothing happens if the
 * transaction aborts.
 *
 * A wake-up that finds no idle worker is kept as a pending wake-up; a
 * worker that finds no job consumes one before going idle, so a job
 * committed while every worker was busy is never left waiting for a poll.
 *
 * Timers: each database keeps its GW_MAX_TIMERS earliest future run_at
 * values.  When one had to be dropped, timers_overflowed tells the
 * supervisor to look in the table for the next ones once the kept ones are
 * used up.
 *
 * The install script calls _extension_created, which at commit asks the
 * launcher to start workers for this database.
 *
 * Runs in any backend (the SQL functions) and in our workers; touches
 * gw_shared under its lock.  Without shared_preload_libraries there is no
 * shared state and these functions do nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/timestamp.h"

#include "graphile_worker.h"

PG_FUNCTION_INFO_V1(gw_sql_wake_at_commit);
PG_FUNCTION_INFO_V1(gw_sql_extension_created);

/* What the current transaction will announce at commit. */
static int	pending_due = 0;
static int	pending_future = 0;
static TimestampTz pending_first_future = DT_NOEND;
static bool pending_created = false;
static bool callback_registered = false;

static void
reset_pending(void)
{
	pending_due = 0;
	pending_future = 0;
	pending_first_future = DT_NOEND;
	pending_created = false;
}

/* Caller holds gw_shared->lock. */
static void
set_supervisor_latch_locked(Oid dboid)
{
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->kind == GW_KIND_SUPERVISOR && p->dboid == dboid)
			SetLatch(p->latch);
	}
}

/*
 * wake_locked sets the latches of up to count idle workers of dboid and
 * keeps the rest as pending wake-ups.  Caller holds gw_shared->lock.
 */
static void
wake_locked(GwDatabase *db, Oid dboid, int count)
{
	int			nworkers = 0;

	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (!p->in_use || p->kind != GW_KIND_WORKER || p->dboid != dboid)
			continue;
		nworkers++;
		if (count > 0 && p->state == GW_STATE_IDLE)
		{
			p->state = GW_STATE_WOKEN;
			SetLatch(p->latch);
			count--;
		}
	}
	if (count > 0 && db != NULL)
		db->pending_wakeups = Min(db->pending_wakeups + count, nworkers);
}

/* Keeps the earliest GW_MAX_TIMERS run_at values.  Caller holds the lock. */
static void
add_timer_locked(GwDatabase *db, TimestampTz at)
{
	int			latest = 0;

	if (db->ntimers < GW_MAX_TIMERS)
	{
		db->timers[db->ntimers++] = at;
		return;
	}
	for (int i = 1; i < db->ntimers; i++)
		if (db->timers[i] > db->timers[latest])
			latest = i;
	if (at < db->timers[latest])
		db->timers[latest] = at;
	db->timers_overflowed = true;
}

/*
 * gw_wake_workers wakes up to count idle workers of dboid.
 */
void
gw_wake_workers(Oid dboid, int count)
{
	if (gw_shared == NULL || count <= 0)
		return;
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	wake_locked(gw_find_database(dboid, false), dboid, count);
	LWLockRelease(gw_shared->lock);
}

/*
 * gw_add_timer records that a job of dboid becomes due at "at", and tells
 * the supervisor so that it can shorten its sleep.
 */
void
gw_add_timer(Oid dboid, TimestampTz at)
{
	GwDatabase *db;

	if (gw_shared == NULL)
		return;
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(dboid, false);
	if (db != NULL)
	{
		add_timer_locked(db, at);
		set_supervisor_latch_locked(dboid);
	}
	LWLockRelease(gw_shared->lock);
}

/*
 * gw_pop_due_timers removes the timers of dboid that are due at now,
 * returning how many in *ndue, and returns the earliest remaining one
 * (DT_NOEND if none).  *overflowed is set when timers were dropped and none
 * is left: the caller must then look for future jobs in the table and
 * clear the flag by adding what it found with gw_refill_timers.
 */
TimestampTz
gw_pop_due_timers(Oid dboid, TimestampTz now, int *ndue, bool *overflowed)
{
	GwDatabase *db;
	TimestampTz next = DT_NOEND;
	int			kept = 0;

	*ndue = 0;
	*overflowed = false;
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(dboid, false);
	if (db != NULL)
	{
		for (int i = 0; i < db->ntimers; i++)
		{
			if (db->timers[i] <= now)
				(*ndue)++;
			else
			{
				next = Min(next, db->timers[i]);
				db->timers[kept++] = db->timers[i];
			}
		}
		db->ntimers = kept;
		*overflowed = (kept == 0 && db->timers_overflowed);
	}
	LWLockRelease(gw_shared->lock);
	return next;
}

/*
 * gw_refill_timers replaces the timers of dboid after a look in the table:
 * times are the earliest future run_at values found, complete says whether
 * there were no more.
 */
void
gw_refill_timers(Oid dboid, const TimestampTz *times, int ntimes, bool complete)
{
	GwDatabase *db;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(dboid, false);
	if (db != NULL)
	{
		db->timers_overflowed = !complete;
		for (int i = 0; i < ntimes; i++)
			add_timer_locked(db, times[i]);
	}
	LWLockRelease(gw_shared->lock);
}

/*
 * gw_consume_pending_or_idle is called by a worker that found no job: if a
 * wake-up is pending it consumes it and returns true (look again);
 * otherwise it marks the worker idle, so that the next committer will set
 * its latch, and returns false.
 */
bool
gw_consume_pending_or_idle(void)
{
	GwDatabase *db;
	bool		again = false;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(MyDatabaseId, false);
	if (db != NULL && db->pending_wakeups > 0)
	{
		db->pending_wakeups--;
		again = true;
	}
	else if (gw_my_proc->state != GW_STATE_IDLE)
	{
		gw_my_proc->state = GW_STATE_IDLE;
		gw_my_proc->state_since = GetCurrentTimestamp();
	}
	LWLockRelease(gw_shared->lock);
	return again;
}

/* Delivers what the committed transaction announced. */
static void
deliver_pending(void)
{
	GwDatabase *db;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(MyDatabaseId, pending_created);
	if (db != NULL)
	{
		if (pending_due > 0)
			wake_locked(db, MyDatabaseId, pending_due);
		if (pending_future > 0)
		{
			add_timer_locked(db, pending_first_future);
			if (pending_future > 1)
				db->timers_overflowed = true;
			set_supervisor_latch_locked(MyDatabaseId);
		}
		if (pending_created)
		{
			db->recheck = true;
			if (gw_shared->launcher_latch)
				SetLatch(gw_shared->launcher_latch);
		}
	}
	LWLockRelease(gw_shared->lock);
}

static void
gw_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (pending_due > 0 || pending_future > 0 || pending_created)
				deliver_pending();
			reset_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's jobs are found by the poll */
			reset_pending();
			break;
		default:
			break;
	}
}

static void
ensure_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(gw_xact_callback, NULL);
		callback_registered = true;
	}
}

/*
 * gw_wake_at_commit: at commit, wake "due" idle workers and set a timer for
 * first_future, the earliest run_at of "future" jobs; more than one future
 * job makes the supervisor look for the others in the table.
 */
void
gw_wake_at_commit(int due, TimestampTz first_future, int future)
{
	if (gw_shared == NULL)
		return;
	ensure_callback();
	pending_due += Max(due, 0);
	if (future > 0)
	{
		pending_first_future = Min(pending_first_future, first_future);
		pending_future += future;
	}
}

/*
 * graphile_worker._wake_at_commit(due integer, first_future timestamptz,
 * future integer): gw_wake_at_commit for add_jobs; NULL means none.
 */
Datum
gw_sql_wake_at_commit(PG_FUNCTION_ARGS)
{
	bool		has_future = !PG_ARGISNULL(1) && !PG_ARGISNULL(2);

	gw_wake_at_commit(PG_ARGISNULL(0) ? 0 : PG_GETARG_INT32(0),
					  has_future ? PG_GETARG_TIMESTAMPTZ(1) : DT_NOEND,
					  has_future ? PG_GETARG_INT32(2) : 0);
	PG_RETURN_VOID();
}

/*
 * graphile_worker._extension_created(): at commit, ask the launcher to start
 * this database's workers.
 */
Datum
gw_sql_extension_created(PG_FUNCTION_ARGS)
{
	if (gw_shared == NULL)
		PG_RETURN_VOID();
	ensure_callback();
	pending_created = true;
	PG_RETURN_VOID();
}
