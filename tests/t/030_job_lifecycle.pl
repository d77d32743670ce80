# 030_job_lifecycle.pl: the life of a job run by the background workers.
#
# Against a server with graphile_worker preloaded (a launcher, a supervisor
# and graphile_worker.concurrency job workers for the database), proves that
#   1. a job runs once and its row is deleted; json and jsonb handlers get
#      the exact payload, and (payload, job) handlers get the claimed
#      graphile_worker.jobs row (id, attempts = 1, task, queue, ...);
#   2. a handler's writes commit together with the job's deletion, and a
#      failing handler's writes are rolled back while the job stays, with
#      attempts 1 and its error recorded;
#   3. a failed job is retried: exact attempts, exact last_error (message,
#      DETAIL, HINT and CONTEXT lines of a RAISE), run_at set to the time of
#      failure + exp(1) s, and the second attempt starts at that run_at (not
#      before, and promptly);
#   4. after max_attempts failed attempts the job stays, permanently failed
#      (attempts = max_attempts, unlocked) and is never run again, even
#      once its last run_at has long passed;
#   5. with one worker, jobs are run in priority then run_at order;
#   6. jobs of one named queue never run at the same time (with 4 workers),
#      while jobs of two different queues do;
#   7. graphile_worker.forbidden_flags keeps flagged jobs from being claimed
#      until the setting is cleared (reload only);
#  7b. graphile_worker.synchronous_commit = off makes job transactions
#      commit asynchronously (the handler sees synchronous_commit off);
#   8. a job added by a transaction that rolled back never runs;
#   9. jobs whose task has no handler function are never claimed (not even
#      touched) while other jobs run and the poll comes round;
#  10. a handler function created while the workers run is used without
#      any restart, (b) even when it is committed while a worker is
#      rebuilding its list of handlers from a snapshot older than the
#      function (the worker is held there by a lock on pg_extension).
# Attempts that fail roll back the handler's writes, so attempts and their
# times are also recorded in sequences (nextval and setval are not undone
# by a rollback).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GwTest;

my $node = start_node('lifecycle', conf => q{
max_worker_processes = 16
# The workers start paused, so that they first read the handler functions
# once all of them exist (10b is the race this avoids here).
graphile_worker.paused = on
});
my $db = create_db($node, 'gw');

sub sql { return $node->safe_psql($db, $_[0]); }

# Every wait: poll_query_until with its default deadline, and the wait
# itself is an assertion (what was awaited did happen).  Once one wait has
# timed out the script has failed anyway; the later waits then give up
# after about 5 s each, so that a broken build fails in minutes, not hours,
# while every later check still reports.
my $a_wait_timed_out = 0;
sub wait_for
{
	my ($query, $what) = @_;
	local $PostgreSQL::Test::Utils::timeout_default = 5
	  if $a_wait_timed_out;
	my $done = $node->poll_query_until($db, $query);
	$a_wait_timed_out = 1 unless $done;
	return ok($done, $what);
}

# Changes settings (ALTER SYSTEM) and reloads.
sub set_conf
{
	my (%set) = @_;
	my $s = '';
	for my $k (sort keys %set)
	{
		$s .= defined $set{$k}
		  ? "ALTER SYSTEM SET graphile_worker.$k = '$set{$k}';\n"
		  : "ALTER SYSTEM RESET graphile_worker.$k;\n";
	}
	sql($s . 'SELECT pg_catalog.pg_reload_conf();');
	return;
}

my $workers_q = job_workers_sql();

# Proves that a claim statement ran after this point: a job inserted
# straight into the table (no commit-time wake-up, so it is normally the
# poll that finds it) for the 'rec' handler, at priority 0 and run_at now(),
# has run.  Any claimable job of priority <= 0 and earlier run_at would have
# been claimed before it.
my $poll_no = 0;
sub poll_cycle_passes
{
	my ($why) = @_;
	my $tag = 'poll_' . ++$poll_no;
	sql(qq{
INSERT INTO graphile_worker._private_tasks (identifier) VALUES ('rec')
	ON CONFLICT DO NOTHING;
INSERT INTO graphile_worker._private_jobs (task_id, payload)
	SELECT id, '{"tag": "$tag"}' FROM graphile_worker._private_tasks
	 WHERE identifier = 'rec';});
	return wait_for(
		qq{SELECT count(*) = 1 FROM public.handler_log WHERE tag = '$tag'},
		"$why: a poll claimed a job inserted without wake-up ($tag)");
}

