# 163_uninstall.pl: removing the extension while its workers run jobs.
#
# Proves that
#   a) DROP EXTENSION (without CASCADE) fails while a handler takes the
#      graphile_worker.jobs row type, with PostgreSQL's own error naming the
#      handler, and changes nothing: the handler and the jobs are there, the
#      workers come back and run jobs;
#   b) DROP SCHEMA graphile_worker CASCADE is refused by PostgreSQL before
#      anything happens: the same supervisor keeps running;
#   c) once such handlers are dropped, DROP EXTENSION while a job runs
#      succeeds: the database's supervisor and job workers are gone and stay
#      gone, the schema is gone;
#   d) CREATE EXTENSION again starts the workers and a job runs;
#   e) DROP EXTENSION ... CASCADE while a handler taking the row type runs
#      drops that handler too (a NOTICE lists it) and stops the workers
#      before anything is dropped;
#   f) DROP OWNED BY the role that created the extension (which a role
#      without that role's privileges may not run, and so cannot stop the
#      workers with), and
#   g) DROP EXTENSION plpgsql CASCADE (which drops ours with it) stop the
#      workers first too;
#   h) a handler that holds interrupts off longer than cancel_grace + 5 s
#      makes DROP EXTENSION fail with SQLSTATE 55006 and a hint, changing
#      nothing; once it has returned, DROP EXTENSION succeeds;
# and that in none of these cases does a process of ours log that a
# relation or type of the extension does not exist, that a batch could not
# be committed, or die by a signal, even after the handlers it was running
# would have returned.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use GwTest;

my $node = start_node('uninstall', conf => q{
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 200
graphile_worker.cancel_grace = 200ms
});
my $wait = 60;

# The lines of the server log after $offset that say a process of ours
# raced a drop: the errors of the issue, and deaths by a signal.
my $bad = qr/does not exist|cache lookup failed|could not commit a batch|failed as its transaction ended|terminated by signal/;
sub bad_lines
{
	my ($offset) = @_;
	return join "\n", grep { /$bad/ } split /\n/, slurp_file($node->logfile, $offset);
}

