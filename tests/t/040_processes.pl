# 040_processes.pl: the processes of graphile_worker and what they run as.
#
# Proves that, with graphile_worker in shared_preload_libraries,
#   a) after CREATE EXTENSION in db1 there is exactly one launcher, exactly
#      one supervisor for db1 and exactly graphile_worker.concurrency job
#      workers for db1 in pg_stat_activity, and graphile_worker.workers
#      lists the very same pids with the same kinds and databases;
#   b) reloading graphile_worker.concurrency resizes the pool: 4 gives
#      exactly 4 job workers, 1 exactly 1;
#   c) CREATE EXTENSION in a second database starts its supervisor and job
#      workers less than 1 s after the commit; a database without the
#      extension is probed (its supervisor starts and leaves) but gets no
#      job worker and no restart loop; graphile_worker.databases = 'db1'
#      (reload) stops db2's processes, and '' brings them back;
#   d) while a job runs, its worker's pg_stat_activity.query is exactly
#      'graphile_worker job <id>: <task>' and graphile_worker.workers shows
#      that job id, task identifier and the job's locked_by for that pid;
#   e) graphile_worker.paused = on (reload) stops claiming: after a
#      positive control, a new job is not run while paused; off runs it;
#   f) a handler runs as its function's owner (a NOLOGIN role):
#      current_user is the owner, session_user the bootstrap superuser;
#      the owner's missing table privilege makes the job fail with
#      'permission denied for table ...'; revoking EXECUTE from the owner
#      makes it fail with 'permission denied for function ...';
#   g) a C handler (tests/c_handler, gw_example_log) runs: its row is
#      written and the job deleted; its error becomes last_error;
#   h) DROP EXTENSION in db2 makes db2's supervisor and job workers exit,
#      and nothing is restarted there (at most one probe by the launcher,
#      no restart loop), while db1 keeps its processes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use GwTest;

my $node = start_node('processes', conf => q{
max_worker_processes = 32
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 500
# the postmaster logs each background worker it registers and reaps
log_min_messages = debug1
});

my $su = superuser_name();

# Appends settings and reloads.
sub set_conf
{
	my ($conf) = @_;
	$node->append_conf('postgresql.conf', $conf);
	$node->reload;
	return;
}


# Our processes in pg_stat_activity, as "kind|datname" counts.
my $census = q{
SELECT coalesce(string_agg(k || '|' || coalesce(d, '-') || '|' || n, E'\n'
	ORDER BY k, d), '')
  FROM (SELECT backend_type AS k, datname AS d, count(*) AS n
	  FROM pg_stat_activity
	 WHERE backend_type LIKE 'graphile_worker %'
	 GROUP BY 1, 2) AS s};

# ---------------------------------------------------------------- a)
create_db($node, 'db1', tasks => 0);

poll_is($node, 'db1', $census,
	join("\n",
		'graphile_worker job worker|db1|2',
		'graphile_worker launcher|-|1',
		'graphile_worker supervisor|db1|1'),
	'a: 1 launcher, 1 supervisor for db1, 2 job workers for db1');

# The same pids, kinds and databases in pg_stat_activity and in the view.
my $psa_procs = q{
SELECT string_agg(pid || '|' || replace(backend_type, 'graphile_worker ', '')
	|| '|' || coalesce(datname, '-'), E'\n' ORDER BY pid)
  FROM pg_stat_activity WHERE backend_type LIKE 'graphile_worker %'};
my $view_procs = q{
SELECT string_agg(pid || '|' || kind || '|' || coalesce(datname, '-'), E'\n'
	ORDER BY pid)
  FROM graphile_worker.workers};
my $psa = $node->safe_psql('db1', $psa_procs);
is($node->safe_psql('db1', $view_procs),
	$psa, 'a: graphile_worker.workers lists the same pids with the same kinds');