# --- Setup: tables, handlers ----------------------------------------------
sql(q{
CREATE TABLE public.handler_log (
	seq bigserial PRIMARY KEY,
	task text NOT NULL,
	tag text,
	job_id bigint,
	job jsonb,
	payload text,
	at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE public.writes (tag text NOT NULL);
CREATE TABLE public.intervals (queue text, n int, started timestamptz,
	ended timestamptz);
CREATE SEQUENCE public.flaky_runs;
CREATE SEQUENCE public.flaky_t1;
CREATE SEQUENCE public.flaky_t2;
CREATE SEQUENCE public.flaky_t3;
CREATE SEQUENCE public.doomed_runs;
CREATE SEQUENCE public.write_fail_runs;

-- stamp(seq) records clock_timestamp() (in microseconds since the epoch)
-- in a sequence, which no rollback undoes; stamped(seq) reads it back.
CREATE FUNCTION public.stamp(seq regclass) RETURNS void LANGUAGE plpgsql AS $$
begin
  perform pg_catalog.setval(seq,
    (extract(epoch from pg_catalog.clock_timestamp()) * 1000000)::bigint);
end
$$;
CREATE FUNCTION public.stamped(seq regclass) RETURNS timestamptz LANGUAGE sql AS
$$ SELECT timestamptz 'epoch' + pg_catalog.pg_sequence_last_value(seq) * interval '1 microsecond' $$;

-- 1: payload and job row
CREATE FUNCTION graphile_worker_tasks.echo_json(payload json) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, payload) VALUES ('echo_json', payload::text) $$;
CREATE FUNCTION graphile_worker_tasks.echo_jsonb(payload jsonb) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, payload) VALUES ('echo_jsonb', payload::text) $$;
CREATE FUNCTION graphile_worker_tasks.echo_job(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
begin
  insert into public.handler_log (task, job_id, job, payload)
    values ('echo_job', job.id, pg_catalog.to_jsonb(job), payload::text);
end
$$;
CREATE FUNCTION graphile_worker_tasks.echo_jsonb_job(payload jsonb, job graphile_worker.jobs)
RETURNS void LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, job_id, job, payload)
   VALUES ('echo_jsonb_job', job.id, pg_catalog.to_jsonb(job), payload::text) $$;

-- 2: writes commit or roll back with the job
CREATE FUNCTION graphile_worker_tasks.write_ok(payload json) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.writes (tag) VALUES (payload->>'tag') $$;
CREATE FUNCTION graphile_worker_tasks.write_fail(payload json) RETURNS void
LANGUAGE plpgsql AS $$
begin
  insert into public.writes (tag) values (payload->>'tag');
  perform pg_catalog.nextval('public.write_fail_runs');
  raise exception 'write_fail gave up after writing %', payload->>'tag';
end
$$;

-- 3: fails once, then succeeds
CREATE FUNCTION graphile_worker_tasks.flaky(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
begin
  perform pg_catalog.nextval('public.flaky_runs');
  perform public.stamp(('public.flaky_t' || job.attempts)::regclass);
  if job.attempts < 2 then
    raise exception 'flaky attempt % failed', job.attempts
      using detail = 'payload was ' || payload::text,
            hint = 'the next attempt succeeds';
  end if;
  insert into public.handler_log (task, tag, job_id, job)
    values ('flaky', payload->>'tag', job.id, pg_catalog.to_jsonb(job));
end
$$;

-- 4: always fails
CREATE FUNCTION graphile_worker_tasks.doomed(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
begin
  perform pg_catalog.nextval('public.doomed_runs');
  raise exception 'doomed attempt % of %', job.attempts, job.max_attempts
    using detail = 'tag ' || (payload->>'tag'),
          hint = 'there is no cure';
end
$$;

-- 5: records the order
CREATE FUNCTION graphile_worker_tasks.ordered(payload json) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, tag) VALUES ('ordered', payload->>'name') $$;

-- 6: records its running interval
CREATE FUNCTION graphile_worker_tasks.timed(payload json) RETURNS void
LANGUAGE plpgsql AS $$
declare
  started timestamptz := pg_catalog.clock_timestamp();
begin
  perform pg_catalog.pg_sleep(0.05);
  insert into public.intervals (queue, n, started, ended)
    values (payload->>'queue', (payload->>'n')::int, started,
            pg_catalog.clock_timestamp());
end
$$;

-- 7..10: records a tag
CREATE FUNCTION graphile_worker_tasks.rec(payload json) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, tag) VALUES ('rec', payload->>'tag') $$;
});

