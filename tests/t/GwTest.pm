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

our @EXPORT = qw(start_node run_cmd pg_env describe_schema superuser_name);

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

1;
