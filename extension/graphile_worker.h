/*-------------------------------------------------------------------------
 *
 * graphile_worker.h
 *	  Declarations shared between the files of graphile_worker: settings,
 *	  the shared-memory registry of processes and databases, wake-ups, and
 *	  the entry points of the background workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GRAPHILE_WORKER_H
#define GRAPHILE_WORKER_H

#include "postgres.h"

#include "access/attnum.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "postmaster/bgworker.h"

#include "worker_id.h"

#define GW_EXTENSION_NAME	"graphile_worker"
#define GW_SCHEMA			"graphile_worker"

/* Databases that can have workers at the same time. */
#define GW_MAX_DATABASES	64
/* Job workers per database at most (graphile_worker.concurrency). */
#define GW_MAX_WORKERS		256
/* Future run_at values remembered per database (see wakeup.c). */
#define GW_MAX_TIMERS		64
/* Bytes of a task identifier kept for display. */
#define GW_TASK_DISPLAY_LEN	64

/* ---- settings (guc.c) ---- */
extern char *gw_databases;
extern int	gw_concurrency;
extern int	gw_poll_interval_ms;
extern char *gw_task_schemas;
extern char *gw_forbidden_flags;
extern bool gw_paused;
extern int	gw_job_timeout_ms;
extern int	gw_cancel_grace_ms;
extern int	gw_sweep_interval_ms;
extern bool gw_notify_on_add;
extern bool gw_synchronous_commit;
extern char *gw_cron_timezone;

/* graphile_worker.history and graphile_worker.log_failures */
typedef enum GwHistoryMode
{
	GW_HISTORY_OFF,
	GW_HISTORY_FAILURES,
	GW_HISTORY_ALL
} GwHistoryMode;

typedef enum GwLogFailures
{
	GW_LOG_FAILURES_OFF,
	GW_LOG_FAILURES_PERMANENT,
	GW_LOG_FAILURES_ALL
} GwLogFailures;

extern int	gw_history;
extern int	gw_history_retention_min;
extern bool gw_history_payloads;
extern int	gw_log_failures;
extern int	gw_cleanup_interval_s;
extern int	gw_cleanup_permanently_failed_after_min;

extern void gw_define_settings(void);
extern bool gw_database_allowed(const char *dbname);

/* ---- shared state (shmem.c) ---- */
typedef enum GwProcKind
{
	GW_KIND_LAUNCHER,
	GW_KIND_SUPERVISOR,
	GW_KIND_WORKER
} GwProcKind;

/*
 * Queues of limited concurrency (set_queue_concurrency) of which one claim
 * takes jobs at most: one job of each (claim.c).
 */
#define GW_MAX_LIMITED		16

typedef enum GwProcState
{
	GW_STATE_STARTING,
	GW_STATE_IDLE,				/* waiting on its latch for work */
	GW_STATE_WOKEN,				/* latch set by a waker, not yet running */
	GW_STATE_BUSY,				/* claiming or running jobs */
	GW_STATE_PAUSED
} GwProcState;

/* One of our running processes. */
typedef struct GwProc
{
	bool		in_use;
	int			pid;
	Oid			dboid;
	GwProcKind	kind;
	GwProcState state;
	Latch	   *latch;
	TimestampTz started_at;
	TimestampTz state_since;
	int64		job_id;			/* 0 when no job runs */
	char		task[GW_TASK_DISPLAY_LEN];
	char		worker_id[GW_WORKER_ID_LEN];
	int			slot;			/* a job worker's slot (supervisor.c) */
	int64		cancel_job_id;	/* cancel_job asks to cancel this job */
	NameData	cancel_by;		/* the role that called cancel_job */
	bool		stop_requested;	/* exit after the current job; set by a
								 * command of ours or the supervisor, so a
								 * SIGTERM that follows gives the running
								 * job back */
	/* a job worker's queues of limited concurrency with a job in its batch */
	int			nlimited;
	int32		limited[GW_MAX_LIMITED];
} GwProc;

