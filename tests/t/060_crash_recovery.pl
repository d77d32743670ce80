# 060_crash_recovery.pl: jobs survive crashes, kills and every kind of
# shutdown, and each one completes exactly once.
#
# Setup: 2 job workers (graphile_worker.concurrency = 2), sweep_interval
# 1000 ms, poll_interval 500 ms, restart_after_crash = on (the test
# framework turns it off; the crash recovery under test needs it).  Two
# (payload json, job graphile_worker.jobs) handlers insert the job's id,
# its attempts and last_error as they see them, its run_at and their start
# time into public.done, whose job_id is UNIQUE: a job that ran twice could
# not complete twice (the second run would fail and leave its row).
#   quick  inserts into done (and sleeps 20 ms);
#   long   sleeps (pg_sleep) while public.ctl.hold is true, then inserts.
# Every scenario but 3 runs one long job that is interrupted while it
# sleeps and a batch of 20 quick jobs added right before the interruption
# (some run before it, some are in flight, some wait for after it); in 3
# the crashing job is the interrupted one.  Each scenario then proves
# that every job of the scenario completed exactly once (20 + 1 rows in
# done, none of its jobs left in graphile_worker.jobs, nothing else left
# there but the expected permanently failed job of 3), and that the server
# log since the scenario began has exactly the expected crash lines.
#   1. kill -9 of the job worker running the long job: the server
#      crash-restarts; the long job is released within 5 s of the server
#      accepting connections again, with attempts 1, last_error exactly
#      'worker <its locked_by> died while running this job' (of the form
#      gw-<16 hex>-<hex>-<hex>), run_at = release time + exp(1) s; it runs
#      again no earlier than that run_at and its handler sees attempts 2 and
#      that last_error.  Log: exactly one "terminated by signal 9" and one
#      "reinitializing".
#   2. kill -9 of the database's supervisor: the same crash restart and the
#      same release of the long job (attempts 1, 'died' last_error), which
#      then completes with attempts 2.  Log: one signal 9, one reinit.
#   3. a C handler that segfaults every time (gw_example_crash), one job
#      with max_attempts 2, due 0.5 s after it is added, among 20 quick
#      jobs due one every 0.1 s over 2 s: it ends permanently failed
#      (attempts 2, max_attempts 2, unlocked, row kept) with the 'died'
#      last_error; exactly 2 "terminated by signal 11" and 2 "reinitializing"
#      lines; the quick jobs all complete once; afterwards a new job runs
#      and no further crash follows (and at the end of the script, long
#      after its next backoff would have passed, the whole log still has
#      exactly 2 signal-11 lines).
#   4. pg_ctl stop -m fast while the long job runs: the stop takes < 5 s;
#      after start the long job is claimed again within 3 s by a new worker
#      with attempts 1 and last_error NULL (the interrupted attempt was
#      given back), and completes with its handler seeing attempts 1 and no
#      last_error; the log has no crash line, no 'died while running' and
#      no release by the sweep.
#   5. pg_ctl stop -m smart (no client session open): same as 4.
#   6. pg_ctl stop -m immediate, then start: crash recovery releases the
#      long job within 5 s of the start (attempts 1, 'died' last_error naming
#      the old worker, run_at = release + exp(1) s); its successful run sees
#      attempts 2 and that last_error; no "terminated by signal" line.
#   7. pg_terminate_backend() of the worker running the long job: that
#      worker exits, the supervisor starts a replacement (2 job workers, a
#      new pid); the long job failed (its attempt counts: only a shutdown
#      or a command of ours gives it back), unlocked, with last_error
#      'worker was terminated while running this job' and a backoff
#      run_at, and completes at that run_at with its handler seeing
#      attempts 2 and that last_error; no crash, no release by the sweep.
#   8. pg_ctl stop -m fast while a C handler holds interrupts off (as C
#      code that never checks for interrupts): the job completes before
#      the worker exits (row gone, its write committed once after the
#      restart); no cancel, no release by the sweep, no crash.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use GwTest;

