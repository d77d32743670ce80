#!/usr/bin/env bash
# tests/demo.sh: `make demo`.  Builds and installs the extension, starts a
# throwaway cluster with it preloaded, creates a SQL and a C task handler,
# enqueues a few thousand jobs (some fail and are retried, some fail for
# good, some run in a serial named queue), shows them being processed, sets
# a crontab, pauses a queue and cancels a running job, then stops and
# removes the cluster.  Needs no running server.
set -euo pipefail
source "$(dirname "$0")/setup.sh"

install_packages
find_postgres
build_all
define_run_as

DEMO=$(mktemp -d "${TMPDIR:-/tmp}"/graphile_worker_demo.XXXXXX)
own "$DEMO"
PGPORT=5499
cleanup() {
	run_as "$BINDIR/pg_ctl" -D "$DEMO/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$DEMO"
}
trap cleanup EXIT

echo "== starting a throwaway cluster in $DEMO"
run_as "$BINDIR/initdb" -D "$DEMO/data" -U postgres -A trust >/dev/null
cat >>"$DEMO/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$DEMO'
port = $PGPORT
shared_preload_libraries = 'graphile_worker'
graphile_worker.concurrency = 4
EOF
run_as "$BINDIR/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" -w start >/dev/null

psql_demo() {
	run_as "$BINDIR/psql" -X -q -h "$DEMO" -p "$PGPORT" -U postgres -d demo -v ON_ERROR_STOP=1 "$@"
}
run_as "$BINDIR/createdb" -h "$DEMO" -p "$PGPORT" -U postgres demo

echo "== creating the extension, a SQL handler, a C handler and a serial queue handler"
psql_demo <<'SQL'
CREATE EXTENSION graphile_worker;
CREATE SCHEMA graphile_worker_tasks;
CREATE TABLE outbox (n int PRIMARY KEY, address text, sent_at timestamptz DEFAULT clock_timestamp());
CREATE TABLE c_handler_log (id bigserial, payload jsonb);
CREATE TABLE ledger (seq int, started timestamptz, finished timestamptz);

