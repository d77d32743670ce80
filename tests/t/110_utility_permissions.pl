# 110_utility_permissions.pl: the commands that need a database to
# themselves stop its graphile_worker processes only for a role that may
# run them, and give them back when the command's subtransaction aborts.
#
# Proves that, with a job running in database app (its handler sleeps):
#   a) a role that may not run the command (no CONNECT on app, no
#      ownership, no CREATEDB) gets PostgreSQL's own permission error for
#      DROP DATABASE app, ALTER DATABASE app RENAME / SET TABLESPACE,
#      CREATE DATABASE ... TEMPLATE app (also with CREATEDB but without
#      owning app) and DROP EXTENSION graphile_worker (connected to app,
#      not the extension's owner), and the job keeps running in the same
#      job worker under the same supervisor: nothing was cancelled;
#   b) neither does a superuser's command that PostgreSQL refuses before
#      doing anything: DROP DATABASE / CREATE DATABASE / ALTER DATABASE SET
#      TABLESPACE inside a transaction block, DROP DATABASE or RENAME of the
#      current database, RENAME to a name that exists, SET TABLESPACE to
#      the tablespace the database is already in;
#   c) inside BEGIN; SAVEPOINT s: a DROP DATABASE (refused there) stops
#      nothing, not even while the transaction stays open; a DROP EXTENSION
#      that fails (other objects depend on the extension) and a RENAME
#      undone by ROLLBACK TO s give the workers back while the transaction
#      is still open; after RELEASE the RENAME keeps them away until the
#      transaction ends;
#   d) the database's owner, not a superuser but with CREATEDB, renames it
#      while a job runs there: the workers make way, the command succeeds
#      within 5 s, and they come back under the new name.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use GwTest;

my $node = start_node('perm', conf => q{
max_worker_processes = 16
graphile_worker.concurrency = 1
});
create_db($node, 'app');

