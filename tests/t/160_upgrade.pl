# 160_upgrade.pl: ALTER EXTENSION graphile_worker UPDATE from 0.1.0 to
# 0.2.0 in a database with a queue, a crontab and handlers, with the
# workers running.
#
# Proves that
#   a) CREATE EXTENSION graphile_worker VERSION '0.1.0' installs 0.1.0, and
#      its workers run jobs (one succeeds, one fails its first attempt);
#   b) ALTER EXTENSION graphile_worker UPDATE brings it to 0.2.0 and keeps,
#      unchanged: every job (keyed ones with their revision, jobs of named
#      queues, the one waiting for its retry, a permanently failed one, a
#      future one, flags), payloads, queues, tasks, known crontabs, the
#      crontab, the identity sequences' positions, the migration ledger
#      (ts included), the row type graphile_worker.jobs that handlers take
#      (same OID) and the handlers themselves;
#   c) the updated extension is the same as a fresh CREATE EXTENSION of
#      0.2.0, catalog fact by catalog fact (tests/sql/describe_extension.sql:
#      members, definitions and attributes of every function, privileges,
#      initial privileges, comments, dump configuration);
#   d) after the update the workers run the queued jobs: the retry succeeds
#      (its attempts go on from where they were), a named queue's jobs run one after another in order, the
#      keyed job runs once with its last payload, a new add_job runs; the
#      failed and the future job stay as they were;
#   e) the crontab carried over fires: a job of its entry is added by the
#      supervisor and run by the workers.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GwTest;

my $wait = 90;
my $node = start_node('upgrade', conf => q{
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 200
graphile_worker.sweep_interval = 1000
});
my $db = create_db($node, 'old', extension => 0);
create_db($node, 'fresh');

# --- a) 0.1.0 and its workers -----------------------------------------------
$node->safe_psql($db, q{
CREATE EXTENSION graphile_worker VERSION '0.1.0';
CREATE SCHEMA graphile_worker_tasks;
CREATE TABLE public.ran (job_id bigint, task text, queue text, attempts int, payload text,
	at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION graphile_worker_tasks.record(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.ran (job_id, task, queue, attempts, payload)
  VALUES (job.id, job.task_identifier, job.queue_name, job.attempts, payload::text);
  PERFORM pg_sleep(0.05);
END $$;
CREATE TABLE public.flaky_fails ();
INSERT INTO public.flaky_fails DEFAULT VALUES;
-- fails as long as public.flaky_fails has a row
CREATE FUNCTION graphile_worker_tasks.flaky(payload jsonb, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM public.flaky_fails) THEN
    RAISE EXCEPTION 'attempt % fails', job.attempts;
  END IF;
  INSERT INTO public.ran (job_id, task, attempts) VALUES (job.id, job.task_identifier, job.attempts);
END $$;
SELECT graphile_worker.set_crontab('* * * * * record ?id=minutely&queue=cron {via: ''cron''}');
});
is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'graphile_worker'}),
	'0.1.0', 'a) version 0.1.0 is installed');
my $first = $node->safe_psql($db, q{SELECT id FROM graphile_worker.add_job('record', '{"n": 0}')});
poll_is($node, $db, "SELECT count(*) FROM public.ran WHERE job_id = $first", '1',
	'a) under 0.1.0 the workers run a job', $wait);
my $flaky = $node->safe_psql($db, q{SELECT id FROM graphile_worker.add_job('flaky', '{}')});
poll_is($node, $db, "SELECT split_part(last_error, E'\\n', 1) FROM graphile_worker.jobs WHERE id = $flaky",
	'attempt 1 fails', 'a) under 0.1.0 a failing job fails its first attempt', $wait);

# Pause the workers, so that the queue stays as it is across the update.
$node->safe_psql('postgres', q{ALTER SYSTEM SET graphile_worker.paused = on});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
poll_is($node, $db, job_workers_sql(), '2:paused', 'the workers are paused', $wait);

$node->safe_psql($db, q{
SELECT graphile_worker.add_job('record', '{"n": 1}', job_key => 'k1');
SELECT graphile_worker.add_job('record', '{"n": 2}', job_key => 'k1', priority => 1);
SELECT graphile_worker.add_job('record', '{"n": 3}', queue_name => 'q1');
SELECT graphile_worker.add_job('record', '{"n": 4}', queue_name => 'q1');
SELECT graphile_worker.add_job('record', '{"n": 5}', queue_name => 'q2', flags => ARRAY['f1']);
SELECT graphile_worker.add_job('record', '{"n": 6}', run_at => now() + interval '1 day');
SELECT graphile_worker.add_jobs(ARRAY[('record', '{"n": 7}', NULL, NULL, 3::smallint, 'k7', NULL, NULL),
	('record', '{"n": 8}', 'q1', NULL, NULL, NULL, NULL, NULL)]::graphile_worker.job_spec[]);
SELECT graphile_worker.add_job('record', '{"n": 9}');
SELECT graphile_worker.permanently_fail_jobs(ARRAY[currval('graphile_worker.jobs_id_seq1')], 'given up');
SELECT graphile_worker.add_job('gone', '{}', queue_name => 'q_gone', job_key => 'gone');
SELECT graphile_worker.remove_job('gone');
});

