# 170_visibility.pl: what our workers record and report of finished jobs.
#
# Setup: 2 job workers, history = all, sweep_interval 1000 ms,
# restart_after_crash = on.  Handlers: ok (returns jsonb {"echo": payload}),
# bad (raises with SQLSTATE P0001), slow (sleeps while public.hold.v).
#   a. history rows of a completed job (its jsonb result), of a failed
#      attempt (error, SQLSTATE), of a permanently failed one and of a timed
#      out one, with start and finish times; task_stats counts them
#      (retried included) with run time quantiles; metrics() has the
#      counters and the histogram; log_failures = permanent logs the
#      permanent failure only.
#   b. wait_for_job on a job our worker runs returns at its commit with the
#      handler's result, even with history = off (its row is written all
#      the same), and NULL after its timeout for a job that does not finish.
#   c. kill -9 of the worker running slow: the server crash-restarts and the
#      sweep writes a "worker_died" row for the attempt (started_at = its
#      lock time, worker_id the dead worker).
#   d. retention: a partition of a day 10 days ago, with its rows, is
#      dropped by the supervisor once history_retention (8 days) is
#      reloaded; today's rows stay.  Shortened to 1 minute: a minute's
#      partition 3 days old is dropped whole, the partitions ahead
#      are minutes (the empty days ahead are gone) and today's ends within
#      a minute.
#   e. a task with due jobs and no handler (a camelCase name whose function
#      was created unquoted) gets one WARNING with the hint in the log.
#   f. a history row that cannot be written (a CHECK constraint refuses
#      it) leaves the job's completion be: no row, a WARNING.
#   g. cleanup_interval: the supervisor runs cleanup(), with
#      cleanup_permanently_failed_after = 0 deleting the permanently failed
#      jobs, then the tasks no job uses.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GwTest;

my $node = start_node('visibility', conf => q{
max_worker_processes = 16
restart_after_crash = on
graphile_worker.concurrency = 2
graphile_worker.sweep_interval = 1000
graphile_worker.poll_interval = 200
graphile_worker.history = all
});
my $db = create_db($node, 'vis');
$node->safe_psql($db, q{
CREATE TABLE public.hold (v boolean);
INSERT INTO public.hold VALUES (true);
CREATE FUNCTION graphile_worker_tasks.ok(payload jsonb) RETURNS jsonb
  LANGUAGE sql AS $$ SELECT jsonb_build_object('echo', payload) $$;
CREATE FUNCTION graphile_worker_tasks.bad(payload json) RETURNS void
  LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'bad %', payload->>'n'; END $$;
CREATE FUNCTION graphile_worker_tasks.slow(payload json) RETURNS void
  LANGUAGE plpgsql AS $$
BEGIN
  WHILE (SELECT v FROM public.hold) LOOP PERFORM pg_sleep(0.05); END LOOP;
END $$;
ALTER FUNCTION graphile_worker_tasks.slow(json) SET graphile_worker.job_timeout = '300ms';
});

run_case('a', sub {
	my $log_offset = -s $node->logfile;
	$node->safe_psql($db, q{
SELECT graphile_worker.add_job('ok', '{"n": 1}');
SELECT graphile_worker.add_job('bad', '{"n": 2}', max_attempts => 2);
SELECT graphile_worker.add_job('bad', '{"n": 3}', max_attempts => 1);
SELECT graphile_worker.add_job('slow', '{"n": 4}', max_attempts => 1);
});
	# the second attempt of bad 2 comes e^1 s after its first
	poll_is($node, $db, q{SELECT count(*) FROM graphile_worker.job_history}, '5',
		'a: five attempts recorded');
	is($node->safe_psql($db, q{
SELECT task_identifier, attempt, outcome, coalesce(result::text, '-'),
       coalesce(split_part(error, E'\n', 1), '-'), coalesce(sqlstate, '-'),
       started_at <= finished_at, worker_id ~ '^gw-'
  FROM graphile_worker.job_history ORDER BY job_id, attempt}),
		join("\n",
			'ok|1|completed|{"echo": {"n": 1}}|-|-|t|t',
			'bad|1|failed|-|bad 2|P0001|t|t',
			'bad|2|permanently_failed|-|bad 2|P0001|t|t',
			'bad|1|permanently_failed|-|bad 3|P0001|t|t',
			'slow|1|timed_out|-|job timed out after 300 ms|57014|t|t'),
		'a: outcome, result, error and SQLSTATE of each attempt');
	is($node->safe_psql($db, q{
SELECT task_identifier, succeeded, failed, permanently_failed, cancelled, timed_out,
       retried, run_time_p50 IS NOT NULL, run_time_p99 >= run_time_p50
  FROM graphile_worker.task_stats ORDER BY 1}),
		"bad|0|1|2|0|0|1|t|t\nok|1|0|0|0|0|0|t|t\nslow|0|0|0|0|1|0|t|t",
		'a: task_stats counts them');
	my $metrics = $node->safe_psql($db, 'SELECT graphile_worker.metrics()');
	like($metrics, qr/^graphile_worker_jobs_total\{database="vis",task="ok",outcome="completed"\} 1$/m,
		'a: metrics() has the counters');
	like($metrics, qr/^graphile_worker_job_duration_seconds_bucket\{database="vis",task="slow",le="\+Inf"\} 1$/m,
		'a: metrics() has the histogram');
	ok(wait_log($node, qr/job \d+ of task "bad" failed permanently on attempt 1 of 1: bad 3/, $log_offset),
		'a: the permanent failure is logged');
	unlike(slurp_file($node->logfile, $log_offset), qr/failed on attempt 1 of 2/,
		'a: a failure with attempts left is not (log_failures = permanent)');
});

