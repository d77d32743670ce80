/* sources: */
/*
 * test_sqlstates.c: the SQLSTATEs of extension/core/sqlstates.h are the
 * ones the install and update scripts raise: every 'GW...' literal of
 * extension/graphile_worker--*.sql is in the list, and every code of the
 * list appears in a script.  GW_SOURCE_DIR names the source tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sqlstates.h"

static const char *const codes[] = GW_SQLSTATES;
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static const char *const scripts[] = {
	"extension/graphile_worker--0.1.0.sql",
	"extension/graphile_worker--0.1.0--0.2.0.sql",
};

static char *
slurp(const char *relpath)
{
	const char *dir = getenv("GW_SOURCE_DIR");
	char		path[4096];
	FILE	   *f;
	long		len;
	char	   *buf;

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", relpath);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, len, f), len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static int
known(const char *code)
{
	for (size_t i = 0; i < NCODES; i++)
		if (strncmp(codes[i], code, 5) == 0)
			return 1;
	return 0;
}

static void
test_every_literal_is_listed(void **state)
{
	int			found = 0;

	(void) state;
	for (size_t s = 0; s < sizeof(scripts) / sizeof(scripts[0]); s++)
	{
		char	   *text = slurp(scripts[s]);

		for (char *p = strstr(text, "'GW"); p; p = strstr(p + 1, "'GW"))
		{
			if (strlen(p) < 7 || p[6] != '\'')
				continue;
			if (!known(p + 1))
				fail_msg("%s raises SQLSTATE %.5s, which sqlstates.h does not list",
						 scripts[s], p + 1);
			found++;
		}
		free(text);
	}
	assert_true(found > 0);
}

static void
test_every_code_is_used(void **state)
{
	(void) state;
	for (size_t i = 0; i < NCODES; i++)
	{
		int			used = 0;
		char		quoted[8];

		assert_int_equal(strlen(codes[i]), 5);
		snprintf(quoted, sizeof(quoted), "'%s'", codes[i]);
		for (size_t s = 0; s < sizeof(scripts) / sizeof(scripts[0]); s++)
		{
			char	   *text = slurp(scripts[s]);

			used |= strstr(text, quoted) != NULL;
			free(text);
		}
		if (!used)
			fail_msg("SQLSTATE %s of sqlstates.h is raised by no script", codes[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_literal_is_listed),
		cmocka_unit_test(test_every_code_is_used),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
