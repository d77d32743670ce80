# 080_timeouts_slots_external.pl: job timeouts, locks of external
# workers, the _private_workers heartbeat table, and running short of
# background worker slots.
#
# Proves that, with graphile_worker in shared_preload_libraries,
#   a) graphile_worker.job_timeout (ALTER SYSTEM + reload) cancels a
#      handler that runs longer: 1000 ms cancels a 30 s handler about 1 s
#      after it starts; the job fails with last_error exactly
#      'job timed out after 1000 ms' plus the PL/pgSQL CONTEXT line, the
#      attempt counts, run_at = start of the run + e^1 s; the retry starts
#      no earlier than that run_at, times out again and, at max_attempts 2,
#      leaves the job permanently failed; the handler ran exactly twice;
#      with job_timeout 0 (positive control) a 1.2 s handler completes;
#   b) ALTER FUNCTION ... SET graphile_worker.job_timeout = '300ms' applies
#      to that task although the global setting is 0 ('job timed out after
#      300 ms', about 0.3 s after the start), while a 1 s job of another task
#      completes;
#   c) a per-task '3s' overrides a shorter global 500 ms: its 1 s job
#      completes while a job of a task without its own setting times out
#      after 500 ms;
#   d) Node's 4-hour rule: a job and its queue locked 5 hours ago by an
#      external worker ('pool-0123456789abcdef01') are released by the next
#      sweep (sweep_interval 1000 ms): locked_at/locked_by NULL, attempts
#      unchanged, last_error unchanged, run_at = greatest(run_at, now()) (a
#      past run_at becomes the sweep's now(), a future one is kept); a job
#      and queue locked 1 hour ago keep their locks exactly;
#   e) the Rust port's rule: a _private_workers row with a heartbeat 10
#      minutes old ('graphile_worker_abc') is deleted by the next sweep and
#      its job and queue released with the attempt refunded (attempts - 1)
#      and last_error 'Job recovered after worker interruption'; a row with a
#      heartbeat 30 s old, its job and its queue are untouched;
#   f) our job workers are rows of _private_workers: ids equal to their
#      worker_id in graphile_worker.workers (and to the locked_by of the job
#      one of them runs), metadata {"pid": <pid>, "kind": "job worker"},
#      heartbeats advancing every sweep; after concurrency 2 -> 1 (reload)
#      the stopped worker's row disappears;
#   g) slot shortage: with max_worker_processes = 5 (restart) and
#      concurrency 6, the 5 slots hold the logical replication launcher, our
#      launcher, the supervisor and 2 job workers; exactly one WARNING
#      'graphile_worker shares 2 job worker slots among databases whose
#      concurrency adds up to 6' (from the launcher, which shares the
#      slots, so the supervisor never fails to start a worker) with HINT
#      'Raise max_worker_processes by 4 ...' is logged over
#      6 s (longer than the 5 s retry), the 2 workers run jobs (each exactly
#      once, both workers used), and neither the supervisor nor the launcher
#      busy-loops (less than 0.2 s of CPU each over those 6 s).
# Jobs that complete insert their id into public.done (UNIQUE).
use strict;
use warnings;

use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use GwTest;

my $node = start_node('timeouts', conf => q{
max_worker_processes = 32
max_parallel_workers_per_gather = 0
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 500
graphile_worker.sweep_interval = 1000
});

# Sets graphile_worker.job_timeout with ALTER SYSTEM, reloads, and waits
# until new sessions see $shown (the postmaster has reloaded and signalled
# every process).
sub set_job_timeout
{
	my ($value, $shown) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$node->safe_psql('postgres', "ALTER SYSTEM SET graphile_worker.job_timeout = $value");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	return poll_is($node, 'postgres', 'SHOW graphile_worker.job_timeout', $shown,
		"job_timeout = $value (ALTER SYSTEM + reload): SHOW says $shown");
}

