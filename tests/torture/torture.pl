# torture.pl: a seeded randomized test that hunts for lost, duplicated
# and stuck jobs, run by `make torture` (TORTURE_SECONDS, default 300) and
# by `make test` as the suite "torture" (60 s).  It is a black-box test: it
# uses only the SQL API, the settings, pg_stat_activity and the server log.
#
# Setup.  A throwaway cluster (restart_after_crash = on, sweep_interval
# 500 ms, poll_interval 200 ms, 3 job workers) and a database with the
# tables of schema.sql: a ledger of the jobs the test added, each with a
# token in its payload and what is expected of it, and an effects table
# without any unique constraint where every handler writes (token, job id,
# attempt, handler, ...) in its job's transaction.  Twelve handlers, one
# per language (SQL, PL/pgSQL, C: gw_example_effect) and signature
# ((payload json|jsonb [, job graphile_worker.jobs])), owned in turn by the
# roles torture_a and torture_b and by the superuser; one per language has
# graphile_worker.job_timeout = '200ms' (ALTER FUNCTION ... SET).
#
# Jobs, added all along by add_job and add_jobs (some with a future run_at,
# a named queue, q3 of which has a concurrency of 2, a priority), behave as
# their payload says:
#   ok      write, succeed (some sleep 20-170 ms)
#   error   write, then raise with DETAIL and HINT (max_attempts 2-3): must
#           end permanently failed with no effect
#   flaky   (handlers with the job argument) fail while attempts <= 1 or 2,
#           then succeed: one effect, from an attempt after those
#   catch   (PL/pgSQL) write inside a BEGIN/EXCEPTION block, raise, catch,
#           succeed: the inner write must be gone
#   fk      break a DEFERRABLE INITIALLY DEFERRED foreign key: must fail
#           alone, without taking the other jobs of its batch down
#   slow    (timeout handlers) sleep 1 s: must time out and fail
#   child   add a child job whose token is the parent's + ".c" (the parent
#           may also be flaky or failing): the child exists exactly once
#           iff the parent succeeded
#   many    write 100-3000 rows (a quarter of them then fail)
#   keyed   job_key from a pool of 6, mode replace, preserve_run_at or
#           unsafe_dedupe: a payload replaced in place or deduplicated
#           before it ran must never run; one detached while running at
#           most once; never two effects for a token
#
# Chaos, at seeded random moments, each kind in turn from a shuffled deck:
# kill -9 of a job worker, of the supervisor, of the launcher (then the
# server restarts itself); pg_ctl stop -m fast, smart, immediate, then
# start; pg_terminate_backend of a job worker, of the supervisor, of the
# launcher; reloads of graphile_worker.concurrency (0-4, also in bursts of
# reloads 0-20 ms apart, up and down) and of graphile_worker.paused (on for
# 0.5-3 s).  Sampled about 4 times a second: never more than one
# supervisor for the database, and never more job workers than
# graphile_worker.concurrency once 8 s passed since it changed (a stopped
# worker may finish its batch), nor more idle ones once 2 s passed (the
# next chaos waits 9 s after a reload of concurrency, 7 s after the
# launcher was terminated, for what they bring about to show).
#
# Quiescence: normal settings again, jobs waiting for a retry made due
# (reschedule_jobs, repeatedly) until the queue holds only permanently
# failed, unlocked jobs, or nothing changes for 20 s (45 s at most; 120 s
# for runs of 300 s or more).  Then, one TAP test each:
#   1. no job lost: every job due an effect has one or is still queued;
#   2. no token has two effects;
#   3. no job and no named queue is left locked;
#   4. no failed attempt left an effect (always failing jobs have none,
#      flaky ones only from a later attempt, rows of "many" jobs come all
#      or none, a write a handler rolled back stays gone) nor failed
#      another job (an earlier error seen by a handler is its own, its
#      worker's death or, with a timeout, its time-out);
#   5. a child exists (once) iff its parent succeeded;
#   6. every add_job/add_jobs call succeeded; every job ended as its kind
#      says: completed and gone, or permanently failed (attempts =
#      max_attempts, unlocked, last_error its own failure with DETAIL and
#      HINT, its time-out or its worker's death), never stuck; handlers
#      ran as their owners; replaced or deduplicated payloads never ran;
#   7. the process samples above, and concurrency job workers and one
#      supervisor at the end;
#   8. no ERROR, FATAL or PANIC of our processes in the server log but
#      those of shutdowns (SQLSTATE 57P01-57P03);
#   9. the run was not vacuous: every kind of chaos happened (each kill -9
#      seen in the log), every behaviour and handler ran, keyed jobs were
#      replaced before they ran.
# Each violation is printed with its ledger row, effects and job row; the
# output ends with one line
#   torture: jobs=N succeeded=S failed=F lost=L duplicated=D locked=K seed=X
# (jobs: ledger tokens plus children due; succeeded: completed with an
# effect; failed: permanently failed; lost: due an effect, gone from the
# queue without one; duplicated: tokens with more than one effect; locked:
# jobs still locked) and the exit status is 1 if anything failed.
# TORTURE_SEED replays a run's sequence of jobs and chaos (not its timing).
use strict;
use warnings;

use FindBin;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# What last_error says when the job's worker died (crash, kill -9) or was
# terminated (pg_terminate_backend) while running it: the attempt counts.
my $interrupted = qr/^(?:worker \S+ died while running this job|worker was terminated while running this job(?:; .*)?)$/s;

my $SECONDS = $ENV{TORTURE_SECONDS} || 300;
my $SEED    = $ENV{TORTURE_SEED};
$SEED = (int(time * 1000) ^ ($$ << 10)) % 2147483646 + 1
  unless defined $SEED && $SEED ne '';
die "TORTURE_SEED must be a number from 1 to 2147483646\n"
  unless $SEED =~ /^\d+$/ && $SEED >= 1 && $SEED <= 2147483646;
die "TORTURE_SECONDS must be a number\n" unless $SECONDS =~ /^\d+$/;

my $NORMAL_CONCURRENCY = 3;
my $GRACE              = 8;      # s after a concurrency change before judging
my $IDLE_GRACE         = 2;      # the same for idle workers
my $STALL              = 20;     # s without progress that ends quiescence
my $QUIESCE_MAX = $SECONDS < 300 ? 45 : 120;    # s at most for quiescence
my $REPLAY = "TORTURE_SEED=$SEED TORTURE_SECONDS=$SECONDS make torture";

# The test's own random numbers (Park-Miller), so that nothing else that
# calls rand() changes the sequence a seed gives.
my $rng = $SEED;
sub rnd { $rng = ($rng * 48271) % 2147483647; return ($rng - 1) / 2147483646; }
sub irand { my ($lo, $hi) = @_; return $lo + int(rnd() * ($hi - $lo + 1)); }
sub pick { return $_[ int(rnd() * @_) ]; }
sub chance { return rnd() < $_[0]; }

