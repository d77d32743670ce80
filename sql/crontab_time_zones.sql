-- crontab_time_zones: entries match local wall-clock time in their tz
-- option's zone (else graphile_worker.cron_timezone, UTC by default).
-- Each local minute that matches fires once, at the first instant the
-- local clock reaches it: on a spring-forward day the minutes of the
-- skipped hour fire once, when the clock jumps (03:00 local); on a
-- fall-back day the repeated hour's minutes fire only the first time.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never
DELETE FROM graphile_worker._private_jobs;
DELETE FROM graphile_worker._private_known_crontabs;
SET TIME ZONE 'UTC';
SHOW graphile_worker.cron_timezone;
CREATE FUNCTION fired(tz text) RETURNS TABLE (task text, utc text, local text, ts text)
LANGUAGE sql AS $$
  SELECT t.identifier, to_char(j.run_at, 'MM-DD HH24:MI'),
         to_char(j.run_at AT TIME ZONE tz, 'MM-DD HH24:MI'), j.payload->'_cron'->>'ts'
    FROM graphile_worker._private_jobs j
    JOIN graphile_worker._private_tasks t ON t.id = j.task_id
   ORDER BY j.id $$;
-- tick every minute of [from, to)
CREATE FUNCTION tick(from_ts timestamptz, to_ts timestamptz) RETURNS bigint
LANGUAGE sql AS $$
  SELECT sum(graphile_worker._cron_tick(m))
    FROM generate_series(from_ts, to_ts - interval '1 minute', interval '1 minute') m $$;

-- Without tz: UTC.
SELECT graphile_worker.set_crontab('0 9 * * * utc_nine');
SELECT tick('2026-07-01 08:58+00', '2026-07-01 09:03+00') AS added;
SELECT * FROM fired('UTC');
SELECT time_zone FROM graphile_worker.crontab;
DELETE FROM graphile_worker._private_jobs;
DELETE FROM graphile_worker._private_known_crontabs;

-- Europe/Paris, spring forward on 2026-03-29: 02:00 CET becomes 03:00 CEST
-- (01:00 UTC).
SELECT graphile_worker.set_crontab($$
30 2 * * *    at_0230 ?tz=Europe/Paris
*/20 * * * *  every_20 ?tz=Europe/Paris
0 * * * *     hourly ?tz=Europe/Paris
$$);
SELECT tick('2026-03-28 23:50+00', '2026-03-29 02:10+00') AS added;
SELECT * FROM fired('Europe/Paris');
DELETE FROM graphile_worker._private_jobs;
DELETE FROM graphile_worker._private_known_crontabs;

-- Europe/Paris, fall back on 2026-10-25: 03:00 CEST becomes 02:00 CET
-- (01:00 UTC); 02:00-02:59 local happens twice.
SELECT tick('2026-10-24 23:50+00', '2026-10-25 02:10+00') AS added;
SELECT * FROM fired('Europe/Paris');
DELETE FROM graphile_worker._private_jobs;
DELETE FROM graphile_worker._private_known_crontabs;

-- America/New_York, 01:30 on both 2026 transition days (spring forward on
-- 03-08 at 07:00 UTC: 01:30 exists; fall back on 11-01 at 06:00 UTC:
-- 01:30 happens twice and fires once).
SELECT graphile_worker.set_crontab('30 1 * * * ny_0130 ?tz=America/New_York');
SELECT tick('2026-03-08 05:00+00', '2026-03-08 08:00+00') AS added;
SELECT tick('2026-11-01 04:00+00', '2026-11-01 08:00+00') AS added;
SELECT * FROM fired('America/New_York');
-- the view's next firing is in the entry's zone
SELECT time_zone, (next_run_at AT TIME ZONE 'America/New_York')::time AS local_time
  FROM graphile_worker.crontab;

-- A fixed-offset zone and a zone with a 45-minute offset.
DELETE FROM graphile_worker._private_jobs;
DELETE FROM graphile_worker._private_known_crontabs;
SELECT graphile_worker.set_crontab($$
0 12 * * * kathmandu ?tz=Asia/Kathmandu
0 12 * * * utc_plus_0 ?tz=Etc/UTC
$$);
SELECT tick('2026-06-01 06:00+00', '2026-06-01 12:30+00') AS added;
SELECT * FROM fired('Asia/Kathmandu');

DROP FUNCTION fired(text);
DROP FUNCTION tick(timestamptz, timestamptz);
DROP EXTENSION graphile_worker;