$node->safe_psql(
	'postgres', q{
REVOKE CONNECT ON DATABASE app FROM PUBLIC;
CREATE ROLE intruder LOGIN;
CREATE ROLE builder LOGIN CREATEDB;
CREATE ROLE member LOGIN;
CREATE ROLE appowner LOGIN CREATEDB;
GRANT CONNECT ON DATABASE app TO member;
});
# The handler sleeps the first time it starts, and completes afterwards.
$node->safe_psql(
	'app', q{
CREATE SEQUENCE public.starts;
CREATE TABLE public.done (job_id bigint PRIMARY KEY);
CREATE FUNCTION graphile_worker_tasks.hold(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF pg_catalog.nextval('public.starts') = 1 THEN
    PERFORM pg_catalog.pg_sleep(600);
  END IF;
  INSERT INTO public.done VALUES (job.id);
END $$;
});
my $tsdir = PostgreSQL::Test::Utils::tempdir();
$node->safe_psql('postgres', "CREATE TABLESPACE elsewhere LOCATION '$tsdir'");

my $job = $node->safe_psql('app', q{SELECT id FROM graphile_worker.add_job('hold')});
poll_is($node, 'app', qq{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'graphile_worker job worker' AND state = 'active'
   AND query = 'graphile_worker job $job: hold'}, '1', "job $job is running");

# supervisor pid | job worker pid | what it runs | handler starts so far
my $state_sql = q{
SELECT (SELECT string_agg(pid::text, ',') FROM pg_stat_activity
         WHERE datname = 'app' AND backend_type = 'graphile_worker supervisor')
    || '|' || (SELECT string_agg(pid || '|' || query, ',') FROM pg_stat_activity
         WHERE datname = 'app' AND backend_type = 'graphile_worker job worker')
    || '|' || (SELECT last_value FROM public.starts)};
my $running = $node->safe_psql('app', $state_sql);
like($running, qr/^\d+\|\d+\|graphile_worker job $job: hold\|1$/,
	"app has one supervisor and one job worker running job $job");

# undisturbed($what): the same processes still run the same job.
sub undisturbed
{
	my ($what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($node->safe_psql('app', $state_sql), $running,
		"$what: the job keeps running, nothing was stopped");
}

# as($role, $db, $sql) runs $sql as $role and returns its stderr.
sub as
{
	my ($role, $db, $sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', $role ]);
	return $err;
}

# fails_in($session, $sql) runs $sql in a background session, expecting an
# error, and returns the error text (then forgotten by the session).
sub fails_in
{
	my ($session, $sql) = @_;
	$session->query($sql);
	my $err = $session->{stderr};
	$session->{stderr} = '';
	return $err;
}

# ---------------------------------------------------------------- a)
like(as('intruder', 'postgres', 'DROP DATABASE app'),
	qr/must be owner of database app/, 'a: DROP DATABASE by a non-owner fails');
undisturbed('a: DROP DATABASE by a role without CONNECT');
like(as('intruder', 'postgres', 'DROP DATABASE app WITH (FORCE)'),
	qr/must be owner of database app/, 'a: DROP DATABASE ... WITH (FORCE) by a non-owner fails');
undisturbed('a: DROP DATABASE ... WITH (FORCE) by a role without CONNECT');
like(as('intruder', 'postgres', 'ALTER DATABASE app RENAME TO stolen'),
	qr/must be owner of database app/, 'a: RENAME by a non-owner fails');
undisturbed('a: ALTER DATABASE RENAME by a non-owner');
like(as('intruder', 'postgres', 'ALTER DATABASE app SET TABLESPACE elsewhere'),
	qr/must be owner of database app/, 'a: SET TABLESPACE by a non-owner fails');
undisturbed('a: ALTER DATABASE SET TABLESPACE by a non-owner');
like(as('intruder', 'postgres', 'CREATE DATABASE copy TEMPLATE app'),
	qr/permission denied to create database/,
	'a: CREATE DATABASE ... TEMPLATE app without CREATEDB fails');
undisturbed('a: CREATE DATABASE ... TEMPLATE app without CREATEDB');
like(as('builder', 'postgres', 'CREATE DATABASE copy TEMPLATE app'),
	qr/permission denied to copy database "app"/,
	'a: CREATE DATABASE ... TEMPLATE app with CREATEDB, not owning app, fails');
undisturbed('a: CREATE DATABASE ... TEMPLATE app by a CREATEDB role not owning app');
like(as('member', 'app', 'DROP EXTENSION graphile_worker'),
	qr/must be owner of extension graphile_worker/,
	'a: DROP EXTENSION by a role that does not own it fails');
undisturbed('a: DROP EXTENSION by a role connected to app, not its owner');

# ---------------------------------------------------------------- b)
my $su = superuser_name();
like(as($su, 'postgres', "BEGIN;\nDROP DATABASE app;"),
	qr/DROP DATABASE cannot run inside a transaction block/,
	'b: DROP DATABASE in a transaction block is refused');
undisturbed('b: DROP DATABASE in a transaction block');
like(as($su, 'postgres', "BEGIN;\nCREATE DATABASE copy TEMPLATE app;"),
	qr/CREATE DATABASE cannot run inside a transaction block/,
	'b: CREATE DATABASE in a transaction block is refused');
undisturbed('b: CREATE DATABASE ... TEMPLATE app in a transaction block');
like(as($su, 'postgres', "BEGIN;\nALTER DATABASE app SET TABLESPACE elsewhere;"),
	qr/ALTER DATABASE SET TABLESPACE cannot run inside a transaction block/,
	'b: SET TABLESPACE in a transaction block is refused');
undisturbed('b: ALTER DATABASE SET TABLESPACE in a transaction block');
like(as($su, 'app', 'DROP DATABASE app'),
	qr/cannot drop the currently open database/,
	'b: DROP DATABASE of the current database is refused');
undisturbed('b: DROP DATABASE of the current database');
like(as($su, 'app', 'ALTER DATABASE app RENAME TO app2'),
	qr/current database cannot be renamed/, 'b: RENAME of the current database is refused');
undisturbed('b: ALTER DATABASE RENAME of the current database');
like(as($su, 'postgres', 'ALTER DATABASE app RENAME TO postgres'),
	qr/database "postgres" already exists/, 'b: RENAME to an existing name is refused');
undisturbed('b: ALTER DATABASE RENAME to an existing name');
is(as($su, 'postgres', 'ALTER DATABASE app SET TABLESPACE pg_default'),
	'', 'b: SET TABLESPACE to its own tablespace succeeds (it does nothing)');
undisturbed('b: ALTER DATABASE SET TABLESPACE to its own tablespace');

# ---------------------------------------------------------------- c)
my $s = $node->background_psql('postgres', on_error_stop => 0);
$s->query_safe('BEGIN');
$s->query_safe('SAVEPOINT s');
like(fails_in($s, 'DROP DATABASE app'), qr/DROP DATABASE cannot run inside a transaction block/,
	'c: DROP DATABASE after SAVEPOINT is refused');
undisturbed('c: DROP DATABASE refused in a savepoint');
$s->query_safe('ROLLBACK TO s');
usleep(500_000);
undisturbed('c: half a second later, the transaction still open');
$s->query_safe('ROLLBACK');
$s->quit;

# A DROP EXTENSION by its owner stops the workers; it then fails (the
# handler depends on the extension's jobs type), and ROLLBACK TO s gives
# them back while the transaction stays open.  The cancelled job runs
# again and completes.
$s = $node->background_psql('app', on_error_stop => 0);
$s->query_safe('BEGIN');
$s->query_safe('SAVEPOINT s');
like(fails_in($s, 'DROP EXTENSION graphile_worker'),
	qr/cannot drop extension graphile_worker because other objects depend on it/,
	'c: DROP EXTENSION by its owner fails: objects depend on it');
$s->query_safe('ROLLBACK TO s');
poll_is($node, 'postgres', processes_sql('app'), '1|1',
	'c: after ROLLBACK TO s the workers are back while the transaction is open');
poll_is($node, 'app', q{SELECT string_agg(job_id::text, ',') FROM public.done}, $job,
	'c: and the cancelled job ran again to completion');
$s->query_safe('COMMIT');
$s->quit;

# RENAME in a savepoint: RELEASE keeps the workers away until the end of the
# transaction; ROLLBACK TO s gives them back at once.
my $procs_app = processes_sql('app');
$s = $node->background_psql('postgres', on_error_stop => 0);
$s->query_safe('BEGIN');
$s->query_safe('SAVEPOINT s');
$s->query_safe('ALTER DATABASE app RENAME TO app2');
pass('c: RENAME by a superuser in a savepoint succeeds');
$s->query_safe('ROLLBACK TO s');
poll_is($node, 'postgres', $procs_app, '1|1',
	'c: after ROLLBACK TO s the workers are back while the transaction is open');
$s->query_safe('SAVEPOINT t');
$s->query_safe('ALTER DATABASE app RENAME TO app2');
$s->query_safe('RELEASE t');
my $offset = -s $node->logfile;
usleep(1_500_000);
unlike(slurp_file($node->logfile, $offset),
	qr/starting background worker process "graphile_worker supervisor for database app/,
	'c: after RELEASE no supervisor is started for app while the rename is pending');
$s->query_safe('ROLLBACK');
$s->quit;
poll_is($node, 'postgres', $procs_app, '1|1', 'c: after ROLLBACK the workers are back');

# ---------------------------------------------------------------- d)
$node->safe_psql('postgres', 'ALTER DATABASE app OWNER TO appowner');
$node->safe_psql('app', 'ALTER SEQUENCE public.starts RESTART');
my $job2 = $node->safe_psql('app', q{SELECT id FROM graphile_worker.add_job('hold')});
poll_is($node, 'app', qq{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'graphile_worker job worker' AND state = 'active'
   AND query = 'graphile_worker job $job2: hold'}, '1', "d: job $job2 is running");
my $t0 = time;
is(as('appowner', 'postgres', 'ALTER DATABASE app RENAME TO app_renamed'), '',
	'd: the owner (CREATEDB, not a superuser) renames app while the job runs');
my $secs = time - $t0;
ok($secs < 5, sprintf('d: in %.3f s (< 5 s)', $secs));
poll_is($node, 'app_renamed', q{SELECT string_agg(job_id::text, ',' ORDER BY job_id) FROM public.done},
	"$job,$job2", 'd: the workers are back under the new name and the job completed');

$node->stop;
done_testing();
