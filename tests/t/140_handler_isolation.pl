# 140_handler_isolation.pl: each job starts from a clean session, whatever
# the jobs before it left behind, and code a handler queues for later runs
# inside its own job, as its owner, or not at all.
#
# Handler owners: alice and bob (NOLOGIN, not superusers) and the bootstrap
# superuser.  graphile_worker.concurrency = 1, so the jobs of a case run one
# after another in one worker process (each case checks that they did:
# one backend pid).  Jobs added together run in priority order, and probe
# handlers of each owner (alice_probe, bob_probe, su_probe) record what
# they see in public.seen: settings, advisory locks and prepared statements
# of their session, whether the cursor alice_cur exists, lastval() and
# currval(alice_schema.alice_seq).
#   a. settings: alice's job runs set_config(..., false) of search_path,
#      graphile_worker.job_timeout (5 ms), default_transaction_read_only and
#      myapp.tenant (and sees them); the next jobs, bob's and the
#      superuser's, each sleeping 50 ms, see search_path '"$user", public',
#      no tenant, job_timeout 0, default_transaction_read_only off, and are
#      not timed out; 20 further jobs complete, in the same worker process
#      (no restart), and the log has no read-only error.
#   b. ALTER ROLE bob SET work_mem = '7MB', ALTER ROLE bob SET search_path
#      = bob_schema, public (which bob may run himself) and ALTER ROLE bob
#      IN DATABASE iso SET statement_timeout = '123s': bob's job sees all
#      three; alice's and the superuser's jobs, after bob's, see 4MB, the
#      default search_path and 0.
#   c. temporary objects: alice's job creates TEMP TABLE outbox with a
#      trigger that records the row and swallows it (and her own insert
#      shows the trap works); a later superuser job whose function has SET
#      search_path = public inserts into outbox: the row is in public.outbox,
#      alice's trigger did not run for it.
#   d. code run at commit: bob's job inserts into alice's table, which has a
#      DEFERRABLE INITIALLY DEFERRED constraint trigger running ALTER ROLE
#      alice SUPERUSER: the trigger runs in bob's job, as bob, and fails it
#      ('must be superuser to alter superuser roles or change superuser
#      attribute', attempts 1 of 1); alice's job that leaves a cursor WITH
#      HOLD over a function doing the same completes, and that function
#      never runs; alice is not a superuser afterwards, nothing was
#      recorded by the superuser.
#   e. left behind: alice's job takes pg_advisory_lock(42), PREPAREs a
#      statement and leaves the refcursor alice_cur open; bob's next job sees
#      no advisory lock of its backend, no prepared statement, and no cursor
#      alice_cur (FETCH fails); a handler running LISTEN fails with 'cannot
#      execute LISTEN within a background process'.
#   f. sequences: after alice's job calls nextval on her sequence (bob may
#      read it), bob's next job gets 'lastval is not yet defined in this
#      session' and 'currval of sequence "alice_seq" is not yet defined in
#      this session', not alice's value.
#   g. ALTER ROLE alice SET role = <the superuser>: alice's handler runs as
#      alice all the same (current_user alice, not a superuser, the role
#      setting 'none').
#
# GW_CASES=a,d runs only those cases (after the common setup).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use GwTest;

my $t_script = time;
my $node = start_node('handler_isolation', conf => q{
max_worker_processes = 16
graphile_worker.concurrency = 1
graphile_worker.poll_interval = 500
graphile_worker.sweep_interval = 1000
});
my $db = create_db($node, 'iso');
my $su = superuser_name();

sub sql { return $node->safe_psql($db, $_[0]); }

