# 130_exactly_once.pl: every claimed job ends exactly once (completed once,
# or failed with its own error), whatever the batch holds and whatever
# stops the worker, and the processes stay exactly as many as configured.
#
# Handlers write to public.ledger, which has NO unique constraint: a job
# that ran (and committed) twice shows as two rows instead of failing on
# the second.  Setup: concurrency 2, poll_interval 500 ms, sweep_interval
# 1000 ms, cancel_grace 1000 ms.  Each case checks only its own jobs.
#   a. 200 jobs of a SQL handler with one failing PL/pgSQL job among them:
#      no job is left locked, each of the 200 has exactly one ledger row,
#      the failing job is failed (attempts 1 of 1, unlocked) with its
#      RAISE message and CONTEXT as last_error.
#   b. 2,000 jobs spread over four handlers, (json), (jsonb), (json, job)
#      and (jsonb, job): none left, none locked, exactly one ledger row
#      each, with the payload's key, and the job id the handler was given
#      is the id of the job that carried that payload.
#   c. 3,000 jobs of a handler that writes and sleeps 4 ms; while they run:
#      pg_ctl stop -m fast + start, -m smart + start, pg_terminate_backend
#      of the worker running a job of the same task that waits (on
#      public.c_ctl), ALTER DATABASE RENAME and back: all 3,001 complete,
#      exactly one ledger row each, all at attempts 1 with no last_error
#      (interrupted or unstarted jobs are given back) but the one whose
#      worker was terminated: attempts 2, last_error 'worker was terminated
#      while running this job'; the sweep released nothing.
#   d. a handler that violates a DEFERRABLE INITIALLY DEFERRED foreign key
#      among 50 correct jobs of the same task, all added together, all
#      max_attempts 2: the culprit fails after its first try (attempts 1)
#      with the foreign key violation and its DETAIL as last_error; the 50
#      complete exactly once, each at attempts 1; nothing says a worker
#      died (log, last_error).
#   e. a C handler whose library file was removed after CREATE FUNCTION
#      (which insists on loading it), among 100 jobs of another task: its 3
#      jobs fail with 'could not access file "<the file>": No such file or
#      directory' (attempts 1 of 1), the 100 complete exactly once, the 2
#      job workers keep their pids (no crash loop, no exit in the log).
#   f. process bookkeeping: after pg_terminate_backend of the launcher 4
#      times (each time a new launcher is awaited) the database has exactly
#      1 supervisor and 2 job workers (pg_stat_activity), for 3 s; after
#      graphile_worker.concurrency 1 -> 4 -> 1 -> 0 -> 2 (ALTER SYSTEM +
#      pg_reload_conf(), milliseconds apart; three rounds) exactly 2 job
#      workers, for 3 s; then 4, 1, 0 and 2 one at a time give exactly that
#      many (0: none at all), each for 2 s.
#   g. a handler that terminates its own worker (max_attempts 3) ends
#      permanently failed: attempts 3, last_error 'worker was terminated
#      while running this job', its handler ran exactly 3 times, and it is
#      not claimed again; a running job detached by remove_job(key) and then
#      interrupted by pg_ctl stop -m fast keeps attempts = max_attempts and
#      never runs again (one run, no ledger row), while a later job runs.
#   h. a handler that catches query_canceled and goes on: with its own
#      job_timeout 300 ms it fails 1.3 s (+ 1.7 s margin) after it starts
#      with last_error 'job timed out after 300 ms; the handler went on for
#      graphile_worker.cancel_grace (1000 ms) after its cancel, and its
#      worker exited', attempts 1, run once, while 20 jobs of another task
#      complete on the other worker meanwhile; with no timeout, pg_ctl stop
#      -m fast during it takes less than 3.5 s and after the start the job
#      is unlocked with attempts 0 (given back) and no last_error; it then
#      completes at attempts 1 (two runs in all).
#   i. memory: concurrency 1; after 400 no-op jobs (so that batches are
#      large), 30 jobs with 20 MB payloads (compressed to a few hundred kB
#      as stored) for a (jsonb, job) handler all complete, claimed in fewer
#      than 30 batches, and the job worker's peak RSS (VmHWM) stays under
#      400 MB: one job needs a few copies of its payload (~60 MB) and
#      shared_buffers is 128 MB, while keeping the payloads of a batch
#      would take 20 MB or more per job.
# The whole log has no "terminated by signal" line.
#
# GW_CASES=a,d runs only those cases (after the common setup).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Copy qw(copy);
use Time::HiRes qw(time usleep);
use GwTest;

