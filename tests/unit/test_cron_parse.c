/* sources: extension/core/cron_parse.c extension/core/cron_json5.c */
/*
 * test_cron_parse.c: the crontab grammar accepts exactly Graphile Worker's
 * time fields, task identifiers, options and JSON5 payloads (plus tz), with
 * their defaults; every rejection names the right line, byte column and
 * message; JSON5 payloads convert to the expected strict JSON; and patterns
 * format back to canonical text that parses to the same pattern.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cron.h"

#define MAX_ENTRIES 16

/* The text that the entries of the last parse point into */
static char text_buf[8192];
static GwCronEntry entries[MAX_ENTRIES];

static uint64_t
bits(const int *values, int n)
{
	uint64_t	b = 0;

	for (int i = 0; i < n; i++)
		b |= (uint64_t) 1 << values[i];
	return b;
}

#define BITS(...) bits((const int[]) {__VA_ARGS__}, \
					   (int) (sizeof((const int[]) {__VA_ARGS__}) / sizeof(int)))

static uint64_t
range_bits(int lo, int hi)
{
	uint64_t	b = 0;

	for (int v = lo; v <= hi; v++)
		b |= (uint64_t) 1 << v;
	return b;
}

static int
parse(const char *text, GwCronError *err)
{
	assert_true(strlen(text) < sizeof(text_buf));
	strcpy(text_buf, text);
	memset(entries, 0x7f, sizeof(entries));
	return gw_cron_parse(text_buf, entries, MAX_ENTRIES, err);
}

/* parse_one parses a one-entry text and returns that entry */
static GwCronEntry *
parse_one(const char *text)
{
	GwCronError err;
	int			n = parse(text, &err);

	if (n != 1)
		fail_msg("\"%s\": %d entries, error at %d:%d: %s", text, n,
				 n < 0 ? err.line : 0, n < 0 ? err.column : 0,
				 n < 0 ? err.message : "");
	return &entries[0];
}

static void
expect_error_at(const char *text, int line, int column, const char *message)
{
	GwCronError err;
	int			n = parse(text, &err);

	if (n != -1)
		fail_msg("\"%s\" was accepted", text);
	if (err.line != line || err.column != column ||
		strcmp(err.message, message) != 0)
		fail_msg("\"%s\":\n got      %d:%d: %s\n expected %d:%d: %s", text,
				 err.line, err.column, err.message, line, column, message);
}

static void
expect_error(const char *text, int column, const char *message)
{
	expect_error_at(text, 1, column, message);
}

static void
test_fields_basic(void **state)
{
	GwCronEntry *e;

	(void) state;
	e = parse_one("0 0 * * * task");
	assert_int_equal(e->pattern.minutes, BITS(0));
	assert_int_equal(e->pattern.hours, BITS(0));
	assert_int_equal(e->pattern.mdays, range_bits(1, 31));
	assert_int_equal(e->pattern.months, range_bits(1, 12));
	assert_int_equal(e->pattern.wdays, range_bits(0, 6));
	assert_string_equal(e->task, "task");
	assert_int_equal(e->line, 1);

	/* the upper boundaries, 7 as Sunday */
	e = parse_one("59 23 31 12 7 task");
	assert_int_equal(e->pattern.minutes, BITS(59));
	assert_int_equal(e->pattern.hours, BITS(23));
	assert_int_equal(e->pattern.mdays, BITS(31));
	assert_int_equal(e->pattern.months, BITS(12));
	assert_int_equal(e->pattern.wdays, BITS(0));

	/* the lower boundaries */
	e = parse_one("0 0 1 1 0 task");
	assert_int_equal(e->pattern.mdays, BITS(1));
	assert_int_equal(e->pattern.months, BITS(1));
	assert_int_equal(e->pattern.wdays, BITS(0));

	/* leading zeros */
	e = parse_one("05 007 09 01 00 task");
	assert_int_equal(e->pattern.minutes, BITS(5));
	assert_int_equal(e->pattern.hours, BITS(7));
	assert_int_equal(e->pattern.mdays, BITS(9));
	assert_int_equal(e->pattern.months, BITS(1));
	assert_int_equal(e->pattern.wdays, BITS(0));
}

static void
test_fields_ranges_lists_steps(void **state)
{
	GwCronEntry *e;

	(void) state;
	e = parse_one("0 0 * * 5-7 task");
	assert_int_equal(e->pattern.wdays, BITS(0, 5, 6));
	e = parse_one("0 0 * * 6-7 task");
	assert_int_equal(e->pattern.wdays, BITS(0, 6));
	e = parse_one("0 0 * * 0-7 task");
	assert_int_equal(e->pattern.wdays, range_bits(0, 6));
	e = parse_one("0 0 * * 0,7 task");
	assert_int_equal(e->pattern.wdays, BITS(0));

	/* duplicates and overlaps in lists */
	e = parse_one("1,1,2-4,3 5,5 1-3,2-4 12,1-12 1,1 task");
	assert_int_equal(e->pattern.minutes, BITS(1, 2, 3, 4));
	assert_int_equal(e->pattern.hours, BITS(5));
	assert_int_equal(e->pattern.mdays, BITS(1, 2, 3, 4));
	assert_int_equal(e->pattern.months, range_bits(1, 12));
	assert_int_equal(e->pattern.wdays, BITS(1));

	e = parse_one("0-59 0-23 1-31 1-12 0-6 task");
	assert_int_equal(e->pattern.minutes, range_bits(0, 59));
	assert_int_equal(e->pattern.hours, range_bits(0, 23));
	assert_int_equal(e->pattern.mdays, range_bits(1, 31));
	assert_int_equal(e->pattern.months, range_bits(1, 12));
	assert_int_equal(e->pattern.wdays, range_bits(0, 6));

	/* steps start at the field minimum */
	e = parse_one("*/15 */7 */10 */5 */3 task");
	assert_int_equal(e->pattern.minutes, BITS(0, 15, 30, 45));
	assert_int_equal(e->pattern.hours, BITS(0, 7, 14, 21));
	assert_int_equal(e->pattern.mdays, BITS(1, 11, 21, 31));
	assert_int_equal(e->pattern.months, BITS(1, 6, 11));
	assert_int_equal(e->pattern.wdays, BITS(0, 3, 6));

	e = parse_one("*/1 */24 */100 */12 */7 task");
	assert_int_equal(e->pattern.minutes, range_bits(0, 59));
	assert_int_equal(e->pattern.hours, BITS(0));
	assert_int_equal(e->pattern.mdays, BITS(1));
	assert_int_equal(e->pattern.months, BITS(1));
	assert_int_equal(e->pattern.wdays, BITS(0));

	e = parse_one("*/20,5,50-52 9-17 1,15 * 1-5 task");
	assert_int_equal(e->pattern.minutes, BITS(0, 5, 20, 40, 50, 51, 52));
	assert_int_equal(e->pattern.hours, range_bits(9, 17));
	assert_int_equal(e->pattern.mdays, BITS(1, 15));
	assert_int_equal(e->pattern.wdays, range_bits(1, 5));
}

