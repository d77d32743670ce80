/*-------------------------------------------------------------------------
 *
 * start_worker.c
 *	  The one way our background workers are registered: the launcher at
 *	  server start (static, restarted by the postmaster), supervisors by
 *	  the launcher and job workers by their supervisor (dynamic, never
 *	  restarted by the postmaster: their starter does it).
 *
 *	  Every one of them connects to a database (the launcher to none) and
 *	  starts once recovery has finished, so never on a hot standby.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/memutils.h"

#include "graphile_worker.h"

/*
 * gw_start_worker registers the background worker that runs function (an
 * exported function of this library) as type, named name, for database
 * dboid, with extra (at most BGW_EXTRALEN bytes) in bgw_extra.  With handle
 * NULL it registers a static worker, which must happen while the library
 * is preloaded, and returns true; otherwise a dynamic one whose starter is
 * notified of its start and exit, *handle allocated in TopMemoryContext,
 * and returns false when no slot is free.
 */
bool
gw_start_worker(const char *function, const char *type, const char *name,
				Oid dboid, const void *extra, Size extra_len,
				BackgroundWorkerHandle **handle)
{
	BackgroundWorker bgw;
	MemoryContext oldcxt;
	bool		started;

	Assert(extra_len <= BGW_EXTRALEN);
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	strlcpy(bgw.bgw_library_name, GW_EXTENSION_NAME, BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(bgw.bgw_name, name, BGW_MAXLEN);
	strlcpy(bgw.bgw_type, type, BGW_MAXLEN);
	bgw.bgw_main_arg = ObjectIdGetDatum(dboid);
	if (extra_len > 0)
		memcpy(bgw.bgw_extra, extra, extra_len);

	if (handle == NULL)
	{
		bgw.bgw_restart_time = 5;
		RegisterBackgroundWorker(&bgw);
		return true;
	}
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	bgw.bgw_notify_pid = MyProcPid;
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	started = RegisterDynamicBackgroundWorker(&bgw, handle);
	MemoryContextSwitchTo(oldcxt);
	if (!started)
		*handle = NULL;
	return started;
}
