-- crontab: set_crontab checks the whole text first and changes nothing on
-- any error, reporting the line, column and reason; the crontab view lists
-- each entry with its options, what _private_known_crontabs says about it,
-- and when it fires next.  New ids are known from set_crontab on.
CREATE EXTENSION IF NOT EXISTS graphile_worker;
\set SHOW_CONTEXT never

SELECT graphile_worker.set_crontab($$
# reports
0 4 * * *      daily_report
*/15 9-17 * * 1-5 poll_feed ?id=feed&fill=2h30m&max=3&queue=feeds&priority=-5 {source: 'rss', tags: ['a', 'b',],}
30 12 1,15 * 7 cleanup ?jobKey=cleanup&jobKeyMode=preserve_run_at&tz=Europe/Paris
0 0 29 2 *     leap_day ?tz=America/New_York {"x": 1}
$$) AS entries;

SELECT line, id, task_identifier, schedule, time_zone, fill, max_attempts,
       queue_name, job_key, job_key_mode, priority, payload
  FROM graphile_worker.crontab ORDER BY line;

-- every id is known since set_crontab's transaction, never fired
SELECT id, known_since = (SELECT updated_at FROM graphile_worker._private_crontab) AS known_then,
       last_execution
  FROM graphile_worker.crontab ORDER BY line;

-- next_run_at: the first firing after the current minute.  The result must
-- not depend on when the test runs: each entry's next_run_at is compared
-- with a plain search of the minutes of the next 8 days (its local wall
-- clock matches the entry's fields; no entry fires in an hour that a
-- daylight saving time change skips or repeats), or of the next 8 years
-- for February 29.
CREATE TEMP TABLE minutes AS
  SELECT m FROM generate_series(date_trunc('minute', now()) + interval '1 minute',
                                date_trunc('minute', now()) + interval '8 days',
                                interval '1 minute') AS m;
CREATE FUNCTION local_is(ts timestamptz, zone text, fmt text, expected text)
RETURNS boolean LANGUAGE sql AS $$ SELECT to_char(ts AT TIME ZONE zone, fmt) = expected $$;
SELECT id,
       next_run_at = CASE id
         WHEN 'daily_report' THEN
           (SELECT min(m) FROM minutes WHERE local_is(m, 'UTC', 'HH24:MI', '04:00'))
         WHEN 'feed' THEN
           (SELECT min(m) FROM minutes
             WHERE to_char(m AT TIME ZONE 'UTC', 'MI') IN ('00', '15', '30', '45')
               AND to_char(m AT TIME ZONE 'UTC', 'HH24')::int BETWEEN 9 AND 17
               AND to_char(m AT TIME ZONE 'UTC', 'ID')::int BETWEEN 1 AND 5)
         WHEN 'cleanup' THEN
           (SELECT min(m) FROM minutes
             WHERE local_is(m, 'Europe/Paris', 'HH24:MI', '12:30')
               AND (to_char(m AT TIME ZONE 'Europe/Paris', 'DD') IN ('01', '15')
                    OR local_is(m, 'Europe/Paris', 'D', '1')))
         WHEN 'leap_day' THEN
           (SELECT min(d::date)::timestamp AT TIME ZONE 'America/New_York'
              FROM generate_series(now() AT TIME ZONE 'America/New_York' + interval '1 minute',
                                   now() AT TIME ZONE 'America/New_York' + interval '8 years',
                                   interval '1 day') AS d
             WHERE to_char(d, 'MM-DD') = '02-29'
               AND d::date > (now() AT TIME ZONE 'America/New_York')::date)
         END AS next_ok,
       next_run_at > now() AS in_future
  FROM graphile_worker.crontab ORDER BY line;
-- local times that hold whenever the test runs
SELECT id, to_char(next_run_at AT TIME ZONE time_zone, 'HH24:MI') AS local_time
  FROM graphile_worker.crontab WHERE id <> 'feed' ORDER BY line;
DROP TABLE minutes;
DROP FUNCTION local_is(timestamptz, text, text, text);

-- Errors: each names the line and column, and nothing changes.
CREATE TABLE before AS
  SELECT (SELECT crontab FROM graphile_worker._private_crontab) AS crontab,
         (SELECT array_agg(k ORDER BY identifier) FROM graphile_worker._private_known_crontabs k) AS known;
