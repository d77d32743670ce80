/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The graphile_worker launcher: one static background worker, connected
 *	  to no database, that keeps a supervisor (supervisor.c) running for
 *	  every database that may have workers.
 *
 * It reads pg_database and starts a supervisor for each database that
 * allows connections, is not a template, and is allowed by
 * graphile_worker.databases.  A supervisor that finds no extension marks
 * its database GW_DB_NO_EXTENSION and exits; the launcher does not start
 * one there again until CREATE EXTENSION (whose install script calls
 * _extension_created) sets the database's recheck flag and the launcher's
 * latch.  A supervisor that exits otherwise is restarted with a back-off.
 * The launcher rescans every GW_LAUNCHER_RESCAN_MS for new databases.
 * A launcher that restarted finds the supervisors of its predecessor in
 * shared memory and leaves them be; a database never has two (shmem.c).
 *
 * Registered in _PG_init (extension/graphile_worker.c), never under
 * pg_upgrade, started once recovery has finished (so never on a hot
 * standby, and at promotion).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/logicallauncher.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "compat.h"
#include "graphile_worker.h"

#define GW_LAUNCHER_RESCAN_MS 10000

/* The launcher's own view of a database: its supervisor. */
typedef struct LaunchedDb
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
	int			failures;
	TimestampTz retry_at;
	bool		listed;			/* seen in the latest pg_database scan */
} LaunchedDb;

static LaunchedDb launched[GW_MAX_DATABASES];
static bool too_many_warning_given = false;
/* the shortage share_slots last warned about */
static int	warned_wanted = 0;
static int	warned_allowed = 0;
static bool slot_warning_given = false;

static LaunchedDb *
launched_entry(Oid dboid, bool create)
{
	LaunchedDb *free_entry = NULL;

	for (int i = 0; i < GW_MAX_DATABASES; i++)
	{
		if (launched[i].dboid == dboid)
			return &launched[i];
		if (launched[i].dboid == InvalidOid && free_entry == NULL)
			free_entry = &launched[i];
	}
	if (create && free_entry != NULL)
	{
		memset(free_entry, 0, sizeof(LaunchedDb));
		free_entry->dboid = dboid;
	}
	return create ? free_entry : NULL;
}

static bool
start_supervisor(LaunchedDb *l, const char *dbname)
{
	char		name[BGW_MAXLEN];

	snprintf(name, sizeof(name), "graphile_worker supervisor for database %s", dbname);
	return gw_start_worker("gw_supervisor_main", "graphile_worker supervisor", name,
						   l->dboid, NULL, 0, &l->handle);
}

/*
 * tend_database decides what the supervisor of one listed database needs.
 * Returns when to look again (DT_NOEND: only when woken).
 */