create_db($node, 'gw');
$node->safe_psql('gw', q{
CREATE TABLE public.done (job_id bigint NOT NULL UNIQUE, task text NOT NULL,
	worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
});
# Three tasks with the same body: count the run in the sequence named by
# the payload's "k" (not rolled back by a failure), sleep payload's "s"
# seconds, record the completion.
for my $task (qw(sleepy capped patient))
{
	$node->safe_psql('gw', qq{
CREATE FUNCTION graphile_worker_tasks.$task(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
  PERFORM pg_catalog.nextval(pg_catalog.format('public.runs_%s', payload->>'k')::regclass);
  PERFORM pg_catalog.pg_sleep((payload->>'s')::float8);
  INSERT INTO public.done (job_id, task, worker) VALUES (job.id, '$task', job.locked_by);
END \$\$;
});
}

# The waits for a job's state poll this session (every 5 ms) until the
# query returns a row.
my $s = $node->background_psql('gw');

# Creates the run counter for key $k and adds a job of $task sleeping
# $secs; returns (job id, client time right after the commit).
sub add_sleeper
{
	my ($task, $k, $secs, $max_attempts) = @_;
	$s->query_safe("CREATE SEQUENCE public.runs_$k");
	my $id = $s->query_safe(qq{
SELECT id FROM graphile_worker.add_job('$task', '{"k": "$k", "s": $secs}',
	max_attempts => $max_attempts)});
	return ($id, time);
}

sub runs { return $node->safe_psql('gw', "SELECT last_value FROM public.runs_$_[0]"); }

my $pattern_ctx = sub {
	my ($task) = @_;
	return qq{CONTEXT: SQL statement "SELECT pg_catalog.pg_sleep((payload->>'s')::float8)"\n}
	  . "PL/pgSQL function graphile_worker_tasks.$task(json,graphile_worker.jobs) line 4 at PERFORM";
};

# ---------------------------------------------------------------- a)
is($node->safe_psql('postgres', 'SHOW graphile_worker.job_timeout'), '0', 'a: job_timeout is 0 by default');
my ($a0) = add_sleeper('sleepy', 'a0', 1.2, 1);
poll_is($node, 'gw', qq{SELECT count(*) FROM public.done WHERE job_id = $a0}, '1',
	'a: positive control: with job_timeout 0 a 1.2 s handler completes');
is(runs('a0') . '|' . $node->safe_psql('gw', qq{SELECT count(*) FROM graphile_worker.jobs WHERE id = $a0}),
	'1|0', 'a: it ran once and its job is deleted');

set_job_timeout(1000, '1s');
my ($a1, $t0) = add_sleeper('sleepy', 'a1', 30, 2);
my $locked_at1 = session_poll($s,
	qq{SELECT locked_at FROM graphile_worker.jobs WHERE id = $a1 AND locked_by IS NOT NULL});
my $first = session_poll($s,
	qq{SELECT attempts || '|' || (locked_by IS NULL) || '|' || (locked_at IS NULL)
	  FROM graphile_worker.jobs WHERE id = $a1 AND last_error IS NOT NULL});
my $waited = time - $t0;
is($first, '1|true|true', 'a: the 30 s job failed at attempt 1 and is unlocked');
ok($waited >= 0.9 && $waited < 1.6,
	sprintf('a: it failed %.3f s after add_job (job_timeout 1000 ms: 0.9 .. 1.6 s)', $waited));
is($node->safe_psql('gw', qq{SELECT last_error FROM graphile_worker.jobs WHERE id = $a1}),
	"job timed out after 1000 ms\n" . $pattern_ctx->('sleepy'),
	"a: last_error is 'job timed out after 1000 ms' and the PL/pgSQL CONTEXT");
my $run_at1 = $node->safe_psql('gw', qq{SELECT run_at FROM graphile_worker.jobs WHERE id = $a1});
my $backoff = $node->safe_psql('gw',
	qq{SELECT extract(epoch FROM '$run_at1'::timestamptz - '$locked_at1'::timestamptz) - exp(1)});
ok($backoff >= 0 && $backoff < 0.2,
	sprintf('a: run_at = start of the run + e^1 s (run_at - locked_at - e = %.3f s, 0 .. 0.2)',
		$backoff));
is(runs('a1'), '1', 'a: the handler ran once so far');

# The retry: claimed at its run_at, times out again, the job is dead.
my $locked_at2 = session_poll($s,
	qq{SELECT locked_at FROM graphile_worker.jobs WHERE id = $a1 AND attempts = 2
	  AND locked_by IS NOT NULL});
is($node->safe_psql('gw', qq{SELECT '$locked_at2'::timestamptz >= '$run_at1'::timestamptz}),
	't', 'a: the retry starts no earlier than the run_at of the failure');
session_poll($s,
	qq{SELECT 1 FROM graphile_worker.jobs WHERE id = $a1 AND attempts = 2 AND locked_by IS NULL});
is( $node->safe_psql(
		'gw', qq{
SELECT attempts || '|' || max_attempts || '|' || (locked_by IS NULL) || '|' || last_error
  FROM graphile_worker.jobs WHERE id = $a1}),
	"2|2|true|job timed out after 1000 ms\n" . $pattern_ctx->('sleepy'),
	'a: the retry timed out too: attempts 2 of 2 (permanently failed), unlocked, same last_error');
is(runs('a1') . '|' . $node->safe_psql('gw', qq{SELECT count(*) FROM public.done WHERE job_id = $a1}),
	'2|0', 'a: the handler ran exactly twice and never completed');

# ---------------------------------------------------------------- b)
set_job_timeout(0, '0');
$node->safe_psql('gw', q{ALTER FUNCTION graphile_worker_tasks.capped(json, graphile_worker.jobs)
	SET graphile_worker.job_timeout = '300ms'});
my ($b2) = add_sleeper('sleepy', 'b2', 1.0, 1);
my ($b1, $tb) = add_sleeper('capped', 'b1', 30, 1);
session_poll($s, qq{SELECT 1 FROM graphile_worker.jobs WHERE id = $b1 AND last_error IS NOT NULL});
$waited = time - $tb;
ok($waited >= 0.25 && $waited < 0.9,
	sprintf("b: the capped job failed %.3f s after add_job ('300ms': 0.25 .. 0.9 s)", $waited));
is( $node->safe_psql(
		'gw', qq{SELECT attempts || '|' || (locked_by IS NULL) || '|' || last_error
	  FROM graphile_worker.jobs WHERE id = $b1}),
	"1|true|job timed out after 300 ms\n" . $pattern_ctx->('capped'),
	"b: per-task SET job_timeout = '300ms' with the global 0: 'job timed out after 300 ms'");
poll_is($node, 'gw',
	qq{SELECT (SELECT count(*) FROM public.done WHERE job_id = $b2 AND task = 'sleepy')
	  || '|' || (SELECT count(*) FROM graphile_worker.jobs WHERE id = $b2)},
	'1|0', 'b: meanwhile a 1 s job of another task (no limit) completes');
is(runs('b1') . '|' . runs('b2'), '1|1', 'b: each handler ran once');

# ---------------------------------------------------------------- c)
set_job_timeout("'500ms'", '500ms');
$node->safe_psql('gw', q{ALTER FUNCTION graphile_worker_tasks.patient(json, graphile_worker.jobs)
	SET graphile_worker.job_timeout = '3s'});
my ($c1) = add_sleeper('patient', 'c1', 1.0, 1);
my ($c2) = add_sleeper('sleepy',  'c2', 30,  1);
poll_is($node, 'gw',
	qq{SELECT (SELECT count(*) FROM public.done WHERE job_id = $c1 AND task = 'patient')
	  || '|' || (SELECT count(*) FROM graphile_worker.jobs WHERE id = $c1)},
	'1|0', "c: per-task '3s' beats the global 500 ms: the 1 s patient job completes");
poll_is($node, 'gw', qq{SELECT attempts || '|' || (locked_by IS NULL) || '|' || last_error
	  FROM graphile_worker.jobs WHERE id = $c2 AND last_error IS NOT NULL},
	"1|true|job timed out after 500 ms\n" . $pattern_ctx->('sleepy'),
	"c: while a task without its own setting times out after the global 500 ms");
is(runs('c1') . '|' . runs('c2'), '1|1', 'c: each handler ran once');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET graphile_worker.job_timeout');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
poll_is($node, 'postgres', 'SHOW graphile_worker.job_timeout', '0', 'c: job_timeout reset to 0');

# ---------------------------------------------------------------- d), e)
# A sweep that starts after time $t (a commit already visible) has run when
# every heartbeat of our job workers is newer than $t.
sub wait_for_sweep_after
{
	my ($t, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return poll_is($node, 'gw', qq{
SELECT count(*) > 0 AND bool_and(last_heartbeat_at > '$t'::timestamptz)
  FROM graphile_worker._private_workers WHERE id LIKE 'gw-%'}, 't', $name);
}

my $offset_d = -s $node->logfile;
my $t_d = $node->safe_psql('gw', q{
BEGIN;
DO $$
BEGIN
  PERFORM graphile_worker.add_job('external_task', '{"n": "old"}', queue_name => 'ext_old',
    job_key => 'ext_old');
  PERFORM graphile_worker.add_job('external_task', '{"n": "old_future"}', job_key => 'ext_old_future',
    run_at => now() + interval '1 day');
  PERFORM graphile_worker.add_job('external_task', '{"n": "recent"}', queue_name => 'ext_recent',
    job_key => 'ext_recent');
  UPDATE graphile_worker._private_jobs
     SET locked_by = 'pool-0123456789abcdef01', locked_at = now() - interval '5 hours',
         attempts = 3, run_at = now() - interval '5 hours', last_error = 'earlier error'
   WHERE key = 'ext_old';
  UPDATE graphile_worker._private_jobs
     SET locked_by = 'pool-0123456789abcdef01', locked_at = now() - interval '5 hours', attempts = 3
   WHERE key = 'ext_old_future';
  UPDATE graphile_worker._private_jobs
     SET locked_by = 'pool-0123456789abcdef01', locked_at = now() - interval '1 hour',
         attempts = 3, run_at = now() - interval '1 hour'
   WHERE key = 'ext_recent';
  UPDATE graphile_worker._private_job_queues
     SET locked_by = 'pool-0123456789abcdef01', locked_at = now() - interval '5 hours'
   WHERE queue_name = 'ext_old';
  UPDATE graphile_worker._private_job_queues
     SET locked_by = 'pool-0123456789abcdef01', locked_at = now() - interval '1 hour'
   WHERE queue_name = 'ext_recent';
  ASSERT (SELECT count(*) FROM graphile_worker._private_jobs
           WHERE locked_by = 'pool-0123456789abcdef01') = 3;
  ASSERT (SELECT count(*) FROM graphile_worker._private_job_queues
           WHERE locked_by = 'pool-0123456789abcdef01') = 2;
END $$;
SELECT now();
COMMIT;
});
my $after_d = $node->safe_psql('gw', 'SELECT clock_timestamp()');
my $ext_jobs = qq{
SELECT string_agg(concat_ws('|', key, coalesce(locked_by, '-'),
	coalesce((locked_at - '$t_d'::timestamptz)::text, '-'), attempts,
	coalesce(last_error, '-'),
	CASE WHEN run_at > '$after_d'::timestamptz AND run_at <= now() THEN 'swept'
	     ELSE (run_at - '$t_d'::timestamptz)::text END), E'\\n' ORDER BY key)
  FROM graphile_worker.jobs WHERE task_identifier = 'external_task'};
my $ext_queues = qq{
SELECT string_agg(concat_ws('|', queue_name, coalesce(locked_by, '-'),
	coalesce((locked_at - '$t_d'::timestamptz)::text, '-')), E'\\n' ORDER BY queue_name)
  FROM graphile_worker._private_job_queues WHERE queue_name LIKE 'ext_%'};
wait_for_sweep_after($after_d, 'd: a sweep ran after the set-up');
is($node->safe_psql('gw', $ext_jobs), join("\n",
	'ext_old|-|-|3|earlier error|swept',
	'ext_old_future|-|-|3|-|1 day',
	'ext_recent|pool-0123456789abcdef01|-01:00:00|3|-|-01:00:00'),
	'd: the 5-hour locks are released (attempts and last_error unchanged; a past run_at '
	  . "becomes the sweep's now(), a future one is kept); the 1-hour lock is untouched");
is($node->safe_psql('gw', $ext_queues), join("\n",
	'ext_old|-|-',
	'ext_recent|pool-0123456789abcdef01|-01:00:00'),
	"d: queue ext_old (locked 5 hours ago) is released, ext_recent's lock (1 hour) is untouched");
like(slurp_file($node->logfile, $offset_d),
	qr/LOG:  graphile_worker released 2 jobs locked more than 4 hours ago/,
	'd: the log says the sweep released 2 jobs locked more than 4 hours ago');
my $after_d2 = $node->safe_psql('gw', 'SELECT clock_timestamp()');
wait_for_sweep_after($after_d2, 'd: another sweep ran');
is($node->safe_psql('gw', $ext_jobs) . "\n" . $node->safe_psql('gw', $ext_queues), join("\n",
	'ext_old|-|-|3|earlier error|swept',
	'ext_old_future|-|-|3|-|1 day',
	'ext_recent|pool-0123456789abcdef01|-01:00:00|3|-|-01:00:00',
	'ext_old|-|-',
	'ext_recent|pool-0123456789abcdef01|-01:00:00'),
	'd: after another sweep the same: the 1-hour locks are still there');

# e) the Rust port's heartbeats
my $offset_e = -s $node->logfile;
my $t_e = $node->safe_psql('gw', q{
BEGIN;
DO $$
BEGIN
  INSERT INTO graphile_worker._private_workers (id, last_heartbeat_at, started_at, metadata)
  VALUES ('graphile_worker_abc', now() - interval '10 minutes', now() - interval '2 hours', '{"rust": 1}'),
         ('graphile_worker_fresh', now() - interval '30 seconds', now() - interval '2 hours', '{"rust": 2}');
  PERFORM graphile_worker.add_job('rust_task', '{}', queue_name => 'rust_stale', job_key => 'rust_stale');
  PERFORM graphile_worker.add_job('rust_task', '{}', queue_name => 'rust_fresh', job_key => 'rust_fresh');
  UPDATE graphile_worker._private_jobs
     SET locked_by = 'graphile_worker_abc', locked_at = now() - interval '10 minutes', attempts = 2,
         run_at = now() - interval '10 minutes'
   WHERE key = 'rust_stale';
  UPDATE graphile_worker._private_jobs
     SET locked_by = 'graphile_worker_fresh', locked_at = now() - interval '30 seconds', attempts = 2,
         run_at = now() - interval '30 seconds'
   WHERE key = 'rust_fresh';
  UPDATE graphile_worker._private_job_queues
     SET locked_by = 'graphile_worker_abc', locked_at = now() - interval '10 minutes'
   WHERE queue_name = 'rust_stale';
  UPDATE graphile_worker._private_job_queues
     SET locked_by = 'graphile_worker_fresh', locked_at = now() - interval '30 seconds'
   WHERE queue_name = 'rust_fresh';
  ASSERT (SELECT count(*) FROM graphile_worker._private_jobs
           WHERE locked_by LIKE 'graphile_worker_%') = 2;
  ASSERT (SELECT count(*) FROM graphile_worker._private_job_queues
           WHERE locked_by LIKE 'graphile_worker_%') = 2;
END $$;
SELECT now();
COMMIT;
});
my $after_e = $node->safe_psql('gw', 'SELECT clock_timestamp()');
my $rust_workers = qq{
SELECT string_agg(id || '|' || (last_heartbeat_at - '$t_e'::timestamptz) || '|' || metadata::text,
	E'\\n' ORDER BY id)
  FROM graphile_worker._private_workers WHERE id NOT LIKE 'gw-%'};
my $rust_jobs = qq{
SELECT string_agg(concat_ws('|', key, coalesce(locked_by, '-'),
	coalesce((locked_at - '$t_e'::timestamptz)::text, '-'), attempts,
	coalesce(last_error, '-'),
	CASE WHEN run_at > '$after_e'::timestamptz AND run_at <= now() THEN 'swept'
	     ELSE (run_at - '$t_e'::timestamptz)::text END,
	CASE WHEN updated_at > '$after_e'::timestamptz THEN 'updated' ELSE 'not updated' END),
	E'\\n' ORDER BY key)
  FROM graphile_worker.jobs WHERE task_identifier = 'rust_task'};
my $rust_queues = qq{
SELECT string_agg(concat_ws('|', queue_name, coalesce(locked_by, '-'),
	coalesce((locked_at - '$t_e'::timestamptz)::text, '-')), E'\\n' ORDER BY queue_name)
  FROM graphile_worker._private_job_queues WHERE queue_name LIKE 'rust_%'};
wait_for_sweep_after($after_e, 'e: a sweep ran after the set-up');
is($node->safe_psql('gw', $rust_workers), 'graphile_worker_fresh|-00:00:30|{"rust": 2}',
	'e: the worker with the 10-minute-old heartbeat is deleted, the fresh one is untouched');
is($node->safe_psql('gw', $rust_jobs), join("\n",
	'rust_fresh|graphile_worker_fresh|-00:00:30|2|-|-00:00:30|not updated',
	'rust_stale|-|-|1|Job recovered after worker interruption|swept|updated'),
	"e: its job is released with the attempt refunded (2 -> 1), last_error "
	  . "'Job recovered after worker interruption', run_at = the sweep's now(); the fresh worker's job is untouched");
is($node->safe_psql('gw', $rust_queues), join("\n",
	'rust_fresh|graphile_worker_fresh|-00:00:30',
	'rust_stale|-|-'),
	"e: its queue is released; the fresh worker's queue is untouched");
like(slurp_file($node->logfile, $offset_e),
	qr/LOG:  graphile_worker removed 1 workers whose heartbeat is older than 5 minutes/,
	'e: the log says the sweep removed 1 worker with a stale heartbeat');

# ---------------------------------------------------------------- f)
my $view_rows = q{
SELECT string_agg(worker_id || '|' || jsonb_build_object('pid', pid, 'kind', 'job worker')::text,
	E'\n' ORDER BY worker_id)
  FROM graphile_worker.workers WHERE kind = 'job worker' AND datname = current_database()};
my $table_rows = q{
SELECT string_agg(id || '|' || metadata::text, E'\n' ORDER BY id)
  FROM graphile_worker._private_workers WHERE id LIKE 'gw-%'};
my $expected_rows = $node->safe_psql('gw', $view_rows);
my @expected_rows = split /\n/, $expected_rows;
is(scalar @expected_rows, 2, 'f: graphile_worker.workers lists 2 job workers');
poll_is($node, 'gw', $table_rows, $expected_rows,
	'f: _private_workers has exactly their rows: id = worker_id, metadata {"pid": <pid>, "kind": "job worker"}');
like($expected_rows, qr/^gw-[0-9a-f]{16}-[0-9a-f]+-[0-9a-f]+\|\{"pid": \d+, "kind": "job worker"\}\n/,
	'f: (the ids look like gw-<system id>-<pid>-<start>)');
is( $node->safe_psql(
		'gw', q{
SELECT count(*) FILTER (WHERE started_at <= last_heartbeat_at
	AND started_at >= pg_postmaster_start_time()
	AND last_heartbeat_at > now() - interval '3 seconds')
  FROM graphile_worker._private_workers WHERE id LIKE 'gw-%'}),
	'2', 'f: started_at after the server start, heartbeats less than 3 s old');
my $beat = $node->safe_psql('gw',
	q{SELECT max(last_heartbeat_at) FROM graphile_worker._private_workers WHERE id LIKE 'gw-%'});
wait_for_sweep_after($beat, 'f: the heartbeats advance (sweep_interval 1000 ms)');

my ($f1) = add_sleeper('sleepy', 'f1', 1.0, 1);
poll_is($node, 'gw', qq{
SELECT j.locked_by = w.worker_id
	AND j.locked_by IN (SELECT id FROM graphile_worker._private_workers)
  FROM graphile_worker.jobs AS j JOIN graphile_worker.workers AS w ON w.job_id = j.id
 WHERE j.id = $f1}, 't',
	"f: the running job's locked_by is its worker's worker_id and a _private_workers id");
poll_is($node, 'gw', qq{SELECT count(*) FROM public.done WHERE job_id = $f1}, '1', 'f: and the job completes');

$node->append_conf('postgresql.conf', 'graphile_worker.concurrency = 1');
$node->reload;
poll_is($node, 'gw', q{SELECT count(*) FROM graphile_worker.workers WHERE kind = 'job worker'},
	'1', 'f: concurrency 1 (reload): 1 job worker is left');
my $left = $node->safe_psql('gw', $view_rows);
ok(index($expected_rows, $left) >= 0, 'f: (one of the two)');
poll_is($node, 'gw', $table_rows, $left,
	"f: the stopped worker's row disappears; the remaining worker's row stays");

# ---------------------------------------------------------------- g)
# 5 slots: logical replication launcher, graphile_worker launcher, the
# supervisor of gw and 2 of its 6 job workers.  Only gw gets a supervisor
# (no probe of postgres competes for a slot).
$s->quit;
$node->append_conf(
	'postgresql.conf', q{
max_worker_processes = 5
graphile_worker.concurrency = 6
graphile_worker.databases = 'gw'
});
my $offset_pre = -s $node->logfile;
$node->stop;
my $offset_g = -s $node->logfile;
$node->start;
my $t_start = time;
my $gw_oid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'gw'});
poll_is($node, 'gw', q{
SELECT string_agg(backend_type || ':' || n, ',' ORDER BY backend_type)
  FROM (SELECT backend_type, count(*) AS n FROM pg_stat_activity
	 WHERE backend_type LIKE 'graphile_worker %' OR backend_type = 'logical replication launcher'
	 GROUP BY 1) AS s},
	'graphile_worker job worker:2,graphile_worker launcher:1,graphile_worker supervisor:1,'
	  . 'logical replication launcher:1',
	'g: max_worker_processes 5: logical replication launcher, launcher, supervisor, 2 job workers');
my $warning =
  qr/WARNING:  graphile_worker shares (\d+) job worker slots among databases whose concurrency adds up to (\d+)\n(?:[^\n]*DETAIL:  [^\n]*\n)?[^\n]*HINT:  ([^\n]*)\n/;
$node->wait_for_log(qr/graphile_worker shares \d+ job worker slots/, $offset_g);

my ($sup_pid) = $node->safe_psql('gw',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'graphile_worker supervisor'});
my ($launcher_pid) = $node->safe_psql('gw',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'graphile_worker launcher'});
my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK());