my $t_script = time;
my $node = start_node('crash_recovery', conf => q{
max_worker_processes = 16
restart_after_crash = on
graphile_worker.concurrency = 2
graphile_worker.sweep_interval = 1000
graphile_worker.poll_interval = 500
# the workers start paused, so that they read the handler functions once
# all of them exist
graphile_worker.paused = on
});
my $db = create_db($node, 'crash');

sub sql { return $node->safe_psql($db, $_[0]); }

# Every poll_is and poll_value below gives up after $wait seconds unless it
# says otherwise.
my $wait = 60;

# Waits until the server accepts connections to $db; returns time() then.
sub wait_accepting
{
	my $deadline = time + 60;
	for (;;)
	{
		my $rc = $node->psql($db, 'SELECT 1', stdout => \my $out, stderr => \my $err);
		return time if $rc == 0 && $out eq '1';
		die "the server is down (see " . $node->logfile . ")\n"
		  unless -e $node->data_dir . '/postmaster.pid';
		die "the server does not accept connections: $err\n" if time > $deadline;
		usleep(20_000);
	}
}

# --- Setup -------------------------------------------------------------
sql(q{
CREATE TABLE public.done (
	job_id bigint NOT NULL UNIQUE,
	task text NOT NULL,
	attempts int NOT NULL,
	last_error text,
	run_at timestamptz NOT NULL,
	started_at timestamptz NOT NULL);
CREATE TABLE public.ctl (hold bool NOT NULL);
INSERT INTO public.ctl VALUES (true);

CREATE FUNCTION graphile_worker_tasks.quick(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.done (job_id, task, attempts, last_error, run_at, started_at)
    VALUES (job.id, 'quick', job.attempts, job.last_error, job.run_at, clock_timestamp());
  PERFORM pg_sleep(0.02);
END $$;

-- Sleeps while public.ctl.hold is true (each statement of this volatile
-- function sees what is committed when it starts), 60 s at most.
CREATE FUNCTION graphile_worker_tasks.long(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  WHILE (SELECT hold FROM public.ctl) AND clock_timestamp() < t0 + interval '60 s' LOOP
    PERFORM pg_sleep(0.05);
  END LOOP;
  INSERT INTO public.done (job_id, task, attempts, last_error, run_at, started_at)
    VALUES (job.id, 'long', job.attempts, job.last_error, job.run_at, t0);
END $$;

CREATE FUNCTION graphile_worker_tasks.c_crash(payload json) RETURNS void
	AS 'gw_example_handlers', 'gw_example_crash' LANGUAGE C;
});

my $workers_up = job_workers_sql();
# Unpause only once both workers are up and paused: a worker that is still
# starting when the reload's SIGHUP arrives can lose it (it stays paused).
poll_is($node, $db, $workers_up, '2:paused', 'setup: 2 job workers, paused', $wait);
sql(q{ALTER SYSTEM SET graphile_worker.paused = off; SELECT pg_reload_conf();});
poll_is($node, $db, $workers_up, '2:idle', 'setup: 2 job workers, idle (not paused)',
	$wait);

# Positive control.
my $ctl = sql(q{SELECT id FROM graphile_worker.add_job('quick', '{"control": 1}')});
poll_is($node, $db, "SELECT count(*) FROM public.done WHERE job_id = $ctl", '1',
	'setup: a quick job runs', $wait);

my $died_re = qr/^worker (gw-[0-9a-f]{16}-[0-9a-f]+-[0-9a-f]+) died while running this job$/;
my $crash_line  = qr/terminated by signal/;
my $reinit_line = qr/all server processes terminated; reinitializing/;
my $release_line = qr/graphile_worker released \d+ jobs locked by workers that died/;

# Jobs that may stay in graphile_worker.jobs (the poison job of 3).
my @expected_left = ();

sub add_long
{
	return sql(q{SELECT id FROM graphile_worker.add_job('long', '{}')});
}

# Adds 20 quick jobs in one transaction; returns their ids.
sub add_batch
{
	my ($tag) = @_;
	return split /\n/, sql(qq{
SELECT j.id FROM generate_series(1, 20) AS i,
	LATERAL graphile_worker.add_job('quick', json_build_object('tag', '$tag', 'i', i)) AS j
 ORDER BY j.id});
}

# Waits until job $id is being run; returns the pid and worker id running it
# (graphile_worker.workers) after checking that the job's locked_by is that
# worker id.
sub running
{
	my ($s, $id) = @_;
	my ($out) = poll_value($node, $db,
		qq{SELECT count(*) FROM graphile_worker.workers
		    WHERE job_id = $id AND state = 'busy'}, '1', $wait);
	is($out, '1', "$s: the long job $id is running");
	my ($pid, $wid) = split /\|/, sql(
		qq{SELECT pid || '|' || worker_id FROM graphile_worker.workers WHERE job_id = $id});
	is(sql(qq{SELECT locked_by FROM graphile_worker.jobs WHERE id = $id}),
		$wid, "$s: its locked_by is the worker id of pid $pid");
	return ($pid, $wid);
}

# Every job of @ids completed exactly once; nothing else left in the queue.
sub all_done_once
{
	my ($s, @ids) = @_;
	my $n = scalar @ids;
	my $list = join ',', @ids;
	poll_is($node, $db, qq{SELECT count(*) FROM public.done WHERE job_id IN ($list)},
		"$n", "$s: all $n jobs completed (one done row each)", $wait);
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.jobs WHERE id IN ($list)},
		'0', "$s: none of them is left in graphile_worker.jobs", $wait);
	is( sql(q{SELECT count(*) || '|' || count(DISTINCT job_id) FROM public.done}),
		do { my $c = sql('SELECT count(*) FROM public.done'); "$c|$c" },
		"$s: no job completed twice");
	is(sql(q{SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM graphile_worker.jobs}),
		join(',', @expected_left),
		"$s: graphile_worker.jobs holds nothing else"
		  . (@expected_left ? " than the failed job @expected_left" : ''));
	return;
}