static void
test_field_errors(void **state)
{
	(void) state;
	expect_error("60 * * * * t", 1, "minute field: 60 is out of range 0-59");
	expect_error("* 24 * * * t", 3, "hour field: 24 is out of range 0-23");
	expect_error("* * 0 * * t", 5, "day-of-month field: 0 is out of range 1-31");
	expect_error("* * 32 * * t", 5, "day-of-month field: 32 is out of range 1-31");
	expect_error("* * * 0 * t", 7, "month field: 0 is out of range 1-12");
	expect_error("* * * 13 * t", 7, "month field: 13 is out of range 1-12");
	expect_error("* * * * 8 t", 9, "day-of-week field: 8 is out of range 0-7");
	expect_error("99999999999999 * * * * t", 1,
				 "minute field: 99999999999999 is out of range 0-59");
	expect_error("1-60 * * * * t", 3, "minute field: 60 is out of range 0-59");
	expect_error("* * * 0-5 * t", 7, "month field: 0 is out of range 1-12");
	expect_error("* * 5-3 * * t", 5,
				 "day-of-month field: range start must be less than range end");
	expect_error("* * * * 7-7 t", 9,
				 "day-of-week field: range start must be less than range end");
	expect_error("* 1,4-4 * * * t", 5,
				 "hour field: range start must be less than range end");
	expect_error("*/0 * * * * t", 3, "minute field: step must be at least 1");
	expect_error("*/ * * * * t", 3, "minute field: expected a number after \"*/\"");
	expect_error("*/,1 * * * * t", 3, "minute field: expected a number after \"*/\"");
	expect_error("*/- * * * * t", 3, "minute field: unexpected character \"-\"");
	expect_error("1- * * * * t", 3, "minute field: expected a number after \"-\"");
	expect_error("1-* * * * * t", 3, "minute field: unexpected character \"*\"");
	expect_error("1-10/2 * * * * t", 5,
				 "minute field: steps on ranges such as \"1-10/2\" are not supported");
	expect_error("5/15 * * * * t", 2,
				 "minute field: a step is only supported after \"*\"");
	expect_error("* * * JAN * t", 7,
				 "month field: names such as \"JAN\" are not supported, use numbers");
	expect_error("* * * * MON t", 9,
				 "day-of-week field: names such as \"MON\" are not supported, use numbers");
	expect_error("* * * * 1-FRI t", 11,
				 "day-of-week field: names such as \"FRI\" are not supported, use numbers");
	expect_error("* * L * * t", 5, "day-of-month field: \"L\" is not supported");
	expect_error("* * 15W * * t", 7, "day-of-month field: \"W\" is not supported");
	expect_error("* * * * 5L t", 10, "day-of-week field: \"L\" is not supported");
	expect_error("* * * * 5#3 t", 10, "day-of-week field: \"#\" is not supported");
	expect_error("0 0 ? * 1 t", 5, "day-of-month field: \"?\" is not supported");
	expect_error("1,,2 * * * * t", 3, "minute field: empty list element");
	expect_error(",1 * * * * t", 1, "minute field: empty list element");
	expect_error("1, * * * * t", 3, "minute field: empty list element");
	expect_error("** * * * * t", 2, "minute field: unexpected character \"*\"");
	expect_error("*/5/2 * * * * t", 4, "minute field: unexpected character \"/\"");
	expect_error("1-2-3 * * * * t", 4, "minute field: unexpected character \"-\"");
	expect_error("-5 * * * * t", 1, "minute field: unexpected character \"-\"");
	expect_error("* * * * 1.5 t", 10, "day-of-week field: unexpected character \".\"");
	expect_error("* * * * \x01 t", 9, "day-of-week field: unexpected byte 0x01");
	expect_error("* * * * \xc3\xa9 t", 9, "day-of-week field: unexpected byte 0xc3");
	expect_error("@daily t", 1,
				 "macros such as \"@daily\" are not supported, write the 5 time fields");
	expect_error("@reboot", 1,
				 "macros such as \"@reboot\" are not supported, write the 5 time fields");
	expect_error("0 * * * * * t", 11,
				 "expected a task identifier after the 5 time fields, found \"*\" (a seconds field is not supported)");
	expect_error("0 0 12 * * 1-5 t", 12,
				 "expected a task identifier after the 5 time fields, found \"1-5\" (a seconds field is not supported)");
}

static void
test_line_structure_errors(void **state)
{
	const char *syntax = "expected 5 time fields, a task identifier, optional ?options and an optional {payload}";

	(void) state;
	expect_error("* * * * *", 10, syntax);
	expect_error("* * * *", 8, syntax);
	expect_error("*", 2, syntax);
	expect_error("task", 1, syntax);
	expect_error("* * * * task", 9, syntax);
	expect_error("* * * task ?id=x {a:1}", 7, syntax);
	expect_error("* * * * * {a:1}", 11, syntax);
	expect_error("* * * * * ?id=x", 11, syntax);
	expect_error("* * * * {a:1}", 9, syntax);
	expect_error("* * * * * task extra", 16, syntax);
	expect_error("* * * * * task ?id=a ?max=1", 22, syntax);
	expect_error("* * * * * task ?id=a extra", 22, syntax);
	expect_error("* * * * * task # not a comment", 16, syntax);
	expect_error("* * * * * task ?", 16, "expected options after \"?\"");
	expect_error("* * * * * task ? {a:1}", 16, "expected options after \"?\"");
	expect_error("* * * * * 1task", 11,
				 "task identifier must start with a letter or \"_\"");
	expect_error("* * * * * :task", 11,
				 "task identifier must start with a letter or \"_\"");
	expect_error("* * * * * ta.sk", 13,
				 "unexpected character \".\" in task identifier");
	expect_error("* * * * * task{a:1}", 15,
				 "unexpected character \"{\" in task identifier");
	expect_error("* * * * * task?id=x", 15,
				 "unexpected character \"?\" in task identifier");
	expect_error("* * * * * ta\x7fsk", 13,
				 "unexpected byte 0x7f in task identifier");
	expect_error("* * * * * {a:1} // trailing", 11, syntax);
	expect_error("* * * * * t {a:1} // trailing", 29,
				 "the payload must end the line with \"}\"");
}