sql(q{
CREATE ROLE alice;
CREATE ROLE bob;
GRANT USAGE ON SCHEMA graphile_worker_tasks TO alice, bob;
CREATE SCHEMA alice_schema AUTHORIZATION alice;
GRANT USAGE ON SCHEMA alice_schema TO bob;
CREATE SEQUENCE alice_schema.alice_seq;
ALTER SEQUENCE alice_schema.alice_seq OWNER TO alice;
GRANT SELECT, USAGE ON SEQUENCE alice_schema.alice_seq TO bob;

CREATE TABLE public.seen (
	tag text NOT NULL,
	who text NOT NULL,
	pid int NOT NULL DEFAULT pg_backend_pid(),
	s jsonb NOT NULL);
GRANT INSERT ON public.seen TO alice, bob;
-- side effects of code that must not run (for others)
CREATE TABLE public.spied (what text NOT NULL, who text NOT NULL);
GRANT INSERT ON public.spied TO alice, bob;
CREATE TABLE public.outbox (msg text NOT NULL, who text NOT NULL DEFAULT current_user);

-- The body of the probe handlers: records what the session looks like.
CREATE FUNCTION public.probe(payload json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  cur refcursor := 'alice_cur';
  x int;
  fetched text;
  lv text;
  cv text;
BEGIN
  PERFORM pg_catalog.pg_sleep(coalesce((payload->>'sleep')::float8, 0));
  BEGIN
    FETCH cur INTO x;
    fetched := 'fetched ' || coalesce(x::text, 'nothing');
  EXCEPTION WHEN invalid_cursor_name THEN
    fetched := 'error: ' || SQLERRM;
  END;
  BEGIN
    lv := pg_catalog.lastval()::text;
  EXCEPTION WHEN OTHERS THEN
    lv := 'error: ' || SQLERRM;
  END;
  BEGIN
    cv := pg_catalog.currval('alice_schema.alice_seq')::text;
  EXCEPTION WHEN OTHERS THEN
    cv := 'error: ' || SQLERRM;
  END;
  INSERT INTO public.seen (tag, who, s) VALUES (payload->>'tag', current_user, pg_catalog.jsonb_build_object(
    'search_path', pg_catalog.current_setting('search_path'),
    'tenant', coalesce(nullif(pg_catalog.current_setting('myapp.tenant', true), ''), '<none>'),
    'job_timeout', pg_catalog.current_setting('graphile_worker.job_timeout'),
    'default_transaction_read_only', pg_catalog.current_setting('default_transaction_read_only'),
    'work_mem', pg_catalog.current_setting('work_mem'),
    'statement_timeout', pg_catalog.current_setting('statement_timeout'),
    'advisory_locks', (SELECT count(*) FROM pg_catalog.pg_locks
                        WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()),
    'prepared', (SELECT count(*) FROM pg_catalog.pg_prepared_statements),
    'cursor', fetched, 'lastval', lv, 'currval', cv));
END $$;
});
for my $owner ('alice', 'bob', $su)
{
	my $name = $owner eq $su ? 'su' : $owner;
	sql(qq{
CREATE FUNCTION graphile_worker_tasks.${name}_probe(payload json) RETURNS void
LANGUAGE sql AS \$\$ SELECT public.probe(payload) \$\$;
ALTER FUNCTION graphile_worker_tasks.${name}_probe(json) OWNER TO "$owner";
});
}

# Adds jobs (task, payload, extra add_job arguments) in one transaction, in
# increasing priority; returns their ids.
sub add_in_order
{
	my @jobs = @_;
	my $i = 0;
	my $body = join '', map {
		my ($task, $payload, $extra) = @$_;
		$i++;
		"SELECT id FROM graphile_worker.add_job('$task', '$payload', priority => $i"
		  . ($extra ? ", $extra" : '') . ");\n"
	} @jobs;
	return split /\n/, sql("BEGIN;\n${body}COMMIT;");
}

# What the probe of the job tagged $tag saw: the values of @keys, '|'-joined.
sub seen
{
	my ($tag, @keys) = @_;
	return sql(qq{SELECT concat_ws('|', who, } . join(', ', map { "s->>'$_'" } @keys)
		  . qq{) FROM public.seen WHERE tag = '$tag'});
}

# The backend pids that ran the probes tagged like $pattern.
sub pids_of
{
	my ($pattern) = @_;
	return sql(qq{SELECT count(DISTINCT pid) FROM public.seen WHERE tag LIKE '$pattern'});
}

my $worker_pid = q{
SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity
 WHERE backend_type = 'graphile_worker job worker' AND datname = current_database()};
my $idle = job_workers_sql();

# ---------------------------------------------------------------- a
run_case('a', sub {
	my $s = 'a (settings)';
	sql(q{
CREATE FUNCTION graphile_worker_tasks.alice_settings(payload json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('search_path', 'alice_schema, public', false);
  PERFORM set_config('graphile_worker.job_timeout', '5', false);
  PERFORM set_config('default_transaction_read_only', 'on', false);
  PERFORM set_config('myapp.tenant', '42', false);
  PERFORM public.probe(payload);
END $$;
ALTER FUNCTION graphile_worker_tasks.alice_settings(json) OWNER TO alice;
});
	poll_is($node, $db, $idle, '1:idle', "$s: 1 idle job worker");
	my $pid = sql($worker_pid);
	my $off = -s $node->logfile;
	my @ids = add_in_order(
		[ 'alice_settings', '{"tag": "a_alice"}' ],
		[ 'bob_probe',      '{"tag": "a_bob", "sleep": 0.05}' ],
		[ 'su_probe',       '{"tag": "a_su", "sleep": 0.05}' ]);
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.jobs WHERE id IN (} . join(',', @ids) . ')',
		'0', "$s: the 3 jobs completed", 30);
	is(seen('a_alice', qw(search_path tenant job_timeout)),
		'alice|alice_schema, public|42|5ms', "$s: alice's job saw its own settings");
	my $clean = '"$user", public|<none>|0|off';
	is(seen('a_bob', qw(search_path tenant job_timeout default_transaction_read_only)),
		"bob|$clean", "$s: bob's job, next, sees the default search_path, no tenant, no job timeout, read-write");
	is(seen('a_su', qw(search_path tenant job_timeout default_transaction_read_only)),
		"$su|$clean", "$s: and so does the superuser's job");
	sql(q{SELECT count(graphile_worker.add_job(CASE WHEN i % 2 = 0 THEN 'bob_probe' ELSE 'su_probe' END,
		json_build_object('tag', 'a_more_' || i, 'sleep', 0.01))) FROM generate_series(1, 20) AS i});
	poll_is($node, $db, q{SELECT count(*) FROM public.seen WHERE tag LIKE 'a_more_%'}, '20',
		"$s: 20 further jobs complete", 30);
	is(pids_of('a_%') . '|' . sql($worker_pid), "1|$pid",
		"$s: all in the same worker process ($pid), which is still there");
	is(count_lines(slurp_file($node->logfile, $off), qr/read-only transaction|exited with exit code/), 0,
		"$s: log: no read-only transaction error, no worker exit");
});

# ---------------------------------------------------------------- b
run_case('b', sub {
	my $s = 'b (role settings)';
	sql(qq{
ALTER ROLE bob SET work_mem = '7MB';
ALTER ROLE bob SET search_path = bob_schema, public;
ALTER ROLE bob IN DATABASE $db SET statement_timeout = '123s';
});
	my @ids = add_in_order(
		[ 'bob_probe',   '{"tag": "b_bob"}' ],
		[ 'alice_probe', '{"tag": "b_alice"}' ],
		[ 'su_probe',    '{"tag": "b_su"}' ]);
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.jobs WHERE id IN (} . join(',', @ids) . ')',
		'0', "$s: the 3 jobs completed", 30);
	is(seen('b_bob', qw(work_mem search_path statement_timeout)), 'bob|7MB|bob_schema, public|123s',
		"$s: bob's job has his ALTER ROLE (work_mem, search_path) and ALTER ROLE IN DATABASE (statement_timeout) settings");
	is(seen('b_alice', qw(work_mem search_path statement_timeout)), 'alice|4MB|"$user", public|0',
		"$s: alice's job, next, has none of them");
	is(seen('b_su', qw(work_mem search_path statement_timeout)), qq{$su|4MB|"\$user", public|0},
		"$s: nor has the superuser's");
	is(pids_of('b_%'), '1', "$s: (one worker process)");
	sql(qq{
ALTER ROLE bob RESET work_mem;
ALTER ROLE bob RESET search_path;
ALTER ROLE bob IN DATABASE $db RESET statement_timeout;
});
});

