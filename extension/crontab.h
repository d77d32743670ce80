/*-------------------------------------------------------------------------
 *
 * crontab.h
 *	  A database's crontab as the backend uses it: parsed entries with their
 *	  time zones resolved and payloads converted to JSON (crontab.c), and
 *	  the firing of due entries (cron_fire.c).  The grammar and schedule
 *	  arithmetic are the backend-free core/cron.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_CRONTAB_H
#define GW_CRONTAB_H

#include "datatype/timestamp.h"
#include "pgtime.h"

#include "cron.h"

/* A crontab ready for use; everything in the memory context it was built in. */
typedef struct GwCrontab
{
	int			nentries;
	GwCronEntry *entries;
	pg_tz	  **zones;			/* per entry: its tz option or the default */
	char	  **payloads;		/* per entry: strict JSON text, or NULL */
} GwCrontab;

/* crontab.c */
extern GwCrontab *gw_crontab_parse(const char *text);
extern GwCrontab *gw_crontab_load(void);
extern int32_t gw_crontab_offset(int64_t utc_seconds, void *arg);
extern int64 gw_cron_minute_of(TimestampTz t);
extern TimestampTz gw_cron_minute_start(int64 minute);

/* cron_fire.c */
extern void gw_cron_register_ids(GwCrontab *crontab, TimestampTz since);
extern int64 gw_cron_fire(GwCrontab *crontab, int64 minute, bool backfilled,
						  const bool *eligible, bool *deferred);
extern int64 gw_cron_backfill(TimestampTz start);

#endif							/* GW_CRONTAB_H */