# The long job's release by crash recovery: within 5 s of $t_accept,
# attempts 1, last_error naming $wid, run_at = release time + exp(1) s
# (the release happened between $t_before, server time before the
# interruption, and now).  Returns the new run_at.
sub check_released
{
	my ($s, $id, $wid, $t_accept, $t_before) = @_;
	# One query reads the released row (the job is claimed again at its
	# run_at, 2.7 s later, so the poll must see it unlocked in time).
	my ($out) = poll_value($node, $db,
		qq{SELECT CASE WHEN locked_by IS NULL THEN 'released' ELSE 'locked' END
		       || '|' || attempts
		       || '|' || (run_at - exp(1) * interval '1 s' BETWEEN '$t_before' AND now())::text
		       || '|' || run_at
		       || '|' || coalesce(last_error, '<null>')
		     FROM graphile_worker.jobs WHERE id = $id},
		qr/^released\|/, 30);
	my $after = time - $t_accept;
	my ($state, $attempts, $backoff_ok, $run_at, $err) = split /\|/, $out, 5;
	is($state, 'released', "$s: the long job is released by crash recovery");
	ok($after < 5,
		sprintf("$s: released %.2f s after the server accepted connections (< 5 s)", $after));
	is($attempts, '1', "$s: attempts 1 (the interrupted attempt counts)");
	like($err, $died_re, "$s: last_error matches 'worker gw-<16 hex>-<hex>-<hex> died while running this job'");
	is($err, "worker $wid died while running this job",
		"$s: last_error names exactly the worker that held the lock");
	is($backoff_ok, 'true', "$s: run_at = release time + exp(1) s (normal backoff)");
	return $run_at;
}