# ---------------------------------------------------------------- c
run_case('c', sub {
	my $s = 'c (temporary objects)';
	sql(q{
-- records the row and swallows it
CREATE FUNCTION alice_schema.outbox_spy() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.spied (what, who) VALUES (NEW.msg, current_user);
  RETURN NULL;
END $$;
ALTER FUNCTION alice_schema.outbox_spy() OWNER TO alice;
CREATE FUNCTION graphile_worker_tasks.alice_temp(payload json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE outbox (msg text NOT NULL, who text NOT NULL DEFAULT current_user);
  CREATE TRIGGER spy BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION alice_schema.outbox_spy();
  INSERT INTO outbox (msg) VALUES ('c_alice');
END $$;
ALTER FUNCTION graphile_worker_tasks.alice_temp(json) OWNER TO alice;
CREATE FUNCTION graphile_worker_tasks.su_outbox(payload json) RETURNS void
LANGUAGE sql SET search_path = public AS $$
  INSERT INTO outbox (msg) VALUES (payload->>'msg')
$$;
});
	my @ids = add_in_order(
		[ 'alice_temp', '{}' ],
		[ 'su_outbox',  '{"msg": "c_su"}' ]);
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.jobs WHERE id IN (} . join(',', @ids) . ')',
		'0', "$s: both jobs completed", 30);
	is(sql(q{SELECT string_agg(what || '|' || who, ',') FROM public.spied}), 'c_alice|alice',
		"$s: alice's trigger ran for her own insert only");
	is(sql(q{SELECT string_agg(msg || '|' || who, ',') FROM public.outbox}), "c_su|$su",
		"$s: the superuser's row is in public.outbox (the temporary outbox is gone)");
	sql('TRUNCATE public.spied');
});

