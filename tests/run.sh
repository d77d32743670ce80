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
#   deb        `make deb`: the Debian packages built, installed, used and
#              removed (tests/deb.sh)
# Servers never run as root: when invoked as root the suites run as the
# unprivileged user $GW_TEST_USER (default gwtest, created if missing).
#
# Passes, each building the extension in a copy of the sources for its
# server:
#   the first   $GW_SUITES (default: every suite, and deb for Debian's
#               server) against Debian's server (or $PG_CONFIG), or with
#               GW_PG=M (`make test PG=M`) against PostgreSQL M built once
#               from Debian's source package by tests/build_postgres.sh;
#               GW_PG may list several majors, one pass each
#               (`make test-versions`);
#   cassert     $GW_CASSERT_SUITES (default regress isolation tap torture)
#               against that major built with assertions (also by
#               tests/build_postgres.sh).  GW_CASSERT=1 adds it (the
#               default when CI=true and GW_PG is not set), GW_CASSERT=only
#               runs it alone (`make check-cassert`), GW_CASSERT=0 leaves
#               it out (the default otherwise).
#   others      $GW_OTHER_SUITES (default regress isolation tap) against
#               each major of GW_OTHER_PG built with assertions, one pass
#               each: "13 17 18" by default in CI (CI=true and GW_PG not
#               set), none otherwise.
# Servers built from source are built one after another by a background
# job started before the first pass, niced, in the order the passes need
# them; a pass waits for its own (build_postgres.sh locks each prefix).
# A major of GW_PG whose sources cannot be had (not known to apt, or not
# served by the mirror) counts as a failure, or as skipped with
# GW_PG_ABSENT=skip (`make test-versions`).
# A failed assertion or corrupt memory reported in a server log counts as a
# failure.
#
# Output ends with one line "N passed, M failed" covering every pass; the
# exit status is 0 only when M is 0.  Set GW_SUITES="regress unit" to run a
# subset, and GW_TAP=030 to run only the TAP scripts whose names start with
# 030.  The scratch folder of a pass with failures is kept, logs and all.
set -uo pipefail

source "$(dirname "$0")/setup.sh"

ALL_SUITES="regress isolation unit tap torture"
SUITES=${GW_SUITES:-}
CASSERT_SUITES=${GW_CASSERT_SUITES:-regress isolation tap torture}
PG=${GW_PG:-$PG_MAJOR}
CASSERT=${GW_CASSERT:-}
if [ -z "$CASSERT" ]; then
	[ "${CI:-}" = true ] && [ -z "${GW_PG:-}" ] && CASSERT=1 || CASSERT=0
fi
OTHER_PG=${GW_OTHER_PG-}
if [ -z "${GW_OTHER_PG+set}" ] && [ "${CI:-}" = true ] && [ -z "${GW_PG:-}" ]; then
	OTHER_PG="13 17 18"
fi
OTHER_SUITES=${GW_OTHER_SUITES:-regress isolation tap}
ABSENT=${GW_PG_ABSENT:-}
DEBIAN_PG_CONFIG=${PG_CONFIG:-}

install_packages || { echo "package installation failed"; echo "0 passed, 1 failed"; exit 1; }
define_run_as

passed=0
failed=0
skipped=0
# count P F adds P passed and F failed checks (an empty count is 0).
count() { passed=$((passed + ${1:-0})); failed=$((failed + ${2:-0})); }

