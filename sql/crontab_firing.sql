-- crontab_firing: a minute fires each due entry once, as Graphile Worker
-- does: run_at is the minute, _cron {ts, backfilled} is merged into the
-- payload, the options become the job's; _private_known_crontabs only
-- moves forward, so the same or an older minute never fires again.  The
-- back-fill of a starting ticker follows Node's rules.
-- A crontab stored without set_crontab's checks never lets a bad line or
-- entry keep the others from firing.
-- (graphile_worker._cron_tick and _cron_backfill are the internal entry
-- points of the supervisor's ticker.)
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
DELETE FROM graphile_worker._private_jobs;
DELETE FROM graphile_worker._private_known_crontabs;
CREATE VIEW cron_jobs AS
  SELECT t.identifier AS task, j.run_at, q.queue_name, j.max_attempts,
         j.priority, j.key, j.payload::text
    FROM graphile_worker._private_jobs j
    JOIN graphile_worker._private_tasks t ON t.id = j.task_id
    LEFT JOIN graphile_worker._private_job_queues q ON q.id = j.job_queue_id
   ORDER BY j.id;
SET TIME ZONE 'UTC';

SELECT graphile_worker.set_crontab($$
*/10 * * * * every_ten
0 12 * * *   noon ?id=noon_a&max=2&queue=q&priority=3&jobKey=noon {"_cron": "overwritten", "x": [1, 2]}
0 12 * * *   noon ?id=noon_b
0 0 1 * 1    first_or_monday
$$);

-- 12:00 on Tuesday 2026-12-01: every_ten and both noon entries
SELECT graphile_worker._cron_tick('2026-12-01 12:00:00+00') AS added;
SELECT * FROM cron_jobs;
SELECT identifier, last_execution FROM graphile_worker._private_known_crontabs ORDER BY 1;
-- the same minute again (another ticker, any second of it): nothing
SELECT graphile_worker._cron_tick('2026-12-01 12:00:59.999+00') AS added;
-- an older minute: nothing for the ids that already fired later
SELECT graphile_worker._cron_tick('2026-12-01 11:50:00+00') AS added;
-- a minute where nothing is due
SELECT graphile_worker._cron_tick('2026-12-01 12:01:00+00') AS added;
-- 00:00 on Monday 2026-12-07: first_or_monday by the DOM/DOW rule (either
-- day field may match), and every_ten
SELECT graphile_worker._cron_tick('2026-12-07 00:00:00+00') AS added;
-- 00:00 on Tuesday 2026-12-08: neither day field of first_or_monday
-- matches; every_ten fires
SELECT graphile_worker._cron_tick('2026-12-08 00:00:00+00') AS added;
SELECT task, run_at, payload FROM cron_jobs WHERE task IN ('first_or_monday', 'every_ten') AND run_at > '2026-12-01 12:00+00';

-- jobKey: the next noon replaces the pending job with that key
SELECT graphile_worker._cron_tick('2026-12-02 12:00:00+00') AS added;
SELECT task, run_at, key, payload FROM cron_jobs WHERE task = 'noon';

-- Back-fill (a ticker starting at 12:35 after downtime): minutes from
-- start - fill (rounded up) to before start, for ids known and not fired
-- since; a new id is only registered.
DELETE FROM graphile_worker._private_jobs;
SELECT graphile_worker.set_crontab($$
*/10 * * * * every_ten ?fill=30m
*/10 * * * * no_fill ?id=no_fill
*/10 * * * * long_fill ?fill=1d
$$);
UPDATE graphile_worker._private_known_crontabs
   SET known_since = '2026-12-03 00:00+00',
       last_execution = CASE identifier WHEN 'long_fill' THEN '2026-12-03 12:10+00'::timestamptz END;
SELECT graphile_worker._cron_backfill('2026-12-03 12:35:30+00') AS added;
SELECT task, run_at, payload FROM cron_jobs;
-- backfilled minutes advanced last_execution; running it again adds nothing
SELECT identifier, known_since, last_execution FROM graphile_worker._private_known_crontabs ORDER BY 1;
SELECT graphile_worker._cron_backfill('2026-12-03 12:35:30+00') AS added;
-- an id first seen by a starting ticker is known since then, not back-filled
SELECT graphile_worker.set_crontab('*/10 * * * * fresh ?fill=1d') AS entries;
DELETE FROM graphile_worker._private_known_crontabs WHERE identifier = 'fresh';
SELECT graphile_worker._cron_backfill('2026-12-04 00:00:00+00') AS added;
SELECT identifier, known_since, last_execution FROM graphile_worker._private_known_crontabs WHERE identifier = 'fresh';

-- A crontab stored without set_crontab's checks (written into the table,
-- or set before those checks existed): a line that does not parse is left
-- out, an entry that add_job refuses is skipped, each with a WARNING naming
-- it, and the other entries of the minute fire.
DELETE FROM graphile_worker._private_jobs;
UPDATE graphile_worker._private_crontab SET crontab = E'
* * * * * good_a
* * * * * bad_nul {a: "\\u0000"}
60 * * * * unparsable
*/5 * * * * bad_key ?jobKey=' || repeat('k', 513) || E'
* * * * * good_b ?jobKey=b&tz=Europe/Paris
* * * * * bad_zone ?tz=Mars/Olympus
';
SELECT graphile_worker._cron_tick('2026-12-05 08:00:00+00') AS added;
SELECT task, run_at, key FROM cron_jobs;
-- a skipped entry counts as fired for its minute: neither another ticker
-- nor a back-fill tries that minute again
SELECT identifier, last_execution FROM graphile_worker._private_known_crontabs
 WHERE identifier IN ('good_a', 'bad_nul', 'bad_key', 'good_b') ORDER BY 1;
-- the next minute: the same again
SELECT graphile_worker._cron_tick('2026-12-05 08:01:00+00') AS added;
-- the view lists the entries that parse
SELECT line, id FROM graphile_worker.crontab ORDER BY line;
-- back-filling skips them too (00:20 and 00:40 have only the bad entry due,
-- 01:00 both); once skipped, a minute is not back-filled again
UPDATE graphile_worker._private_crontab SET crontab = E'
*/30 * * * * fill_good ?fill=1h
*/20 * * * * fill_bad ?fill=1h {a: "\\u0000"}
';
DELETE FROM graphile_worker._private_known_crontabs;
INSERT INTO graphile_worker._private_known_crontabs (identifier, known_since)
  VALUES ('fill_good', '2026-12-06 00:00+00'), ('fill_bad', '2026-12-06 00:00+00');
SELECT graphile_worker._cron_backfill('2026-12-06 01:10:00+00') AS added;
SELECT task, run_at, payload FROM cron_jobs WHERE task LIKE 'fill%';
SELECT graphile_worker._cron_backfill('2026-12-06 01:10:00+00') AS added;

DROP VIEW cron_jobs;
DROP EXTENSION graphile_worker;
