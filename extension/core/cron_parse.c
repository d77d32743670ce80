/*-------------------------------------------------------------------------
 *
 * cron_parse.c
 *	  The crontab grammar of Graphile Worker 0.18, plus a tz option:
 *
 *		MIN HOUR DOM MONTH DOW TASK [?OPTIONS] [{PAYLOAD}]
 *
 * gw_cron_parse splits a crontab text into GwCronEntry structs, in place
 * and without allocating, checking payloads with cron_json5.c;
 * gw_cron_pattern_format writes a pattern back as canonical text.
 *
 * Every error names the line, the byte column in the original line and the
 * offending field, option or character, so that a crontab rejected by the
 * supervisor (or by the function that stores a crontab) can be fixed
 * without guessing.  Parsing stops at the first error in text order.
 *
 * Pure C without backend dependencies, unit-tested in tests/unit; the
 * matching and schedule arithmetic live in cron_schedule.c.
 *
 *-------------------------------------------------------------------------
 */
#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define GW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define GW_PRINTF(f, a)
#endif

/* Clamp for numbers read from the text, above every valid value */
#define NUMBER_CLAMP 1000000

#define SYNTAX_MESSAGE \
	"expected 5 time fields, a task identifier, optional ?options and an optional {payload}"

/* The five time fields; day of week accepts 7 for Sunday */
typedef struct FieldDef
{
	const char *name;
	int			min;
	int			max;
} FieldDef;

static const FieldDef field_defs[5] = {
	{"minute", 0, 59},
	{"hour", 0, 23},
	{"day-of-month", 1, 31},
	{"month", 1, 12},
	{"day-of-week", 0, 7},
};

/* The options, in the order of their bit in LineState.seen */
enum
{
	OPT_ID,
	OPT_FILL,
	OPT_MAX,
	OPT_QUEUE,
	OPT_JOB_KEY,
	OPT_JOB_KEY_MODE,
	OPT_PRIORITY,
	OPT_TZ,
	OPT_COUNT
};

static const char *const option_names[OPT_COUNT] = {
	"id", "fill", "max", "queue", "jobKey", "jobKeyMode", "priority", "tz",
};

/* What the parse of one line needs to report an error */
typedef struct LineState
{
	const char *start;			/* first byte of the line as written */
	int			lineno;
	GwCronError *err;
	int			id_column;		/* column of the id value, or of the task */
	unsigned int seen;			/* bit per option already given */
} LineState;

static bool line_error(LineState *ls, const char *at, const char *fmt,...)
			GW_PRINTF(3, 4);

/*
 * line_error fills ls->err for the byte at `at` of the current line and
 * returns false, so that callers can "return line_error(...)".
 */
static bool
line_error(LineState *ls, const char *at, const char *fmt,...)
{
	va_list		ap;

	ls->err->line = ls->lineno;
	ls->err->column = (int) (at - ls->start) + 1;
	va_start(ap, fmt);
	vsnprintf(ls->err->message, sizeof(ls->err->message), fmt, ap);
	va_end(ap);
	return false;
}

/* The whitespace that separates fields (\s of the Node regex, in ASCII) */
static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* The characters of the time fields in the Node regex: [0-9*,/-] */
static bool
is_time_char(char c)
{
	return gw_cron_is_digit(c) || c == '*' || c == ',' || c == '/' || c == '-';
}

static const char *
skip_space(const char *p)
{
	while (is_space(*p))
		p++;
	return p;
}

static const char *
token_end(const char *p)
{
	while (*p != '\0' && !is_space(*p))
		p++;
	return p;
}

/*
 * read_number reads the digits at *p (at least one) into *val, clamped at
 * NUMBER_CLAMP so that huge numbers are reported as out of range rather than
 * overflowing.
 */
