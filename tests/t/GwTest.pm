# GwTest.pm: small helpers shared by the TAP scripts in tests/t.
#
#   start_node($name, $conf) a PostgreSQL::Test::Cluster with graphile_worker
#                            in shared_preload_libraries and the optional
#                            postgresql.conf lines $conf, started
#   run_cmd(\@cmd, %opt)     run a program (env => {..}, cwd => dir,
#                            timeout => seconds, default 60); returns a
#                            hash ref { rc, stdout, stderr, timed_out,
#                            error }; rc is undef when the program could
#                            not be run or timed out (then killed)
#   pg_env($node, $db)       the PG* variables that point a libpq or
#                            node-postgres client at $node / $db
#   describe_schema($node, $db)
#                            the output of tests/sql/describe_schema.sql
#                            (psql -XAtq) in $db
#   superuser_name()         the role initdb created: the OS user running
#                            the test
#   poll_value($node, $db, $query, $expected, $timeout)
#                            runs $query until it returns $expected (a
#                            string or a qr//); returns the last output
#                            and the seconds waited
#   poll_is($node, $db, $query, $expected, $name, $timeout)
#                            poll_value as one is() test
#   stays_is($node, $db, $query, $expected, $seconds, $name)
#                            $query keeps returning $expected for $seconds
#   count_lines($text, $re)  how many lines of $text match $re
#   run_case($id, $code)     runs $code unless GW_CASES (e.g. "a,d") names
#                            other cases: to run part of a long script
package GwTest;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More ();
use Time::HiRes ();

our @EXPORT = qw(start_node run_cmd pg_env describe_schema superuser_name
  poll_value poll_is stays_is count_lines run_case report_deaths_on_die);

sub start_node
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'graphile_worker'\n" . ($conf // ''));
	$node->start;
	return $node;
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
		my $rc = $node->psql($db, $query, stdout => \$out, stderr => \$err);
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

# count_lines($text, $re): how many lines of $text match $re.
sub count_lines
{
	my ($text, $re) = @_;
	return scalar grep { /$re/ } split /\n/, $text;
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

# report_deaths_on_die($node): if the script dies (e.g. the server went
# down), show what the server log says about processes that died.
sub report_deaths_on_die
{
	my ($node) = @_;
	$SIG{__DIE__} = sub {
		return if $^S;    # inside an eval
		my @died = grep { /terminated by signal|exited with exit code [1-9]/ }
		  split /\n/, slurp_file($node->logfile);
		Test::More::diag("the server log says:\n" . join("\n", @died)) if @died;
	};
	return;
}

1;