static void
test_task_identifiers(void **state)
{
	char		text[512];
	char		name[200];
	GwCronEntry *e;

	(void) state;
	e = parse_one("* * * * * _a:b/c-d_9");
	assert_string_equal(e->task, "_a:b/c-d_9");
	assert_string_equal(e->id, "_a:b/c-d_9");
	e = parse_one("* * * * * Z");
	assert_string_equal(e->task, "Z");

	memset(name, 'a', sizeof(name));
	name[GW_CRON_TASK_MAXLEN] = '\0';
	snprintf(text, sizeof(text), "* * * * * %s", name);
	e = parse_one(text);
	assert_int_equal(strlen(e->task), GW_CRON_TASK_MAXLEN);

	name[GW_CRON_TASK_MAXLEN] = 'a';
	name[GW_CRON_TASK_MAXLEN + 1] = '\0';
	snprintf(text, sizeof(text), "* * * * * %s", name);
	expect_error(text, 11, "task identifier is longer than 128 bytes");
}

static void
test_option_defaults(void **state)
{
	GwCronEntry *e;

	(void) state;
	e = parse_one("* * * * * task");
	assert_string_equal(e->id, "task");
	assert_int_equal(e->fill_seconds, 0);
	assert_int_equal(e->max_attempts, 0);
	assert_null(e->queue);
	assert_null(e->job_key);
	assert_null(e->job_key_mode);
	assert_false(e->has_priority);
	assert_null(e->tz);
	assert_null(e->payload);
}

static void
test_all_options(void **state)
{
	GwCronEntry *e;
	const char *text =
		"0 4 * * 1 send_report ?id=weekly-report_2&fill=4w3d2h1m30s&max=5"
		"&queue=reports:eu-1_a&jobKey=k%20+x%26y%3D&jobKeyMode=preserve_run_at"
		"&priority=-7&tz=Europe/Paris {team:'eu'}";

	(void) state;
	e = parse_one(text);
	assert_string_equal(e->task, "send_report");
	assert_string_equal(e->id, "weekly-report_2");
	assert_int_equal(e->fill_seconds, 4 * 604800 + 3 * 86400 + 2 * 3600 + 60 + 30);
	assert_int_equal(e->max_attempts, 5);
	assert_string_equal(e->queue, "reports:eu-1_a");
	assert_string_equal(e->job_key, "k  x&y=");
	assert_string_equal(e->job_key_mode, "preserve_run_at");
	assert_true(e->has_priority);
	assert_int_equal(e->priority, -7);
	assert_string_equal(e->tz, "Europe/Paris");
	assert_int_equal(e->tz_column, (int) (strstr(text, "Europe/Paris") - text) + 1);
	assert_string_equal(e->payload, "{team:'eu'}");
	assert_int_equal(e->payload_column, (int) (strchr(text, '{') - text) + 1);

	/* jobKey alone defaults to replace; jobKeyMode alone is kept */
	e = parse_one("* * * * * t ?jobKey=k");
	assert_string_equal(e->job_key, "k");
	assert_string_equal(e->job_key_mode, "replace");
	e = parse_one("* * * * * t ?jobKeyMode=replace&jobKey=k");
	assert_string_equal(e->job_key_mode, "replace");
	e = parse_one("* * * * * t ?jobKeyMode=preserve_run_at");
	assert_null(e->job_key);
	assert_string_equal(e->job_key_mode, "preserve_run_at");

	/* value boundaries */
	e = parse_one("* * * * * t ?max=1&priority=-32768&fill=0s");
	assert_int_equal(e->max_attempts, 1);
	assert_int_equal(e->priority, -32768);
	assert_true(e->has_priority);
	assert_int_equal(e->fill_seconds, 0);
	e = parse_one("* * * * * t ?max=32767&priority=32767&fill=36600d");
	assert_int_equal(e->max_attempts, 32767);
	assert_int_equal(e->priority, 32767);
	assert_int_equal(e->fill_seconds, GW_CRON_FILL_MAX_SECONDS);
	e = parse_one("* * * * * t ?priority=0&fill=1s1s1m");
	assert_int_equal(e->priority, 0);
	assert_int_equal(e->fill_seconds, 62);
	e = parse_one("* * * * * t ?fill=90m&tz=Etc/GMT%2B5");
	assert_int_equal(e->fill_seconds, 5400);
	assert_string_equal(e->tz, "Etc/GMT+5");
	e = parse_one("* * * * * t ?tz=America/Argentina/Buenos_Aires&queue=a");
	assert_string_equal(e->tz, "America/Argentina/Buenos_Aires");
	assert_int_equal(e->tz_column, 17);
	e = parse_one("* * * * * t ?id=_&jobKey=%7B%22json%22%7D");
	assert_string_equal(e->id, "_");
	assert_string_equal(e->job_key, "{\"json\"}");
}

static void
test_url_decoding(void **state)
{
	GwCronEntry *e;

	(void) state;
	e = parse_one("* * * * * t ?jobKey=%41%2b%2B+%e2%82%AC");
	assert_string_equal(e->job_key, "A++ \xe2\x82\xac");
	/* a "%" without two hex digits stays as it is */
	e = parse_one("* * * * * t ?jobKey=%zz%4%");
	assert_string_equal(e->job_key, "%zz%4%");
	/* keys are decoded too */
	e = parse_one("* * * * * t ?%69d=x&job%4Bey=y");
	assert_string_equal(e->id, "x");
	assert_string_equal(e->job_key, "y");
	/* empty pairs are skipped; "=" in values is kept */
	e = parse_one("* * * * * t ?&&id=x&&jobKey=a=b&");
	assert_string_equal(e->id, "x");
	assert_string_equal(e->job_key, "a=b");
	/* decoded values are checked */
	e = parse_one("* * * * * t ?id=a%2Db&queue=q%3A1");
	assert_string_equal(e->id, "a-b");
	assert_string_equal(e->queue, "q:1");
	expect_error("* * * * * t ?queue=a%20b", 20,
				 "invalid queue name \"a b\": must match [-a-zA-Z0-9_:]+");
	expect_error("* * * * * t ?jobKey=a%00b", 21,
				 "option \"jobKey\" contains a NUL byte (%00)");
	expect_error("* * * * * t ?jobKey", 20, "option \"jobKey\" must not be empty");
	expect_error("* * * * * t ?foo%3Dbar=1", 14,
				 "unsupported crontab option \"foo=bar\"");
}