# utime + stime of $pid in seconds
sub cpu_seconds
{
	my ($pid) = @_;
	my $stat = slurp_file("/proc/$pid/stat");
	$stat =~ s/^.*\)\s+//s;
	my @f = split /\s+/, $stat;
	return ($f[11] + $f[12]) / $hz;
}
my ($sup_cpu0, $launcher_cpu0, $t_cpu0) = (cpu_seconds($sup_pid), cpu_seconds($launcher_pid), time);

# The 2 workers run jobs meanwhile.
$node->safe_psql('gw', 'CREATE SEQUENCE public.runs_g');
my $g_ids = $node->safe_psql('gw', q{
SELECT string_agg(id::text, ',' ORDER BY id) FROM graphile_worker.add_jobs(array_fill(
	ROW('sleepy', '{"k": "g", "s": 0.3}', NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec,
	ARRAY[6]))});
poll_is($node, 'gw', q{SELECT string_agg(job_id::text, ',' ORDER BY job_id) FROM public.done WHERE job_id IN (}
	  . $g_ids . ')', $g_ids, 'g: the 2 workers that fit run the 6 jobs, each exactly once');
is( $node->safe_psql(
		'gw', qq{
SELECT (SELECT count(DISTINCT worker) FROM public.done WHERE job_id IN ($g_ids)) || '|'
	|| (SELECT count(*) FROM public.done d WHERE job_id IN ($g_ids) AND worker NOT IN
		(SELECT worker_id FROM graphile_worker.workers WHERE worker_id IS NOT NULL))
	|| '|' || (SELECT last_value FROM public.runs_g)}),
	'2|0|6', 'g: both live job workers ran some of them; 6 runs');

# 6 s: longer than the supervisor's 5 s retry of the missing workers.
my $rest = 6 - (time - $t_cpu0);
usleep(int($rest * 1_000_000)) if $rest > 0;
my $elapsed = time - $t_cpu0;
my $sup_cpu      = cpu_seconds($sup_pid) - $sup_cpu0;
my $launcher_cpu = cpu_seconds($launcher_pid) - $launcher_cpu0;
ok($sup_cpu < 0.2,
	sprintf('g: the supervisor used %.2f s of CPU in %.1f s (< 0.2 s): no busy loop', $sup_cpu, $elapsed));
ok($launcher_cpu < 0.2,
	sprintf('g: the launcher used %.2f s of CPU in %.1f s (< 0.2 s): no busy loop',
		$launcher_cpu, $elapsed));
my $log_g = slurp_file($node->logfile, $offset_g);
my @warnings = $log_g =~ /graphile_worker (?:shares \d+ job worker slots|could start only)/g;
is(scalar @warnings, 1,
	sprintf('g: exactly one slot WARNING in the %.1f s since the server started', time - $t_start));
like($log_g, $warning, 'g: the WARNING is followed by its HINT');
my ($got_n, $got_m, $hint) = $log_g =~ $warning;
is(join('|', $got_n // '', $got_m // ''), "2|6",
	"g: 'graphile_worker shares 2 job worker slots among databases whose concurrency adds up to 6'");
is($hint,
	'Raise max_worker_processes by 4 (it needs a restart), or lower graphile_worker.concurrency.',
	"g: HINT 'Raise max_worker_processes by 4 ...'");
unlike($log_g, qr/could not start a supervisor/, 'g: the launcher had a slot for the supervisor');
is($node->safe_psql('gw', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'graphile_worker job worker'}),
	'2', 'g: still 2 job workers');
# (a shutdown makes the launchers exit with code 1: not counted)
my $log = slurp_file($node->logfile);
my $ready = index($log, 'database system is ready to accept connections', $offset_g);
my @died = grep { /terminated by signal|exited with exit code [1-9]/ }
  split /\n/, substr($log, 0, $offset_pre) . substr($log, $ready);
is(join("\n", @died), '',
	'no process died or exited with an error code (but for the shutdown of the restart)');

$node->stop;
done_testing();
