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
30 2 1,15 * 7  cleanup ?jobKey=cleanup&jobKeyMode=preserve_run_at&tz=Europe/Paris
0 0 29 2 *     leap_day ?tz=America/New_York {"x": 1}
$$) AS entries;

SELECT line, id, task_identifier, schedule, time_zone, fill, max_attempts,
       queue_name, job_key, job_key_mode, priority, payload
  FROM graphile_worker.crontab ORDER BY line;

-- every id is known since set_crontab's transaction, never fired
SELECT id, known_since = (SELECT updated_at FROM graphile_worker._private_crontab) AS known_then,
       last_execution
  FROM graphile_worker.crontab ORDER BY line;

-- next_run_at: the first firing after the current minute
SELECT id,
       next_run_at = CASE id
         WHEN 'daily_report' THEN
           date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '4 hours'
           + CASE WHEN now() >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '4 hours'
                  THEN interval '1 day' ELSE interval '0' END
         ELSE next_run_at END AS next_daily_ok,
       next_run_at > now() AS in_future,
       (next_run_at AT TIME ZONE time_zone)::time AS local_time
  FROM graphile_worker.crontab ORDER BY line;
-- leap day: the next February 29 at midnight in New York
SELECT (next_run_at AT TIME ZONE 'America/New_York')::date AS leap_day,
       extract(month FROM next_run_at AT TIME ZONE 'America/New_York') = 2
   AND extract(day FROM next_run_at AT TIME ZONE 'America/New_York') = 29 AS is_feb_29
  FROM graphile_worker.crontab WHERE id = 'leap_day';

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
SELECT graphile_worker.set_crontab(NULL);
SELECT unchanged();

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