my $t_script = time;
my $node = start_node('exactly_once', conf => q{
max_worker_processes = 32
max_parallel_workers_per_gather = 0
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 500
graphile_worker.sweep_interval = 1000
graphile_worker.cancel_grace = 1000
});
my $db = create_db($node, 'eo');

sub sql { return $node->safe_psql($db, $_[0]); }

sql(q{
-- No unique constraint: a second run of a job must show, not fail.
CREATE TABLE public.ledger (
	task text NOT NULL,
	k int NOT NULL,
	job_id bigint,
	attempts int,
	last_error text,
	locked_at timestamptz,
	n bigint,
	pid int NOT NULL DEFAULT pg_backend_pid(),
	at timestamptz NOT NULL DEFAULT clock_timestamp());
});

my $workers_up = job_workers_sql();
my $worker_pids = q{
SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '')
  FROM pg_stat_activity
 WHERE backend_type = 'graphile_worker job worker' AND datname = current_database()};

# Lines of the server log (not statements it echoes) saying that a process
# exited with an error or a signal, or that the sweep released jobs of
# workers that died.
my $exit_line = qr/LOG:  background worker .* (exited with exit code [1-9]|was terminated by signal)/;
my $release_line = qr/LOG:  graphile_worker released \d+ jobs locked by workers that died/;

# The ledger rows of $task as "rows|distinct keys|min key|max key".
sub ledger_summary
{
	my ($task) = @_;
	return sql(qq{
SELECT count(*) || '|' || count(DISTINCT k) || '|' || coalesce(min(k), 0) || '|' || coalesce(max(k), 0)
  FROM public.ledger WHERE task = '$task'});
}

# Jobs of @tasks still in graphile_worker.jobs, and how many are locked.
sub left_of
{
	my $list = join ',', map { "'$_'" } @_;
	return qq{
SELECT count(*) || '|' || count(*) FILTER (WHERE locked_at IS NOT NULL OR locked_by IS NOT NULL)
  FROM graphile_worker.jobs WHERE task_identifier IN ($list)};
}