static TimestampTz
tend_database(LaunchedDb *l, const char *dbname, TimestampTz now)
{
	GwDatabase *db;
	GwDbState	state;
	bool		recheck;
	bool		stopped = false;
	pid_t		pid;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(l->dboid, true);
	if (db == NULL)
	{
		LWLockRelease(gw_shared->lock);
		if (!too_many_warning_given)
			ereport(WARNING,
					(errmsg("graphile_worker manages at most %d databases; database \"%s\" gets no workers",
							GW_MAX_DATABASES, dbname)));
		too_many_warning_given = true;
		return DT_NOEND;
	}
	if (db->blockers > 0)
	{
		/* a command needs the database alone; it lifts the block at its end */
		LWLockRelease(gw_shared->lock);
		return DT_NOEND;
	}
	LWLockRelease(gw_shared->lock);

	/* seen stopped first, so that the state read next is its last word */
	if (l->handle != NULL && GetBackgroundWorkerPid(l->handle, &pid) == BGWH_STOPPED)
	{
		pfree(l->handle);
		l->handle = NULL;
		stopped = true;
	}
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	recheck = db->recheck;
	db->recheck = false;
	state = db->state;
	LWLockRelease(gw_shared->lock);

	if (stopped && state != GW_DB_NO_EXTENSION)
	{
		/* it exited without saying why: try again, backing off */
		l->failures++;
		l->retry_at = TimestampTzPlusMilliseconds(now,
												  Min(60000, 1000 << Min(l->failures - 1, 6)));
	}
	if (l->handle != NULL)
		return DT_NOEND;
	/* one started by an earlier launcher (this one restarted) lives on */
	if (gw_supervisor_running(l->dboid))
		return DT_NOEND;

	if (recheck)
	{
		l->failures = 0;
		l->retry_at = 0;
	}
	else if (state == GW_DB_NO_EXTENSION)
		return DT_NOEND;
	if (l->retry_at > now)
		return l->retry_at;

	/*
	 * Before it starts: a supervisor that finds no extension may say so
	 * (GW_DB_NO_EXTENSION) and exit before this process runs again, and
	 * must not be overwritten, or it would be started once more.
	 */
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db->state = GW_DB_STARTING;
	LWLockRelease(gw_shared->lock);
	if (!start_supervisor(l, dbname))
	{
		l->handle = NULL;
		if (!slot_warning_given)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("graphile_worker could not start a supervisor for database \"%s\"", dbname),
					 errhint("Raise max_worker_processes (it needs a restart).")));
		slot_warning_given = true;
		l->retry_at = TimestampTzPlusMilliseconds(now, 5000);
		return l->retry_at;
	}
	slot_warning_given = false;
	return DT_NOEND;
}

/* forget_database stops the supervisor of a database that is gone. */
static void
forget_database(LaunchedDb *l)
{
	GwDatabase *db;

	if (l->handle != NULL)
	{
		TerminateBackgroundWorker(l->handle);
		pfree(l->handle);
	}
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(l->dboid, false);
	if (db != NULL)
		memset(db, 0, sizeof(GwDatabase));
	LWLockRelease(gw_shared->lock);
	memset(l, 0, sizeof(LaunchedDb));
}

/*
 * scan_databases tends every database of pg_database that may have
 * workers, and forgets the others.  Returns when to look again.
 */
static TimestampTz
scan_databases(MemoryContext scan_cxt)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = TimestampTzPlusMilliseconds(now, GW_LAUNCHER_RESCAN_MS);
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext oldcxt;

	for (int i = 0; i < GW_MAX_DATABASES; i++)
		launched[i].listed = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	oldcxt = MemoryContextSwitchTo(scan_cxt);
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);
		LaunchedDb *l;

		CHECK_FOR_INTERRUPTS();
		if (!d->datallowconn || d->datistemplate ||
			d->datconnlimit == DATCONNLIMIT_INVALID_DB ||
			!gw_database_allowed(NameStr(d->datname)))
			continue;
		l = launched_entry(d->oid, true);
		if (l == NULL)
			continue;
		l->listed = true;
		MemoryContextSwitchTo(oldcxt);
		{
			/* not inside Min(): a macro would call it twice */
			TimestampTz when = tend_database(l, NameStr(d->datname), now);

			next = Min(next, when);
		}
		MemoryContextSwitchTo(scan_cxt);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	MemoryContextSwitchTo(oldcxt);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextReset(scan_cxt);

	for (int i = 0; i < GW_MAX_DATABASES; i++)
		if (launched[i].dboid != InvalidOid && !launched[i].listed)
			forget_database(&launched[i]);

	/* entries made for other databases (e.g. a CREATE DATABASE template) */
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < GW_MAX_DATABASES; i++)
	{
		GwDatabase *db = &gw_shared->databases[i];

		if (db->dboid != InvalidOid && db->blockers == 0 &&
			launched_entry(db->dboid, false) == NULL)
			memset(db, 0, sizeof(GwDatabase));
	}
	LWLockRelease(gw_shared->lock);
	return next;
}