run_case('b', sub {
	$node->safe_psql($db, q{
ALTER SYSTEM SET graphile_worker.history = off;
SELECT pg_reload_conf();
UPDATE public.hold SET v = true;
});
	sleep 1;
	# a job added paused would be racy: add one due in 1 s and wait for it
	my $id = $node->safe_psql($db,
		q{SELECT id FROM graphile_worker.add_job('ok', '{"n": 5}', run_at => now() + interval '1 s')});
	is($node->safe_psql($db, "SELECT outcome, result FROM graphile_worker.wait_for_job($id, '20 s')"),
		'completed|{"echo": {"n": 5}}', 'b: wait_for_job returns the result, history off');
	$node->safe_psql($db, q{ALTER FUNCTION graphile_worker_tasks.slow(json) RESET graphile_worker.job_timeout});
	my $slow = $node->safe_psql($db,
		q{SELECT id FROM graphile_worker.add_job('slow', '{}', max_attempts => 1)});
	is($node->safe_psql($db, "SELECT graphile_worker.wait_for_job($slow, '300 ms') IS NULL"),
		't', 'b: NULL after the timeout');
	$node->safe_psql($db, q{
ALTER SYSTEM SET graphile_worker.history = 'all';
SELECT pg_reload_conf();
UPDATE public.hold SET v = false;
});
	is($node->safe_psql($db, "SELECT outcome FROM graphile_worker.wait_for_job($slow, '20 s')"),
		'completed', 'b: the slow job completes once released');
});