# ---------------------------------------------------------------- a
run_case('a', sub {
	my $s = 'a (200 jobs and a failing one)';
	sql(q{
CREATE FUNCTION graphile_worker_tasks.a_ok(payload json) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.ledger (task, k) VALUES ('a', (payload->>'k')::int)
$$;
CREATE FUNCTION graphile_worker_tasks.a_fail(payload json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a_fail failed on purpose (k %)', payload->>'k';
END $$;
});
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	my (undef, $fail_id) = split /\n/, sql(q{
BEGIN;
SELECT count(graphile_worker.add_job('a_ok', json_build_object('k', i))) FROM generate_series(1, 100) AS i;
SELECT id FROM graphile_worker.add_job('a_fail', '{"k": 0}', max_attempts => 1);
SELECT count(graphile_worker.add_job('a_ok', json_build_object('k', i))) FROM generate_series(101, 200) AS i;
COMMIT;});
	poll_is($node, $db, left_of('a_ok', 'a_fail') . ' AND (locked_by IS NOT NULL OR last_error IS NULL)',
		'0|0', "$s: the 200 are done and the failing job has been run", 60);
	is(sql(q{SELECT count(*) FROM graphile_worker.jobs WHERE locked_at IS NOT NULL OR locked_by IS NOT NULL}),
		'0', "$s: no job is left locked");
	is(ledger_summary('a'), '200|200|1|200', "$s: each of the 200 jobs has exactly one ledger row");
	is(sql(qq{SELECT attempts || '|' || max_attempts || '|' || (locked_by IS NULL) || '|' || last_error
		FROM graphile_worker.jobs WHERE id = $fail_id}),
		"1|1|true|a_fail failed on purpose (k 0)\n"
		  . 'CONTEXT: PL/pgSQL function graphile_worker_tasks.a_fail(json) line 3 at RAISE',
		"$s: the failing job failed with its own error (attempts 1 of 1, unlocked)");
});

# ---------------------------------------------------------------- b
run_case('b', sub {
	my $s = 'b (2,000 jobs, json and jsonb handlers)';
	sql(q{
CREATE TABLE public.b_jobs (k int NOT NULL, id bigint NOT NULL);
CREATE FUNCTION graphile_worker_tasks.b_json(payload json) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.ledger (task, k) VALUES ('b', (payload->>'k')::int)
$$;
CREATE FUNCTION graphile_worker_tasks.b_jsonb(payload jsonb) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.ledger (task, k) VALUES ('b', (payload->>'k')::int)
$$;
CREATE FUNCTION graphile_worker_tasks.b_json_job(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.ledger (task, k, job_id, attempts) VALUES ('b', (payload->>'k')::int, job.id, job.attempts);
END $$;
CREATE FUNCTION graphile_worker_tasks.b_jsonb_job(payload jsonb, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.ledger (task, k, job_id, attempts) VALUES ('b', (payload->>'k')::int, job.id, job.attempts);
END $$;
});
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	sql(q{
INSERT INTO public.b_jobs (k, id)
SELECT i, (graphile_worker.add_job(
		(ARRAY['b_json', 'b_jsonb', 'b_json_job', 'b_jsonb_job'])[i % 4 + 1],
		json_build_object('k', i, 'pad', repeat('y', i % 50)))).id
  FROM generate_series(1, 2000) AS i});
	poll_is($node, $db, left_of('b_json', 'b_jsonb', 'b_json_job', 'b_jsonb_job'), '0|0',
		"$s: all 2,000 jobs completed (none left, none locked)", 60);
	is(ledger_summary('b'), '2000|2000|1|2000', "$s: exactly one ledger row per job");
	is(sql(q{
SELECT count(*) || '|' || count(*) FILTER (WHERE l.job_id = j.id AND l.attempts = 1)
  FROM public.ledger AS l JOIN public.b_jobs AS j USING (k)
 WHERE l.task = 'b' AND j.k % 4 IN (2, 3)}),
		'1000|1000', "$s: the (payload, job) handlers got the job of their payload, at attempts 1");
});

# ---------------------------------------------------------------- c
run_case('c', sub {
	my $s = 'c (stops under load)';
	sql(q{
CREATE TABLE public.c_ctl (hold bool NOT NULL);
INSERT INTO public.c_ctl VALUES (true);
-- a job with "hold" in its payload waits while public.c_ctl.hold (30 s at most)
CREATE FUNCTION graphile_worker_tasks.c_load(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  INSERT INTO public.ledger (task, k, job_id, attempts, last_error)
    VALUES ('c', (payload->>'k')::int, job.id, job.attempts, job.last_error);
  PERFORM pg_sleep(0.004);
  WHILE payload->>'hold' IS NOT NULL AND (SELECT hold FROM public.c_ctl)
        AND clock_timestamp() < t0 + interval '30 s' LOOP
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
});
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	my $off = -s $node->logfile;
	sql(q{SELECT count(graphile_worker.add_job('c_load', json_build_object('k', i)))
		FROM generate_series(1, 3000) AS i});

	my $done = q{SELECT count(*) FROM public.ledger WHERE task = 'c'};
	# Waits until $n jobs are done; checks that work is left.
	my $reach = sub {
		my ($n, $what) = @_;
		my ($out) = poll_value($node, $db, "SELECT count(*) >= $n FROM public.ledger WHERE task = 'c'", 't', 60);
		my $now = sql($done);
		ok($out eq 't' && $now < 3000, "$s: $now of the 3,000 done before $what (under load)");
	};

	$reach->(300, 'pg_ctl stop -m fast');
	$node->stop('fast');
	$node->start;
	$reach->(900, 'pg_ctl stop -m smart');
	$node->stop('smart');
	$node->start;
	$reach->(1500, 'pg_terminate_backend');
	my $held = sql(q{SELECT id FROM graphile_worker.add_job('c_load', '{"k": 3001, "hold": true}', priority => -1)});
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.workers WHERE job_id = $held AND state = 'busy'},
		'1', "$s: the waiting job $held runs", 30);
	is(sql(qq{SELECT pg_terminate_backend(pid) FROM graphile_worker.workers WHERE job_id = $held}),
		't', "$s: pg_terminate_backend of its worker");
	poll_is($node, $db, qq{SELECT attempts || '|' || (locked_by IS NULL) FROM graphile_worker.jobs WHERE id = $held},
		'1|true', "$s: it failed (and waits for its retry)", 30);
	sql('UPDATE public.c_ctl SET hold = false');
	$reach->(2100, 'ALTER DATABASE RENAME');
	$node->safe_psql('postgres', "ALTER DATABASE $db RENAME TO ${db}_renamed");
	$node->safe_psql('postgres', "ALTER DATABASE ${db}_renamed RENAME TO $db");

	poll_is($node, $db, left_of('c_load'), '0|0', "$s: all 3,001 jobs completed (none left, none locked)", 60);
	is(ledger_summary('c'), '3001|3001|1|3001', "$s: exactly one ledger row per job: no job ran twice");
	is(sql(q{
SELECT count(*) FILTER (WHERE attempts = 1 AND last_error IS NULL) || '|'
	|| coalesce(string_agg(k || ':' || attempts || ':' || coalesce(last_error, '<null>'), ',')
		FILTER (WHERE attempts <> 1 OR last_error IS NOT NULL), '<none>')
  FROM public.ledger WHERE task = 'c'}),
		'3000|3001:2:worker was terminated while running this job',
		"$s: jobs interrupted by the stops or not started were given back (attempts 1, no last_error); "
		  . "the one whose worker was terminated counted its attempt");
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $release_line), 0, "$s: log: the sweep released no job of a dead worker");
});

