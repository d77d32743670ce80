/*-------------------------------------------------------------------------
 *
 * cron_json5.c
 *	  Crontab payloads: gw_cron_json5_to_json turns a JSON5 object, as
 *	  Graphile Worker accepts after a crontab entry, into the strict JSON
 *	  that add_job takes (or only validates it).
 *
 * Pure C without backend dependencies, unit-tested in tests/unit
 * (test_cron_parse.c).
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

/*
 * JSON5 to JSON
 *
 * A recursive descent over one JSON5 value that writes the equivalent
 * strict JSON as it goes.  Numbers keep their digits (hexadecimal integers
 * become decimal); strings keep their characters, re-escaped for JSON.
 * With out == NULL nothing is written, which validates only.
 */
typedef struct Json5State
{
	const char *in;
	const char *p;
	char	   *out;
	size_t		cap;
	size_t		len;
	bool		overflow;
	int			depth;
	GwCronError *err;
} Json5State;

static bool j5_value(Json5State *j);

static bool j5_error(Json5State *j, const char *at, const char *fmt,...)
			GW_PRINTF(3, 4);

static bool
j5_error(Json5State *j, const char *at, const char *fmt,...)
{
	va_list		ap;

	j->err->line = 1;
	j->err->column = (int) (at - j->in) + 1;
	va_start(ap, fmt);
	vsnprintf(j->err->message, sizeof(j->err->message), fmt, ap);
	va_end(ap);
	return false;
}

static void
j5_emit(Json5State *j, const char *s, size_t n)
{
	if (j->out == NULL || j->overflow)
		return;
	if (j->len + n >= j->cap)
	{
		j->overflow = true;
		return;
	}
	memcpy(j->out + j->len, s, n);
	j->len += n;
}

static void
j5_emit_char(Json5State *j, char c)
{
	j5_emit(j, &c, 1);
}

/*
 * j5_unicode_space returns the length of the UTF-8 encoded JSON5 whitespace
 * character (Unicode Zs, BOM, line and paragraph separators) at p, or 0.
 */
static int
j5_unicode_space(const unsigned char *p)
{
	if (p[0] == 0xC2 && p[1] == 0xA0)
		return 2;				/* U+00A0 */
	if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80)
		return 3;				/* U+1680 */
	if (p[0] == 0xE2 && p[1] == 0x80 &&
		((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 || p[2] == 0xA9 ||
		 p[2] == 0xAF))
		return 3;				/* U+2000..200A, U+2028, U+2029, U+202F */
	if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F)
		return 3;				/* U+205F */
	if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
		return 3;				/* U+3000 */
	if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
		return 3;				/* U+FEFF */
	return 0;
}

/* j5_skip skips whitespace and comments */
static bool
j5_skip(Json5State *j)
{
	for (;;)
	{
		const char *p = j->p;
		int			u;

		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
			*p == '\v' || *p == '\f')
			j->p++;
		else if ((u = j5_unicode_space((const unsigned char *) p)) > 0)
			j->p += u;
		else if (p[0] == '/' && p[1] == '/')
		{
			while (*j->p != '\0' && *j->p != '\n' && *j->p != '\r')
				j->p++;
		}
		else if (p[0] == '/' && p[1] == '*')
		{
			const char *close = strstr(p + 2, "*/");

			if (close == NULL)
				return j5_error(j, p, "unterminated comment");
			j->p = close + 2;
		}
		else
			return true;
	}
}

static bool
j5_ident_start(char c)
{
	return gw_cron_is_alpha(c) || c == '_' || c == '$';
}

static bool
j5_ident_char(char c)
{
	return j5_ident_start(c) || gw_cron_is_digit(c);
}

/*
 * j5_string converts the single- or double-quoted string at j->p into a
 * double-quoted JSON string.
 */
