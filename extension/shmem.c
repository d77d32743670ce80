/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The shared-memory registry of graphile_worker: one GwProc per running
 *	  process of ours (launcher, supervisors, job workers) and one
 *	  GwDatabase per database the launcher manages, all guarded by one
 *	  LWLock (tranche "graphile_worker").  Its hooks also set up the
 *	  statistics and waiters of stats.c, which have a lock of their own.
 *
 * Sized at server start from max_worker_processes, since every process of
 * ours is a background worker.  A process registers itself once, after it
 * has connected (a job worker only if its slot still wants it, checked
 * under the lock its supervisor stops it with), and its entry is freed by
 * a shmem-exit callback, so the registry never lists a process that has
 * gone (a crash of any backend reinitialises shared memory altogether).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "graphile_worker.h"

GwShared   *gw_shared = NULL;
GwProc	   *gw_my_proc = NULL;

#if GW_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
gw_shmem_size(void)
{
	return add_size(offsetof(GwShared, procs),
					mul_size(max_worker_processes, sizeof(GwProc)));
}

static void
gw_shmem_request(void)
{
#if GW_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(gw_shmem_size());
	RequestNamedLWLockTranche(GW_EXTENSION_NAME, 1);
	gw_stats_shmem_request();
}

static void
gw_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	gw_shared = ShmemInitStruct(GW_EXTENSION_NAME, gw_shmem_size(), &found);
	if (!found)
	{
		memset(gw_shared, 0, gw_shmem_size());
		gw_shared->lock = &(GetNamedLWLockTranche(GW_EXTENSION_NAME))->lock;
		gw_shared->nprocs = max_worker_processes;
	}
	LWLockRelease(AddinShmemInitLock);
	gw_stats_shmem_startup();
}

/*
 * gw_shmem_install_hooks is called from _PG_init while preloading.
 */
void
gw_shmem_install_hooks(void)
{
#if GW_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = gw_shmem_request;
#else
	gw_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = gw_shmem_startup;
}

/* Frees this process's entry when it exits, however it exits. */
static void
gw_unregister_proc(int code, Datum arg)
{
	if (gw_my_proc == NULL)
		return;
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	if (gw_my_proc->kind == GW_KIND_LAUNCHER)
		gw_shared->launcher_latch = NULL;
	/* the launcher may now start another supervisor for the database */
	if (gw_my_proc->kind == GW_KIND_SUPERVISOR && gw_shared->launcher_latch)
		SetLatch(gw_shared->launcher_latch);
	/* its supervisor (maybe not the one that started it) may use the slot */
	if (gw_my_proc->kind == GW_KIND_WORKER)
	{
		for (int i = 0; i < gw_shared->nprocs; i++)
		{
			GwProc	   *p = &gw_shared->procs[i];

			if (p->in_use && p->kind == GW_KIND_SUPERVISOR && p->dboid == gw_my_proc->dboid)
				SetLatch(p->latch);
		}
	}
	memset(gw_my_proc, 0, sizeof(GwProc));
	LWLockRelease(gw_shared->lock);
	gw_my_proc = NULL;
}

/* Whether dboid has a live supervisor.  Caller holds gw_shared->lock. */
bool
gw_supervisor_running_locked(Oid dboid)
{
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->kind == GW_KIND_SUPERVISOR && p->dboid == dboid)
			return true;
	}
	return false;
}

/*
 * gw_register_proc takes a free entry for this process.  There is always
 * one: every entry belongs to a live background worker and there are
 * max_worker_processes entries.
 *
 * A database has one supervisor: registering a second one (started by a
 * launcher that restarted while the first one lived on) returns NULL, and
 * that process must exit.
 */
static bool slot_wanted_locked(Oid dboid, int slot, uint32 gen);

static GwProc *
take_entry_locked(GwProcKind kind, Oid dboid, TimestampTz now)
{
	GwProc	   *proc = NULL;

	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		if (!gw_shared->procs[i].in_use)
		{
			proc = &gw_shared->procs[i];
			break;
		}
	}
	if (proc == NULL)
	{
		LWLockRelease(gw_shared->lock);
		elog(ERROR, "graphile_worker process registry is full");
	}
	memset(proc, 0, sizeof(GwProc));
	proc->in_use = true;
	proc->pid = MyProcPid;
	proc->dboid = dboid;
	proc->kind = kind;
	proc->state = GW_STATE_STARTING;
	proc->latch = MyLatch;
	proc->started_at = now;
	proc->state_since = now;
	proc->slot = -1;
	if (kind == GW_KIND_LAUNCHER)
		gw_shared->launcher_latch = MyLatch;
	return proc;
}

GwProc *
gw_register_proc(GwProcKind kind, Oid dboid)
{
	GwProc	   *proc;
	TimestampTz now = GetCurrentTimestamp();

	Assert(kind != GW_KIND_WORKER);
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	if (kind == GW_KIND_SUPERVISOR && gw_supervisor_running_locked(dboid))
	{
		LWLockRelease(gw_shared->lock);
		return NULL;
	}
	proc = take_entry_locked(kind, dboid, now);
	LWLockRelease(gw_shared->lock);

	gw_my_proc = proc;
	before_shmem_exit(gw_unregister_proc, (Datum) 0);
	return proc;
}

