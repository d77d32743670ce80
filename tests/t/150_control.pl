# 150_control.pl: the control functions with job workers running.
#
#   a. pause_queue: no job of the paused queue starts (its first job, added
#      before the pause, runs to its end); jobs of other queues and without
#      a queue go on; the pause survives a restart; resume_queue lets the
#      rest run, in order.
#   b. pause_task: no new job of the task starts, others go on; resume_task
#      wakes a worker at once (no poll needed).
#   c. cancel_job of a running job whose PL/pgSQL handler catches
#      query_canceled and goes on: it is ended within a second (plus the
#      time to notice), the job is permanently failed with last_error
#      'cancelled by <role>', its attempts = max_attempts, nothing it wrote
#      is kept, and the worker goes on with other jobs.
#   d. cancel_job of a running job that stops when cancelled: same outcome,
#      the worker is not restarted.
#   e. set_queue_concurrency with 4 job workers: with 2, then 3, at most
#      that many jobs of the queue run at once, and that many do (measured
#      from the handlers' own start and end times); jobs of another queue
#      are not held up; back to 1, the queue is serial again, through its
#      row lock (the limit row is gone once no job of it runs).
use strict;
use warnings;

use GwTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = start_node('control', conf => q{
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 60000
graphile_worker.cancel_grace = 5000
});
my $db = create_db($node, 'ctl');
sub sql { return $node->safe_psql($db, $_[0]); }

