/*-------------------------------------------------------------------------
 *
 * graphile_worker.c
 *	  Module entry point: _PG_init defines the graphile_worker.* settings.
 *
 * The library must be loaded through shared_preload_libraries so that the
 * background workers can be registered in the postmaster; loaded any other
 * way (e.g. by CREATE EXTENSION alone) it only defines its settings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "compat.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init reserves the graphile_worker.* prefix, so a misspelt setting in
 * postgresql.conf is reported instead of silently ignored.
 */
void
_PG_init(void)
{
	gw_reserve_guc_prefix("graphile_worker");
}