static void
test_option_errors(void **state)
{
	char		text[512];
	char		name[200];

	(void) state;
	expect_error("* * * * * t ?foo=1", 14, "unsupported crontab option \"foo\"");
	expect_error("* * * * * t ?id=a&ID=b", 19, "unsupported crontab option \"ID\"");
	expect_error("* * * * * t ?jobkey=a", 14, "unsupported crontab option \"jobkey\"");
	expect_error("* * * * * t ?=1", 14, "unsupported crontab option \"\"");
	expect_error("* * * * * t ?id=a&max=2&id=b", 25, "option \"id\" given twice");
	expect_error("* * * * * t ?fill=1m&fill=1m", 22, "option \"fill\" given twice");
	expect_error("* * * * * t ?tz=UTC&tz=UTC", 21, "option \"tz\" given twice");

	expect_error("* * * * * t ?id=1a", 17,
				 "invalid id \"1a\": must match [_a-zA-Z][-_a-zA-Z0-9]*");
	expect_error("* * * * * t ?id=", 17,
				 "invalid id \"\": must match [_a-zA-Z][-_a-zA-Z0-9]*");
	expect_error("* * * * * t ?id=a:b", 17,
				 "invalid id \"a:b\": must match [_a-zA-Z][-_a-zA-Z0-9]*");
	expect_error("* * * * * t ?fill=3x", 19,
				 "invalid fill \"3x\": expected a time phrase such as 4w3d2h1m30s");
	expect_error("* * * * * t ?fill=", 19,
				 "invalid fill \"\": expected a time phrase such as 4w3d2h1m30s");
	expect_error("* * * * * t ?fill=h", 19,
				 "invalid fill \"h\": expected a time phrase such as 4w3d2h1m30s");
	expect_error("* * * * * t ?fill=1m2", 19,
				 "invalid fill \"1m2\": expected a time phrase such as 4w3d2h1m30s");
	expect_error("* * * * * t ?fill=1M", 19,
				 "invalid fill \"1M\": expected a time phrase such as 4w3d2h1m30s");
	expect_error("* * * * * t ?fill=36601d", 19,
				 "fill \"36601d\" is longer than 36600 days");
	expect_error("* * * * * t ?fill=36600d1s", 19,
				 "fill \"36600d1s\" is longer than 36600 days");
	expect_error("* * * * * t ?fill=99999999999999999999999w", 19,
				 "fill \"99999999999999999999999w\" is longer than 36600 days");
	expect_error("* * * * * t ?max=0", 18,
				 "invalid max \"0\": expected an integer from 1 to 32767");
	expect_error("* * * * * t ?max=32768", 18,
				 "invalid max \"32768\": expected an integer from 1 to 32767");
	expect_error("* * * * * t ?max=-1", 18,
				 "invalid max \"-1\": expected an integer from 1 to 32767");
	expect_error("* * * * * t ?max=2x", 18,
				 "invalid max \"2x\": expected an integer from 1 to 32767");
	expect_error("* * * * * t ?max=", 18,
				 "invalid max \"\": expected an integer from 1 to 32767");
	expect_error("* * * * * t ?queue=", 20,
				 "invalid queue name \"\": must match [-a-zA-Z0-9_:]+");
	expect_error("* * * * * t ?queue=a/b", 20,
				 "invalid queue name \"a/b\": must match [-a-zA-Z0-9_:]+");
	expect_error("* * * * * t ?jobKey=", 21, "option \"jobKey\" must not be empty");
	expect_error("* * * * * t ?jobKeyMode=unsafe_dedupe", 25,
				 "invalid jobKeyMode \"unsafe_dedupe\": expected replace or preserve_run_at");
	expect_error("* * * * * t ?jobKeyMode=", 25,
				 "invalid jobKeyMode \"\": expected replace or preserve_run_at");
	expect_error("* * * * * t ?priority=32768", 23,
				 "invalid priority \"32768\": expected an integer from -32768 to 32767");
	expect_error("* * * * * t ?priority=-32769", 23,
				 "invalid priority \"-32769\": expected an integer from -32768 to 32767");
	expect_error("* * * * * t ?priority=1.5", 23,
				 "invalid priority \"1.5\": expected an integer from -32768 to 32767");
	expect_error("* * * * * t ?priority=-", 23,
				 "invalid priority \"-\": expected an integer from -32768 to 32767");
	expect_error("* * * * * t ?priority=%2B1", 23,
				 "invalid priority \"+1\": expected an integer from -32768 to 32767");
	/* "+" decodes to a space, so Etc/GMT+5 must be written Etc/GMT%2B5 */
	expect_error("* * * * * t ?tz=Etc/GMT+5", 17,
				 "invalid time zone name \"Etc/GMT 5\": must match [A-Za-z0-9_+/-]+");
	expect_error("* * * * * t ?tz=Europe%20Paris", 17,
				 "invalid time zone name \"Europe Paris\": must match [A-Za-z0-9_+/-]+");
	expect_error("* * * * * t ?tz=", 17,
				 "invalid time zone name \"\": must match [A-Za-z0-9_+/-]+");
	expect_error("* * * * * t ?tz=UTC%00", 17,
				 "option \"tz\" contains a NUL byte (%00)");

	/* length limits */
	memset(name, 'q', sizeof(name));
	name[GW_CRON_QUEUE_MAXLEN] = '\0';
	snprintf(text, sizeof(text), "* * * * * t ?queue=%s", name);
	assert_int_equal(strlen(parse_one(text)->queue), GW_CRON_QUEUE_MAXLEN);
	name[GW_CRON_QUEUE_MAXLEN] = 'q';
	name[GW_CRON_QUEUE_MAXLEN + 1] = '\0';
	snprintf(text, sizeof(text), "* * * * * t ?queue=%s", name);
	expect_error(text, 20, "queue name is longer than 128 bytes");

	memset(name, 'z', sizeof(name));
	name[GW_CRON_TZ_MAXLEN] = '\0';
	snprintf(text, sizeof(text), "* * * * * t ?tz=%s", name);
	assert_int_equal(strlen(parse_one(text)->tz), GW_CRON_TZ_MAXLEN);
	name[GW_CRON_TZ_MAXLEN] = 'z';
	name[GW_CRON_TZ_MAXLEN + 1] = '\0';
	snprintf(text, sizeof(text), "* * * * * t ?tz=%s", name);
	expect_error(text, 17, "time zone name is longer than 64 bytes");
}

