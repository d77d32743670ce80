/*-------------------------------------------------------------------------
 *
 * utility_hook.c
 *	  Gets our processes out of the way of commands that need a database to
 *	  themselves, so that they succeed without FORCE:
 *
 *		DROP DATABASE d, ALTER DATABASE d RENAME / SET TABLESPACE,
 *		CREATE DATABASE ... TEMPLATE d, and DROP EXTENSION graphile_worker.
 *
 * Before the command runs, the database is marked blocked (the launcher
 * starts no supervisor for it) and its supervisor and job workers get
 * SIGTERM: a running job is cancelled and given back without counting the
 * attempt (job_worker.c), so the command's wait for other sessions ends
 * within milliseconds.  When the command's transaction ends, committed or
 * not, the block is lifted and the launcher looks at the database again:
 * a dropped database is forgotten, a renamed one gets its workers back, a
 * dropped extension leaves it without workers.
 *
 * Runs in any backend of a server that preloads the library.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"

#include "compat.h"
#include "graphile_worker.h"

#define GW_MAX_BLOCKED 8

static ProcessUtility_hook_type prev_utility_hook = NULL;
static Oid	blocked[GW_MAX_BLOCKED];
static int	nblocked = 0;
static bool callback_registered = false;

/* Lifts this transaction's blocks and lets the launcher look again. */
static void
unblock_all(void)
{
	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < nblocked; i++)
	{
		GwDatabase *db = gw_find_database(blocked[i], false);

		if (db != NULL && db->blocked_by == MyProcPid)
		{
			db->blocked_by = 0;
			db->recheck = true;
		}
	}
	if (gw_shared->launcher_latch)
		SetLatch(gw_shared->launcher_latch);
	LWLockRelease(gw_shared->lock);
	nblocked = 0;
}

static void
xact_callback(XactEvent event, void *arg)
{
	if (nblocked > 0 &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		 event == XACT_EVENT_PREPARE))
		unblock_all();
}

/* Whether any process of ours still runs in dboid. */
static bool
database_has_processes(Oid dboid)
{
	bool		found = false;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->dboid == dboid && p->kind != GW_KIND_LAUNCHER)
			found = true;
	}
	LWLockRelease(gw_shared->lock);
	return found;
}

/*
 * stop_database blocks dboid until the end of this transaction, sends
 * SIGTERM to its supervisor and job workers, and waits up to 5 s for them
 * to leave, so that a cancelled job is given back before the command
 * (e.g. DROP EXTENSION, which waits for nobody) removes the tables.
 */
static void
stop_database(Oid dboid)
{
	GwDatabase *db;

	if (gw_shared == NULL || !OidIsValid(dboid) || nblocked >= GW_MAX_BLOCKED)
		return;
	if (!callback_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		callback_registered = true;
	}
	blocked[nblocked++] = dboid;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(dboid, true);
	if (db != NULL)
		db->blocked_by = MyProcPid;
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->dboid == dboid && p->kind != GW_KIND_LAUNCHER)
		{
			p->stop_requested = true;
			kill(p->pid, SIGTERM);
		}
	}
	LWLockRelease(gw_shared->lock);

	for (int waited_ms = 0; waited_ms < 5000 && database_has_processes(dboid);
		 waited_ms += 10)
	{
		CHECK_FOR_INTERRUPTS();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

static Oid
database_named(const char *name)
{
	return name ? get_database_oid(name, true) : InvalidOid;
}

/* The database named by option "name" of a CREATE/ALTER DATABASE list. */
static const char *
option_value(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, name) == 0 && d->arg != NULL)
			return defGetString(d);
	}
	return NULL;
}

static bool
drops_our_extension(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *obj = (Node *) lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), GW_EXTENSION_NAME) == 0)
			return true;
	}
	return false;
}

/* The database a utility statement needs for itself, if any. */
static Oid
database_needed_alone(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			return database_named(((DropdbStmt *) parsetree)->dbname);
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				return database_named(((RenameStmt *) parsetree)->subname);
			break;
		case T_AlterDatabaseStmt:
			if (option_value(((AlterDatabaseStmt *) parsetree)->options, "tablespace"))
				return database_named(((AlterDatabaseStmt *) parsetree)->dbname);
			break;
		case T_CreatedbStmt:
			return database_named(option_value(((CreatedbStmt *) parsetree)->options,
											   "template"));
		case T_DropStmt:
			if (drops_our_extension((DropStmt *) parsetree))
				return MyDatabaseId;
			break;
		default:
			break;
	}
	return InvalidOid;
}

static void
gw_utility_hook(GW_UTILITY_PARAMS)
{
	stop_database(database_needed_alone(pstmt->utilityStmt));

	if (prev_utility_hook)
		prev_utility_hook(GW_UTILITY_ARGS);
	else
		standard_ProcessUtility(GW_UTILITY_ARGS);
}

/* gw_install_utility_hook is called from _PG_init while preloading. */
void
gw_install_utility_hook(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = gw_utility_hook;
}