# ---------------------------------------------------------------- d
run_case('d', sub {
	my $s = 'd (deferred foreign key violation in a batch)';
	sql(q{
CREATE TABLE public.d_parent (id int PRIMARY KEY);
INSERT INTO public.d_parent VALUES (1);
CREATE TABLE public.d_child (parent_id int NOT NULL
	REFERENCES public.d_parent DEFERRABLE INITIALLY DEFERRED);
CREATE FUNCTION graphile_worker_tasks.d_write(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.d_child VALUES ((payload->>'parent')::int);
  INSERT INTO public.ledger (task, k, job_id, attempts) VALUES ('d', (payload->>'k')::int, job.id, job.attempts);
END $$;
});
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	my $off = -s $node->logfile;
	my (undef, $culprit) = split /\n/, sql(q{
BEGIN;
SELECT count(graphile_worker.add_job('d_write', json_build_object('k', i, 'parent', 1), max_attempts => 2))
  FROM generate_series(1, 25) AS i;
SELECT id FROM graphile_worker.add_job('d_write', '{"k": 0, "parent": 999}', max_attempts => 2);
SELECT count(graphile_worker.add_job('d_write', json_build_object('k', i, 'parent', 1), max_attempts => 2))
  FROM generate_series(26, 50) AS i;
COMMIT;});
	# read in one query when it first shows an error (its retry is 2.7 s later)
	my ($first) = poll_value($node, $db, qq{
SELECT attempts || '|' || (locked_by IS NULL) || '|' || last_error
  FROM graphile_worker.jobs WHERE id = $culprit AND last_error IS NOT NULL}, qr/./, 60);
	is($first,
		"1|true|insert or update on table \"d_child\" violates foreign key constraint \"d_child_parent_id_fkey\"\n"
		  . 'DETAIL: Key (parent_id)=(999) is not present in table "d_parent".',
		"$s: the culprit failed after its first try (attempts 1, unlocked) with its own foreign key violation");
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.jobs WHERE task_identifier = 'd_write' AND id <> $culprit},
		'0', "$s: the 50 correct jobs completed", 30);
	is(ledger_summary('d'), '50|50|1|50', "$s: exactly one ledger row for each of them");
	is(sql(q{SELECT string_agg(DISTINCT attempts::text, ',') FROM public.ledger WHERE task = 'd'}),
		'1', "$s: each ran at attempts 1 (no attempt lost to the culprit)");
	is(sql(q{SELECT count(*) FROM graphile_worker.jobs WHERE last_error LIKE 'worker % died while running this job'}),
		'0', "$s: no job failed with 'worker died'");
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $release_line) + count_lines($log, $exit_line), 0,
		"$s: log: no worker exited with an error, the sweep released nothing");
});