# ---------------------------------------------------------------- d
run_case('d', sub {
	my $s = 'd (code run at commit)';
	sql(q{
CREATE FUNCTION alice_schema.escalate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.spied (what, who) VALUES ('escalate', current_user);
  EXECUTE 'ALTER ROLE alice SUPERUSER';
  RETURN NULL;
END $$;
ALTER FUNCTION alice_schema.escalate() OWNER TO alice;
CREATE TABLE alice_schema.d_table (x int);
ALTER TABLE alice_schema.d_table OWNER TO alice;
GRANT INSERT ON alice_schema.d_table TO bob;
SET ROLE alice;
CREATE CONSTRAINT TRIGGER escalate AFTER INSERT ON alice_schema.d_table
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION alice_schema.escalate();
RESET ROLE;
CREATE FUNCTION graphile_worker_tasks.bob_write_d(payload json) RETURNS void
LANGUAGE sql AS $$ INSERT INTO alice_schema.d_table VALUES (1) $$;
ALTER FUNCTION graphile_worker_tasks.bob_write_d(json) OWNER TO bob;

CREATE FUNCTION alice_schema.evil() RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.spied (what, who) VALUES ('evil', current_user);
  EXECUTE 'ALTER ROLE alice SUPERUSER';
  RETURN 1;
END $$;
ALTER FUNCTION alice_schema.evil() OWNER TO alice;
CREATE FUNCTION graphile_worker_tasks.alice_hold(payload json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'DECLARE evil_c CURSOR WITH HOLD FOR SELECT alice_schema.evil()';
END $$;
ALTER FUNCTION graphile_worker_tasks.alice_hold(json) OWNER TO alice;
});
	my ($write, $hold, $after) = add_in_order(
		[ 'bob_write_d', '{}', 'max_attempts => 1' ],
		[ 'alice_hold',  '{}', 'max_attempts => 1' ],
		[ 'su_probe',    '{"tag": "d_su"}' ]);
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.jobs WHERE id IN ($hold, $after)},
		'0', "$s: alice's job with the held cursor and a later job completed", 30);
	# The error bob gets, in the server's words (they differ between
	# major versions), with its detail as last_error shows it
	my $denied = sql(q{
CREATE FUNCTION pg_temp.denied() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE m text; d text;
BEGIN
  SET LOCAL ROLE bob;
  ALTER ROLE alice SUPERUSER;
  RETURN 'not denied';
EXCEPTION WHEN insufficient_privilege THEN
  GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
  RETURN m || CASE WHEN d <> '' THEN E'\nDETAIL: ' || d ELSE '' END;
END $f$;
SELECT pg_temp.denied();}) . "\n";
	is(sql(qq{SELECT attempts || '/' || max_attempts || '|' || (locked_by IS NULL) || '|' || coalesce(last_error, '<null>')
		FROM graphile_worker.jobs WHERE id = $write}),
		"1/1|true|$denied"
		  . "CONTEXT: SQL statement \"ALTER ROLE alice SUPERUSER\"\n"
		  . 'PL/pgSQL function alice_schema.escalate() line 4 at EXECUTE',
		"$s: bob's job failed: the deferred trigger ran in it, as bob");
	is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}), 'f', "$s: alice is not a superuser");
	is(sql(q{SELECT count(*) FROM public.spied}), '0',
		"$s: neither the trigger (rolled back with bob's job) nor the held cursor's function left a trace");
	sql('ALTER ROLE alice NOSUPERUSER; TRUNCATE public.spied');
});

