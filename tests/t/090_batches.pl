# 090_batches.pl: batches of jobs complete exactly once, whatever their
# handlers do.
#
# Job workers claim up to 200 jobs at once and run them in one transaction,
# one subtransaction each, then delete those that succeeded.  With 4
# workers, this runs 3,000 jobs of a PL/pgSQL handler that writes a row
# (taking a subtransaction id each), 1,000 jobs of a handler that writes
# nothing, and fails the first attempt of every 100th job, and proves:
#   - every job's row is written exactly once (unique constraint) and every
#     job that succeeded is gone: none is left locked with its write done;
#   - each failed job was retried and completed on its second attempt;
#   - the handlers' writes of a failed attempt were rolled back.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use GwTest;

my $node = start_node('batches', conf => q{
max_worker_processes = 16
graphile_worker.concurrency = 4
graphile_worker.paused = on
});
my $db = create_db($node, 'batches');

$node->safe_psql($db, q{
CREATE TABLE written (n int PRIMARY KEY, attempts int NOT NULL);
CREATE SEQUENCE quiet_runs;
CREATE FUNCTION graphile_worker_tasks.write_one(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO written VALUES ((payload->>'n')::int, job.attempts);
  IF (payload->>'n')::int % 100 = 0 AND job.attempts = 1 THEN
    RAISE EXCEPTION 'first attempt of % fails', payload->>'n';
  END IF;
END $$;
CREATE FUNCTION graphile_worker_tasks.write_none(payload json)
RETURNS void LANGUAGE sql AS $$ SELECT nextval('quiet_runs') $$;
SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
  SELECT ('write_one', json_build_object('n', n), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
    FROM generate_series(1, 3000) n));
SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
  SELECT ('write_none', '{}', NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
    FROM generate_series(1, 1000) n));
});

$node->safe_psql($db,
	"ALTER SYSTEM SET graphile_worker.paused = off; SELECT pg_reload_conf();");

# the 30 failed jobs wait e^1 s for their retry
ok( $node->poll_query_until(
		$db, 'SELECT count(*) = 0 FROM graphile_worker._private_jobs'),
	'every job completed');
is($node->safe_psql($db, 'SELECT count(*) FROM written'),
	'3000', 'each writing job wrote its row exactly once');
is( $node->safe_psql(
		$db, 'SELECT count(*) FROM written WHERE attempts = 2'),
	'30', 'the 30 failed jobs wrote only on their second attempt');
is( $node->safe_psql(
		$db,
		'SELECT count(*) FROM written WHERE attempts = 2 AND n % 100 <> 0'),
	'0', 'no other job needed a second attempt');
is($node->safe_psql($db, "SELECT last_value FROM quiet_runs"),
	'1000', 'each quiet job ran exactly once');

done_testing();
