/*-------------------------------------------------------------------------
 *
 * supervisor.c
 *	  The per-database supervisor: started by the launcher for a database,
 *	  it leaves at once if the database has no graphile_worker extension,
 *	  and otherwise keeps graphile_worker.concurrency job workers running
 *	  and wakes them when jobs become due:
 *
 *	  - at each timer (a job's future run_at, recorded by wakeup.c), it
 *		wakes as many idle workers as jobs became due;
 *	  - every poll_interval it wakes one idle worker, as a safety net for
 *		rows written by other means than add_job;
 *	  - when a worker exits unexpectedly it starts another, backing off if
 *		that keeps happening;
 *	  - it sweeps (recovery.c) when it starts, right after a worker dies, a
 *		second after starting workers, and every sweep_interval;
 *	  - it fires the crontab's entries at each minute, after back-filling
 *		when it starts (cron_ticker.c);
 *	  - it publishes the database's settings for its workers when the
 *		server's change and at each sweep (db_settings.c);
 *	  - it keeps the job history partitions, warns about unhandled tasks
 *		and runs the periodic cleanup (maintenance.c).
 *
 * It runs as many job workers as the database's concurrency, but no more
 * than the share of the server's worker slots the launcher gives it.
 *
 * When the supervisor exits, for whatever reason short of a crash, it asks
 * its workers to stop after their current job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "crontab.h"
#include "graphile_worker.h"

/*
 * The job worker of a slot.  A worker is started for slot i with the
 * slot's generation (GwDatabase.slot_gen[i]) and runs only while the
 * generation is unchanged (gw_worker_slot_current); to stop it, the
 * supervisor moves the generation on, and starts the slot's next worker
 * only once that one has exited (also one an earlier supervisor of the
 * database started, which finishes its batch after that supervisor died).
 * So a slot never has two workers, and a worker that had not registered
 * yet when it was stopped leaves on its own.
 */
typedef struct SupervisedWorker
{
	BackgroundWorkerHandle *handle;
	bool		stopping;		/* asked to stop; not exited yet */
	int			failures;		/* unexpected exits in a row */
	TimestampTz restart_at;		/* when to start it again after a failure */
	TimestampTz started_at;
	bool		no_slot;		/* the last start found no free slot */
} SupervisedWorker;

static SupervisedWorker workers[GW_MAX_WORKERS];
static Oid	my_dboid;
static bool slot_warning_given = false;
static TimestampTz next_sweep = 0;
static uint32 server_settings_seen = 0;

static const char *const future_jobs_sql =
"SELECT jobs.run_at FROM graphile_worker._private_jobs AS jobs"
" WHERE jobs.is_available OPERATOR(pg_catalog.=) true"
"   AND jobs.run_at OPERATOR(pg_catalog.>) pg_catalog.now()"
" ORDER BY jobs.run_at LIMIT " CppAsString2(GW_MAX_TIMERS);

/*
 * next_generation moves the generation of every slot of the database on
 * (all < 0) or of one slot, so that its worker leaves.  Caller holds
 * gw_shared->lock exclusively.
 */
static void
next_generation_locked(int slot)
{
	GwDatabase *db = gw_find_database(my_dboid, false);

	if (db == NULL)
		return;
	for (int i = 0; i < GW_MAX_WORKERS; i++)
		if (slot < 0 || i == slot)
			db->slot_gen[i]++;
}

/*
 * Tells our workers to stop after their current job.  The supervisor marks
 * itself stopping too, under the same lock, so that a worker registering
 * after this sees that it has no supervisor (gw_worker_slot_current).
 */
static void
stop_workers(int code, Datum arg)
{
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	gw_my_proc->stop_requested = true;
	next_generation_locked(-1);
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->kind == GW_KIND_WORKER && p->dboid == my_dboid)
		{
			p->stop_requested = true;
			SetLatch(p->latch);
		}
	}
	LWLockRelease(gw_shared->lock);
}

static bool
extension_installed(void)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid(GW_EXTENSION_NAME, true));
	CommitTransactionCommand();
	return installed;
}

static void
set_database_state(GwDbState state)
{
	GwDatabase *db;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(my_dboid, true);
	if (db != NULL)
		db->state = state;
	LWLockRelease(gw_shared->lock);
}

