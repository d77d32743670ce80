/*-------------------------------------------------------------------------
 *
 * adopt.c
 *	  CREATE EXTENSION graphile_worker in a database where graphile-worker
 *	  0.18 (Node) already created schema graphile_worker: the extension takes
 *	  that schema's queue over, every job, queue, task, known crontab and
 *	  sequence position, instead of failing with "schema graphile_worker
 *	  already exists".
 *
 * The install script cannot skip its own CREATE SCHEMA, and released
 * scripts are never edited, so the utility hook (utility_hook.c) calls
 *
 *	gw_adopt_prepare before the command runs: if the extension does not
 *	  exist yet and a schema graphile_worker that no extension owns does,
 *	  it locks that schema's Graphile Worker tables (Node workers wait from
 *	  here on) and renames it to graphile_worker_adopting_<oid>, so that
 *	  the scripts create the extension's schema as on any database;
 *	gw_adopt_finish after it: the update script's
 *	  graphile_worker._adopt_node_schema checks that the renamed schema is
 *	  exactly migration 20 of graphile-worker, moves its rows into the
 *	  extension's tables and drops it.
 *
 * Any error (a schema of another migration level or with changes, a
 * version of the extension too old to adopt) aborts CREATE EXTENSION,
 * which undoes the rename too: the schema is left as it was.  When Node
 * workers resume, their statements find the extension's tables by name.
 *
 * Runs in the backend that runs CREATE EXTENSION, as a superuser.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/schemacmds.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "graphile_worker.h"

/* The tables of graphile-worker's schema, locked before anything else. */
static const char *const node_tables[] = {
	"_private_jobs", "_private_job_queues", "_private_tasks",
	"_private_known_crontabs", "migrations"
};

/*
 * gw_adopt_prepare returns the oid of the schema graphile_worker it set
 * aside for stmt, or InvalidOid when stmt has nothing to adopt: another
 * extension, an extension that exists already, no such schema, a schema
 * that belongs to an extension, a role that may not create the extension
 * (PostgreSQL refuses it then), or pg_upgrade.
 */
Oid
gw_adopt_prepare(CreateExtensionStmt *stmt)
{
	Oid			nspoid;
	char		newname[NAMEDATALEN];

	if (strcmp(stmt->extname, GW_EXTENSION_NAME) != 0 || IsBinaryUpgrade ||
		!superuser() ||
		OidIsValid(get_extension_oid(GW_EXTENSION_NAME, true)))
		return InvalidOid;
	nspoid = get_namespace_oid(GW_SCHEMA, true);
	if (!OidIsValid(nspoid) ||
		OidIsValid(getExtensionOfObject(NamespaceRelationId, nspoid)))
		return InvalidOid;

	/* no Node statement may write to the queue from here to commit */
	for (int i = 0; i < lengthof(node_tables); i++)
	{
		Oid			relid = get_relname_relid(node_tables[i], nspoid);

		if (OidIsValid(relid))
			LockRelationOid(relid, AccessExclusiveLock);
	}

	snprintf(newname, sizeof(newname), "graphile_worker_adopting_%u", nspoid);
	RenameSchema(GW_SCHEMA, newname);
	CommandCounterIncrement();
	return nspoid;
}

/*
 * gw_adopt_finish takes the queue of the schema gw_adopt_prepare set aside
 * into the extension that CREATE EXTENSION has just created, or raises an
 * error if the version created cannot adopt.
 */
void
gw_adopt_finish(Oid nspoid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	bool		isnull;
	bool		can_adopt;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT pg_catalog.to_regprocedure("
					"'graphile_worker._adopt_node_schema(pg_catalog.oid)') IS NOT NULL",
					false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look for graphile_worker._adopt_node_schema");
	can_adopt = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	if (!can_adopt)
	{
		char	   *version = NULL;

		if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension"
						" WHERE extname OPERATOR(pg_catalog.=) 'graphile_worker'",
						false, 1) == SPI_OK_SELECT && SPI_processed == 1)
			version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("schema \"%s\" already exists", GW_SCHEMA),
				 errdetail("Version %s of extension \"%s\" cannot adopt a schema that graphile-worker created; version 0.2.0 and later can.",
						   version ? version : "?", GW_EXTENSION_NAME),
				 errhint("Create the extension without a VERSION clause.")));
	}

	args[0] = ObjectIdGetDatum(nspoid);
	if (SPI_execute_with_args("SELECT graphile_worker._adopt_node_schema($1)",
							  1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not adopt the graphile-worker schema");
	SPI_finish();
}
