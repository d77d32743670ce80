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
 * within milliseconds.  When the subtransaction that ran the command
 * aborts, or the transaction ends, committed or not, the block is lifted
 * and the launcher looks at the database again: a dropped database is
 * forgotten, a renamed one gets its workers back, a dropped extension
 * leaves it without workers.
 *
 * The hook runs before PostgreSQL checks the command, so it makes the same
 * checks first (dbcommands.c, dropcmds.c): it acts only when the current
 * role may run the command (ownership, CREATEDB, CREATE on a tablespace,
 * as the command requires), outside a transaction block for the commands
 * that refuse to run in one, and not on the current database where
 * PostgreSQL refuses that.  A role that could not run the command cannot
 * stop anyone's jobs with it.
 *
 * Runs in any backend of a server that preloads the library.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_tablespace.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/tablespace.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/syscache.h"

#include "compat.h"
#include "graphile_worker.h"

#define GW_MAX_BLOCKED 8

/* A database this backend keeps blocked, and the subtransaction that did. */
typedef struct BlockedDb
{
	Oid			dboid;
	SubTransactionId subid;
} BlockedDb;

static ProcessUtility_hook_type prev_utility_hook = NULL;
static BlockedDb blocked[GW_MAX_BLOCKED];
static int	nblocked = 0;
static bool callbacks_registered = false;

/*
 * unblock lifts the blocks taken by subtransaction subid (all of them when
 * subid is InvalidSubTransactionId) and lets the launcher look again at
 * each database that no other block of ours still holds.
 */
static void
unblock(SubTransactionId subid)
{
	Oid			lifted[GW_MAX_BLOCKED];
	int			nlifted = 0;
	int			kept = 0;

	for (int i = 0; i < nblocked; i++)
	{
		if (subid == InvalidSubTransactionId || blocked[i].subid == subid)
			lifted[nlifted++] = blocked[i].dboid;
		else
			blocked[kept++] = blocked[i];
	}
	nblocked = kept;
	if (nlifted == 0)
		return;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < nlifted; i++)
	{
		GwDatabase *db;
		bool		still_blocked = false;

		for (int j = 0; j < nblocked; j++)
			if (blocked[j].dboid == lifted[i])
				still_blocked = true;
		db = gw_find_database(lifted[i], false);
		if (!still_blocked && db != NULL && db->blockers > 0)
		{
			db->blockers--;
			if (db->blockers == 0)
				db->recheck = true;
		}
	}
	if (gw_shared->launcher_latch)
		SetLatch(gw_shared->launcher_latch);
	LWLockRelease(gw_shared->lock);
}

static void
xact_callback(XactEvent event, void *arg)
{
	if (nblocked > 0 &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		 event == XACT_EVENT_PREPARE))
		unblock(InvalidSubTransactionId);
}

/*
 * subxact_callback lifts the blocks of a subtransaction that aborts (a
 * failed command, ROLLBACK TO SAVEPOINT) and hands those of one that
 * commits (RELEASE SAVEPOINT) to its parent.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (nblocked == 0)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		unblock(mySubid);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < nblocked; i++)
			if (blocked[i].subid == mySubid)
				blocked[i].subid = parentSubid;
	}
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
 * stop_database blocks dboid until the current subtransaction aborts or
 * the transaction ends, sends SIGTERM to its supervisor and job workers,
 * and waits up to 5 s for them to leave, so that a cancelled job is given
 * back before the command (e.g. DROP EXTENSION, which waits for nobody)
 * removes the tables.
 */