is( $node->safe_psql(
		'db1', q{
SELECT string_agg(format('%s|%s|%s', kind, datid IS NULL,
	coalesce(worker_id ~ '^gw-[0-9a-f]{16}-[0-9a-f]+-[0-9a-f]+$', false)),
	',' ORDER BY kind)
  FROM graphile_worker.workers}),
	'job worker|f|t,job worker|f|t,launcher|t|f,supervisor|f|f',
	'a: only job workers have a worker id; the launcher has no database');

# ---------------------------------------------------------------- b)
set_conf('graphile_worker.concurrency = 4');
poll_is($node, 'db1', $census,
	join("\n",
		'graphile_worker job worker|db1|4',
		'graphile_worker launcher|-|1',
		'graphile_worker supervisor|db1|1'),
	'b: concurrency 4 (reload): exactly 4 job workers for db1');
is( $node->safe_psql(
		'db1', q{SELECT count(*) FROM graphile_worker.workers
	WHERE kind = 'job worker' AND datname = 'db1'}),
	'4',
	'b: the view lists 4 job workers');

set_conf('graphile_worker.concurrency = 1');
poll_is($node, 'db1', $census,
	join("\n",
		'graphile_worker job worker|db1|1',
		'graphile_worker launcher|-|1',
		'graphile_worker supervisor|db1|1'),
	'b: concurrency 1 (reload): exactly 1 job worker for db1');
poll_is($node, 
	'db1', q{SELECT count(*) FROM graphile_worker.workers
	WHERE kind = 'job worker' AND datname = 'db1'},
	'1',
	'b: the view lists 1 job worker');

set_conf('graphile_worker.concurrency = 2');
poll_is($node, 
	'db1', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'graphile_worker job worker' AND datname = 'db1'},
	'2',
	'b: back to 2 job workers');

# ---------------------------------------------------------------- c)
# db2: the launcher hears about it only through CREATE EXTENSION.
create_db($node, 'db2', extension => 0);
my $s2 = $node->background_psql('db2');
$s2->query_safe('BEGIN');
$s2->query_safe('CREATE EXTENSION graphile_worker');
my $t0_server = $s2->query_safe('SELECT clock_timestamp()');
my $t0        = time;
$s2->query_safe('COMMIT');
my $db2_procs = processes_sql('db2');
# a tight loop on the open session (every 5 ms)
my $got = session_poll($s2, $db2_procs, '1|2', timeout => 30);
my $elapsed = time - $t0;
is($got, '1|2', 'c: CREATE EXTENSION in db2 starts 1 supervisor and 2 job workers');
ok($elapsed < 1.0,
	sprintf('c: they are running %.0f ms after COMMIT (< 1000 ms)', $elapsed * 1000));
my $server_ms = $s2->query_safe(
	qq{SELECT round(extract(epoch FROM max(backend_start) - '$t0_server')::numeric * 1000)
	  FROM pg_stat_activity
	 WHERE datname = 'db2' AND backend_type LIKE 'graphile_worker %'});
note "db2: last job worker's backend_start is $server_ms ms after the COMMIT began"
  . sprintf(" (client saw them after %.1f ms)", $elapsed * 1000);
ok($server_ms < 1000, "c: server side: last process started $server_ms ms after COMMIT");
$s2->quit;

# db3 has no extension: the launcher's scan (forced by a reload) starts a
# supervisor there, which finds no extension and leaves for good.
my $log_offset = -s $node->logfile;
create_db($node, 'db3', extension => 0);
$node->reload;
# (the postmaster logs "unregistering" when a never-restart worker exits)
$log_offset = $node->wait_for_log(
	qr/unregistering background worker "graphile_worker supervisor for database db3"/,
	$log_offset);
pass('c: the launcher probes db3, which has no extension; its supervisor leaves');
poll_is($node, 
	'postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE datname = 'db3' AND backend_type LIKE 'graphile_worker %'},
	'0', 'c: db3 has no supervisor left');
# Nothing restarts it: another scan, then a wait longer than the launcher's
# first back-off (1 s).
$node->reload;
usleep(1_500_000);
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE datname = 'db3' AND backend_type LIKE 'graphile_worker %'}),
	'0',
	'c: a database without the extension gets no job worker');