static bool
read_number(const char **p, const char *end, int *val)
{
	const char *s = *p;
	int			v = 0;

	while (s < end && gw_cron_is_digit(*s))
	{
		v = v * 10 + (*s - '0');
		if (v > NUMBER_CLAMP)
			v = NUMBER_CLAMP;
		s++;
	}
	if (s == *p)
		return false;
	*val = v;
	*p = s;
	return true;
}

/*
 * bad_field_char reports the unexpected character at p of a time field,
 * naming the cron dialect features that Graphile Worker does not have.
 */
static bool
bad_field_char(LineState *ls, const FieldDef *f, const char *p, const char *end)
{
	unsigned char c = (unsigned char) *p;

	if (gw_cron_is_alpha(*p))
	{
		const char *w = p;

		while (w < end && gw_cron_is_alpha(*w))
			w++;
		if (w - p == 1 && (c == 'L' || c == 'W'))
			return line_error(ls, p, "%s field: \"%c\" is not supported",
							  f->name, c);
		return line_error(ls, p,
						  "%s field: names such as \"%.*s\" are not supported, use numbers",
						  f->name, (int) (w - p), p);
	}
	if (c == '?' || c == '#')
		return line_error(ls, p, "%s field: \"%c\" is not supported",
						  f->name, c);
	if (c < 0x20 || c >= 0x7f)
		return line_error(ls, p, "%s field: unexpected byte 0x%02x",
						  f->name, c);
	return line_error(ls, p, "%s field: unexpected character \"%c\"",
					  f->name, c);
}

/* set_bit adds value v of field f to *bits, folding Sunday 7 into 0 */
static void
set_bit(const FieldDef *f, uint64_t *bits, int v)
{
	if (f->max == 7 && v == 7)
		v = 0;
	*bits |= (uint64_t) 1 << v;
}

/*
 * parse_field parses the time field [tok, end) as a comma-separated list of
 * "*", "*" "/" n, n and a-b, and sets the bits of the values it names.
 */
static bool
parse_field(LineState *ls, const FieldDef *f, const char *tok, const char *end,
			uint64_t *bits)
{
	const char *p = tok;
	int			top = (f->max == 7) ? 6 : f->max;

	*bits = 0;
	for (;;)
	{
		const char *part = p;

		if (p == end || *p == ',')
			return line_error(ls, p, "%s field: empty list element", f->name);

		if (*p == '*')
		{
			int			step = 1;

			p++;
			if (p < end && *p == '/')
			{
				const char *num;

				p++;
				num = p;
				if (!read_number(&p, end, &step))
				{
					if (p == end || *p == ',')
						return line_error(ls, p,
										  "%s field: expected a number after \"*/\"",
										  f->name);
					return bad_field_char(ls, f, p, end);
				}
				if (step == 0)
					return line_error(ls, num,
									  "%s field: step must be at least 1",
									  f->name);
			}
			for (int v = f->min; v <= top; v += step)
				set_bit(f, bits, v);
		}
		else if (gw_cron_is_digit(*p))
		{
			const char *num_a = p;
			int			a = 0;
			int			b;

			(void) read_number(&p, end, &a);	/* a digit is there */
			if (a < f->min || a > f->max)
				return line_error(ls, num_a, "%s field: %.*s is out of range %d-%d",
								  f->name, (int) (p - num_a), num_a,
								  f->min, f->max);
			if (p < end && *p == '-')
			{
				const char *num_b;

				p++;
				num_b = p;
				if (!read_number(&p, end, &b))
				{
					if (p == end || *p == ',')
						return line_error(ls, p,
										  "%s field: expected a number after \"-\"",
										  f->name);
					return bad_field_char(ls, f, p, end);
				}
				if (b < f->min || b > f->max)
					return line_error(ls, num_b,
									  "%s field: %.*s is out of range %d-%d",
									  f->name, (int) (p - num_b), num_b,
									  f->min, f->max);
				if (b <= a)
					return line_error(ls, part,
									  "%s field: range start must be less than range end",
									  f->name);
				if (p < end && *p == '/')
					return line_error(ls, p,
									  "%s field: steps on ranges such as \"1-10/2\" are not supported",
									  f->name);
				for (int v = a; v <= b; v++)
					set_bit(f, bits, v);
			}
			else
			{
				if (p < end && *p == '/')
					return line_error(ls, p,
									  "%s field: a step is only supported after \"*\"",
									  f->name);
				set_bit(f, bits, a);
			}
		}
		else
			return bad_field_char(ls, f, p, end);

		if (p == end)
			return true;
		if (*p != ',')
			return bad_field_char(ls, f, p, end);
		p++;
	}
}