run_case('c', sub {
	$node->safe_psql($db, q{UPDATE public.hold SET v = true});
	my $id = $node->safe_psql($db,
		q{SELECT id FROM graphile_worker.add_job('slow', '{"n": 6}')});
	my ($pid) = poll_value($node, $db,
		"SELECT pid FROM graphile_worker.workers WHERE job_id = $id", qr/^\d+$/);
	my $locked = $node->safe_psql($db,
		"SELECT locked_by || '|' || locked_at FROM graphile_worker.jobs WHERE id = $id");
	kill 'KILL', $pid;
	poll_is($node, $db,
		"SELECT count(*) FROM graphile_worker.job_history WHERE job_id = $id AND outcome = 'worker_died'",
		'1', 'c: the sweep records the dead worker\'s attempt');
	is($node->safe_psql($db, "SELECT worker_id || '|' || started_at, attempt, error ~ 'died while running'
  FROM graphile_worker.job_history WHERE job_id = $id"),
		"$locked|1|t", 'c: with its worker, start and error');
	$node->safe_psql($db, q{UPDATE public.hold SET v = false});
});

run_case('d', sub {
	my $day = $node->safe_psql($db,
		q{SELECT (now() at time zone 'UTC' - interval '10 days')::date});
	$node->safe_psql($db, qq{
SELECT graphile_worker._history_partition('$day 12:00+00', 'day');
INSERT INTO graphile_worker._private_job_history (job_id, task_identifier, attempt, outcome, finished_at)
  VALUES (-1, 'old', 1, 'completed', '$day 12:00+00');
});
	my $today = $node->safe_psql($db,
		q{SELECT count(*) FROM graphile_worker.job_history WHERE finished_at > now() - interval '1 day'});
	$node->safe_psql($db, q{
ALTER SYSTEM SET graphile_worker.history_retention = '8d';
SELECT pg_reload_conf();
});
	poll_is($node, $db, q{SELECT count(*) FROM graphile_worker.job_history WHERE job_id = -1}, '0',
		'd: the old day is dropped once the retention is reloaded');
	my $name = $day =~ s/-//gr;
	is($node->safe_psql($db, "SELECT to_regclass('graphile_worker._private_job_history_$name') IS NULL"),
		't', 'd: as a whole partition');
	is($node->safe_psql($db,
		q{SELECT count(*) FROM graphile_worker.job_history WHERE finished_at > now() - interval '1 day'}),
		$today, 'd: today\'s rows stay');

	# shortened to one minute: partitions of a minute from now on (the
	# old minute is 3 days back, where no day's partition covers it)
	is($node->safe_psql($db, q{
SELECT graphile_worker._history_partition(now() - interval '3 days', 'minute') IS NOT NULL}),
		't', 'd: a partition of the minute 3 days ago is created');
	my $old = $node->safe_psql($db, q{
INSERT INTO graphile_worker._private_job_history (job_id, task_identifier, attempt, outcome, finished_at)
  VALUES (-2, 'old', 1, 'completed', now() - interval '3 days');
SELECT tableoid::regclass FROM graphile_worker._private_job_history WHERE job_id = -2;
});
	like($old, qr/^graphile_worker\._private_job_history_\d{8}_\d{4}$/, 'd: a minute\'s partition');
	$node->safe_psql($db, q{
ALTER SYSTEM SET graphile_worker.history_retention = '1min';
SELECT pg_reload_conf();
});
	poll_is($node, $db, "SELECT to_regclass('$old') IS NULL", 't',
		'd: with history_retention = 1min, that minute 3 days ago is dropped whole');
	is($node->safe_psql($db, q{
SELECT (count(*) FILTER (WHERE to_at - from_at = interval '1 minute') >= 2) || '|'
    || count(*) FILTER (WHERE to_at - from_at > interval '1 minute')
  FROM graphile_worker._history_partitions() WHERE from_at > now()}),
		'true|0', 'd: the partitions ahead are minutes, the days ahead are gone');
	is($node->safe_psql($db, q{
SELECT to_at <= now() + interval '1 minute'
  FROM graphile_worker._history_partitions() WHERE from_at <= now() AND to_at > now()}),
		't', 'd: today\'s partition ends within a minute');
	$node->safe_psql($db, q{
ALTER SYSTEM RESET graphile_worker.history_retention;
SELECT pg_reload_conf();
});
});

run_case('e', sub {
	my $log_offset = -s $node->logfile;
	$node->safe_psql($db, q{
CREATE FUNCTION graphile_worker_tasks.sendemail(payload json) RETURNS void LANGUAGE sql AS '';
SELECT graphile_worker.add_job('sendEmail');
});
	# the supervisor looks every 10 minutes: a restart makes it look now
	$node->restart;
	ok(wait_log($node, qr/WARNING:  graphile_worker: 1 due jobs of task "sendEmail" have no handler in database "vis"\n.*HINT:  graphile_worker_tasks.sendemail\(payload json\) differs only in case/,
		$log_offset), 'e: one WARNING with the hint');
});

run_case('f', sub {
	# a history insert that fails costs the jobs nothing but their rows
	my $log_offset = -s $node->logfile;
	$node->safe_psql($db, q{
ALTER TABLE graphile_worker._private_job_history
  ADD CONSTRAINT no_nines CHECK (key IS DISTINCT FROM 'nine');
});
	my $id = $node->safe_psql($db,
		q{SELECT id FROM graphile_worker.add_job('ok', '{"n": 9}', job_key => 'nine')});
	poll_is($node, $db, "SELECT count(*) FROM graphile_worker.jobs WHERE id = $id", '0',
		'f: a job whose history row cannot be written completes');
	is($node->safe_psql($db, "SELECT count(*) FROM graphile_worker.job_history WHERE job_id = $id"),
		'0', 'f: without its row');
	ok(wait_log($node, qr/WARNING:  graphile_worker could not record the history of 1 jobs: .*no_nines/,
		$log_offset), 'f: and a WARNING says so');
	$node->safe_psql($db, q{
ALTER TABLE graphile_worker._private_job_history DROP CONSTRAINT no_nines;
});
});

run_case('g', sub {
	$node->safe_psql($db, q{
ALTER SYSTEM SET graphile_worker.cleanup_interval = '1s';
ALTER SYSTEM SET graphile_worker.cleanup_permanently_failed_after = 0;
SELECT pg_reload_conf();
});
	poll_is($node, $db,
		q{SELECT string_agg(identifier, ',' ORDER BY identifier) FROM graphile_worker._private_tasks},
		'sendEmail', 'g: the periodic cleanup deletes the permanently failed jobs and the unused tasks');
	is($node->safe_psql($db, q{SELECT count(*) FROM graphile_worker.jobs}), '1',
		'g: the queued job stays');
});

done_testing();
