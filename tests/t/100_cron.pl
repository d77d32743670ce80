# 100_cron.pl: the supervisor fires crontab entries on time, back-fills
# after downtime, and a minute of an entry fires once however many tickers
# race for it.
#
# Proves that, with graphile_worker in shared_preload_libraries,
#   a) a `* * * * *` entry set with set_crontab fires at the next real
#      minute boundary: its handler runs with _cron.ts = that minute,
#      backfilled false, run_at = ts, within 5 s of the boundary;
#   b) graphile_worker.cron_timezone (reload) is the zone of entries
#      without a tz option: the view shows it and ticks match in it;
#   c) after downtime (the server stopped, its entry last fired 8 minutes
#      before), the supervisor that starts back-fills an entry with
#      ?fill=1h: every missed minute once, oldest first, backfilled true,
#      from the one after the last firing to the one before the start
#      (any later minute fires normally, once); an entry without fill is
#      not back-filled; the same holds after a crash (immediate stop);
#   d) two tickers (sessions calling graphile_worker._cron_tick for the
#      same 300 minutes, one transaction per minute, released together at
#      once, while the supervisor ticks too) fire each minute exactly once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use GwTest;

my $node = start_node('cron', conf => q{
max_worker_processes = 16
graphile_worker.concurrency = 2
});
my $db = create_db($node, 'crondb');
sub sql { return $node->safe_psql($db, $_[0]); }