sub shuffled
{
	my @a = @_;
	for (my $i = $#a; $i > 0; $i--)
	{
		my $j = int(rnd() * ($i + 1));
		@a[ $i, $j ] = @a[ $j, $i ];
	}
	return @a;
}

# Everything goes to the log file (tmp_check/log/regress_log_torture);
# show() also goes to the terminal.
my $OUT = Test::More->builder->output;
sub show { my ($text) = @_; print $OUT "# $_\n" for split /\n/, $text; return; }

my $T0 = time;
sub elapsed { return time - $T0; }
my @timeline;    # [seconds since the chaos began, what happened]
my $chaos_t0;

sub event
{
	my ($text) = @_;
	my $t = defined $chaos_t0 ? time - $chaos_t0 : 0;
	push @timeline, [ $t, $text ];
	printf "[%7.2f s] %s\n", $t, $text;
	return;
}

# Violations by category, each a list of printable details.
my %violations;

sub violation
{
	my ($category, $detail) = @_;
	push @{ $violations{$category} }, $detail;
	print "VIOLATION $category: $detail\n";
	return;
}

show("torture: seed=$SEED seconds=$SECONDS (replay: $REPLAY)");

# --- The cluster ------------------------------------------------------------

my $node = PostgreSQL::Test::Cluster->new('torture');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'graphile_worker'
max_worker_processes = 32
restart_after_crash = on
log_statement = none
log_line_prefix = '%m [%p] %b %e: '
graphile_worker.concurrency = $NORMAL_CONCURRENCY
graphile_worker.sweep_interval = 500
graphile_worker.poll_interval = 200
# the workers start paused, until every handler exists
graphile_worker.paused = on
});
$node->start;
$ENV{PGCTLTIMEOUT} = 30;    # a stop that takes longer is a violation

my $db = 'torture';
my $superuser = scalar getpwuid($<);

# sql() dies on error; try_sql() returns undef (the server may be down)
# and leaves psql's stderr in $sql_error.
sub sql { return $node->safe_psql($db, $_[0]); }
my $sql_error = '';

sub try_sql
{
	my ($query, $timeout) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	$sql_error = '';
	# psql may exit before IPC::Run has written the query to its stdin (a
	# server that just crashed refuses the connection): IPC::Run then dies
	# with "Broken pipe", which is a failed query like any other
	my $rc = eval {
		$node->psql(
			$db, $query,
			stdout    => \$out,
			stderr    => \$err,
			timeout   => $timeout // 60,
			timed_out => \$timed_out);
	};
	$err = $@ unless defined $rc;
	$sql_error = $timed_out ? 'timed out' : $err;
	return undef if $timed_out || !defined $rc || $rc != 0;
	return $out;
}

sub postmaster_pid
{
	open my $fh, '<', $node->data_dir . '/postmaster.pid' or return 0;
	my $pid = <$fh>;
	close $fh;
	chomp $pid;
	return $pid;
}

sub parent_of
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $stat = <$fh>;
	close $fh;
	return $stat =~ /\) \S (\d+)/ ? $1 : 0;
}

# Waits until the server accepts connections (at most $timeout s).
sub wait_accepting
{
	my ($timeout) = @_;
	my $deadline = time + ($timeout // 60);
	while (time < $deadline)
	{
		my $out = try_sql('SELECT 1', 10);
		return 1 if defined $out && $out eq '1';
		usleep(50_000);
	}
	return 0;
}

sub wait_log
{
	my ($re, $offset, $timeout) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		return 1 if slurp_file($node->logfile, $offset) =~ $re;
		usleep(50_000);
	}
	return 0;
}

$node->safe_psql('postgres', "CREATE DATABASE $db");
sql('CREATE EXTENSION graphile_worker; CREATE SCHEMA graphile_worker_tasks;');
sql(slurp_file("$FindBin::Bin/schema.sql"));

# --- The handlers -----------------------------------------------------------