# ---------------------------------------------------------------- e
run_case('e', sub {
	my $s = 'e (left behind)';
	sql(q{
CREATE FUNCTION graphile_worker_tasks.alice_leave(payload json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  cur refcursor := 'alice_cur';
BEGIN
  PERFORM pg_advisory_lock(42);
  EXECUTE 'PREPARE alice_stmt AS SELECT 1';
  OPEN cur FOR SELECT 7;
  PERFORM public.probe(payload);
END $$;
ALTER FUNCTION graphile_worker_tasks.alice_leave(json) OWNER TO alice;
CREATE FUNCTION graphile_worker_tasks.su_listen(payload json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  LISTEN some_channel;
END $$;
});
	my @ids = add_in_order(
		[ 'alice_leave', '{"tag": "e_alice"}' ],
		[ 'bob_probe',   '{"tag": "e_bob"}' ]);
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.jobs WHERE id IN (} . join(',', @ids) . ')',
		'0', "$s: both jobs completed", 30);
	is(seen('e_alice', qw(advisory_locks prepared)), 'alice|1|1',
		"$s: alice's job saw its advisory lock and prepared statement");
	is(seen('e_bob', qw(advisory_locks prepared cursor)),
		'bob|0|0|error: cursor "alice_cur" does not exist',
		"$s: bob's next job: no advisory lock held, no prepared statement, no cursor alice_cur");
	is(pids_of('e_%'), '1', "$s: (one worker process)");
	my $listen = sql(q{SELECT id FROM graphile_worker.add_job('su_listen', '{}', max_attempts => 1)});
	poll_is($node, $db, qq{SELECT attempts || '|' || last_error FROM graphile_worker.jobs
		WHERE id = $listen AND last_error IS NOT NULL},
		"1|cannot execute LISTEN within a background process\n"
		  . 'CONTEXT: SQL statement "LISTEN some_channel"' . "\n"
		  . 'PL/pgSQL function graphile_worker_tasks.su_listen(json) line 3 at SQL statement',
		"$s: LISTEN in a handler fails the job", 30);
});

# ---------------------------------------------------------------- f
run_case('f', sub {
	my $s = 'f (sequences)';
	sql(q{
CREATE FUNCTION graphile_worker_tasks.alice_nextval(payload json) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('alice_schema.alice_seq');
  PERFORM public.probe(payload);
END $$;
ALTER FUNCTION graphile_worker_tasks.alice_nextval(json) OWNER TO alice;
});
	my @ids = add_in_order(
		[ 'alice_nextval', '{"tag": "f_alice"}' ],
		[ 'bob_probe',     '{"tag": "f_bob"}' ]);
	poll_is($node, $db, qq{SELECT count(*) FROM graphile_worker.jobs WHERE id IN (} . join(',', @ids) . ')',
		'0', "$s: both jobs completed", 30);
	my $v = sql('SELECT last_value FROM alice_schema.alice_seq');
	is(seen('f_alice', qw(lastval currval)), "alice|$v|$v", "$s: alice's job saw lastval = currval = $v");
	is(seen('f_bob', qw(lastval currval)),
		'bob|error: lastval is not yet defined in this session'
		  . '|error: currval of sequence "alice_seq" is not yet defined in this session',
		"$s: bob's next job gets errors, not alice's value");
	is(pids_of('f_%'), '1', "$s: (one worker process)");
});

run_case('g', sub {
	my $s = 'g (ALTER ROLE ... SET role)';
	my $su = superuser_name();
	sql(qq{
CREATE TABLE public.who (who text, is_superuser text, role text);
GRANT INSERT ON public.who TO alice;
CREATE FUNCTION graphile_worker_tasks.alice_who(payload json) RETURNS void
LANGUAGE sql AS \$\$ INSERT INTO public.who VALUES (current_user,
  (SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user), current_setting('role')) \$\$;
ALTER FUNCTION graphile_worker_tasks.alice_who(json) OWNER TO alice;
ALTER ROLE alice SET role = '$su';
});
	my $id = sql(q{SELECT id FROM graphile_worker.add_job('alice_who', '{}')});
	poll_is($node, $db, "SELECT count(*) FROM graphile_worker.jobs WHERE id = $id", '0',
		"$s: alice's job completed", 30);
	is(sql('SELECT who || \'|\' || is_superuser || \'|\' || role FROM public.who'),
		'alice|false|none',
		"$s: a role setting of the owner is not applied: the handler runs as alice, not as the superuser");
	sql('ALTER ROLE alice RESET role');
});

is(count_lines(slurp_file($node->logfile), qr/LOG:  .* was terminated by signal/), 0,
	'end: no process was terminated by a signal (no crash)');
$node->stop;
note sprintf('140_handler_isolation took %.1f s', time - $t_script);
done_testing();