sql(q{
CREATE TABLE public.ran (job_id bigint, tag text, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE public.ctl (hold boolean);
INSERT INTO public.ctl VALUES (true);
CREATE FUNCTION graphile_worker_tasks.work(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE sql AS $$ INSERT INTO public.ran (job_id, tag) VALUES (job.id, payload->>'tag') $$;
CREATE FUNCTION graphile_worker_tasks.hold(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.ran (job_id, tag) VALUES (job.id, payload->>'tag');
  WHILE (SELECT hold FROM public.ctl) LOOP PERFORM pg_sleep(0.01); END LOOP;
END $$;
CREATE FUNCTION graphile_worker_tasks.stubborn(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.ran (job_id, tag) VALUES (job.id, payload->>'tag');
  LOOP
    BEGIN
      PERFORM pg_sleep(0.05);
    EXCEPTION WHEN query_canceled THEN
      RAISE NOTICE 'ignoring the cancel';
    END;
  END LOOP;
END $$;
});

my $workers = job_workers_sql();

# --- a. pause_queue -----------------------------------------------------------
run_case('a', sub {
	poll_is($node, $db, $workers, '2:idle', 'a: 2 idle job workers');
	my $first = sql(q{SELECT id FROM graphile_worker.add_job('hold', '{"tag":"q-1"}', queue_name => 'q')});
	poll_is($node, $db, "SELECT count(*) FROM graphile_worker.workers WHERE job_id = $first", '1',
		'a: the first job of q runs (and holds)');
	sql(q{SELECT graphile_worker.pause_queue('q')});
	sql(q{SELECT graphile_worker.add_job('work', json_build_object('tag', 'q-' || i), queue_name => 'q')
	        FROM generate_series(2, 4) AS i});
	sql(q{SELECT graphile_worker.add_job('work', '{"tag":"free"}')});
	sql(q{SELECT graphile_worker.add_job('work', '{"tag":"other"}', queue_name => 'other')});
	poll_is($node, $db, "SELECT count(*) FROM public.ran WHERE tag IN ('free', 'other')", '2',
		'a: jobs without a queue and of another queue run while q is paused');
	sql('UPDATE public.ctl SET hold = false');
	poll_is($node, $db, "SELECT count(*) FROM graphile_worker.jobs WHERE id = $first", '0',
		'a: the job of q that ran when q was paused completes');
	stays_is($node, $db, "SELECT count(*) FROM public.ran WHERE tag LIKE 'q-%'", '1', 1.5,
		'a: no other job of the paused queue starts');
	is(sql(q{SELECT locked_by FROM graphile_worker._private_job_queues WHERE queue_name = 'q'}),
		'graphile_worker:paused', 'a: the queue row stays locked by the pause (for Node workers too)');
	$node->restart;
	stays_is($node, $db, "SELECT count(*) FROM public.ran WHERE tag LIKE 'q-%'", '1', 1.5,
		'a: the pause survives a restart');
	is(sql(q{SELECT paused FROM graphile_worker.queues WHERE queue_name = 'q'}), 't',
		'a: the queues view says q is paused');
	sql(q{SELECT graphile_worker.resume_queue('q')});
	sql(q{SELECT graphile_worker.add_job('work', '{"tag":"nudge"}')});
	poll_is($node, $db, "SELECT string_agg(tag, ',' ORDER BY at) FROM public.ran WHERE tag LIKE 'q-%'",
		'q-1,q-2,q-3,q-4', 'a: after resume_queue the rest of q runs, in order');
	sql('UPDATE public.ctl SET hold = true');
});

# --- b. pause_task ------------------------------------------------------------
run_case('b', sub {
	poll_is($node, $db, $workers, '2:idle', 'b: 2 idle job workers');
	sql(q{SELECT graphile_worker.add_job('work', '{"tag":"warm"}')});
	poll_is($node, $db, "SELECT count(*) FROM public.ran WHERE tag = 'warm'", '1', 'b: a job of work runs');
	sql(q{SELECT graphile_worker.pause_task('work')});
	sql(q{SELECT graphile_worker.add_job('work', '{"tag":"paused-task"}')});
	sql(q{SELECT graphile_worker.add_job('stubborn', '{"tag":"x"}', run_at => now() + interval '1 hour')});
	stays_is($node, $db, "SELECT count(*) FROM public.ran WHERE tag = 'paused-task'", '0', 1.5,
		'b: no job of the paused task starts');
	my $t0 = time;
	sql(q{SELECT graphile_worker.resume_task('work')});
	my ($out, $waited) = poll_value($node, $db,
		"SELECT count(*) FROM public.ran WHERE tag = 'paused-task'", '1', 10);
	is($out, '1', 'b: after resume_task its job runs');
	cmp_ok($waited, '<', 2, 'b: at once (resume_task wakes a worker; the poll is 60 s)');
	sql(q{DELETE FROM graphile_worker._private_jobs});
});

# --- c, d. cancel_job of a running job ---------------------------------------
for my $case (['c', 'stubborn', 'a handler that catches the cancel'],
	['d', 'hold', 'a handler that stops when cancelled'])
{
	my ($id, $task, $what) = @$case;
	run_case($id, sub {
		poll_is($node, $db, $workers, '2:idle', "$id: 2 idle job workers");
		my $pids = sql(q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM graphile_worker.workers
		                  WHERE kind = 'job worker'});
		my $job = sql(qq{SELECT id FROM graphile_worker.add_job('$task', '{"tag":"cancel-$id"}',
		                   max_attempts => 5)});
		poll_value($node, $db, "SELECT count(*) FROM graphile_worker.workers WHERE job_id = $job", '1');
		my $t0 = time;
		is(sql(qq{SELECT attempts || '/' || max_attempts FROM graphile_worker.cancel_job($job)}),
			'5/5', "$id: cancel_job of a running job ($what) returns it permanently failed");
		my ($out, $waited) = poll_value($node, $db,
			"SELECT locked_by IS NULL FROM graphile_worker.jobs WHERE id = $job", 't', 20);
		is($out, 't', "$id: the job is unlocked: its handler was ended");
		cmp_ok($waited, '<', 2.5, "$id: within a second of the cancel, plus the time to notice ($waited s)");
		is(sql(qq{SELECT attempts || '/' || max_attempts || '|' || last_error
		            FROM graphile_worker.jobs WHERE id = $job}),
			'5/5|cancelled by ' . superuser_name(),
			"$id: permanently failed, last_error 'cancelled by <role>'");
		is(sql(qq{SELECT count(*) FROM public.ran WHERE job_id = $job}), '0',
			"$id: nothing the cancelled job wrote is kept");
		sql(q{SELECT graphile_worker.add_job('work', '{"tag":"after-cancel"}')});
		poll_is($node, $db, "SELECT count(*) FROM public.ran WHERE tag = 'after-cancel'", '1',
			"$id: other jobs run on");
		sql(q{DELETE FROM public.ran WHERE tag = 'after-cancel'});
		if ($id eq 'd')
		{
			is(sql(q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM graphile_worker.workers
			          WHERE kind = 'job worker'}), $pids, 'd: no worker was restarted');
		}
		sql(qq{DELETE FROM graphile_worker._private_jobs WHERE id = $job});
	});
}

# --- e. set_queue_concurrency ------------------------------------------------
run_case('e', sub {
	sql(q{
CREATE TABLE public.spans (job_id bigint, queue text, started timestamptz, ended timestamptz);
CREATE FUNCTION graphile_worker_tasks.span(payload json, job graphile_worker.jobs) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM pg_sleep(0.25);
  INSERT INTO public.spans VALUES (job.id, job.queue_name, t0, clock_timestamp());
END $$;
ALTER SYSTEM SET graphile_worker.concurrency = 4;
SELECT pg_reload_conf();});
	poll_is($node, $db, $workers, '4:idle', 'e: 4 idle job workers');
	# the most jobs of queue $q running at one moment
	my $overlap = sub {
		my ($q) = @_;
		return sql(qq{
SELECT max((SELECT count(*) FROM public.spans AS b
             WHERE b.queue = '$q' AND b.started <= a.started AND b.ended > a.started))
  FROM public.spans AS a WHERE a.queue = '$q'});
	};
	# a queue exists once a job was added to it
	sql(q{SELECT graphile_worker.add_job('span', '{}', queue_name => 'lim',
	        run_at => now() + interval '1 day')});
	for my $n (2, 3)
	{
		sql(qq{DELETE FROM public.spans;
SELECT graphile_worker.set_queue_concurrency('lim', $n);
SELECT graphile_worker.add_job('span', '{}', queue_name => 'lim') FROM generate_series(1, 12);
SELECT graphile_worker.add_job('span', '{}', queue_name => 'other');});
		poll_is($node, $db, q{SELECT count(*) FROM public.spans}, '13',
			"e: concurrency $n: the 12 jobs of the queue and the other one ran");
		is($overlap->('lim'), $n, "e: concurrency $n: never more than $n at once, and $n at times");
		# the limited queue takes 12 / n rounds of 0.25 s; a batch holds at
		# most one of its jobs, so the other job waits for one at most
		is(sql(q{SELECT CASE WHEN (SELECT max(ended) FROM public.spans WHERE queue = 'other')
		                        < (SELECT max(started) FROM public.spans WHERE queue = 'lim')
		                     THEN 'did not wait' ELSE 'waited' END}),
			'did not wait',
			"e: concurrency $n: the other queue's job ran before the limited queue's last");
	}
	sql(q{DELETE FROM public.spans;
SELECT graphile_worker.set_queue_concurrency('lim', 1);
SELECT graphile_worker.add_job('span', '{}', queue_name => 'lim') FROM generate_series(1, 6);});
	poll_is($node, $db, q{SELECT count(*) FROM public.spans}, '6', 'e: concurrency 1: the jobs ran');
	is($overlap->('lim'), '1', 'e: concurrency 1: one at a time');
	is(sql(q{SELECT count(*) FROM graphile_worker._private_queue_limits}), '0',
		'e: concurrency 1: the limit row is gone: the queue row lock makes it serial');
	is(sql(q{SELECT concurrency FROM graphile_worker.queues WHERE queue_name = 'lim'}), '1',
		'e: the queues view says 1');
	sql(q{DELETE FROM graphile_worker._private_jobs;
ALTER SYSTEM RESET graphile_worker.concurrency;
SELECT pg_reload_conf();});
});

done_testing();