wait_for("SELECT ($workers_q) = '4:paused'",
	'four job workers (the default concurrency), paused');
set_conf(paused => 'off');
wait_for("SELECT ($workers_q) = '4:idle'", 'unpaused: four idle job workers');

# A job whose task has no handler, there from the start (see 9).
my $orphan = sql(q{
SELECT id FROM graphile_worker.add_job('no_such_task', '{"tag": "orphan"}',
	run_at => '2020-01-01 00:00:00+00')});

# --- 3 and 4 start first: their retries wait exp(1) s ------------------
my $flaky  = sql(q{SELECT id FROM graphile_worker.add_job('flaky', '{"tag": "flaky"}')});
my $doomed = sql(q{
SELECT id FROM graphile_worker.add_job('doomed', '{"tag": "doomed"}', max_attempts => 2)});

# --- 1. payloads and the job row ------------------------------------------
my $json_in = '{"b": 2,  "a":[1, 2.50, "x"], "s": "say \"hi\"", "n": null}';
my $jsonb_out = '{"a": [1, 2.50, "x"], "b": 2, "n": null, "s": "say \"hi\""}';
my %id;
$id{echo_json}  = sql(qq{SELECT id FROM graphile_worker.add_job('echo_json', '$json_in')});
$id{echo_jsonb} = sql(qq{SELECT id FROM graphile_worker.add_job('echo_jsonb', '$json_in')});
$id{echo_job}   = sql(qq{
SELECT id FROM graphile_worker.add_job('echo_job', '$json_in', queue_name => 'q_echo',
	job_key => 'echo-key', priority => 3, max_attempts => 7, flags => ARRAY['f1', 'f2'])});
$id{echo_jsonb_job} = sql(qq{
SELECT id FROM graphile_worker.add_job('echo_jsonb_job', '$json_in')});
my $echo_ids = join(',', values %id);

wait_for(qq{
SELECT count(*) = 4 FROM public.handler_log WHERE task LIKE 'echo%'},
	'1: the four echo jobs ran');
is(sql(qq{SELECT count(*) FROM graphile_worker._private_jobs WHERE id IN ($echo_ids)}),
	'0', '1: their job rows are deleted');
is(sql(q{SELECT task, count(*) FROM public.handler_log WHERE task LIKE 'echo%'
	GROUP BY task ORDER BY task}),
	"echo_job|1\necho_json|1\necho_jsonb|1\necho_jsonb_job|1",
	'1: each echo handler ran exactly once');
is(sql(q{SELECT payload FROM public.handler_log WHERE task = 'echo_json'}),
	$json_in, '1: a (payload json) handler gets the payload text exactly as added');
is(sql(q{SELECT payload FROM public.handler_log WHERE task = 'echo_jsonb'}),
	$jsonb_out, '1: a (payload jsonb) handler gets the payload as jsonb');
is(sql(q{SELECT payload FROM public.handler_log WHERE task = 'echo_job'}),
	$json_in, '1: a (payload json, job) handler gets the exact payload');
is(sql(q{SELECT payload FROM public.handler_log WHERE task = 'echo_jsonb_job'}),
	$jsonb_out, '1: a (payload jsonb, job) handler gets the payload as jsonb');