# pg_regress prints "test x ... ok" (PG <= 15) or TAP "ok N - x" (PG 16+).
count_regress() {
	local log=$1 rc=$2 p f
	p=$(grep -cE '(\.\.\. ok|^ok [0-9]+ )' "$log")
	f=$(grep -cE '(\.\.\. FAILED|\.\.\. failed|^not ok [0-9]+ )' "$log")
	[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
	count "$p" "$f"
}

# regress and isolation are the Makefile's installcheck (REGRESS,
# ISOLATION: temporary instances with the library preloaded), run in the
# scratch copy, one suite at a time.
run_regress() {
	local log=$WORK/regress.log
	(cd "$WORK" && run_as make -s PG_CONFIG="$PG_CONFIG" installcheck ISOLATION=) >"$log" 2>&1
	local rc=$?
	cat "$log"
	[ -f "$WORK/regression.diffs" ] && head -200 "$WORK/regression.diffs"
	count_regress "$log" $rc
}

run_isolation() {
	local log=$WORK/isolation.log
	(cd "$WORK" && run_as make -s PG_CONFIG="$PG_CONFIG" installcheck REGRESS=) >"$log" 2>&1
	local rc=$?
	cat "$log"
	[ -f "$WORK/tests/isolation/results/regression.diffs" ] &&
		head -200 "$WORK/tests/isolation/results/regression.diffs"
	count_regress "$log" $rc
}

# Each TAP script runs in its own process with its own servers, GW_TAP_JOBS
# (default 3) at a time: the scripts spend most of their time waiting for
# their servers (two at a time leave 70 % of 2 cores idle), so three share
# the machine without slowing each other much.  Their "ok"/"not ok" lines are counted afterwards, in name
# order; a script that dies or misses its plan counts as one more failure.
run_tap() {
	local t jobs=${GW_TAP_JOBS:-3} scripts=()
	for t in "$WORK"/tests/t/"${GW_TAP:-}"*.pl; do
		[ -e "$t" ] && scripts+=("$t")
	done
	# in a subshell, whose only children are the scripts (not build_ahead)
	(
		running=0
		for t in "${scripts[@]}"; do
			run_tap_script "$t" &
			running=$((running + 1))
			if [ "$running" -ge "$jobs" ]; then
				wait -n
				running=$((running - 1))
			fi
		done
		wait
	)
	for t in "${scripts[@]}"; do
		tap_result "$t"
	done
}

# run_tap_script SCRIPT runs one TAP script into tap_NAME.log, and its exit
# status and seconds into tap_NAME.rc.
run_tap_script() {
	local t=$1 name log start rc
	name=$(basename "$t" .pl)
	log=$WORK/tap_$name.log
	start=$SECONDS
	(cd "$WORK/tests" && run_as env PATH="$BINDIR:$PATH" \
		TESTDIR="$WORK/tests" TESTDATADIR="$WORK/tests/tmp_check" \
		TESTLOGDIR="$WORK/tests/tmp_check/log" PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
		PERL5LIB="$PGXS_DIR/test/perl:$WORK/tests/t" \
		GW_SOURCE_DIR="$WORK" \
		perl "$t") >"$log" 2>&1
	rc=$?
	echo "$rc $((SECONDS - start))" >"$WORK/tap_$name.rc"
}

# tap_result SCRIPT counts and prints what run_tap_script left.
tap_result() {
	local t=$1 name log rc secs p f plan
	name=$(basename "$t" .pl)
	log=$WORK/tap_$name.log
	read -r rc secs <"$WORK/tap_$name.rc" || { rc=1; secs=?; }
	if [ "$rc" = 0 ] && grep -qE '^1\.\.0 # SKIP' "$log"; then
		echo "$name.pl: $(grep -E '^1\.\.0 # SKIP' "$log")"
		skipped=$((skipped + 1))
		return
	fi
	p=$(grep -cE '^ok [0-9]+' "$log")
	f=$(grep -cE '^not ok [0-9]+' "$log")
	plan=$(grep -oE '^1\.\.[0-9]+' "$log" | head -1 | cut -d. -f3)
	if [ "$rc" != 0 ] || [ -z "$plan" ] || [ "$plan" != $((p + f)) ]; then
		[ "$f" = 0 ] && f=1
		echo "--- $name.pl FAILED (exit $rc, $secs s)"
		cat "$log"
		tail -50 "$WORK"/tests/tmp_check/log/*"$name"*.log 2>/dev/null
	else
		grep -E '^(ok|not ok|# SKIP|ok .*# skip)' "$log" | sed "s|^|$name.pl: |"
		echo "$name.pl: $secs s"
	fi
	count "$p" "$f"
}

# cmocka: one program per tests/unit/*.c, linked with the pure-C sources it
# names in its first line ("/* sources: a.c b.c */").
run_unit() {
	local t bin log srcs p f
	for t in "$WORK"/tests/unit/test_*.c; do
		[ -e "$t" ] || continue
		bin=$WORK/$(basename "$t" .c)
		log=$bin.log
		srcs=$(sed -n '1s|^/\* sources: \(.*\) \*/$|\1|p' "$t")
		if ! cc -std=c99 -Wall -Wextra -Werror -I"$ROOT/extension/core" \
			-o "$bin" "$t" $(for s in $srcs; do echo "$ROOT/$s"; done) -lcmocka -lm >"$log" 2>&1; then
			cat "$log"
			count 0 1
			continue
		fi
		GW_SOURCE_DIR=$ROOT CMOCKA_MESSAGE_OUTPUT=stdout "$bin" >"$log" 2>&1
		cat "$log"
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log")
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log")
		[ -z "$p" ] && [ -z "$f" ] && f=1
		count "${p:-0}" "${f:-0}"
	done
}

# check_server_logs MARK: what an assert-enabled server reports in the logs
# written since MARK was touched (failed assertions, and corrupt memory
# found by the memory context checks), one failure per log.
check_server_logs() {
	local log pattern='TRAP:|problem in alloc set|detected write past chunk end'
	while IFS= read -r log; do
		echo "--- ${log#"$WORK"/}: $(grep -cE "$pattern" "$log") lines report a failed assertion or corrupt memory; the first:"
		grep -m1 -B5 -A25 -E "$pattern" "$log"
		count 0 1
	done < <(find "$WORK" -type f -name '*.log' -newer "$1" -exec grep -lE "$pattern" {} + 2>/dev/null)
}

# The torture test's "ok"/"not ok" lines (one per invariant) are counted;
# a run that dies counts as one more failure.
run_torture() {
	local log=$WORK/torture.log rc p f
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

# run_pass LABEL SUITES: builds and installs the extension into the
# PostgreSQL of $PG_CONFIG, in a copy of the sources (so objects built for one server
# are never linked for another), then runs SUITES in a scratch copy owned
# by the user that runs the servers.
run_pass() {
	local label=$1 suites=$2 s failed_before=$failed mark start
	find_postgres
	if ! build_all; then
		echo "build or install failed"
		count 0 1
		return
	fi
	WORK=$(mktemp -d "${TMPDIR:-/tmp}"/graphile_worker_test.XXXXXX)
	cp -a "$ROOT/Makefile" "$ROOT/sql" "$ROOT/expected" "$ROOT/tests" \
		"$ROOT/extension" "$ROOT/graphile_worker.control" "$ROOT/META.json" \
		"$ROOT/README.md" "$ROOT/LICENSE" "$WORK/"
	own "$WORK"
	mark=$WORK/.suite_start
	for s in $suites; do
		echo "== $label$s"
		if ! declare -F "run_$s" >/dev/null; then
			echo "no suite named $s"
			count 0 1
			continue
		fi
		touch "$mark"
		start=$SECONDS
		"run_$s"
		check_server_logs "$mark"
		echo "== $label$s: $((SECONDS - start)) s"
	done
	if [ "$failed" = "$failed_before" ] && [ -z "${GW_KEEP_WORK:-}" ]; then
		rm -rf "$WORK"
	else
		echo "== ${label}logs kept in $WORK"
	fi
}

# deb: `make deb`'s packages, built for the installed
# postgresql-server-dev-M, then installed, used and removed by tests/deb.sh
# check (as root, in a throwaway overlay of the system: see there).  They
# are Debian's server's whatever $PG_CONFIG is, so the pass of Debian's
# major runs this suite, and no other.
run_deb() {
	local log=$WORK/deb.log dir rc p f
	dir=$(mktemp -d /tmp/graphile_worker_deb.XXXXXX)
	{ nice -n 19 bash "$ROOT/tests/deb.sh" build "$dir" &&
		bash "$ROOT/tests/deb.sh" check "$dir"; } >"$log" 2>&1
	rc=$?
	if grep -qE '^1\.\.0 # SKIP' "$log"; then
		echo "deb: $(grep -E '^1\.\.0 # SKIP' "$log")"
		skipped=$((skipped + 1))
	else
		p=$(grep -cE '^ok [0-9]+' "$log")
		f=$(grep -cE '^not ok [0-9]+' "$log")
		[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
		if [ "$f" != 0 ]; then
			cat "$log"
		else
			grep -E '^(== built|ok|not ok)' "$log" | sed 's|^|deb: |'
		fi
		count "$p" "$f"
	fi
	rm -rf "$dir"
}

# source_pass MAJOR KIND LABEL SUITES [absent]: run_pass against PostgreSQL
# MAJOR built from source (source_postgres).  Sources that cannot be had
# count as one failure, or as one skipped pass with "absent" = skip.
source_pass() {
	local major=$1 kind=$2 label=$3 suites=$4 rc
	source_postgres "$major" "$kind"
	rc=$?
	if [ "$rc" = 0 ]; then
		run_pass "$label" "$suites"
	elif [ "$rc" = 3 ] && [ "${5:-}" = skip ]; then
		echo "== ${label}skipped: PostgreSQL $major cannot be built here (above)"
		skipped=$((skipped + 1))
	else
		echo "== ${label}PostgreSQL $major ($kind) could not be built"
		count 0 1
	fi
}

# version_pass MAJOR LABEL SUITES [absent]: run_pass against Debian's
# server for its major, else against MAJOR built from source.
version_pass() {
	if [ "$1" = "$PG_MAJOR" ]; then
		PG_CONFIG=$DEBIAN_PG_CONFIG
		run_pass "$2" "$3"
	else
		source_pass "$1" plain "$2" "$3" "${4:-}"
	fi
}

# source_builds: "MAJOR KIND" of each server built from source, in the
# order of the passes below.
source_builds() {
	local v
	for v in $PG; do
		[ "$CASSERT" != only ] && [ "$v" != "$PG_MAJOR" ] && echo "$v plain"
		[ "$CASSERT" != 0 ] && echo "$v cassert"
	done
	for v in $OTHER_PG; do
		echo "$v cassert"
	done
}

# build_ahead builds them one after another in the background (the passes
# mostly wait for their servers, leaving the CPUs to it), into
# $BUILD_AHEAD_LOG.
build_ahead() {
	local builds
	builds=$(source_builds)
	[ -n "$builds" ] || return 0
	install_packages $PG_BUILD_PACKAGES || return 0
	BUILD_AHEAD_LOG=$(mktemp "${TMPDIR:-/tmp}"/graphile_worker_builds.XXXXXX)
	(while read -r major kind; do
		(source_postgres "$major" "$kind")
	done <<<"$builds") >"$BUILD_AHEAD_LOG" 2>&1 &
	BUILD_AHEAD_PID=$!
}
BUILD_AHEAD_PID=
build_ahead

for v in $PG; do
	label=
	[ "$PG" != "$v" ] && label="pg$v "
	# by default every suite, and deb in the pass of Debian's major
	suites=$SUITES
	if [ -z "$suites" ]; then
		suites=$ALL_SUITES
		[ "$v" = "$PG_MAJOR" ] && suites="$suites deb"
	fi
	[ "$CASSERT" != only ] && version_pass "$v" "$label" "$suites" "$ABSENT"
	[ "$CASSERT" != 0 ] && source_pass "$v" cassert "${label}cassert " "$CASSERT_SUITES" "$ABSENT"
done

for v in $OTHER_PG; do
	source_pass "$v" cassert "pg$v cassert " "$OTHER_SUITES" "$ABSENT"
done
[ -n "$BUILD_AHEAD_PID" ] && wait "$BUILD_AHEAD_PID" && rm -f "$BUILD_AHEAD_LOG"

# the last line is always "N passed, M failed"
[ "$skipped" -gt 0 ] && echo "$skipped skipped (see above)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
