# 020_node_interop.pl: the real Node package graphile-worker 0.18.0 (from the
# npm registry) shares the queue with the extension.
#
# Proves that
#   a) the schema Node's own migrations build (graphile-worker --schema-only
#      in a database without the extension) and the one CREATE EXTENSION
#      graphile_worker builds are described identically by
#      tests/sql/describe_schema.sql;
#   b) graphile-worker --schema-only against a database with the extension
#      exits 0 and runs no migration (the ledger, ids 1..20 and their ts, is
#      unchanged);
#   c) a job added by Node's WorkerUtils.addJob lands in our tables with its
#      task, queue, key and payload;
#   d) jobs added by our SQL add_job (one without and one with a queue) are
#      run exactly once by a Node worker (graphile-worker --once), which
#      sees the right payload, id, task, queue and attempt number and
#      deletes them when done, while jobs for task identifiers Node does
#      not know are left untouched, and no job or queue is left locked;
#   e) none of this changes the schema's shape;
#   f) with the same crontab entry in our crontab and in a Node worker's
#      crontab file, a minute both race for is fired once, and the job
#      has the payload Node gives cron jobs;
#   g) a Node worker connected as a role that is not a superuser, with
#      every right on the schema's tables but no row-level security policy,
#      fails ("new row violates row-level security policy for table
#      _private_tasks") and runs nothing (graphile-worker --once still exits
#      0); after graphile_worker.grant_worker(role) it works,
#      and b) to f) run their Node processes as such a role (node_worker);
#      after revoke_worker it fails again.
# Skipped when node/npm are missing or the registry cannot be reached.
use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GwTest;

# --- graphile-worker 0.18.0 in a scratch folder (skips when unavailable) --
my $scratch = install_node_package();
my $gw_bin  = "$scratch/node_modules/.bin/graphile-worker";
my $r;

# --- The cluster ----------------------------------------------------------
my $node = start_node('interop');
create_db($node, 'nodeonly', extension => 0);
create_db($node, 'ext',      tasks     => 0);


# Node connects through the PG* variables (node-postgres takes a socket
# directory as PGHOST), as the cluster's superuser (the OS user) in
# nodeonly, where it creates the schema, and as the role node_worker
# elsewhere (node_run_as runs it as any role).
sub node_run_as
{
	my ($role, $db, @cmd) = @_;
	return run_cmd(
		\@cmd,
		cwd => $scratch,
		env => {
			%{ pg_env($node, $db) },
			PGUSER                => $role,
			DATABASE_URL          => undef,
			GRAPHILE_WORKER_SCHEMA => undef,
			NODE_NO_WARNINGS      => '1',
		},
		timeout => 30);
}

sub node_run
{
	my ($db, @cmd) = @_;
	return node_run_as($db eq 'nodeonly' ? superuser_name() : 'node_worker', $db, @cmd);
}

my $ledger_ids = q{
SELECT string_agg(id::text, ',' ORDER BY id) FROM graphile_worker.migrations};
my $all_ids = join(',', 1 .. 20);

# --- a) Node's own schema and ours have the same shape --------------------
$r = node_run('nodeonly', $gw_bin, '--schema-only');
is($r->{rc}, 0, 'nodeonly: graphile-worker --schema-only exits 0');
like($r->{stdout}, qr/^Schema updated$/m,
	'nodeonly: graphile-worker --schema-only says "Schema updated"');
is($node->safe_psql('nodeonly', $ledger_ids),
	$all_ids, 'nodeonly: Node migrated to 20');
is($node->safe_psql('nodeonly', q{SELECT count(*) FROM pg_extension
	WHERE extname = 'graphile_worker'}), '0', 'nodeonly: no extension there');

my $node_shape = describe_schema($node, 'nodeonly');
my $ext_shape  = describe_schema($node, 'ext');
cmp_ok(scalar(() = $node_shape =~ /\n/g), '>', 50,
	'describe_schema prints a full description');
is($ext_shape, $node_shape,
	'CREATE EXTENSION and Node migrations give the same schema description');

# --- g) a Node worker as a role that is not a superuser -------------------
# node_plain has every right on the tables, but no policy lets it see or
# write a row; node_worker gets grant_worker.
$node->safe_psql('ext', q{
CREATE ROLE node_plain LOGIN;
CREATE ROLE node_worker LOGIN;
GRANT USAGE ON SCHEMA graphile_worker TO node_plain;
GRANT ALL ON ALL TABLES IN SCHEMA graphile_worker TO node_plain;
GRANT ALL ON ALL SEQUENCES IN SCHEMA graphile_worker TO node_plain;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA graphile_worker TO node_plain;
SELECT graphile_worker.grant_worker('node_worker');
});
$ext_shape = describe_schema($node, 'ext');

# --- b) Node sees the extension's schema as migrated ----------------------
my $ledger = q{SELECT id, ts, breaking FROM graphile_worker.migrations
	ORDER BY id};