typedef enum GwDbState
{
	GW_DB_UNKNOWN,				/* not probed yet, or to be probed again */
	GW_DB_STARTING,				/* supervisor registered */
	GW_DB_RUNNING,				/* supervisor found the extension */
	GW_DB_NO_EXTENSION			/* supervisor found no extension and left */
} GwDbState;

/* Longest task_schemas or forbidden_flags value a database may use. */
#define GW_SETTING_LEN		1024

/*
 * The settings a database may give itself (ALTER DATABASE ... SET, see
 * db_settings.c); the others are the server's.
 */
typedef struct GwDbSettings
{
	int			concurrency;
	bool		paused;
	char		task_schemas[GW_SETTING_LEN];
	char		forbidden_flags[GW_SETTING_LEN];
} GwDbSettings;

/* A database the launcher knows about. */
typedef struct GwDatabase
{
	Oid			dboid;			/* InvalidOid: free entry */
	GwDbState	state;
	bool		recheck;		/* CREATE EXTENSION ran: probe again */
	int			pending_wakeups;	/* wake-ups no idle worker took yet */
	int			blockers;		/* backends that need it alone now */
	int			ntimers;
	bool		timers_overflowed;	/* some future run_at was not kept */
	TimestampTz timers[GW_MAX_TIMERS];

	/*
	 * Generation of each job worker slot of the database's supervisor: a
	 * worker started for slot i with generation g runs only while
	 * slot_gen[i] is g (see supervisor.c).
	 */
	uint32		slot_gen[GW_MAX_WORKERS];

	/* its settings, published by its supervisor for its job workers */
	GwDbSettings settings;
	uint32		settings_gen;	/* 0: not published yet */
	int			allowed;		/* its share of worker slots (launcher.c) */
} GwDatabase;

typedef struct GwShared
{
	LWLock	   *lock;
	Latch	   *launcher_latch;
	/* the server's values of GwDbSettings, published by the launcher */
	GwDbSettings global;
	uint32		global_gen;		/* 0: not published yet */
	GwDatabase	databases[GW_MAX_DATABASES];
	int			nprocs;
	GwProc		procs[FLEXIBLE_ARRAY_MEMBER];
} GwShared;

extern GwShared *gw_shared;
extern GwProc *gw_my_proc;

extern void gw_shmem_install_hooks(void);
extern GwProc *gw_register_proc(GwProcKind kind, Oid dboid);
extern GwProc *gw_register_job_worker(Oid dboid, int slot, uint32 gen,
									  const char *worker_id);
extern void gw_set_state(GwProcState state);
extern void gw_set_job(int64 job_id, const char *task);
extern GwDatabase *gw_find_database(Oid dboid, bool create);
extern bool gw_supervisor_running(Oid dboid);
extern bool gw_supervisor_running_locked(Oid dboid);
extern bool gw_worker_slot_wanted(Oid dboid, int slot, uint32 gen);
extern bool gw_worker_slot_current(Oid dboid, int slot, uint32 gen);
extern bool gw_worker_slot_busy(Oid dboid, int slot);

/* ---- outcomes, statistics and waiters (stats.c, wait_job.c) ---- */

/* What became of a finished attempt (job_history.outcome). */
typedef enum GwOutcome
{
	GW_OUTCOME_NONE,
	GW_OUTCOME_COMPLETED,
	GW_OUTCOME_FAILED,
	GW_OUTCOME_PERMANENTLY_FAILED,
	GW_OUTCOME_CANCELLED,
	GW_OUTCOME_TIMED_OUT,
	GW_OUTCOME_WORKER_DIED,
	GW_NUM_OUTCOMES
} GwOutcome;

extern const char *const gw_outcome_names[GW_NUM_OUTCOMES];
extern GwOutcome gw_outcome_from_name(const char *name);

/* A finished attempt, as a job worker reports it after its commit. */
typedef struct GwFinished
{
	int64		job_id;
	const char *task;
	GwOutcome	outcome;
	bool		final;			/* the job will not run again */
	int64		run_time_us;
} GwFinished;