# ---------------------------------------------------------------- e
run_case('e', sub {
	my $s = 'e (handler whose library is missing)';
	sql(q{
CREATE FUNCTION graphile_worker_tasks.e_ok(payload json) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.ledger (task, k) VALUES ('e', (payload->>'k')::int)
$$;
});
	# CREATE FUNCTION checks that a C function's library loads (whatever
	# check_function_bodies says): create it with a copy of a library, then
	# remove the copy, as an uninstalled library would be.
	my $libdir = sql(q{SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'});
	my $gone = PostgreSQL::Test::Utils::tempdir() . '/gw_gone_library.so';
	copy("$libdir/gw_example_handlers.so", $gone) or die "copy to $gone: $!";
	sql(qq{CREATE FUNCTION graphile_worker_tasks.broken(payload json) RETURNS void
		AS '$gone', 'gw_example_log' LANGUAGE C});
	unlink $gone or die "unlink $gone: $!";
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	my $pids = sql($worker_pids);
	my $off = -s $node->logfile;
	my $broken_ids = sql(q{
WITH added AS MATERIALIZED (
	SELECT i, j.id
	  FROM generate_series(1, 103) AS i,
	       LATERAL graphile_worker.add_job(CASE WHEN i % 34 = 0 THEN 'broken' ELSE 'e_ok' END,
				json_build_object('k', i), max_attempts => 1) AS j)
SELECT string_agg(id::text, ',' ORDER BY id) FROM added WHERE i % 34 = 0});
	poll_is($node, $db, left_of('e_ok'), '0|0', "$s: the 100 jobs of another task all ran", 60);
	is(ledger_summary('e'), '100|100|1|103', "$s: exactly once each");
	poll_is($node, $db, qq{
SELECT string_agg(attempts || '|' || max_attempts || '|' || (locked_by IS NULL) || '|' || coalesce(last_error, '<null>'),
	E'\\n' ORDER BY id)
  FROM graphile_worker.jobs WHERE id IN ($broken_ids)},
		join("\n", ("1|1|true|could not access file \"$gone\": No such file or directory") x 3),
		"$s: the 3 jobs of broken failed with the load error (attempts 1 of 1)", 30);
	is(sql($worker_pids), $pids, "$s: the 2 job workers kept their pids ($pids): no crash loop");
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $exit_line), 0, "$s: log: no process exited with an error or a signal");
	sql('DROP FUNCTION graphile_worker_tasks.broken(json)');
});

