# 162_restored_copy.pl: a database dumped while one of our workers ran a
# job, restored on another server.
#
# Proves that
#   a) the dump holds the job locked by a worker id naming the source
#      server's system identifier, which differs from the copy's;
#   b) restored where graphile_worker.databases leaves the copy out, the
#      copy gets no supervisor and no job worker: nothing runs (its
#      crontab, restored with it, does not fire), the job stays as dumped;
#   c) once the copy may have workers, its supervisor's first sweep
#      releases that job at once (not after Node's 4 hours): unlocked, its
#      queue unlocked, the attempt counted, run_at backed off, last_error
#      naming the worker of the other server; the server log says so; then
#      the copy's workers run it;
#   d) a job locked by a Node worker (pool id) in the same dump is left
#      locked: that rule only releases ids of ours;
#   e) restored in one transaction (psql -1) into a database that has
#      workers from the start, the job is released by the next sweep just
#      the same, and run;
#   f) on the source the job is still locked by its worker, which completes
#      it there: the copy changed nothing on the source.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GwTest;

my $wait = 60;
my $source = start_node('source', conf => q{
cluster_name = 'source'
graphile_worker.concurrency = 1
graphile_worker.poll_interval = 200
});
my $copy = start_node('copy', conf => q{
cluster_name = 'copy'
graphile_worker.concurrency = 1
graphile_worker.poll_interval = 200
graphile_worker.sweep_interval = 1000
graphile_worker.databases = 'postgres'
});

my $db = create_db($source, 'app');
$source->safe_psql($db, q{
CREATE TABLE public.release (go boolean);
CREATE TABLE public.done (job_id bigint, cluster text);
-- on the source it waits for public.release; anywhere else it returns
CREATE FUNCTION graphile_worker_tasks.work(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WHILE current_setting('cluster_name') = 'source'
        AND NOT EXISTS (SELECT FROM public.release) LOOP
    PERFORM pg_sleep(0.05);
  END LOOP;
  INSERT INTO public.done VALUES (job.id, current_setting('cluster_name'));
END $$;
SELECT graphile_worker.set_crontab('* * * * * cron_task');
-- a job held by a Node worker (its task has no handler here)
SELECT graphile_worker.add_job('node_task', '{}');
UPDATE graphile_worker._private_jobs SET locked_by = 'pool-0123456789abcdef01',
	locked_at = now(), attempts = 1
 WHERE task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'node_task');
});
my $job = $source->safe_psql($db,
	q{SELECT id FROM graphile_worker.add_job('work', '{}', queue_name => 'q')});
poll_is($source, $db,
	"SELECT count(*) FROM graphile_worker.workers WHERE job_id = $job AND state = 'busy'",
	'1', 'source: the job is running', $wait);

# --- a) dump mid-job -------------------------------------------------------
my $source_sysid = $source->safe_psql('postgres',
	'SELECT lpad(to_hex(system_identifier), 16, \'0\') FROM pg_control_system()');
my $copy_sysid = $copy->safe_psql('postgres',
	'SELECT lpad(to_hex(system_identifier), 16, \'0\') FROM pg_control_system()');
isnt($copy_sysid, $source_sysid, 'a) the two servers have different system identifiers');
my $locked_by = $source->safe_psql($db, "SELECT locked_by FROM graphile_worker.jobs WHERE id = $job");
like($locked_by, qr/^gw-$source_sysid-[0-9a-f]+-[0-9a-f]+$/,
	'a) the job is locked by a worker id naming the source server');
my $dump = "$PostgreSQL::Test::Utils::tmp_check/162_app.sql";
my $r = run_cmd([ 'pg_dump', '-f', $dump, '-d', $db ], env => pg_env($source, $db));
is($r->{rc}, 0, 'a) pg_dump exits 0');

my $job_sql = "SELECT locked_by IS NOT NULL, attempts, last_error, queue_name FROM graphile_worker.jobs WHERE id = $job";
my $queue_sql = q{SELECT locked_by IS NOT NULL FROM graphile_worker._private_job_queues WHERE queue_name = 'q'};
my $node_job_sql = q{SELECT locked_by, attempts FROM graphile_worker.jobs WHERE task_identifier = 'node_task'};