is( sql(q{
SELECT job_id, job->>'id', job->>'attempts', job->>'task_identifier',
	job->>'queue_name', job->>'priority', job->>'max_attempts', job->>'key',
	job->'flags', job->>'last_error', job->>'revision',
	job->>'locked_at' IS NOT NULL, job->>'locked_by' IS NOT NULL
  FROM public.handler_log WHERE task = 'echo_job'}),
	"$id{echo_job}|$id{echo_job}|1|echo_job|q_echo|3|7|echo-key|"
	  . '{"f1": true, "f2": true}||0|t|t',
	'1: the job row: id, attempts 1, task, queue, priority, max_attempts, key, flags, locked');
is( sql(q{
SELECT job_id, job->>'id', job->>'attempts', job->>'task_identifier',
	job->'queue_name', job->>'priority', job->>'max_attempts', job->'key',
	job->'flags'
  FROM public.handler_log WHERE task = 'echo_jsonb_job'}),
	"$id{echo_jsonb_job}|$id{echo_jsonb_job}|1|echo_jsonb_job|null|0|25|null|null",
	'1: the job row of a job without queue, key and flags (jsonb handler)');

# --- 2. writes commit with the completion, roll back with a failure -------
my $w_ok = sql(q{SELECT id FROM graphile_worker.add_job('write_ok', '{"tag": "committed"}')});
my $w_fail = sql(q{
SELECT id FROM graphile_worker.add_job('write_fail', '{"tag": "rolled_back"}', max_attempts => 1)});

# Whichever of the two effects becomes visible first, the other must be
# visible in the same snapshot.
wait_for(qq{
SELECT EXISTS (SELECT FROM public.writes WHERE tag = 'committed')
    OR NOT EXISTS (SELECT FROM graphile_worker._private_jobs WHERE id = $w_ok)},
	'2: the write_ok job completed');
is( sql(qq{
SELECT (SELECT count(*) FROM public.writes WHERE tag = 'committed'),
	(SELECT count(*) FROM graphile_worker._private_jobs WHERE id = $w_ok)}),
	'1|0', '2: the handler\'s row and the job\'s deletion are visible together');

wait_for(qq{
SELECT last_error IS NOT NULL FROM graphile_worker._private_jobs WHERE id = $w_fail},
	'2: the write_fail job failed');
is( sql(qq{
SELECT attempts, max_attempts, locked_by IS NULL, locked_at IS NULL, last_error
  FROM graphile_worker._private_jobs WHERE id = $w_fail}),
	"1|1|t|t|write_fail gave up after writing rolled_back\n"
	  . 'CONTEXT: PL/pgSQL function graphile_worker_tasks.write_fail(json) line 5 at RAISE',
	'2: the failed job is still there: attempts 1, unlocked, its error recorded');
is(sql(q{SELECT pg_catalog.pg_sequence_last_value('public.write_fail_runs')}),
	'1', '2: the failing handler ran once (past its insert)');
is(sql(q{SELECT count(*) FROM public.writes WHERE tag = 'rolled_back'}),
	'0', '2: the failed attempt\'s write was rolled back');

# --- 3. retry with backoff --------------------------------------------------
wait_for(qq{
SELECT last_error IS NOT NULL AND locked_by IS NULL
  FROM graphile_worker._private_jobs WHERE id = $flaky},
	'3: the flaky job failed once');
my $flaky_err1 =
    "flaky attempt 1 failed\n"
  . "DETAIL: payload was {\"tag\": \"flaky\"}\n"
  . "HINT: the next attempt succeeds\n"
  . 'CONTEXT: PL/pgSQL function graphile_worker_tasks.flaky(json,graphile_worker.jobs) line 6 at RAISE';
is( sql(qq{
SELECT attempts, locked_by IS NULL, locked_at IS NULL, last_error
  FROM graphile_worker.jobs WHERE id = $flaky}),
	"1|t|t|$flaky_err1",
	'3: after the first failure: attempts 1, unlocked, last_error = message + DETAIL, HINT, CONTEXT');
my $run_at1 = sql(qq{SELECT run_at FROM graphile_worker.jobs WHERE id = $flaky});
my $backoff = sql(qq{
SELECT round(extract(epoch FROM '$run_at1'::timestamptz
	- public.stamped('public.flaky_t1'))::numeric, 3)});