/*
 * url_decode decodes s in place like URLSearchParams: "+" is a space, "%XX"
 * a byte, and a "%" not followed by two hex digits stays as it is.  Returns
 * the decoded length, which differs from strlen(s) afterwards when the text
 * held %00.
 */
static size_t
url_decode(char *s)
{
	char	   *r = s;
	char	   *w = s;

	while (*r != '\0')
	{
		if (*r == '+')
		{
			*w++ = ' ';
			r++;
		}
		else if (*r == '%' && gw_cron_hex_value(r[1]) >= 0 && gw_cron_hex_value(r[2]) >= 0)
		{
			*w++ = (char) (gw_cron_hex_value(r[1]) * 16 + gw_cron_hex_value(r[2]));
			r += 3;
		}
		else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t) (w - s);
}

/* only_chars: s is non-empty and every byte of it satisfies ok() */
static bool
only_chars(const char *s, bool (*ok) (char))
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
	{
		if (!ok(*s))
			return false;
	}
	return true;
}

static bool
id_char(char c)
{
	return gw_cron_is_alpha(c) || gw_cron_is_digit(c) || c == '_' || c == '-';
}

static bool
queue_char(char c)
{
	return gw_cron_is_alpha(c) || gw_cron_is_digit(c) || c == '_' || c == '-' || c == ':';
}

static bool
tz_char(char c)
{
	return gw_cron_is_alpha(c) || gw_cron_is_digit(c) || c == '_' || c == '+' || c == '/' ||
		c == '-';
}

/*
 * parse_time_phrase reads (\d+[smhdw])+ into seconds; false on bad syntax,
 * and *too_long when the total exceeds GW_CRON_FILL_MAX_SECONDS.
 */
static bool
parse_time_phrase(const char *s, int64_t *seconds, bool *too_long)
{
	int64_t		total = 0;

	*too_long = false;
	if (*s == '\0')
		return false;
	while (*s != '\0')
	{
		int64_t		n = 0;
		int64_t		unit;
		const char *digits = s;

		while (gw_cron_is_digit(*s))
		{
			n = n * 10 + (*s - '0');
			if (n > GW_CRON_FILL_MAX_SECONDS)
				n = GW_CRON_FILL_MAX_SECONDS + 1;
			s++;
		}
		if (s == digits)
			return false;
		switch (*s)
		{
			case 's':
				unit = 1;
				break;
			case 'm':
				unit = 60;
				break;
			case 'h':
				unit = 3600;
				break;
			case 'd':
				unit = 86400;
				break;
			case 'w':
				unit = 7 * 86400;
				break;
			default:
				return false;
		}
		s++;
		if (n > GW_CRON_FILL_MAX_SECONDS / unit)
			total = GW_CRON_FILL_MAX_SECONDS + 1;
		else
			total += n * unit;
		if (total > GW_CRON_FILL_MAX_SECONDS)
		{
			*too_long = true;
			total = GW_CRON_FILL_MAX_SECONDS + 1;
		}
	}
	*seconds = total;
	return true;
}

/*
 * parse_int reads an optional "-" (when allow_minus) and digits, the whole
 * of s, into *val, which must lie within [lo, hi].
 */