-- SQL handler: one job in 100 meets a busy server on its first attempt and
-- is retried; addresses ending in "invalid" fail for good.
CREATE FUNCTION graphile_worker_tasks.send_email(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF payload->>'to' LIKE '%invalid' THEN
    RAISE EXCEPTION 'mailbox % does not exist', payload->>'to'
      USING HINT = 'Check the address.';
  END IF;
  IF (payload->>'n')::int % 100 = 0 AND job.attempts = 1 THEN
    RAISE EXCEPTION 'SMTP server busy';
  END IF;
  INSERT INTO outbox (n, address) VALUES ((payload->>'n')::int, payload->>'to');
END $$;

-- C handler from tests/c_handler
CREATE FUNCTION graphile_worker_tasks.c_log(payload jsonb) RETURNS void
  AS 'gw_example_handlers', 'gw_example_log' LANGUAGE C STRICT;

-- runs in the named queue "ledger": one at a time, in order
CREATE FUNCTION graphile_worker_tasks.ledger_append(payload json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE t timestamptz := clock_timestamp();
BEGIN
  PERFORM pg_sleep(0.001);
  INSERT INTO ledger VALUES ((payload->>'seq')::int, t, clock_timestamp());
END $$;
SQL

echo "== enqueuing 3000 emails (30 retried, 5 invalid), 500 C jobs, 200 serial ledger jobs"
psql_demo <<'SQL'
SELECT count(*) AS emails FROM graphile_worker.add_jobs(ARRAY(
  SELECT ('send_email',
          json_build_object('n', n, 'to', CASE WHEN n % 600 = 1 THEN 'user' || n || '@invalid'
                                          ELSE 'user' || n || '@example.com' END),
          NULL, NULL, CASE WHEN n % 600 = 1 THEN 2 END, NULL, NULL, NULL)::graphile_worker.job_spec
    FROM generate_series(1, 3000) n));
SELECT count(*) AS c_jobs FROM graphile_worker.add_jobs(ARRAY(
  SELECT ('c_log', json_build_object('i', i), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
    FROM generate_series(1, 500) i));
SELECT count(*) AS ledger_jobs FROM graphile_worker.add_jobs(ARRAY(
  SELECT ('ledger_append', json_build_object('seq', s), 'ledger', NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
    FROM generate_series(1, 200) s));
SQL

echo "== processing (a first retry waits e^1 = 2.7 s)"
eol=$'\n'
[ -t 1 ] && eol=$'\r'
start=$EPOCHREALTIME
SECONDS=0
while :; do
	line=$(psql_demo -At -F ' ' -c "
		SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM c_handler_log)
		       + (SELECT count(*) FROM ledger),
		       count(*) FILTER (WHERE attempts = 0),
		       count(*) FILTER (WHERE attempts > 0 AND attempts < max_attempts AND locked_at IS NULL),
		       count(*) FILTER (WHERE attempts >= max_attempts),
		       count(*) FILTER (WHERE locked_at IS NOT NULL)
		  FROM graphile_worker.jobs")
	read -r done queued retrying failed running <<<"$line"
	elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	printf '  %5.1f s  done %4d/3700  queued %4d  running %d  waiting to retry %2d  failed for good %d %s' \
		"$elapsed" "$done" "$queued" "$running" "$retrying" "$failed" "$eol"
	if [ "$queued" = 0 ] && [ "$retrying" = 0 ] && [ "$running" = 0 ]; then
		break
	fi
	if [ "$SECONDS" -ge 60 ]; then
		echo; echo "demo: jobs still pending after 60 s"; exit 1
	fi
	sleep 0.5
done
[ -t 1 ] && echo

echo "== results"
psql_demo <<'SQL'
SELECT (SELECT count(*) FROM outbox) AS emails_sent,
       (SELECT count(*) FROM c_handler_log) AS c_jobs_done,
       (SELECT count(*) FROM ledger) AS ledger_entries,
       (SELECT count(*) FROM ledger a JOIN ledger b ON a.seq < b.seq
         WHERE a.started < b.finished AND b.started < a.finished) AS ledger_overlaps,
       (SELECT count(*) FROM graphile_worker.jobs) AS jobs_left;
\echo Permanently failed jobs (kept, as in Graphile Worker):
SELECT id, task_identifier, attempts, max_attempts, replace(last_error, E'\n', ' | ') AS last_error
  FROM graphile_worker.jobs WHERE attempts >= max_attempts ORDER BY id LIMIT 5;
SQL
echo "== a crontab: recurring jobs in the database, with time zones"
psql_demo <<'SQL'
SELECT graphile_worker.set_crontab($$
# m h dom mon dow task           options                      payload
0   4 *   *   *   send_email     ?id=daily_digest&max=3       {to: 'digest@example.com'}
*/15 9-17 * * 1-5 c_log          ?tz=Europe/Paris&fill=1h
30  2 *   *   *   ledger_append  ?tz=America/New_York&queue=ledger
$$) AS entries;
SELECT id, task_identifier, schedule, time_zone, fill, next_run_at
  FROM graphile_worker.crontab ORDER BY line;
SQL
echo "== control: pausing a queue and cancelling a running job"
psql_demo <<'SQL'
CREATE FUNCTION graphile_worker_tasks.stubborn(payload json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  LOOP  -- ignores cancels: cancel_job ends it anyway, within a second
    BEGIN PERFORM pg_sleep(0.05); EXCEPTION WHEN query_canceled THEN NULL; END;
  END LOOP;
END $$;
SELECT graphile_worker.pause_queue('ledger') AS " ";
SELECT count(*) AS queued_while_paused FROM (
  SELECT graphile_worker.add_job('ledger_append', json_build_object('seq', 1000 + s), 'ledger')
    FROM generate_series(1, 3) s) AS a;
SELECT id AS stubborn_id FROM graphile_worker.add_job('stubborn', '{}') \gset
SELECT 'one second later' AS " " FROM pg_sleep(1);
SELECT queue_name, paused, paused_by FROM graphile_worker.queues;
SELECT count(*) AS ledger_jobs_waiting FROM graphile_worker.jobs WHERE queue_name = 'ledger';
SELECT worker_id IS NOT NULL AS stubborn_running FROM graphile_worker.workers WHERE job_id = :stubborn_id;
SELECT attempts || '/' || max_attempts AS attempts, last_error FROM graphile_worker.cancel_job(:stubborn_id);
SELECT 'cancelled, 1.5 s later' AS " " FROM pg_sleep(1.5);
SELECT locked_by IS NULL AS stopped, last_error FROM graphile_worker.jobs WHERE id = :stubborn_id;
SELECT graphile_worker.resume_queue('ledger') AS " ";
SELECT 'resumed, 0.5 s later' AS " " FROM pg_sleep(0.5);
SELECT count(*) AS ledger_jobs_left_after_resume FROM graphile_worker.jobs WHERE queue_name = 'ledger';
SQL
echo "== stopping and removing the cluster"