static bool
j5_string(Json5State *j)
{
	const char *open = j->p;
	char		quote = *j->p++;

	j5_emit_char(j, '"');
	for (;;)
	{
		unsigned char c = (unsigned char) *j->p;

		if (c == '\0')
			return j5_error(j, open, "unterminated string");
		if (c == (unsigned char) quote)
		{
			j->p++;
			break;
		}
		if (c == '\n' || c == '\r')
			return j5_error(j, j->p, "line break in string");
		if (c == '\\')
		{
			const char *esc = j->p;
			char		e = j->p[1];
			char		buf[8];

			j->p += 2;
			switch (e)
			{
				case '\0':
					return j5_error(j, open, "unterminated string");
				case '\'':
					j5_emit_char(j, '\'');
					break;
				case '"':
					j5_emit(j, "\\\"", 2);
					break;
				case '\\':
					j5_emit(j, "\\\\", 2);
					break;
				case 'b':
				case 'f':
				case 'n':
				case 'r':
				case 't':
					buf[0] = '\\';
					buf[1] = e;
					j5_emit(j, buf, 2);
					break;
				case 'v':
					j5_emit(j, "\\u000b", 6);
					break;
				case '0':
					if (gw_cron_is_digit(*j->p))
						return j5_error(j, esc,
										"octal escapes are not allowed in strings");
					j5_emit(j, "\\u0000", 6);
					break;
				case '1':
				case '2':
				case '3':
				case '4':
				case '5':
				case '6':
				case '7':
				case '8':
				case '9':
					return j5_error(j, esc,
									"invalid escape \"\\%c\" in string", e);
				case 'x':
					if (gw_cron_hex_value(j->p[0]) < 0 || gw_cron_hex_value(j->p[1]) < 0)
						return j5_error(j, esc,
										"\"\\x\" must be followed by 2 hexadecimal digits");
					memcpy(buf, "\\u00", 4);
					buf[4] = j->p[0];
					buf[5] = j->p[1];
					j5_emit(j, buf, 6);
					j->p += 2;
					break;
				case 'u':
					for (int i = 0; i < 4; i++)
					{
						if (gw_cron_hex_value(j->p[i]) < 0)
							return j5_error(j, esc,
											"\"\\u\" must be followed by 4 hexadecimal digits");
					}
					j5_emit(j, esc, 6);
					j->p += 4;
					break;
				case '\r':
				case '\n':
					/* line continuation: the line break is dropped */
					if (e == '\r' && *j->p == '\n')
						j->p++;
					break;
				default:
					/* any other escaped character stands for itself */
					j->p--;
					continue;
			}
			continue;
		}
		if (c == '"')
			j5_emit(j, "\\\"", 2);
		else if (c < 0x20)
		{
			char		buf[8];

			if (c == '\t')
				j5_emit(j, "\\t", 2);
			else if (c == '\b')
				j5_emit(j, "\\b", 2);
			else if (c == '\f')
				j5_emit(j, "\\f", 2);
			else
			{
				snprintf(buf, sizeof(buf), "\\u%04x", c);
				j5_emit(j, buf, 6);
			}
		}
		else
			j5_emit_char(j, (char) c);
		j->p++;
	}
	j5_emit_char(j, '"');
	return true;
}

/*
 * j5_number converts a JSON5 number: an optional sign, then hexadecimal
 * digits after 0x, or decimal digits with an optional fraction (either side
 * of the point may be empty, not both) and exponent.
 */