static bool
start_worker(int slot, SupervisedWorker *w)
{
	GwWorkerStart start;
	GwDatabase *db;
	char		name[BGW_MAXLEN];

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(my_dboid, false);
	start.slot = slot;
	start.gen = db ? db->slot_gen[slot] : 0;
	LWLockRelease(gw_shared->lock);
	snprintf(name, sizeof(name), "graphile_worker job worker for database %u", my_dboid);
	return gw_start_worker("gw_job_worker_main", "graphile_worker job worker", name,
						   my_dboid, &start, sizeof(start), &w->handle);
}

/*
 * stop_slot asks the worker of slot to stop after its current batch: the
 * slot's generation moves on and the worker's latch is set.  One that has
 * not started yet is not started at all.
 */
static void
stop_slot(int slot, SupervisedWorker *w)
{
	pid_t		pid = 0;
	bool		started = GetBackgroundWorkerPid(w->handle, &pid) == BGWH_STARTED;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	next_generation_locked(slot);
	for (int i = 0; started && i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->pid == pid)
			SetLatch(p->latch);
	}
	LWLockRelease(gw_shared->lock);
	if (!started)
		TerminateBackgroundWorker(w->handle);
	w->stopping = true;
}

/*
 * wanted_workers: the database's concurrency, but no more than its share
 * of the server's worker slots (launcher.c; none until it is known).
 */
static int
wanted_workers(void)
{
	GwDbSettings settings;
	GwDatabase *db;
	int			allowed = -1;

	(void) gw_db_settings(my_dboid, &settings);
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(my_dboid, false);
	if (db != NULL)
		allowed = db->allowed;
	LWLockRelease(gw_shared->lock);
	return Max(0, Min(Min(settings.concurrency, allowed), GW_MAX_WORKERS));
}

/*
 * refresh_settings publishes the database's settings (db_settings.c) when
 * the server's changed, or force.
 */
static void
refresh_settings(bool force)
{
	uint32		gen = gw_server_settings_gen();

	if (!force && gen == server_settings_seen)
		return;
	gw_xact_begin("graphile_worker: reading the database's settings");
	(void) gw_refresh_db_settings(my_dboid);
	gw_xact_commit();
	server_settings_seen = gen;
}

/*
 * maintain_workers starts missing workers and stops extra ones.  Returns
 * the time of the next restart it is waiting for (DT_NOEND if none).
 */
static TimestampTz
maintain_workers(TimestampTz now)
{
	int			wanted = wanted_workers();
	int			missing = 0;
	int			running;
	TimestampTz next = DT_NOEND;

	for (int i = 0; i < GW_MAX_WORKERS; i++)
	{
		SupervisedWorker *w = &workers[i];
		pid_t		pid;

		if (w->handle != NULL &&
			GetBackgroundWorkerPid(w->handle, &pid) == BGWH_STOPPED)
		{
			pfree(w->handle);
			w->handle = NULL;
			next_sweep = 0;		/* release what it may have held, now */
			if (!w->stopping && i < wanted)
			{
				/*
				 * It was not asked to stop: back off 0, 1, 2, 4 ... 60 s,
				 * counting only exits within a minute of the last start.
				 */
				if (now - w->started_at > 60 * USECS_PER_SEC)
					w->failures = 0;
				w->failures++;
				w->restart_at = TimestampTzPlusMilliseconds(now,
															Min(60000, w->failures > 1 ? 1000 << Min(w->failures - 2, 6) : 0));
			}
			w->stopping = false;
		}
		if (i >= wanted)
		{
			if (w->handle != NULL && !w->stopping)
				stop_slot(i, w);
			if (w->handle == NULL)
			{
				w->failures = 0;
				w->no_slot = false;
			}
			continue;
		}
		/* running, or stopping: a slot starts again once it is empty */
		if (w->handle != NULL)
			continue;
		/* a worker of a supervisor before this one still runs there */
		if (gw_worker_slot_busy(my_dboid, i))
			continue;
		if (w->restart_at > now)
		{
			next = Min(next, w->restart_at);
			continue;
		}
		w->no_slot = !start_worker(i, w);
		w->started_at = now;
		if (w->no_slot)
		{
			w->restart_at = TimestampTzPlusMilliseconds(now, 5000);
			next = Min(next, w->restart_at);
		}
		else
			next_sweep = Min(next_sweep, TimestampTzPlusMilliseconds(now, 1000));
	}

	/* one warning while slots are short, another only after they were not */
	for (int i = 0; i < wanted; i++)
		if (workers[i].no_slot)
			missing++;
	running = wanted - missing;
	if (missing > 0 && !slot_warning_given)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("graphile_worker could start only %d of %d job workers for database %u",
						running, wanted, my_dboid),
				 errhint("Raise max_worker_processes by %d (it needs a restart), or lower graphile_worker.concurrency.",
						 missing)));
		slot_warning_given = true;
	}
	else if (missing == 0)
		slot_warning_given = false;
	return next;
}