# Sets up database $db: the extension, a table of results, handlers.
sub setup_db
{
	my ($db, %opt) = @_;
	create_db($node, $db, extension => 0);
	$node->safe_psql($db, ($opt{as} ? "SET ROLE $opt{as};\n" : '') . q{
CREATE EXTENSION graphile_worker;
CREATE SCHEMA graphile_worker_tasks;
CREATE TABLE public.done (job_id bigint);
-- sleeps its payload's seconds, then records its job
CREATE FUNCTION graphile_worker_tasks.slow(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep((payload->>'s')::float8);
  INSERT INTO public.done VALUES (job.id);
END $$;
CREATE FUNCTION graphile_worker_tasks.quick(payload json)
RETURNS void LANGUAGE sql AS $$ INSERT INTO public.done VALUES (-1) $$;
});
	return $db;
}

# Adds a 'slow' job of $s seconds and waits until a worker runs it.
sub start_slow_job
{
	my ($db, $s, $task) = @_;
	$task //= 'slow';
	my $id = $node->safe_psql($db,
		"SELECT id FROM graphile_worker.add_job('$task', '{\"s\": $s, \"ms\": ${s}000}')");
	poll_is($node, $db,
		"SELECT count(*) FROM graphile_worker.workers WHERE job_id = $id AND state = 'busy'",
		'1', "$db: job $id is running", $wait);
	return $id;
}

my $gone_sql = sub {
	my ($db) = @_;
	return processes_sql($db);
};

# --- a) b) DROP refused, nothing changed ----------------------------------
my $db = setup_db('a');
my $off = -s $node->logfile;
my $id = start_slow_job($db, 2);
my ($out, $err) = ('', '');
my $rc = $node->psql($db, "\\set VERBOSITY verbose\nDROP EXTENSION graphile_worker",
	stdout => \$out, stderr => \$err);
isnt($rc, 0, 'a) DROP EXTENSION fails while a handler takes graphile_worker.jobs');
like($err, qr/ERROR:  2BP01: cannot drop extension graphile_worker because other objects depend on it/,
	'a) with PostgreSQL\'s own error (2BP01)');
like($err, qr/function graphile_worker_tasks\.slow\(json,graphile_worker\.jobs\) depends on type graphile_worker\.jobs/,
	'a) naming the handler');
is($node->safe_psql($db, q{SELECT to_regprocedure('graphile_worker_tasks.slow(json,graphile_worker.jobs)') IS NOT NULL
	AND (SELECT extversion FROM pg_extension WHERE extname = 'graphile_worker') = '0.2.0'}),
	't', 'a) the extension and the handler are still there');
poll_is($node, $db, "SELECT count(*) FROM public.done WHERE job_id = $id", '1',
	'a) the job that was running when the DROP failed runs again to completion', $wait);
is($node->safe_psql($db, "SELECT attempts FROM graphile_worker.jobs WHERE id = $id"), '',
	'a) and is gone (completed)');
poll_is($node, 'postgres', processes_sql($db), '1|2', 'a) supervisor and 2 job workers are back', $wait);

my $sup = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'graphile_worker supervisor'");
$rc = $node->psql($db, 'DROP SCHEMA graphile_worker CASCADE', stderr => \$err);
like($err, qr/cannot drop schema graphile_worker because extension graphile_worker requires it/,
	'b) DROP SCHEMA graphile_worker CASCADE is refused by PostgreSQL');
is($node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'graphile_worker supervisor'"),
	$sup, 'b) the same supervisor still runs');

# --- c) d) clean uninstall without CASCADE, and again ----------------------
$node->safe_psql($db, q{
CREATE FUNCTION graphile_worker_tasks.slow_plain(payload json)
RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep((payload->>'s')::float8); END $$;
DROP FUNCTION graphile_worker_tasks.slow(json, graphile_worker.jobs);});
start_slow_job($db, 3, 'slow_plain');
my $t0 = time;
$node->safe_psql($db, 'DROP EXTENSION graphile_worker');
cmp_ok(time - $t0, '<', 3, 'c) DROP EXTENSION succeeds while a job runs, without waiting for it');
is($node->safe_psql('postgres', processes_sql($db)), '0|0', 'c) no supervisor, no job worker left');
stays_is($node, 'postgres', processes_sql($db), '0|0', 4,
	'c) and none comes back (4 s, longer than the handler would have run)');
is($node->safe_psql($db, q{SELECT count(*) FROM pg_namespace WHERE nspname = 'graphile_worker'}),
	'0', 'c) the schema is gone');
is(bad_lines($off), '', 'a-c) no process of ours raced the drops');

$node->safe_psql($db, q{CREATE EXTENSION graphile_worker;
SELECT graphile_worker.add_job('quick');});
poll_is($node, $db, 'SELECT count(*) FROM public.done WHERE job_id = -1', '1',
	'd) after CREATE EXTENSION again, a job runs', $wait);
poll_is($node, 'postgres', processes_sql($db), '1|2', 'd) supervisor and 2 job workers', $wait);

# --- e) CASCADE ------------------------------------------------------------
$db  = setup_db('e');
$off = -s $node->logfile;
start_slow_job($db, 3);
($out, $err) = ('', '');
$rc = $node->psql($db, 'DROP EXTENSION graphile_worker CASCADE', stdout => \$out, stderr => \$err);
is($rc, 0, 'e) DROP EXTENSION CASCADE succeeds while a handler taking the row type runs');
like($err, qr/NOTICE:  drop cascades to function graphile_worker_tasks\.slow\(json,graphile_worker\.jobs\)/,
	'e) the NOTICE lists the handler it drops');
is($node->safe_psql($db, q{SELECT to_regprocedure('graphile_worker_tasks.quick(json)') IS NOT NULL,
	count(*) FROM pg_proc WHERE proname = 'slow'}), 't|0',
	'e) the handler taking the row type is gone, the other one is not');
is($node->safe_psql('postgres', processes_sql($db)), '0|0', 'e) no supervisor, no job worker left');
stays_is($node, 'postgres', processes_sql($db), '0|0', 4, 'e) and none comes back');
is(bad_lines($off), '', 'e) no process of ours raced the drop');

# --- f) DROP OWNED BY the extension's owner ---------------------------------
$node->safe_psql('postgres', 'CREATE ROLE gw_admin SUPERUSER');
$db  = setup_db('f', as => 'gw_admin');
$off = -s $node->logfile;
start_slow_job($db, 3);
$sup = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'graphile_worker supervisor'");
$node->safe_psql('postgres', 'CREATE ROLE gw_nobody LOGIN');
$rc = $node->psql($db, 'SET ROLE gw_nobody; DROP OWNED BY gw_admin', stderr => \$err);
like($err, qr/permission denied to drop objects/,
	'f) a role without gw_admin\'s privileges cannot DROP OWNED BY it');
is($node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'graphile_worker supervisor'"),
	$sup, 'f) and does not stop the workers');
$node->safe_psql($db, 'DROP OWNED BY gw_admin');
is($node->safe_psql($db, q{SELECT count(*) FROM pg_extension WHERE extname = 'graphile_worker'}),
	'0', 'f) DROP OWNED BY the owner dropped the extension');
is($node->safe_psql('postgres', processes_sql($db)), '0|0', 'f) no supervisor, no job worker left');
stays_is($node, 'postgres', processes_sql($db), '0|0', 4, 'f) and none comes back');
is(bad_lines($off), '', 'f) no process of ours raced the drop');

# --- g) DROP EXTENSION plpgsql CASCADE --------------------------------------
$db  = setup_db('g');
$off = -s $node->logfile;
start_slow_job($db, 3);
$node->safe_psql($db, 'SET client_min_messages = warning; DROP EXTENSION plpgsql CASCADE');
is($node->safe_psql($db, q{SELECT count(*) FROM pg_extension WHERE extname = 'graphile_worker'}),
	'0', 'g) DROP EXTENSION plpgsql CASCADE dropped ours');
is($node->safe_psql('postgres', processes_sql($db)), '0|0', 'g) no supervisor, no job worker left');
stays_is($node, 'postgres', processes_sql($db), '0|0', 4, 'g) and none comes back');
is(bad_lines($off), '', 'g) no process of ours raced the drop');

# --- h) a handler that cannot be interrupted --------------------------------
$db = setup_db('h');
$node->safe_psql($db, q{
CREATE TABLE public.c_handler_log (payload jsonb);
CREATE FUNCTION graphile_worker_tasks.c_hold(payload jsonb) RETURNS void
	AS 'gw_example_handlers', 'gw_example_hold' LANGUAGE C STRICT;});
$off = -s $node->logfile;
my $hold = start_slow_job($db, 12, 'c_hold');
$t0 = time;
($out, $err) = ('', '');
$rc = $node->psql($db, "\\set VERBOSITY verbose\nDROP EXTENSION graphile_worker",
	stdout => \$out, stderr => \$err);
my $took = time - $t0;
isnt($rc, 0, 'h) DROP EXTENSION fails while a handler holds interrupts off');
like($err, qr/ERROR:  55006: extension "graphile_worker" cannot be dropped while its processes in this database run/,
	'h) with SQLSTATE 55006');
like($err, qr/DETAIL:  1 process of the extension did not stop within 5200 ms of being asked to\./,
	'h) the detail says how many processes, and how long it waited');
like($err, qr/HINT:  A job handler that does not check for interrupts/, 'h) the hint says why');
cmp_ok($took, '>=', 5.1, 'h) after waiting cancel_grace + 5 s');
is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'graphile_worker'}),
	'0.2.0', 'h) the extension is still there');
poll_is($node, $db, "SELECT count(*) FROM public.c_handler_log", '1',
	'h) the held handler ran once', $wait);
poll_is($node, 'postgres', processes_sql($db), '1|2', 'h) the workers come back', $wait);
is($node->safe_psql($db, "SELECT count(*) FROM graphile_worker.jobs WHERE id = $hold"), '0',
	'h) the held job completed (its handler returned normally)');
$node->safe_psql($db, 'SET client_min_messages = warning; DROP EXTENSION graphile_worker CASCADE');
is($node->safe_psql('postgres', processes_sql($db)), '0|0',
	'h) once it has returned, DROP EXTENSION succeeds and the workers are gone');
is(bad_lines($off), '', 'h) no process of ours raced the drop');

$node->stop;
done_testing();