# Restores the dump into a new database $name of the copy server, in one
# transaction when $single (so that workers it has start only once
# everything is there).
sub restore
{
	my ($name, $single) = @_;
	create_db($copy, $name, extension => 0);
	my $r = run_cmd([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', ($single ? '-1' : ()),
			'-f', $dump, '-d', $name ],
		env => pg_env($copy, $name));
	is($r->{rc}, 0, "restore into $name: psql exits 0");
	return $name;
}

# --- b) restored without workers --------------------------------------------
my $c1 = restore('copy1');
is($copy->safe_psql($c1, $job_sql), 't|1||q', 'b) copy1: the job is restored locked, attempt 1');
stays_is($copy, 'postgres', processes_sql($c1), '0|0', 2,
	'b) copy1: no supervisor, no job worker (graphile_worker.databases leaves it out)');
is($copy->safe_psql($c1, q{SELECT id, schedule FROM graphile_worker.crontab}),
	'cron_task|* * * * *',
	'b) copy1: its crontab came with it (it would fire once the copy has workers)');

# --- c) workers allowed: released at once ------------------------------------
my $off = -s $copy->logfile;
$copy->safe_psql('postgres', q{ALTER SYSTEM SET graphile_worker.databases = 'postgres, copy1, copy2'});
$copy->safe_psql('postgres', 'SELECT pg_reload_conf()');
my ($out, $took) = poll_value($copy, $c1,
	"SELECT locked_by IS NULL FROM graphile_worker.jobs WHERE id = $job", 't', $wait);
is($out, 't', 'c) copy1: the job is released');
cmp_ok($took, '<', 15, 'c) within seconds of the copy getting workers');
is($copy->safe_psql($c1, qq{
SELECT attempts, last_error, run_at - created_at >= interval '2.7 s'
  FROM graphile_worker.jobs WHERE id = $job}),
	"1|worker $locked_by belongs to another PostgreSQL server: this database was copied from it while the job ran|t",
	'c) copy1: attempt counted, last_error names the other server\'s worker, run_at backed off');
is($copy->safe_psql($c1, $queue_sql), 'f', 'c) copy1: its queue is unlocked');
ok(wait_log($copy, qr/graphile_worker released 1 jobs locked by workers of another server/, $off),
	'c) the copy\'s server log says so');
poll_is($copy, $c1, "SELECT cluster FROM public.done WHERE job_id = $job", 'copy',
	'c) copy1: the copy\'s worker runs the job after its backoff', $wait);
is($copy->safe_psql($c1, "SELECT count(*) FROM graphile_worker.jobs WHERE id = $job"), '0',
	'c) copy1: and completes it');

# --- d) the Node worker's lock is left alone ---------------------------------
is($copy->safe_psql($c1, $node_job_sql), 'pool-0123456789abcdef01|1',
	'd) copy1: the job locked by a Node pool id is still locked');

# --- e) restored while the copy runs workers --------------------------------
my $c2 = restore('copy2', 1);
poll_is($copy, $c2, "SELECT cluster FROM public.done WHERE job_id = $job", 'copy',
	'e) copy2: the job is released by a sweep and run by the copy\'s worker', $wait);
is($copy->safe_psql($c2, $node_job_sql), 'pool-0123456789abcdef01|1',
	'e) copy2: the Node lock is left alone');

# --- f) the source ------------------------------------------------------------
is($source->safe_psql($db, "SELECT locked_by, attempts FROM graphile_worker.jobs WHERE id = $job"),
	"$locked_by|1", 'f) source: the job is still locked by its worker');
$source->safe_psql($db, 'INSERT INTO public.release VALUES (true)');
poll_is($source, $db, "SELECT cluster FROM public.done WHERE job_id = $job", 'source',
	'f) source: its worker completes it there', $wait);

$copy->stop;
$source->stop;
done_testing();