my $ledger_before = $node->safe_psql('ext', $ledger);
$r = node_run('ext', $gw_bin, '--schema-only');
is($r->{rc}, 0, 'ext: graphile-worker --schema-only exits 0');
like($r->{stdout}, qr/^Schema updated$/m,
	'ext: graphile-worker --schema-only says "Schema updated"');
is($node->safe_psql('ext', $ledger_ids), $all_ids,
	'ext: the ledger still holds exactly ids 1..20');
is($node->safe_psql('ext', $ledger), $ledger_before,
	'ext: no migration ran (ids, ts and breaking unchanged)');

# --- c) Node's addJob writes into our tables ------------------------------
$r = node_run('ext', 'node', "$scratch/add_job.mjs");
is($r->{rc}, 0, 'ext: Node WorkerUtils.addJob script exits 0');
my ($json_line) = grep { /^\{/ } split /\n/, $r->{stdout};
my $added = eval { decode_json($json_line // '') } // {};
is_deeply($added, { id => $added->{id}, task_identifier => 'node_task', key => 'nk' },
	'ext: addJob returned the job with its task identifier and key');
like($added->{id} // '', qr/^[0-9]+$/, 'ext: addJob returned a numeric id');
my $node_job_id = $added->{id} // -1;
is( $node->safe_psql(
		'ext', q{
SELECT id, queue_name, task_identifier, key, priority, attempts,
	max_attempts, revision, flags, locked_at, locked_by, last_error,
	run_at <= now()
  FROM graphile_worker.jobs WHERE task_identifier = 'node_task'}),
	"$node_job_id|q1|node_task|nk|0|0|25|0|||||t",
	'ext: the Node job is in graphile_worker.jobs (queue q1, key nk)');
is( $node->safe_psql(
		'ext',
		"SELECT payload FROM graphile_worker._private_jobs WHERE id = $node_job_id"),
	'{"from":"node"}',
	'ext: the Node job has payload {"from":"node"}');

# --- d) A Node worker runs the jobs our add_job added ---------------------
$node->safe_psql('ext',
	'CREATE TABLE node_results (n int, job_id bigint, task text, queue text, attempts int);'
	  . 'GRANT INSERT ON node_results TO node_plain, node_worker');
my $id42 = $node->safe_psql('ext',
	q{SELECT id FROM graphile_worker.add_job('js_task', '{"n": 42}')});
my $id43 = $node->safe_psql('ext',
	q{SELECT id FROM graphile_worker.add_job('js_task', '{"n": 43}', queue_name => 'qsql')});
$node->safe_psql('ext',
	q{SELECT graphile_worker.add_job('sql_only_task', '{"x": 1}', job_key => 'sk')});

# Jobs Node has no task for: the one from c) and sql_only_task.
my $others = q{
SELECT j.*, p.payload, p.is_available
  FROM graphile_worker.jobs AS j
  JOIN graphile_worker._private_jobs AS p USING (id)
 WHERE j.task_identifier <> 'js_task' ORDER BY j.id};
my $others_before = $node->safe_psql('ext', $others);
my @others_rows = split /\n/, $others_before;
is(scalar @others_rows, 2, 'ext: two jobs for tasks Node does not know');

# g) without a policy, a Node worker with every grant cannot even
# register its tasks, and changes nothing
my $all_jobs = q{SELECT j.*, p.payload FROM graphile_worker.jobs AS j
  JOIN graphile_worker._private_jobs AS p USING (id) ORDER BY id};
my $jobs_before = $node->safe_psql('ext', $all_jobs);
$r = node_run_as('node_plain', 'ext', $gw_bin, '--once');
like($r->{stdout} . $r->{stderr},
	qr/new row violates row-level security policy for table "_private_tasks"/,
	'g) with the row-level security error of the issue');
is($node->safe_psql('ext', $all_jobs), $jobs_before, 'g) and changes no job');
is($node->safe_psql('ext', 'SELECT count(*) FROM node_results'), '0', 'g) and runs none');

$r = node_run('ext', $gw_bin, '--once');
is($r->{rc}, 0, 'ext: graphile-worker --once (as node_worker, after grant_worker) exits 0');
is( $node->safe_psql(
		'ext', 'SELECT n, job_id, task, queue, attempts FROM node_results ORDER BY n'),
	"42|$id42|js_task||1\n43|$id43|js_task|qsql|1",
	'ext: the Node task ran each SQL-added job once, with its payload, id, task, queue');
is( $node->safe_psql(
		'ext',
		q{SELECT count(*) FROM graphile_worker.jobs WHERE task_identifier = 'js_task'}),
	'0', 'ext: the jobs Node ran are gone from graphile_worker.jobs');
is($node->safe_psql('ext', $others), $others_before,
	'ext: jobs for identifiers Node does not know are untouched');
is( $node->safe_psql(
		'ext', q{
SELECT (SELECT count(*) FROM graphile_worker._private_jobs
	 WHERE locked_at IS NOT NULL OR locked_by IS NOT NULL)
	 || '/' ||
	(SELECT count(*) FROM graphile_worker._private_job_queues
	 WHERE locked_at IS NOT NULL OR locked_by IS NOT NULL)}),
	'0/0', 'ext: no job and no queue left locked');

# --- e) Node changed nothing in the shape ---------------------------------
is(describe_schema($node, 'ext'), $ext_shape,
	'ext: schema description unchanged after Node used it');
is($node->safe_psql('ext', $ledger), $ledger_before,
	'ext: migration ledger unchanged after Node used it');

# --- f) cron: a Node worker with the same crontab entry fires no minute
# twice, and its jobs look like ours -----------------------------------------
# Both tickers race for each minute of the id "shared" (the supervisor of
# ext and the Node worker in run mode); the task is one neither side has a
# handler for, so every job added stays in the table.
my $entry = q{* * * * * cron_shared ?id=shared {from: 'crontab'}};
$node->safe_psql('ext', qq{SELECT graphile_worker.set_crontab(\$\$$entry\$\$)});
open(my $fh, '>', "$scratch/crontab") or die "crontab: $!";
print $fh "$entry\n";
close $fh;
my $since = $node->safe_psql('ext', 'SELECT now()');
my ($node_out, $node_err) = ('', '');
my $worker = IPC::Run::start(
	[ $gw_bin, '--crontab', "$scratch/crontab" ],
	'>', \$node_out, '2>', \$node_err,
	init => sub {
		chdir $scratch;
		my $env = pg_env($node, 'ext');
		$ENV{$_} = $env->{$_} for keys %$env;
		$ENV{PGUSER} = 'node_worker';
		delete $ENV{DATABASE_URL};
		delete $ENV{GRAPHILE_WORKER_SCHEMA};
		$ENV{NODE_NO_WARNINGS} = '1';
	});
# the Node worker is up once it has registered the id (a minute boundary
# may already have passed meanwhile: that minute is not counted)
$node->poll_query_until('ext', q{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE datname = 'ext' AND application_name <> 'psql' AND backend_type = 'client backend'
   AND query ILIKE '%LISTEN%'})
  or diag('the Node worker did not LISTEN');
my $up = $node->safe_psql('ext', 'SELECT now()');
# wait for the first minute boundary after both were up, plus 3 s
$node->poll_query_until('ext', qq{
SELECT now() >= date_trunc('minute', '$up'::timestamptz) + interval '1 minute 3 s'})
  or die 'clock';
$worker->signal('TERM');
$worker->finish;
my $minute = $node->safe_psql('ext',
	qq{SELECT date_trunc('minute', '$up'::timestamptz) + interval '1 minute'});
is( $node->safe_psql(
		'ext', qq{
SELECT count(*),
       bool_and(p.payload::jsonb = jsonb_build_object('from', 'crontab', '_cron',
         jsonb_build_object('ts', to_char(p.run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                            'backfilled', false)))
  FROM graphile_worker._private_jobs p
  JOIN graphile_worker._private_tasks t ON t.id = p.task_id
 WHERE t.identifier = 'cron_shared' AND p.run_at = '$minute'}),
	'1|t',
	'f) the minute both tickers raced for has one job, with the payload Node would give it');
is( $node->safe_psql(
		'ext', qq{
SELECT count(*) = count(DISTINCT p.run_at)
  FROM graphile_worker._private_jobs p
  JOIN graphile_worker._private_tasks t ON t.id = p.task_id
 WHERE t.identifier = 'cron_shared'}),
	't', 'f) no minute fired twice');
is($node->safe_psql('ext', q{
SELECT last_execution FROM graphile_worker._private_known_crontabs WHERE identifier = 'shared'}),
	$node->safe_psql('ext', qq{SELECT '$minute'::timestamptz}),
	'f) the id last fired at that minute');
diag('the minute was fired by '
	  . ($node->safe_psql('ext', qq~
SELECT CASE WHEN p.payload::text LIKE '{"from":"crontab"%' THEN 'Node' ELSE 'our supervisor' END
  FROM graphile_worker._private_jobs p JOIN graphile_worker._private_tasks t ON t.id = p.task_id
 WHERE t.identifier = 'cron_shared' AND p.run_at = '$minute'~)));

# g) revoke_worker takes it away again
$node->safe_psql('ext', q{SELECT graphile_worker.revoke_worker('node_worker');
SELECT graphile_worker.add_job('js_task', '{"n": 44}');});
$r = node_run('ext', $gw_bin, '--once');
isnt($r->{rc}, 0, 'g) after revoke_worker, graphile-worker --once as node_worker fails');
like($r->{stdout} . $r->{stderr}, qr/permission denied for table (migrations|_private_tasks)/,
	'g) with a permission error');
is($node->safe_psql('ext', q{SELECT count(*) FROM node_results WHERE n = 44}), '0',
	'g) and runs nothing');

$node->stop;
done_testing();