# ---------------------------------------------------------------- g
run_case('g', sub {
	my $s = 'g (attempts)';
	sql(q{
CREATE SEQUENCE public.g_runs;
CREATE SEQUENCE public.g_long_runs;
CREATE TABLE public.g_ctl (hold bool NOT NULL);
INSERT INTO public.g_ctl VALUES (true);
CREATE FUNCTION graphile_worker_tasks.g_suicide(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('public.g_runs');
  PERFORM pg_terminate_backend(pg_backend_pid());
  PERFORM pg_sleep(5);
  INSERT INTO public.ledger (task, k, job_id, attempts) VALUES ('g', 0, job.id, job.attempts);
END $$;
-- sleeps while public.g_ctl.hold (60 s at most)
CREATE FUNCTION graphile_worker_tasks.g_long(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM nextval('public.g_long_runs');
  WHILE (SELECT hold FROM public.g_ctl) AND clock_timestamp() < t0 + interval '60 s' LOOP
    PERFORM pg_sleep(0.02);
  END LOOP;
  INSERT INTO public.ledger (task, k, job_id, attempts) VALUES ('g_long', 0, job.id, job.attempts);
END $$;
CREATE FUNCTION graphile_worker_tasks.g_quick(payload json) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.ledger (task, k) VALUES ('g_quick', (payload->>'k')::int)
$$;
});
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	my $terminated = 'worker was terminated while running this job';
	my $id = sql(q{SELECT id FROM graphile_worker.add_job('g_suicide', '{}', max_attempts => 3)});
	# Each failure is retried at once (reschedule_jobs) rather than after
	# its backoff; the loop ends at attempts 3, or after 30 s.
	my $deadline = time + 30;
	my ($state, @seen);
	for (;;)
	{
		$state = sql(qq{SELECT attempts || '|' || (locked_by IS NULL) || '|' || coalesce(last_error, '<null>')
			FROM graphile_worker.jobs WHERE id = $id});
		push @seen, $state unless @seen && $seen[-1] eq $state;
		last if $state eq "3|true|$terminated" || time > $deadline;
		sql(qq{SELECT count(*) FROM graphile_worker.reschedule_jobs(ARRAY[$id]::bigint[], run_at => now())})
		  if $state =~ /^[12]\|true\|\Q$terminated\E$/;
		usleep(50_000);
	}
	note "$s: states seen: " . join(' ; ', @seen);
	is($state, "3|true|$terminated",
		"$s: the job that terminates its own worker ends permanently failed: attempts 3 of 3, unlocked, '$terminated'");
	my $ctl = sql(q{SELECT id FROM graphile_worker.add_job('g_quick', '{"k": 1}')});
	poll_is($node, $db, qq{SELECT count(*) FROM public.ledger WHERE task = 'g_quick' AND k = 1}, '1',
		"$s: a later job runs", 30);
	is(sql(qq{SELECT attempts FROM graphile_worker.jobs WHERE id = $id}) . '|' . sql('SELECT last_value FROM public.g_runs'),
		'3|3', "$s: its handler ran exactly 3 times and the job was not claimed again");

	# remove_job while it runs, then a fast stop
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	my $long = sql(q{SELECT id FROM graphile_worker.add_job('g_long', '{}', job_key => 'g_removed')});
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.workers WHERE job_id = $long AND state = 'busy'},
		'1', "$s: the keyed job $long is running");
	is(sql(q{SELECT id FROM graphile_worker.remove_job('g_removed')}), $long, "$s: remove_job('g_removed') returns it");
	is(sql(qq{SELECT (key IS NULL) || '|' || (attempts = max_attempts) || '|' || (locked_by IS NOT NULL)
		FROM graphile_worker.jobs WHERE id = $long}),
		'true|true|true', "$s: it is detached (no key, attempts = max_attempts) and still running");
	$node->stop('fast');
	$node->start;
	sql('UPDATE public.g_ctl SET hold = false');
	sql(q{SELECT graphile_worker.add_job('g_quick', '{"k": 2}')});
	poll_is($node, $db, q{SELECT count(*) FROM public.ledger WHERE task = 'g_quick' AND k = 2}, '1',
		"$s: after the restart a later job runs", 30);
	is(sql(qq{SELECT coalesce((SELECT attempts || '/' || max_attempts || '|' || (locked_by IS NULL)
		FROM graphile_worker.jobs WHERE id = $long), 'gone')}),
		'25/25|true', "$s: the detached job is unlocked and keeps attempts = max_attempts (25/25)");
	is(sql(q{SELECT last_value FROM public.g_long_runs}) . '|'
		  . sql(q{SELECT count(*) FROM public.ledger WHERE task = 'g_long'}),
		'1|0', "$s: it never ran again (one run, interrupted; no ledger row)");
});