/*
 * gw_register_job_worker registers this job worker for slot with
 * generation gen, unless it is no longer wanted there (slot_wanted_locked),
 * in which case it returns NULL and the process must exit: a worker that
 * was stopped before it got here never shows among the workers.
 */
GwProc *
gw_register_job_worker(Oid dboid, int slot, uint32 gen, const char *worker_id)
{
	GwProc	   *proc = NULL;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	if (slot_wanted_locked(dboid, slot, gen))
	{
		proc = take_entry_locked(GW_KIND_WORKER, dboid, now);
		proc->slot = slot;
		strlcpy(proc->worker_id, worker_id, GW_WORKER_ID_LEN);
	}
	LWLockRelease(gw_shared->lock);
	if (proc == NULL)
		return NULL;

	gw_my_proc = proc;
	before_shmem_exit(gw_unregister_proc, (Datum) 0);
	return proc;
}

/*
 * gw_set_state records what this process is doing.  Becoming idle is done
 * by gw_consume_pending_or_idle instead, which must look at pending
 * wake-ups under the same lock.
 */
void
gw_set_state(GwProcState state)
{
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	if (gw_my_proc->state != state)
	{
		gw_my_proc->state = state;
		gw_my_proc->state_since = GetCurrentTimestamp();
	}
	LWLockRelease(gw_shared->lock);
}

/* gw_set_job records the job this worker runs (0 and NULL: none). */
void
gw_set_job(int64 job_id, const char *task)
{
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	gw_my_proc->job_id = job_id;
	if (task)
	{
		int			len = pg_mbcliplen(task, strlen(task), GW_TASK_DISPLAY_LEN - 1);

		memcpy(gw_my_proc->task, task, len);
		gw_my_proc->task[len] = '\0';
	}
	else
		gw_my_proc->task[0] = '\0';
	gw_my_proc->state_since = GetCurrentTimestamp();
	LWLockRelease(gw_shared->lock);
}

/*
 * gw_find_database returns the entry of dboid, creating it if asked to and
 * if there is room.  The caller holds gw_shared->lock exclusively.
 */
GwDatabase *
gw_find_database(Oid dboid, bool create)
{
	GwDatabase *free_entry = NULL;

	for (int i = 0; i < GW_MAX_DATABASES; i++)
	{
		GwDatabase *db = &gw_shared->databases[i];

		if (db->dboid == dboid)
			return db;
		if (db->dboid == InvalidOid && free_entry == NULL)
			free_entry = db;
	}
	if (!create || free_entry == NULL)
		return NULL;
	memset(free_entry, 0, sizeof(GwDatabase));
	free_entry->dboid = dboid;
	free_entry->state = GW_DB_UNKNOWN;
	free_entry->timers_overflowed = true;	/* nothing known yet: look */
	free_entry->allowed = -1;	/* until the launcher shares the slots */
	return free_entry;
}

/* gw_supervisor_running says whether dboid has a live supervisor. */
bool
gw_supervisor_running(Oid dboid)
{
	bool		running;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	running = gw_supervisor_running_locked(dboid);
	LWLockRelease(gw_shared->lock);
	return running;
}

/*
 * slot_wanted_locked says whether a job worker of dboid started for slot
 * with generation gen is wanted: the slot still has that generation and
 * the supervisor that started it is alive and not stopping.  Caller holds
 * gw_shared->lock.
 */
static bool
slot_wanted_locked(Oid dboid, int slot, uint32 gen)
{
	GwDatabase *db = gw_find_database(dboid, false);
	pid_t		supervisor = MyBgworkerEntry->bgw_notify_pid;

	if (db == NULL || slot < 0 || slot >= GW_MAX_WORKERS || db->slot_gen[slot] != gen)
		return false;
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->kind == GW_KIND_SUPERVISOR && p->pid == supervisor)
			return !p->stop_requested;
	}
	return false;
}

/*
 * gw_worker_slot_wanted: slot_wanted_locked, for a job worker that has not
 * registered yet (it may then leave before connecting to its database).
 */
bool
gw_worker_slot_wanted(Oid dboid, int slot, uint32 gen)
{
	bool		wanted;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	wanted = slot_wanted_locked(dboid, slot, gen);
	LWLockRelease(gw_shared->lock);
	return wanted;
}

/*
 * gw_worker_slot_current says whether this registered job worker is still
 * wanted in its slot and nobody asked it to stop.
 */
bool
gw_worker_slot_current(Oid dboid, int slot, uint32 gen)
{
	bool		current;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	current = slot_wanted_locked(dboid, slot, gen) && !gw_my_proc->stop_requested;
	LWLockRelease(gw_shared->lock);
	return current;
}

/*
 * gw_worker_slot_busy says whether a job worker of dboid still runs in
 * slot, whichever supervisor started it: a supervisor that replaces one
 * that died starts a slot's worker only once the old one has left.
 */
bool
gw_worker_slot_busy(Oid dboid, int slot)
{
	bool		busy = false;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->kind == GW_KIND_WORKER && p->dboid == dboid && p->slot == slot)
			busy = true;
	}
	LWLockRelease(gw_shared->lock);
	return busy;
}