# Everything compared across the update (cron jobs left out: the
# supervisor may fire a minute meanwhile).
my %queries = (
	jobs => q{SELECT j.*, p.payload FROM graphile_worker.jobs j
		JOIN graphile_worker._private_jobs p USING (id) WHERE j.queue_name IS DISTINCT FROM 'cron' ORDER BY id},
	queues   => q{SELECT * FROM graphile_worker._private_job_queues ORDER BY id},
	tasks    => q{SELECT * FROM graphile_worker._private_tasks ORDER BY id},
	crontab  => q{SELECT crontab, updated_at FROM graphile_worker._private_crontab},
	crontab_view => q{SELECT line, id, task_identifier, schedule, queue_name, payload FROM graphile_worker.crontab},
	known    => q{SELECT identifier, known_since FROM graphile_worker._private_known_crontabs ORDER BY 1},
	sequences => q{SELECT sequencename, last_value FROM pg_sequences
		WHERE schemaname = 'graphile_worker' AND sequencename <> 'jobs_id_seq1' ORDER BY 1},
	ledger   => q{SELECT * FROM graphile_worker.migrations ORDER BY id},
	jobs_type => q{SELECT 'graphile_worker.jobs'::regtype::oid},
	handlers => q{SELECT pg_get_functiondef(p.oid), p.proargtypes FROM pg_proc p
		WHERE p.pronamespace = 'graphile_worker_tasks'::regnamespace ORDER BY proname},);
my $flaky_attempts = $node->safe_psql($db, "SELECT attempts FROM graphile_worker.jobs WHERE id = $flaky");
my %before = map { $_ => $node->safe_psql($db, $queries{$_}) } keys %queries;
like($before{jobs}, qr/given up/, 'the queue holds a permanently failed job');
is(scalar(() = $before{jobs} =~ /\n/g) + 1, 10, 'the queue holds 10 jobs besides cron ones');

# --- b) the update --------------------------------------------------------
$node->safe_psql($db, 'ALTER EXTENSION graphile_worker UPDATE');
is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'graphile_worker'}),
	'0.2.0', 'b) ALTER EXTENSION UPDATE brings it to 0.2.0');
for my $k (sort keys %queries)
{
	is($node->safe_psql($db, $queries{$k}), $before{$k}, "b) $k unchanged");
}

# --- c) the same as a fresh install -----------------------------------------
is(describe_extension($node, $db), describe_extension($node, 'fresh'),
	'c) the updated extension is described exactly as a fresh install of 0.2.0');

# --- d) the workers run the queue -------------------------------------------
$node->safe_psql($db, 'DELETE FROM public.flaky_fails');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET graphile_worker.paused});
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
my $after = $node->safe_psql($db, q{SELECT id FROM graphile_worker.add_job('record', '{"n": 10}')});
poll_is($node, $db, q{SELECT count(*) FROM graphile_worker.jobs WHERE queue_name IS DISTINCT FROM 'cron'
	AND attempts < max_attempts AND run_at < now() + interval '1 hour'}, '0',
	'd) every due job has run', $wait);
is($node->safe_psql($db, "SELECT attempts FROM public.ran WHERE job_id = $flaky"), $flaky_attempts + 1,
	'd) the retry of the job that failed under 0.1.0 succeeds, at the next attempt');
is($node->safe_psql($db, q{SELECT string_agg(payload::json->>'n', ',' ORDER BY at)
	FROM public.ran WHERE queue = 'q1'}), '3,4,8', 'd) queue q1 ran its jobs in order');
is($node->safe_psql($db, q{SELECT count(*) FROM public.ran r1 JOIN public.ran r2
	ON r1.queue = 'q1' AND r2.queue = 'q1' AND r1.job_id < r2.job_id AND r2.at < r1.at + interval '0.05 s'}),
	'0', 'd) one after another');
is($node->safe_psql($db, q{SELECT string_agg(payload, ',') FROM public.ran
	WHERE payload::json->>'n' IN ('1', '2')}), '{"n": 2}', 'd) the keyed job ran once, with its last payload');
is($node->safe_psql($db, q{SELECT string_agg(payload::json->>'n', ',' ORDER BY (payload::json->>'n')::int)
	FROM public.ran WHERE task = 'record' AND queue IS DISTINCT FROM 'cron'}), '0,2,3,4,5,7,8,10',
	'd) every due job ran exactly once, the new one (10) too');
is($node->safe_psql($db, q{SELECT p.payload::text, j.attempts, j.last_error FROM graphile_worker.jobs j
	JOIN graphile_worker._private_jobs p USING (id)
	WHERE j.queue_name IS DISTINCT FROM 'cron' ORDER BY id}),
	qq({"n": 6}|0|\n{"n": 9}|25|given up),
	'd) the future job and the failed one are left as they were');

# --- e) the crontab fires ----------------------------------------------------
poll_is($node, $db, q{SELECT count(*) > 0 FROM public.ran WHERE queue = 'cron'
	AND payload::jsonb @> '{"via": "cron", "_cron": {"backfilled": false}}'}, 't',
	'e) the crontab entry set under 0.1.0 fires and its job runs', $wait);

$node->stop;
done_testing();
