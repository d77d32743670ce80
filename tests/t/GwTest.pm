# GwTest.pm: the setup and helpers every TAP script in tests/t shares.
#
# A script starts with
#   my $node = start_node('name', conf => q{graphile_worker.concurrency = 2});
#   my $db   = create_db($node, 'gw');
# and, if it dies (a failed safe_psql, a server that went down), the log
# lines of every node started here about processes that died are shown.
#
# Servers and databases
#   start_node($name, %opt)  a PostgreSQL::Test::Cluster with graphile_worker
#                            in shared_preload_libraries, started; options:
#                            conf => postgresql.conf lines to add,
#                            init => { options of Cluster->init, e.g.
#                            allows_streaming => 1 }; its log is watched
#                            as report_deaths_on_die does
#   create_db($node, $name, %opt)
#                            CREATE DATABASE $name, then in it CREATE
#                            EXTENSION graphile_worker and CREATE SCHEMA
#                            graphile_worker_tasks; extension => 0 skips
#                            both, tasks => 0 the schema; returns $name
#   report_deaths_on_die(@nodes)
#                            if the script dies, show what the logs of
#                            @nodes (and of every node start_node started)
#                            say about processes that died: for nodes made
#                            otherwise, e.g. a standby
#   superuser_name()         the role initdb created: the OS user running
#                            the test
#   pg_env($node, $db)       the PG* variables that point a libpq or
#                            node-postgres client at $node / $db
#   describe_schema($node, $db)
#                            the output of tests/sql/describe_schema.sql
#                            (psql -XAtq) in $db
#   describe_extension($node, $db)
#                            the output of tests/sql/describe_extension.sql
#                            in $db: every catalog fact of the extension
#   install_node_package()   installs graphile-worker 0.18.0 from the npm
#                            registry into a scratch folder, with the task
#                            folder (tasks/js_task.cjs) and add_job.mjs of
#                            tests/interop next to node_modules, and returns
#                            the folder (one is() test: the version); skips
#                            the whole script when node or npm is missing
#                            or the registry cannot be reached
#   run_cmd(\@cmd, %opt)     run a program (env => {..}, cwd => dir,
#                            stdin => text, timeout => seconds, default
#                            60); returns a hash ref { rc, stdout, stderr,
#                            timed_out, error }; rc is undef when the
#                            program could not be run or timed out (then
#                            killed)
#
# Waiting and checking
#   poll_value($node, $db, $query, $expected, $timeout)
#                            runs $query every 100 ms until it returns
#                            $expected (a string or a qr//) or $timeout
#                            seconds pass (default: the test timeout);
#                            returns the last output and the seconds waited
#   poll_is($node, $db, $query, $expected, $name, $timeout)
#                            poll_value as one is() test
#   stays_is($node, $db, $query, $expected, $seconds, $name)
#                            $query keeps returning $expected for $seconds
#   session_poll($session, $query, $expected, %opt)
#                            runs $query on an open background_psql session
#                            every interval_ms (default 5) until it returns
#                            $expected (undef: anything but '') or timeout
#                            seconds pass (default: the test timeout);
#                            returns the last output
#   wait_log($node, $re, $offset, $timeout)
#                            waits until the server log from byte $offset
#                            matches $re, checking every 50 ms, at most
#                            $timeout seconds (default 30); true if it did
#   count_lines($text, $re)  how many lines of $text match $re
#   job_workers_sql()        a query run in a database: its job workers as
#                            "count:states" (e.g. "2:idle", "1:busy,paused")
#   processes_sql($dbname)   a query (run anywhere): "supervisors|job
#                            workers" of database $dbname (e.g. "1|2")
#   run_case($id, $code)     runs $code unless GW_CASES (e.g. "a,d") names
#                            other cases: to run part of a long script
package GwTest;

use strict;
use warnings;

use Exporter 'import';
use File::Copy ();
use File::Path ();
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More ();
use Time::HiRes ();

