# 070_standby_and_lifecycle.pl: hot standby, promotion, and the commands
# that need a database to themselves while graphile_worker runs in it.
#
# Proves that, with graphile_worker in shared_preload_libraries,
#   a) on a hot standby (streaming from a primary whose workers are
#      paused) no graphile_worker process starts and the queued jobs stay
#      untouched (attempts 0, unlocked): the postmaster never even starts
#      the launcher, and nothing is logged by graphile_worker;
#   b) after SELECT pg_promote() (no restart: same postmaster pid and start
#      time) the launcher, a supervisor and the job workers start and every
#      queued job runs exactly once within 10 s;
#   c) DROP DATABASE (without FORCE) of a database whose worker is running
#      a long job succeeds in less than 5 s (PostgreSQL alone would wait
#      5 s for the other sessions, then fail), and its processes are gone;
#   d) ALTER DATABASE ... RENAME while a job runs succeeds in less than 5 s;
#      the running job is cancelled and given back (its attempt not
#      counted), the workers come back under the new name and run it again,
#      exactly once to completion, with attempts = 1;
#   e) DROP EXTENSION graphile_worker while a job runs succeeds in less than
#      5 s and stops that database's supervisor and job workers; nothing is
#      restarted there (at most one probe, none in the last 1.5 s);
#   f) CREATE EXTENSION again starts them and a job runs exactly once;
#   g) none of this leaves a crash loop: no process of the server was
#      terminated by a signal, and no supervisor exited with exit code 1
#      more than once (the SIGTERM of c, d or e).
# Every job's handler inserts its job id into a table with a UNIQUE
# constraint; the assertions compare the exact set of ids.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use GwTest;

my $primary = start_node('primary', init => { allows_streaming => 1 }, conf => q{
max_worker_processes = 32
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 500
graphile_worker.sweep_interval = 1000
# the postmaster logs each background worker it registers, starts and reaps
log_min_messages = debug1
});

# Runs $sql in $db and returns (psql exit code, seconds it took, stderr).
sub timed_psql
{
	my ($node, $db, $sql) = @_;
	my ($out, $err) = ('', '');
	my $t0 = time;
	my $rc = $node->psql($db, $sql, stdout => \$out, stderr => \$err);
	return ($rc, time - $t0, $err);
}

# The pids of database $dbname's supervisor and job workers, as
# (supervisor pid, [job worker pids]).
sub pids_of
{
	my ($node, $dbname) = @_;
	my @rows = split /\n/, $node->safe_psql(
		'postgres', qq{
SELECT backend_type, pid FROM pg_stat_activity
 WHERE datname = '$dbname' AND backend_type LIKE 'graphile_worker %' ORDER BY pid});
	my ($sup, @workers);
	for (@rows)
	{
		my ($type, $pid) = split /\|/;
		if ($type eq 'graphile_worker supervisor') { $sup = $pid; }
		else { push @workers, $pid; }
	}
	return ($sup, \@workers);
}

