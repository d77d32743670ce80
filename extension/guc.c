/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  The graphile_worker.* settings.  All are reloadable and, but for
 *	  job_timeout and notify_on_add, superuser-only; each process reads them
 *	  after a reload.  concurrency, paused, task_schemas and forbidden_flags
 *	  may also be set per database (ALTER DATABASE ... SET, hence
 *	  PGC_SUSET): db_settings.c says how our processes see those.
 *	  job_timeout is PGC_USERSET so that the owner of a handler function can
 *	  give its task its own limit with a SET clause (see handler.c);
 *	  notify_on_add only changes how soon external workers hear of a
 *	  session's jobs, so any session may set it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "pgtime.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "compat.h"
#include "graphile_worker.h"

char	   *gw_databases = NULL;
int			gw_concurrency = 4;
int			gw_poll_interval_ms = 2000;
char	   *gw_task_schemas = NULL;
char	   *gw_forbidden_flags = NULL;
bool		gw_paused = false;
int			gw_job_timeout_ms = 0;
int			gw_cancel_grace_ms = 5000;
int			gw_sweep_interval_ms = 60000;
bool		gw_notify_on_add = true;
bool		gw_synchronous_commit = true;
char	   *gw_cron_timezone = NULL;

/* Visibility: history, failure log, cleanup (see the README's Settings) */
int			gw_history = GW_HISTORY_FAILURES;
int			gw_history_retention_min = 7 * 24 * 60;
bool		gw_history_payloads = false;
int			gw_log_failures = GW_LOG_FAILURES_PERMANENT;
int			gw_cleanup_interval_s = 0;
int			gw_cleanup_permanently_failed_after_min = -1;