# ---------------------------------------------------------------- h
run_case('h', sub {
	my $s = 'h (cancel grace)';
	sql(q{
CREATE SEQUENCE public.h_runs;
CREATE TABLE public.h_ctl (hold bool NOT NULL);
INSERT INTO public.h_ctl VALUES (true);
-- Catches every cancel and goes on while public.h_ctl.hold (10 s at most).
CREATE FUNCTION public.h_stubborn(k int, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  cancels int := 0;
BEGIN
  PERFORM nextval('public.h_runs');
  LOOP
    BEGIN
      PERFORM pg_sleep(0.02);
    EXCEPTION WHEN query_canceled THEN
      cancels := cancels + 1;
    END;
    EXIT WHEN NOT (SELECT hold FROM public.h_ctl) OR clock_timestamp() > t0 + interval '10 s';
  END LOOP;
  INSERT INTO public.ledger (task, k, job_id, attempts, n) VALUES ('h', k, job.id, job.attempts, cancels);
END $$;
CREATE FUNCTION graphile_worker_tasks.h_timed(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql SET graphile_worker.job_timeout = '300ms' AS $$
BEGIN
  PERFORM public.h_stubborn((payload->>'k')::int, job);
END $$;
CREATE FUNCTION graphile_worker_tasks.h_untimed(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM public.h_stubborn((payload->>'k')::int, job);
END $$;
CREATE FUNCTION graphile_worker_tasks.h_quick(payload json) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.ledger (task, k) VALUES ('h_quick', (payload->>'k')::int)
$$;
});
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	my $timed = sql(q{SELECT id FROM graphile_worker.add_job('h_timed', '{"k": 1}', max_attempts => 1)});
	my $t0 = time;
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.workers WHERE job_id = $timed AND state = 'busy'},
		'1', "$s: the timed job is running");
	sql(q{SELECT count(graphile_worker.add_job('h_quick', json_build_object('k', i))) FROM generate_series(1, 20) AS i});
	poll_is($node, $db, q{SELECT count(*) FROM public.ledger WHERE task = 'h_quick'}, '20',
		"$s: meanwhile 20 jobs of another task complete", 30);
	is(sql(qq{SELECT (locked_by IS NOT NULL AND last_error IS NULL)::text FROM graphile_worker.jobs WHERE id = $timed}),
		'true', "$s: (while the timed job still runs)");
	my ($err, $waited) = poll_value($node, $db,
		qq{SELECT attempts || '|' || (locked_by IS NULL) || '|' || last_error
		     FROM graphile_worker.jobs WHERE id = $timed AND last_error IS NOT NULL}, qr/./, 5);
	$waited = time - $t0;
	is($err,
		'1|true|job timed out after 300 ms; the handler went on for graphile_worker.cancel_grace (1000 ms) '
		  . 'after its cancel, and its worker exited',
		"$s: the job that catches its cancel fails: attempts 1, unlocked, 'job timed out after 300 ms; ...'");
	ok($waited >= 1.25 && $waited < 3.0,
		sprintf("$s: %.2f s after it was added (300 ms + cancel_grace 1000 ms; < 3 s)", $waited));
	is(sql('SELECT last_value FROM public.h_runs') . '|' . sql(q{SELECT count(*) FROM public.ledger WHERE task = 'h'}),
		'1|0', "$s: its handler ran once and did not complete");

	# a fast stop while it runs without a timeout; the workers are paused
	# first, so that after the start the job is seen unclaimed
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers");
	my $untimed = sql(q{SELECT id FROM graphile_worker.add_job('h_untimed', '{"k": 2}')});
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.workers WHERE job_id = $untimed AND state = 'busy'},
		'1', "$s: the job without a timeout is running");
	is(sql(qq{SELECT attempts FROM graphile_worker.jobs WHERE id = $untimed}), '1', "$s: at attempts 1");
	sql('ALTER SYSTEM SET graphile_worker.paused = on');
	sql('SELECT pg_reload_conf()');
	poll_is($node, $db, $workers_up, '2:busy,paused', "$s: the other worker is paused");
	my $t_stop = time;
	$node->stop('fast');
	my $took = time - $t_stop;
	ok($took < 3.5, sprintf("$s: pg_ctl stop -m fast took %.2f s (cancel_grace 1 s; < 3.5 s)", $took));
	$node->start;
	is(sql(qq{SELECT attempts || '|' || (locked_by IS NULL) || '|' || coalesce(last_error, '<null>')
		FROM graphile_worker.jobs WHERE id = $untimed}),
		'0|true|<null>', "$s: after the start it is unlocked with attempts 0 (given back) and no last_error");
	sql('UPDATE public.h_ctl SET hold = false');
	sql('ALTER SYSTEM RESET graphile_worker.paused');
	sql('SELECT pg_reload_conf()');
	poll_is($node, $db, qq{SELECT attempts FROM public.ledger WHERE task = 'h' AND job_id = $untimed}, '1',
		"$s: then it completes, at attempts 1", 30);
	is(sql('SELECT last_value FROM public.h_runs'), '3', "$s: (its handler ran twice)");
});