static void
test_comments_blank_lines_crlf(void **state)
{
	GwCronError err;
	int			n;

	(void) state;
	n = parse("# a comment\n"
			  "\n"
			  "   \t  \n"
			  "  # indented comment\r\n"
			  "0 1 * * * first\r\n"
			  "\r\n"
			  "\t 2 3 * * * second ?id=two  \t\r\n"
			  "#4 5 * * * not_an_entry\n"
			  "  5 6 * * * third {a: 1}   \n", &err);
	assert_int_equal(n, 3);
	assert_string_equal(entries[0].task, "first");
	assert_int_equal(entries[0].line, 5);
	assert_int_equal(entries[0].pattern.hours, BITS(1));
	assert_string_equal(entries[1].task, "second");
	assert_string_equal(entries[1].id, "two");
	assert_int_equal(entries[1].line, 7);
	assert_int_equal(entries[1].pattern.minutes, BITS(2));
	assert_string_equal(entries[2].task, "third");
	assert_string_equal(entries[2].payload, "{a: 1}");
	assert_int_equal(entries[2].payload_column, 19);
	assert_int_equal(entries[2].line, 9);

	assert_int_equal(parse("", &err), 0);
	assert_int_equal(parse("\n\n# only comments\r\n", &err), 0);
	assert_int_equal(parse("* * * * * t", &err), 1);
	assert_int_equal(parse("* * * * * t\n", &err), 1);
	assert_int_equal(parse("* * * * * t\r", &err), 1);
	assert_string_equal(entries[0].task, "t");
	assert_int_equal(parse("* * * * *\tt\t?id=x\t{a:1}", &err), 1);
	assert_string_equal(entries[0].task, "t");
	assert_string_equal(entries[0].id, "x");
	assert_string_equal(entries[0].payload, "{a:1}");

	assert_int_equal(gw_cron_max_entries(""), 1);
	assert_int_equal(gw_cron_max_entries("a"), 1);
	assert_int_equal(gw_cron_max_entries("a\nb\n"), 3);
	assert_int_equal(gw_cron_max_entries("a\r\nb\r\nc"), 3);
}

static void
test_error_positions(void **state)
{
	(void) state;
	/* columns count from the line as written, before trimming */
	expect_error_at("  \t60 * * * * t", 1, 4, "minute field: 60 is out of range 0-59");
	expect_error_at("* * * * * t\n\n# c\n  * *  *   * 8 t\n", 4, 14,
					"day-of-week field: 8 is out of range 0-7");
	expect_error_at("* * * * * a\r\n* * * * * b ?bad=1\r\n", 2, 14,
					"unsupported crontab option \"bad\"");
	expect_error_at("\t\t* * * * * t ?max=0", 1, 20,
					"invalid max \"0\": expected an integer from 1 to 32767");
	expect_error_at("  * * * * * t   {a:'x}  ", 1, 20,
					"invalid payload: unterminated string");
	expect_error_at("* * * * * t\n   * * * * * t", 2, 14,
					"duplicate id \"t\" (first used on line 1)");
	/* the first error in text order wins */
	expect_error_at("* * * * * a ?x=1\n61 * * * * b", 1, 14,
					"unsupported crontab option \"x\"");
	expect_error_at("* * * * * a\n* * * * * a ?max=0", 2, 18,
					"invalid max \"0\": expected an integer from 1 to 32767");
}

static void
test_duplicate_ids(void **state)
{
	GwCronError err;

	(void) state;
	expect_error_at("# header\n"
					"0 * * * * a\n"
					"0 * * * * b ?id=x\n"
					"0 * * * * c\n"
					"0 * * * * d ?id=x\n", 5, 17,
					"duplicate id \"x\" (first used on line 3)");
	expect_error_at("0 * * * * a\n"
					"0 * * * * b ?id=a\n", 2, 17,
					"duplicate id \"a\" (first used on line 1)");
	expect_error_at("0 * * * * b ?id=a\n"
					"0 * * * * a\n", 2, 11,
					"duplicate id \"a\" (first used on line 1)");
	/* the same task under distinct ids is fine */
	assert_int_equal(parse("0 * * * * a\n"
						   "30 * * * * a ?id=a_half\n"
						   "0 * * * * a ?id=a-other\n", &err), 3);
	assert_string_equal(entries[0].id, "a");
	assert_string_equal(entries[1].id, "a_half");
	assert_string_equal(entries[2].id, "a-other");
	assert_string_equal(entries[2].task, "a");
	/* ids are case sensitive */
	assert_int_equal(parse("0 * * * * a\n0 * * * * A\n", &err), 2);
}

static void
test_too_many_entries(void **state)
{
	char		text[64] = "* * * * * a\n\n* * * * * b\n";
	GwCronEntry two[2];
	GwCronError err;

	(void) state;
	assert_int_equal(gw_cron_parse(text, two, 1, &err), -1);
	assert_int_equal(err.line, 3);
	assert_int_equal(err.column, 1);
	assert_string_equal(err.message, "too many crontab entries (the limit is 1)");

	strcpy(text, "* * * * * a\n\n* * * * * b\n");
	assert_int_equal(gw_cron_parse(text, two, 2, &err), 2);
	assert_string_equal(two[1].task, "b");
	assert_int_equal(two[1].line, 3);
}

/* what gw_cron_parse_lenient reported, for test_lenient */
typedef struct Reported
{
	int			n;
	int			lines[8];
	int			columns[8];
	char		messages[8][256];
} Reported;

static void
report_error(const GwCronError *err, void *arg)
{
	Reported   *r = arg;

	r->lines[r->n] = err->line;
	r->columns[r->n] = err->column;
	strcpy(r->messages[r->n], err->message);
	r->n++;
}