note("run_at after the first failure - time of failure = $backoff s (exp(1) = 2.718)");
ok($backoff > 2.718 - 0.25 && $backoff <= 2.718 + 0.05,
	'3: run_at after the first failure is the time of failure + exp(1) s');
is(sql(q{SELECT pg_catalog.pg_sequence_last_value('public.flaky_runs')}),
	'1', '3: one attempt so far');

wait_for(qq{
SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs WHERE id = $flaky)},
	'3: the flaky job succeeded on a retry');
is( sql(qq{
SELECT job->>'attempts', job->>'last_error'
  FROM public.handler_log WHERE task = 'flaky'}),
	"2|$flaky_err1", '3: the second attempt saw attempts 2 and the first error');
is(sql(q{SELECT pg_catalog.pg_sequence_last_value('public.flaky_runs')}),
	'2', '3: exactly two attempts');
my $late_by = sql(qq{
SELECT round(extract(epoch FROM public.stamped('public.flaky_t2')
	- '$run_at1'::timestamptz)::numeric, 3)});
note("second attempt started $late_by s after the run_at set by the first failure");
is( sql(qq{
SELECT public.stamped('public.flaky_t2') >= '$run_at1'::timestamptz,
	pg_catalog.pg_sequence_last_value('public.flaky_t3') IS NULL}),
	't|t', '3: the second attempt started at or after that run_at, not before');
ok($late_by < 1,
	'3: and promptly (within 1 s: the supervisor\'s timer, not the 2 s poll)');

# --- 4. permanent failure after max_attempts -------------------------------
my $doomed_err = sub {
	my ($n) = @_;
	return "doomed attempt $n of 2\n"
	  . "DETAIL: tag doomed\n"
	  . "HINT: there is no cure\n"
	  . 'CONTEXT: PL/pgSQL function graphile_worker_tasks.doomed(json,graphile_worker.jobs) line 4 at RAISE';
};
wait_for(qq{
SELECT attempts = 2 AND last_error IS NOT NULL AND locked_by IS NULL
  FROM graphile_worker._private_jobs WHERE id = $doomed},
	'4: the doomed job failed its second attempt');
is( sql(qq{
SELECT attempts, max_attempts, locked_by IS NULL, locked_at IS NULL, last_error
  FROM graphile_worker.jobs WHERE id = $doomed}),
	'2|2|t|t|' . $doomed_err->(2),
	'4: permanently failed: attempts 2 = max_attempts, locked_by NULL, last error');
is(sql(q{SELECT pg_catalog.pg_sequence_last_value('public.doomed_runs')}),
	'2', '4: the handler ran exactly twice');
my $doomed_run_at = sql(qq{SELECT run_at FROM graphile_worker.jobs WHERE id = $doomed});

# --- 5. priority, then run_at order -----------------------------------------
set_conf(concurrency => 1, paused => 'on');
wait_for("SELECT ($workers_q) = '1:paused'", '5: one job worker left, paused');
sql(q{
SELECT graphile_worker.add_job('ordered', json_build_object('name', n),
	priority => p, run_at => now() - age)
  FROM (VALUES ('a', 0, interval '5 min'), ('b', -5, interval '1 min'),
	('c', 10, interval '60 min'), ('d', 0, interval '10 min'),
	('e', -5, interval '3 min'), ('f', 3, interval '30 s'),
	('g', 0, interval '1 s'), ('h', 10, interval '61 min')) AS v(n, p, age)});
is(sql(q{SELECT count(*) FROM graphile_worker.jobs
	WHERE task_identifier = 'ordered' AND attempts = 0 AND locked_by IS NULL}),
	'8', '5: while paused, eight ordered jobs wait');
set_conf(paused => 'off');
wait_for(q{SELECT count(*) = 8 FROM public.handler_log WHERE task = 'ordered'},
	'5: the eight ordered jobs ran');
is_deeply(
	[ split /\n/, sql(q{SELECT tag FROM public.handler_log WHERE task = 'ordered' ORDER BY seq}) ],
	[qw(e b d a g f h c)],
	'5: run in priority then run_at order: e b d a g f h c');