static bool
parse_int(const char *s, bool allow_minus, int lo, int hi, int *val)
{
	bool		neg = false;
	long		v = 0;

	if (allow_minus && *s == '-')
	{
		neg = true;
		s++;
	}
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
	{
		if (!gw_cron_is_digit(*s))
			return false;
		v = v * 10 + (*s - '0');
		if (v > 100000)
			v = 100000;
	}
	if (neg)
		v = -v;
	if (v < lo || v > hi)
		return false;
	*val = (int) v;
	return true;
}

/*
 * apply_option checks one option and stores it in *e.  key and val were
 * decoded in place, so they still start where they were written, which
 * gives the error columns; val_len is the decoded length of val.
 */
static bool
apply_option(LineState *ls, GwCronEntry *e, const char *key, char *val,
			 size_t val_len)
{
	int			opt;
	bool		too_long;

	for (opt = 0; opt < OPT_COUNT; opt++)
	{
		if (strcmp(key, option_names[opt]) == 0)
			break;
	}
	if (opt == OPT_COUNT)
		return line_error(ls, key, "unsupported crontab option \"%.64s\"",
						  key);
	if (ls->seen & (1u << opt))
		return line_error(ls, key, "option \"%s\" given twice",
						  option_names[opt]);
	ls->seen |= 1u << opt;

	if (strlen(val) != val_len)
		return line_error(ls, val, "option \"%s\" contains a NUL byte (%%00)",
						  option_names[opt]);

	switch (opt)
	{
		case OPT_ID:
			if (!(gw_cron_is_alpha(val[0]) || val[0] == '_') || !only_chars(val, id_char))
				return line_error(ls, val,
								  "invalid id \"%.64s\": must match [_a-zA-Z][-_a-zA-Z0-9]*",
								  val);
			e->id = val;
			ls->id_column = (int) (val - ls->start) + 1;
			break;
		case OPT_FILL:
			if (!parse_time_phrase(val, &e->fill_seconds, &too_long))
				return line_error(ls, val,
								  "invalid fill \"%.64s\": expected a time phrase such as 4w3d2h1m30s",
								  val);
			if (too_long)
				return line_error(ls, val,
								  "fill \"%.64s\" is longer than 36600 days",
								  val);
			break;
		case OPT_MAX:
			if (!parse_int(val, false, 1, 32767, &e->max_attempts))
				return line_error(ls, val,
								  "invalid max \"%.64s\": expected an integer from 1 to 32767",
								  val);
			break;
		case OPT_QUEUE:
			if (!only_chars(val, queue_char))
				return line_error(ls, val,
								  "invalid queue name \"%.64s\": must match [-a-zA-Z0-9_:]+",
								  val);
			if (val_len > GW_CRON_QUEUE_MAXLEN)
				return line_error(ls, val,
								  "queue name is longer than %d bytes",
								  GW_CRON_QUEUE_MAXLEN);
			e->queue = val;
			break;
		case OPT_JOB_KEY:
			if (val_len == 0)
				return line_error(ls, val,
								  "option \"jobKey\" must not be empty");
			e->job_key = val;
			e->job_key_column = (int) (val - ls->start) + 1;
			break;
		case OPT_JOB_KEY_MODE:
			if (strcmp(val, "replace") != 0 &&
				strcmp(val, "preserve_run_at") != 0)
				return line_error(ls, val,
								  "invalid jobKeyMode \"%.64s\": expected replace or preserve_run_at",
								  val);
			e->job_key_mode = val;
			break;
		case OPT_PRIORITY:
			if (!parse_int(val, true, -32768, 32767, &e->priority))
				return line_error(ls, val,
								  "invalid priority \"%.64s\": expected an integer from -32768 to 32767",
								  val);
			e->has_priority = true;
			break;
		case OPT_TZ:
			if (!only_chars(val, tz_char))
				return line_error(ls, val,
								  "invalid time zone name \"%.64s\": must match [A-Za-z0-9_+/-]+",
								  val);
			if (val_len > GW_CRON_TZ_MAXLEN)
				return line_error(ls, val,
								  "time zone name is longer than %d bytes",
								  GW_CRON_TZ_MAXLEN);
			e->tz = val;
			e->tz_column = (int) (val - ls->start) + 1;
			break;
	}
	return true;
}

