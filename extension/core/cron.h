/*-------------------------------------------------------------------------
 *
 * cron.h
 *	  The cron core: crontab text grammar (cron_parse.c), JSON5 payloads
 *	  (cron_json5.c) and schedule arithmetic (cron_schedule.c).
 *
 * Backend-free (C99 and libc only, no allocation), so it is unit-tested
 * with cmocka (tests/unit).  The supervisor parses the crontab with
 * gw_cron_parse, converts payloads with gw_cron_json5_to_json, and asks
 * gw_cron_due / gw_cron_next_fire which minutes to schedule, supplying the
 * time zone as a GwCronOffsetFn.
 *
 * Columns in errors count bytes from 1 in the original line, before
 * trimming.
 *
 *-------------------------------------------------------------------------
 */
#ifndef GW_CRON_H
#define GW_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest task identifier, queue name and time zone name, in bytes */
#define GW_CRON_TASK_MAXLEN		128
#define GW_CRON_QUEUE_MAXLEN	128
#define GW_CRON_TZ_MAXLEN		64

/* Longest fill option accepted: 36600 days, about 100 years */
#define GW_CRON_FILL_MAX_SECONDS	((int64_t) 36600 * 86400)

/* Nesting depth limit of payloads (objects and arrays) */
#define GW_CRON_JSON_MAX_DEPTH	100

/*
 * Output size that is always enough for gw_cron_json5_to_json: a raw
 * control byte inside a string becomes a six-byte \u00XX escape, every other
 * conversion at most triples its input (an unquoted one-letter key a
 * becomes "a").
 */
#define GW_CRON_JSON_OUTCAP(inlen)	(6 * (size_t) (inlen) + 1)

/* Buffer size that always holds gw_cron_pattern_format's text */
#define GW_CRON_PATTERN_TEXT_LEN	320

/* How far gw_cron_next_fire looks ahead, in days (ten years) */
#define GW_CRON_SEARCH_DAYS		3660

/*
 * The five time fields as sets.  wdays never has bit 7: a 7 in the text is
 * stored as Sunday (bit 0).
 */
typedef struct GwCronPattern
{
	uint64_t	minutes;		/* bit m: minute m (0..59) */
	uint32_t	hours;			/* bit h: hour h (0..23) */
	uint32_t	mdays;			/* bit d: day of month d (1..31) */
	uint16_t	months;			/* bit m: month m (1..12) */
	uint8_t		wdays;			/* bit w: weekday w, Sunday = 0 */
} GwCronPattern;

/*
 * One crontab line.  The strings point into the text buffer given to
 * gw_cron_parse, which therefore must outlive the entries.
 */
typedef struct GwCronEntry
{
	GwCronPattern pattern;
	int			line;			/* 1-based line number in the text */
	const char *task;			/* task identifier */
	const char *id;				/* id option, or task when not given */
	int64_t		fill_seconds;	/* backfill window; 0 = no backfill */
	int			max_attempts;	/* 1..32767; 0 = not given */
	const char *queue;			/* NULL = not given */
	const char *job_key;		/* NULL = not given */
	int			job_key_column; /* 1-based column of the jobKey value */
	const char *job_key_mode;	/* "replace" (the default when job_key is
								 * given) or "preserve_run_at"; NULL when
								 * neither jobKey nor jobKeyMode is given */
	bool		has_priority;
	int			priority;		/* -32768..32767, valid if has_priority */
	const char *tz;				/* time zone name; NULL = database default */
	int			tz_column;		/* 1-based column of the tz value */
	const char *payload;		/* JSON5 object as written; NULL = none */
	int			payload_column; /* 1-based column of its "{" */
} GwCronEntry;

typedef struct GwCronError
{
	int			line;			/* 1-based */
	int			column;			/* 1-based, in bytes */
	char		message[256];	/* lower case, no trailing period */
} GwCronError;

/*
 * Offset from UTC, in seconds east, in effect at the given instant (seconds
 * since 1970-01-01 00:00 UTC).  Offsets are assumed to lie within +-26 hours
 * and to change at most once within any 26 hours.
 */
typedef int32_t (*GwCronOffsetFn) (int64_t utc_seconds, void *arg);

/* Character classes of the grammar (ASCII only, locale-independent) */
static inline bool
gw_cron_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool
gw_cron_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The value of hexadecimal digit c, or -1 */
static inline int
gw_cron_hex_value(char c)
{
	if (gw_cron_is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * cron_parse.c
 *
 * gw_cron_parse parses the whole text in place (lines are split and option
 * values decoded inside it, even when it fails) into at most max_entries
 * entries; it returns their number, or -1 with *err set to the first error
 * in text order.  gw_cron_parse_lenient does the same but skips each line
 * that fails, calling report(err, arg) for it, and returns the number of
 * entries of the other lines: what a crontab that was stored without
 * set_crontab's checks still has to run.  gw_cron_max_entries bounds the
 * number of entries (it counts lines).  gw_cron_pattern_format writes
 * canonical field text such as "0,30 9-17 * * 1-5".
 */
typedef void (*GwCronReportFn) (const GwCronError *err, void *arg);

extern int	gw_cron_max_entries(const char *text);
extern int	gw_cron_parse(char *text, GwCronEntry *entries, int max_entries,
						  GwCronError *err);
extern int	gw_cron_parse_lenient(char *text, GwCronEntry *entries,
								  int max_entries, GwCronReportFn report,
								  void *arg);
extern void gw_cron_pattern_format(const GwCronPattern *p, char *buf,
								   size_t len);

/*
 * cron_json5.c
 *
 * gw_cron_json5_to_json converts a JSON5 object to strict JSON (see
 * GW_CRON_JSON_OUTCAP; out may be NULL to validate only), with err->column
 * counted from the start of `in`.
 */
extern bool gw_cron_json5_to_json(const char *in, char *out, size_t outcap,
								  GwCronError *err);

/*
 * cron_schedule.c
 *
 * Instants are UTC minutes since 1970-01-01 00:00 UTC; local minutes count
 * from 1970-01-01 00:00 of the local calendar.  An entry fires once for
 * each local minute that matches, at the first UTC minute whose local
 * high-water mark (the highest local minute shown so far) reaches it.
 * gw_cron_next_fire returns the first UTC minute after the given one at
 * which gw_cron_due holds, or -1 if none within GW_CRON_SEARCH_DAYS.
 */
extern bool gw_cron_matches(const GwCronPattern *p, int minute, int hour,
							int mday, int month, int wday);
extern int64_t gw_cron_local_high_water(int64_t utc_minute, GwCronOffsetFn fn,
										void *arg);
extern bool gw_cron_due(const GwCronPattern *p, int64_t utc_minute,
						GwCronOffsetFn fn, void *arg);
extern int64_t gw_cron_next_fire(const GwCronPattern *p,
								 int64_t after_utc_minute,
								 GwCronOffsetFn fn, void *arg);

#endif							/* GW_CRON_H */
