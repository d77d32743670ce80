# 010_pg_dump.pl: what the queue holds survives pg_dump and a restore.
#
# Proves that queued jobs (every column, payloads included, a permanently
# failed one and a future one among them), job queues, task identifiers and
# known crontabs and the crontab of a database with the extension are
# dumped by pg_dump and
# restored unchanged
#   (a) into an empty database (the dump's CREATE EXTENSION creates the
#       schema), and
#   (b) into a database that already has CREATE EXTENSION graphile_worker
#       (the dump says CREATE EXTENSION IF NOT EXISTS),
# that both restores run without any error, that the migration ledger is
# still exactly ids 1..20, that the schema shape is the source's, and that
# the identity sequences carry on where the source's stopped: new jobs,
# queues and tasks get exactly the next ids (not max(id) + 1: the source's
# last job, task and queue were deleted), so nothing collides.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GwTest;

my $node = start_node('dump');
my $env  = sub { pg_env($node, $_[0]) };

create_db($node, 'src', extension => 0);
create_db($node, 'dst',  extension => 0);
create_db($node, 'dst2', tasks     => 0);

# The source: jobs of every kind, two tasks, two queues, two crontabs.  The
# job, task and queue created last are deleted again, so each sequence is
# ahead of the highest id left in its table.
$node->safe_psql(
	'src', q{
CREATE EXTENSION graphile_worker;
SELECT graphile_worker.add_job('task_a', '{"a": 1}');
SELECT graphile_worker.add_job('task_a', '{"b": 2}', queue_name => 'q1',
	job_key => 'k1', priority => 5, max_attempts => 3,
	flags => ARRAY['f1', 'f2']);
SELECT graphile_worker.add_job('task_a', '[1, 2]', job_key => 'arr');
SELECT graphile_worker.add_job('task_a', '[3]', job_key => 'arr');
SELECT graphile_worker.add_job('task_a', '{"later": true}', queue_name => 'q2',
	run_at => '2100-01-01 00:00:00+00');
SELECT graphile_worker.add_job('task_b', '{"c": 3}', queue_name => 'q1',
	priority => -2);
SELECT graphile_worker.add_job('task_b', '{"doomed": true}');
SELECT graphile_worker.permanently_fail_jobs(ARRAY[(
	SELECT id FROM graphile_worker._private_jobs
	 WHERE payload::text = '{"doomed": true}')], 'boom');
SELECT graphile_worker.add_job('task_gone', '{}', queue_name => 'q_gone',
	job_key => 'gone');
SELECT graphile_worker.remove_job('gone');
DELETE FROM graphile_worker._private_tasks WHERE identifier = 'task_gone';
DELETE FROM graphile_worker._private_job_queues WHERE queue_name = 'q_gone';
INSERT INTO graphile_worker._private_known_crontabs
	(identifier, known_since, last_execution)
VALUES ('cron_hourly', '2024-01-01 00:00:00+00', '2024-06-01 12:00:00+00'),
	('cron_new', '2024-05-05 05:05:05.123456+00', NULL);
-- the crontab: entries that never fire (February 30), ids already known
SELECT graphile_worker.set_crontab(E'# kept\n0 0 30 2 * task_a ?id=cron_hourly\n'
	'0 12 30 2 * task_b ?id=cron_new&tz=Europe/Paris {a: 1}');
});

# Everything compared between source and restored databases.  Timestamps
# are compared as text: same cluster, same TimeZone, so a faithful restore
# gives identical text.
my %queries = (
	jobs => q{
SELECT id, queue_name, task_identifier, priority, run_at, attempts,
	max_attempts, last_error, created_at, updated_at, key, locked_at,
	locked_by, revision, flags
  FROM graphile_worker.jobs ORDER BY id},
	private_jobs => q{
SELECT j.* FROM graphile_worker._private_jobs AS j ORDER BY id},
	payloads => q{
SELECT id, payload FROM graphile_worker._private_jobs ORDER BY id},
	queues => q{
SELECT q.* FROM graphile_worker._private_job_queues AS q ORDER BY id},
	tasks => q{
SELECT t.* FROM graphile_worker._private_tasks AS t ORDER BY id},
	crontabs => q{
SELECT c.* FROM graphile_worker._private_known_crontabs AS c
 ORDER BY identifier},
	crontab => q{
SELECT crontab FROM graphile_worker._private_crontab},
	crontab_view => q{
SELECT id, task_identifier, schedule, time_zone, payload
  FROM graphile_worker.crontab ORDER BY line},
	sequences => q{
SELECT sequencename, last_value FROM pg_sequences
 WHERE schemaname = 'graphile_worker' ORDER BY 1},
	migrations => q{
SELECT count(*), string_agg(id || CASE WHEN breaking THEN 'b' ELSE '' END,
	',' ORDER BY id)
  FROM graphile_worker.migrations},);

my %src = map { $_ => $node->safe_psql('src', $queries{$_}) } keys %queries;
my $src_shape = describe_schema($node, 'src');

# The fixture is what this test believes it is.
is( $node->safe_psql(
		'src', q{
SELECT id, queue_name, task_identifier, priority, attempts, max_attempts,
	last_error, key, locked_at, locked_by, revision, flags,
	run_at > now() + interval '50 years'
  FROM graphile_worker.jobs ORDER BY id}),
	join("\n",
		'1||task_a|0|0|25|||||0||f',
		'2|q1|task_a|5|0|3||k1|||0|{"f1": true, "f2": true}|f',
		'3||task_a|0|0|25||arr|||1||f',
		'5|q2|task_a|0|0|25|||||0||t',
		'6|q1|task_b|-2|0|25|||||0||f',
		'7||task_b|0|25|25|boom||||0||f'),
	'source: six jobs, one merged array, one future, one failed');
