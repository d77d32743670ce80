/* sources: extension/core/cron_parse.c extension/core/cron_json5.c extension/core/cron_schedule.c */
/*
 * test_cron_schedule.c: the matcher applies the day-of-month/day-of-week OR
 * rule; entries fire at the exact UTC minutes of their local wall-clock
 * minutes in UTC, at a fixed offset (+05:45) and under made-up DST rules
 * shaped like Europe/Paris and America/New_York (a skipped 02:30 fires at
 * 03:00, a repeated one only the first time); leap days are found years
 * ahead and impossible dates give -1; and gw_cron_next_fire and
 * gw_cron_local_high_water agree with brute-force scans around every
 * transition, including half-hour, non-minute and whole-day offset changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cron.h"

/*
 * The test's own calendar, written the slow and obvious way (year by year)
 * so that it checks the module's arithmetic rather than repeating it.
 */
#define FIRST_YEAR	1900
#define LAST_YEAR	2200
#define NYEARS		(LAST_YEAR - FIRST_YEAR + 1)

static int64_t year_start[NYEARS + 1];	/* day number of January 1st */
static int64_t paris_on[NYEARS];	/* DST periods, in UTC seconds */
static int64_t paris_off[NYEARS];
static int64_t us_on[NYEARS];
static int64_t us_off[NYEARS];