static const struct config_enum_entry history_options[] = {
	{"off", GW_HISTORY_OFF, false},
	{"failures", GW_HISTORY_FAILURES, false},
	{"all", GW_HISTORY_ALL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry log_failures_options[] = {
	{"off", GW_LOG_FAILURES_OFF, false},
	{"permanent", GW_LOG_FAILURES_PERMANENT, false},
	{"all", GW_LOG_FAILURES_ALL, false},
	{NULL, 0, false}
};

/*
 * check_name_list accepts a comma-separated list of identifiers, as
 * search_path does.
 */
static bool
check_name_list(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names = NIL;
	bool		ok = SplitIdentifierString(raw, ',', &names);

	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	list_free(names);
	pfree(raw);
	return ok;
}

/* check_time_zone accepts a time zone name the server knows. */
static bool
check_time_zone(char **newval, void **extra, GucSource source)
{
	pg_tz	   *tz = pg_tzset(*newval);

	if (tz == NULL || !pg_tz_acceptable(tz))
	{
		GUC_check_errdetail("Time zone \"%s\" is not recognized.", *newval);
		return false;
	}
	return true;
}

/*
 * gw_database_allowed says whether graphile_worker.databases lets dbname
 * have workers ('' allows every database).
 */
bool
gw_database_allowed(const char *dbname)
{
	char	   *raw;
	List	   *names = NIL;
	ListCell   *lc;
	bool		found = false;

	if (gw_databases == NULL || gw_databases[0] == '\0')
		return true;
	raw = pstrdup(gw_databases);
	if (SplitIdentifierString(raw, ',', &names))
	{
		foreach(lc, names)
		{
			if (strcmp((char *) lfirst(lc), dbname) == 0)
			{
				found = true;
				break;
			}
		}
	}
	list_free(names);
	pfree(raw);
	return found;
}

/*
 * gw_define_settings defines every graphile_worker.* setting and reserves
 * the prefix.
 */
void
gw_define_settings(void)
{
	DefineCustomStringVariable("graphile_worker.databases",
							   "Databases whose jobs are run (comma-separated names).",
							   "Empty means every database that has the extension.",
							   &gw_databases,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_LIST_INPUT,
							   check_name_list, NULL, NULL);

	DefineCustomIntVariable("graphile_worker.concurrency",
							"Job workers per database.",
							"Each is a background worker process; size max_worker_processes for them.",
							&gw_concurrency,
							4, 0, 256,
							PGC_SUSET,
							GUC_SUPERUSER_ONLY,
							NULL, NULL, NULL);

	DefineCustomIntVariable("graphile_worker.poll_interval",
							"How often idle workers look for jobs added without a wake-up.",
							"Jobs added with add_job wake workers at commit; this only catches rows written by other means.",
							&gw_poll_interval_ms,
							2000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_SUPERUSER_ONLY | GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("graphile_worker.task_schemas",
							   "Schemas searched, in order, for task handler functions.",
							   NULL,
							   &gw_task_schemas,
							   "graphile_worker_tasks",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_LIST_INPUT,
							   check_name_list, NULL, NULL);

	DefineCustomStringVariable("graphile_worker.forbidden_flags",
							   "Jobs carrying any of these flags are not claimed (comma-separated).",
							   NULL,
							   &gw_forbidden_flags,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_LIST_INPUT,
							   check_name_list, NULL, NULL);

	DefineCustomBoolVariable("graphile_worker.paused",
							 "Stops claiming new jobs; running jobs finish.",
							 NULL,
							 &gw_paused,
							 false,
							 PGC_SUSET,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("graphile_worker.job_timeout",
							"Cancels a job handler that runs longer than this; 0 means no limit.",
							"A handler function's own SET graphile_worker.job_timeout overrides it for that task.",
							&gw_job_timeout_ms,
							0, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("graphile_worker.cancel_grace",
							"How long a cancelled job handler may go on before its worker ends it.",
							"A handler that catches the cancel of a job timeout, a shutdown or pg_terminate_backend is ended this long after it, by exiting the worker.",
							&gw_cancel_grace_ms,
							5000, 0, 3600 * 1000,
							PGC_SIGHUP,
							GUC_SUPERUSER_ONLY | GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("graphile_worker.notify_on_add",
							 "Sends Graphile Worker's jobs:insert notification when jobs are added.",
							 "Only Node and Rust workers listen for it; our workers are woken at commit.",
							 &gw_notify_on_add,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("graphile_worker.synchronous_commit",
							 "Off makes job transactions (handler writes and completions) commit asynchronously.",
							 "On leaves them at the server's synchronous_commit; claims always use the server's setting.",
							 &gw_synchronous_commit,
							 true,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("graphile_worker.cron_timezone",
							   "Time zone of crontab entries without a tz option.",
							   NULL,
							   &gw_cron_timezone,
							   "UTC",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   check_time_zone, NULL, NULL);

	DefineCustomIntVariable("graphile_worker.sweep_interval",
							"How often each supervisor releases locks of dead workers and heartbeats.",
							"Crash recovery also runs at once when a worker dies or the server restarts.",
							&gw_sweep_interval_ms,
							60000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_SUPERUSER_ONLY | GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* visibility */
	DefineCustomEnumVariable("graphile_worker.history",
							 "Which finished job attempts get a row in graphile_worker.job_history.",
							 "off, failures (every attempt that did not complete) or all.",
							 &gw_history,
							 GW_HISTORY_FAILURES, history_options,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("graphile_worker.history_retention",
							"How long job history is kept; whole partitions are dropped once older.",
							NULL,
							&gw_history_retention_min,
							7 * 24 * 60, 1, INT_MAX,
							PGC_SIGHUP,
							GUC_SUPERUSER_ONLY | GUC_UNIT_MIN,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("graphile_worker.history_payloads",
							 "Job history rows keep the job's payload.",
							 NULL,
							 &gw_history_payloads,
							 false,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("graphile_worker.log_failures",
							 "Which failed job attempts are written to the server log.",
							 "off, permanent (those after which the job does not run again) or all.",
							 &gw_log_failures,
							 GW_LOG_FAILURES_PERMANENT, log_failures_options,
							 PGC_SIGHUP,
							 GUC_SUPERUSER_ONLY,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("graphile_worker.cleanup_interval",
							"How often each supervisor runs graphile_worker.cleanup(); 0 means never.",
							NULL,
							&gw_cleanup_interval_s,
							0, 0, 30 * 24 * 3600,
							PGC_SIGHUP,
							GUC_SUPERUSER_ONLY | GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("graphile_worker.cleanup_permanently_failed_after",
							"Periodic cleanup also deletes permanently failed jobs this much older; -1 means never.",
							NULL,
							&gw_cleanup_permanently_failed_after_min,
							-1, -1, INT_MAX,
							PGC_SIGHUP,
							GUC_SUPERUSER_ONLY | GUC_UNIT_MIN,
							NULL, NULL, NULL);

	gw_reserve_guc_prefix("graphile_worker");
}
