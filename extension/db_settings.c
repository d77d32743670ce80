/*-------------------------------------------------------------------------
 *
 * db_settings.c
 *	  The settings a database may give itself: graphile_worker.concurrency,
 *	  paused, task_schemas and forbidden_flags, set with ALTER DATABASE ...
 *	  SET (superuser) and applied, like the server's, at the next
 *	  pg_reload_conf() (or within a sweep_interval).
 *
 * Settings of a database reach a process only when it connects, and no
 * later change of them, nor a RESET, is seen by a process already
 * connected.  So:
 *	- the launcher, which connects to no database, holds the server's
 *	  values (postgresql.conf, ALTER SYSTEM) and publishes them in shared
 *	  memory after each reload, then sets every supervisor's latch;
 *	- the supervisor of a database reads the database's own settings
 *	  (pg_db_role_setting, role 0) when the server's change and at each
 *	  sweep, and publishes the effective values in its GwDatabase;
 *	- its job workers read them from there, never from their own GUCs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "compat.h"
#include "graphile_worker.h"

/* Copies a setting's text, refusing (WARNING) one too long to share. */
static void
copy_setting(char *dst, const char *name, const char *value)
{
	if (strlen(value) >= GW_SETTING_LEN)
	{
		ereport(WARNING,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("graphile_worker.%s is longer than %d bytes and is ignored",
						name, GW_SETTING_LEN - 1)));
		return;
	}
	/* all of it, so that settings compare with memcmp */
	memset(dst, 0, GW_SETTING_LEN);
	strlcpy(dst, value, GW_SETTING_LEN);
}

/*
 * gw_publish_server_settings publishes this process's values of the
 * settings (the launcher's: the server's) and tells the supervisors.
 */
void
gw_publish_server_settings(void)
{
	GwDbSettings s;

	memset(&s, 0, sizeof(s));
	s.concurrency = gw_concurrency;
	s.paused = gw_paused;
	copy_setting(s.task_schemas, "task_schemas", gw_task_schemas ? gw_task_schemas : "");
	copy_setting(s.forbidden_flags, "forbidden_flags", gw_forbidden_flags ? gw_forbidden_flags : "");

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	gw_shared->global = s;
	gw_shared->global_gen++;
	for (int i = 0; i < gw_shared->nprocs; i++)
	{
		GwProc	   *p = &gw_shared->procs[i];

		if (p->in_use && p->kind == GW_KIND_SUPERVISOR)
			SetLatch(p->latch);
	}
	LWLockRelease(gw_shared->lock);
}

/* gw_server_settings_gen: changes whenever the server's values do. */
uint32
gw_server_settings_gen(void)
{
	uint32		gen;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	gen = gw_shared->global_gen;
	LWLockRelease(gw_shared->lock);
	return gen;
}

/* Applies "name=value" of a database's settings to *s if it is one of ours. */
static void
apply_item(GwDbSettings *s, const char *item)
{
	const char *value = strchr(item, '=');
	size_t		len;
	int			n;
	bool		b;

	if (value == NULL || strncmp(item, "graphile_worker.", 16) != 0)
		return;
	len = value - item;
	value++;
	if (len == strlen("graphile_worker.concurrency") &&
		strncmp(item, "graphile_worker.concurrency", len) == 0)
	{
		if (parse_int(value, &n, 0, NULL) && n >= 0 && n <= GW_MAX_WORKERS)
			s->concurrency = n;
	}
	else if (len == strlen("graphile_worker.paused") &&
			 strncmp(item, "graphile_worker.paused", len) == 0)
	{
		if (parse_bool(value, &b))
			s->paused = b;
	}
	else if (len == strlen("graphile_worker.task_schemas") &&
			 strncmp(item, "graphile_worker.task_schemas", len) == 0)
		copy_setting(s->task_schemas, "task_schemas", value);
	else if (len == strlen("graphile_worker.forbidden_flags") &&
			 strncmp(item, "graphile_worker.forbidden_flags", len) == 0)
		copy_setting(s->forbidden_flags, "forbidden_flags", value);
}

/*
 * gw_refresh_db_settings computes dboid's effective settings (the server's,
 * overridden by the database's own) and publishes them if they changed, in
 * which case it returns true.  The caller is in a transaction.
 */
bool
gw_refresh_db_settings(Oid dboid)
{
	GwDbSettings s;
	GwDatabase *db;
	Relation	rel;
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		changed = false;

	LWLockAcquire(gw_shared->lock, LW_SHARED);
	s = gw_shared->global;
	LWLockRelease(gw_shared->lock);

	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase,
				BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(dboid));
	ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole,
				BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(InvalidOid));
	scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true, NULL, 2, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_db_role_setting_setconfig,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &n);
			for (int i = 0; i < n; i++)
				if (!nulls[i])
					apply_item(&s, TextDatumGetCString(elems[i]));
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(dboid, false);
	if (db != NULL && (db->settings_gen == 0 ||
					   memcmp(&db->settings, &s, sizeof(s)) != 0))
	{
		db->settings = s;
		db->settings_gen++;
		changed = true;
		/* its job workers, and the launcher's sharing of slots */
		for (int i = 0; i < gw_shared->nprocs; i++)
		{
			GwProc	   *p = &gw_shared->procs[i];

			if (p->in_use && p->kind == GW_KIND_WORKER && p->dboid == dboid)
				SetLatch(p->latch);
		}
		if (gw_shared->launcher_latch)
			SetLatch(gw_shared->launcher_latch);
	}
	LWLockRelease(gw_shared->lock);
	return changed;
}

/*
 * gw_db_settings copies dboid's effective settings into *out and returns
 * their generation (0: not published yet, *out then has the server's).
 */
uint32
gw_db_settings(Oid dboid, GwDbSettings *out)
{
	GwDatabase *db;
	uint32		gen = 0;

	LWLockAcquire(gw_shared->lock, LW_EXCLUSIVE);
	db = gw_find_database(dboid, false);
	if (db != NULL && db->settings_gen != 0)
	{
		*out = db->settings;
		gen = db->settings_gen;
	}
	else
		*out = gw_shared->global;
	LWLockRelease(gw_shared->lock);
	return gen;
}
