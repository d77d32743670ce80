#!/usr/bin/env bash
# tests/run.sh: the one test command behind `make test`.
#
# On a fresh Debian 12 machine, as root or as a sudoer, it installs the
# packages that are missing, builds and installs the extension, then runs
# every suite against throwaway servers it starts itself:
#   regress    pg_regress on sql/ + expected/ (temp instance, library preloaded)
#   isolation  pg_isolation_regress on tests/isolation/specs
#   tap        PostgreSQL::Test::Cluster scripts in tests/t
#   unit       cmocka programs built from tests/unit
#   torture    tests/torture/torture.pl, 60 s of chaos (TORTURE_SECONDS,
#              TORTURE_SEED as for `make torture`)
# Servers never run as root: when invoked as root the suites run as the
# unprivileged user $GW_TEST_USER (default gwtest, created if missing).
#
# Output ends with one line "N passed, M failed"; the exit status is 0 only
# when M is 0.  Set GW_SUITES="regress unit" to run a subset, and
# GW_TAP=030 to run only the TAP scripts whose names start with 030.
set -uo pipefail

SUITES=${GW_SUITES:-regress isolation unit tap torture}
source "$(dirname "$0")/setup.sh"

install_packages || { echo "package installation failed"; echo "0 passed, 1 failed"; exit 1; }
find_postgres
build_all || { echo "build or install failed"; echo "0 passed, 1 failed"; exit 1; }

# The suites run in a scratch copy owned by the user that runs the servers.
WORK=$(mktemp -d /tmp/graphile_worker_test.XXXXXX)
cp -a "$ROOT/sql" "$ROOT/expected" "$ROOT/tests" "$WORK/"
define_run_as
own "$WORK"

passed=0
failed=0
skipped=0
count() { passed=$((passed + $1)); failed=$((failed + $2)); }

# pg_regress prints "test x ... ok" (PG <= 15) or TAP "ok N - x" (PG 16+).
count_regress() {
	local log=$1 rc=$2 p f
	p=$(grep -cE '(\.\.\. ok|^ok [0-9]+ )' "$log")
	f=$(grep -cE '(\.\.\. FAILED|\.\.\. failed|^not ok [0-9]+ )' "$log")
	[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
	count "$p" "$f"
}

run_regress() {
	local tests log=$WORK/regress.log
	tests=$(cd "$WORK/sql" && ls *.sql | sed 's/\.sql$//' | sort)
	echo "== regress"
	(cd "$WORK" && run_as "$PGXS_DIR/test/regress/pg_regress" \
		--temp-instance="$WORK/tmp_regress" --temp-config="$WORK/tests/regress.conf" \
		--bindir="$BINDIR" --inputdir=. --outputdir="$WORK" \
		--dbname=contrib_regression $tests) >"$log" 2>&1
	local rc=$?
	cat "$log"
	[ -f "$WORK/regression.diffs" ] && head -200 "$WORK/regression.diffs"
	count_regress "$log" $rc
}

run_isolation() {
	local tests log=$WORK/isolation.log
	tests=$(cd "$WORK/tests/isolation/specs" && ls *.spec | sed 's/\.spec$//' | sort)
	echo "== isolation"
	(cd "$WORK/tests/isolation" && run_as "$PGXS_DIR/test/isolation/pg_isolation_regress" \
		--temp-instance="$WORK/tmp_isolation" --temp-config="$WORK/tests/regress.conf" \
		--bindir="$BINDIR" --inputdir=. --outputdir="$WORK/tests/isolation/output" \
		--load-extension=graphile_worker $tests) >"$log" 2>&1
	local rc=$?
	cat "$log"
	[ -f "$WORK/tests/isolation/output/regression.diffs" ] &&
		head -200 "$WORK/tests/isolation/output/regression.diffs"
	count_regress "$log" $rc
}

# Each TAP script is run on its own; its "ok"/"not ok" lines are counted, and
# a script that dies or misses its plan counts as one more failure.
run_tap() {
	local t log rc p f plan
	echo "== tap"
	for t in "$WORK"/tests/t/"${GW_TAP:-}"*.pl; do
		[ -e "$t" ] || continue
		log=$WORK/tap_$(basename "$t" .pl).log
		(cd "$WORK/tests" && run_as env PATH="$BINDIR:$PATH" \
			TESTDIR="$WORK/tests" PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
			PERL5LIB="$PGXS_DIR/test/perl:$WORK/tests/t" \
			GW_SOURCE_DIR="$WORK" \
			perl "$t") >"$log" 2>&1
		rc=$?
		if [ "$rc" = 0 ] && grep -qE '^1\.\.0 # SKIP' "$log"; then
			echo "$(basename "$t"): $(grep -E '^1\.\.0 # SKIP' "$log")"
			skipped=$((skipped + 1))
			continue
		fi
		p=$(grep -cE '^ok [0-9]+' "$log")
		f=$(grep -cE '^not ok [0-9]+' "$log")
		plan=$(grep -oE '^1\.\.[0-9]+' "$log" | head -1 | cut -d. -f3)
		if [ "$rc" != 0 ] || [ -z "$plan" ] || [ "$plan" != $((p + f)) ]; then
			[ "$f" = 0 ] && f=1
			echo "--- $(basename "$t") FAILED (exit $rc)"
			cat "$log"
			tail -50 "$WORK"/tests/tmp_check/log/*"$(basename "$t" .pl)"*.log 2>/dev/null
		else
			grep -E '^(ok|not ok|# SKIP|ok .*# skip)' "$log" | sed "s|^|$(basename "$t"): |"
		fi
		count "$p" "$f"
	done
}

# cmocka: one program per tests/unit/*.c, linked with the pure-C sources it
# names in its first line ("/* sources: a.c b.c */").
run_unit() {
	local t bin log srcs p f
	echo "== unit"
	for t in "$WORK"/tests/unit/test_*.c; do
		[ -e "$t" ] || continue
		bin=$WORK/$(basename "$t" .c)
		log=$bin.log
		srcs=$(sed -n '1s|^/\* sources: \(.*\) \*/$|\1|p' "$t")
		if ! cc -Wall -Wextra -Werror -I"$ROOT/extension" -I"$ROOT/bgworker" \
			-o "$bin" "$t" $(for s in $srcs; do echo "$ROOT/$s"; done) -lcmocka -lm >"$log" 2>&1; then
			cat "$log"
			count 0 1
			continue
		fi
		CMOCKA_MESSAGE_OUTPUT=stdout "$bin" >"$log" 2>&1
		cat "$log"
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log")
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log")
		[ -z "$p" ] && [ -z "$f" ] && f=1
		count "${p:-0}" "${f:-0}"
	done
}

# The torture test's "ok"/"not ok" lines (one per invariant) are counted;
# a run that dies counts as one more failure.
run_torture() {
	local log=$WORK/torture.log rc p f
	echo "== torture"
	run_torture_script "${TORTURE_SECONDS:-60}" >"$log" 2>&1
	rc=$?
	p=$(grep -cE '^ok [0-9]+' "$log")
	f=$(grep -cE '^not ok [0-9]+' "$log")
	if [ "$rc" != 0 ]; then
		[ "$f" = 0 ] && f=1
		echo "--- torture FAILED (exit $rc)"
		cat "$log"
	else
		grep -E '^(ok|not ok|torture:)' "$log" | sed 's|^|torture.pl: |'
	fi
	count "$p" "$f"
}

for s in $SUITES; do
	"run_$s"
done

[ "$failed" = 0 ] && [ -z "${GW_KEEP_WORK:-}" ] && rm -rf "$WORK"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