my @handlers;
{
	my @owners = ('torture_a', 'torture_b', $superuser);
	my %timeout = map { $_ => 1 } qw(sql_jsonb plpgsql_json_job c_jsonb_job);
	my @langs = qw(sql plpgsql c);
	my @sigs = ([ 'json', 0 ], [ 'jsonb', 0 ], [ 'json', 1 ], [ 'jsonb', 1 ]);
	for my $l (0 .. $#langs)
	{
		for my $s (0 .. $#sigs)
		{
			my ($type, $job) = @{ $sigs[$s] };
			my $name = "$langs[$l]_$type" . ($job ? '_job' : '');
			push @handlers,
			  {
				name    => $name,
				lang    => $langs[$l],
				type    => $type,
				job     => $job,
				owner   => $owners[ ($l + $s) % 3 ],
				timeout => $timeout{$name} // 0
			  };
		}
	}
}
my %handler = map { $_->{name} => $_ } @handlers;

sub handler_sql
{
	my ($h) = @_;
	my $n = $h->{name};
	my $args = "payload $h->{type}" . ($h->{job} ? ', job graphile_worker.jobs' : '');
	my ($jid, $att, $prev) =
	  $h->{job}
	  ? ('job.id', 'job.attempts', 'job.last_error')
	  : ('NULL::bigint', 'NULL::int', 'NULL::text');
	my $flaky = $h->{job}
	  ? " OR job.attempts <= coalesce((payload->>'fail_until')::int, 0)" : '';
	my $create;
	if ($h->{lang} eq 'sql')
	{
		$create = qq{
CREATE FUNCTION graphile_worker_tasks.$n($args) RETURNS void LANGUAGE sql AS \$fn\$
INSERT INTO public.effects (token, job_id, attempt, handler, prev_error)
	VALUES (payload->>'token', $jid, $att, '$n', $prev);
INSERT INTO public.bulk (token, i)
	SELECT payload->>'token', i
	  FROM generate_series(1, coalesce((payload->>'rows')::int, 0)) AS i;
INSERT INTO public.fk_child (parent_id, token)
	SELECT -1, payload->>'token' WHERE coalesce((payload->>'fk')::bool, false);
SELECT graphile_worker.add_job(payload->>'child',
		json_build_object('token', (payload->>'token') || '.c'))
	WHERE payload->>'child' IS NOT NULL;
SELECT pg_sleep((payload->>'sleep')::float8) WHERE payload->>'sleep' IS NOT NULL;
SELECT public.torture_fail(payload->>'token', '$n', $att)
	WHERE coalesce((payload->>'fail')::bool, false)$flaky;
\$fn\$;};
	}
	elsif ($h->{lang} eq 'plpgsql')
	{
		$create = qq{
CREATE FUNCTION graphile_worker_tasks.$n($args) RETURNS void LANGUAGE plpgsql AS \$fn\$
DECLARE
	v_token text := payload->>'token';
BEGIN
	INSERT INTO public.effects (token, job_id, attempt, handler, prev_error)
		VALUES (v_token, $jid, $att, '$n', $prev);
	IF coalesce((payload->>'catch')::bool, false) THEN
		BEGIN
			INSERT INTO public.effects (token, job_id, attempt, handler, phase)
				VALUES (v_token, $jid, $att, '$n', 'inner');
			RAISE EXCEPTION 'torture: % catches its own error', v_token;
		EXCEPTION WHEN raise_exception THEN
			NULL;	-- the inner write is rolled back; the job goes on
		END;
	END IF;
	INSERT INTO public.bulk (token, i)
		SELECT v_token, i FROM generate_series(1, coalesce((payload->>'rows')::int, 0)) AS i;
	IF coalesce((payload->>'fk')::bool, false) THEN
		INSERT INTO public.fk_child (parent_id, token) VALUES (-1, v_token);
	END IF;
	IF payload->>'child' IS NOT NULL THEN
		PERFORM graphile_worker.add_job(payload->>'child',
			json_build_object('token', v_token || '.c'));
	END IF;
	IF payload->>'sleep' IS NOT NULL THEN
		PERFORM pg_sleep((payload->>'sleep')::float8);
	END IF;
	IF coalesce((payload->>'fail')::bool, false)$flaky THEN
		RAISE EXCEPTION 'torture: % fails on purpose', v_token
			USING DETAIL = format('handler %s, attempt %s', '$n', coalesce($att, 0)),
				HINT = 'its writes must be rolled back';
	END IF;
END \$fn\$;};
	}
	else
	{
		$create = qq{
CREATE FUNCTION graphile_worker_tasks.$n($args) RETURNS void
	AS 'gw_example_handlers', 'gw_example_effect' LANGUAGE C;};
	}
	my $sig = "graphile_worker_tasks.$n($h->{type}"
	  . ($h->{job} ? ', graphile_worker.jobs' : '') . ')';
	$create .= "\nALTER FUNCTION $sig OWNER TO \"$h->{owner}\";";
	$create .= "\nALTER FUNCTION $sig SET graphile_worker.job_timeout = '200ms';"
	  if $h->{timeout};
	return $create;
}

sql(join "\n", map { handler_sql($_) } @handlers);

# --- Jobs ---------------------------------------------------------------------

my @behaviours = (
	[ ok => 28 ], [ error => 8 ], [ flaky => 8 ], [ catch => 5 ], [ fk => 3 ],
	[ slow => 3 ], [ child => 8 ], [ many => 5 ], [ keyed => 12 ]);
# The run alternates between eras of 200-400 jobs (about 10-15 s) with
# every behaviour and eras of 400-800 jobs without fk jobs, so that what a
# job that breaks its worker could hide (e.g. a worker too many, which it
# would take down) also gets its chance.
my $fk_era = 0;
my $era_left = 0;

sub pick_behaviour
{
	if ($era_left-- <= 0)
	{
		$fk_era = !$fk_era;
		$era_left = $fk_era ? irand(200, 400) : irand(400, 800);
	}
	my @mix = grep { $fk_era || $_->[0] ne 'fk' } @behaviours;
	my $total = 0;
	$total += $_->[1] for @mix;
	my $r = rnd() * $total;
	for my $b (@mix)
	{
		return $b->[0] if ($r -= $b->[1]) < 0;
	}
	return 'ok';
}

my $ntokens = 0;
my ($adds_ok, $adds_failed, $jobs_added) = (0, 0, 0);

# new_spec returns the spec of one job: what torture_add (schema.sql) adds
# and records in the ledger.
sub new_spec
{
	my ($via, $preserve, $keys_used) = @_;
	my $b = pick_behaviour();
	my $token = sprintf('t%06d', ++$ntokens);
	my %p = (token => $token);
	my %s = (token => $token, behaviour => $b, expect => 'once');
	my @plain = grep { !$_->{timeout} } @handlers;
	my $h;
	my $fail = sub { $p{fail} = JSON::PP::true; $s{expect} = 'fail'; $s{max_attempts} = $_[0]; };

	if ($b eq 'ok')
	{
		$h = pick(@handlers);
		$p{sleep} = 0 + sprintf('%.2f', 0.02 + rnd() * 0.15)
		  if !$h->{timeout} && chance(0.3);
	}
	elsif ($b eq 'error')
	{
		$h = pick(@handlers);
		$fail->(irand(2, 3));
	}
	elsif ($b eq 'flaky')
	{
		$h = pick(grep { $_->{job} } @handlers);
		$p{fail_until} = irand(1, 2);
	}
	elsif ($b eq 'catch')
	{
		$h = pick(grep { $_->{lang} eq 'plpgsql' } @handlers);
		$p{catch} = JSON::PP::true;
	}
	elsif ($b eq 'fk')
	{
		$h = pick(@handlers);
		$p{fk} = JSON::PP::true;
		$s{expect} = 'fail';
		$s{max_attempts} = 2;
	}
	elsif ($b eq 'slow')
	{
		$h = pick(grep { $_->{timeout} } @handlers);
		$p{sleep} = 1;
		$s{expect} = 'fail';
		$s{max_attempts} = 2;
	}
	elsif ($b eq 'child')
	{
		$h = pick(@handlers);
		$p{child} = pick(@handlers)->{name};
		if ($h->{job} && chance(0.3)) { $p{fail_until} = 1; }
		elsif (chance(0.2))           { $fail->(2); }
	}
	elsif ($b eq 'many')
	{
		$h = pick(@handlers);
		$p{rows} = irand(100, 3000);
		$fail->(2) if chance(0.25);
	}
	else    # keyed
	{
		$h = pick(@handlers);
		$p{sleep} = 0 + sprintf('%.2f', 0.05 + rnd() * 0.25)
		  if !$h->{timeout} && chance(0.4);
		my $key = 'k' . irand(1, 6);
		if (!$keys_used->{$key})
		{
			$keys_used->{$key} = 1 if $via eq 'add_jobs';
			$s{key} = $key;
			$s{mode} =
			    $via eq 'add_jobs' ? ($preserve eq 'true' ? 'preserve_run_at' : 'replace')
			  : pick('replace', 'preserve_run_at', 'unsafe_dedupe');
			$s{delay_ms} = irand(200, 3000) if chance(0.5);
		}
	}
	$s{queue} = pick('q1', 'q2', 'q3') if chance(0.2);
	$s{delay_ms} = irand(100, 5000) if !defined $s{key} && chance(0.15);
	$s{priority} = pick(-1, 1) if chance(0.1);
	$s{task} = $h->{name};
	$s{payload} = \%p;
	return \%s;
}

sub add_tick
{
	my $n = irand(1, 10);
	my $via = chance(0.3) ? 'add_jobs' : 'add_job';
	my $preserve = ($via eq 'add_jobs' && chance(0.3)) ? 'true' : 'false';
	my %keys_used;
	my @specs = map { new_spec($via, $preserve, \%keys_used) } 1 .. $n;
	my $json = JSON::PP->new->canonical->encode(\@specs);
	my $out = try_sql("SELECT public.torture_add(\$j\$$json\$j\$::jsonb, '$via', $preserve)");
	if (defined $out) { $adds_ok++; $jobs_added += $n; return; }
	$adds_failed++;
	print "adding failed: $sql_error\n";
	# the server going away is no fault of add_job; an error is
	violation('add', "$via failed: $sql_error  specs: $json")
	  if $sql_error =~ /ERROR:/
	  && $sql_error !~ /terminating connection|server closed the connection|connection to server/;
	return;
}

# --- Processes ------------------------------------------------------------------

my $concurrency = $NORMAL_CONCURRENCY;
my $concurrency_since = time;    # last change of the setting, or restart
my ($samples, $max_workers, $max_supervisors) = (0, 0, 0);

sub gw_pids
{
	my ($kind) = @_;
	my $where = $kind eq 'launcher' ? '' : " AND datname = '$db'";
	my $out = try_sql(
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'graphile_worker $kind'$where ORDER BY pid");
	return () unless defined $out;
	return grep { /^\d+$/ } split /\n/, $out;
}

# sample() counts the job workers and supervisors of the database; returns
# "workers supervisors" or undef.
sub sample
{
	my ($judge) = @_;
	my $out = try_sql(q{
SELECT count(*) FILTER (WHERE backend_type = 'graphile_worker job worker') || ' ' ||
       count(*) FILTER (WHERE backend_type = 'graphile_worker supervisor') || ' ' ||
       count(*) FILTER (WHERE backend_type = 'graphile_worker job worker' AND state = 'idle') || ' ' ||
       coalesce(string_agg(backend_type || ' ' || pid || ' (' || coalesce(state, '') || ') since '
                           || backend_start, ', ' ORDER BY backend_type, pid), '')
  FROM pg_stat_activity
 WHERE backend_type IN ('graphile_worker job worker', 'graphile_worker supervisor')
   AND datname = current_database()});
	return undef unless defined $out;
	my ($w, $s, $idle, $list) = split / /, $out, 4;
	$samples++;
	$max_workers = $w if $w > $max_workers;
	printf "sample at %.1f s: %d job workers (%d idle), %d supervisors, concurrency %d\n",
	  time - ($chaos_t0 // $T0), $w, $idle, $s, $concurrency;
	$max_supervisors = $s if $s > $max_supervisors;
	return "$w $s" unless $judge;
	incident('supervisors', $s > 1,
		sprintf('%d supervisors for the database: %s', $s, $list));
	# a worker told to stop finishes its batch first, but does not idle
	incident('workers',
		$w > $concurrency && time - $concurrency_since > $GRACE
		  || $idle > $concurrency && time - $concurrency_since > $IDLE_GRACE,
		sprintf('%d job workers (%d idle) with concurrency %d, set %.1f s before: %s',
			$w, $idle, $concurrency, time - $concurrency_since, $list));
	return "$w $s";
}

# incident($kind, $bad, $detail): bad samples of a kind make one incident,
# until 3 good samples in a row; reported (by close_incidents) with its
# first sample.
my %incident;    # kind => [first detail, from, to, bad samples, good in a row]
my @incidents;

sub incident
{
	my ($kind, $bad, $detail) = @_;
	my $t = time - ($chaos_t0 // $T0);
	if ($bad)
	{
		$incident{$kind} //= [ $detail, $t, $t, 0, 0 ];
		@{ $incident{$kind} }[ 2 .. 4 ] = ($t, $incident{$kind}[3] + 1, 0);
	}
	elsif ($incident{$kind} && ++$incident{$kind}[4] >= 3)
	{
		push @incidents, delete $incident{$kind};
	}
	return;
}

sub close_incidents
{
	push @incidents, delete $incident{$_} for sort keys %incident;
	violation('processes', sprintf("from %.1f s to %.1f s (%d bad samples): %s", @$_[ 1 .. 3 ], $_->[0]))
	  for sort { $a->[1] <=> $b->[1] } @incidents;
	@incidents = ();
	return;
}

# --- Chaos ------------------------------------------------------------------------

my %pending;    # setting => [when, value]: a reload to make later
my %happened;   # chaos kind => count
my @kills;      # [pid, kind] of each kill -9

sub set_settings
{
	my (%kv) = @_;
	my $q = join '', map { "ALTER SYSTEM SET graphile_worker.$_ = '$kv{$_}';\n" } sort keys %kv;
	return defined try_sql($q . 'SELECT pg_reload_conf();');
}

sub set_concurrency
{
	my ($v, $why) = @_;
	return 0 unless set_settings(concurrency => $v);
	$concurrency = $v;
	$concurrency_since = time;
	event("reload: concurrency = $v$why");
	return 1;
}

sub kill9
{
	my ($kind) = @_;
	my @pids = gw_pids($kind);
	return 0 unless @pids;
	my $pid = pick(@pids);
	my $pm = postmaster_pid();
	# only a child of this cluster's postmaster
	return 0 unless $pm && parent_of($pid) == $pm;
	my $off = -s $node->logfile;
	return 0 unless kill 'KILL', $pid;
	event("kill -9 $kind $pid");
	push @kills, [ $pid, $kind ];
	event('no crash restart within 30 s')
	  unless wait_log(qr/all server processes terminated; reinitializing/, $off, 30);
	die "the server does not accept connections after the crash restart\n"
	  unless wait_accepting(60);
	event('accepting connections again');
	$concurrency_since = time;
	return 1;
}

sub restart
{
	my ($mode) = @_;
	event("pg_ctl stop -m $mode");
	my $t = time;
	my $ok = $node->stop($mode, fail_ok => 1);
	my $took = time - $t;
	if (!$ok)
	{
		violation('processes', sprintf('pg_ctl stop -m %s failed after %.1f s', $mode, $took));
		$node->stop('immediate', fail_ok => 1);
	}
	event(sprintf('stopped in %.2f s; pg_ctl start', $took));
	$node->start(fail_ok => 1) or die "the server does not start again\n";
	$concurrency_since = time;
	return 1;
}

# pg_terminate_backend of one of our processes (a job worker stops after
# giving its job back; the supervisor and the launcher are restarted).
sub terminate
{
	my ($kind) = @_;
	my @pids = gw_pids($kind);
	return 0 unless @pids;
	my $pid = pick(@pids);
	my $r = try_sql("SELECT pg_terminate_backend($pid)");
	return 0 unless defined $r && $r eq 't';
	event("pg_terminate_backend($kind $pid)");
	return 1;
}

my %chaos = (
	kill9_worker     => sub { kill9('job worker') },
	kill9_supervisor => sub { kill9('supervisor') },
	kill9_launcher   => sub { kill9('launcher') },
	stop_fast        => sub { restart('fast') },
	stop_smart       => sub { restart('smart') },
	stop_immediate   => sub { restart('immediate') },
	terminate_worker     => sub { terminate('job worker') },
	terminate_supervisor => sub { terminate('supervisor') },
	terminate_launcher   => sub { terminate('launcher') },
	concurrency => sub {
		my $v = irand(0, 4);
		$v = ($v + 1) % 5 if $v == $concurrency;
		return 0 unless set_concurrency($v, '');
		$pending{concurrency} = [ time + 1 + rnd() * 2, irand(1, 4) ] if $v == 0;
		return 1;
	},
	concurrency_burst => sub {
		# 4-10 reloads 0-20 ms apart, from one session, up and down (a
		# worker started by one may not have begun when the next comes)
		my $n = irand(4, 10);
		my $up = chance(0.5) ? 1 : 0;
		my @v = map { $_ == $n ? irand(1, 4) : ($_ % 2 == $up ? irand(3, 4) : irand(0, 1)) } 1 .. $n;
		my @ms = map { irand(0, 20) } 1 .. $n - 1;
		my $q = '';
		for my $i (0 .. $n - 1)
		{
			$q .= "ALTER SYSTEM SET graphile_worker.concurrency = $v[$i];\nSELECT pg_reload_conf();\n";
			$q .= sprintf("SELECT pg_sleep(%.3f);\n", $ms[$i] / 1000) if $i < $n - 1;
		}
		return 0 unless defined try_sql($q);
		$concurrency = $v[-1];
		$concurrency_since = time;
		event('reload burst: concurrency = ' . join(', ', map { ($_ < $n - 1) ? "$v[$_] ($ms[$_] ms)" : $v[$_] } 0 .. $n - 1));
		delete $pending{concurrency};
		return 1;
	},
	pause => sub {
		return 0 unless set_settings(paused => 'on');
		event('reload: paused = on');
		$pending{paused} = [ time + 0.5 + rnd() * 2.5, 'off' ];
		return 1;
	},
);
# a deck has each kind once, and bursts twice (a worker left over by one is
# a matter of timing)
my @chaos_kinds = ((sort keys %chaos), 'concurrency_burst');
my @deck;

sub chaos
{
	@deck = shuffled(@chaos_kinds) unless @deck;
	for my $round (1, 2)
	{
		# the next kind that is possible now (e.g. there may be no job
		# worker to kill); the others stay in the deck, in order
		for my $i (0 .. $#deck)
		{
			my $kind = $deck[$i];
			if ($chaos{$kind}->())
			{
				$happened{$kind}++;
				splice @deck, $i, 1;
				# what some kinds bring about takes time to show, and any
				# restart would hide it: the launcher comes back 5 s after
				# it was terminated; workers left over by reloads
				return $kind eq 'terminate_launcher' ? 7
				  : $kind =~ /^concurrency/ ? $GRACE + 1 : 0;
			}
			print "chaos $kind not possible now\n";
		}
		# none is: a fresh deck behind this one
		push @deck, shuffled(@chaos_kinds);
	}
	return 0;
}

sub run_pending
{
	my ($all) = @_;
	for my $setting (sort keys %pending)
	{
		my ($when, $v) = @{ $pending{$setting} };
		next unless $all || time >= $when;
		if ($setting eq 'concurrency') { next unless set_concurrency($v, ' (restored)'); }
		else
		{
			next unless set_settings($setting => $v);
			event("reload: $setting = $v (restored)");
		}
		delete $pending{$setting};
	}
	return;
}

# --- Start --------------------------------------------------------------------------

{
	my $deadline = time + 60;
	usleep(100_000)
	  until (sample(0) // '') eq "$NORMAL_CONCURRENCY 1" || time > $deadline;
	set_settings(paused => 'off') or die "cannot unpause\n";
	my $out = try_sql(q{SELECT public.torture_add(
		'[{"token": "control", "task": "plpgsql_json", "behaviour": "ok",
		   "expect": "once", "payload": {"token": "control"}}]', 'add_job')});
	die "cannot add the control job\n" unless defined $out;
	# q3 runs two of its jobs at once (set_queue_concurrency), q1 and q2
	# one (the queue row lock)
	defined try_sql(q{INSERT INTO graphile_worker._private_job_queues (queue_name) VALUES ('q3');
SELECT graphile_worker.set_queue_concurrency('q3', 2)}) or die "cannot limit queue q3\n";
	$deadline = time + 60;
	usleep(100_000)
	  until (try_sql(q{SELECT count(*) FROM public.effects WHERE token = 'control'}) // '') eq '1'
	  || time > $deadline;
	die "the control job did not run within 60 s\n"
	  unless try_sql(q{SELECT count(*) FROM public.effects WHERE token = 'control'}) eq '1';
	show(sprintf('setup done in %.1f s: %d handlers, %d job workers', elapsed(),
		scalar @handlers, $NORMAL_CONCURRENCY));
}

# --- Chaos phase -------------------------------------------------------------------

$chaos_t0 = time;
{
	my $end = $chaos_t0 + $SECONDS;
	my $next_chaos = time + 1 + rnd() * 2;
	my $next_progress = time + 15;
	# the phase lasts $SECONDS, and longer (up to three times that) until
	# every kind of chaos has happened once: on a slow machine a deck may not
	# be dealt out in time
	my $hard_end = $chaos_t0 + 3 * $SECONDS;
	my $all_happened = sub { !grep { !$happened{$_} } keys %chaos };
	my $ok = eval {
		while (time < $end || ($SECONDS >= 30 && !$all_happened->() && time < $hard_end))
		{
			run_pending(0);
			add_tick();
			sample(1);
			if (time >= $next_chaos)
			{
				my $settle = chaos();
				my $pause = 0.5 + rnd() * 3;
				$next_chaos = time + ($settle > $pause ? $settle : $pause);
			}
			if (time >= $next_progress)
			{
				my $n = 0;
				$n += $_ for values %happened;
				show(sprintf('[%3d s] %d jobs added, %d chaos events',
					time - $chaos_t0, $jobs_added, $n));
				$next_progress += 15;
			}
			usleep(irand(50, 250) * 1000);
		}
		1;
	};
	violation('driver', "the chaos phase stopped: $@") unless $ok;
}
close_incidents();
my $chaos_seconds = time - $chaos_t0;
event('chaos ends');

# --- Quiescence -----------------------------------------------------------------------

my $quiet = 0;
my $quiesce_seconds;
eval {
	%pending = ();
	unless (-e $node->data_dir . '/postmaster.pid' && wait_accepting(30))
	{
		$node->stop('immediate', fail_ok => 1);
		$node->start;
		wait_accepting(60) or die "the server does not accept connections\n";
	}
	set_settings(concurrency => $NORMAL_CONCURRENCY, paused => 'off')
	  or die "cannot restore the settings\n";
	$concurrency = $NORMAL_CONCURRENCY;
	$concurrency_since = time;
	event("reload: concurrency = $NORMAL_CONCURRENCY, paused = off (quiescence)");

	my $t = time;
	my ($last, $last_change, $last_shown) = ('', time, 0);
	while (1)
	{
		try_sql(q{
SELECT count(*) FROM graphile_worker.reschedule_jobs(ARRAY(
	SELECT id FROM graphile_worker.jobs
	 WHERE locked_at IS NULL AND attempts < max_attempts AND run_at > now()),
	run_at => now())});
		my $state = try_sql(q{
SELECT count(*) FILTER (WHERE attempts < max_attempts OR locked_at IS NOT NULL) || ' ' ||
       count(*) FILTER (WHERE locked_at IS NOT NULL OR locked_by IS NOT NULL) || ' ' ||
       count(*) || ' ' || coalesce(sum(attempts), 0) || ' ' ||
       (SELECT count(*) FROM graphile_worker._private_job_queues
         WHERE locked_at IS NOT NULL OR locked_by IS NOT NULL) || ' ' ||
       (SELECT count(*) FROM public.effects)
  FROM graphile_worker.jobs}) // '';
		my ($open, undef, undef, undef, $qlocked) = split / /, $state;
		if (defined $qlocked && $open == 0 && $qlocked == 0) { $quiet = 1; last; }
		if ($state ne '' && ($state ne $last || time - $last_shown > 5))
		{
			# for the post-mortem: the queue, and what the workers do
			printf "[%7.2f s] quiescence: open %s, locked %s, rows %s, attempts %s, locked queues %s, effects %s\n",
			  time - $chaos_t0, split(/ /, $state);
			print "  $_\n" for split /\n/, try_sql(q{
SELECT pid || ' ' || backend_type || ' ' || coalesce(state, '') || ' ' || coalesce(query, '')
  FROM pg_stat_activity WHERE backend_type LIKE 'graphile_worker%' ORDER BY pid}) // '';
			$last_shown = time;
		}
		($last, $last_change) = ($state, time) if $state ne $last;
		last if time - $last_change > $STALL || time - $t > $QUIESCE_MAX;
		usleep(250_000);
	}
	$quiesce_seconds = time - $t;
	event(sprintf('quiescence %s after %.1f s', $quiet ? 'reached' : 'NOT reached',
		$quiesce_seconds));
	show(sprintf('chaos phase %.0f s, quiescence %s in %.1f s', $chaos_seconds,
		$quiet ? 'reached' : 'NOT reached', $quiesce_seconds));

	# The processes settle: concurrency job workers and one supervisor.
	my $deadline = time + 15;
	my $s;
	while (time < $deadline)
	{
		$s = sample(1) // '';
		last if $s eq "$NORMAL_CONCURRENCY 1";
		usleep(200_000);
	}
	close_incidents();
	if ($s ne "$NORMAL_CONCURRENCY 1")
	{
		my $list = try_sql(q{SELECT string_agg(backend_type || ' ' || pid || ' since ' || backend_start, ', ')
		  FROM pg_stat_activity WHERE backend_type LIKE 'graphile_worker%'}) // '?';
		violation('processes',
			"at the end (job workers, supervisors) = ($s), expected ($NORMAL_CONCURRENCY 1): $list");
	}
	1;
} or violation('driver', "quiescence failed: $@");

# --- Checks -----------------------------------------------------------------------------

my %count = map { $_ => 0 } qw(jobs succeeded failed lost duplicated locked);
my %covered;    # behaviour => jobs that ended as expected
my %handler_effects;
my %dup_handlers;    # handler of the first effect => tokens with two or more

sub fetch_json
{
	my ($query) = @_;
	return decode_json(sql("SELECT coalesce(json_agg(x), '[]') FROM ($query) AS x"));
}

sub one_line
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	$s =~ s/\n/ | /g;
	return $s;
}

my (%ledger, %effects, %queued, %bulk);

sub describe
{
	my ($token) = @_;
	my @lines;
	if (my $l = $ledger{$token})
	{
		push @lines, sprintf(
			'ledger %s: task %s, %s, expect %s, job %s, max_attempts %s%s%s%s%s%s, added %s by %s%s',
			$token, $l->{task}, $l->{behaviour}, $l->{expect}, $l->{job_id} // 'NULL',
			$l->{max_attempts},
			$l->{fail_until} ? ", fail_until $l->{fail_until}" : '',
			$l->{nrows} ? ", rows $l->{nrows}" : '',
			$l->{child_task} ? ", child $l->{child_task}" : '',
			defined $l->{job_key} ? ", key $l->{job_key} ($l->{key_mode})" : '',
			defined $l->{queue_name} ? ", queue $l->{queue_name}" : '',
			$l->{added_at}, $l->{via},
			defined $l->{note} ? " [$l->{note}]" : '');
	}
	for my $e (@{ $effects{$token} // [] })
	{
		push @lines, sprintf(
			'  effect: job %s, attempt %s, handler %s, phase %s, as %s, pid %s, at %s, prev_error %s',
			$e->{job_id} // 'NULL', $e->{attempt} // 'NULL', $e->{handler}, $e->{phase},
			$e->{who}, $e->{pid}, $e->{at}, one_line($e->{prev_error}));
	}
	for my $j (@{ $queued{$token} // [] })
	{
		push @lines, sprintf(
			'  job %s: task %s, attempts %s/%s, locked_by %s, locked_at %s, key %s, run_at %s, last_error %s',
			$j->{id}, $j->{task}, $j->{attempts}, $j->{max_attempts}, $j->{locked_by} // 'NULL',
			$j->{locked_at} // 'NULL', $j->{key} // 'NULL', $j->{run_at}, one_line($j->{last_error}));
	}
	push @lines, '  (no effect, no job row)' unless $effects{$token} || $queued{$token};

	# Which worker held the job after an effect committed: a worker id
	# names its pid in hex (gw-<system id>-<pid>-<start>).
	my %effect_pid = map { sprintf('%x', $_->{pid}) => $_->{pid} } @{ $effects{$token} // [] };
	my %noted;
	for my $text ((map { $_->{prev_error} } @{ $effects{$token} // [] }),
		(map { ($_->{locked_by}, $_->{last_error}) } @{ $queued{$token} // [] }))
	{
		next unless defined $text && $text =~ /gw-[0-9a-f]+-([0-9a-f]+)-[0-9a-f]+/;
		my $pid = $effect_pid{$1};
		next unless defined $pid && !$noted{$pid}++;
		push @lines, "  (pid $pid committed an effect, yet the job stayed locked by it afterwards:"
		  . " its worker id, gw-...-$1-..., is in a later last_error or locked_by)";
	}
	return join "\n", @lines;
}

eval {
	%ledger = map { $_->{token} => $_ } @{ fetch_json('SELECT * FROM public.ledger') };
	for my $e (@{ fetch_json('SELECT token, job_id, attempt, handler, phase, prev_error, who, pid, at FROM public.effects ORDER BY at') })
	{
		push @{ $effects{ $e->{token} } }, $e;
	}
	my $jobs = fetch_json(q{
SELECT j.id, j.payload->>'token' AS token, t.identifier AS task, j.attempts, j.max_attempts,
       j.locked_by, j.locked_at, j.last_error, j.key, j.run_at, q.queue_name
  FROM graphile_worker._private_jobs j
  JOIN graphile_worker._private_tasks t ON t.id = j.task_id
  LEFT JOIN graphile_worker._private_job_queues q ON q.id = j.job_queue_id
 ORDER BY j.id});
	for my $j (@$jobs) { push @{ $queued{ $j->{token} // '' } }, $j; }
	%bulk = %{ decode_json(sql(q{SELECT coalesce(json_object_agg(token, n), '{}')
		FROM (SELECT token, count(*) AS n FROM public.bulk GROUP BY token) b})) };

	# The children due: a parent's child must exist iff the parent's effect
	# committed.
	my %expected = map { $_ => $ledger{$_} } keys %ledger;
	for my $l (values %ledger)
	{
		next unless defined $l->{child_task};
		my $parent_done = grep { $_->{phase} eq 'done' } @{ $effects{ $l->{token} } // [] };
		my $c = "$l->{token}.c";
		$expected{$c} = $ledger{$c} = {
			token => $c, task => $l->{child_task}, behaviour => 'child job',
			expect => $parent_done ? 'once' : 'none', max_attempts => 25, fail_until => 0,
			nrows => 0, via => "the handler of $l->{token}", added_at => 'with its parent',
			parent => $l->{token}};
	}

	for my $token (sort keys %expected)
	{
		my $l = $expected{$token};
		my $child = defined $l->{parent};
		my @done = grep { $_->{phase} eq 'done' } @{ $effects{$token} // [] };
		my @inner = grep { $_->{phase} ne 'done' } @{ $effects{$token} // [] };
		my @jobs = @{ $queued{$token} // [] };
		my $j = $jobs[0];
		my $e = @done;
		my $locked = $j && (defined $j->{locked_by} || defined $j->{locked_at});
		my $dead = $j && !$locked && $j->{attempts} >= $j->{max_attempts};
		my $cat = sub { $child ? 'children' : $_[0] };

		$count{jobs}++ unless $l->{expect} eq 'none' && $child;
		$count{succeeded}++ if $e >= 1 && !$j;
		$count{failed}++ if $dead;
		$handler_effects{ $_->{handler} }++ for @done;

		if ($e > 1)
		{
			$count{duplicated}++;
			$dup_handlers{ $done[0]{handler} }++;
			violation($cat->('duplicated'), "$e effects:\n" . describe($token));
		}
		if (@jobs > 1)
		{
			violation($cat->('outcome'), scalar(@jobs) . " job rows carry this token:\n" . describe($token));
		}
		violation('effect of a failure', "a write rolled back by its handler survived:\n" . describe($token))
		  if @inner;

		# the handler ran as its function's owner
		for my $d (@done)
		{
			my $h = $handler{ $d->{handler} };
			violation('outcome', "ran as $d->{who}, not as the owner $h->{owner} of $d->{handler}:\n" . describe($token))
			  if $h && $d->{who} ne $h->{owner};
		}

		if ($l->{expect} eq 'once')
		{
			if ($locked)
			{
				violation($cat->('outcome'),
					($e ? 'completed (its effect committed) but still locked' : 'still locked')
					  . ":\n" . describe($token));
			}
			elsif ($j && $e)
			{
				violation($cat->('outcome'), "completed (its effect committed) but still in the queue:\n" . describe($token));
			}
			elsif ($dead)
			{
				violation($cat->('outcome'), "permanently failed, but it should have succeeded:\n" . describe($token));
			}
			elsif ($j)
			{
				violation($cat->('outcome'), "stuck: never completed by the end of quiescence:\n" . describe($token));
			}
			elsif (!$e)
			{
				$count{lost}++;
				violation($cat->('lost'), "lost: gone from the queue without an effect:\n" . describe($token));
			}
			else
			{
				$covered{ $child ? 'child job' : $l->{behaviour} }++;
			}
			# a flaky job's effect comes from an attempt after its failures
			for my $d (@done)
			{
				violation('effect of a failure',
					"effect from attempt $d->{attempt}, which fails on purpose:\n" . describe($token))
				  if defined $d->{attempt} && $d->{attempt} <= $l->{fail_until};
				violation('outcome', "effect names job $d->{job_id}, the ledger job $l->{job_id}:\n" . describe($token))
				  if defined $d->{job_id} && defined $l->{job_id} && !defined $l->{job_key}
				  && $d->{job_id} != $l->{job_id};
			}
		}
		elsif ($l->{expect} eq 'fail')
		{
			violation('effect of a failure', "a job that always fails has an effect:\n" . describe($token))
			  if $e;
			if ($locked)
			{
				violation('outcome', "still locked:\n" . describe($token));
			}
			elsif (!$j)
			{
				violation('outcome', "a job that always fails is gone from the queue:\n" . describe($token))
				  unless $e;
			}
			elsif (!$dead)
			{
				violation('outcome', "stuck: not permanently failed by the end of quiescence:\n" . describe($token));
			}
			else
			{
				violation('outcome', "attempts $j->{attempts} > max_attempts $j->{max_attempts}:\n" . describe($token))
				  if $j->{attempts} > $j->{max_attempts};
				# its last error is its own (or its worker died)
				my $err = $j->{last_error} // '';
				my $own =
				    $l->{behaviour} eq 'fk' ? qr/violates foreign key constraint/
				  : $l->{behaviour} eq 'slow' ? qr/^job timed out after 200 ms/
				  : qr/^torture: \Q$token\E fails on purpose\nDETAIL: handler \S+, attempt \d+\nHINT: its writes must be rolled back/;
				violation('outcome', "last_error is neither its own failure nor its worker's death:\n" . describe($token))
				  unless $err =~ $own || $err =~ $interrupted;
				$covered{ $l->{behaviour} }++;
			}
		}
		elsif ($l->{expect} eq 'none')
		{
			violation($cat->('outcome'),
				($child ? 'exists though its parent did not succeed'
					: 'has an effect though it was replaced or deduplicated before it ran')
				  . ":\n" . describe($token))
			  if $e || @jobs;
			$covered{ $l->{note} =~ /^replaced/ ? 'keyed: replaced' : 'keyed: deduplicated' }++
			  if !$child && defined $l->{note};
		}
		else    # atmost1
		{
			if ($locked) { violation('outcome', "still locked:\n" . describe($token)); }
			elsif ($j && $e)
			{
				violation('outcome', "completed (its effect committed) but still in the queue:\n" . describe($token));
			}
			elsif ($j && !$dead)
			{
				violation('outcome', "stuck: never finished by the end of quiescence:\n" . describe($token));
			}
		}

		# many rows: all of them with the effect, none without
		if ($l->{nrows})
		{
			my $rows = $bulk{$token} // 0;
			violation('effect of a failure', "$rows rows in public.bulk, expected " . ($e * $l->{nrows}) . ":\n" . describe($token))
			  if $rows != $e * $l->{nrows};
		}

		# a job's earlier failures are its own, or its worker's death
		for my $d (@done)
		{
			my $prev = $d->{prev_error};
			next unless defined $prev;
			my $h = $handler{ $d->{handler} };
			next if $prev =~ $interrupted;
			next if $h && $h->{timeout} && $prev =~ /^job timed out after 200 ms/;
			next if $prev =~ /^torture: \Q$token\E fails on purpose\n/;
			violation('effect of a failure',
				"an earlier attempt failed with an error that is not its own:\n" . describe($token));
		}
	}

	# Locks left, jobs and effects nobody expects.
	for my $j (@$jobs)
	{
		$count{locked}++ if defined $j->{locked_by} || defined $j->{locked_at};
		violation('outcome', "a job the test did not add:\n" . describe($j->{token} // ''))
		  unless defined $j->{token} && $expected{ $j->{token} };
	}
	for my $token (sort keys %effects)
	{
		violation('outcome', "an effect of a job the test did not add:\n" . describe($token))
		  unless $expected{$token};
	}
	violation('locked', "$count{locked} jobs are still locked") if $count{locked};
	my $qlocked = sql(q{SELECT coalesce(string_agg(queue_name || ' locked_by ' || coalesce(locked_by, 'NULL')
		|| ' locked_at ' || coalesce(locked_at::text, 'NULL'), ', '), '')
		FROM graphile_worker._private_job_queues WHERE locked_at IS NOT NULL OR locked_by IS NOT NULL});
	violation('locked', "named queues still locked: $qlocked") if $qlocked ne '';
	violation('outcome', 'quiescence was not reached') unless $quiet;
	1;
} or violation('driver', "the checks stopped: $@");

# The server log: no error of our processes, but those of a shutdown
# (SQLSTATE 57P01-57P03); every kill -9 seen.
{
	my @log = split /\n/, slurp_file($node->logfile);
	my (%times, %first, @order);
	for my $i (0 .. $#log)
	{
		next unless $log[$i] =~
		  /\[(\d+)\] (graphile_worker [a-z ]+?) ([0-9A-Z]{5}): (ERROR|FATAL|PANIC):\s+(.*)/;
		my ($pid, $who, $code, $level, $msg) = ($1, $2, $3, $4, $5);
		next if $code =~ /^57P0[123]$/;
		my $key = "$who, $level $code: $msg";
		next if $times{$key}++;
		push @order, $key;
		my $last = $i + 4 > $#log ? $#log : $i + 4;
		$first{$key} = join "\n  ", $log[$i],
		  grep { /\[$pid\] .*(DETAIL|HINT|CONTEXT):/ } @log[ $i + 1 .. $last ];
	}
	violation('server log', "$times{$_} times: $_\n  first: $first{$_}") for @order;
	my $log = join "\n", @log;
	for my $k (@kills)
	{
		my ($pid, $kind) = @$k;
		violation('coverage', "kill -9 of $kind $pid: no 'terminated by signal 9' in the log")
		  unless $log =~ /"graphile_worker \Q$kind\E" \(PID $pid\) was terminated by signal 9/;
	}
}

# It must not pass vacuously: every kind of chaos happened, every behaviour
# and handler ran.
{
	if ($SECONDS >= 30)
	{
		for my $k (sort keys %chaos)
		{
			violation('coverage', "no chaos of kind $k happened") unless $happened{$k};
		}
	}
	my $min = $SECONDS >= 30 ? 3 : 1;
	for my $b ((map { $_->[0] } @behaviours), 'child job')
	{
		violation('coverage', "only " . ($covered{$b} // 0) . " $b jobs ended as expected (< $min)")
		  if ($covered{$b} // 0) < $min;
	}
	violation('coverage', 'no keyed job was replaced before it ran')
	  if $SECONDS >= 30 && !$covered{'keyed: replaced'};
	for my $h (@handlers)
	{
		violation('coverage', "handler $h->{name} ran only " . ($handler_effects{ $h->{name} } // 0) . " jobs")
		  if ($handler_effects{ $h->{name} } // 0) < $min;
	}
	violation('coverage', "only $samples process samples") if $samples < $SECONDS;
}

# --- Report --------------------------------------------------------------------------------

show(sprintf('%d jobs added in %d transactions (%d failed); '
	  . 'chaos: %s; covered: %s; samples %d (max %d job workers, %d supervisors)',
	$jobs_added, $adds_ok, $adds_failed,
	join(', ', map { "$_ $happened{$_}" } sort keys %happened),
	join(', ', map { "$_ $covered{$_}" } sort keys %covered),
	$samples, $max_workers, $max_supervisors));

my @checks = (
	[ 'no job lost', ['lost'] ],
	[ 'no job with two effects', ['duplicated'] ],
	[ 'no job or queue left locked', ['locked'] ],
	[ 'failed attempts left no effect and did not fail other jobs', ['effect of a failure'] ],
	[ 'a child exists once iff its parent succeeded', ['children'] ],
	[ 'every job was added and ended as expected', [ 'add', 'outcome' ] ],
	[ 'never more job workers than concurrency (and as many at the end), never two supervisors', ['processes'] ],
	[ 'no error of a worker in the server log', ['server log'] ],
	[ 'the run is not vacuous (chaos, behaviours and handlers covered)', [ 'coverage', 'driver' ] ],
);
for my $c (@checks)
{
	my ($name, $cats) = @$c;
	my @v = map { @{ $violations{$_} // [] } } @$cats;
	ok(!@v, $name);
	next unless @v;
	my $shown = 0;
	for my $v (@v)
	{
		last if ++$shown > 10;
		show($v);
	}
	show('... and ' . (@v - 10) . ' more (all in ' . $node->logfile . ' and the test log)') if @v > 10;
}
show('tokens with two or more effects, by handler: '
	  . join(', ', map { "$_ $dup_handlers{$_}" } sort { $dup_handlers{$b} <=> $dup_handlers{$a} || $a cmp $b } keys %dup_handlers))
  if %dup_handlers;
my $failed = grep { @{ $violations{$_} } } keys %violations;
if ($failed)
{
	show('the chaos, in seconds since it began:');
	show(sprintf('%7.2f  %s', @$_)) for @timeline;
	show("replay: $REPLAY");
	show('server log: ' . $node->logfile);
}
done_testing();
Test::More->builder->no_ending(1);
print $OUT sprintf("torture: jobs=%d succeeded=%d failed=%d lost=%d duplicated=%d locked=%d seed=%s\n",
	@count{qw(jobs succeeded failed lost duplicated locked)}, $SEED);
exit($failed ? 1 : 0);