/*
 * parse_options parses the NUL-terminated query string s (the text after
 * "?"), decoding keys and values in place; empty pairs are skipped and a
 * key without "=" has the empty value, as with URLSearchParams.
 */
static bool
parse_options(LineState *ls, GwCronEntry *e, char *s)
{
	char	   *p = s;

	for (;;)
	{
		char	   *pair = p;
		char	   *eq = NULL;
		char	   *val;
		bool		last;
		size_t		val_len;

		while (*p != '\0' && *p != '&')
		{
			if (*p == '=' && eq == NULL)
				eq = p;
			p++;
		}
		last = (*p == '\0');
		*p = '\0';
		if (p > pair)
		{
			if (eq != NULL)
			{
				*eq = '\0';
				val = eq + 1;
			}
			else
				val = p;
			url_decode(pair);
			val_len = url_decode(val);
			if (!apply_option(ls, e, pair, val, val_len))
				return false;
		}
		if (last)
			return true;
		p++;
	}
}

/*
 * count_plain_tokens counts the tokens from p on that are neither ?options
 * nor part of a {payload}; it tells a misspelt time field ("MON") from a
 * task identifier that came too early (a line with 4 time fields).
 */
static int
count_plain_tokens(const char *p)
{
	int			n = 0;

	for (p = skip_space(p); *p != '\0' && *p != '{'; p = skip_space(p))
	{
		if (*p != '?')
			n++;
		p = token_end(p);
	}
	return n;
}

/*
 * parse_line parses the trimmed, non-empty, NUL-terminated line at s into
 * *e.  `prior` are the entries of the earlier lines, for the id check.
 */
