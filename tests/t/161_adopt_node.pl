# 161_adopt_node.pl: CREATE EXTENSION graphile_worker in a database whose
# schema the real graphile-worker 0.18.0 (from the npm registry) created
# and filled, as an application role, while a Node worker runs.
#
# Proves that
#   a) graphile-worker --schema-only, run as the role app (not a
#      superuser), creates the schema at migration 20, owned by app; app
#      fills the queue through Node's addJob and Node's SQL functions: jobs
#      in named queues, keyed ones, a future one, a permanently failed one,
#      one held by a Node pool; known crontabs; another role is granted
#      the jobs view;
#   b) CREATE EXTENSION refuses, with a clear error and changing nothing
#      (the schema keeps its name, objects and rows; no extension), a schema
#      at migration 18 or 21, one with a column and an index added, one a
#      view outside it depends on, a schema that graphile-worker did not
#      create, CREATE EXTENSION ... VERSION '0.1.0', and a role that may
#      not create the extension;
#   c) CREATE EXTENSION adopts the schema while a Node worker runs: version
#      0.2.0; every job (ids, payloads, locks, attempts, errors, keys,
#      revisions, flags), queue, task and known crontab, the identity
#      sequences' positions and the ledger (ts included) are kept; the NOTICE
#      says so; no other schema is left behind;
#   d) the result is the extension a fresh CREATE EXTENSION makes, catalog
#      fact by catalog fact (tests/sql/describe_extension.sql), plus what
#      adoption grants: grant_worker(app) and SELECT on jobs for app, the
#      other role's grants made again;
#   e) our workers run the jobs of tasks that have a handler, including one
#      app queued before the adoption; new ids follow the old sequences;
#   f) the Node worker that ran across the adoption, as app, keeps running
#      jobs added after it, by our add_job and by Node's addJob, and
#      logged no error; the job a Node pool held is still held;
#   g) pg_dump of the adopted database dumps the extension, not its
#      objects.
# Skipped when node/npm are missing or the registry cannot be reached.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GwTest;

my $scratch = install_node_package();
my $gw_bin  = "$scratch/node_modules/.bin/graphile-worker";
my $wait    = 60;

my $node = start_node('adopt', conf => q{
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 200
graphile_worker.sweep_interval = 1000
});
my $db = create_db($node, 'nodeapp', extension => 0);
create_db($node, 'fresh');
$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
CREATE ROLE monitor;
GRANT CREATE ON DATABASE nodeapp TO app;});

sub node_env
{
	my ($dbname) = @_;
	return {
		%{ pg_env($node, $dbname) },
		PGUSER                 => 'app',
		DATABASE_URL           => undef,
		GRAPHILE_WORKER_SCHEMA => undef,
		NODE_NO_WARNINGS       => '1',
	};
}

# --- a) Node creates and fills the queue, as app ------------------------------
my $r = run_cmd([ $gw_bin, '--schema-only' ], cwd => $scratch, env => node_env($db));
is($r->{rc}, 0, 'a) graphile-worker --schema-only as app exits 0');
is($node->safe_psql($db, q{SELECT nspowner::regrole, (SELECT max(id) FROM graphile_worker.migrations)
	FROM pg_namespace WHERE nspname = 'graphile_worker'}), 'app|20',
	'a) the schema is app\'s, at migration 20');