extern void gw_stats_shmem_request(void);
extern void gw_stats_shmem_startup(void);
extern void gw_report_finished(Oid dboid, const GwFinished *finished, int n);
extern bool gw_job_has_waiter(Oid dboid, int64 job_id);
extern bool gw_any_waiters(void);

/* ---- monitor.c ---- */
extern void gw_require_view_select(const char *view);

/* ---- job_access.c ---- */

/* Where the job functions find what they may hide, per call site. */
typedef struct GwJobAccess
{
	Oid			jobs_relid;		/* graphile_worker._private_jobs */
	Oid			view_relid;		/* graphile_worker.jobs */
	AttrNumber	payload_attnum; /* in _private_jobs */
	AttrNumber	view_last_error_attnum; /* in jobs */
	int			payload_index;	/* 0-based, in the returned row type */
	int			last_error_index;
	/* kept while no catalog change may have touched them (job_access.c) */
	uint64		epoch;
	Oid			owner;			/* of _private_jobs */
	Oid			hide_for;		/* the caller "hide" was computed for */
	int			hide;
} GwJobAccess;

/* The caller of a job function, while it runs as the queue's owner. */
typedef struct GwCaller
{
	Oid			userid;
	int			sec_context;
	bool		owner;			/* the caller owns the queue: nothing switched */
} GwCaller;

#define GW_HIDE_PAYLOAD		0x01
#define GW_HIDE_LAST_ERROR	0x02

extern void gw_job_access_init(GwJobAccess *access, TupleDesc rowdesc);
extern void gw_become_queue_owner(GwJobAccess *access, GwCaller *caller);
extern void gw_restore_caller(const GwCaller *caller);
extern int	gw_hidden_columns(GwJobAccess *access, const GwCaller *caller);
extern void gw_hide_in_nulls(const GwJobAccess *access, int hide, bool *nulls);
extern Datum gw_hide_in_row(const GwJobAccess *access, int hide, Datum row,
							TupleDesc desc);

/* ---- utility_hook.c ---- */
extern void gw_install_utility_hook(void);

/* ---- adopting a graphile-worker 0.18 schema (adopt.c) ---- */
struct CreateExtensionStmt;
extern Oid	gw_adopt_prepare(struct CreateExtensionStmt *stmt);
extern void gw_adopt_finish(Oid nspoid);

/* ---- wake-ups (wakeup.c) ---- */
extern void gw_wake_at_commit(int due, TimestampTz first_future, int future);
extern void gw_wake_workers(Oid dboid, int count);
extern void gw_add_timer(Oid dboid, TimestampTz at);
extern TimestampTz gw_pop_due_timers(Oid dboid, TimestampTz now, int *ndue,
									 bool *overflowed);
extern void gw_refill_timers(Oid dboid, const TimestampTz *times, int ntimes,
							 bool complete);
extern bool gw_consume_pending_or_idle(void);

/* ---- per-database settings (db_settings.c) ---- */
extern void gw_publish_server_settings(void);
extern uint32 gw_server_settings_gen(void);
extern bool gw_refresh_db_settings(Oid dboid);
extern uint32 gw_db_settings(Oid dboid, GwDbSettings *out);

/* ---- starting our background workers (start_worker.c) ---- */
extern bool gw_start_worker(const char *function, const char *type,
							const char *name, Oid dboid, const void *extra,
							Size extra_len, BackgroundWorkerHandle **handle);

/* ---- transactions and kept plans (xact.c) ---- */
extern void gw_xact_begin(const char *activity);
extern void gw_xact_commit(void);
extern void gw_xact_abort(MemoryContext fallback);
extern void gw_spi_connect(void);
extern SPIPlanPtr gw_prepare_once(SPIPlanPtr *plan, const char *sql, int nargs,
								  Oid *argtypes);

#endif							/* GRAPHILE_WORKER_H */