static bool
parse_line(LineState *ls, char *s, GwCronEntry *e,
		   const GwCronEntry *prior, int nprior)
{
	char	   *p = s;
	char	   *task;
	char	   *task_end;
	uint64_t	bits[5];
	GwCronError jerr;

	memset(e, 0, sizeof(*e));
	e->line = ls->lineno;
	ls->seen = 0;

	if (*p == '@')
	{
		int			len = (int) (token_end(p) - p);

		return line_error(ls, p,
						  "macros such as \"%.*s\" are not supported, write the 5 time fields",
						  len > 32 ? 32 : len, p);
	}

	for (int i = 0; i < 5; i++)
	{
		const char *end;

		if (*p == '\0')
			return line_error(ls, p, SYNTAX_MESSAGE);
		end = token_end(p);
		if (*p == '{' ||
			((gw_cron_is_alpha(*p) || *p == '_') && count_plain_tokens(end) < 5 - i))
			return line_error(ls, p, SYNTAX_MESSAGE);
		if (!parse_field(ls, &field_defs[i], p, end, &bits[i]))
			return false;
		p = (char *) skip_space(end);
	}
	e->pattern.minutes = bits[0];
	e->pattern.hours = (uint32_t) bits[1];
	e->pattern.mdays = (uint32_t) bits[2];
	e->pattern.months = (uint16_t) bits[3];
	e->pattern.wdays = (uint8_t) bits[4];

	/* the task identifier */
	if (*p == '\0' || *p == '?' || *p == '{')
		return line_error(ls, p, SYNTAX_MESSAGE);
	task = p;
	task_end = (char *) token_end(p);
	if (is_time_char(*p))
	{
		const char *q = p;
		int			len = (int) (task_end - p);

		while (q < task_end && is_time_char(*q))
			q++;
		if (q == task_end)
			return line_error(ls, p,
							  "expected a task identifier after the 5 time fields, found \"%.*s\" (a seconds field is not supported)",
							  len > 32 ? 32 : len, p);
	}
	if (!gw_cron_is_alpha(*p) && *p != '_')
		return line_error(ls, p,
						  "task identifier must start with a letter or \"_\"");
	for (p++; p < task_end; p++)
	{
		if (!(gw_cron_is_alpha(*p) || gw_cron_is_digit(*p) || *p == '_' || *p == ':' ||
			  *p == '/' || *p == '-'))
		{
			if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
				return line_error(ls, p,
								  "unexpected byte 0x%02x in task identifier",
								  (unsigned char) *p);
			return line_error(ls, p,
							  "unexpected character \"%c\" in task identifier",
							  *p);
		}
	}
	if (task_end - task > GW_CRON_TASK_MAXLEN)
		return line_error(ls, task, "task identifier is longer than %d bytes",
						  GW_CRON_TASK_MAXLEN);
	e->task = task;
	e->id = task;
	ls->id_column = (int) (task - ls->start) + 1;
	p = (char *) skip_space(task_end);
	*task_end = '\0';

	/* ?options */
	if (*p == '?')
	{
		char	   *opts = p + 1;
		char	   *opts_end = (char *) token_end(opts);

		if (opts_end == opts)
			return line_error(ls, p, "expected options after \"?\"");
		p = (char *) skip_space(opts_end);
		*opts_end = '\0';
		if (!parse_options(ls, e, opts))
			return false;
		if (e->job_key != NULL && e->job_key_mode == NULL)
			e->job_key_mode = "replace";
	}

	/* {payload} */
	if (*p == '{')
	{
		size_t		len = strlen(p);

		if (!gw_cron_json5_to_json(p, NULL, 0, &jerr))
			return line_error(ls, p + jerr.column - 1, "invalid payload: %s",
							  jerr.message);
		if (p[len - 1] != '}')
			return line_error(ls, p + len - 1,
							  "the payload must end the line with \"}\"");
		e->payload = p;
		e->payload_column = (int) (p - ls->start) + 1;
		p += len;
	}

	if (*p != '\0')
		return line_error(ls, p, SYNTAX_MESSAGE);

	for (int i = 0; i < nprior; i++)
	{
		if (strcmp(prior[i].id, e->id) == 0)
			return line_error(ls, ls->start + ls->id_column - 1,
							  "duplicate id \"%.64s\" (first used on line %d)",
							  e->id, prior[i].line);
	}
	return true;
}

/*
 * gw_cron_max_entries returns an upper bound of the number of entries in
 * text (its number of lines), to size the array given to gw_cron_parse.
 */
int
gw_cron_max_entries(const char *text)
{
	int			n = 1;

	for (; *text != '\0'; text++)
	{
		if (*text == '\n')
			n++;
	}
	return n;
}

/*
 * parse_text is gw_cron_parse, or with report given gw_cron_parse_lenient.
 */
static int
parse_text(char *text, GwCronEntry *entries, int max_entries, GwCronError *err,
		   GwCronReportFn report, void *arg)
{
	char	   *line = text;
	int			lineno = 0;
	int			n = 0;

	while (line != NULL)
	{
		char	   *nl = strchr(line, '\n');
		char	   *end;
		char	   *s;
		LineState	ls;

		lineno++;
		if (nl != NULL)
			*nl = '\0';
		end = line + strlen(line);
		if (end > line && end[-1] == '\r')
			*--end = '\0';
		while (end > line && is_space(end[-1]))
			*--end = '\0';
		s = (char *) skip_space(line);

		ls.start = line;
		ls.lineno = lineno;
		ls.err = err;

		if (*s != '\0' && *s != '#')
		{
			if (n >= max_entries)
			{
				line_error(&ls, s, "too many crontab entries (the limit is %d)",
						   max_entries);
				if (report == NULL)
					return -1;
				report(err, arg);
			}
			else if (parse_line(&ls, s, &entries[n], entries, n))
				n++;
			else if (report == NULL)
				return -1;
			else
				report(err, arg);
		}
		line = (nl != NULL) ? nl + 1 : NULL;
	}
	return n;
}