$r = run_cmd([ 'node', "$scratch/add_job.mjs" ], cwd => $scratch, env => node_env($db));
is($r->{rc}, 0, 'a) Node\'s WorkerUtils.addJob as app exits 0');
$node->safe_psql($db, q{
CREATE TABLE public.node_results (n int, job_id bigint, task text, queue text, attempts int);
GRANT INSERT, SELECT ON public.node_results TO app;
SET ROLE app;
SELECT graphile_worker.add_job('sql_task', '{"n": 1}', queue_name => 'q1');
SELECT graphile_worker.add_job('sql_task', '{"n": 2}', queue_name => 'q1', job_key => 'k2');
SELECT graphile_worker.add_job('sql_task', '{"n": 3}', queue_name => 'q1', job_key => 'k2', priority => 2);
SELECT graphile_worker.add_job('sql_task', '{"n": 4}', run_at => now() + interval '1 day', flags => ARRAY['a', 'b']);
SELECT graphile_worker.add_job('other_task', '[1, 2]', job_key => 'arr');
SELECT graphile_worker.add_job('other_task', '[3]', job_key => 'arr');
SELECT graphile_worker.add_job('doomed_task', '{}', max_attempts => 3);
SELECT graphile_worker.permanently_fail_jobs(ARRAY[currval('graphile_worker.jobs_id_seq1')], 'boom');
SELECT graphile_worker.add_job('held_task', '{}', queue_name => 'q_held');
UPDATE graphile_worker._private_jobs SET locked_by = 'pool-0123456789abcdef01', locked_at = now(),
	attempts = 1 WHERE id = currval('graphile_worker.jobs_id_seq1');
UPDATE graphile_worker._private_job_queues SET locked_by = 'pool-0123456789abcdef01', locked_at = now()
 WHERE queue_name = 'q_held';
SELECT graphile_worker.add_job('gone_task', '{}', queue_name => 'q_gone');
DELETE FROM graphile_worker._private_jobs WHERE id = currval('graphile_worker.jobs_id_seq1');
DELETE FROM graphile_worker._private_tasks WHERE identifier = 'gone_task';
DELETE FROM graphile_worker._private_job_queues WHERE queue_name = 'q_gone';
INSERT INTO graphile_worker._private_known_crontabs VALUES
	('hourly', '2026-01-01 00:00+00', '2026-06-01 12:00+00'), ('fresh', now(), NULL);
GRANT USAGE ON SCHEMA graphile_worker TO monitor;
GRANT SELECT ON graphile_worker.jobs TO monitor;
});

my %queries = (
	jobs => q{SELECT j.*, p.payload, p.is_available FROM graphile_worker._private_jobs p
		JOIN graphile_worker.jobs j USING (id) ORDER BY id},
	queues  => q{SELECT * FROM graphile_worker._private_job_queues ORDER BY id},
	tasks   => q{SELECT * FROM graphile_worker._private_tasks ORDER BY id},
	known   => q{SELECT * FROM graphile_worker._private_known_crontabs ORDER BY 1},
	ledger  => q{SELECT * FROM graphile_worker.migrations ORDER BY id},
	sequences => q{SELECT sequencename, last_value FROM pg_sequences
		WHERE schemaname = 'graphile_worker' ORDER BY 1},);
my %before = map { $_ => $node->safe_psql($db, $queries{$_}) } keys %queries;
is(scalar(() = $before{jobs} =~ /\n/g) + 1, 7, 'a) the Node queue holds 7 jobs');
my $node_shape = describe_schema($node, $db);

# --- b) refusals ----------------------------------------------------------------
# Each case is a copy of the database, changed as the case says; CREATE
# EXTENSION must fail with the expected error and leave it as it was.
my $state_sql = q{SELECT (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace
	WHERE nspname LIKE 'graphile_worker%'),
	(SELECT count(*) FROM pg_extension WHERE extname = 'graphile_worker'),
	(SELECT count(*) FROM pg_class WHERE relnamespace = 'graphile_worker'::regnamespace),
	(SELECT count(*) FROM graphile_worker._private_jobs)};
