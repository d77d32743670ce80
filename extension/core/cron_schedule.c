/*-------------------------------------------------------------------------
 *
 * cron_schedule.c
 *	  When a crontab entry fires: the field matcher, the time-zone-aware
 *	  "due" rule and the next-fire computation.
 *
 * Entries are written in local wall-clock time.  An entry fires once for
 * each local minute that matches its pattern, at the first UTC minute at
 * which the local clock has reached or passed that minute.  With hw(t), the
 * highest local minute shown at any UTC minute up to t (the local high-water
 * mark), an entry is due at UTC minute t iff a minute m with
 * hw(t - 1) < m <= hw(t) matches.  So:
 *
 *	- with a constant offset, an entry is due when local(t) matches;
 *	- minutes skipped by a spring-forward gap fire at the first minute after
 *	  it (02:30 fires at 03:00 local time), once even when several match;
 *	- minutes repeated after a fall-back fire only on their first occurrence
 *	  (an hourly entry does not fire twice in the repeated hour).
 *
 * Instants are counted in minutes since 1970-01-01 00:00 UTC; local minutes
 * likewise from 1970-01-01 00:00 of the local calendar (proleptic Gregorian).
 * The time zone is a GwCronOffsetFn, so that the supervisor can back it with
 * PostgreSQL's time zone code and the unit tests with made-up DST rules.
 *
 * Pure C without backend dependencies, unit-tested in tests/unit; the
 * crontab grammar lives in cron_parse.c.
 *
 *-------------------------------------------------------------------------
 */
#include "cron.h"

#define MINUTES_PER_DAY		1440

/*
 * The window within which an offset is assumed to change at most once, and
 * the bound on offsets themselves: 26 hours, in minutes.
 */
#define WINDOW_MINUTES		(26 * 60)