static void
test_lenient(void **state)
{
	char		text[256] = "* * * * * a\n"
		"60 * * * * bad_minute\n"
		"  # comment\n"
		"* * * * * b ?jobKey=k&foo=1\n"
		"* * * * * a ?id=x\n"
		"0 * * * * dup ?id=x\n"
		"* * * * * c ?jobKey=%41b\n";
	GwCronEntry four[4];
	Reported	r = {0};

	(void) state;
	assert_int_equal(gw_cron_parse_lenient(text, four, 4, report_error, &r), 3);
	assert_string_equal(four[0].task, "a");
	assert_int_equal(four[0].line, 1);
	assert_string_equal(four[1].id, "x");
	assert_int_equal(four[1].line, 5);
	assert_string_equal(four[2].task, "c");
	assert_int_equal(four[2].line, 7);
	assert_string_equal(four[2].job_key, "Ab");
	assert_int_equal(four[2].job_key_column, 21);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.lines[0], 2);
	assert_int_equal(r.columns[0], 1);
	assert_string_equal(r.messages[0], "minute field: 60 is out of range 0-59");
	assert_int_equal(r.lines[1], 4);
	assert_string_equal(r.messages[1], "unsupported crontab option \"foo\"");
	assert_int_equal(r.lines[2], 6);
	assert_string_equal(r.messages[2], "duplicate id \"x\" (first used on line 5)");
}

static void
test_payload_in_line(void **state)
{
	GwCronEntry *e;

	(void) state;
	e = parse_one("* * * * * t {}");
	assert_string_equal(e->payload, "{}");
	assert_int_equal(e->payload_column, 13);
	e = parse_one("* * * * * t ?id=x { a : [1, {b: 'c d'}], } ");
	assert_string_equal(e->payload, "{ a : [1, {b: 'c d'}], }");
	assert_int_equal(e->payload_column, 19);
	/* "?" and "#" inside the payload are payload */
	e = parse_one("* * * * * t {q:'?id=x # y'}");
	assert_string_equal(e->id, "t");
	assert_string_equal(e->payload, "{q:'?id=x # y'}");

	expect_error("* * * * * t {a:Infinity}", 16,
				 "invalid payload: Infinity and NaN cannot be represented in JSON");
	expect_error("* * * * * t {a:1} {b:2}", 19,
				 "invalid payload: unexpected text after the payload object");
	expect_error("* * * * * t {a:1} ?id=x", 19,
				 "invalid payload: unexpected text after the payload object");
	expect_error("* * * * * t {a:1", 17,
				 "invalid payload: unexpected end of payload, expected \"}\"");
}

/* j5 converts with the documented output bound and compares the result */
static void
j5(const char *in, const char *expected)
{
	char		out[2048];
	GwCronError err;
	size_t		cap = GW_CRON_JSON_OUTCAP(strlen(in));

	assert_true(cap <= sizeof(out));
	memset(out, 'X', sizeof(out));
	if (!gw_cron_json5_to_json(in, out, cap, &err))
		fail_msg("%s: error at %d: %s", in, err.column, err.message);
	if (strcmp(out, expected) != 0)
		fail_msg("%s:\n got      %s\n expected %s", in, out, expected);
	/* validating alone agrees */
	assert_true(gw_cron_json5_to_json(in, NULL, 0, &err));
}

static void
j5_error(const char *in, int column, const char *message)
{
	char		out[2048];
	GwCronError err;

	if (gw_cron_json5_to_json(in, out, sizeof(out), &err))
		fail_msg("%s was accepted as %s", in, out);
	if (err.column != column || strcmp(err.message, message) != 0)
		fail_msg("%s:\n got      %d: %s\n expected %d: %s", in,
				 err.column, err.message, column, message);
	assert_int_equal(err.line, 1);
	/* validating alone agrees */
	assert_false(gw_cron_json5_to_json(in, NULL, 0, &err));
	assert_int_equal(err.column, column);
}

static void
test_json5_conversions(void **state)
{
	(void) state;
	j5("{}", "{}");
	j5("{ }", "{}");
	j5("{\"a\":\"b\"}", "{\"a\":\"b\"}");
	j5("{a:1}", "{\"a\":1}");
	j5("{ $a_1 : 1 , _ : 2, A9$: 3 }", "{\"$a_1\":1,\"_\":2,\"A9$\":3}");
	j5("{true: 1, null: 2}", "{\"true\":1,\"null\":2}");
	j5("{'a':'b'}", "{\"a\":\"b\"}");
	j5("{a:'say \"hi\"'}", "{\"a\":\"say \\\"hi\\\"\"}");
	j5("{a:'it\\'s'}", "{\"a\":\"it's\"}");
	j5("{a:\"it's\"}", "{\"a\":\"it's\"}");
	j5("{a:\"q\\\"q\"}", "{\"a\":\"q\\\"q\"}");
	j5("{a:[1,2,],}", "{\"a\":[1,2]}");
	j5("{a:[[],[ ],{},],b:[1]}", "{\"a\":[[],[],{}],\"b\":[1]}");
	j5("{a:{b:[{c:null,d:true,e:false}]}}",
	   "{\"a\":{\"b\":[{\"c\":null,\"d\":true,\"e\":false}]}}");

	/* comments */
	j5("{/* c */a /* x */ : /* y */ 1 /* z */}", "{\"a\":1}");
	j5("{a:1} // trailing", "{\"a\":1}");
	j5("/* leading */ {a:/**/2}", "{\"a\":2}");
	j5("{a:'/* not a comment */ // nor this'}",
	   "{\"a\":\"/* not a comment */ // nor this\"}");

	/* numbers */
	j5("{a:+1,b:.5,c:5.,d:-.5,e:0x1F,f:-0x10,g:1e3,h:5.e-2}",
	   "{\"a\":1,\"b\":0.5,\"c\":5,\"d\":-0.5,\"e\":31,\"f\":-16,\"g\":1e3,\"h\":5e-2}");
	j5("{i:0,j:-0,k:+0x0,l:0XfF,m:1.5E+3,n:+.5e1,o:0.25,p:-0x0,q:0x000A}",
	   "{\"i\":0,\"j\":-0,\"k\":0,\"l\":255,\"m\":1.5E+3,\"n\":0.5e1,\"o\":0.25,\"p\":0,\"q\":10}");
	j5("{a:0xFFFFFFFFFFFFFFFF,b:123456789012345678901234567890}",
	   "{\"a\":18446744073709551615,\"b\":123456789012345678901234567890}");

	/* escapes */
	j5("{a:'\\x41\\u00e9\\v\\0\\/\\a\\\\\\\"\\b\\f\\n\\r\\t'}",
	   "{\"a\":\"\\u0041\\u00e9\\u000b\\u0000/a\\\\\\\"\\b\\f\\n\\r\\t\"}");
	j5("{a:'\\\xc3\xa9'}", "{\"a\":\"\xc3\xa9\"}");
	j5("{a:'x\\\ry'}", "{\"a\":\"xy\"}");
	j5("{a:'x\\\r\ny'}", "{\"a\":\"xy\"}");
	/* raw control characters are escaped */
	j5("{a:'x\x01y\tz\x1f\x08\x0c'}",
	   "{\"a\":\"x\\u0001y\\tz\\u001f\\b\\f\"}");
	j5("{a:'\\\t'}", "{\"a\":\"\\t\"}");
	/* UTF-8 passes through; Unicode whitespace is whitespace */
	j5("{'\xc3\xa9':'\xe2\x82\xac'}",
	   "{\"\xc3\xa9\":\"\xe2\x82\xac\"}");
	j5("\xef\xbb\xbf{\xc2\xa0" "a\xe2\x80\x83:\xe3\x80\x80" "1\xe2\x80\xa8}",
	   "{\"a\":1}");
	j5("\t{\ta\t:\t1\t}\t", "{\"a\":1}");
}

