/*-------------------------------------------------------------------------
 *
 * utility_hook.c
 *	  Gets our processes out of the way of commands that need a database to
 *	  themselves, so that they succeed without FORCE:
 *
 *		DROP DATABASE d, ALTER DATABASE d RENAME / SET TABLESPACE,
 *		CREATE DATABASE ... TEMPLATE d, and the commands that drop the
 *		extension: DROP EXTENSION graphile_worker, DROP EXTENSION of one it
 *		requires (plpgsql) with CASCADE, DROP OWNED BY its owner.
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
 * A command that drops the extension must not start while a process of
 * ours is still there: its next statement would find the tables gone
 * ("relation ... does not exist").  So for those the hook waits for them
 * as long as a cancelled handler may take (cancel_grace) and 5 s more, and
 * if one is still running (C code that does not check for interrupts), it
 * raises an error instead, before anything is dropped.
 *
 * The hook also hands CREATE EXTENSION graphile_worker to adopt.c, which
 * takes over a schema that graphile-worker 0.18 created.
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

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_depend.h"
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
#include "utils/fmgroids.h"
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

/* How many processes of ours still run in dboid. */
static int
database_processes(Oid dboid)
{
	int			n = 0;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->dboid == dboid && p->kind != GW_KIND_LAUNCHER)
			n++;
	}
	LWLockRelease(gw_shared->lock);
	return n;
}

/*
 * stop_database blocks dboid until the current subtransaction aborts or
 * the transaction ends, sends SIGTERM to its supervisor and job workers,
 * and waits for them to leave, so that a cancelled job is given back
 * before the command runs: 5 s for commands that PostgreSQL itself makes
 * wait for other sessions, or, for a command that drops the extension
 * (must_stop; it waits for nobody), cancel_grace + 5 s, after which it
 * raises an error if any is still there.
 */
static void
stop_database(Oid dboid, bool must_stop)
{
	GwDatabase *db;
	bool		already = false;
	int			wait_ms = must_stop ? gw_cancel_grace_ms + 5000 : 5000;
	int			left;

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

	for (int waited_ms = 0;
		 (left = database_processes(dboid)) > 0 && waited_ms < wait_ms;
		 waited_ms += 10)
	{
		CHECK_FOR_INTERRUPTS();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	if (must_stop && left > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("extension \"%s\" cannot be dropped while its processes in this database run",
						GW_EXTENSION_NAME),
				 errdetail_plural("%d process of the extension did not stop within %d ms of being asked to.",
								  "%d processes of the extension did not stop within %d ms of being asked to.",
								  left, left, wait_ms),
				 errhint("A job handler that does not check for interrupts may be running (see graphile_worker.workers); try again when it has returned.")));
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
 * extension_requires says whether extension extoid requires extension
 * other, directly or through the extensions it requires.
 */
static bool
extension_requires(Oid extoid, Oid other, int depth)
{
	Relation	rel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (depth > 16)
		return false;
	rel = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ExtensionRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, DependDependerIndexId, true, NULL, 2, key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

		if (d->refclassid == ExtensionRelationId &&
			(d->refobjid == other || extension_requires(d->refobjid, other, depth + 1)))
			found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * DROP EXTENSION graphile_worker, or with CASCADE an extension it
 * requires: the extension exists here and the current role owns the one
 * named (RemoveObjects' check).
 */
static Oid
drop_extension_target(DropStmt *stmt)
{
	ListCell   *lc;
	Oid			ours;

	if (stmt->removeType != OBJECT_EXTENSION)
		return InvalidOid;
	ours = get_extension_oid(GW_EXTENSION_NAME, true);
	if (!OidIsValid(ours))
		return InvalidOid;
	foreach(lc, stmt->objects)
	{
		Node	   *obj = (Node *) lfirst(lc);
		Oid			extoid;

		if (!IsA(obj, String))
			continue;
		extoid = get_extension_oid(strVal(obj), true);
		if (!OidIsValid(extoid) || !gw_extension_ownercheck(extoid, GetUserId()))
			continue;
		if (extoid == ours ||
			(stmt->behavior == DROP_CASCADE && extension_requires(ours, extoid, 0)))
			return MyDatabaseId;
	}
	return InvalidOid;
}

/* The owner of extension extoid (pg_extension has no syscache in 15). */
static Oid
extension_owner(Oid extoid)
{
	Relation	rel;
	ScanKeyData key[1];
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return owner;
}

/*
 * DROP OWNED BY ... the extension's owner ...: DropOwnedObjects' checks
 * (the current role has the privileges of every role named), and not the
 * bootstrap superuser, whose objects shdepDropOwned refuses to drop.
 */
static Oid
drop_owned_target(DropOwnedStmt *stmt)
{
	Oid			ours = get_extension_oid(GW_EXTENSION_NAME, true);
	Oid			owner;
	bool		names_owner = false;
	ListCell   *lc;

	if (!OidIsValid(ours))
		return InvalidOid;
	owner = extension_owner(ours);
	foreach(lc, stmt->roles)
	{
		Oid			roleid = get_rolespec_oid(lfirst(lc), true);

		if (!OidIsValid(roleid) || roleid == BOOTSTRAP_SUPERUSERID ||
			!has_privs_of_role(GetUserId(), roleid))
			return InvalidOid;
		if (roleid == owner)
			names_owner = true;
	}
	return names_owner ? MyDatabaseId : InvalidOid;
}

/*
 * database_needed_alone returns the database a utility statement will need
 * for itself, or InvalidOid when it needs none or PostgreSQL is going to
 * refuse it before it waits for other sessions; *drops_extension says
 * whether the statement drops the extension.
 */
static Oid
database_needed_alone(Node *parsetree, bool isTopLevel, bool *drops_extension)
{
	*drops_extension = false;
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
			*drops_extension = true;
			return drop_extension_target((DropStmt *) parsetree);
		case T_DropOwnedStmt:
			*drops_extension = true;
			return drop_owned_target((DropOwnedStmt *) parsetree);
		default:
			break;
	}
	return InvalidOid;
}

static void
gw_utility_hook(GW_UTILITY_PARAMS)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		drops_extension;
	Oid			adopting = InvalidOid;
	Oid			dboid;

	dboid = database_needed_alone(parsetree, context == PROCESS_UTILITY_TOPLEVEL,
								  &drops_extension);
	stop_database(dboid, drops_extension);
	if (IsA(parsetree, CreateExtensionStmt))
		adopting = gw_adopt_prepare((CreateExtensionStmt *) parsetree);

	if (prev_utility_hook)
		prev_utility_hook(GW_UTILITY_ARGS);
	else
		standard_ProcessUtility(GW_UTILITY_ARGS);

	if (OidIsValid(adopting))
		gw_adopt_finish(adopting);
}

/* gw_install_utility_hook is called from _PG_init while preloading. */
void
gw_install_utility_hook(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = gw_utility_hook;
}