our @EXPORT = qw(start_node create_db report_deaths_on_die superuser_name
  pg_env describe_schema describe_extension install_node_package run_cmd poll_value poll_is stays_is session_poll
  wait_log count_lines job_workers_sql processes_sql run_case);

# start_node($name, conf => $lines, init => \%init_options)
sub start_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opt{init} // {} });
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'graphile_worker'\n" . ($opt{conf} // ''));
	$node->start;
	report_deaths_on_die($node);
	return $node;
}

# create_db($node, $name, extension => 0, tasks => 0)
sub create_db
{
	my ($node, $name, %opt) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $name");
	return $name if defined $opt{extension} && !$opt{extension};
	$node->safe_psql($name, 'CREATE EXTENSION graphile_worker');
	$node->safe_psql($name, 'CREATE SCHEMA graphile_worker_tasks')
	  unless defined $opt{tasks} && !$opt{tasks};
	return $name;
}

# report_deaths_on_die(@nodes): if the script dies (e.g. a server went
# down), show what the logs of the nodes registered so far say about
# processes that died.  start_node registers every node it starts.
my @watched;

sub report_deaths_on_die
{
	push @watched, @_;
	$SIG{__DIE__} = sub {
		return if $^S;    # inside an eval
		for my $node (@watched)
		{
			my $log = -e $node->logfile ? slurp_file($node->logfile) : '';
			my @died = grep { /terminated by signal|exited with exit code [1-9]/ }
			  split /\n/, $log;
			Test::More::diag($node->name . ": the server log says:\n"
				  . join("\n", @died))
			  if @died;
		}
	};
	return;
}

sub superuser_name
{
	return scalar getpwuid($<);
}

sub pg_env
{
	my ($node, $db) = @_;
	return {
		PGHOST     => $node->host,
		PGPORT     => $node->port,
		PGUSER     => superuser_name(),
		PGDATABASE => $db,
	};
}

sub describe_schema
{
	my ($node, $db) = @_;
	my $sql = slurp_file("$ENV{GW_SOURCE_DIR}/tests/sql/describe_schema.sql");
	return $node->safe_psql($db, $sql);
}

sub describe_extension
{
	my ($node, $db) = @_;
	my $sql = slurp_file("$ENV{GW_SOURCE_DIR}/tests/sql/describe_extension.sql");
	return $node->safe_psql($db, $sql);
}