# --- 6. named queues -----------------------------------------------------
set_conf(concurrency => undef, paused => 'off');
wait_for("SELECT ($workers_q) = '4:idle'", '6: four idle job workers again');
sql(q{
SELECT graphile_worker.add_jobs(array_agg(ROW('timed',
	json_build_object('queue', q, 'n', n), q, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
	ORDER BY n, q))
  FROM (SELECT 'serial_q' AS q, n FROM generate_series(1, 8) AS n
	UNION ALL SELECT 'other_q', n FROM generate_series(1, 4) AS n) AS s});
wait_for(q{SELECT count(*) = 12 FROM public.intervals},
	'6: the twelve queued jobs ran');
is( sql(q{
SELECT queue, count(*), count(DISTINCT n) FROM public.intervals GROUP BY queue ORDER BY queue}),
	"other_q|4|4\nserial_q|8|8", '6: every job of both queues ran once');
is(sql(q{SELECT count(*) FROM graphile_worker.jobs WHERE queue_name IN ('serial_q', 'other_q')}),
	'0', '6: no job of the queues is left');
is( sql(q{
SELECT count(*) FROM public.intervals a JOIN public.intervals b
    ON a.queue = b.queue AND a.n < b.n
 WHERE a.started < b.ended AND b.started < a.ended}),
	'0', '6: no two jobs of the same queue overlapped');
my $cross = sql(q{
SELECT count(*) FROM public.intervals a JOIN public.intervals b
    ON a.queue = 'serial_q' AND b.queue = 'other_q'
 WHERE a.started < b.ended AND b.started < a.ended});
note("overlapping pairs across the two queues: $cross");
ok($cross >= 1, '6: jobs of two different queues ran at the same time');
is( sql(q{
SELECT string_agg(queue_name || ':' || coalesce(locked_by, 'unlocked'), ',' ORDER BY queue_name)
  FROM graphile_worker._private_job_queues WHERE queue_name IN ('serial_q', 'other_q')}),
	'other_q:unlocked,serial_q:unlocked', '6: both queues are unlocked');

# --- 7. forbidden flags ------------------------------------------------------
# Paused together with the new flags and poll interval, so that a worker
# that shows "paused" has read all three.
set_conf(forbidden_flags => 'nope,never', paused => 'on', poll_interval => '200ms');
wait_for("SELECT ($workers_q) = '4:paused'", '7: four job workers paused');
my $flagged = sql(q{
SELECT id FROM graphile_worker.add_job('rec', '{"tag": "flagged"}',
	flags => ARRAY['x', 'nope'], priority => -100, run_at => now() - interval '1 day')});
sql(q{
SELECT graphile_worker.add_job('rec', '{"tag": "flag_ok"}', flags => ARRAY['fine']);
SELECT graphile_worker.add_job('rec', '{"tag": "unflagged"}');});
set_conf(paused => 'off');
wait_for(q{
SELECT count(*) = 2 FROM public.handler_log WHERE tag IN ('flag_ok', 'unflagged')},
	'7: jobs with allowed flags or none ran');
poll_cycle_passes('7');
is( sql(qq{
SELECT attempts, locked_by IS NULL, locked_at IS NULL, last_error IS NULL
  FROM graphile_worker._private_jobs WHERE id = $flagged}),
	'0|t|t|t', '7: the job with a forbidden flag was not claimed');
is(sql(q{SELECT count(*) FROM public.handler_log WHERE tag = 'flagged'}),
	'0', '7: its handler did not run');
set_conf(forbidden_flags => undef);
wait_for(qq{
SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs WHERE id = $flagged)},
	'7: after clearing forbidden_flags and a reload, the flagged job ran');
is(sql(q{SELECT count(*) FROM public.handler_log WHERE tag = 'flagged'}),
	'1', '7: its handler ran once');

