#!/usr/bin/env bash
# tests/bench/bench.sh: `make bench` and `make bench-quick`.
#
# Builds and installs the extension (tests/setup.sh), starts a throwaway
# cluster as an unprivileged user, installs graphile-worker 0.18.0 from npm
# (cached in ~/.cache/graphile_worker_bench), and runs the same workloads
# against the extension's background workers ("ours") and the Node package
# (default configuration, and its batching "perf preset"), one after the
# other on the same cluster, each side in its own database:
#
#   - throughput: N pre-queued no-op jobs at concurrency 1, 2, 4, 8 (and 24,
#     the docs' perf preset), and N INSERT-handler jobs at concurrency 4,
#     with the server's (and Node's) CPU seconds per 1,000 jobs.  Ours: from
#     the reload that un-pauses the workers until _private_jobs is empty
#     (server clock).  Node: wall time of `graphile-worker --once` minus
#     that of --once on an empty queue (as Node's perfTest does).  CPU:
#     utime+stime from /proc of the postmaster, its children and the
#     children it reaped, plus the Node process, before/after;
#   - add->start latency of single add_job calls 5 ms apart to an idle
#     worker: handler's clock_timestamp() - the adding transaction's
#     clock_timestamp() just before COMMIT (Node in run mode, LISTEN);
#   - lateness of jobs scheduled 2..12 s ahead: handler start - run_at;
#   - enqueue rates (add_job with pgbench, one add_jobs call of 10,000
#     specs) and two reference rows (plain INSERT, a SKIP LOCKED delete);
#   - job history: no-op throughput at concurrency 4 with
#     graphile_worker.history off, failures and all; its size each minute
#     of 5 minutes of add_job with history = all and the retention
#     shortened to one minute as they start; the time of one look
#     at queue_stats, metrics() and unhandled_tasks on 1,000,000 queued jobs;
#   - 5 minutes of sustained add_job + processing (ours) at 80% of the
#     capacity measured with enqueue and processing running together
#     (a 20 s calibration), with throughput, backlog and n_dead_tup each
#     minute and the job workers' RSS at start and end.
#
# Prints one table (median of the runs, min-max), and writes bench.csv,
# bench.png and the raw numbers to $GW_BENCH_OUT (/tmp/graphile_worker_bench).
#
# Environment:
#   GW_BENCH_QUICK=1   quick mode (< 60 s after the build): 1 run, 20,000
#                      jobs, throughput at concurrency 4 (ours, Node
#                      batching) and latency (ours, 300 samples); ends with
#                      "speedup_vs_node_batched=X.XX latency_p50_ms=Y.YYY"
#   GW_BENCH_RUNS      runs of the main throughput points (no-op and INSERT
#                      at concurrency 4) for ours and Node batching (full: 3)
#   GW_BENCH_OTHER_RUNS runs of the other throughput points (concurrency 1,
#                      2, 8, 24) and of every Node default point (full: 1,
#                      to stay well under 20 minutes on 2 CPUs)
#   GW_BENCH_JOBS      jobs per throughput run (full: 50000, quick: 20000)
#   GW_BENCH_PORT      port of the throwaway cluster (5498)
#   GW_BENCH_OUT       results folder (/tmp/graphile_worker_bench)
#   GW_BENCH_SUSTAINED seconds of the sustained run (full: 300; 0 skips)
#   GW_BENCH_NO_NODE=1 run our side only
#   GW_BENCH_QS_JOBS   queued jobs for the queue_stats timing (1000000)
#   GW_BENCH_VISIBILITY_ONLY=1  only the job history and queue_stats rows
#                      (about 8 minutes with the defaults)
#   GW_BENCH_HISTORY_SECONDS seconds of the job history size run (full:
#                      300; 0 skips)
#   GW_BENCH_HISTORY_RATE add_job rate of that run (500 jobs/s)
#   PG_CONFIG          the PostgreSQL to build against and run (tests/setup.sh)
set -euo pipefail
source "$(dirname "$0")/../setup.sh"
BENCH=$ROOT/tests/bench
PY=/usr/bin/python3
UTIL="$PY $BENCH/benchutil.py"
BENCH_START=$EPOCHREALTIME