my @cases = (
	[ 'r18', q{DELETE FROM graphile_worker.migrations WHERE id > 18}, 'CREATE EXTENSION graphile_worker',
	  qr/ERROR:  55000: schema "graphile_worker" is at graphile-worker migration 18, not 20\n.*HINT:  Run graphile-worker 0.18 against this database once/s ],
	[ 'r21', q{INSERT INTO graphile_worker.migrations VALUES (21, now(), false)}, 'CREATE EXTENSION graphile_worker',
	  qr/ERROR:  55000: schema "graphile_worker" is at graphile-worker migration 21, not 20/ ],
	[ 'rmod', q{ALTER TABLE graphile_worker._private_jobs ADD COLUMN note text;
		CREATE INDEX jobs_note ON graphile_worker._private_jobs (note)}, 'CREATE EXTENSION graphile_worker',
	  qr/ERROR:  55000: schema "graphile_worker" differs from the one graphile-worker 0.18 creates\nDETAIL:  not in graphile-worker 0.18: column _private_jobs.18 note text\nnot in graphile-worker 0.18: index _private_jobs CREATE INDEX jobs_note ON _private_jobs USING btree \(note\)\nHINT:  Undo those changes/ ],
	[ 'rdep', q{CREATE VIEW public.recent AS SELECT id FROM graphile_worker.jobs}, 'CREATE EXTENSION graphile_worker',
	  qr/ERROR:  2BP01: objects outside schema "graphile_worker" depend on it\nDETAIL:  view public.recent\n.*HINT:  Drop them, create the extension, then create them again/s ],
	[ 'rver', '', q{CREATE EXTENSION graphile_worker VERSION '0.1.0'},
	  qr/ERROR:  55000: schema "graphile_worker" already exists\nDETAIL:  Version 0.1.0 of extension "graphile_worker" cannot adopt a schema that graphile-worker created; version 0.2.0 and later can\.\nHINT:  Create the extension without a VERSION clause\./ ],
	[ 'rrole', '', q{SET ROLE app; CREATE EXTENSION graphile_worker},
	  qr/ERROR:  42501: permission denied to create extension "graphile_worker"/ ],
	[ 'rnot', q{DROP SCHEMA graphile_worker CASCADE; CREATE SCHEMA graphile_worker;
		CREATE TABLE graphile_worker._private_jobs (id bigint)}, 'CREATE EXTENSION graphile_worker',
	  qr/ERROR:  42P06: schema "graphile_worker" already exists and was not created by graphile-worker 0.18\nDETAIL:  It has no table migrations\(id, ts, breaking\), Graphile Worker's migration ledger\.\nHINT:  Rename or drop that schema, then create the extension\./ ],);
for my $case (@cases)
{
	my ($name, $change, $create, $error) = @$case;
	$node->safe_psql('postgres', "CREATE DATABASE $name TEMPLATE $db");
	$node->safe_psql($name, $change) if $change ne '';
	my $state = $node->safe_psql($name, $state_sql);
	my $shape = $name ne 'rnot' ? describe_schema($node, $name) : '';
	my ($out, $err) = ('', '');
	my $rc = $node->psql($name, "\\set VERBOSITY verbose\n$create", stdout => \$out, stderr => \$err);
	isnt($rc, 0, "b) $name: CREATE EXTENSION fails");
	like($err, $error, "b) $name: with the expected error");
	is($node->safe_psql($name, $state_sql), $state,
		"b) $name: nothing changed (schema name, no extension, its relations and jobs)");
	is(describe_schema($node, $name), $shape, "b) $name: the schema is described as before")
	  if $name ne 'rnot';
}

# --- c) adoption while a Node worker runs -----------------------------------------
my ($node_out, $node_err) = ('', '');
my $worker = IPC::Run::start(
	[ $gw_bin, '--poll-interval', '200' ],
	'>', \$node_out, '2>', \$node_err,
	init => sub {
		chdir $scratch;
		my $env = node_env($db);
		for my $k (keys %$env)
		{
			if (defined $env->{$k}) { $ENV{$k} = $env->{$k}; }
			else { delete $ENV{$k}; }
		}
	});
$node->poll_query_until($db, q{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE datname = 'nodeapp' AND usename = 'app' AND query ILIKE '%LISTEN%'})
  or diag('the Node worker did not LISTEN');
$node->safe_psql($db, q{SET ROLE app; SELECT graphile_worker.add_job('js_task', '{"n": 10}')});
poll_is($node, $db, 'SELECT n FROM public.node_results', '10',
	'c) before the adoption, the Node worker (as app) runs a job', $wait);
%before = map { $_ => $node->safe_psql($db, $queries{$_}) } keys %queries;

my ($out, $err) = ('', '');
my $rc = $node->psql($db, 'CREATE EXTENSION graphile_worker', stdout => \$out, stderr => \$err);
is($rc, 0, 'c) CREATE EXTENSION succeeds in the database graphile-worker created');
like($err, qr/NOTICE:  role "app", the owner of the graphile-worker tables, now has grant_worker's rights and SELECT on graphile_worker.jobs/,
	'c) a NOTICE says what app was granted');
like($err, qr/NOTICE:  adopted the graphile-worker 0.18 schema: 7 jobs, 2 queues, 6 tasks, 2 known crontab entries\nDETAIL:  2 privileges granted on its objects were granted again on the extension's\./,
	'c) a NOTICE counts what was adopted');
is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'graphile_worker'}),
	'0.2.0', 'c) the extension is at 0.2.0');