# What the postmaster logged after $offset about exiting processes:
# ({pid => exit code} of graphile_worker processes, lines saying a process
# was terminated by a signal).
sub exits_since
{
	my ($node, $offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	my %code;
	$code{$1} = $2 while $log =~
	  /background worker "graphile_worker [a-z ]+" \(PID (\d+)\) exited with exit code (\d+)/g;
	my @signalled = grep { /terminated by signal/ } split /\n/, $log;
	return (\%code, \@signalled);
}

# "pid:code" of the graphile_worker processes that exited with a non-zero
# code, sorted, or "pid:-" for the expected ones that did not exit.
sub nonzero_exits
{
	my ($code) = @_;
	return join(',', map { "$_:$code->{$_}" }
		  sort { $a <=> $b } grep { $code->{$_} != 0 } keys %$code);
}

my $all_procs = q{
SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'graphile_worker %'};

# The task handlers of every database (in graphile_worker_tasks, made by
# create_db): each run that completes inserts its job id (and the attempt
# number) into public.done, which rejects a second row for the same job.
my $handlers = q{
CREATE TABLE public.done (job_id bigint NOT NULL UNIQUE, attempts int NOT NULL,
	at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE SEQUENCE public.starts;
CREATE FUNCTION graphile_worker_tasks.note(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE sql AS
$$ INSERT INTO public.done (job_id, attempts) VALUES (job.id, job.attempts) $$;
-- The first run in this database sleeps 60 s (until cancelled); later runs
-- complete at once.
CREATE FUNCTION graphile_worker_tasks.hold(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF pg_catalog.nextval('public.starts') = 1 THEN
    PERFORM pg_catalog.pg_sleep(60);
  END IF;
  INSERT INTO public.done (job_id, attempts) VALUES (job.id, job.attempts);
END $$;
};

# ---------------------------------------------------------------- a)
create_db($primary, 'app');
$primary->safe_psql('app', $handlers);
my $control = $primary->safe_psql('app',
	q{SELECT id FROM graphile_worker.add_job('note')});
poll_is($primary, 'app', q{SELECT string_agg(job_id::text, ',') FROM public.done},
	$control, 'a: positive control: the primary runs a job');

$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
report_deaths_on_die($standby);
$standby->start;

# The primary stops claiming, then queues 5 jobs that reach the standby.
$primary->append_conf('postgresql.conf', 'graphile_worker.paused = on');
$primary->reload;
poll_is(
	$primary, 'app', q{SELECT string_agg(state, ',') FROM graphile_worker.workers
	WHERE kind = 'job worker'},
	'paused,paused', 'a: the primary is paused (both job workers say paused)');
my $queued = $primary->safe_psql(
	'app', q{
SELECT string_agg(id::text, ',' ORDER BY id)
  FROM graphile_worker.add_jobs(array_fill(
	ROW('note', NULL, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec,
	ARRAY[5]))});
my @queued = split /,/, $queued;
is(scalar @queued, 5, 'a: 5 jobs queued on the primary');
$primary->wait_for_catchup($standby);

is($standby->safe_psql('app', 'SELECT pg_is_in_recovery()'), 't', 'a: the standby is in recovery');
my $queued_state = q{
SELECT string_agg(id || ':' || attempts || ':' || (locked_by IS NULL) || ':'
	|| (last_error IS NULL), ',' ORDER BY id)
  FROM graphile_worker.jobs};
my $untouched = join(',', map { "$_:0:true:true" } @queued);
is($standby->safe_psql('app', $queued_state), $untouched,
	'a: the standby has the 5 queued jobs (attempts 0, unlocked, no error)');
# Positive control for "no process": the primary has its launcher,
# supervisor and 2 job workers.
is($primary->safe_psql('app', $all_procs), '4',
	'a: positive control: the primary runs 4 graphile_worker processes');
# The launcher would start within milliseconds of the standby's start;
# 2 s later there is still nothing.
usleep(2_000_000);
is($standby->safe_psql('app', $all_procs), '0',
	'a: the standby runs no graphile_worker process');
is($standby->safe_psql('app', 'SELECT count(*) FROM graphile_worker.workers'),
	'0', 'a: and graphile_worker.workers on the standby is empty');
is($standby->safe_psql('app', $queued_state), $untouched,
	'a: 2 s later the jobs on the standby are still untouched');
is($standby->safe_psql('app', 'SELECT count(*) FROM public.done'),
	'1', 'a: the standby has only the control job done');
my $standby_log = slurp_file($standby->logfile);
unlike(
	$standby_log,
	qr/starting background worker process "graphile_worker/,
	'a: the standby postmaster never started a graphile_worker process');
my @gw_lines = grep { /graphile_worker/ && /(WARNING|ERROR|FATAL|PANIC):/ }
  split /\n/, $standby_log;
is(join("\n", @gw_lines), '', 'a: the standby log has no graphile_worker warning or error');

# ---------------------------------------------------------------- b)
# Failover: the primary goes away, the standby is promoted.
$primary->stop('fast');
my $node = $standby;
my $before = $node->safe_psql('postgres',
	q{SELECT pg_postmaster_start_time() || '|' || (SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'checkpointer')});
my $promote_offset = -s $node->logfile;
is($node->safe_psql('postgres', 'SELECT pg_promote()'), 't', 'b: pg_promote() returns true');
my $t_promote = time;
my $done_ids = q{SELECT string_agg(job_id::text, ',' ORDER BY job_id) FROM public.done};
poll_is($node, 'app', $done_ids, join(',', $control, @queued),
	'b: after promotion every queued job ran exactly once (ids in public.done)');
my $took = time - $t_promote;
ok($took < 10, sprintf('b: all 5 jobs done %.2f s after pg_promote() (< 10 s)', $took));
is($node->safe_psql('app', 'SELECT count(*) FROM graphile_worker.jobs'),
	'0', 'b: no job is left (none failed)');
is( $node->safe_psql(
		'app', q{SELECT string_agg(attempts::text, ',') FROM public.done
	WHERE job_id <> } . $control),
	'1,1,1,1,1',
	'b: each ran at its first attempt');
is( $node->safe_psql(
		'postgres',
		q{SELECT pg_postmaster_start_time() || '|' || (SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'checkpointer')}),
	$before,
	'b: without a restart (same postmaster start time and checkpointer pid)');
poll_is($node, 'app', processes_sql('app'), '1|2',
	'b: the promoted server runs 1 supervisor and 2 job workers for app');
like(
	slurp_file($node->logfile, $promote_offset),
	qr/starting background worker process "graphile_worker launcher"/,
	'b: the postmaster started the launcher after promotion');

# ---------------------------------------------------------------- c)
create_db($node, 'dropme');
$node->safe_psql('dropme', $handlers);
my $dropme_oid =
  $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'dropme'});
my $hold = $node->safe_psql('dropme', q{SELECT id FROM graphile_worker.add_job('hold')});
my $busy = qq{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'graphile_worker job worker' AND state = 'active'
   AND query = 'graphile_worker job $hold: hold'};
poll_is($node, 'dropme', $busy, '1', "c: a job worker of dropme runs job $hold (hold, 60 s)");
is($node->safe_psql('postgres', processes_sql('dropme')), '1|2',
	'c: dropme has 1 supervisor and 2 job workers');
my ($sup_c, $w_c) = pids_of($node, 'dropme');
my $offset_c = -s $node->logfile;
my ($rc, $secs, $err) = timed_psql($node, 'postgres', 'DROP DATABASE dropme');
is($rc, 0, 'c: DROP DATABASE dropme (no FORCE) succeeds') or diag $err;
ok($secs < 5, sprintf('c: in %.3f s (< 5 s)', $secs));
poll_is($node, 'postgres',
	qq{SELECT count(*) FROM pg_stat_activity WHERE datid = $dropme_oid},
	'0', "c: no process is left in dropme's database oid");
is($node->safe_psql('app', qq{SELECT count(*) FROM graphile_worker.workers WHERE datid = $dropme_oid}),
	'0', 'c: graphile_worker.workers lists nothing for it');
my ($code, $signalled) = exits_since($node, $offset_c);
is( join(',', map { "$_:" . ($code->{$_} // 'none') } $sup_c, @$w_c),
	"$sup_c:1,$w_c->[0]:0,$w_c->[1]:0",
	'c: its supervisor exited once with code 1 (SIGTERM), both job workers with code 0');
is(nonzero_exits($code), "$sup_c:1",
	'c: no other graphile_worker process exited with a non-zero code');
is(join("\n", @$signalled), '', 'c: no process was terminated by a signal');

# ---------------------------------------------------------------- d)
create_db($node, 'ren');
$node->safe_psql('ren', $handlers);
my $ren_job = $node->safe_psql('ren', q{SELECT id FROM graphile_worker.add_job('hold')});
$busy = qq{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'graphile_worker job worker' AND state = 'active'
   AND query = 'graphile_worker job $ren_job: hold'};
poll_is($node, 'ren', $busy, '1', "d: a job worker of ren runs job $ren_job (hold, 60 s)");
my ($sup_d, $w_d) = pids_of($node, 'ren');
my $offset_d = -s $node->logfile;
($rc, $secs, $err) = timed_psql($node, 'postgres', 'ALTER DATABASE ren RENAME TO renamed');
is($rc, 0, 'd: ALTER DATABASE ren RENAME TO renamed succeeds while the job runs') or diag $err;
ok($secs < 5, sprintf('d: in %.3f s (< 5 s)', $secs));
poll_is($node, 'postgres', processes_sql('renamed'), '1|2',
	'd: renamed gets its supervisor and 2 job workers back');
poll_is($node, 'renamed', q{SELECT string_agg(job_id || ':' || attempts, ',') FROM public.done},
	"$ren_job:1",
	'd: the interrupted job ran again to completion exactly once, at attempt 1 (the cancelled attempt was given back)'
);
is( $node->safe_psql(
		'renamed', q{SELECT last_value || '|' || (SELECT count(*) FROM graphile_worker.jobs)
	  FROM public.starts}),
	'2|0',
	'd: the handler started twice (cancelled, then completed); no job is left');
is($node->safe_psql('postgres', processes_sql('ren')), '0|0', 'd: nothing runs under the old name');
($code, $signalled) = exits_since($node, $offset_d);
is( join(',', map { "$_:" . ($code->{$_} // 'none') } $sup_d, @$w_d),
	"$sup_d:1,$w_d->[0]:0,$w_d->[1]:0",
	'd: the supervisor exited once with code 1 (SIGTERM), both job workers with code 0');
is(nonzero_exits($code), "$sup_d:1",
	'd: no other graphile_worker process exited with a non-zero code');
is(join("\n", @$signalled), '', 'd: no process was terminated by a signal');
my $d_log = slurp_file($node->logfile, $offset_d);
my $d_starts = () = $d_log =~
  /starting background worker process "graphile_worker supervisor for database renamed"/g;
is($d_starts, 1, "d: renamed's supervisor was started exactly once");
unlike($d_log, qr/starting background worker process "graphile_worker supervisor for database ren"/,
	'd: no supervisor was started for ren during or after the rename');

# ---------------------------------------------------------------- e)
create_db($node, 'ext');
# only json handlers here: nothing else depends on the extension
$node->safe_psql(
	'ext', q{
CREATE TABLE public.log (n int);
CREATE FUNCTION graphile_worker_tasks.sleep(payload json) RETURNS void
	LANGUAGE sql AS $$ SELECT pg_catalog.pg_sleep(60); INSERT INTO public.log VALUES (1) $$;
});
my $sleep_job = $node->safe_psql('ext', q{SELECT id FROM graphile_worker.add_job('sleep')});
$busy = qq{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'graphile_worker job worker' AND state = 'active'
   AND query = 'graphile_worker job $sleep_job: sleep'};
poll_is($node, 'ext', $busy, '1', "e: a job worker of ext runs job $sleep_job (sleep, 60 s)");
my ($sup_e, $w_e) = pids_of($node, 'ext');
my $offset_e = -s $node->logfile;
($rc, $secs, $err) = timed_psql($node, 'ext', 'DROP EXTENSION graphile_worker');
is($rc, 0, 'e: DROP EXTENSION graphile_worker succeeds while the job runs') or diag $err;
ok($secs < 5, sprintf('e: in %.3f s (< 5 s)', $secs));
poll_is($node, 'postgres', processes_sql('ext'), '0|0',
	"e: ext's supervisor and job workers exit");
# No restart loop: through two launcher scans (reloads) and 3 s, longer
# than the launcher's first back-offs (1 s, 2 s), at most one probe.
$node->reload;
usleep(1_500_000);
my $probe_offset = -s $node->logfile;
$node->reload;
usleep(1_500_000);
is($node->safe_psql('postgres', processes_sql('ext')),
	'0|0', 'e: 3 s and two reloads later, ext still has no process');
my $ext_supervisor =
  qr/starting background worker process "graphile_worker supervisor for database ext"/;
my $starts = () = slurp_file($node->logfile, $offset_e) =~ /$ext_supervisor/g;
ok($starts <= 1, "e: ext's supervisor was started at most once after DROP EXTENSION: $starts");
unlike(slurp_file($node->logfile, $probe_offset),
	$ext_supervisor, 'e: and not at all in the last 1.5 s');
is($node->safe_psql('ext', 'SELECT count(*) FROM public.log'), '0',
	'e: the cancelled handler wrote nothing');
($code, $signalled) = exits_since($node, $offset_e);
is($code->{$sup_e} // 'none', '1', "e: ext's supervisor exited once with code 1 (SIGTERM)");
my %ext_worker = map { $_ => 1 } @$w_e;
note "e: ext's job workers exited with codes "
  . join(',', map { "$_:" . ($code->{$_} // 'none') } @$w_e);
is(nonzero_exits({ map { $_ => $code->{$_} } grep { !$ext_worker{$_} } keys %$code }),
	"$sup_e:1", 'e: no other supervisor or the launcher exited with a non-zero code');
is(join("\n", @$signalled), '', 'e: no process was terminated by a signal');

# ---------------------------------------------------------------- f)
$node->safe_psql('ext', 'CREATE EXTENSION graphile_worker');
poll_is($node, 'postgres', processes_sql('ext'), '1|2',
	'f: CREATE EXTENSION again starts 1 supervisor and 2 job workers');
$node->safe_psql(
	'ext', q{
CREATE TABLE public.done (job_id bigint NOT NULL UNIQUE);
CREATE FUNCTION graphile_worker_tasks.note(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE sql AS $$ INSERT INTO public.done VALUES (job.id) $$;
});
my $ext_job = $node->safe_psql('ext', q{SELECT id FROM graphile_worker.add_job('note')});
poll_is($node, 'ext',
	q{SELECT string_agg(job_id::text, ',') || '|' || (SELECT count(*) FROM graphile_worker.jobs)
	  FROM public.done},
	"$ext_job|0", 'f: a new job runs exactly once');

# ---------------------------------------------------------------- g)
# app kept running all along.
my $app_job = $node->safe_psql('app', q{SELECT id FROM graphile_worker.add_job('note')});
poll_is($node, 'app', qq{SELECT count(*) FROM public.done WHERE job_id = $app_job},
	'1', 'g: app still runs jobs');
is($node->safe_psql('postgres', processes_sql('app')), '1|2',
	'g: app kept 1 supervisor and 2 job workers');
my $log = slurp_file($node->logfile);
my @signalled = grep { /terminated by signal/ } split /\n/, $log;
is(join("\n", @signalled), '', 'g: no process of the promoted server was ever terminated by a signal');
unlike(
	slurp_file($node->logfile, $offset_c),
	qr/starting background worker process "graphile_worker supervisor for database dropme"/,
	'g: no supervisor was started for dropme since DROP DATABASE');
my $launcher_starts = () = slurp_file($node->logfile, $promote_offset) =~
  /starting background worker process "graphile_worker launcher"/g;
is($launcher_starts, 1, 'g: the launcher was started exactly once, at promotion');
unlike(slurp_file($node->logfile, $promote_offset),
	qr/background worker "graphile_worker launcher" \(PID \d+\) exited/,
	'g: the launcher started at promotion never exited');

$node->stop;
done_testing();
