# 120_cron_held_keys.pl: nobody can stall the supervisor through a cron
# entry's job key, and one bad entry never keeps the others from firing.
#
# The crontab has a keyed entry (`* * * * * keyed ?jobKey=cronkey`), a plain
# one, and an entry whose payload add_job refuses (\u0000, written into
# _private_crontab directly, as a crontab stored before set_crontab checked
# payloads would be).  Job workers poll only every 10 minutes, so a
# scheduled job runs on time only if the supervisor's timer wakes a worker.
# Proves that
#   a) while a session holds the advisory locks SQL can take on the key's
#      numbers (those 0.1.0 used for the key), the keyed and plain entries
#      fire at the minute boundary (within 5 s), the bad entry is skipped
#      with a WARNING naming it, and a job scheduled 5 s after the boundary
#      starts within 3 s of its run_at;
#   b) while a transaction holds the key through add_job (legitimately),
#      the plain entry still fires at the boundary and the scheduled job
#      still starts on time: the keyed entry is deferred (logged, retried)
#      instead of stalling the supervisor, and once the transaction commits
#      it fires for that same minute, exactly once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use GwTest;

my $node = start_node('held', conf => q{
max_worker_processes = 16
graphile_worker.concurrency = 1
graphile_worker.poll_interval = 600000
});
my $db = create_db($node, 'crondb');
sub sql { return $node->safe_psql($db, $_[0]); }

# Only "ontime" has a handler: cron jobs stay in the table to be looked at.
sql(q{
CREATE TABLE public.started (job_id bigint, run_at timestamptz,
	at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION graphile_worker_tasks.ontime(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE sql AS
$$ INSERT INTO public.started (job_id, run_at) VALUES (job.id, job.run_at) $$;
SELECT graphile_worker.set_crontab($$
* * * * * keyed ?jobKey=cronkey
* * * * * plain
$$);
UPDATE graphile_worker._private_crontab
   SET crontab = crontab || E'* * * * * bad_nul {a: "\\\\u0000"}\n';
});

# wait_for($sql, $expected, $deadline): polls until $sql gives $expected or
# the epoch second $deadline passes; returns what it last got.
sub wait_for
{
	my ($query, $expected, $deadline) = @_;
	my $got;
	for (;;)
	{
		$got = sql($query);
		last if $got eq $expected || time > $deadline;
		usleep(100_000);
	}
	return $got;
}

# next_boundary(): the epoch second of the next minute boundary, at least
# 10 s away (to set things up before it).
sub next_boundary
{
	my $now = sql(q{SELECT extract(epoch FROM clock_timestamp())});
	my $b = (int($now / 60) + 1) * 60;
	$b += 60 if $b - $now < 10;
	return $b;
}

# cron jobs of the minute starting at epoch $m, and how late each was added
sub cron_jobs_of
{
	my ($m) = @_;
	return qq{
SELECT coalesce(string_agg(task_identifier || ':' || (created_at - run_at < interval '5 s'),
	',' ORDER BY task_identifier), '')
  FROM graphile_worker.jobs
 WHERE run_at = to_timestamp($m) AND task_identifier IN ('keyed', 'plain')};
}

# schedule_ontime($m): a job due 5 s after the boundary $m; returns its id.
sub schedule_ontime
{
	my ($m) = @_;
	return sql(qq{SELECT id FROM graphile_worker.add_job('ontime',
		run_at => to_timestamp($m) + interval '5 s')});
}

sub started_on_time
{
	my ($job, $m, $what) = @_;
	my $got = wait_for(
		qq{SELECT count(*) FROM public.started WHERE job_id = $job}, '1', $m + 20);
	is($got, '1', "$what: the scheduled job $job ran");
	my $late = sql(qq{SELECT extract(epoch FROM at - run_at) FROM public.started
		WHERE job_id = $job});
	ok($late ne '' && $late < 3,
		"$what: it started $late s after its run_at (< 3 s): the supervisor's timer woke a worker");
}

# ---------------------------------------------------------------- a)
my $m1 = next_boundary();
my $squat = $node->background_psql($db);
$squat->query_safe(q{BEGIN});
$squat->query_safe(q{
SELECT pg_advisory_xact_lock(1735852033, hashtext('cronkey')),
       pg_advisory_xact_lock((1735852033::bigint << 32) | (hashtext('cronkey')::bigint & 4294967295))});
my $job1 = schedule_ontime($m1);
my $offset = -s $node->logfile;
is(wait_for(cron_jobs_of($m1), 'keyed:true,plain:true', $m1 + 15),
	'keyed:true,plain:true',
	'a: with the key\'s SQL advisory locks held, keyed and plain fire at the boundary (added within 5 s)');
started_on_time($job1, $m1, 'a');
like(slurp_file($node->logfile, $offset),
	qr/WARNING:  could not fire crontab entry "bad_nul" \(line 4\) for [-0-9T:.]+Z: unsupported Unicode escape sequence/,
	'a: the bad entry is skipped with a WARNING naming it');
$squat->query_safe('COMMIT');
$squat->quit;

# ---------------------------------------------------------------- b)
my $m2 = next_boundary();
my $holder = $node->background_psql($db);
$holder->query_safe(q{BEGIN});
$holder->query_safe(q{SELECT graphile_worker.add_job('other', job_key => 'cronkey')});
my $job2 = schedule_ontime($m2);
$offset = -s $node->logfile;
is(wait_for(cron_jobs_of($m2), 'plain:true', $m2 + 15), 'plain:true',
	'b: with the key held by an open add_job, plain fires at the boundary (within 5 s)');
started_on_time($job2, $m2, 'b');
like(slurp_file($node->logfile, $offset),
	qr/graphile_worker will fire crontab entry "keyed" \(line 2\) for [-0-9T:.]+Z later: canceling statement due to lock timeout/,
	'b: the keyed entry is deferred, with a LOG line saying why');
is(sql(cron_jobs_of($m2)), 'plain:true', 'b: and not fired while the key is held');
$holder->query_safe('COMMIT');
$holder->quit;
my $keyed = qq{
SELECT count(*) || '|' || coalesce(min(t.identifier), '') || '|'
	|| coalesce(min(payload::json->'_cron'->>'ts'), '')
  FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
 WHERE j.key = 'cronkey' AND j.run_at = to_timestamp($m2)};
my $ts2 = sql(qq{SELECT to_char(to_timestamp($m2) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS".000Z"')});
is(wait_for($keyed, "1|keyed|$ts2", $m2 + 50), "1|keyed|$ts2",
	'b: after the commit the keyed entry fires for that minute, once, replacing the holder\'s job');
is(sql(qq{SELECT count(*) FROM graphile_worker._private_known_crontabs
	WHERE last_execution = to_timestamp($m2) AND identifier IN ('keyed', 'plain', 'bad_nul')}),
	'3', 'b: every entry counts as fired for the minute (bad_nul as skipped)');
my $warned = () = slurp_file($node->logfile, $offset) =~
  /could not fire crontab entry "bad_nul" \(line 4\) for \Q$ts2\E/g;
is($warned, 1, 'b: the bad entry was warned about once for the minute, not at each retry');

$node->stop;
done_testing();