CREATE FUNCTION unchanged() RETURNS boolean LANGUAGE sql AS $$
  SELECT (SELECT crontab FROM graphile_worker._private_crontab) = b.crontab
     AND (SELECT array_agg(k ORDER BY identifier) FROM graphile_worker._private_known_crontabs k) = b.known
    FROM before b $$;

SELECT graphile_worker.set_crontab(E'0 4 * * * new_task\n60 * * * * bad_minute');
SELECT unchanged();
SELECT graphile_worker.set_crontab(E'  * * 32 * * t');
SELECT graphile_worker.set_crontab('* * * 0 * t');
SELECT graphile_worker.set_crontab('* * * * 8 t');
SELECT graphile_worker.set_crontab('5-1 * * * * t');
SELECT graphile_worker.set_crontab('1-10/2 * * * * t');
SELECT graphile_worker.set_crontab('*/0 * * * * t');
SELECT graphile_worker.set_crontab('* * * JAN * t');
SELECT graphile_worker.set_crontab('@daily t');
SELECT graphile_worker.set_crontab('* * * * * 9task');
SELECT graphile_worker.set_crontab('* * * * *');
SELECT graphile_worker.set_crontab('* * * * * t ?foo=1');
SELECT graphile_worker.set_crontab('* * * * * t ?max=1&max=2');
SELECT graphile_worker.set_crontab('* * * * * t ?max=0');
SELECT graphile_worker.set_crontab('* * * * * t ?priority=40000');
SELECT graphile_worker.set_crontab('* * * * * t ?fill=3x');
SELECT graphile_worker.set_crontab('* * * * * t ?jobKeyMode=unsafe_dedupe');
SELECT graphile_worker.set_crontab('* * * * * t ?queue=a%20b');
SELECT graphile_worker.set_crontab('* * * * * t ?tz=Mars/Olympus_Mons');
SELECT graphile_worker.set_crontab('* * * * * t {a: }');
SELECT graphile_worker.set_crontab('* * * * * t {"a": NaN}');
SELECT graphile_worker.set_crontab('* * * * * t [1, 2]');
SELECT graphile_worker.set_crontab(E'* * * * * t\n0 * * * * t');
SELECT graphile_worker.set_crontab(E'* * * * * a ?id=x\n0 * * * * b ?id=x');
-- what add_job would refuse when the entry fires is refused here: a
-- payload jsonb cannot hold, a jobKey over 512 characters or not valid in
-- the database encoding (512 two-byte characters are fine)
SELECT graphile_worker.set_crontab(E'0 4 * * * ok\n* * * * * t {a: "\\u0000"}');
SELECT graphile_worker.set_crontab(E'* * * * * t {a: \'\\x00\'}');
SELECT graphile_worker.set_crontab('* * * * * t {n: 1e1000000}');
SELECT graphile_worker.set_crontab('* * * * * t ?jobKey=' || repeat('k', 513));
SELECT graphile_worker.set_crontab('* * * * * t ?jobKey=%FF');
SELECT graphile_worker.set_crontab(NULL);
SELECT unchanged();
BEGIN;
SELECT graphile_worker.set_crontab('* * * * * t ?jobKey=' || repeat('é', 512)) AS entries;
SELECT length(job_key) FROM graphile_worker.crontab;
ROLLBACK;

-- a valid text replaces the crontab; ids that stay keep their history
SELECT graphile_worker.set_crontab('0 4 * * * daily_report') AS entries;
SELECT id, schedule FROM graphile_worker.crontab;
SELECT count(*) AS known_rows FROM graphile_worker._private_known_crontabs;
-- an empty text (or only comments) leaves no entry
SELECT graphile_worker.set_crontab(E'# nothing\n\n') AS entries;
SELECT count(*) AS entries FROM graphile_worker.crontab;

-- only the owner (or roles it grants EXECUTE) may set the crontab
CREATE ROLE gw_cron_user;
GRANT USAGE ON SCHEMA graphile_worker TO gw_cron_user;
SET ROLE gw_cron_user;
SELECT graphile_worker.set_crontab('* * * * * t');
SELECT * FROM graphile_worker.crontab;
RESET ROLE;
DROP OWNED BY gw_cron_user;
DROP ROLE gw_cron_user;
DROP TABLE before;
DROP FUNCTION unchanged();
DROP EXTENSION graphile_worker;