sub install_node_package
{
	my $scratch = PostgreSQL::Test::Utils::tempdir('node');
	my %npm_env = (
		npm_config_update_notifier => 'false',
		npm_config_fund            => 'false',
		npm_config_audit           => 'false',
		npm_config_fetch_retries   => '1',
		npm_config_fetch_timeout   => '15000',);

	my $r = run_cmd([ 'node', '--version' ]);
	Test::More::plan(skip_all => 'node is not installed: ' . ($r->{error} // $r->{stderr}))
	  unless defined $r->{rc} && $r->{rc} == 0;
	my $node_version = $r->{stdout};
	chomp $node_version;

	$r = run_cmd([ 'npm', 'init', '-y' ], cwd => $scratch, env => \%npm_env);
	Test::More::plan(skip_all => 'npm is not usable: ' . ($r->{error} // $r->{stderr}))
	  unless defined $r->{rc} && $r->{rc} == 0;

	$r = run_cmd(
		[ 'npm', 'install', '--no-audit', '--no-fund', 'graphile-worker@0.18.0' ],
		cwd     => $scratch,
		env     => \%npm_env,
		timeout => 45);
	unless (defined $r->{rc} && $r->{rc} == 0)
	{
		my $why =
		    $r->{timed_out} ? 'npm install timed out after 45 s'
		  : defined $r->{rc} ? "npm install exited $r->{rc}: " . join(
			' | ',
			grep { defined }
			  (grep { /\S/ && !/^npm (warn|notice)/ } split /\n/, $r->{stderr})
			  [ 0 .. 2 ])
		  : "npm install could not run: $r->{error}";
		Test::More::plan(skip_all => "npm registry unreachable: $why");
	}
	Test::More::diag("node $node_version; graphile-worker installed in $scratch");

	my ($installed) =
	  slurp_file("$scratch/node_modules/graphile-worker/package.json") =~
	  /"version"\s*:\s*"([^"]+)"/;
	Test::More::is($installed, '0.18.0', 'graphile-worker 0.18.0 is installed');

	# The task folder and the addJob script live next to node_modules, where
	# Node resolves 'graphile-worker' from and where the CLI looks for tasks/.
	my $interop = "$ENV{GW_SOURCE_DIR}/tests/interop";
	File::Path::make_path("$scratch/tasks");
	File::Copy::copy("$interop/tasks/js_task.cjs", "$scratch/tasks/js_task.cjs")
	  or die "copy js_task.cjs: $!";
	File::Copy::copy("$interop/add_job.mjs", "$scratch/add_job.mjs")
	  or die "copy add_job.mjs: $!";
	return $scratch;
}

sub run_cmd
{
	my ($cmd, %opt) = @_;
	my ($stdout, $stderr) = ('', '');
	my $timeout = IPC::Run::timeout($opt{timeout} // 60);
	local %ENV = %ENV;
	# env => { NAME => undef } removes NAME from the environment.
	for my $k (keys %{ $opt{env} // {} })
	{
		my $v = $opt{env}{$k};
		if (defined $v) { $ENV{$k} = $v; }
		else            { delete $ENV{$k}; }
	}
	my @init = $opt{cwd} ? (init => sub { chdir $opt{cwd} or die "chdir $opt{cwd}: $!" }) : ();
	my $stdin = $opt{stdin} // '';
	print "# Running: " . join(' ', @$cmd)
	  . ($opt{cwd} ? " (in $opt{cwd})" : '') . "\n";
	my ($rc, $timed_out, $error) = (undef, 0, undef);
	eval {
		IPC::Run::run($cmd, @init, '<', \$stdin, '>', \$stdout,
			'2>', \$stderr, $timeout);
		$rc = $? >> 8;
		1;
	} or do {
		# A timeout (the child is killed) or a program that cannot be run.
		$error = $@;
		$timed_out = 1 if $timeout->is_expired;
		print "# failed: $error\n";
	};
	# Keep everything in the test's log file for post-mortems.
	print "# stdout:\n$stdout\n" if $stdout ne '';
	print "# stderr:\n$stderr\n" if $stderr ne '';
	return {
		rc        => $rc,
		stdout    => $stdout,
		stderr    => $stderr,
		timed_out => $timed_out,
		error     => $error
	};
}

# poll_value($node, $db, $query, $expected, $timeout) runs $query in $db
# every 100 ms, as poll_query_until does, until it returns $expected (a
# string, or a qr// the output must match) or $timeout seconds pass
# (default: the test timeout); returns the last output and the seconds
# waited.  Unlike poll_query_until it stops at once when the server is gone
# (a crash would otherwise cost a full timeout per wait); failed
# connections, e.g. while a crashed server restarts, are retried.
sub poll_value
{
	my ($node, $db, $query, $expected, $timeout) = @_;
	my $t0 = Time::HiRes::time();
	my $deadline = $t0 + ($timeout // $PostgreSQL::Test::Utils::timeout_default);
	my ($out, $err) = ('', '');
	my $match;
	for (;;)
	{
		# psql refused a connection (the server recovering from a crash,
		# say) may exit before it reads its query, and IPC::Run then dies
		# of the broken pipe: one more try
		my $rc = eval { $node->psql($db, $query, stdout => \$out, stderr => \$err) };
		if (!defined $rc)
		{
			die $@ unless $@ =~ /Broken pipe/;
			($rc, $err) = (1, $@);
		}
		$match = $rc == 0 && (ref $expected ? $out =~ $expected : $out eq $expected);
		last if $match;
		die "the server is down (see " . $node->logfile . ")\n"
		  unless -e $node->data_dir . '/postmaster.pid';
		last if Time::HiRes::time() > $deadline;
		Time::HiRes::usleep(100_000);
	}
	Test::More::diag("stderr: $err") if $err ne '' && !$match;
	return ($out, Time::HiRes::time() - $t0);
}

# poll_is($node, $db, $query, $expected, $name, $timeout): poll_value as
# one is() test named $name.
sub poll_is
{
	my ($node, $db, $query, $expected, $name, $timeout) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($out) = poll_value($node, $db, $query, $expected, $timeout);
	return Test::More::is($out, $expected, $name);
}

# stays_is($node, $db, $query, $expected, $seconds, $name): $query returns
# $expected every time it is run, every 100 ms, for $seconds; one is() test
# with the first other output, if any.
sub stays_is
{
	my ($node, $db, $query, $expected, $seconds, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $until = Time::HiRes::time() + $seconds;
	my $out;
	do
	{
		$out = $node->safe_psql($db, $query);
		Time::HiRes::usleep(100_000) if $out eq $expected;
	} while ($out eq $expected && Time::HiRes::time() < $until);
	return Test::More::is($out, $expected, $name);
}

# session_poll($session, $query, $expected, timeout => $s, interval_ms => $ms)
# runs $query on the open session $session (background_psql) until it
# returns $expected, or anything but '' when $expected is undef; returns
# the last output.  The session's notes of each query are left out of the
# test's log.  Dies if the session or the server is gone.
sub session_poll
{
	my ($session, $query, $expected, %opt) = @_;
	my $deadline = Time::HiRes::time()
	  + ($opt{timeout} // $PostgreSQL::Test::Utils::timeout_default);
	my $interval = ($opt{interval_ms} // 5) * 1000;
	no warnings 'redefine';
	local *PostgreSQL::Test::BackgroundPsql::note = sub { };
	my $out;
	for (;;)
	{
		$out = $session->query_safe($query);
		return $out
		  if (defined $expected ? $out eq $expected : $out ne '')
		  || Time::HiRes::time() > $deadline;
		Time::HiRes::usleep($interval);
	}
}

# wait_log($node, $re, $offset, $timeout): waits until the server log from
# byte $offset matches $re (at most $timeout seconds, default 30); returns
# whether it did.  Unlike $node->wait_for_log it does not die on timeout.
sub wait_log
{
	my ($node, $re, $offset, $timeout) = @_;
	my $deadline = Time::HiRes::time() + ($timeout // 30);
	for (;;)
	{
		return 1 if slurp_file($node->logfile, $offset) =~ $re;
		return 0 if Time::HiRes::time() > $deadline;
		Time::HiRes::usleep(50_000);
	}
}

# count_lines($text, $re): how many lines of $text match $re.
sub count_lines
{
	my ($text, $re) = @_;
	return scalar grep { /$re/ } split /\n/, $text;
}

# job_workers_sql(): a query giving the job workers of the current database
# as "count:states", e.g. "2:idle" or "2:busy,paused" ("0:" when none).
sub job_workers_sql
{
	return q{
SELECT count(*) || ':' || coalesce(string_agg(DISTINCT state, ','), '')
  FROM graphile_worker.workers
 WHERE kind = 'job worker' AND datname = current_database()};
}

# processes_sql($dbname): a query giving the supervisors and job workers of
# database $dbname in pg_stat_activity as "supervisors|job workers", e.g.
# "1|2".
sub processes_sql
{
	my ($dbname) = @_;
	return qq{
SELECT count(*) FILTER (WHERE backend_type = 'graphile_worker supervisor')
	|| '|' || count(*) FILTER (WHERE backend_type = 'graphile_worker job worker')
  FROM pg_stat_activity WHERE datname = '$dbname'};
}

# run_case($id, $code) runs $code, the case $id of a script, unless the
# environment variable GW_CASES lists the cases to run (e.g. GW_CASES=a,d)
# and $id is not one of them.
sub run_case
{
	my ($id, $code) = @_;
	my @only = split /\s*,\s*/, ($ENV{GW_CASES} // '');
	if (@only && !grep { $_ eq $id } @only)
	{
		Test::More::note("case $id skipped (GW_CASES=$ENV{GW_CASES})");
		return;
	}
	return $code->();
}

1;
