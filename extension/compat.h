/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where PostgreSQL version differences (13 to 18) are
 *	  bridged.  Code elsewhere uses the names defined here and never tests
 *	  PG_VERSION_NUM itself.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_COMPAT_H
#define GW_COMPAT_H

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"

/*
 * Before 14 the OIDs of the catalogs' indexes (such as
 * DbRoleSettingDatidRolidIndexId) were declared in catalog/indexing.h, not
 * in the catalogs' own headers.
 */
#if PG_VERSION_NUM < 140000
#include "catalog/indexing.h"
#endif

/*
 * PostgreSQL 14 added HASH_STRINGS, which hash_create now requires for
 * string keys; before it, string keys were the default (no flag).
 */
#if PG_VERSION_NUM < 140000
#define HASH_STRINGS 0
#endif

/*
 * PostgreSQL 15 added shmem_request_hook: shared memory must be requested
 * from it, not from _PG_init.
 */
#define GW_HAVE_SHMEM_REQUEST_HOOK (PG_VERSION_NUM >= 150000)

/* Invalid (half-dropped) databases are marked so since 13.12, 14.9, 15.4. */
#ifndef DATCONNLIMIT_INVALID_DB
#define DATCONNLIMIT_INVALID_DB -2
#endif

/* PostgreSQL 15 renamed EmitWarningsOnPlaceholders and made it reserve. */
#if PG_VERSION_NUM >= 150000
#define gw_reserve_guc_prefix(prefix) MarkGUCPrefixReserved(prefix)
#else
#define gw_reserve_guc_prefix(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/* PostgreSQL 15 added InitMaterializedSRF; before it, set up by hand. */
#if PG_VERSION_NUM >= 150000
#define gw_init_materialized_srf(fcinfo) InitMaterializedSRF(fcinfo, 0)
#else
static inline void
gw_init_materialized_srf(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext oldcxt;
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(oldcxt);
}
#endif

/*
 * PostgreSQL 16 replaced pg_proc_aclcheck with object_aclcheck, which takes
 * the catalog's OID (18 no longer includes pg_proc.h with utils/acl.h).
 */
#if PG_VERSION_NUM >= 160000
#include "catalog/pg_proc.h"
#define gw_proc_aclcheck(fnoid, roleid, mode) \
	object_aclcheck(ProcedureRelationId, fnoid, roleid, mode)
#else
#define gw_proc_aclcheck(fnoid, roleid, mode) pg_proc_aclcheck(fnoid, roleid, mode)
#endif

/* PostgreSQL 16 replaced the per-class owner and ACL checks. */
#if PG_VERSION_NUM >= 160000
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_tablespace.h"
#define gw_database_ownercheck(dboid, roleid) \
	object_ownercheck(DatabaseRelationId, dboid, roleid)
#define gw_extension_ownercheck(extoid, roleid) \
	object_ownercheck(ExtensionRelationId, extoid, roleid)
#define gw_tablespace_aclcheck(spcoid, roleid, mode) \
	object_aclcheck(TableSpaceRelationId, spcoid, roleid, mode)
#else
#define gw_database_ownercheck(dboid, roleid) pg_database_ownercheck(dboid, roleid)
#define gw_extension_ownercheck(extoid, roleid) pg_extension_ownercheck(extoid, roleid)
#define gw_tablespace_aclcheck(spcoid, roleid, mode) \
	pg_tablespace_aclcheck(spcoid, roleid, mode)
#endif

/* PostgreSQL 14 added readOnlyTree to ProcessUtility_hook. */
#if PG_VERSION_NUM >= 140000
#define GW_UTILITY_PARAMS \
	PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define GW_UTILITY_ARGS \
	pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc
#else
#define GW_UTILITY_PARAMS \
	PlannedStmt *pstmt, const char *queryString, \
	ProcessUtilityContext context, ParamListInfo params, \
	QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc
#define GW_UTILITY_ARGS \
	pstmt, queryString, context, params, queryEnv, dest, qc
#endif

#endif							/* GW_COMPAT_H */
