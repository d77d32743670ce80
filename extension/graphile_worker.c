/*-------------------------------------------------------------------------
 *
 * graphile_worker.c
 *	  Module entry point: _PG_init defines the graphile_worker.* settings
 *	  and, when the library is preloaded, asks for shared memory and
 *	  registers the launcher.
 *
 * Loaded only by CREATE EXTENSION (not preloaded), the library defines its
 * settings and SQL-callable functions but runs no job: the queue can still
 * be shared with Node or Rust workers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "graphile_worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	gw_define_settings();
	if (!process_shared_preload_libraries_in_progress)
		return;
	gw_shmem_install_hooks();
	gw_install_utility_hook();
	/* pg_upgrade's server must not run jobs */
	if (IsBinaryUpgrade)
		return;
	(void) gw_start_worker("gw_launcher_main", "graphile_worker launcher",
						   "graphile_worker launcher", InvalidOid, NULL, 0, NULL);
}