#define ALL_MINUTES		((UINT64_C(1) << 60) - 1)
#define ALL_MDAYS		UINT32_C(0xFFFFFFFE)	/* bits 1..31 */
#define ALL_WDAYS		0x7F

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	if (a % b != 0 && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/*
 * civil_from_days returns the date of the proleptic Gregorian calendar that
 * is z days after 1970-01-01 (H. Hinnant's algorithm: years are counted from
 * March, so that the leap day ends them, in eras of 400 years).
 */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t		era;
	int64_t		doe;
	int64_t		yoe;
	int64_t		doy;
	int64_t		mp;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* weekday of a day number, Sunday = 0 (1970-01-01 was a Thursday) */
static int
weekday(int64_t day)
{
	return (int) (day - floor_div(day + 4, 7) * 7 + 4);
}

static int
days_in_month(int64_t y, int m)
{
	static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dim[m];
}

/*
 * day_matches applies the day rule: when both day fields are restricted
 * (neither is the full set, however it was written) a day matches if either
 * matches; otherwise both must, which leaves the restricted one to decide.
 */
static bool
day_matches(const GwCronPattern *p, int mday, int wday)
{
	bool		dom = (p->mdays >> mday) & 1;
	bool		dow = (p->wdays >> wday) & 1;

	if ((p->mdays & ALL_MDAYS) != ALL_MDAYS &&
		(p->wdays & ALL_WDAYS) != ALL_WDAYS)
		return dom || dow;
	return dom && dow;
}

/*
 * gw_cron_matches tells whether the local time minute:hour on weekday wday
 * (Sunday = 0 or 7), day mday of month `month`, matches the pattern.
 * Out-of-range arguments never match.
 */
bool
gw_cron_matches(const GwCronPattern *p, int minute, int hour, int mday,
				int month, int wday)
{
	if (minute < 0 || minute > 59 || hour < 0 || hour > 23 ||
		mday < 1 || mday > 31 || month < 1 || month > 12 ||
		wday < 0 || wday > 7)
		return false;
	if (wday == 7)
		wday = 0;
	return ((p->minutes >> minute) & 1) &&
		((p->hours >> hour) & 1) &&
		((p->months >> month) & 1) &&
		day_matches(p, mday, wday);
}

/* the local minute shown at UTC minute t under offset off (seconds east) */
static int64_t
local_minute(int64_t t, int32_t off)
{
	return t + floor_div(off, 60);
}

static int32_t
offset_at(int64_t t, GwCronOffsetFn fn, void *arg)
{
	return fn(t * 60, arg);
}

/*
 * gw_cron_local_high_water returns hw(t): the highest local minute shown at
 * any UTC minute up to t.  It differs from the local minute at t only during
 * the repeated local hour after an offset decrease.
 *
 * Offsets change at most once within 26 hours and by less than that, so an
 * offset lower at t than 26 hours earlier means one decrease in between, and
 * an earlier decrease has been caught up by t.  The decrease is found by
 * binary search over the window: at most 13 calls of fn.
 */
int64_t
gw_cron_local_high_water(int64_t utc_minute, GwCronOffsetFn fn, void *arg)
{
	int32_t		off_now = offset_at(utc_minute, fn, arg);
	int64_t		lo = utc_minute - WINDOW_MINUTES;
	int32_t		off_lo = offset_at(lo, fn, arg);
	int64_t		hi = utc_minute;
	int64_t		hw = local_minute(utc_minute, off_now);
	int64_t		before;

	if (off_now >= off_lo)
		return hw;

	/* off(lo) != off_now == off(hi): find the last minute of the old offset */
	while (hi - lo > 1)
	{
		int64_t		mid = lo + (hi - lo) / 2;
		int32_t		off_mid = offset_at(mid, fn, arg);

		if (off_mid == off_now)
			hi = mid;
		else
		{
			lo = mid;
			off_lo = off_mid;
		}
	}
	before = local_minute(lo, off_lo);
	return before > hw ? before : hw;
}

/*
 * first_in_day returns the first minute of the day (hour * 60 + minute) at
 * or after hour:minute that matches the pattern's hours and minutes, or -1.
 */
static int
first_in_day(const GwCronPattern *p, int hour, int minute)
{
	for (int h = hour; h < 24; h++)
	{
		uint64_t	mins;

		if (!((p->hours >> h) & 1))
			continue;
		mins = p->minutes & ALL_MINUTES;
		if (h == hour)
			mins &= ~UINT64_C(0) << minute;
		if (mins == 0)
			continue;
		for (int m = 0; m < 60; m++)
		{
			if ((mins >> m) & 1)
				return h * 60 + m;
		}
	}
	return -1;
}

/*
 * first_local_match finds the first local minute in [from, to] that
 * matches the pattern, into *found; false if there is none.  (Local minutes
 * before 1970 are negative, so no value can mean "none".)  It walks the local calendar a day at a time,
 * skipping months that do not match as a whole, so a search over years
 * costs a few thousand steps at most.
 */
static bool
first_local_match(const GwCronPattern *p, int64_t from, int64_t to,
				  int64_t *found)
{
	int64_t		day = floor_div(from, MINUTES_PER_DAY);
	int			minute_of_day = (int) (from - day * MINUTES_PER_DAY);
	int			hour = minute_of_day / 60;
	int			minute = minute_of_day % 60;
	int64_t		y;
	int			m;
	int			d;

	if (from > to)
		return false;
	civil_from_days(day, &y, &m, &d);
	while (day * MINUTES_PER_DAY <= to)
	{
		int			dim = days_in_month(y, m);

		if (!((p->months >> m) & 1))
		{
			/* skip to the first day of the next month */
			day += dim - d + 1;
		}
		else
		{
			if (day_matches(p, d, weekday(day)))
			{
				int			in_day = first_in_day(p, hour, minute);

				if (in_day >= 0)
				{
					*found = day * MINUTES_PER_DAY + in_day;
					return *found <= to;
				}
			}
			day++;
			if (++d <= dim)
			{
				hour = minute = 0;
				continue;
			}
		}
		/* the first day of the next month */
		d = 1;
		if (++m > 12)
		{
			m = 1;
			y++;
		}
		hour = minute = 0;
	}
	return false;
}

/*
 * gw_cron_due tells whether the entry with pattern p fires at UTC minute
 * utc_minute: whether a local minute that the clock reached for the first
 * time at that minute matches.
 */
bool
gw_cron_due(const GwCronPattern *p, int64_t utc_minute, GwCronOffsetFn fn,
			void *arg)
{
	int64_t		prev = gw_cron_local_high_water(utc_minute - 1, fn, arg);
	int64_t		now = gw_cron_local_high_water(utc_minute, fn, arg);
	int64_t		m;

	return first_local_match(p, prev + 1, now, &m);
}

/*
 * first_reaching returns the first UTC minute after `after` at which the
 * high-water mark reaches local minute m, given that it had not at `after`.
 * The offset at the guess t = m - offset usually answers; otherwise (m lies
 * in a gap or a repeated hour) a binary search over the high-water mark,
 * which never decreases, within the 26 hours either side of m.
 */
static int64_t
first_reaching(int64_t m, int64_t after, GwCronOffsetFn fn, void *arg)
{
	int64_t		guess;
	int64_t		lo;
	int64_t		hi;

	guess = m - floor_div(offset_at(m, fn, arg), 60);
	guess = m - floor_div(offset_at(guess, fn, arg), 60);
	if (guess > after &&
		gw_cron_local_high_water(guess, fn, arg) >= m &&
		(guess - 1 <= after ||
		 gw_cron_local_high_water(guess - 1, fn, arg) < m))
		return guess;

	/* hw(lo) < m <= hw(hi); hw(t) < m wherever t + 26 h < m */
	lo = m - WINDOW_MINUTES - 1;
	if (lo < after)
		lo = after;
	hi = m + WINDOW_MINUTES;
	if (hi <= lo)
		hi = lo + 1;
	for (int i = 0; gw_cron_local_high_water(hi, fn, arg) < m; i++)
	{
		/* only offsets beyond the documented bounds get here */
		if (i == 1000)
			return -1;
		lo = hi;
		hi += WINDOW_MINUTES;
	}
	while (hi - lo > 1)
	{
		int64_t		mid = lo + (hi - lo) / 2;

		if (gw_cron_local_high_water(mid, fn, arg) >= m)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/*
 * gw_cron_next_fire returns the first UTC minute strictly after
 * after_utc_minute at which gw_cron_due is true, or -1 when the pattern
 * matches no local minute within GW_CRON_SEARCH_DAYS (e.g. "0 0 30 2 *").
 * (A fire at minute -1, 1969-12-31 23:59 UTC, would read as none; the
 * scheduler never asks about such times.)
 *
 * The local minutes up to hw(after) have had their turn; the next fire is
 * for the first matching local minute beyond it, found on the calendar, at
 * the first UTC minute whose high-water mark reaches it.
 */
int64_t
gw_cron_next_fire(const GwCronPattern *p, int64_t after_utc_minute,
				  GwCronOffsetFn fn, void *arg)
{
	int64_t		hw = gw_cron_local_high_water(after_utc_minute, fn, arg);
	int64_t		m;

	if (!first_local_match(p, hw + 1,
						   hw + (int64_t) GW_CRON_SEARCH_DAYS * MINUTES_PER_DAY,
						   &m))
		return -1;
	return first_reaching(m, after_utc_minute, fn, arg);
}
