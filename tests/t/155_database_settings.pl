# 155_database_settings.pl: settings per database and worker slots shared
# fairly between databases.
#
# Three databases a, b, c with the extension, graphile_worker.concurrency
# 2 in postgresql.conf, max_worker_processes 12: 12 slots less the logical
# replication launcher, our launcher and 3 supervisors leave 7 for job
# workers.
#   a. each database runs 2 job workers;
#   b. ALTER DATABASE a SET graphile_worker.concurrency = 5 and a reload:
#      a gets 3 (7 - 2 - 2: b and c keep min(2, their share)), a WARNING
#      says 7 slots are shared among 9 wanted, with a hint to raise
#      max_worker_processes by 2; RESET and a reload: a is back to 2;
#   c. ALTER DATABASE b SET graphile_worker.paused = on: b's workers are
#      paused and its job waits, a job of a runs; RESET: b's job runs;
#   d. ALTER DATABASE c SET graphile_worker.task_schemas = 'c_tasks': a
#      handler in c_tasks runs; forbidden_flags = 'slow' keeps a flagged
#      job of c waiting while an unflagged one runs;
#   e. concurrency 4 everywhere with max_worker_processes 8 (3 slots for
#      job workers): 1 worker per database, not first come first served.
use strict;
use warnings;

use GwTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_node('dbset', conf => q{
max_worker_processes = 12
graphile_worker.concurrency = 2
graphile_worker.poll_interval = 200
});
for my $d (qw(a b c))
{
	create_db($node, $d);
	$node->safe_psql($d, q{
CREATE TABLE public.ran (tag text);
CREATE FUNCTION graphile_worker_tasks.work(payload json) RETURNS void
LANGUAGE sql AS $$ INSERT INTO public.ran VALUES (payload->>'tag') $$;});
}
my $counts = q{
SELECT string_agg(datname || ':' || n, ',' ORDER BY datname)
  FROM (SELECT datname, count(*) AS n FROM pg_stat_activity
         WHERE backend_type = 'graphile_worker job worker' GROUP BY 1) AS s};
sub reload { $node->safe_psql('postgres', 'SELECT pg_reload_conf()'); }

run_case('a', sub {
	poll_is($node, 'postgres', $counts, 'a:2,b:2,c:2', 'a: 2 job workers in each database');
});

run_case('b', sub {
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', 'ALTER DATABASE a SET graphile_worker.concurrency = 5');
	reload();
	poll_is($node, 'postgres', $counts, 'a:3,b:2,c:2',
		'b: a wants 5 and gets the 3 slots b and c leave');
	ok(wait_log($node,
		qr/WARNING:  graphile_worker shares 7 job worker slots among databases whose concurrency adds up to 9\n(?:.*\n)?.*HINT:  Raise max_worker_processes by 2/,
		$offset), 'b: the launcher warns: 7 slots for 9 wanted, raise max_worker_processes by 2');
	$node->safe_psql('postgres', 'ALTER DATABASE a RESET graphile_worker.concurrency');
	reload();
	poll_is($node, 'postgres', $counts, 'a:2,b:2,c:2', 'b: after RESET, a is back to 2');
});

run_case('c', sub {
	$node->safe_psql('postgres', 'ALTER DATABASE b SET graphile_worker.paused = on');
	reload();
	poll_is($node, 'b', q{SELECT string_agg(DISTINCT state, ',') FROM graphile_worker.workers
	                       WHERE kind = 'job worker' AND datname = 'b'}, 'paused',
		"c: b's job workers are paused");
	$node->safe_psql('b', q{SELECT graphile_worker.add_job('work', '{"tag":"b1"}')});
	$node->safe_psql('a', q{SELECT graphile_worker.add_job('work', '{"tag":"a1"}')});
	poll_is($node, 'a', q{SELECT count(*) FROM public.ran WHERE tag = 'a1'}, '1',
		'c: a job of a runs');
	stays_is($node, 'b', q{SELECT count(*) FROM public.ran WHERE tag = 'b1'}, '0', 1,
		"c: b's job waits");
	$node->safe_psql('postgres', 'ALTER DATABASE b RESET graphile_worker.paused');
	reload();
	poll_is($node, 'b', q{SELECT count(*) FROM public.ran WHERE tag = 'b1'}, '1',
		"c: after RESET, b's job runs");
});

run_case('d', sub {
	$node->safe_psql('c', q{
CREATE SCHEMA c_tasks;
CREATE FUNCTION c_tasks.other(payload json) RETURNS void
LANGUAGE sql AS $$ INSERT INTO public.ran VALUES (payload->>'tag') $$;});
	$node->safe_psql('postgres', q{ALTER DATABASE c SET graphile_worker.task_schemas = 'c_tasks'});
	$node->safe_psql('postgres', q{ALTER DATABASE c SET graphile_worker.forbidden_flags = 'slow'});
	reload();
	$node->safe_psql('c', q{SELECT graphile_worker.add_job('other', '{"tag":"c-other"}')});
	poll_is($node, 'c', q{SELECT count(*) FROM public.ran WHERE tag = 'c-other'}, '1',
		"d: c's handler in c_tasks runs");
	$node->safe_psql('c', q{SELECT graphile_worker.add_job('other', '{"tag":"c-slow"}', flags => '{slow}')});
	$node->safe_psql('c', q{SELECT graphile_worker.add_job('other', '{"tag":"c-fast"}')});
	poll_is($node, 'c', q{SELECT count(*) FROM public.ran WHERE tag = 'c-fast'}, '1',
		'd: an unflagged job runs');
	stays_is($node, 'c', q{SELECT count(*) FROM public.ran WHERE tag = 'c-slow'}, '0', 1,
		"d: the job flagged 'slow' waits");
	$node->safe_psql('a', q{SELECT graphile_worker.add_job('work', '{"tag":"a-slow"}', flags => '{slow}')});
	poll_is($node, 'a', q{SELECT count(*) FROM public.ran WHERE tag = 'a-slow'}, '1',
		"d: in a, which forbids nothing, a job flagged 'slow' runs");
});

run_case('e', sub {
	$node->append_conf('postgresql.conf', q{
max_worker_processes = 8
graphile_worker.concurrency = 4
});
	$node->restart;
	poll_is($node, 'postgres', $counts, 'a:1,b:1,c:1',
		'e: 3 slots for 3 databases that want 4 each: 1 each');
});

$node->stop;
done_testing();