unlike(
	slurp_file($node->logfile, $log_offset),
	qr/\bregistering background worker "graphile_worker supervisor for database db3"/,
	'c: and its supervisor is not started again');

# graphile_worker.databases
set_conf("graphile_worker.databases = 'db1'");
poll_is($node, 'postgres', $db2_procs, '0|0',
	"c: graphile_worker.databases = 'db1' stops db2's supervisor and workers");
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE datname = 'db1' AND backend_type LIKE 'graphile_worker %'}),
	'3',
	'c: db1 keeps its supervisor and 2 job workers');
set_conf("graphile_worker.databases = ''");
poll_is($node, 'postgres', $db2_procs, '1|2',
	"c: graphile_worker.databases = '' brings db2's supervisor and workers back");

# ---------------------------------------------------------------- d)
$node->safe_psql(
	'db1', q{
CREATE SCHEMA graphile_worker_tasks;
CREATE TABLE public.ran (task text, payload json, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION graphile_worker_tasks.slow(payload json) RETURNS void
	LANGUAGE sql AS $$ SELECT pg_catalog.pg_sleep(1); INSERT INTO public.ran (task, payload) VALUES ('slow', payload) $$;
CREATE FUNCTION graphile_worker_tasks.note(payload json) RETURNS void
	LANGUAGE sql AS $$ INSERT INTO public.ran (task, payload) VALUES ('note', payload) $$;
});
my $slow_id =
  $node->safe_psql('db1', q{SELECT id FROM graphile_worker.add_job('slow', '{"n": 1}')});
poll_is($node, 
	'db1', qq{
SELECT a.query || '|' || w.job_id || '|' || w.task_identifier || '|' || w.kind
	|| '|' || w.state || '|' || a.datname || '|'
	|| (w.worker_id = (SELECT locked_by FROM graphile_worker.jobs WHERE id = $slow_id))
  FROM pg_stat_activity AS a JOIN graphile_worker.workers AS w USING (pid)
 WHERE a.state = 'active' AND a.query LIKE 'graphile_worker job %'},
	"graphile_worker job $slow_id: slow|$slow_id|slow|job worker|busy|db1|true",
	"d: while job $slow_id runs: pg_stat_activity.query is 'graphile_worker job $slow_id: slow', "
	  . 'the view shows its job id, task and locked_by for that pid');
poll_is($node, 'db1', q{SELECT count(*) FROM public.ran WHERE task = 'slow'},
	'1', 'd: the slow job finishes');
poll_is($node, 
	'db1', q{SELECT count(*) FROM graphile_worker.workers
	WHERE kind = 'job worker' AND (job_id IS NOT NULL OR task_identifier IS NOT NULL)},
	'0', 'd: afterwards no worker shows a job');

# ---------------------------------------------------------------- e)
$node->safe_psql('db1', q{SELECT graphile_worker.add_job('note', '{"e": "before"}')});
poll_is($node, 'db1', q{SELECT count(*) FROM public.ran WHERE payload->>'e' = 'before'},
	'1', 'e: positive control: a job runs before pausing');
set_conf('graphile_worker.paused = on');
poll_is($node, 
	'db1', q{SELECT string_agg(state, ',') FROM graphile_worker.workers
	WHERE kind = 'job worker' AND datname = 'db1'},
	'paused,paused', 'e: paused = on (reload): both job workers say paused');
my $paused_id = $node->safe_psql('db1',
	q{SELECT id FROM graphile_worker.add_job('note', '{"e": "paused"}')});
usleep(500_000);
is( $node->safe_psql(
		'db1', qq{
SELECT (SELECT count(*) FROM public.ran WHERE payload->>'e' = 'paused') || '|'
	|| (SELECT attempts || '|' || (locked_by IS NULL)
	  FROM graphile_worker.jobs WHERE id = $paused_id)}),
	'0|0|true',
	'e: while paused, a new job is not claimed (500 ms later: not run, 0 attempts)');
set_conf('graphile_worker.paused = off');
poll_is($node, 
	'db1', qq{
SELECT (SELECT count(*) FROM public.ran WHERE payload->>'e' = 'paused') || '|'
	|| (SELECT count(*) FROM graphile_worker.jobs WHERE id = $paused_id)},
	'1|0', 'e: paused = off (reload): the job runs and is deleted');

# ---------------------------------------------------------------- f)
$node->safe_psql(
	'db1', q{
CREATE ROLE app_owner NOLOGIN;
CREATE TABLE public.secret (x int);
INSERT INTO public.secret VALUES (42);
CREATE TABLE public.who (task text, cur text, sess text);
GRANT INSERT ON public.who TO app_owner;
CREATE FUNCTION graphile_worker_tasks.whoami(payload json) RETURNS void
	LANGUAGE sql AS $$ INSERT INTO public.who VALUES (payload->>'tag', current_user, session_user) $$;
ALTER FUNCTION graphile_worker_tasks.whoami(json) OWNER TO app_owner;
CREATE FUNCTION graphile_worker_tasks.readsecret(payload json) RETURNS void
	LANGUAGE plpgsql AS $$ BEGIN PERFORM x FROM public.secret; END $$;
ALTER FUNCTION graphile_worker_tasks.readsecret(json) OWNER TO app_owner;
});
is( $node->safe_psql(
		'db1', q{SELECT rolcanlogin || '|' || rolsuper FROM pg_roles WHERE rolname = 'app_owner'}),
	'false|false',
	'f: app_owner is a NOLOGIN non-superuser');

my $who_id = $node->safe_psql('db1',
	q{SELECT id FROM graphile_worker.add_job('whoami', '{"tag": "granted"}')});
poll_is($node, 'db1', q{SELECT count(*) FROM public.who}, '1', 'f: the whoami job ran');
is($node->safe_psql('db1', q{SELECT task || '|' || cur || '|' || sess FROM public.who}),
	"granted|app_owner|$su",
	'f: inside the handler current_user = app_owner (its owner), session_user = the bootstrap superuser'
);
is($node->safe_psql('db1', qq{SELECT count(*) FROM graphile_worker.jobs WHERE id = $who_id}),
	'0', 'f: and the job was deleted');

my $secret_id = $node->safe_psql('db1',
	q{SELECT id FROM graphile_worker.add_job('readsecret', '{}', max_attempts => 1)});
poll_is($node, 'db1',
	qq{SELECT last_error IS NOT NULL FROM graphile_worker.jobs WHERE id = $secret_id},
	't', 'f: the readsecret job failed');
is( $node->safe_psql(
		'db1', qq{
SELECT split_part(last_error, E'\\n', 1) || '|' || attempts
  FROM graphile_worker.jobs WHERE id = $secret_id}),
	'permission denied for table secret|1',
	"f: the owner's missing SELECT on public.secret: last_error 'permission denied for table secret'"
);
is( $node->safe_psql('db1',
		qq{SELECT last_error FROM graphile_worker.jobs WHERE id = $secret_id}),
	"permission denied for table secret\n"
	  . "CONTEXT: SQL statement \"SELECT x FROM public.secret\"\n"
	  . 'PL/pgSQL function graphile_worker_tasks.readsecret(json) line 1 at PERFORM',
	'f: the whole last_error: message and CONTEXT lines');

$node->safe_psql('db1',
	q{REVOKE EXECUTE ON FUNCTION graphile_worker_tasks.whoami(json) FROM PUBLIC, app_owner});
my $revoked_id = $node->safe_psql('db1',
	q{SELECT id FROM graphile_worker.add_job('whoami', '{"tag": "revoked"}', max_attempts => 1)});
poll_is($node, 'db1',
	qq{SELECT last_error IS NOT NULL FROM graphile_worker.jobs WHERE id = $revoked_id},
	't', 'f: the whoami job failed after REVOKE EXECUTE');
is( $node->safe_psql(
		'db1', qq{SELECT last_error || '|' || attempts
	  FROM graphile_worker.jobs WHERE id = $revoked_id}),
	"permission denied for function whoami\n"
	  . "DETAIL: The owner of a task handler needs EXECUTE on it.|1",
	"f: REVOKE EXECUTE from PUBLIC and the owner: last_error 'permission denied for function whoami'"
);
is($node->safe_psql('db1', q{SELECT count(*) FROM public.who WHERE task = 'revoked'}),
	'0', 'f: the revoked handler did not run');

# ---------------------------------------------------------------- g)
$node->safe_psql(
	'db1', q{
CREATE TABLE public.c_handler_log(id bigserial, payload jsonb);
CREATE FUNCTION graphile_worker_tasks.c_log(payload jsonb) RETURNS void
	AS 'gw_example_handlers', 'gw_example_log' LANGUAGE C STRICT;
});
my $c_ok = $node->safe_psql('db1',
	q{SELECT id FROM graphile_worker.add_job('c_log', '{"x":1}')});
poll_is($node, 'db1', q{SELECT count(*) FROM public.c_handler_log},
	'1', 'g: the C handler wrote its row');
is( $node->safe_psql(
		'db1', qq{
SELECT (SELECT string_agg(payload::text, ',') FROM public.c_handler_log) || '|'
	|| (SELECT count(*) FROM graphile_worker.jobs WHERE id = $c_ok)}),
	'{"x": 1}|0',
	'g: the row holds the payload and the job was deleted');
my $c_fail = $node->safe_psql('db1',
	q{SELECT id FROM graphile_worker.add_job('c_log', '{"fail":true}', max_attempts => 1)});
poll_is($node, 'db1',
	qq{SELECT last_error IS NOT NULL FROM graphile_worker.jobs WHERE id = $c_fail},
	't', 'g: the failing C job failed');
is( $node->safe_psql(
		'db1', qq{
SELECT last_error || '|' || attempts || '|' || (locked_by IS NULL)
	|| '|' || (SELECT count(*) FROM public.c_handler_log)
  FROM graphile_worker.jobs WHERE id = $c_fail}),
	'c_log was asked to fail|1|true|1',
	"g: last_error 'c_log was asked to fail', attempts 1, unlocked, nothing written");

# ---------------------------------------------------------------- h)
is($node->safe_psql('postgres', $db2_procs), '1|2', 'h: db2 has its processes before DROP');
$log_offset = -s $node->logfile;
$node->safe_psql('db2', 'DROP EXTENSION graphile_worker');
poll_is($node, 'postgres', $db2_procs, '0|0',
	"h: DROP EXTENSION in db2: db2's supervisor and job workers exit");
# No restart loop.  The launcher may probe db2 once more (a supervisor that
# finds no extension and leaves, as for db3); then nothing more starts there
# through two launcher scans (reloads) and 3 s, longer than the launcher's
# first two back-offs (1 s, 2 s).
my $db2_supervisor =
  qr/\bregistering background worker "graphile_worker supervisor for database db2"/;
$node->reload;
usleep(1_500_000);
my $probe_offset = -s $node->logfile;
$node->reload;
usleep(1_500_000);
is($node->safe_psql('postgres', $db2_procs),
	'0|0', 'h: 3 s and two reloads later, db2 still has no process');
my $since_drop = slurp_file($node->logfile, $log_offset);
my $starts = () = $since_drop =~ /$db2_supervisor/g;
ok($starts <= 1,
	"h: db2's supervisor was started at most once after DROP EXTENSION (a probe): $starts");
unlike(slurp_file($node->logfile, $probe_offset),
	$db2_supervisor, "h: and not at all in the last 1.5 s: no restart loop");
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE datname = 'db1' AND backend_type LIKE 'graphile_worker %'}),
	'3',
	'h: db1 keeps its supervisor and 2 job workers');

$node->stop;
done_testing();