/*
 * gw_cron_parse parses a whole crontab text in place: it splits lines and
 * decodes option values inside `text`, and the entries' strings point into
 * it.  Lines are separated by "\n" with an optional "\r" before it; blank
 * lines and lines starting with "#" (after leading whitespace) are skipped.
 * Returns the number of entries stored in entries[0..max_entries), or -1
 * with *err describing the first error in text order.
 */
int
gw_cron_parse(char *text, GwCronEntry *entries, int max_entries,
			  GwCronError *err)
{
	return parse_text(text, entries, max_entries, err, NULL, NULL);
}

/*
 * gw_cron_parse_lenient parses as gw_cron_parse, but a line with an error
 * is reported with report(err, arg) and left out, and parsing goes on with
 * the next line.  Returns the number of entries stored.
 */
int
gw_cron_parse_lenient(char *text, GwCronEntry *entries, int max_entries,
					  GwCronReportFn report, void *arg)
{
	GwCronError err;

	return parse_text(text, entries, max_entries, &err, report, arg);
}

/*
 * Pattern formatting
 */
typedef struct TextBuf
{
	char	   *buf;
	size_t		cap;
	size_t		len;
} TextBuf;

static void
tb_printf(TextBuf *tb, const char *fmt,...) GW_PRINTF(2, 3);

static void
tb_printf(TextBuf *tb, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (tb->len + 1 >= tb->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(tb->buf + tb->len, tb->cap - tb->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		tb->len += (size_t) n;
	if (tb->len >= tb->cap)
		tb->len = tb->cap - 1;
}

/*
 * format_field writes the set `bits` of values min..max as "*", "*" "/" n
 * (when the set is exactly such a step of at least 3 values), or a list of
 * numbers and of ranges of at least 3 values.
 */
static void
format_field(TextBuf *tb, uint64_t bits, int min, int max)
{
	uint64_t	full = 0;
	bool		first = true;

	for (int v = min; v <= max; v++)
		full |= (uint64_t) 1 << v;
	bits &= full;
	if (bits == full)
	{
		tb_printf(tb, "*");
		return;
	}
	if (bits == 0)
	{
		tb_printf(tb, "-");
		return;
	}
	for (int step = 2; step <= (max - min) / 2; step++)
	{
		uint64_t	s = 0;

		for (int v = min; v <= max; v += step)
			s |= (uint64_t) 1 << v;
		if (s == bits)
		{
			tb_printf(tb, "*/%d", step);
			return;
		}
	}
	for (int v = min; v <= max; v++)
	{
		int			end = v;

		if (!(bits & ((uint64_t) 1 << v)))
			continue;
		while (end < max && (bits & ((uint64_t) 1 << (end + 1))))
			end++;
		if (end - v >= 2)
		{
			tb_printf(tb, "%s%d-%d", first ? "" : ",", v, end);
			v = end;
		}
		else
			tb_printf(tb, "%s%d", first ? "" : ",", v);
		first = false;
	}
}

/*
 * gw_cron_pattern_format writes the five fields of *p as canonical crontab
 * text, e.g. "0,30 9-17 * * 1-5", into buf (GW_CRON_PATTERN_TEXT_LEN bytes
 * are always enough; shorter buffers truncate).  Parsing the text gives the
 * same pattern back.
 */
void
gw_cron_pattern_format(const GwCronPattern *p, char *buf, size_t len)
{
	TextBuf		tb = {buf, len, 0};

	if (len == 0)
		return;
	buf[0] = '\0';
	format_field(&tb, p->minutes, 0, 59);
	tb_printf(&tb, " ");
	format_field(&tb, p->hours, 0, 23);
	tb_printf(&tb, " ");
	format_field(&tb, p->mdays, 1, 31);
	tb_printf(&tb, " ");
	format_field(&tb, p->months, 1, 12);
	tb_printf(&tb, " ");
	format_field(&tb, p->wdays, 0, 6);
}