QUICK=${GW_BENCH_QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=
PORT=${GW_BENCH_PORT:-5498}
OUT=${GW_BENCH_OUT:-/tmp/graphile_worker_bench}
if [ -n "$QUICK" ]; then
	RUNS=${GW_BENCH_RUNS:-1}
	OTHER_RUNS=${GW_BENCH_OTHER_RUNS:-1}
	JOBS=${GW_BENCH_JOBS:-20000}
	LAT_SAMPLES=300
	SUSTAINED=0
	HISTORY_SECONDS=0
else
	RUNS=${GW_BENCH_RUNS:-3}
	OTHER_RUNS=${GW_BENCH_OTHER_RUNS:-1}
	JOBS=${GW_BENCH_JOBS:-50000}
	LAT_SAMPLES=2000
	SUSTAINED=${GW_BENCH_SUSTAINED:-300}
	HISTORY_SECONDS=${GW_BENCH_HISTORY_SECONDS:-300}
fi
HISTORY_RATE=${GW_BENCH_HISTORY_RATE:-500}
LATE_JOBS=500
QS_JOBS=${GW_BENCH_QS_JOBS:-1000000}
NODE_VERSION_WANTED=0.18.0
NODE_DIR=${GW_BENCH_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/graphile_worker_bench/node-$NODE_VERSION_WANTED}

# --- one-time setup: packages, build, npm --------------------------------
install_packages
if ! "$PY" -c 'import matplotlib' 2>/dev/null; then
	echo "== installing python3-matplotlib (for the chart)"
	as_root apt-get update -qq >/dev/null 2>&1 || true
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends python3 python3-matplotlib >/dev/null ||
		echo "   (could not install python3-matplotlib: no PNG chart)"
fi
find_postgres
build_all
define_run_as

NODE_OK=1
NODE_NOTE=
GW_BIN=$NODE_DIR/node_modules/.bin/graphile-worker
node_installed_version() {
	sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
		"$NODE_DIR/node_modules/graphile-worker/package.json" 2>/dev/null | head -1
}
if [ -n "${GW_BENCH_NO_NODE:-}" ]; then
	NODE_OK=
	NODE_NOTE="GW_BENCH_NO_NODE is set"
elif ! command -v node >/dev/null; then
	NODE_OK=
	NODE_NOTE="node is not installed"
elif [ "$(node_installed_version)" != "$NODE_VERSION_WANTED" ]; then
	echo "== installing graphile-worker@$NODE_VERSION_WANTED from npm into $NODE_DIR"
	mkdir -p "$NODE_DIR"
	log=$NODE_DIR/npm-install.log
	if ! (cd "$NODE_DIR" &&
		{ [ -f package.json ] || echo '{"name":"gw-bench","private":true}' >package.json; } &&
		timeout 180 env npm_config_update_notifier=false npm_config_fund=false \
			npm_config_audit=false npm_config_fetch_retries=1 \
			npm_config_fetch_timeout=20000 \
			npm install --no-audit --no-fund --loglevel=error \
			"graphile-worker@$NODE_VERSION_WANTED" >"$log" 2>&1); then
		NODE_OK=
		NODE_NOTE="npm install graphile-worker@$NODE_VERSION_WANTED failed (registry unreachable?): $(grep -v '^npm warn' "$log" | head -3 | tr '\n' ' ')"
	fi
fi
if [ -n "$NODE_OK" ]; then
	rm -rf "$NODE_DIR/tasks"
	mkdir -p "$NODE_DIR/tasks"
	cp "$BENCH"/node/tasks/*.cjs "$NODE_DIR/tasks/"
fi
if [ -z "$NODE_OK" ]; then
	echo "== NOTE: Node side skipped: $NODE_NOTE"
	echo "   Only our side is measured; the Node columns stay empty."
fi

# --- the cluster -----------------------------------------------------------
mkdir -p "$OUT"
RES=$OUT/results.tsv
: >"$RES"
LOGS=$OUT/logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
CL=$(mktemp -d "${TMPDIR:-/tmp}"/graphile_worker_bench_cluster.XXXXXX)
cp "$BENCH"/*.pgb "$CL/"
own "$CL"
NODE_PID=
BG_PID=
cleanup() {
	set +e
	[ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
	[ -n "$BG_PID" ] && kill "$BG_PID" 2>/dev/null && wait "$BG_PID" 2>/dev/null
	cp "$CL/server.log" "$LOGS/server.log" 2>/dev/null || true
	run_as "$BINDIR/pg_ctl" -D "$CL/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$CL"
}
trap cleanup EXIT

echo "== starting a throwaway cluster in $CL (port $PORT)"
run_as "$BINDIR/initdb" -D "$CL/data" -U postgres -A trust >/dev/null
cat >>"$CL/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$CL'
port = $PORT
shared_preload_libraries = 'graphile_worker'
shared_buffers = 1GB
max_worker_processes = 32
synchronous_commit = on
graphile_worker.concurrency = 4
graphile_worker.paused = on
EOF
run_as "$BINDIR/pg_ctl" -D "$CL/data" -l "$CL/server.log" -w start >/dev/null
PIDFILE=$CL/data/postmaster.pid

# psql as the caller (root may use the unprivileged user's socket folder)
Q() {
	local db=$1
	shift
	"$BINDIR/psql" -X -q -h "$CL" -p "$PORT" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"
}
QV() { Q "$1" -At -c "$2"; }
# pgbench DB OPTIONS... (scripts: -f "$CL/NAME.pgb")
PGB() {
	local db=$1
	shift
	"$BINDIR/pgbench" -h "$CL" -p "$PORT" -U postgres -n "$@" "$db"
}
server_cpu() { $UTIL cpu "$PIDFILE"; }
NCPU=$(nproc)
machine_busy() { $UTIL busy; }
# others_pct BUSY_DELTA OUR_CPU_DELTA WALL: the share of the machine's CPUs
# that processes other than the server and Node used meanwhile.
others_pct() { awk "BEGIN { v = 100 * (($1) - ($2)) / (($3) * $NCPU); printf \"%.6f\", (v < 0 ? 0 : v) }"; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RES"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
elapsed() { awk -v a="$BENCH_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }

Q postgres -c "CREATE DATABASE gw_ours" -c "CREATE DATABASE gw_node"
Q gw_ours -c "CREATE EXTENSION graphile_worker"
Q gw_ours <"$BENCH/common.sql"
Q gw_ours <"$BENCH/ours.sql"

node_env() {
	env -u DATABASE_URL -u GRAPHILE_WORKER_SCHEMA PGHOST="$CL" PGPORT="$PORT" \
		PGUSER=postgres PGDATABASE=gw_node NO_LOG_SUCCESS=1 NODE_NO_WARNINGS=1 "$@"
}
if [ -n "$NODE_OK" ]; then
	if ! (cd "$NODE_DIR" && node_env node "$GW_BIN" --schema-only) >"$LOGS/node-schema.log" 2>&1; then
		NODE_OK=
		NODE_NOTE="graphile-worker --schema-only failed: $(tail -3 "$LOGS/node-schema.log" | tr '\n' ' ')"
		echo "== NOTE: Node side skipped: $NODE_NOTE"
	else
		Q gw_node <"$BENCH/common.sql"
		(cd "$NODE_DIR" && node --version) >"$LOGS/node-version.txt"
	fi
fi

machine="$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)"
record meta jobs "$JOBS"
record meta lat_samples "$LAT_SAMPLES"
record meta late_jobs "$LATE_JOBS"
record meta qs_jobs "$QS_JOBS"
record meta machine "$machine"
{
	echo "== settings"
	echo "   machine: $machine ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(uname -r)"
	echo "   server: $(QV postgres 'SELECT version()')"
	Q postgres -At -F ' = ' -c "SELECT name, current_setting(name) FROM pg_settings
		WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_sync_method',
		  'max_worker_processes', 'max_connections', 'max_wal_size', 'checkpoint_timeout',
		  'autovacuum', 'wal_level', 'shared_preload_libraries')
		   OR name LIKE 'graphile_worker.%' ORDER BY name" | sed 's/^/   /'
	if [ -n "$NODE_OK" ]; then
		echo "   node $(cat "$LOGS/node-version.txt"), graphile-worker $(node_installed_version) in $NODE_DIR"
		echo "   Node runs with NO_LOG_SUCCESS=1 (no log line per job); batching: -C tests/bench/node/graphile.config.mjs"
	fi
	echo "   mode: $([ -n "$QUICK" ] && echo quick || echo full); $JOBS jobs per throughput run;" \
		"runs: $RUNS of the main points (concurrency 4: ours, Node batching)," \
		"$OTHER_RUNS of the others and of Node default"
} | tee "$OUT/settings.txt"

# --- our workers -------------------------------------------------------------

# ours_config CONCURRENCY PAUSED: set the settings, reload, and wait until
# exactly CONCURRENCY job workers of gw_ours are up and settled.
ours_config() {
	local c=$1 paused=$2 want_state i n
	Q postgres -c "ALTER SYSTEM SET graphile_worker.concurrency = $c" \
		-c "ALTER SYSTEM SET graphile_worker.paused = $paused" -c "SELECT pg_reload_conf()" >/dev/null
	[ "$paused" = on ] && want_state=paused || want_state=idle
	for ((i = 0; i < 300; i++)); do
		n=$(QV gw_ours "SELECT count(*) FILTER (WHERE state = '$want_state') || ' ' || count(*)
			FROM graphile_worker.workers WHERE kind = 'job worker' AND datname = 'gw_ours'")
		[ "$n" = "$c $c" ] && return 0
		sleep 0.1
	done
	echo "bench: gw_ours did not settle on $c $want_state job workers (have: $n)" >&2
	exit 1
}

# prepare DB TASK N: enqueue N jobs (nobody processing), then VACUUM and
# CHECKPOINT so that every run starts from the same state.
prepare() {
	local db=$1 task=$2 n=$3
	Q "$db" -c "TRUNCATE public.bench_sink, public.bench_added" >/dev/null
	Q "$db" -c "SELECT public.bench_enqueue('$task', $n)" >/dev/null
	Q "$db" -c "VACUUM ANALYZE graphile_worker._private_jobs" -c "CHECKPOINT" >/dev/null
}

# check_done DB TASK N: the queue is empty and, for insert_row, every job
# wrote its row.
check_done() {
	local db=$1 task=$2 n=$3 left rows
	left=$(QV "$db" "SELECT count(*) FROM graphile_worker._private_jobs")
	[ "$left" = 0 ] || { echo "bench: $left jobs left in $db" >&2; exit 1; }
	if [ "$task" = insert_row ]; then
		rows=$(QV "$db" "SELECT count(*) FROM public.bench_sink")
		[ "$rows" = "$n" ] || { echo "bench: $rows of $n handler rows in $db" >&2; exit 1; }
	fi
}

# ours_throughput TASK CONCURRENCY KEY RUN: one timed run of N pre-queued
# jobs: from the reload that un-pauses the workers to the moment
# _private_jobs is empty (both server clock).
ours_throughput() {
	local task=$1 c=$2 key=$3 run=$4 cpu0 cpu1 secs tput cpu
	ours_config "$c" on
	prepare gw_ours "$task" "$JOBS"
	busy0=$(machine_busy)
	cpu0=$(server_cpu)
	secs=$(Q gw_ours -At <<'SQL'
ALTER SYSTEM SET graphile_worker.paused = off;
SELECT extract(epoch FROM clock_timestamp()) AS t0, pg_reload_conf() AS reloaded \gset
CALL public.bench_wait_empty(600);
SELECT round((extract(epoch FROM clock_timestamp()) - :t0)::numeric, 4);
SQL
	)
	cpu1=$(server_cpu)
	busy1=$(machine_busy)
	ours_config "$c" on
	check_done gw_ours "$task" "$JOBS"
	tput=$(calc "$JOBS / $secs")
	cpu=$(calc "($cpu1 - $cpu0) * 1000 / $JOBS")
	others=$(others_pct "$busy1 - $busy0" "$cpu1 - $cpu0" "$secs")
	record "tput_${key}" ours "$tput"
	record "cpu_${key}" ours "$cpu"
	record others ours "$others"
	printf '   ours          %-12s run %d: %8.0f jobs/s (%6.2f s), %.3f CPU s per 1,000 jobs; others used %.0f%% of the CPUs\n' \
		"$key" "$run" "$tput" "$secs" "$cpu" "$others"
}

# --- the Node worker ---------------------------------------------------------

node_args() { # CONFIG CONCURRENCY
	if [ "$1" = node_batch ]; then
		echo "-C $BENCH/node/graphile.config.mjs -j $2 -m $(($2 + 1))"
	else
		echo "-C $BENCH/node/default.config.mjs -j $2 -m $(($2 > 9 ? $2 + 1 : 10))"
	fi
}

# node_once CONFIG CONCURRENCY: run graphile-worker --once; sets WALL and
# CPU (server + Node process).
node_once() {
	local cpu0 cpu1 busy0 busy1 t=$CL/timed
	busy0=$(machine_busy)
	cpu0=$(server_cpu)
	# shellcheck disable=SC2046
	(cd "$NODE_DIR" && node_env $UTIL timed "$t" node "$GW_BIN" --once $(node_args "$1" "$2")) \
		>>"$LOGS/node-once.log" 2>&1
	cpu1=$(server_cpu)
	busy1=$(machine_busy)
	read -r WALL node_cpu rc <"$t"
	[ "$rc" = 0 ] || { echo "bench: graphile-worker --once exited $rc (see $LOGS/node-once.log)" >&2; exit 1; }
	CPU=$(calc "$cpu1 - $cpu0 + $node_cpu")
	OTHERS=$(others_pct "$busy1 - $busy0" "$CPU" "$WALL")
}

# node_startup CONFIG CONCURRENCY: startup cost of --once with an empty
# queue (median of a few runs after a warm-up), as Node's perfTest does.
declare -A STARTUP_WALL STARTUP_CPU
node_startup() {
	local k="$1:$2" i walls=() cpus=() n=3
	[ -n "${STARTUP_WALL[$k]:-}" ] && return 0
	[ -n "$QUICK" ] && n=2
	node_once "$1" "$2" # warm-up
	for ((i = 0; i < n; i++)); do
		node_once "$1" "$2"
		walls+=("$WALL")
		cpus+=("$CPU")
	done
	STARTUP_WALL[$k]=$(median "${walls[@]}")
	STARTUP_CPU[$k]=$(median "${cpus[@]}")
	printf '   %-13s startup of --once -j %d, empty queue: %.3f s, %.2f CPU s\n' \
		"$1" "$2" "${STARTUP_WALL[$k]}" "${STARTUP_CPU[$k]}"
}

# node_throughput CONFIG TASK CONCURRENCY KEY RUN: time of --once over N
# pre-queued jobs minus the startup time of --once on an empty queue.
node_throughput() {
	local cfg=$1 task=$2 c=$3 key=$4 run=$5 secs tput cpu
	node_startup "$cfg" "$c"
	prepare gw_node "$task" "$JOBS"
	node_once "$cfg" "$c"
	check_done gw_node "$task" "$JOBS"
	secs=$(calc "$WALL - ${STARTUP_WALL[$cfg:$c]}")
	tput=$(calc "$JOBS / $secs")
	cpu=$(calc "($CPU - ${STARTUP_CPU[$cfg:$c]}) * 1000 / $JOBS")
	record "tput_${key}" "$cfg" "$tput"
	record "cpu_${key}" "$cfg" "$cpu"
	record others "$cfg" "$OTHERS"
	printf '   %-13s %-12s run %d: %8.0f jobs/s (%6.2f s = %.2f - %.2f startup), %.3f CPU s per 1,000 jobs; others used %.0f%% of the CPUs\n' \
		"$cfg" "$key" "$run" "$tput" "$secs" "$WALL" "${STARTUP_WALL[$cfg:$c]}" "$cpu" "$OTHERS"
}

# node_start CONFIG CONCURRENCY: a Node worker in run mode (LISTEN/NOTIFY),
# returning once it listens.
node_start() {
	local i
	# shellcheck disable=SC2046
	(cd "$NODE_DIR" && exec env -u DATABASE_URL -u GRAPHILE_WORKER_SCHEMA PGHOST="$CL" \
		PGPORT="$PORT" PGUSER=postgres PGDATABASE=gw_node NO_LOG_SUCCESS=1 NODE_NO_WARNINGS=1 \
		node "$GW_BIN" $(node_args "$1" "$2")) >>"$LOGS/node-run.log" 2>&1 &
	NODE_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ "$(QV postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = 'gw_node'
			AND query ILIKE 'listen%'")" != 0 ] && return 0
		kill -0 "$NODE_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: the Node worker did not start listening (see $LOGS/node-run.log)" >&2
	exit 1
}
node_stop() {
	kill -TERM "$NODE_PID" 2>/dev/null || true
	wait "$NODE_PID" 2>/dev/null || true
	NODE_PID=
}

# --- latency and lateness ----------------------------------------------------

# latency DB SIDE: LAT_SAMPLES single add_job transactions 5 ms apart
# (pgbench, one client); the adding transaction records clock_timestamp()
# just before its COMMIT in bench_added, the insert_row handler records
# clock_timestamp() when it runs.  A worker must be running and idle.
latency() {
	local db=$1 side=$2 p
	Q "$db" -c "TRUNCATE public.bench_sink, public.bench_added" >/dev/null
	PGB "$db" -c 1 -t "$LAT_SAMPLES" -f "$CL/latency.pgb" >"$LOGS/latency-$side.log" 2>&1
	Q "$db" -c "CALL public.bench_wait_rows($LAT_SAMPLES, 60)" >/dev/null
	read -r p50 p95 p99 < <(QV "$db" "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3),
		round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 3),
		round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3)
		FROM (SELECT extract(epoch FROM s.at - a.t) * 1000 AS ms
			FROM public.bench_sink s JOIN public.bench_added a USING (job_id)) x" | tr '|' ' ')
	record lat_p50 "$side" "$p50"
	record lat_p95 "$side" "$p95"
	record lat_p99 "$side" "$p99"
	printf '   %-13s add->start latency, %d samples: p50 %s ms, p95 %s ms, p99 %s ms\n' \
		"$side" "$LAT_SAMPLES" "$p50" "$p95" "$p99"
}

# lateness DB SIDE: LATE_JOBS jobs with run_at 2 s to 12 s ahead, 20 ms
# apart, added in one add_jobs call; lateness = handler start - run_at.
lateness() {
	local db=$1 side=$2 p
	Q "$db" -c "TRUNCATE public.bench_sink, public.bench_added" >/dev/null
	Q "$db" -c "INSERT INTO public.bench_added (job_id, t)
		SELECT id, run_at FROM graphile_worker.add_jobs(ARRAY(
			SELECT ('insert_row', '{}'::json, NULL, now() + interval '2 s' + i * interval '20 ms',
			        NULL, NULL, NULL, NULL)::graphile_worker.job_spec
			  FROM generate_series(0, $LATE_JOBS - 1) i))" >/dev/null
	Q "$db" -c "CALL public.bench_wait_rows($LATE_JOBS, 60)" >/dev/null
	read -r p50 p99 < <(QV "$db" "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3),
		round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3)
		FROM (SELECT extract(epoch FROM s.at - a.t) * 1000 AS ms
			FROM public.bench_sink s JOIN public.bench_added a USING (job_id)) x" | tr '|' ' ')
	record late_p50 "$side" "$p50"
	record late_p99 "$side" "$p99"
	printf '   %-13s scheduled-job lateness, %d jobs: p50 %s ms, p99 %s ms\n' \
		"$side" "$LATE_JOBS" "$p50" "$p99"
}

# --- the workloads -----------------------------------------------------------

# visibility_rows: the cost of job history (no-op jobs at concurrency 4
# with graphile_worker.history off, failures, all; the three interleaved in
# each run, history emptied before each) and the time of one look at the
# queue_stats view, metrics() and unhandled_tasks on $QS_JOBS queued jobs
# (20 tasks without a handler, 10% in 100 named queues, 10% scheduled
# ahead; median of 5 looks after a warm-up).
visibility_rows() {
	local r h i ms vals
	echo "== job history: $JOBS pre-queued no-op jobs, concurrency 4, history off / failures / all (elapsed $(elapsed) s)"
	for ((r = 1; r <= RUNS; r++)); do
		for h in off failures all; do
			Q gw_ours -c "TRUNCATE graphile_worker._private_job_history" \
				-c "ALTER SYSTEM SET graphile_worker.history = '$h'" >/dev/null
			ours_throughput noop 4 "hist_${h}_c4" "$r"
		done
	done
	Q postgres -c "ALTER SYSTEM RESET graphile_worker.history" -c "SELECT pg_reload_conf()" >/dev/null
	Q gw_ours -c "TRUNCATE graphile_worker._private_job_history" >/dev/null
	[ "$HISTORY_SECONDS" -gt 0 ] && history_retention_run

	echo "== queue_stats, metrics() and unhandled_tasks on $QS_JOBS queued jobs (elapsed $(elapsed) s)"
	ours_config 4 on
	for ((i = 0; i < QS_JOBS; i += 10000)); do
		Q gw_ours -c "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
			SELECT ('qs_' || (g % 20), '{}'::json, CASE WHEN g % 10 = 0 THEN 'q' || (g % 100) END,
			        CASE WHEN g % 10 = 1 THEN now() + interval '1 hour' END,
			        NULL, NULL, NULL, NULL)::graphile_worker.job_spec
			  FROM generate_series($i, $i + 9999) g))" >/dev/null
	done
	Q gw_ours -c "VACUUM ANALYZE graphile_worker._private_jobs" -c "CHECKPOINT" >/dev/null
	# every column, as a poller reads them (count(*) would let the planner
	# leave out the aggregates)
	for view in "queue_stats:SELECT * FROM graphile_worker.queue_stats" \
		"metrics:SELECT graphile_worker.metrics()" \
		"unhandled:SELECT * FROM graphile_worker.unhandled_tasks"; do
		vals=()
		for ((r = 0; r <= 5; r++)); do
			ms=$(Q gw_ours -c '\timing on' -c "${view#*:}" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
			[ "$r" = 0 ] && continue
			record "look_${view%%:*}" ours "$ms"
			vals+=("$ms")
		done
		printf '   ours          %-12s on %d jobs: %.1f ms (median of 5)\n' "${view%%:*}" "$QS_JOBS" "$(median "${vals[@]}")"
	done
	Q gw_ours -c "TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues" \
		-c "VACUUM ANALYZE graphile_worker._private_jobs" >/dev/null
}

# history_retention_run: $HISTORY_SECONDS of add_job at $HISTORY_RATE jobs/s
# (pgbench -R, 2 clients) with history = all and the retention shortened
# from its 7 days to one minute as the run starts; each minute, the size of
# the job history (every partition with its indexes), its rows and its
# partitions.
history_retention_run() {
	local minutes m t_start target now rows parts mb
	echo "== job history size: $HISTORY_SECONDS s of add_job at $HISTORY_RATE jobs/s, concurrency 4, history = all, history_retention shortened to 1 min (elapsed $(elapsed) s)"
	ours_config 4 off
	Q postgres -c "ALTER SYSTEM SET graphile_worker.history = 'all'" \
		-c "ALTER SYSTEM SET graphile_worker.history_retention = '1min'" -c "SELECT pg_reload_conf()" >/dev/null
	t_start=$(QV postgres "SELECT extract(epoch FROM clock_timestamp())")
	(exec "$BINDIR/pgbench" -h "$CL" -p "$PORT" -U postgres -n -c 2 -j 2 -R "$HISTORY_RATE" -T "$HISTORY_SECONDS" \
		-f "$CL/add_job.pgb" gw_ours) >"$LOGS/history-pgbench.log" 2>&1 &
	BG_PID=$!
	minutes=$(((HISTORY_SECONDS + 59) / 60))
	for ((m = 1; m <= minutes; m++)); do
		target=$(calc "$t_start + 60 * $m")
		now=$(QV postgres "SELECT extract(epoch FROM clock_timestamp())")
		sleep "$(awk -v a="$target" -v b="$now" 'BEGIN { d = a - b; printf "%.3f", (d > 0 ? d : 0) }')"
		read -r rows parts mb < <(QV gw_ours "SELECT (SELECT count(*) FROM graphile_worker._private_job_history),
			(SELECT count(*) FROM graphile_worker._history_partitions()),
			round(sum(pg_total_relation_size(i.inhrelid)) / 1048576.0, 2)
			FROM pg_inherits i WHERE i.inhparent = 'graphile_worker._private_job_history'::regclass" | tr '|' ' ')
		record "hist_size_m$m" ours "$mb"
		record "hist_rows_m$m" ours "$rows"
		printf '   minute %d: job history %6.2f MB, %7d rows, %d partitions\n' "$m" "$mb" "$rows" "$parts"
	done
	wait "$BG_PID" || true
	BG_PID=
	grep -E '^tps' "$LOGS/history-pgbench.log" | sed 's/^/   pgbench: /'
	Q postgres -c "ALTER SYSTEM RESET graphile_worker.history" \
		-c "ALTER SYSTEM RESET graphile_worker.history_retention" -c "SELECT pg_reload_conf()" >/dev/null
	Q gw_ours -c "CALL public.bench_wait_empty(300)" -c "TRUNCATE graphile_worker._private_job_history" >/dev/null
	ours_config 4 on
}

if [ -n "${GW_BENCH_VISIBILITY_ONLY:-}" ]; then
	visibility_rows
elif [ -n "$QUICK" ]; then
	echo "== quick: $JOBS pre-queued no-op jobs at concurrency 4 (elapsed $(elapsed) s)"
	ours_throughput noop 4 noop_c4 1
	[ -n "$NODE_OK" ] && node_throughput node_batch noop 4 noop_c4 1
	echo "== quick: add->start latency, ours (elapsed $(elapsed) s)"
	ours_config 1 off
	latency gw_ours ours
	ours_config 1 on
else
	# runs NAME: how many runs a throughput point gets
	runs() { case $1 in main) echo "$RUNS" ;; *) echo "$OTHER_RUNS" ;; esac; }
	for c in 1 2 4 8 24; do
		echo "== throughput: $JOBS pre-queued no-op jobs, concurrency $c (elapsed $(elapsed) s)"
		kind=other
		[ "$c" = 4 ] && kind=main
		for ((r = 1; r <= $(runs $kind); r++)); do
			ours_throughput noop "$c" "noop_c$c" "$r"
		done
		[ -n "$NODE_OK" ] || continue
		if [ "$c" != 24 ]; then
			for ((r = 1; r <= OTHER_RUNS; r++)); do
				node_throughput node_default noop "$c" "noop_c$c" "$r"
			done
		fi
		for ((r = 1; r <= $(runs $kind); r++)); do
			node_throughput node_batch noop "$c" "noop_c$c" "$r"
		done
	done

	echo "== throughput: $JOBS pre-queued INSERT-handler jobs, concurrency 4 (elapsed $(elapsed) s)"
	for ((r = 1; r <= RUNS; r++)); do
		ours_throughput insert_row 4 insert_c4 "$r"
	done
	if [ -n "$NODE_OK" ]; then
		for ((r = 1; r <= OTHER_RUNS; r++)); do
			node_throughput node_default insert_row 4 insert_c4 "$r"
		done
		for ((r = 1; r <= RUNS; r++)); do
			node_throughput node_batch insert_row 4 insert_c4 "$r"
		done
	fi

	visibility_rows

	echo "== add->start latency and scheduled-job lateness, concurrency 1 (elapsed $(elapsed) s)"
	ours_config 1 off
	latency gw_ours ours
	lateness gw_ours ours
	ours_config 1 on
	if [ -n "$NODE_OK" ]; then
		for cfg in node_default node_batch; do
			node_start "$cfg" 1
			latency gw_node "$cfg"
			lateness gw_node "$cfg"
			node_stop
		done
	fi

	echo "== enqueue (workers paused; elapsed $(elapsed) s)"
	ours_config 4 on
	enqueue_rows() { # DB SIDE
		local db=$1 side=$2 c tps ms i v vals=()
		for c in 1 4; do
			tps=$(PGB "$db" -c "$c" -j "$c" -T 10 -f "$CL/add_job.pgb" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
			record "enq_add_job_c$c" "$side" "$tps"
			printf '   %-13s add_job, one per transaction, %d client(s): %.0f tx/s\n' "$side" "$c" "$tps"
			Q "$db" -c "DELETE FROM graphile_worker._private_jobs" -c "VACUUM graphile_worker._private_jobs" >/dev/null
		done
		for ((i = 0; i < 3; i++)); do
			ms=$(Q "$db" -c '\timing on' -c "SELECT public.bench_enqueue('noop', 10000)" |
				sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
			v=$(calc "10000 * 1000 / $ms")
			record enq_add_jobs_10k "$side" "$v"
			vals+=("$v")
			Q "$db" -c "DELETE FROM graphile_worker._private_jobs" -c "VACUUM graphile_worker._private_jobs" >/dev/null
		done
		printf '   %-13s add_jobs with 10,000 specs: %.0f jobs/s (median of 3)\n' "$side" "$(median "${vals[@]}")"
	}
	enqueue_rows gw_ours ours
	# without the jobs:insert NOTIFY (nothing but Node and Rust listens)
	for c in 1 4; do
		tps=$(PGOPTIONS="-c graphile_worker.notify_on_add=off" PGB gw_ours -c "$c" -j "$c" -T 10 \
			-f "$CL/add_job.pgb" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
		record "enq_quiet_c$c" ours "$tps"
		printf '   %-13s add_job, notify_on_add off, %d client(s): %.0f tx/s\n' ours "$c" "$tps"
		Q gw_ours -c "DELETE FROM graphile_worker._private_jobs" -c "VACUUM graphile_worker._private_jobs" >/dev/null
	done
	[ -n "$NODE_OK" ] && enqueue_rows gw_node node_default

	echo "== reference rows (elapsed $(elapsed) s)"
	for c in 1 4; do
		tps=$(PGB gw_ours -c "$c" -j "$c" -T 10 -f "$CL/insert.pgb" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
		record "ref_insert_c$c" ours "$tps"
		printf '   plain single-row INSERT, %d client(s): %.0f tx/s\n' "$c" "$tps"
	done
	Q gw_ours -c "TRUNCATE public.bench_plain" >/dev/null
	Q gw_ours -c "INSERT INTO public.bench_due (run_at, payload)
		SELECT now() - interval '1 s', '{}' FROM generate_series(1, 2000000)" \
		-c "VACUUM ANALYZE public.bench_due" -c "CHECKPOINT" >/dev/null
	before=$(QV gw_ours "SELECT count(*) FROM public.bench_due")
	out=$(PGB gw_ours -c 4 -j 2 -T 10 -f "$CL/skip_locked.pgb" 2>&1)
	after=$(QV gw_ours "SELECT count(*) FROM public.bench_due")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
	rows=$(calc "($before - $after) / 10")
	record ref_skip_tx ours "$tps"
	record ref_skip_rows ours "$rows"
	printf '   DELETE 100 due rows FOR UPDATE SKIP LOCKED, 4 clients: %.0f tx/s, %.0f rows/s\n' "$tps" "$rows"
	[ "$after" -gt 0 ] || echo "   (the prefilled table ran empty: the rows/s figure is a lower bound)"
	Q gw_ours -c "DROP TABLE public.bench_due" >/dev/null

	if [ "$SUSTAINED" -gt 0 ]; then
		# The capacity measured above (pre-queued jobs, nothing else
		# running) cannot be reached while add_job runs on the same CPUs:
		# one add_job transaction costs about as much as running a job.  So
		# a 20 s calibration first measures what concurrency 4 processes
		# while unthrottled pgbench clients enqueue (the lower of the two
		# is the capacity of this mixed load), and the sustained run
		# enqueues at 80% of that.
		cap=$(median $(awk -F '\t' '$1 == "tput_noop_c4" && $2 == "ours" { print $3 }' "$RES"))
		echo "== sustained: calibrating enqueue+processing capacity, concurrency 4 (elapsed $(elapsed) s)"
		Q gw_ours -c "VACUUM ANALYZE graphile_worker._private_jobs" -c "CHECKPOINT" >/dev/null
		ours_config 4 off
		seqname=$(QV gw_ours "SELECT pg_get_serial_sequence('graphile_worker._private_jobs', 'id')")
		# sample prints: time, jobs ever enqueued, queued now, n_dead_tup,
		# autovacuum count, size of _private_jobs with indexes (MB)
		sample() {
			QV gw_ours "SELECT extract(epoch FROM clock_timestamp()), (SELECT last_value FROM $seqname),
				(SELECT count(*) FROM graphile_worker._private_jobs), n_dead_tup, autovacuum_count,
				round(pg_total_relation_size(relid) / 1048576.0, 1)
				FROM pg_stat_user_tables WHERE relid = 'graphile_worker._private_jobs'::regclass" | tr '|' ' '
		}
		worker_pids() { QV gw_ours "SELECT pid FROM graphile_worker.workers WHERE kind = 'job worker' AND datname = 'gw_ours'"; }
		read -r t0 e0 q0 _ < <(sample)
		PGB gw_ours -c 4 -j 2 -T 20 -f "$CL/add_job.pgb" >"$LOGS/sustained-calibration.log" 2>&1
		read -r t1 e1 q1 _ < <(sample)
		mixed=$(calc "(($e1 - $e0) - ($q1 - $q0)) / ($t1 - $t0)")
		Q gw_ours -c "CALL public.bench_wait_empty(300)" >/dev/null
		rate=$(awk -v c="$cap" -v m="$mixed" 'BEGIN { printf "%d", (m < c ? m : c) * 0.8 }')
		printf '   processed %.0f jobs/s while enqueuing %.0f jobs/s (pre-queued capacity: %.0f jobs/s)\n' \
			"$mixed" "$(calc "($e1 - $e0) / ($t1 - $t0)")" "$cap"
		record meta sus_rate "$rate"
		record sus_cap_prequeued ours "$cap"
		record sus_cap_mixed ours "$mixed"
		echo "== sustained: $SUSTAINED s of add_job (pgbench -R $rate, 4 clients) with concurrency 4 (elapsed $(elapsed) s)"
		Q gw_ours -c "VACUUM ANALYZE graphile_worker._private_jobs" -c "CHECKPOINT" >/dev/null
		read -r rss0 _ anon0 < <($UTIL rss $(worker_pids))
		read -r t_prev e_prev q_prev _ av0 size0 < <(sample)
		t_start=$t_prev
		(exec "$BINDIR/pgbench" -h "$CL" -p "$PORT" -U postgres -n -c 4 -j 2 -R "$rate" -T "$SUSTAINED" \
			-f "$CL/add_job.pgb" gw_ours) >"$LOGS/sustained-pgbench.log" 2>&1 &
		BG_PID=$!
		busy_prev=$(machine_busy)
		cpu_prev=$($UTIL cpu "$PIDFILE" "$BG_PID")
		minutes=$(((SUSTAINED + 59) / 60))
		for ((m = 1; m <= minutes; m++)); do
			target=$(calc "$t_start + 60 * $m")
			now=$(QV postgres "SELECT extract(epoch FROM clock_timestamp())")
			sleep "$(awk -v a="$target" -v b="$now" 'BEGIN { d = a - b; printf "%.3f", (d > 0 ? d : 0) }')"
			read -r t e q dead av size < <(sample)
			busy=$(machine_busy)
			cpu=$($UTIL cpu "$PIDFILE" "$BG_PID")
			done_jobs=$(calc "(($e - $e_prev) - ($q - $q_prev)) / ($t - $t_prev)")
			enq=$(calc "($e - $e_prev) / ($t - $t_prev)")
			others=$(others_pct "$busy - $busy_prev" "$cpu - $cpu_prev" "$t - $t_prev")
			record "sus_enq_m$m" ours "$enq"
			record "sus_tput_m$m" ours "$done_jobs"
			record "sus_backlog_m$m" ours "$q"
			record "sus_dead_m$m" ours "$dead"
			record sus_others ours "$others"
			printf '   minute %d: enqueued %5.0f jobs/s, processed %5.0f jobs/s, queued %6d, n_dead_tup %6d, _private_jobs %5.1f MB; others used %.0f%% of the CPUs\n' \
				"$m" "$enq" "$done_jobs" "$q" "$dead" "$size" "$others"
			t_prev=$t e_prev=$e q_prev=$q busy_prev=$busy cpu_prev=$cpu
		done
		read -r rss1 _ anon1 < <($UTIL rss $(worker_pids))
		wait "$BG_PID" || true
		BG_PID=
		record sus_rss_start ours "$rss0"
		record sus_rss_end ours "$rss1"
		record sus_anon_start ours "$anon0"
		record sus_anon_end ours "$anon1"
		record sus_size_start ours "$size0"
		record sus_size_end ours "$size"
		record sus_autovacuum ours "$((av - av0))"
		printf '   job worker RSS (mean): %.1f MB at start, %.1f MB at end; private (RssAnon): %.1f MB -> %.1f MB\n' \
			"$rss0" "$rss1" "$anon0" "$anon1"
		printf '   _private_jobs with indexes: %.1f MB -> %.1f MB; autovacuum ran on it %d time(s)\n' \
			"$size0" "$size" "$((av - av0))"
		grep -E '^(tps|number of transactions actually processed|rate limit schedule lag)' \
			"$LOGS/sustained-pgbench.log" | sed 's/^/   pgbench: /'
		ours_config 4 on
	fi
fi

# --- report ------------------------------------------------------------------
echo
echo "== results: median (min-max) of the runs, the runs column says how many; wall time $(elapsed) s"
[ -n "$NODE_OK" ] || echo "   NOTE: Node side skipped: $NODE_NOTE"
$UTIL report "$RES" "$OUT" "$([ -n "$QUICK" ] && echo quick || echo full)" | tee "$OUT/table.txt"
echo
echo "== written: $OUT/table.txt, $OUT/bench.csv, $OUT/bench.png, $OUT/results.tsv (raw), $OUT/settings.txt, $OUT/logs/"
if [ -n "$QUICK" ]; then
	ours=$(awk -F '\t' '$1 == "tput_noop_c4" && $2 == "ours" { print $3 }' "$RES")
	node=$(awk -F '\t' '$1 == "tput_noop_c4" && $2 == "node_batch" { print $3 }' "$RES")
	p50=$(awk -F '\t' '$1 == "lat_p50" && $2 == "ours" { print $3 }' "$RES")
	p50=${p50:-0}
	speedup=$(awk -v a="$ours" -v b="$node" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "NA" }')
	printf 'speedup_vs_node_batched=%s latency_p50_ms=%.3f\n' "$speedup" "$p50"
fi