/*
 * share_slots gives each database with a supervisor its share of the
 * server's background worker slots for job workers: max_worker_processes
 * less the launcher, a supervisor per database that may have one (not
 * known to lack the extension) and the logical replication launcher,
 * shared by water-filling, so that every database gets
 * min(concurrency, its fair share) before any gets more.  Slots that
 * parallel query and other extensions take are not known here: when they
 * run out, supervisors warn (supervisor.c).
 */
static void
share_slots(void)
{
	GwDatabase *dbs[GW_MAX_DATABASES];
	int			n = 0;
	int			capacity = max_worker_processes - 1 -
		(max_logical_replication_workers > 0 ? 1 : 0);
	int			total_wanted = 0;
	int			total_allowed = 0;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < GW_MAX_DATABASES; i++)
	{
		GwDatabase *db = &gw_shared->databases[i];

		/*
		 * Every database that has or will have a supervisor keeps a slot
		 * for it, even while it waits for one: its supervisor must never
		 * find the slots taken by other databases' workers.
		 */
		if (db->dboid == InvalidOid || db->state == GW_DB_NO_EXTENSION)
			continue;
		capacity--;
		if (db->settings_gen == 0 || !gw_supervisor_running_locked(db->dboid))
			continue;			/* its wishes are not known yet */
		dbs[n++] = db;
		total_wanted += Min(db->settings.concurrency, GW_MAX_WORKERS);
	}
	capacity = Max(capacity, 0);

	/* fewest wanted first: each gets min(wanted, what is left / those left) */
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0 &&
			 Min(dbs[k]->settings.concurrency, GW_MAX_WORKERS) <
			 Min(dbs[k - 1]->settings.concurrency, GW_MAX_WORKERS); k--)
		{
			GwDatabase *t = dbs[k];

			dbs[k] = dbs[k - 1];
			dbs[k - 1] = t;
		}
	for (int i = 0; i < n; i++)
	{
		int			wanted = Min(dbs[i]->settings.concurrency, GW_MAX_WORKERS);
		int			share = Min(wanted, capacity / (n - i));

		capacity -= share;
		total_allowed += share;
		if (dbs[i]->allowed != share)
		{
			dbs[i]->allowed = share;
			for (int p = 0; p < gw_shared->nprocs; p++)
				if (gw_shared->procs[p].in_use &&
					gw_shared->procs[p].kind == GW_KIND_SUPERVISOR &&
					gw_shared->procs[p].dboid == dbs[i]->dboid)
					SetLatch(gw_shared->procs[p].latch);
		}
	}
	LWLockRelease(gw_shared->lock);

	/* one warning per shortage, another only when it changes */
	if (total_allowed < total_wanted &&
		(total_wanted != warned_wanted || total_allowed != warned_allowed))
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("graphile_worker shares %d job worker slots among databases whose concurrency adds up to %d",
						total_allowed, total_wanted),
				 errdetail("Each database gets the smaller of its concurrency and an equal share of the slots."),
				 errhint("Raise max_worker_processes by %d (it needs a restart), or lower graphile_worker.concurrency.",
						 total_wanted - total_allowed)));
	warned_wanted = total_allowed < total_wanted ? total_wanted : 0;
	warned_allowed = total_allowed;
}

void
gw_launcher_main(Datum arg)
{
	MemoryContext scan_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	/* a reload signalled before the handler was installed was lost */
	ConfigReloadPending = true;
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	gw_register_proc(GW_KIND_LAUNCHER, InvalidOid);
	gw_set_state(GW_STATE_BUSY);

	scan_cxt = AllocSetContextCreate(TopMemoryContext, "graphile_worker launcher",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		TimestampTz next;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			gw_publish_server_settings();
		}
		next = scan_databases(scan_cxt);
		share_slots();
		wait_ms = (long) Min((next - GetCurrentTimestamp() + 999) / 1000, 3600 * 1000);
		if (wait_ms > 0)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