sql(q{
CREATE TABLE public.fired (task text, ts timestamptz, backfilled boolean,
	run_at timestamptz, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION graphile_worker_tasks.probe(payload json, job graphile_worker.jobs)
RETURNS void LANGUAGE sql AS $$
	INSERT INTO public.fired (task, ts, backfilled, run_at)
	VALUES (job.task_identifier, (payload->'_cron'->>'ts')::timestamptz,
	        (payload->'_cron'->>'backfilled')::boolean, job.run_at) $$;});

# --- a) a real minute boundary ----------------------------------------------
sql(q{SELECT graphile_worker.set_crontab('* * * * * probe')});
my $set_at = sql(q{SELECT date_trunc('minute', now())});
# (poll_query_until's default deadline is 180 s; a minute is at most 60 s)
$node->poll_query_until($db, q{SELECT count(*) >= 1 FROM public.fired})
  or die 'no minute fired';
my $row = sql(qq{
SELECT ts = date_trunc('minute', ts), ts > '$set_at', NOT backfilled, run_at = ts,
       at >= ts, at - ts < interval '5 s'
  FROM public.fired ORDER BY ts LIMIT 1});
is($row, 't|t|t|t|t|t',
	'a) the next minute boundary fired the entry: _cron.ts is that minute, not backfilled, run_at = ts, run within 5 s');

# --- b) graphile_worker.cron_timezone ---------------------------------------
sql(q{SELECT graphile_worker.set_crontab('0 9 * * * tz_default')});
is(sql(q{SELECT time_zone FROM graphile_worker.crontab}), 'UTC',
	'b) by default entries without tz are in UTC');
$node->append_conf('postgresql.conf', "graphile_worker.cron_timezone = 'Asia/Tokyo'");
$node->reload;
poll_is($node, $db, q{SELECT time_zone FROM graphile_worker.crontab},
	'Asia/Tokyo', 'b) after a reload entries without tz are in cron_timezone');
is( sql(q{
SELECT graphile_worker._cron_tick('2031-01-01 09:00+09') || ',' ||
       graphile_worker._cron_tick('2031-01-01 09:00+00')}),
	'1,0', 'b) 09:00 fires at 09:00 Tokyo time, not at 09:00 UTC');
$node->append_conf('postgresql.conf', "graphile_worker.cron_timezone = 'UTC'");
$node->reload;
poll_is($node, $db, q{SELECT time_zone FROM graphile_worker.crontab},
	'UTC', 'b) back to UTC');

# --- c) back-fill after downtime ----------------------------------------------
# Fire times are recorded whether or not a handler exists: these tasks have
# none, so their jobs stay in the table.
sub backfill_after
{
	my ($mode) = @_;
	sql(q{
SELECT graphile_worker.set_crontab(E'* * * * * bf ?fill=1h\n* * * * * nf ?id=nf');});
	# Not within 10 s of a minute boundary, so that no real tick comes
	# between the update and the stop.
	$node->poll_query_until($db,
		q{SELECT extract(second FROM now()) BETWEEN 5 AND 45})
	  or die 'clock';
	my $last = sql(q{
DELETE FROM graphile_worker._private_jobs;
UPDATE graphile_worker._private_known_crontabs
   SET last_execution = date_trunc('minute', now()) - interval '8 minutes';
SELECT last_execution FROM graphile_worker._private_known_crontabs WHERE identifier = 'bf'});
	$node->stop($mode);
	$node->start;
	my $start = sql(q{SELECT pg_postmaster_start_time()});
	# The supervisor back-fills when it starts.
	$node->poll_query_until($db, qq{
SELECT count(*) >= 8 FROM graphile_worker._private_jobs j
  JOIN graphile_worker._private_tasks t ON t.id = j.task_id
 WHERE t.identifier = 'bf' AND j.payload->'_cron'->>'backfilled' = 'true'})
	  or die "$mode: no back-fill after the restart";
	my $q = qq{
WITH bf AS (
  SELECT j.id, j.run_at, (j.payload->'_cron'->>'ts')::timestamptz AS ts,
         (j.payload->'_cron'->>'backfilled')::boolean AS backfilled
    FROM graphile_worker._private_jobs j
    JOIN graphile_worker._private_tasks t ON t.id = j.task_id
   WHERE t.identifier = 'bf')
SELECT
  -- back-filled: every minute after the last firing, before the start
  (SELECT array_agg(ts ORDER BY id) FROM bf WHERE backfilled)
    = (SELECT array_agg(m ORDER BY m) FROM generate_series(
         '$last'::timestamptz + interval '1 minute',
         '$start'::timestamptz - interval '1 microsecond', interval '1 minute') m),
  (SELECT bool_and(run_at = ts) FROM bf),
  -- then the minutes after the start, normally, each once
  (SELECT count(*) = count(DISTINCT ts) FROM bf),
  (SELECT coalesce(bool_and(ts > '$start'), true) FROM bf WHERE NOT backfilled),
  (SELECT count(*) >= 8 FROM bf WHERE backfilled)};
	is(sql($q), 't|t|t|t|t',
		"c) $mode stop: the missed minutes were back-filled once, oldest first");
	is( sql(qq{
SELECT count(*) FROM graphile_worker._private_jobs j
  JOIN graphile_worker._private_tasks t ON t.id = j.task_id
 WHERE t.identifier = 'nf' AND j.run_at <= '$start'}),
		'0', "c) $mode stop: the entry without fill was not back-filled");
	return;
}
backfill_after('fast');
backfill_after('immediate');

# --- d) concurrent tickers ------------------------------------------------------
sql(q{
DELETE FROM graphile_worker._private_jobs;
SELECT graphile_worker.set_crontab('* * * * * race');
CREATE TABLE public.tick_log (ticker int, added int);
CREATE PROCEDURE public.tick_range(ticker int, base timestamptz) LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	PERFORM pg_advisory_lock_shared(4242);	-- the start gate
	PERFORM pg_advisory_unlock_shared(4242);
	FOR i IN 0..299 LOOP
		n := graphile_worker._cron_tick(base + i * interval '1 minute');
		INSERT INTO public.tick_log VALUES (ticker, n);
		COMMIT;
	END LOOP;
END $$;});
my $base = sql(q{SELECT date_trunc('minute', now()) + interval '1 day'});
my $gate = $node->background_psql($db);
$gate->query_safe('SELECT pg_advisory_lock(4242)');
my @tickers;
for my $t (1 .. 2)
{
	my ($out, $err) = ('', '');
	push @tickers,
	  IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
			'-c', "CALL public.tick_range($t, '$base')" ],
		'>', \$out, '2>', \$err);
}
$node->poll_query_until($db, q{
SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted})
  or die 'the tickers did not reach the gate';
$gate->query_safe('SELECT pg_advisory_unlock(4242)');
$_->finish for @tickers;
is(join(',', map { ($_->results)[0] } @tickers), '0,0', 'd) both tickers ran to the end');
$gate->quit;
is( sql(qq{
SELECT count(*), count(DISTINCT run_at), min(run_at) = '$base', max(run_at) = '$base'::timestamptz + interval '299 minutes'
  FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
 WHERE t.identifier = 'race' AND j.run_at >= '$base'}),
	'300|300|t|t', 'd) 300 minutes, 300 jobs: each minute fired exactly once');
is(sql(q{SELECT sum(added), count(*) FROM public.tick_log}), '300|600',
	'd) the two tickers together added one job per minute over 600 ticks');

$node->stop;
done_testing();