# After hold is lifted the long job completes; checks what its handler saw.
sub check_long_done
{
	my ($s, $id, $attempts, $last_error, $run_at) = @_;
	sql('UPDATE public.ctl SET hold = false');
	poll_is($node, $db, qq{SELECT count(*) FROM public.done WHERE job_id = $id}, '1',
		"$s: the long job runs again and completes", $wait);
	is( sql(qq{SELECT attempts || '|' || coalesce(last_error, '<null>')
		     FROM public.done WHERE job_id = $id}),
		"$attempts|" . ($last_error // '<null>'),
		"$s: its successful run saw attempts $attempts and last_error "
		  . ($last_error // 'NULL'));
	if (defined $run_at)
	{
		is( sql(qq{SELECT run_at = '$run_at' AND started_at >= '$run_at'
			     FROM public.done WHERE job_id = $id}),
			't', "$s: and it ran at its backoff run_at ($run_at), not earlier");
		note "$s: the retry started "
		  . sql(qq{SELECT round(extract(epoch FROM started_at - run_at) * 1000)
			     FROM public.done WHERE job_id = $id})
		  . ' ms after its run_at';
	}
	return;
}

# Kills pid with SIGKILL and waits for the crash restart; returns the time
# the server accepts connections again.
sub kill9_and_wait
{
	my ($s, $pid, $offset) = @_;
	ok(kill('KILL', $pid), "$s: kill -9 $pid");
	ok(wait_log($node, $reinit_line, $offset), "$s: the postmaster reinitializes (crash restart)");
	return wait_accepting();
}

# --- 1. kill -9 of a job worker mid-job ----------------------------------
{
	my $s = '1 (kill -9 job worker)';
	my $off = -s $node->logfile;
	sql('UPDATE public.ctl SET hold = true');
	my $long = add_long();
	my ($pid, $wid) = running($s, $long);
	my @batch = add_batch('s1');
	my $t_before = sql('SELECT clock_timestamp()');
	my $t_accept = kill9_and_wait($s, $pid, $off);
	my $run_at = check_released($s, $long, $wid, $t_accept, $t_before);
	check_long_done($s, $long, 2, "worker $wid died while running this job", $run_at);
	all_done_once($s, @batch, $long);
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $crash_line), 1, "$s: log: exactly one 'terminated by signal' line");
	like($log, qr/\(PID $pid\) was terminated by signal 9/, "$s: log: it is pid $pid, signal 9");
	is(count_lines($log, $reinit_line), 1, "$s: log: exactly one crash restart");
}

# --- 2. kill -9 of the supervisor ----------------------------------------
{
	my $s = '2 (kill -9 supervisor)';
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers before", $wait);
	my $off = -s $node->logfile;
	sql('UPDATE public.ctl SET hold = true');
	my $long = add_long();
	my (undef, $wid) = running($s, $long);
	my $sup = sql(q{SELECT pid FROM graphile_worker.workers
		WHERE kind = 'supervisor' AND datname = current_database()});
	like($sup, qr/^\d+$/, "$s: the supervisor's pid");
	my @batch = add_batch('s2');
	my $t_before = sql('SELECT clock_timestamp()');
	my $t_accept = kill9_and_wait($s, $sup, $off);
	my $run_at = check_released($s, $long, $wid, $t_accept, $t_before);
	check_long_done($s, $long, 2, "worker $wid died while running this job", $run_at);
	all_done_once($s, @batch, $long);
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $crash_line), 1, "$s: log: exactly one 'terminated by signal' line");
	like($log, qr/"graphile_worker supervisor" \(PID $sup\) was terminated by signal 9/,
		"$s: log: it is the supervisor, signal 9");
	is(count_lines($log, $reinit_line), 1, "$s: log: exactly one crash restart");
}