is($src{payloads},
	join("\n",
		'1|{"a": 1}', '2|{"b": 2}', '3|[1, 2, 3]', '5|{"later": true}',
		'6|{"c": 3}', '7|{"doomed": true}'),
	'source: payloads');
is($src{tasks},  "1|task_a\n2|task_b", 'source: tasks');
is($src{queues}, "1|q1|||t\n2|q2|||t", 'source: queues');
is( $src{crontabs},
	"cron_hourly|2024-01-01 00:00:00+00|2024-06-01 12:00:00+00\n"
	  . "cron_new|2024-05-05 05:05:05.123456+00|",
	'source: known crontabs');
is( $src{crontab_view},
	"cron_hourly|task_a|0 0 30 2 *|UTC|\ncron_new|task_b|0 12 30 2 *|Europe/Paris|{\"a\":1}",
	'source: crontab');
is( $src{sequences},
	"job_queues_id_seq|3\njobs_id_seq1|8\ntasks_id_seq|3",
	'source: sequences ahead of the highest ids left');
is($src{migrations}, '20|1b,2,3b,4,5,6,7,8,9,10,11b,12,13b,14b,15,16b,17,18,19b,20',
	'source: migrations 1..20');

# Dump (plain format, the server's pg_dump).
my $dump = "$PostgreSQL::Test::Utils::tmp_check/010_src.sql";
my $r    = run_cmd([ 'pg_dump', '-f', $dump, '-d', 'src' ], env => $env->('src'));
is($r->{rc},     0,  'pg_dump exits 0');
is($r->{stderr}, '', 'pg_dump prints nothing on stderr');
my $dump_text = slurp_file($dump);
like($dump_text,
	qr/^CREATE EXTENSION IF NOT EXISTS graphile_worker WITH SCHEMA pg_catalog;$/m,
	'the dump creates the extension if it does not exist');
unlike($dump_text, qr/^CREATE (TABLE|FUNCTION|TYPE|VIEW|SEQUENCE) /m,
	'the dump holds no extension member definitions');

# Restore, then compare everything with the source.
sub check_restored
{
	my ($db, $what) = @_;

	for my $k (sort keys %queries)
	{
		next if $k eq 'sequences';
		is($node->safe_psql($db, $queries{$k}), $src{$k}, "$what: $k equal");
	}
	is($node->safe_psql($db, $queries{sequences}),
		$src{sequences}, "$what: identity sequences at the source's positions");
	is(describe_schema($node, $db), $src_shape, "$what: schema shape equal");

	# New rows get the next ids: job 8 of the source was the last used, task
	# 3 and queue 3 were used and deleted.
	is( $node->safe_psql(
			$db, q{
SELECT j.id, j.task_id, j.job_queue_id
  FROM graphile_worker.add_job('task_new', '{"new": true}',
	queue_name => 'q_new') AS j}),
		'9|4|4',
		"$what: a new job, task and queue get the next ids (9, 4, 4)");
	is( $node->safe_psql(
			$db, q{
SELECT (SELECT id FROM graphile_worker._private_jobs
	 WHERE payload::text = '{"new": true}')
	 > (SELECT max(id) FROM graphile_worker._private_jobs
	 WHERE payload::text <> '{"new": true}')}),
		't', "$what: the new job's id is above every restored id");
	# Existing tasks and queues are found, not duplicated.
	is( $node->safe_psql(
			$db, q{
SELECT j.id, j.task_id, j.job_queue_id
  FROM graphile_worker.add_job('task_b', queue_name => 'q2') AS j}),
		'10|2|2', "$what: a job for a restored task and queue reuses their ids");
	is( $node->safe_psql(
			$db,
			q{SELECT count(*) FROM graphile_worker._private_tasks},)
		  . '/'
		  . $node->safe_psql($db,
			q{SELECT count(*) FROM graphile_worker._private_job_queues}),
		'3/3',
		"$what: one task and one queue more than restored");
	return;
}

# Both restores run in one transaction (psql -1), as the README says to
# restore into a server whose workers run the database: otherwise the
# workers start at the dump's CREATE EXTENSION, and their cron ticker may
# record the restored crontab's ids in _private_known_crontabs before the
# dump's COPY of that table, which then fails on a duplicate key.

# (a) Empty database: everything comes from the dump.
$r = run_cmd([ 'psql', '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', $dump, '-d', 'dst' ],
	env => $env->('dst'));
is($r->{rc},     0,  'restore into an empty db: psql exits 0 (ON_ERROR_STOP=1)');
is($r->{stderr}, '', 'restore into an empty db: no error or warning');
check_restored('dst', 'empty db');

# (b) Database that has the extension already: the schema belongs to the
# extension, so the dump does not create it again.
$r = run_cmd([ 'psql', '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-f', $dump, '-d', 'dst2' ],
	env => $env->('dst2'));
is($r->{rc}, 0, 'restore into a db with the extension: psql exits 0');
is($r->{stderr}, '', 'restore into a db with the extension: no error or warning');
check_restored('dst2', 'db with extension');

# The source is untouched by all this.
is($node->safe_psql('src', $queries{private_jobs}),
	$src{private_jobs}, 'source unchanged');

$node->stop;
done_testing();