# --- 7b. graphile_worker.synchronous_commit --------------------------------
# Job transactions (the handler's writes and the completion) commit with
# the server's synchronous_commit, or asynchronously once the setting is
# off; the handler sees the value its transaction will commit with.
sql(q{
CREATE FUNCTION graphile_worker_tasks.sync_probe(payload json) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, tag)
   VALUES ('sync_probe', payload->>'tag' || ':' || current_setting('synchronous_commit')) $$;
SELECT graphile_worker.add_job('sync_probe', '{"tag": "default"}');});
wait_for(q{SELECT count(*) = 1 FROM public.handler_log WHERE task = 'sync_probe'},
	'7b: probe job ran');
is(sql(q{SELECT tag FROM public.handler_log WHERE task = 'sync_probe'}),
	'default:on', '7b: by default job transactions use the server setting');
set_conf(synchronous_commit => 'off');
# The reload reaches each worker asynchronously: add probe jobs one at a
# time until one reports off (each waits for its job; deadline 100 jobs).
my $probe_setting = '';
for my $i (1 .. 100)
{
	sql(qq{SELECT graphile_worker.add_job('sync_probe', '{"tag": "p$i"}')});
	last unless $node->poll_query_until($db,
		qq{SELECT count(*) = 1 FROM public.handler_log WHERE tag LIKE 'p$i:%'});
	$probe_setting = sql(qq{SELECT split_part(tag, ':', 2) FROM public.handler_log WHERE tag LIKE 'p$i:%'});
	last if $probe_setting eq 'off';
}
is($probe_setting, 'off',
	'7b: after the reload, job transactions commit with synchronous_commit off');
set_conf(synchronous_commit => undef);

# --- 8. a rolled-back add_job ---------------------------------------------
my $rb = sql(q{
BEGIN;
SELECT id FROM graphile_worker.add_job('rec', '{"tag": "rolled_back_add"}');
ROLLBACK;});
sql(q{SELECT graphile_worker.add_job('rec', '{"tag": "after_rollback"}')});
wait_for(q{SELECT count(*) = 1 FROM public.handler_log WHERE tag = 'after_rollback'},
	'8: a job added after the rolled-back one ran');
poll_cycle_passes('8');
is(sql(q{SELECT count(*) FROM public.handler_log WHERE tag = 'rolled_back_add'}),
	'0', '8: the job added by the rolled-back transaction never ran');
is(sql(qq{SELECT count(*) FROM graphile_worker._private_jobs WHERE id = $rb}),
	'0', '8: and it does not exist');

# --- 9. no handler: never claimed -------------------------------------------
sql(q{SELECT graphile_worker.add_job('rec', '{"tag": "beside_orphan"}')});
wait_for(q{SELECT count(*) = 1 FROM public.handler_log WHERE tag = 'beside_orphan'},
	'9: a job with a handler ran');
poll_cycle_passes('9');
is( sql(qq{
SELECT task_identifier, attempts, locked_by IS NULL, locked_at IS NULL,
	last_error IS NULL, run_at = '2020-01-01 00:00:00+00', revision
  FROM graphile_worker.jobs WHERE id = $orphan}),
	'no_such_task|0|t|t|t|t|0',
	'9: the job without a handler is untouched (attempts 0, unlocked, run_at unchanged)');

# --- 10. a handler created while the workers run -----------------------------
my $late = sql(q{SELECT id FROM graphile_worker.add_job('late_task', '{"tag": "late"}')});
poll_cycle_passes('10');
is(sql(qq{SELECT attempts FROM graphile_worker._private_jobs WHERE id = $late}),
	'0', '10: before its handler exists, the job is not claimed');
sql(q{
CREATE FUNCTION graphile_worker_tasks.late_task(payload json) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, tag) VALUES ('late_task', payload->>'tag') $$;});
wait_for(qq{
SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs WHERE id = $late)},
	'10: once the handler is created, the job runs without a restart');
is(sql(q{SELECT tag FROM public.handler_log WHERE task = 'late_task'}),
	'late', '10: the new handler ran it, once');