static bool
j5_number(Json5State *j)
{
	const char *start = j->p;
	const char *p = j->p;
	bool		neg = false;

	if (*p == '+' || *p == '-')
	{
		neg = (*p == '-');
		p++;
	}
	if (strncmp(p, "Infinity", 8) == 0 || strncmp(p, "NaN", 3) == 0)
		return j5_error(j, start, "Infinity and NaN cannot be represented in JSON");

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
	{
		uint64_t	v = 0;
		const char *digits = p + 2;
		char		buf[24];

		p = digits;
		while (*p == '0')
			p++;
		for (; gw_cron_hex_value(*p) >= 0; p++)
		{
			if (v > UINT64_MAX >> 4)
				return j5_error(j, start,
								"hexadecimal number is larger than 0xFFFFFFFFFFFFFFFF");
			v = (v << 4) | (uint64_t) gw_cron_hex_value(*p);
		}
		if (p == digits)
			return j5_error(j, digits,
							"expected hexadecimal digits after \"0x\"");
		if (neg && v != 0)
			j5_emit_char(j, '-');
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);
		j5_emit(j, buf, strlen(buf));
	}
	else
	{
		const char *int_start = p;
		const char *int_end;
		const char *frac_start = NULL;
		const char *frac_end = NULL;

		if (p[0] == '0' && gw_cron_is_digit(p[1]))
			return j5_error(j, p, "numbers must not have leading zeros");
		while (gw_cron_is_digit(*p))
			p++;
		int_end = p;
		if (*p == '.')
		{
			frac_start = ++p;
			while (gw_cron_is_digit(*p))
				p++;
			frac_end = p;
		}
		if (int_end == int_start && (frac_start == NULL || frac_end == frac_start))
			return j5_error(j, start, "invalid number");

		if (neg)
			j5_emit_char(j, '-');
		if (int_end == int_start)
			j5_emit_char(j, '0');
		else
			j5_emit(j, int_start, (size_t) (int_end - int_start));
		if (frac_start != NULL && frac_end > frac_start)
		{
			j5_emit_char(j, '.');
			j5_emit(j, frac_start, (size_t) (frac_end - frac_start));
		}
		if (*p == 'e' || *p == 'E')
		{
			const char *exp = p;

			p++;
			if (*p == '+' || *p == '-')
				p++;
			if (!gw_cron_is_digit(*p))
				return j5_error(j, exp, "expected digits in the exponent");
			while (gw_cron_is_digit(*p))
				p++;
			j5_emit(j, exp, (size_t) (p - exp));
		}
	}
	if (j5_ident_char(*p) || *p == '.')
		return j5_error(j, p, "invalid number");
	j->p = p;
	return true;
}

/* j5_word converts true, false and null, and rejects any other word */
static bool
j5_word(Json5State *j)
{
	const char *w = j->p;
	const char *end = w;
	size_t		n;

	while (j5_ident_char(*end))
		end++;
	n = (size_t) (end - w);
	if ((n == 4 && strncmp(w, "true", 4) == 0) ||
		(n == 5 && strncmp(w, "false", 5) == 0) ||
		(n == 4 && strncmp(w, "null", 4) == 0))
	{
		j5_emit(j, w, n);
		j->p = end;
		return true;
	}
	if ((n == 8 && strncmp(w, "Infinity", 8) == 0) ||
		(n == 3 && strncmp(w, "NaN", 3) == 0))
		return j5_error(j, w, "Infinity and NaN cannot be represented in JSON");
	return j5_error(j, w, "unexpected word \"%.*s\", strings must be quoted",
					n > 32 ? 32 : (int) n, w);
}

static bool
j5_enter(Json5State *j)
{
	if (++j->depth > GW_CRON_JSON_MAX_DEPTH)
		return j5_error(j, j->p, "nesting is deeper than %d levels",
						GW_CRON_JSON_MAX_DEPTH);
	return true;
}