static void
stop_database(Oid dboid)
{
	GwDatabase *db;
	bool		already = false;

	if (gw_shared == NULL || !OidIsValid(dboid) || nblocked >= GW_MAX_BLOCKED)
		return;
	if (!callbacks_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callbacks_registered = true;
	}
	for (int i = 0; i < nblocked; i++)
		if (blocked[i].dboid == dboid)
			already = true;
	blocked[nblocked].dboid = dboid;
	blocked[nblocked].subid = GetCurrentSubTransactionId();
	nblocked++;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(dboid, true);
	/* each backend counts once, however many of its commands block it */
	if (db != NULL && !already)
		db->blockers++;
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

/* The value of option "name" of a CREATE/ALTER DATABASE list, if given. */
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

/* have_createdb_privilege of dbcommands.c (not exported by every 15.x). */
static bool
may_create_databases(void)
{
	HeapTuple	tup;
	bool		result = false;

	if (superuser())
		return true;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	if (HeapTupleIsValid(tup))
	{
		result = ((Form_pg_authid) GETSTRUCT(tup))->rolcreatedb;
		ReleaseSysCache(tup);
	}
	return result;
}

/*
 * database_row looks up a database by name: its oid (InvalidOid if there
 * is none), whether it is a template and its default tablespace.
 */
static Oid
database_row(const char *name, bool *istemplate, Oid *tablespace)
{
	Oid			dboid = name ? get_database_oid(name, true) : InvalidOid;
	HeapTuple	tup;

	if (!OidIsValid(dboid))
		return InvalidOid;
	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	if (istemplate)
		*istemplate = ((Form_pg_database) GETSTRUCT(tup))->datistemplate;
	if (tablespace)
		*tablespace = ((Form_pg_database) GETSTRUCT(tup))->dattablespace;
	ReleaseSysCache(tup);
	return dboid;
}

/* DROP DATABASE: dropdb's checks, and no transaction block. */
static Oid
drop_database_target(DropdbStmt *stmt, bool isTopLevel)
{
	bool		istemplate = false;
	Oid			dboid;

	if (IsInTransactionBlock(isTopLevel))
		return InvalidOid;
	dboid = database_row(stmt->dbname, &istemplate, NULL);
	if (!OidIsValid(dboid) || dboid == MyDatabaseId || istemplate ||
		!gw_database_ownercheck(dboid, GetUserId()))
		return InvalidOid;
	return dboid;
}

/* ALTER DATABASE RENAME: RenameDatabase's checks. */
static Oid
rename_database_target(RenameStmt *stmt)
{
	Oid			dboid = database_row(stmt->subname, NULL, NULL);

	if (!OidIsValid(dboid) || dboid == MyDatabaseId ||
		!gw_database_ownercheck(dboid, GetUserId()) ||
		!may_create_databases() ||
		OidIsValid(get_database_oid(stmt->newname, true)))
		return InvalidOid;
	return dboid;
}

/*
 * ALTER DATABASE SET TABLESPACE: movedb's checks, and no transaction
 * block; moving to the tablespace it is in does nothing.
 */
static Oid
move_database_target(AlterDatabaseStmt *stmt, bool isTopLevel)
{
	const char *spcname = option_value(stmt->options, "tablespace");
	Oid			current = InvalidOid;
	Oid			dboid;
	Oid			spcoid;

	if (spcname == NULL || list_length(stmt->options) != 1 ||
		IsInTransactionBlock(isTopLevel))
		return InvalidOid;
	dboid = database_row(stmt->dbname, NULL, &current);
	if (!OidIsValid(dboid) || dboid == MyDatabaseId ||
		!gw_database_ownercheck(dboid, GetUserId()))
		return InvalidOid;
	spcoid = get_tablespace_oid(spcname, true);
	if (!OidIsValid(spcoid) || spcoid == GLOBALTABLESPACE_OID ||
		spcoid == current ||
		gw_tablespace_aclcheck(spcoid, GetUserId(), ACL_CREATE) != ACLCHECK_OK)
		return InvalidOid;
	return dboid;
}

/*
 * CREATE DATABASE ... TEMPLATE d: createdb's checks (CREATEDB, membership
 * in the new owner, ownership of a template that is not marked as one, a
 * new name), and no transaction block.
 */
static Oid
copy_database_source(CreatedbStmt *stmt, bool isTopLevel)
{
	const char *owner = option_value(stmt->options, "owner");
	bool		istemplate = false;
	Oid			dboid;

	if (IsInTransactionBlock(isTopLevel) || !may_create_databases())
		return InvalidOid;
	if (owner != NULL)
	{
		Oid			ownerid = get_role_oid(owner, true);

		if (!OidIsValid(ownerid) || !is_member_of_role(GetUserId(), ownerid))
			return InvalidOid;
	}
	dboid = database_row(option_value(stmt->options, "template"), &istemplate, NULL);
	if (!OidIsValid(dboid) ||
		(!istemplate && !gw_database_ownercheck(dboid, GetUserId())) ||
		OidIsValid(get_database_oid(stmt->dbname, true)))
		return InvalidOid;
	return dboid;
}

/*
 * DROP EXTENSION ... graphile_worker ...: the extension exists here and the
 * current role owns it (RemoveObjects' check).
 */
static Oid
drop_extension_target(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_EXTENSION)
		return InvalidOid;
	foreach(lc, stmt->objects)
	{
		Node	   *obj = (Node *) lfirst(lc);
		Oid			extoid;

		if (!IsA(obj, String) || strcmp(strVal(obj), GW_EXTENSION_NAME) != 0)
			continue;
		extoid = get_extension_oid(GW_EXTENSION_NAME, true);
		if (OidIsValid(extoid) && gw_extension_ownercheck(extoid, GetUserId()))
			return MyDatabaseId;
	}
	return InvalidOid;
}

/*
 * database_needed_alone returns the database a utility statement will need
 * for itself, or InvalidOid when it needs none or PostgreSQL is going to
 * refuse it before it waits for other sessions.
 */
static Oid
database_needed_alone(Node *parsetree, bool isTopLevel)
{
	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			return drop_database_target((DropdbStmt *) parsetree, isTopLevel);
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				return rename_database_target((RenameStmt *) parsetree);
			break;
		case T_AlterDatabaseStmt:
			return move_database_target((AlterDatabaseStmt *) parsetree, isTopLevel);
		case T_CreatedbStmt:
			return copy_database_source((CreatedbStmt *) parsetree, isTopLevel);
		case T_DropStmt:
			return drop_extension_target((DropStmt *) parsetree);
		default:
			break;
	}
	return InvalidOid;
}

static void
gw_utility_hook(GW_UTILITY_PARAMS)
{
	stop_database(database_needed_alone(pstmt->utilityStmt,
										context == PROCESS_UTILITY_TOPLEVEL));

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
