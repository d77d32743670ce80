/*-------------------------------------------------------------------------
 *
 * worker_id.c
 *	  Formats and parses worker ids, the locked_by value of our processes:
 *
 *		gw-<system identifier, 16 hex>-<pid, hex>-<start time in us, hex>
 *
 * Every process incarnation gets a distinct id (a pid is reused only with a
 * different start time), and the system identifier says which server it
 * belongs to.  Crash recovery releases a lock only when its id parses, names
 * this server, and names no live process; locks of Node ("pool-...") and
 * Rust ("graphile_worker_...") workers never parse.
 *
 * Pure C without backend dependencies, unit-tested in tests/unit.
 *
 *-------------------------------------------------------------------------
 */
#include "worker_id.h"

#include <stdio.h>

/*
 * gw_worker_id_format writes the id into buf (at least GW_WORKER_ID_LEN
 * bytes).
 */
void
gw_worker_id_format(const GwWorkerId *id, char *buf, size_t len)
{
	snprintf(buf, len, "gw-%016llx-%x-%llx",
			 (unsigned long long) id->system_id,
			 (unsigned int) id->pid,
			 (unsigned long long) id->started_us);
}

/*
 * parse_hex reads 1..max_digits lower-case hex digits at *p, advancing *p.
 * Upper case is rejected so that every id has exactly one spelling.
 */
static bool
parse_hex(const char **p, int max_digits, uint64_t *out)
{
	uint64_t	v = 0;
	int			n = 0;

	while (n < max_digits)
	{
		char		c = **p;
		int			d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			break;
		v = (v << 4) | (uint64_t) d;
		(*p)++;
		n++;
	}
	*out = v;
	return n > 0;
}

/*
 * gw_worker_id_parse fills *id from text and returns true if text is exactly
 * an id written by gw_worker_id_format; otherwise it returns false and
 * leaves *id unspecified.
 */
bool
gw_worker_id_parse(const char *text, GwWorkerId *id)
{
	const char *p = text;
	const char *start;
	uint64_t	v;

	if (text == NULL || p[0] != 'g' || p[1] != 'w' || p[2] != '-')
		return false;
	p += 3;

	start = p;
	if (!parse_hex(&p, 16, &v) || p - start != 16 || *p++ != '-')
		return false;
	id->system_id = v;

	if (!parse_hex(&p, 8, &v) || *p++ != '-')
		return false;
	id->pid = (uint32_t) v;

	if (!parse_hex(&p, 16, &v) || *p != '\0')
		return false;
	id->started_us = v;
	return true;
}