static void
test_json5_errors(void **state)
{
	char		deep[512];
	int			n;

	(void) state;
	j5_error("[1]", 1, "the payload must be a JSON5 object");
	j5_error("", 1, "the payload must be a JSON5 object");
	j5_error("  'a'", 3, "the payload must be a JSON5 object");
	j5_error("{a:Infinity}", 4, "Infinity and NaN cannot be represented in JSON");
	j5_error("{a:-Infinity}", 4, "Infinity and NaN cannot be represented in JSON");
	j5_error("{a:+Infinity}", 4, "Infinity and NaN cannot be represented in JSON");
	j5_error("{a:NaN}", 4, "Infinity and NaN cannot be represented in JSON");
	j5_error("{a:-NaN}", 4, "Infinity and NaN cannot be represented in JSON");
	j5_error("{a:foo}", 4, "unexpected word \"foo\", strings must be quoted");
	j5_error("{a:True}", 4, "unexpected word \"True\", strings must be quoted");
	j5_error("{a:nulls}", 4, "unexpected word \"nulls\", strings must be quoted");
	j5_error("{a:1", 5, "unexpected end of payload, expected \"}\"");
	j5_error("{a", 3, "expected \":\" after the property name");
	j5_error("{a 1}", 4, "expected \":\" after the property name");
	j5_error("{a-b:1}", 3, "expected \":\" after the property name");
	j5_error("{1:2}", 2, "expected a property name");
	j5_error("{", 2, "unexpected end of payload, expected a property name");
	j5_error("{a:1,", 6, "unexpected end of payload, expected a property name");
	j5_error("{a:1,,}", 6, "expected a property name");
	j5_error("{,}", 2, "expected a property name");
	j5_error("{\xc3\xa9:1}", 2,
			 "unquoted property names must match [A-Za-z_$][A-Za-z0-9_$]*, quote this one");
	j5_error("{\\u0061:1}", 2,
			 "unquoted property names must match [A-Za-z_$][A-Za-z0-9_$]*, quote this one");
	j5_error("{a:1 b:2}", 6, "expected \",\" or \"}\"");
	j5_error("{a:[1 2]}", 7, "expected \",\" or \"]\"");
	j5_error("{a:[1", 6, "unexpected end of payload, expected \"]\"");
	j5_error("{a:[1,,2]}", 7, "unexpected character \",\"");
	j5_error("{a:[,]}", 5, "unexpected character \",\"");
	j5_error("{a:", 4, "unexpected end of payload, expected a value");
	j5_error("{a:@}", 4, "unexpected character \"@\"");
	j5_error("{a:\x01}", 4, "unexpected byte 0x01");
	j5_error("{a:'x}", 4, "unterminated string");
	j5_error("{a:\"x'}", 4, "unterminated string");
	j5_error("{a:'x\\", 4, "unterminated string");
	j5_error("{a:'x\ry'}", 6, "line break in string");
	j5_error("{a:\"\\x4\"}", 5, "\"\\x\" must be followed by 2 hexadecimal digits");
	j5_error("{a:\"\\xg0\"}", 5, "\"\\x\" must be followed by 2 hexadecimal digits");
	j5_error("{a:\"\\u12\"}", 5, "\"\\u\" must be followed by 4 hexadecimal digits");
	j5_error("{a:\"\\u\"}", 5, "\"\\u\" must be followed by 4 hexadecimal digits");
	j5_error("{a:\"\\1\"}", 5, "invalid escape \"\\1\" in string");
	j5_error("{a:\"\\01\"}", 5, "octal escapes are not allowed in strings");
	j5_error("{a:01}", 4, "numbers must not have leading zeros");
	j5_error("{a:-007}", 5, "numbers must not have leading zeros");
	j5_error("{a:0x}", 6, "expected hexadecimal digits after \"0x\"");
	j5_error("{a:0xg}", 6, "expected hexadecimal digits after \"0x\"");
	j5_error("{a:0x1G}", 7, "invalid number");
	j5_error("{a:0x10000000000000000}", 4,
			 "hexadecimal number is larger than 0xFFFFFFFFFFFFFFFF");
	j5_error("{a:1.2.3}", 7, "invalid number");
	j5_error("{a:1x}", 5, "invalid number");
	j5_error("{a:0x1.5}", 7, "invalid number");
	j5_error("{a:1e}", 5, "expected digits in the exponent");
	j5_error("{a:1e+}", 5, "expected digits in the exponent");
	j5_error("{a:.}", 4, "invalid number");
	j5_error("{a:+}", 4, "invalid number");
	j5_error("{a:-x}", 4, "invalid number");
	j5_error("{a:1}x", 6, "unexpected text after the payload object");
	j5_error("{a:1},", 6, "unexpected text after the payload object");
	j5_error("{/* x", 2, "unterminated comment");
	j5_error("{a:1} /* x", 7, "unterminated comment");

	/* nesting: 100 levels are fine, 101 are not */
	n = 0;
	deep[n++] = '{';
	deep[n++] = 'a';
	deep[n++] = ':';
	for (int i = 0; i < GW_CRON_JSON_MAX_DEPTH - 1; i++)
		deep[n++] = '[';
	for (int i = 0; i < GW_CRON_JSON_MAX_DEPTH - 1; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	assert_true(gw_cron_json5_to_json(deep, NULL, 0, &(GwCronError) {0}));
	memmove(deep + 4, deep + 3, (size_t) n - 2);
	deep[3] = '[';
	j5_error(deep, 4 + GW_CRON_JSON_MAX_DEPTH - 1,
			 "nesting is deeper than 100 levels");
}

static void
test_json5_output_bound(void **state)
{
	char		in[64];
	char		out[GW_CRON_JSON_OUTCAP(64)];
	GwCronError err;
	size_t		len;

	(void) state;
	/* the worst case: raw control bytes inside a string */
	memset(in, 0x01, sizeof(in));
	memcpy(in, "{a:'", 4);
	memcpy(in + sizeof(in) - 3, "'}", 3);
	len = strlen(in);
	assert_int_equal(len, 63);
	assert_true(gw_cron_json5_to_json(in, out, GW_CRON_JSON_OUTCAP(len), &err));
	assert_int_equal(strlen(out), 6 + 6 * (63 - 6) + 2);

	/* one-letter keys triple */
	assert_true(gw_cron_json5_to_json("{a:1,b:2}", out, 14, &err));
	assert_string_equal(out, "{\"a\":1,\"b\":2}");

	/* too small a buffer is an error, not an overrun */
	memset(out, 'X', sizeof(out));
	assert_false(gw_cron_json5_to_json("{a:1,b:2}", out, 13, &err));
	assert_int_equal(err.column, 1);
	assert_string_equal(err.message,
						"the converted payload does not fit in 13 bytes");
	assert_int_equal(out[13], 'X');
	assert_false(gw_cron_json5_to_json("{}", out, 0, &err));
	assert_true(gw_cron_json5_to_json("{}", out, 3, &err));
	assert_string_equal(out, "{}");
}

/* round_trip: text's pattern formats as expected, which parses back */
static void
round_trip(const char *fields, const char *expected)
{
	char		text[512];
	char		buf[GW_CRON_PATTERN_TEXT_LEN];
	GwCronPattern p;

	snprintf(text, sizeof(text), "%s t", fields);
	p = parse_one(text)->pattern;
	gw_cron_pattern_format(&p, buf, sizeof(buf));
	if (strcmp(buf, expected) != 0)
		fail_msg("%s:\n got      %s\n expected %s", fields, buf, expected);
	snprintf(text, sizeof(text), "%s t", buf);
	assert_memory_equal(&parse_one(text)->pattern, &p, sizeof(p));
}

static void
test_format_round_trip(void **state)
{
	GwCronPattern p;
	char		buf[GW_CRON_PATTERN_TEXT_LEN];
	char		text[512];
	char		small[8];

	(void) state;
	round_trip("0,30 9-17 * * 1-5", "0,30 9-17 * * 1-5");
	round_trip("*/30 9,10,11,12,13,14,15,16,17 * * 1,2,3,4,5", "0,30 9-17 * * 1-5");
	round_trip("*/15 * * * *", "*/15 * * * *");
	round_trip("0-59 0-23 1-31 1-12 0-7", "* * * * *");
	round_trip("*/1 */1 */1 */1 */1", "* * * * *");
	round_trip("1,2 * * * 5-7", "1,2 * * * 0,5,6");
	round_trip("0,20,40 */2 1,15 */3 *", "*/20 */2 1,15 */3 *");
	round_trip("59 23 31 12 7", "59 23 31 12 0");
	round_trip("1-3,5,7-9 0 1 1 0", "1-3,5,7-9 0 1 1 0");
	round_trip("*/29 */11 */15 */5 */3", "*/29 */11 */15 */5 */3");
	round_trip("*/31 */12 */16 */6 */4", "0,31 0,12 1,17 1,7 0,4");
	round_trip("0 0 * * 0-6", "0 0 * * *");

	/* the longest field texts still fit */
	memset(&p, 0, sizeof(p));
	for (int v = 0; v < 60; v++)
		if (v % 3 != 0)
			p.minutes |= (uint64_t) 1 << v;
	for (int v = 0; v < 24; v++)
		if (v % 3 != 0)
			p.hours |= (uint32_t) 1 << v;
	for (int v = 1; v <= 31; v++)
		if (v % 3 != 0)
			p.mdays |= (uint32_t) 1 << v;
	for (int v = 1; v <= 12; v++)
		if (v % 3 != 0)
			p.months |= (uint16_t) (1 << v);
	p.wdays = 0x5B;				/* 0,1,3,4,6 */
	gw_cron_pattern_format(&p, buf, sizeof(buf));
	assert_true(strlen(buf) < sizeof(buf) - 1);
	snprintf(text, sizeof(text), "%s t", buf);
	assert_memory_equal(&parse_one(text)->pattern, &p, sizeof(p));

	/* short buffers truncate, NUL-terminated */
	p = parse_one("0,30 9-17 * * 1-5 t")->pattern;
	gw_cron_pattern_format(&p, small, sizeof(small));
	assert_string_equal(small, "0,30 9-");
	gw_cron_pattern_format(&p, small, 1);
	assert_string_equal(small, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_basic),
		cmocka_unit_test(test_fields_ranges_lists_steps),
		cmocka_unit_test(test_field_errors),
		cmocka_unit_test(test_line_structure_errors),
		cmocka_unit_test(test_task_identifiers),
		cmocka_unit_test(test_option_defaults),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_url_decoding),
		cmocka_unit_test(test_option_errors),
		cmocka_unit_test(test_comments_blank_lines_crlf),
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_duplicate_ids),
		cmocka_unit_test(test_too_many_entries),
		cmocka_unit_test(test_lenient),
		cmocka_unit_test(test_payload_in_line),
		cmocka_unit_test(test_json5_conversions),
		cmocka_unit_test(test_json5_errors),
		cmocka_unit_test(test_json5_output_bound),
		cmocka_unit_test(test_format_round_trip),
	};

	return cmocka_run_group_tests_name("cron_parse", tests, NULL, NULL);
}