/* callback calls, to check that nothing scans minute by minute */
static long calls;

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int y, int m)
{
	static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return (m == 2 && is_leap(y)) ? 29 : dim[m];
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	if (a % b != 0 && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int64_t
day_number(int y, int m, int d)
{
	int64_t		n = year_start[y - FIRST_YEAR];

	for (int mm = 1; mm < m; mm++)
		n += month_days(y, mm);
	return n + d - 1;
}

static int
wday_of(int64_t day)
{
	return (int) (day - floor_div(day + 4, 7) * 7 + 4);
}

static void
civil(int64_t day, int *y, int *m, int *d)
{
	int			lo = 0;
	int			hi = NYEARS - 1;

	while (lo < hi)
	{
		int			mid = (lo + hi + 1) / 2;

		if (year_start[mid] <= day)
			lo = mid;
		else
			hi = mid - 1;
	}
	*y = FIRST_YEAR + lo;
	day -= year_start[lo];
	for (*m = 1; day >= month_days(*y, *m); (*m)++)
		day -= month_days(*y, *m);
	*d = (int) day + 1;
}

/* utc returns the UTC minute of a UTC date and time */
static int64_t
utc(int y, int mo, int d, int h, int mi)
{
	return day_number(y, mo, d) * 1440 + h * 60 + mi;
}

static int
nth_sunday(int y, int m, int n)
{
	int			d = 1;

	while (wday_of(day_number(y, m, d)) != 0)
		d++;
	return d + 7 * (n - 1);
}

static int
last_sunday(int y, int m)
{
	int			d = month_days(y, m);

	while (wday_of(day_number(y, m, d)) != 0)
		d--;
	return d;
}

static int
setup_calendar(void **state)
{
	int64_t		day = 0;

	(void) state;
	for (int y = 1970; y > FIRST_YEAR; y--)
		day -= is_leap(y - 1) ? 366 : 365;
	for (int i = 0; i <= NYEARS; i++)
	{
		year_start[i] = day;
		day += is_leap(FIRST_YEAR + i) ? 366 : 365;
	}
	for (int y = FIRST_YEAR; y <= LAST_YEAR; y++)
	{
		int			i = y - FIRST_YEAR;

		paris_on[i] = utc(y, 3, last_sunday(y, 3), 1, 0) * 60;
		paris_off[i] = utc(y, 10, last_sunday(y, 10), 1, 0) * 60;
		us_on[i] = utc(y, 3, nth_sunday(y, 3, 2), 7, 0) * 60;
		us_off[i] = utc(y, 11, nth_sunday(y, 11, 1), 6, 0) * 60;
	}
	return 0;
}

static int
year_index(int64_t utc_seconds)
{
	int			y;
	int			m;
	int			d;

	civil(floor_div(utc_seconds, 86400), &y, &m, &d);
	return y - FIRST_YEAR;
}

/* Offset functions */

static int32_t
off_fixed(int64_t s, void *arg)
{
	(void) s;
	calls++;
	return *(const int32_t *) arg;
}

/* UTC+1, UTC+2 from the last Sunday of March to that of October, 01:00 UTC */
static int32_t
off_paris(int64_t s, void *arg)
{
	int			i = year_index(s);

	(void) arg;
	calls++;
	return (s >= paris_on[i] && s < paris_off[i]) ? 7200 : 3600;
}

/* UTC-5, UTC-4 from the 2nd Sunday of March 07:00 UTC to the 1st of November 06:00 UTC */
static int32_t
off_us(int64_t s, void *arg)
{
	int			i = year_index(s);

	(void) arg;
	calls++;
	return (s >= us_on[i] && s < us_off[i]) ? -4 * 3600 : -5 * 3600;
}

/* One change of offset at a given instant */
typedef struct Step
{
	int64_t		at_minute;
	int32_t		before;
	int32_t		after;
} Step;

static int32_t
off_step(int64_t s, void *arg)
{
	const Step *st = arg;

	calls++;
	return s < st->at_minute * 60 ? st->before : st->after;
}

static const int32_t zero = 0;
static const int32_t plus_0545 = 5 * 3600 + 45 * 60;
static const int32_t minus_0330 = -(3 * 3600 + 30 * 60);

static GwCronPattern
pattern(const char *fields)
{
	char		text[256];
	GwCronEntry e;
	GwCronError err;

	snprintf(text, sizeof(text), "%s t", fields);
	if (gw_cron_parse(text, &e, 1, &err) != 1)
		fail_msg("%s: %s", fields, err.message);
	return e.pattern;
}

static int64_t
next_fire(const char *fields, int64_t after, GwCronOffsetFn fn, const void *arg)
{
	GwCronPattern p = pattern(fields);

	return gw_cron_next_fire(&p, after, fn, (void *) arg);
}

static bool
due(const char *fields, int64_t t, GwCronOffsetFn fn, const void *arg)
{
	GwCronPattern p = pattern(fields);

	return gw_cron_due(&p, t, fn, (void *) arg);
}

/*
 * expect_fires checks that the n fires after `after` are exactly
 * expected[0..n), both by chaining gw_cron_next_fire and by scanning
 * gw_cron_due minute by minute.
 */
static void
expect_fires(const char *fields, int64_t after, GwCronOffsetFn fn,
			 const void *arg, const int64_t *expected, int n)
{
	GwCronPattern p = pattern(fields);
	int64_t		t = after;
	int			k = 0;

	for (int i = 0; i < n; i++)
	{
		t = gw_cron_next_fire(&p, t, fn, (void *) arg);
		if (t != expected[i])
			fail_msg("%s: fire %d is %lld, expected %lld", fields, i,
					 (long long) t, (long long) expected[i]);
	}
	for (t = after + 1; t <= expected[n - 1]; t++)
	{
		if (gw_cron_due(&p, t, fn, (void *) arg))
		{
			if (k >= n || t != expected[k])
				fail_msg("%s: due at %lld unexpectedly", fields, (long long) t);
			k++;
		}
	}
	assert_int_equal(k, n);
}

static void
test_own_calendar(void **state)
{
	(void) state;
	/* values from date -u -d ... +%s, divided by 60 */
	assert_int_equal(utc(1970, 1, 1, 0, 0), 0);
	assert_int_equal(utc(1969, 12, 31, 23, 59), -1);
	assert_int_equal(utc(2000, 2, 29, 12, 34), 15863794);
	assert_int_equal(utc(2024, 1, 1, 0, 0), 28401120);
	assert_int_equal(utc(2024, 2, 29, 0, 0), 28486080);
	assert_int_equal(utc(2024, 3, 31, 1, 0), 28530780);
	assert_int_equal(utc(2024, 10, 27, 1, 0), 28833180);
	assert_int_equal(utc(2024, 3, 10, 7, 0), 28500900);
	assert_int_equal(utc(2024, 11, 3, 6, 0), 28843560);
	assert_int_equal(utc(2100, 3, 1, 0, 0), 68459040);
	assert_int_equal(utc(2104, 2, 29, 0, 0), 70561440);
	assert_int_equal(wday_of(day_number(2024, 1, 1)), 1);	/* a Monday */
	assert_int_equal(paris_on[2024 - FIRST_YEAR], utc(2024, 3, 31, 1, 0) * 60);
	assert_int_equal(paris_off[2024 - FIRST_YEAR], utc(2024, 10, 27, 1, 0) * 60);
	assert_int_equal(us_on[2024 - FIRST_YEAR], utc(2024, 3, 10, 7, 0) * 60);
	assert_int_equal(us_off[2024 - FIRST_YEAR], utc(2024, 11, 3, 6, 0) * 60);
}

static void
test_matches(void **state)
{
	GwCronPattern p = pattern("0,30 9-17 * 1,7 1-5");

	(void) state;
	assert_true(gw_cron_matches(&p, 0, 9, 1, 1, 1));
	assert_true(gw_cron_matches(&p, 30, 17, 31, 7, 5));
	assert_false(gw_cron_matches(&p, 15, 9, 1, 1, 1));	/* minute */
	assert_false(gw_cron_matches(&p, 0, 8, 1, 1, 1));	/* hour */
	assert_false(gw_cron_matches(&p, 0, 18, 1, 1, 1));
	assert_false(gw_cron_matches(&p, 0, 9, 1, 2, 1));	/* month */
	assert_false(gw_cron_matches(&p, 0, 9, 1, 1, 0));	/* weekday */
	assert_false(gw_cron_matches(&p, 0, 9, 1, 1, 6));

	/* out-of-range arguments never match; 7 is Sunday */
	p = pattern("* * * * *");
	assert_true(gw_cron_matches(&p, 59, 23, 31, 12, 7));
	assert_false(gw_cron_matches(&p, 60, 0, 1, 1, 0));
	assert_false(gw_cron_matches(&p, -1, 0, 1, 1, 0));
	assert_false(gw_cron_matches(&p, 0, 24, 1, 1, 0));
	assert_false(gw_cron_matches(&p, 0, 0, 0, 1, 0));
	assert_false(gw_cron_matches(&p, 0, 0, 32, 1, 0));
	assert_false(gw_cron_matches(&p, 0, 0, 1, 0, 0));
	assert_false(gw_cron_matches(&p, 0, 0, 1, 13, 0));
	assert_false(gw_cron_matches(&p, 0, 0, 1, 1, 8));
	assert_false(gw_cron_matches(&p, 0, 0, 1, 1, -1));
	p = pattern("0 0 * * 0");
	assert_true(gw_cron_matches(&p, 0, 0, 5, 5, 7));
	assert_true(gw_cron_matches(&p, 0, 0, 5, 5, 0));
	assert_false(gw_cron_matches(&p, 0, 0, 5, 5, 6));
}

static void
test_day_of_month_day_of_week_rule(void **state)
{
	static const char *const only_friday[] = {
		"0 0 1-31 * 5", "0 0 */1 * 5", "0 0 1-10,11-31 * 5",
	};
	static const char *const only_13th[] = {
		"0 0 13 * 0-6", "0 0 13 * 0-7", "0 0 13 * 1-7", "0 0 13 * */1",
		"0 0 13 * 0,1,2,3,4,5,6",
	};
	GwCronPattern p;

	(void) state;
	/* both restricted: either matches */
	p = pattern("0 0 13 * 5");
	assert_true(gw_cron_matches(&p, 0, 0, 13, 6, 3));	/* the 13th */
	assert_true(gw_cron_matches(&p, 0, 0, 2, 6, 5));	/* a Friday */
	assert_true(gw_cron_matches(&p, 0, 0, 13, 6, 5));
	assert_false(gw_cron_matches(&p, 0, 0, 12, 6, 4));

	/* only one restricted: it alone decides */
	p = pattern("0 0 13 * *");
	assert_true(gw_cron_matches(&p, 0, 0, 13, 6, 3));
	assert_false(gw_cron_matches(&p, 0, 0, 2, 6, 5));
	p = pattern("0 0 * * 5");
	assert_false(gw_cron_matches(&p, 0, 0, 13, 6, 3));
	assert_true(gw_cron_matches(&p, 0, 0, 2, 6, 5));

	/* a full set written another way is unrestricted */
	for (size_t i = 0; i < sizeof(only_friday) / sizeof(only_friday[0]); i++)
	{
		p = pattern(only_friday[i]);
		assert_false(gw_cron_matches(&p, 0, 0, 13, 6, 3));
		assert_true(gw_cron_matches(&p, 0, 0, 2, 6, 5));
	}
	for (size_t i = 0; i < sizeof(only_13th) / sizeof(only_13th[0]); i++)
	{
		p = pattern(only_13th[i]);
		assert_true(gw_cron_matches(&p, 0, 0, 13, 6, 3));
		assert_false(gw_cron_matches(&p, 0, 0, 2, 6, 5));
	}
	/* 6 of 7 weekdays is still restricted */
	p = pattern("0 0 13 * 1-6");
	assert_true(gw_cron_matches(&p, 0, 0, 13, 6, 0));
	assert_true(gw_cron_matches(&p, 0, 0, 2, 6, 1));
	assert_false(gw_cron_matches(&p, 0, 0, 2, 6, 0));

	/* the OR rule on the calendar: 2024-09-13 is a Friday */
	expect_fires("0 0 13 * 5", utc(2024, 9, 1, 0, 0), off_fixed, &zero,
				 (const int64_t[]) {
					 utc(2024, 9, 6, 0, 0), utc(2024, 9, 13, 0, 0),
					 utc(2024, 9, 20, 0, 0), utc(2024, 9, 27, 0, 0),
					 utc(2024, 10, 4, 0, 0), utc(2024, 10, 11, 0, 0),
					 utc(2024, 10, 13, 0, 0), utc(2024, 10, 18, 0, 0)}, 8);
}

static void
test_utc(void **state)
{
	int64_t		t0 = utc(2024, 1, 1, 0, 0);

	(void) state;
	expect_fires("*/15 * * * *", t0, off_fixed, &zero,
				 (const int64_t[]) {t0 + 15, t0 + 30, t0 + 45, t0 + 60}, 4);
	assert_true(due("*/15 * * * *", t0, off_fixed, &zero));
	assert_false(due("*/15 * * * *", t0 + 1, off_fixed, &zero));
	/* 2024-01-01 is a Monday: the next Monday noon after noon is a week on */
	assert_int_equal(next_fire("0 12 * * 1", t0 + 720, off_fixed, &zero),
					 utc(2024, 1, 8, 12, 0));
	assert_int_equal(next_fire("0 12 * * 1", t0 + 719, off_fixed, &zero),
					 t0 + 720);
	assert_int_equal(next_fire("0 0 1 1 *", t0, off_fixed, &zero),
					 utc(2025, 1, 1, 0, 0));
	assert_int_equal(next_fire("59 23 31 12 *", t0, off_fixed, &zero),
					 utc(2024, 12, 31, 23, 59));
	assert_int_equal(next_fire("0 0 31 * *", utc(2024, 1, 31, 0, 0), off_fixed, &zero),
					 utc(2024, 3, 31, 0, 0));
	assert_int_equal(next_fire("* * * * *", t0, off_fixed, &zero), t0 + 1);
	/* before 1970 */
	assert_int_equal(next_fire("58 23 31 12 *", -3, off_fixed, &zero), -2);
	assert_int_equal(next_fire("0 0 * * *", utc(1969, 7, 20, 20, 17), off_fixed, &zero),
					 utc(1969, 7, 21, 0, 0));
	assert_int_equal(next_fire("0 0 * * 4", -1441, off_fixed, &zero), 0);
}

static void
test_fixed_offsets(void **state)
{
	int64_t		t0 = utc(2024, 1, 1, 0, 0);

	(void) state;
	/* 09:00 at +05:45 is 03:15 UTC */
	assert_int_equal(next_fire("0 9 * * *", t0, off_fixed, &plus_0545),
					 utc(2024, 1, 1, 3, 15));
	assert_true(due("0 9 * * *", utc(2024, 1, 1, 3, 15), off_fixed, &plus_0545));
	assert_false(due("0 9 * * *", utc(2024, 1, 1, 9, 0), off_fixed, &plus_0545));
	expect_fires("0 * * * *", t0, off_fixed, &plus_0545,
				 (const int64_t[]) {t0 + 15, t0 + 75, t0 + 135}, 3);
	expect_fires("*/15 * * * *", t0, off_fixed, &plus_0545,
				 (const int64_t[]) {t0 + 15, t0 + 30, t0 + 45, t0 + 60}, 4);
	/* local midnight of 2024-01-01 at +05:45 was 18:15 UTC the day before */
	assert_int_equal(next_fire("0 0 1 1 *", t0 - 1440, off_fixed, &plus_0545),
					 utc(2023, 12, 31, 18, 15));
	/* at -03:30, local midnight is 03:30 UTC */
	assert_int_equal(next_fire("0 0 1 1 *", t0, off_fixed, &minus_0330),
					 utc(2024, 1, 1, 3, 30));
	/* Monday local time, Sunday in UTC */
	assert_int_equal(next_fire("0 1 * * 1", utc(2024, 1, 14, 0, 0), off_fixed, &plus_0545),
					 utc(2024, 1, 14, 19, 15));
}

static void
test_leap_days_and_impossible_dates(void **state)
{
	long		before;

	(void) state;
	assert_int_equal(next_fire("0 0 29 2 *", utc(2021, 3, 1, 0, 0), off_fixed, &zero),
					 utc(2024, 2, 29, 0, 0));
	assert_int_equal(next_fire("0 0 29 2 *", utc(2024, 2, 29, 0, 0), off_fixed, &zero),
					 utc(2028, 2, 29, 0, 0));
	assert_int_equal(next_fire("0 0 29 2 *", utc(1999, 3, 1, 0, 0), off_fixed, &zero),
					 utc(2000, 2, 29, 0, 0));
	/* 2100 is not a leap year: 8 years to wait */
	before = calls;
	assert_int_equal(next_fire("0 0 29 2 *", utc(2096, 3, 1, 0, 0), off_fixed, &zero),
					 utc(2104, 2, 29, 0, 0));
	assert_true(calls - before < 40);
	assert_int_equal(next_fire("0 0 29 2 *", utc(2096, 3, 1, 0, 0), off_paris, NULL),
					 utc(2104, 2, 28, 23, 0));

	before = calls;
	assert_int_equal(next_fire("0 0 30 2 *", utc(2024, 1, 1, 0, 0), off_fixed, &zero), -1);
	assert_int_equal(next_fire("0 0 31 4,6,9,11 *", utc(2024, 1, 1, 0, 0), off_paris, NULL), -1);
	assert_int_equal(next_fire("0 0 30,31 2 *", 0, off_us, NULL), -1);
	assert_true(calls - before < 40);
	assert_false(due("0 0 30 2 *", utc(2024, 3, 1, 0, 0), off_fixed, &zero));
	/* Feb 30 OR a Sunday: Sundays in February */
	assert_int_equal(next_fire("0 0 30 2 0", utc(2024, 1, 1, 0, 0), off_fixed, &zero),
					 utc(2024, 2, 4, 0, 0));
}

static void
test_paris_spring_forward(void **state)
{
	/* 2024-03-31 01:00 UTC: 02:00 CET becomes 03:00 CEST */
	int64_t		jump = utc(2024, 3, 31, 1, 0);

	(void) state;
	assert_int_equal(next_fire("30 2 * * *", utc(2024, 3, 30, 12, 0), off_paris, NULL), jump);
	assert_int_equal(next_fire("30 2 * * *", jump, off_paris, NULL),
					 utc(2024, 4, 1, 0, 30));
	assert_int_equal(next_fire("30 2 * * *", utc(2024, 3, 29, 12, 0), off_paris, NULL),
					 utc(2024, 3, 30, 1, 30));
	assert_true(due("30 2 * * *", jump, off_paris, NULL));
	assert_false(due("30 2 * * *", jump - 1, off_paris, NULL));
	assert_false(due("30 2 * * *", jump + 30, off_paris, NULL));
	assert_false(due("30 2 * * *", jump + 90, off_paris, NULL));
	/* 02:00 and 03:00 both fire at 03:00 CEST; 01:59 CET just before */
	assert_int_equal(next_fire("0 2 * * *", jump - 600, off_paris, NULL), jump);
	assert_int_equal(next_fire("0 3 * * *", jump - 600, off_paris, NULL), jump);
	assert_int_equal(next_fire("59 1 * * *", jump - 600, off_paris, NULL), jump - 1);
	assert_int_equal(next_fire("1 3 * * *", jump - 600, off_paris, NULL), jump + 1);
	expect_fires("0 * * * *", jump - 65, off_paris, NULL,
				 (const int64_t[]) {jump - 60, jump, jump + 60}, 3);
}

static void
test_paris_fall_back(void **state)
{
	/* 2024-10-27 01:00 UTC: 03:00 CEST becomes 02:00 CET */
	int64_t		back = utc(2024, 10, 27, 1, 0);

	(void) state;
	assert_int_equal(next_fire("30 2 * * *", utc(2024, 10, 26, 12, 0), off_paris, NULL),
					 utc(2024, 10, 27, 0, 30));
	assert_int_equal(next_fire("30 2 * * *", utc(2024, 10, 27, 0, 30), off_paris, NULL),
					 utc(2024, 10, 28, 1, 30));
	assert_true(due("30 2 * * *", utc(2024, 10, 27, 0, 30), off_paris, NULL));
	assert_false(due("30 2 * * *", utc(2024, 10, 27, 1, 30), off_paris, NULL));
	/* hourly: 02:00 CEST, then nothing until 03:00 CET */
	expect_fires("0 * * * *", utc(2024, 10, 26, 21, 30), off_paris, NULL,
				 (const int64_t[]) {
					 utc(2024, 10, 26, 22, 0), utc(2024, 10, 26, 23, 0),
					 utc(2024, 10, 27, 0, 0), utc(2024, 10, 27, 2, 0),
					 utc(2024, 10, 27, 3, 0)}, 5);
	/* 03:00 is reached once, after the repeated hour */
	assert_int_equal(next_fire("0 3 * * *", back - 600, off_paris, NULL), back + 60);
}

static void
test_us_transitions(void **state)
{
	int64_t		jump = utc(2024, 3, 10, 7, 0);	/* 02:00 EST -> 03:00 EDT */
	int64_t		back = utc(2024, 11, 3, 6, 0);	/* 02:00 EDT -> 01:00 EST */

	(void) state;
	assert_int_equal(next_fire("30 2 * * *", utc(2024, 3, 9, 12, 0), off_us, NULL), jump);
	assert_int_equal(next_fire("30 2 * * *", jump, off_us, NULL),
					 utc(2024, 3, 11, 6, 30));
	assert_int_equal(next_fire("30 1 * * *", utc(2024, 11, 2, 12, 0), off_us, NULL),
					 utc(2024, 11, 3, 5, 30));
	assert_int_equal(next_fire("30 1 * * *", utc(2024, 11, 3, 5, 30), off_us, NULL),
					 utc(2024, 11, 4, 6, 30));
	assert_false(due("30 1 * * *", utc(2024, 11, 3, 6, 30), off_us, NULL));
	/* 02:30 on the fall-back day exists once, in EST */
	assert_int_equal(next_fire("30 2 * * *", utc(2024, 11, 2, 12, 0), off_us, NULL),
					 back + 90);
}

static void
test_every_15_minutes_across_transitions(void **state)
{
	int64_t		pj = utc(2024, 3, 31, 1, 0);
	int64_t		pb = utc(2024, 10, 27, 1, 0);
	int64_t		uj = utc(2024, 3, 10, 7, 0);
	int64_t		ub = utc(2024, 11, 3, 6, 0);

	(void) state;
	/* the skipped 02:00..02:45 CET fire together at 03:00 CEST */
	expect_fires("*/15 * * * *", pj - 40, off_paris, NULL,
				 (const int64_t[]) {pj - 30, pj - 15, pj, pj + 15, pj + 30}, 5);
	/* the repeated 02:00..02:45 fire in CEST only */
	expect_fires("*/15 * * * *", pb - 70, off_paris, NULL,
				 (const int64_t[]) {pb - 60, pb - 45, pb - 30, pb - 15,
									pb + 60, pb + 75}, 6);
	expect_fires("*/15 * * * *", uj - 40, off_us, NULL,
				 (const int64_t[]) {uj - 30, uj - 15, uj, uj + 15}, 4);
	/* the repeated 01:00..01:45 fire in EDT only */
	expect_fires("*/15 * * * *", ub - 40, off_us, NULL,
				 (const int64_t[]) {ub - 30, ub - 15, ub + 60, ub + 75}, 4);
}

static void
test_high_water(void **state)
{
	int64_t		pb = utc(2024, 10, 27, 1, 0);
	int64_t		local_0259 = utc(2024, 10, 27, 2, 59);	/* as a local minute */
	long		before;

	(void) state;
	assert_int_equal(gw_cron_local_high_water(pb - 1, off_paris, NULL), local_0259);
	for (int i = 0; i < 60; i++)
	{
		before = calls;
		assert_int_equal(gw_cron_local_high_water(pb + i, off_paris, NULL), local_0259);
		assert_true(calls - before <= 13);
	}
	assert_int_equal(gw_cron_local_high_water(pb + 60, off_paris, NULL), local_0259 + 1);
	assert_int_equal(gw_cron_local_high_water(pb + 2000, off_paris, NULL),
					 pb + 2000 + 60);
	before = calls;
	assert_int_equal(gw_cron_local_high_water(0, off_fixed, (void *) &minus_0330), -210);
	assert_true(calls - before <= 2);
}

/*
 * Brute force: around each transition, gw_cron_local_high_water and
 * gw_cron_due agree with the definition (the running maximum of local
 * minutes, and a matching local minute within it, checked with the test's
 * own calendar), and gw_cron_next_fire from every minute returns the first
 * minute that the scan found due.
 */
typedef struct Zone
{
	const char *name;
	GwCronOffsetFn fn;
	const void *arg;
	int64_t		around;
} Zone;

static bool
local_matches(const GwCronPattern *p, int64_t lm)
{
	int64_t		day = floor_div(lm, 1440);
	int			mod = (int) (lm - day * 1440);
	int			y;
	int			m;
	int			d;

	civil(day, &y, &m, &d);
	return gw_cron_matches(p, mod % 60, mod / 60, d, m, wday_of(day));
}

#define SPAN		(2 * 1440)	/* checked minutes either side of a change */
#define LEAD		(2 * 1440)	/* history for the running maximum */

static void
test_brute_force(void **state)
{
	static const Step half_on = {0, 37800, 39600};	/* +10:30 -> +11:00 */
	static const Step half_off = {0, 39600, 37800};
	static const Step lmt_on = {0, 561, 3600};	/* +00:09:21 -> +01:00 */
	static const Step lmt_off = {0, 3600, 561};
	static const Step day_on = {0, -36000, 50400};	/* -10:00 -> +14:00 */
	static const Step day_off = {0, 50400, -36000};
	static const Step odd_off = {0, 3600 + 37, -1800 - 13};
	Step		steps[7] = {half_on, half_off, lmt_on, lmt_off, day_on, day_off, odd_off};
	Zone		zones[] = {
		{"utc", off_fixed, &zero, utc(2024, 2, 28, 12, 0)},
		{"+05:45", off_fixed, &plus_0545, utc(2024, 12, 31, 20, 0)},
		{"-03:30", off_fixed, &minus_0330, utc(2024, 1, 1, 0, 0)},
		{"paris spring", off_paris, NULL, utc(2024, 3, 31, 1, 0)},
		{"paris fall", off_paris, NULL, utc(2024, 10, 27, 1, 0)},
		{"us spring", off_us, NULL, utc(2024, 3, 10, 7, 0)},
		{"us fall", off_us, NULL, utc(2024, 11, 3, 6, 0)},
		{"half hour on", off_step, &steps[0], utc(2024, 10, 5, 15, 30)},
		{"half hour off", off_step, &steps[1], utc(2024, 4, 6, 15, 0)},
		{"lmt on", off_step, &steps[2], utc(2024, 3, 11, 0, 0)},
		{"lmt off", off_step, &steps[3], utc(2024, 3, 11, 0, 0)},
		{"day skipped", off_step, &steps[4], utc(2011, 12, 30, 10, 0)},
		{"day repeated", off_step, &steps[5], utc(2011, 12, 30, 10, 0)},
		{"odd seconds", off_step, &steps[6], utc(2024, 6, 1, 0, 7)},
	};
	static const char *const patterns[] = {
		"* * * * *", "*/15 * * * *", "0 * * * *", "30 2 * * *", "0 2 * * *",
		"0 3 * * *", "59 1 * * *", "30 1 * * *", "0,30 1-3 * * *",
		"45 23 * * *", "0 0 * * *", "*/7 2 * * *", "0 12 * * 0",
		"5 4 * * 1-5", "0 0 1 * *", "15 1 27 10 *", "0 2 31 3 0",
		"10 10 29 2 *", "0 9-17 * * 6", "20 0,12 30 12 5",
	};
	const int	npat = (int) (sizeof(patterns) / sizeof(patterns[0]));
	int64_t    *hw = malloc(sizeof(int64_t) * (LEAD + 2 * SPAN + 1));
	bool	   *is_due = malloc(sizeof(bool) * (2 * SPAN + 1));
	int			total_fires = 0;

	(void) state;
	for (int i = 0; i < 7; i++)
		steps[i].at_minute = zones[7 + i].around;

	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++)
	{
		const Zone *zn = &zones[z];
		int64_t		w0 = zn->around - SPAN;
		int64_t		first = w0 - LEAD;
		int64_t		max = INT64_MIN;

		/* hw[i] is the high-water mark at UTC minute first + i */
		for (int64_t t = first; t <= zn->around + SPAN; t++)
		{
			int32_t		off = zn->fn(t * 60, (void *) zn->arg);
			int64_t		local = floor_div(t * 60 + off, 60);

			if (local > max)
				max = local;
			hw[t - first] = max;
		}
		for (int64_t t = w0; t <= zn->around + SPAN; t++)
		{
			if (gw_cron_local_high_water(t, zn->fn, (void *) zn->arg) != hw[t - first])
				fail_msg("%s: high water at %lld", zn->name, (long long) t);
		}

		for (int k = 0; k < npat; k++)
		{
			GwCronPattern p = pattern(patterns[k]);
			int64_t		next_due = -1;

			for (int64_t t = w0 + 1; t <= zn->around + SPAN; t++)
			{
				bool		expected = false;
				bool		got;

				for (int64_t m = hw[t - 1 - first] + 1; m <= hw[t - first]; m++)
				{
					if (local_matches(&p, m))
					{
						expected = true;
						break;
					}
				}
				got = gw_cron_due(&p, t, zn->fn, (void *) zn->arg);
				if (got != expected)
					fail_msg("%s, %s: due at %lld is %d", zn->name, patterns[k],
							 (long long) t, got);
				is_due[t - w0] = expected;
				total_fires += expected;
			}

			/* walk back so that next_due is the first due minute after t */
			for (int64_t t = zn->around + SPAN - 1; t >= w0; t--)
			{
				int64_t		got;

				if (is_due[t + 1 - w0])
					next_due = t + 1;
				got = gw_cron_next_fire(&p, t, zn->fn, (void *) zn->arg);
				if (next_due >= 0 ? got != next_due
					: (got != -1 && got <= zn->around + SPAN))
					fail_msg("%s, %s: next fire after %lld is %lld, expected %lld",
							 zn->name, patterns[k], (long long) t,
							 (long long) got, (long long) next_due);
			}
		}
	}
	/* the scan did look at fires */
	assert_true(total_fires > 10000);
	free(hw);
	free(is_due);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_calendar),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_day_of_month_day_of_week_rule),
		cmocka_unit_test(test_utc),
		cmocka_unit_test(test_fixed_offsets),
		cmocka_unit_test(test_leap_days_and_impossible_dates),
		cmocka_unit_test(test_paris_spring_forward),
		cmocka_unit_test(test_paris_fall_back),
		cmocka_unit_test(test_us_transitions),
		cmocka_unit_test(test_every_15_minutes_across_transitions),
		cmocka_unit_test(test_high_water),
		cmocka_unit_test(test_brute_force),
	};

	return cmocka_run_group_tests_name("cron_schedule", tests, setup_calendar, NULL);
}