# --- 3. a C handler that crashes the backend every time ---------------------
{
	my $s = '3 (poison C handler)';
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers before", $wait);
	my $off = -s $node->logfile;
	# The poison job is due 0.5 s after the commit (so that its crash does
	# not hit this client's own session), the quick jobs one every 0.1 s
	# over 2 s: some run before the first crash, some around the crashes.
	my ($poison, @batch) = split /\n/, sql(q{
BEGIN;
SELECT id FROM graphile_worker.add_job('c_crash', '{}',
	run_at => now() + interval '0.5 s', max_attempts => 2);
SELECT j.id FROM generate_series(1, 20) AS i,
	LATERAL graphile_worker.add_job('quick', json_build_object('tag', 's3', 'i', i),
		run_at => now() + i * interval '0.1 s') AS j
 ORDER BY j.id;
COMMIT;});
	poll_is($node, $db,
		qq{SELECT attempts || '|' || max_attempts || '|' || (locked_by IS NULL)::text
		     FROM graphile_worker.jobs WHERE id = $poison},
		'2|2|true', "$s: the poison job ends permanently failed: attempts 2 = max_attempts, unlocked",
		$wait);
	like(sql(qq{SELECT last_error FROM graphile_worker.jobs WHERE id = $poison}),
		$died_re, "$s: its last_error says its worker died");
	push @expected_left, $poison;
	all_done_once($s, @batch);
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, qr/terminated by signal 11/), 2,
		"$s: log: exactly 2 'terminated by signal 11' lines (max_attempts)");
	is(count_lines($log, $crash_line), 2, "$s: log: no other crash");
	is(count_lines($log, $reinit_line), 2, "$s: log: exactly 2 crash restarts");
	# No more crashes: a positive control runs, and a while later the log has
	# nothing new.
	my $ctl2 = sql(q{SELECT id FROM graphile_worker.add_job('quick', '{"control": 3}')});
	poll_is($node, $db, "SELECT count(*) FROM public.done WHERE job_id = $ctl2", '1',
		"$s: afterwards a new job runs", $wait);
	usleep(1_500_000);
	$log = slurp_file($node->logfile, $off);
	is(count_lines($log, $crash_line), 2, "$s: 1.5 s later still only 2 crashes");
	is(sql(qq{SELECT attempts FROM graphile_worker.jobs WHERE id = $poison}),
		'2', "$s: and the poison job was not claimed again");
}

# --- 4, 5. graceful stops (fast, smart) -------------------------------------
for my $mode ('fast', 'smart')
{
	my $s = ($mode eq 'fast' ? '4' : '5') . " (pg_ctl stop -m $mode)";
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers before", $wait);
	my $off = -s $node->logfile;
	sql('UPDATE public.ctl SET hold = true');
	my $long = add_long();
	my (undef, $wid) = running($s, $long);
	my @batch = add_batch("s_$mode");
	my $t0 = time;
	$node->stop($mode);
	my $took = time - $t0;
	ok($took < 5, sprintf("$s: the stop took %.2f s (< 5 s)", $took));
	$node->start;
	my $t_start = time;
	my ($out) = poll_value($node, $db,
		qq{SELECT attempts || '|' || coalesce(last_error, '<null>') || '|'
		       || (locked_by IS NOT NULL AND locked_by <> '$wid')::text
		     FROM graphile_worker.jobs WHERE id = $long},
		'1|<null>|true', 10);
	my $after = time - $t_start;
	is($out, '1|<null>|true',
		"$s: after start a new worker runs the long job with attempts 1 and no last_error "
		  . "(the interrupted attempt was given back)");
	ok($after < 3, sprintf("$s: promptly: %.2f s after start (< 3 s)", $after));
	check_long_done($s, $long, 1, undef, undef);
	all_done_once($s, @batch, $long);
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $crash_line), 0, "$s: log: no 'terminated by signal' line");
	unlike($log, qr/died while running/, "$s: log: no 'died while running'");
	unlike($log, $release_line, "$s: log: the sweep released nothing");
}

# --- 6. pg_ctl stop -m immediate --------------------------------------------
{
	my $s = '6 (pg_ctl stop -m immediate)';
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers before", $wait);
	my $off = -s $node->logfile;
	sql('UPDATE public.ctl SET hold = true');
	my $long = add_long();
	my (undef, $wid) = running($s, $long);
	my @batch = add_batch('s6');
	my $t_before = sql('SELECT clock_timestamp()');
	$node->stop('immediate');
	$node->start;
	my $t_accept = time;
	my $run_at = check_released($s, $long, $wid, $t_accept, $t_before);
	check_long_done($s, $long, 2, "worker $wid died while running this job", $run_at);
	all_done_once($s, @batch, $long);
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $crash_line), 0, "$s: log: no 'terminated by signal' line");
	like($log, $release_line, "$s: log: the sweep released the jobs of the dead workers");
}

