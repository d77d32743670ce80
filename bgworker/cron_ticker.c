/*-------------------------------------------------------------------------
 *
 * cron_ticker.c
 *	  The supervisor's cron ticker: when the supervisor starts it back-fills
 *	  as Node does at start-up, then fires each minute as it begins,
 *	  catching up minute by minute when late (the firing itself is
 *	  extension/cron_fire.c).
 *
 *	  Its transactions wait at most GW_CRON_LOCK_TIMEOUT for any lock (a
 *	  transaction that holds a cron entry's job_key in an add_job call
 *	  delays that firing, never the supervisor).  A deferred entry or an
 *	  error is logged and the minute retried with backoff; the supervisor
 *	  itself keeps running.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "crontab.h"
#include "graphile_worker.h"

/* lock_timeout of the ticker's transactions */
#define GW_CRON_LOCK_TIMEOUT	"250ms"

/* The ticker's state */
static bool ticker_started = false;
static int64 last_fired = 0;	/* the last minute fired */
static TimestampTz retry_at = 0;
static int	retry_ms = 0;

/*
 * begin_ticker_xact starts a transaction of the ticker that waits at most
 * GW_CRON_LOCK_TIMEOUT for any lock.
 */
static void
begin_ticker_xact(const char *activity)
{
	gw_xact_begin(activity);
	(void) set_config_option("lock_timeout", GW_CRON_LOCK_TIMEOUT,
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
}

/*
 * fire_minutes fires every minute after last_fired up to and including
 * upto, one transaction each; last_fired advances with each minute whose
 * due entries all fired.  Returns false when an entry was deferred: its
 * minute is committed without it and is to be fired again.
 */
static bool
fire_minutes(int64 upto)
{
	while (last_fired < upto)
	{
		int64		m = last_fired + 1;
		GwCrontab  *ct;
		bool		deferred = false;

		CHECK_FOR_INTERRUPTS();
		begin_ticker_xact("graphile_worker: firing crontab entries");
		ct = gw_crontab_load();
		if (ct != NULL)
			(void) gw_cron_fire(ct, m, false, NULL, &deferred);
		gw_xact_commit();
		if (deferred)
			return false;
		last_fired = m;
	}
	return true;
}

/* start_ticker back-fills as of now, in one transaction. */
static void
start_ticker(TimestampTz now)
{
	begin_ticker_xact("graphile_worker: back-filling crontab entries");
	(void) gw_cron_backfill(now);
	gw_xact_commit();
	/* the back-fill covered minutes before now; the next one starts after */
	last_fired = gw_cron_minute_of(now);
	if (gw_cron_minute_start(last_fired) == now)
		last_fired--;
	ticker_started = true;
}

/* retry_later sets when the ticker tries again: 0.2 s, 0.4 s ... 60 s. */
static TimestampTz
retry_later(void)
{
	retry_ms = Min(Max(retry_ms * 2, 200), 60000);
	retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry_ms);
	return retry_at;
}

/*
 * gw_cron_ticker is called by the supervisor's loop: it fires what is due
 * and returns when it wants to be called next.  Errors are logged, never
 * thrown: the supervisor must keep running.
 */
TimestampTz
gw_cron_ticker(TimestampTz now)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool complete = false;

	if (now < retry_at)
		return retry_at;
	PG_TRY();
	{
		if (!ticker_started)
			start_ticker(now);
		complete = fire_minutes(gw_cron_minute_of(now));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		gw_xact_abort(cxt);
		(void) retry_later();
		ereport(LOG,
				(errmsg("graphile_worker could not fire crontab entries, retrying in %d ms: %s",
						retry_ms, edata->message)));
		FreeErrorData(edata);
		pgstat_report_activity(STATE_IDLE, NULL);
		return retry_at;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	if (!complete)
		return retry_later();
	retry_ms = 0;
	return gw_cron_minute_start(last_fired + 1);
}