# --- 10b. a handler committed while a worker is reading the handler list ---
# One worker.  A lock on pg_extension holds it inside its handler-list
# rebuild (get_extension_oid comes first), after its transaction snapshot
# was taken; the new function commits meanwhile, and its invalidation
# reaches the worker only when it gets the lock.  The worker must not end
# up with a list that lacks the function and counts as up to date.
# From PostgreSQL 18 on, get_extension_oid reads a catalog cache, and a
# worker that has the extension's row cached takes no lock on pg_extension:
# a no-op update of that row, committed first, drops it from every
# backend's cache, so that the worker's next lookup reads the table, as it
# always does up to 17.  While the lock is held, everything goes through a
# session opened before, since a new connection may have to read
# pg_extension too.
set_conf(concurrency => 1);
wait_for("SELECT ($workers_q) = '1:idle'", '10b: one idle job worker');
my $locker = $node->background_psql($db);
my $writer = $node->background_psql($db);
$locker->query_safe(q{
UPDATE pg_catalog.pg_extension SET extversion = extversion
 WHERE extname = 'graphile_worker';});
$locker->query_safe(
	'BEGIN; LOCK TABLE pg_catalog.pg_extension IN ACCESS EXCLUSIVE MODE;');
$writer->query_safe(q{
CREATE FUNCTION graphile_worker_tasks.race_first(payload json) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, tag) VALUES ('race_first', payload->>'tag') $$;
SELECT graphile_worker.add_job('rec', '{"tag": "race_wake"}');});
is( session_poll(
		$writer, q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'graphile_worker job worker' AND wait_event_type = 'Lock'
   AND datname = current_database()}, 't'),
	't',
	'10b: the worker, rebuilding its handler list, waits for the pg_extension lock');
$writer->query_safe(q{
CREATE FUNCTION graphile_worker_tasks.race_late(payload json) RETURNS void
LANGUAGE sql AS
$$ INSERT INTO public.handler_log (task, tag) VALUES ('race_late', payload->>'tag') $$;});
my $race_late = $writer->query_safe(q{
SELECT id FROM graphile_worker.add_job('race_late', '{"tag": "race_late"}')});
$locker->query_safe('COMMIT;');
$locker->quit;
$writer->quit;
wait_for(q{SELECT count(*) = 1 FROM public.handler_log WHERE tag = 'race_wake'},
	'10b: once the lock is released the worker runs the job that woke it');
wait_for(qq{
SELECT NOT EXISTS (SELECT FROM graphile_worker._private_jobs WHERE id = $race_late)},
	'10b: and the job of the handler committed meanwhile runs too');
is(sql(q{SELECT count(*) FROM public.handler_log WHERE task = 'race_late'}),
	'1', '10b: by its new handler, once');

# --- 4 (end). the permanently failed job is never run again ---------------
wait_for(qq{SELECT now() > '$doomed_run_at'::timestamptz + interval '1 s'},
	'4: the failed job\'s last run_at is more than 1 s in the past');
poll_cycle_passes('4');
is( sql(qq{
SELECT attempts, locked_by IS NULL, last_error,
	pg_catalog.pg_sequence_last_value('public.doomed_runs')
  FROM graphile_worker.jobs WHERE id = $doomed}),
	'2|t|' . $doomed_err->(2) . '|2',
	'4: the permanently failed job was never run a third time');

# --- Whole run: what is left, and nothing ran twice --------------------------
is( sql(q{
SELECT id, task_identifier, attempts, max_attempts, locked_by IS NULL
  FROM graphile_worker.jobs ORDER BY id}),
	join("\n",
		"$orphan|no_such_task|0|25|t",
		"$doomed|doomed|2|2|t",
		"$w_fail|write_fail|1|1|t"),
	'left: only the job without a handler and the two permanently failed ones');
is( sql(q{
SELECT count(*) FROM (SELECT task, tag, payload FROM public.handler_log
	GROUP BY task, tag, payload HAVING count(*) > 1) AS d}),
	'0', 'no job ran twice');
is(sql(q{SELECT count(*) FROM graphile_worker._private_job_queues WHERE locked_by IS NOT NULL}),
	'0', 'no queue is left locked');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC/, 'no server process crashed');
unlike($log, qr/background worker "graphile_worker[^"]*" \(PID \d+\) exited with exit code [1-9]/,
	'no graphile_worker process exited with an error');

$node->stop;
done_testing();
