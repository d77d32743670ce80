/* sources: extension/core/worker_id.c */
/*
 * test_worker_id.c: worker ids round-trip through format and parse, every
 * incarnation gets a distinct id, and anything else (Node and Rust worker
 * ids, truncated or padded ids, upper case) is rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "worker_id.h"

static void
test_round_trip(void **state)
{
	GwWorkerId	in = {0x7123456789abcdefULL, 4242, 0x5f0e1d2c3b4aULL};
	GwWorkerId	out;
	char		buf[GW_WORKER_ID_LEN];

	(void) state;
	gw_worker_id_format(&in, buf, sizeof(buf));
	assert_string_equal(buf, "gw-7123456789abcdef-1092-5f0e1d2c3b4a");
	assert_true(gw_worker_id_parse(buf, &out));
	assert_int_equal(out.system_id, in.system_id);
	assert_int_equal(out.pid, in.pid);
	assert_int_equal(out.started_us, in.started_us);
}

static void
test_extremes_fit(void **state)
{
	GwWorkerId	in = {UINT64_MAX, UINT32_MAX, UINT64_MAX};
	GwWorkerId	zero = {0, 0, 0};
	GwWorkerId	out;
	char		buf[GW_WORKER_ID_LEN];

	(void) state;
	gw_worker_id_format(&in, buf, sizeof(buf));
	assert_true(strlen(buf) < GW_WORKER_ID_LEN);
	assert_true(gw_worker_id_parse(buf, &out));
	assert_int_equal(out.system_id, UINT64_MAX);
	assert_int_equal(out.pid, UINT32_MAX);
	assert_int_equal(out.started_us, UINT64_MAX);

	gw_worker_id_format(&zero, buf, sizeof(buf));
	assert_string_equal(buf, "gw-0000000000000000-0-0");
	assert_true(gw_worker_id_parse(buf, &out));
	assert_int_equal(out.started_us, 0);
}

static void
test_incarnations_differ(void **state)
{
	GwWorkerId	a = {1, 100, 1000};
	GwWorkerId	b = {1, 100, 1001};	/* same pid, restarted */
	GwWorkerId	c = {2, 100, 1000};	/* another server */
	char		ba[GW_WORKER_ID_LEN], bb[GW_WORKER_ID_LEN], bc[GW_WORKER_ID_LEN];

	(void) state;
	gw_worker_id_format(&a, ba, sizeof(ba));
	gw_worker_id_format(&b, bb, sizeof(bb));
	gw_worker_id_format(&c, bc, sizeof(bc));
	assert_string_not_equal(ba, bb);
	assert_string_not_equal(ba, bc);
}

static void
test_rejects_foreign_and_malformed(void **state)
{
	static const char *bad[] = {
		NULL,
		"",
		"pool-0123456789abcdef01",	/* Node 0.17+ pool id */
		"worker-0123456789abcdef01",	/* Node worker id */
		"graphile_worker_0123456789abcdef01",	/* Rust worker id */
		"gw-",
		"gw-7123456789abcdef",
		"gw-7123456789abcdef-",
		"gw-7123456789abcdef-1092-",
		"gw-123456789abcdef-1092-5f",	/* 15 digit system id */
		"gw-07123456789abcdef-1092-5f",	/* 17 digit system id */
		"gw-7123456789ABCDEF-1092-5f",	/* upper case */
		"gw-7123456789abcdef-1092-5f ",	/* trailing space */
		"gw-7123456789abcdef-1092-5f-1",
		"gw-7123456789abcdef-123456789-5f",	/* pid over 8 digits */
		"gw-7123456789abcdef-1092-12345678901234567",
		"GW-7123456789abcdef-1092-5f",
	};
	GwWorkerId	out;

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		if (gw_worker_id_parse(bad[i], &out))
			fail_msg("accepted \"%s\"", bad[i] ? bad[i] : "(null)");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_extremes_fit),
		cmocka_unit_test(test_incarnations_differ),
		cmocka_unit_test(test_rejects_foreign_and_malformed),
	};

	return cmocka_run_group_tests_name("worker_id", tests, NULL, NULL);
}