for my $k (sort keys %queries)
{
	is($node->safe_psql($db, $queries{$k}), $before{$k}, "c) $k kept");
}
is($node->safe_psql($db, q{SELECT string_agg(nspname, ',') FROM pg_namespace WHERE nspname LIKE 'graphile_worker%'}),
	'graphile_worker', 'c) one schema graphile_worker, nothing left behind');

# --- d) the same as a fresh install ----------------------------------------------
$node->safe_psql('fresh', q{
SELECT graphile_worker.grant_worker('app');
GRANT SELECT ON graphile_worker.jobs TO app;
GRANT USAGE ON SCHEMA graphile_worker TO monitor;
GRANT SELECT ON graphile_worker.jobs TO monitor;});
is(describe_extension($node, $db), describe_extension($node, 'fresh'),
	'd) the adopted extension is described exactly as a fresh one with the same grants');
is(describe_schema($node, $db), describe_schema($node, 'fresh'),
	'd) and so is its Node schema');
is($node->safe_psql($db, q{SET ROLE monitor; SELECT count(*) FROM graphile_worker.jobs}), '7',
	'd) the role granted the jobs view can still read it');

# --- e) our workers -----------------------------------------------------------------
$node->safe_psql($db, q{
CREATE SCHEMA graphile_worker_tasks;
CREATE TABLE public.sql_results (n int, job_id bigint, queue text);
CREATE FUNCTION graphile_worker_tasks.sql_task(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO public.sql_results VALUES ((payload->>'n')::int, job.id, job.queue_name) $$;});
my $next = $node->safe_psql($db, q{SELECT id FROM graphile_worker.add_job('sql_task', '{"n": 5}')});
my ($last_id) = $before{sequences} =~ /jobs_id_seq1\|(\d+)/;
is($next, $last_id + 1, 'e) a new job gets the id after the last one the Node sequence gave');
poll_is($node, $db, 'SELECT string_agg(n || coalesce(queue, \'-\'), \',\' ORDER BY n) FROM public.sql_results',
	'1q1,3q1,5-', 'e) our workers run the due sql_task jobs, those queued by Node before the adoption too', $wait);

# --- f) the Node worker keeps going ---------------------------------------------------
$node->safe_psql($db, q{SELECT graphile_worker.add_job('js_task', '{"n": 11}', queue_name => 'qjs')});
$r = run_cmd([ 'node', '-e', q{
import('graphile-worker').then(async ({ makeWorkerUtils }) => {
  const utils = await makeWorkerUtils({});
  await utils.addJob('js_task', { n: 12 });
  await utils.release();
});} ], cwd => $scratch, env => node_env($db));
is($r->{rc}, 0, 'f) Node\'s addJob as app after the adoption exits 0');
poll_is($node, $db, 'SELECT string_agg(n || coalesce(queue, \'-\'), \',\' ORDER BY n) FROM public.node_results',
	'10-,11qjs,12-', 'f) the Node worker that ran across the adoption runs the jobs added after it', $wait);
is($node->safe_psql($db, q{SELECT locked_by, attempts FROM graphile_worker.jobs WHERE task_identifier = 'held_task'}),
	'pool-0123456789abcdef01|1', 'f) the job a Node pool held is still held');
$worker->signal('TERM');
$worker->finish;
unlike($node_out . $node_err, qr/\berror\b/i, 'f) the Node worker logged no error');

# --- g) pg_dump ------------------------------------------------------------------------
my $dump = "$PostgreSQL::Test::Utils::tmp_check/161_nodeapp.sql";
$r = run_cmd([ 'pg_dump', '-f', $dump, '-d', $db ], env => pg_env($node, $db));
is($r->{rc}, 0, 'g) pg_dump of the adopted database exits 0');
my $dump_text = slurp_file($dump);
like($dump_text, qr/^CREATE EXTENSION IF NOT EXISTS graphile_worker WITH SCHEMA pg_catalog;$/m,
	'g) the dump creates the extension');
unlike($dump_text, qr/^CREATE (TABLE|FUNCTION|TYPE|VIEW|SEQUENCE) graphile_worker\./m,
	'g) and none of its objects');

$node->stop;
done_testing();