/*
 * refill_timers reads the earliest future run_at values from the table,
 * after more jobs were scheduled than the shared timers could remember.
 */
static void
refill_timers(void)
{
	TimestampTz times[GW_MAX_TIMERS];
	int			n;

	gw_xact_begin("graphile_worker: reading future run_at");
	if (SPI_execute(future_jobs_sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read future jobs");
	n = (int) SPI_processed;
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		times[i] = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));
	}
	gw_xact_commit();
	gw_refill_timers(my_dboid, times, n, n < GW_MAX_TIMERS);
}

void
gw_supervisor_main(Datum arg)
{
	TimestampTz next_poll = 0;

	my_dboid = DatumGetObjectId(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	/* a reload signalled before the handler was installed was lost */
	ConfigReloadPending = true;
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(my_dboid, InvalidOid, 0);
	if (gw_register_proc(GW_KIND_SUPERVISOR, my_dboid) == NULL)
	{
		ereport(LOG,
				(errmsg("graphile_worker supervisor for database %u is already running",
						my_dboid)));
		proc_exit(0);
	}
	/* workers of an earlier supervisor of this database leave */
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	next_generation_locked(-1);
	LWLockRelease(gw_shared->lock);

	if (!extension_installed())
	{
		set_database_state(GW_DB_NO_EXTENSION);
		proc_exit(0);
	}
	set_database_state(GW_DB_RUNNING);
	before_shmem_exit(stop_workers, (Datum) 0);
	gw_set_state(GW_STATE_BUSY);

	for (;;)
	{
		TimestampTz now;
		TimestampTz next;
		TimestampTz next_timer;
		TimestampTz cron_next;
		GwDbSettings settings;
		TimestampTz maintenance_next;
		int			ndue;
		bool		overflowed;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a shorter poll_interval applies now, not after the old one */
			next_poll = Min(next_poll,
							TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														gw_poll_interval_ms));
		}
		if (!extension_installed())
		{
			set_database_state(GW_DB_NO_EXTENSION);
			proc_exit(0);		/* stop_workers runs on the way out */
		}

		now = GetCurrentTimestamp();
		refresh_settings(now >= next_sweep);
		(void) gw_db_settings(my_dboid, &settings);
		next = maintain_workers(now);
		if (now >= next_sweep)
		{
			gw_sweep(my_dboid);
			now = GetCurrentTimestamp();
			next_sweep = TimestampTzPlusMilliseconds(now, gw_sweep_interval_ms);
		}
		next = Min(next, next_sweep);
		cron_next = gw_cron_ticker(now);	/* not inside Min(): a macro */
		next = Min(next, cron_next);
		maintenance_next = gw_maintenance(now);
		next = Min(next, maintenance_next);

		next_timer = gw_pop_due_timers(my_dboid, now, &ndue, &overflowed);
		if (overflowed)
		{
			int			more;

			refill_timers();
			next_timer = gw_pop_due_timers(my_dboid, now, &more, &overflowed);
			ndue += more;
		}
		if (!settings.paused)
		{
			if (ndue > 0)
				gw_wake_workers(my_dboid, ndue);
			if (now >= next_poll)
			{
				gw_wake_workers(my_dboid, 1);
				next_poll = TimestampTzPlusMilliseconds(now, gw_poll_interval_ms);
			}
			next = Min(next, next_timer);
		}
		else
			next_poll = TimestampTzPlusMilliseconds(now, gw_poll_interval_ms);
		next = Min(next, next_poll);

		wait_ms = (long) Min((next - GetCurrentTimestamp() + 999) / 1000, 3600 * 1000);
		if (wait_ms > 0)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