# ---------------------------------------------------------------- f
run_case('f', sub {
	my $s = 'f (process bookkeeping)';
	my $procs = processes_sql($db);
	my $launcher = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'graphile_worker launcher'};
	poll_is($node, 'postgres', $procs, '1|2', "$s: 1 supervisor, 2 job workers");
	for my $round (1 .. 4)
	{
		my $pid = $node->safe_psql('postgres', $launcher);
		is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"), 't',
			"$s: pg_terminate_backend of the launcher ($round)");
		poll_is($node, 'postgres', "SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'graphile_worker launcher' AND pid <> $pid", '1',
			"$s: a new launcher runs ($round)", 30);
	}
	poll_is($node, 'postgres', $procs, '1|2', "$s: after 4 launcher restarts: 1 supervisor, 2 job workers", 30);
	stays_is($node, 'postgres', $procs, '1|2', 3, "$s: and so it stays (3 s)");

	my $set = sub {
		return join '', map { "ALTER SYSTEM SET graphile_worker.concurrency = $_;\nSELECT pg_reload_conf();\n" } @_;
	};
	# The last change also pauses the workers: only once the two job
	# workers show "paused" has the supervisor published it, and so stopped
	# the workers it started for the earlier values; workers it stopped
	# before they registered never show in the workers view.
	for my $round (1 .. 3)
	{
		$node->safe_psql('postgres',
			$set->(1, 4, 1, 0) . "ALTER SYSTEM SET graphile_worker.concurrency = 2;\n"
			  . "ALTER SYSTEM SET graphile_worker.paused = on;\nSELECT pg_reload_conf();\n");
		poll_is($node, $db, $workers_up, '2:paused',
			"$s: concurrency 1, 4, 1, 0, 2 in a row ($round): 2 job workers, paused", 30);
		poll_is($node, 'postgres', $procs, '1|2', "$s: and no other job worker process ($round)", 30);
		stays_is($node, $db, $workers_up, '2:paused', $round == 3 ? 3 : 1, "$s: and so it stays ($round)");
		$node->safe_psql('postgres', "ALTER SYSTEM RESET graphile_worker.paused;\nSELECT pg_reload_conf();");
		poll_is($node, $db, $workers_up, '2:idle', "$s: resumed ($round)", 30);
	}
	for my $n (4, 1, 0, 2)
	{
		$node->safe_psql('postgres', $set->($n));
		poll_is($node, 'postgres', $procs, "1|$n", "$s: concurrency $n: exactly $n job workers", 30);
		stays_is($node, 'postgres', $procs, "1|$n", 2, "$s: and so it stays (concurrency $n)");
	}
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET graphile_worker.concurrency');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
});

# ---------------------------------------------------------------- i
run_case('i', sub {
	my $s = 'i (memory)';
	sql(q{
CREATE FUNCTION graphile_worker_tasks.i_noop(payload json) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION graphile_worker_tasks.i_big(payload jsonb, job graphile_worker.jobs) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO public.ledger (task, k, job_id, locked_at, n)
    VALUES ('i', (payload->>'k')::int, job.id, job.locked_at, length(payload->>'data'))
$$;
});
	$node->safe_psql('postgres', 'ALTER SYSTEM SET graphile_worker.concurrency = 1');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	poll_is($node, $db, $workers_up, '1:idle', "$s: concurrency 1: 1 idle job worker");
	my $pid = sql($worker_pids);
	sql(q{SELECT count(graphile_worker.add_job('i_noop', '{}')) FROM generate_series(1, 400)});
	poll_is($node, $db, left_of('i_noop'), '0|0', "$s: 400 no-op jobs done (the batches grow)");
	my $hwm = sub {
		my ($kb) = slurp_file("/proc/$pid/status") =~ /^VmHWM:\s+(\d+) kB/m;
		return $kb / 1024;
	};
	my $before = $hwm->();
	sql(q{SELECT count(graphile_worker.add_job('i_big', json_build_object('k', i, 'data', repeat('x', 20000000))))
		FROM generate_series(1, 30) AS i});
	note "$s: stored payload size: "
	  . sql(q{SELECT pg_size_pretty(avg(pg_column_size(payload))) FROM graphile_worker._private_jobs
		WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'i_big')});
	poll_is($node, $db, left_of('i_big'), '0|0', "$s: the 30 jobs with 20 MB payloads completed", 120);
	is(sql(q{SELECT count(*) || '|' || count(DISTINCT k) || '|' || min(n) || '|' || max(n)
		FROM public.ledger WHERE task = 'i'}),
		'30|30|20000000|20000000', "$s: exactly once each, and each handler saw its 20,000,000 bytes");
	my $claims = sql(q{SELECT count(DISTINCT locked_at) FROM public.ledger WHERE task = 'i'});
	ok($claims < 30, "$s: they were claimed in $claims batches (< 30: batches of several)");
	is(sql($worker_pids), $pid, "$s: by the same job worker ($pid)");
	my $peak = $hwm->();
	ok($peak < 400, sprintf("$s: its peak RSS is %.0f MB (< 400 MB; %.0f MB before the 30 jobs)", $peak, $before));
});

is(count_lines(slurp_file($node->logfile), qr/LOG:  .* was terminated by signal/), 0,
	'end: no process was terminated by a signal (no crash)');
$node->stop;
note sprintf('130_exactly_once took %.1f s', time - $t_script);
done_testing();