/* j5_object converts an object; unquoted keys become quoted */
static bool
j5_object(Json5State *j)
{
	if (!j5_enter(j))
		return false;
	j->p++;
	j5_emit_char(j, '{');
	if (!j5_skip(j))
		return false;
	if (*j->p == '}')
	{
		j->p++;
		j5_emit_char(j, '}');
		j->depth--;
		return true;
	}
	for (;;)
	{
		if (*j->p == '"' || *j->p == '\'')
		{
			if (!j5_string(j))
				return false;
		}
		else if (j5_ident_start(*j->p))
		{
			const char *k = j->p;

			while (j5_ident_char(*j->p))
				j->p++;
			j5_emit_char(j, '"');
			j5_emit(j, k, (size_t) (j->p - k));
			j5_emit_char(j, '"');
		}
		else if (*j->p == '\0')
			return j5_error(j, j->p, "unexpected end of payload, expected a property name");
		else if (*j->p == '\\' || (unsigned char) *j->p >= 0x80)
			return j5_error(j, j->p,
							"unquoted property names must match [A-Za-z_$][A-Za-z0-9_$]*, quote this one");
		else
			return j5_error(j, j->p, "expected a property name");

		if (!j5_skip(j))
			return false;
		if (*j->p != ':')
			return j5_error(j, j->p, "expected \":\" after the property name");
		j->p++;
		j5_emit_char(j, ':');
		if (!j5_skip(j) || !j5_value(j) || !j5_skip(j))
			return false;
		if (*j->p == ',')
		{
			j->p++;
			if (!j5_skip(j))
				return false;
			if (*j->p != '}')
			{
				j5_emit_char(j, ',');
				continue;
			}
		}
		if (*j->p == '}')
		{
			j->p++;
			j5_emit_char(j, '}');
			j->depth--;
			return true;
		}
		if (*j->p == '\0')
			return j5_error(j, j->p, "unexpected end of payload, expected \"}\"");
		return j5_error(j, j->p, "expected \",\" or \"}\"");
	}
}

static bool
j5_array(Json5State *j)
{
	if (!j5_enter(j))
		return false;
	j->p++;
	j5_emit_char(j, '[');
	if (!j5_skip(j))
		return false;
	if (*j->p == ']')
	{
		j->p++;
		j5_emit_char(j, ']');
		j->depth--;
		return true;
	}
	for (;;)
	{
		if (!j5_value(j) || !j5_skip(j))
			return false;
		if (*j->p == ',')
		{
			j->p++;
			if (!j5_skip(j))
				return false;
			if (*j->p != ']')
			{
				j5_emit_char(j, ',');
				continue;
			}
		}
		if (*j->p == ']')
		{
			j->p++;
			j5_emit_char(j, ']');
			j->depth--;
			return true;
		}
		if (*j->p == '\0')
			return j5_error(j, j->p, "unexpected end of payload, expected \"]\"");
		return j5_error(j, j->p, "expected \",\" or \"]\"");
	}
}

static bool
j5_value(Json5State *j)
{
	char		c = *j->p;

	if (c == '{')
		return j5_object(j);
	if (c == '[')
		return j5_array(j);
	if (c == '"' || c == '\'')
		return j5_string(j);
	if (gw_cron_is_digit(c) || c == '+' || c == '-' || c == '.')
		return j5_number(j);
	if (j5_ident_start(c))
		return j5_word(j);
	if (c == '\0')
		return j5_error(j, j->p, "unexpected end of payload, expected a value");
	if ((unsigned char) c < 0x20 || (unsigned char) c >= 0x7f)
		return j5_error(j, j->p, "unexpected byte 0x%02x", (unsigned char) c);
	return j5_error(j, j->p, "unexpected character \"%c\"", c);
}

/*
 * gw_cron_json5_to_json converts the JSON5 object text `in` to strict JSON
 * in out[0..outcap), NUL-terminated; GW_CRON_JSON_OUTCAP(strlen(in)) bytes
 * are always enough.  out may be NULL to validate only.  Returns false with
 * *err filled on a syntax error (err->column counts bytes from 1 at the
 * start of `in`), when the top-level value is not an object, or when out is
 * too small.
 */
bool
gw_cron_json5_to_json(const char *in, char *out, size_t outcap,
					  GwCronError *err)
{
	Json5State	j;

	j.in = in;
	j.p = in;
	j.out = out;
	j.cap = outcap;
	j.len = 0;
	j.overflow = (out != NULL && outcap == 0);
	j.depth = 0;
	j.err = err;

	if (!j5_skip(&j))
		return false;
	if (*j.p != '{')
		return j5_error(&j, j.p, "the payload must be a JSON5 object");
	if (!j5_object(&j) || !j5_skip(&j))
		return false;
	if (*j.p != '\0')
		return j5_error(&j, j.p, "unexpected text after the payload object");
	if (j.overflow)
		return j5_error(&j, in, "the converted payload does not fit in %zu bytes",
						outcap);
	if (out != NULL)
		out[j.len] = '\0';
	return true;
}