# --- 7. pg_terminate_backend ------------------------------------------------
{
	my $s = '7 (pg_terminate_backend)';
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers before", $wait);
	my $off = -s $node->logfile;
	sql('UPDATE public.ctl SET hold = true');
	my $long = add_long();
	my ($pid, $wid) = running($s, $long);
	my @batch = add_batch('s7');
	is(sql("SELECT pg_terminate_backend($pid)"), 't', "$s: pg_terminate_backend($pid)");
	poll_is($node, $db,
		qq{SELECT count(*) || '|' || count(*) FILTER (WHERE pid = $pid)
		     FROM pg_stat_activity WHERE backend_type = 'graphile_worker job worker'
		      AND datname = current_database()},
		'2|0', "$s: the worker exits and the supervisor starts a replacement (2 job workers, new pid)",
		$wait);
	poll_is($node, $db,
		qq{SELECT attempts = 1 AND locked_by IS NULL
		       AND last_error = 'worker was terminated while running this job'
		       AND run_at > now()
		     FROM graphile_worker.jobs WHERE id = $long},
		't', "$s: the long job failed: attempt counted, unlocked, last_error says the worker was terminated, retry later",
		$wait);
	my $run_at = sql(qq{SELECT run_at FROM graphile_worker.jobs WHERE id = $long});
	check_long_done($s, $long, 2, 'worker was terminated while running this job', $run_at);
	all_done_once($s, @batch, $long);
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $crash_line), 0, "$s: log: no 'terminated by signal' line");
	unlike($log, qr/died while running/, "$s: log: no 'died while running'");
	unlike($log, $release_line, "$s: log: the sweep released nothing");
}

# --- 8. fast stop while a handler cannot be interrupted ---------------------
# The SIGTERM comes while the handler holds interrupts off; it returns
# normally afterwards.  Its job completes (its write committed), the
# cancel meant for it does not cancel the completion, and the worker exits.
{
	my $s = '8 (pg_ctl stop -m fast, handler holding interrupts)';
	poll_is($node, $db, $workers_up, '2:idle', "$s: 2 idle job workers before", $wait);
	sql(q{
CREATE TABLE IF NOT EXISTS public.c_handler_log (payload jsonb);
CREATE OR REPLACE FUNCTION graphile_worker_tasks.c_hold(payload jsonb) RETURNS void
	AS 'gw_example_handlers', 'gw_example_hold' LANGUAGE C STRICT;});
	my $off = -s $node->logfile;
	my $hold = sql(q{SELECT id FROM graphile_worker.add_job('c_hold', '{"ms": 1500, "tag": "s8"}')});
	my ($out) = poll_value($node, $db,
		qq{SELECT count(*) FROM graphile_worker.workers WHERE job_id = $hold AND state = 'busy'}, '1',
		$wait);
	is($out, '1', "$s: the job $hold is running");
	$node->stop('fast');
	$node->start;
	is(sql(qq{SELECT count(*) FROM graphile_worker.jobs WHERE id = $hold}), '0',
		"$s: after the restart the job is gone: it completed before the worker exited");
	is(sql(q{SELECT count(*) FROM public.c_handler_log WHERE payload->>'tag' = 's8'}), '1',
		"$s: its handler's write was committed with it, once");
	my $log = slurp_file($node->logfile, $off);
	is(count_lines($log, $crash_line), 0, "$s: log: no 'terminated by signal' line");
	unlike($log, $release_line, "$s: log: the sweep released nothing");
	unlike($log, qr/canceling statement due to user request/, "$s: log: nothing was cancelled");
}

# --- The whole run ------------------------------------------------------------
{
	my $log = slurp_file($node->logfile);
	is(count_lines($log, qr/terminated by signal 11/), 2,
		'end: the whole log has exactly 2 signal-11 crashes (no crash loop of the poison job)');
	is(count_lines($log, qr/terminated by signal 9/), 2,
		'end: and exactly the 2 kill -9 of scenarios 1 and 2');
	is(count_lines($log, $reinit_line), 4, 'end: 4 crash restarts in all');
	is(sql(qq{SELECT attempts FROM graphile_worker.jobs WHERE id = $expected_left[0]}),
		'2', 'end: the poison job is still failed with 2 attempts');
}

$node->stop;
note sprintf('060_crash_recovery took %.1f s', time - $t_script);
done_testing();
