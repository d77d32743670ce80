# GwTest.pm: small helpers shared by the TAP scripts in tests/t.
#
#   start_node($name)        a PostgreSQL::Test::Cluster with graphile_worker
#                            in shared_preload_libraries, started
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
  poll_is report_deaths_on_die);

sub start_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'graphile_worker'");
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

# poll_is($node, $db, $query, $expected, $name) runs $query in $db every
# 100 ms, as poll_query_until does, until it returns $expected or the test
# timeout passes, then passes or fails one is() test named $name.  Unlike
# poll_query_until it stops at once when the server is gone (a crash would
# otherwise cost a full timeout per wait).
sub poll_is
{
	my ($node, $db, $query, $expected, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	my ($out, $err) = ('', '');
	for (;;)
	{
		my $rc = $node->psql($db, $query, stdout => \$out, stderr => \$err);
		last if $rc == 0 && $out eq $expected;
		die "the server is down (see " . $node->logfile . ")\n"
		  unless -e $node->data_dir . '/postmaster.pid';
		last if time > $deadline;
		Time::HiRes::usleep(100_000);
	}
	Test::More::diag("stderr: $err") if $err ne '';
	return Test::More::is($out, $expected, $name);
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
