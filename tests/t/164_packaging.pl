# 164_packaging.pl: META.json (the PGXN distribution metadata) and the
# build prerequisites the README lists.  No server is started.
#
# Proves that
#   a) META.json is JSON with exactly the keys of PGXN Meta Spec 1.0.x:
#      the required name, version, abstract, maintainer, license, provides
#      and meta-spec, and only known optional ones;
#   b) its values have the spec's forms: name and extension names are
#      Terms (2 or more characters, no slash, backslash, space or control
#      character), versions are Semantic Versions, the license is one of
#      the spec's shortcuts (postgresql, as LICENSE says), prerequisites are
#      phase -> relationship -> name -> version range, tags are Tags, and
#      meta-spec.version is 1.0.x;
#   c) it agrees with the tree: its version and the provided extension's are
#      the control file's default_version, which has an install path
#      (extension/graphile_worker--*.sql, each listed in the Makefile's
#      DATA); every file and directory it names exists; PostgreSQL 13, the
#      oldest major the suites pass on (make test PG=13), is the version it
#      requires;
#   d) the README's quick start names the Debian packages that build the
#      extension, the ones tests/setup.sh installs.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = $ENV{GW_SOURCE_DIR} // die 'GW_SOURCE_DIR is not set';
my $meta = eval { decode_json(slurp_file("$src/META.json")) };
ok($meta, 'a) META.json is JSON') or diag($@);
$meta //= {};

# --- a) keys -------------------------------------------------------------
my @required = qw(name version abstract maintainer license provides meta-spec);
my %known = map { $_ => 1 } @required,
  qw(description generated_by tags no_index prereqs release_status resources);
for my $k (@required)
{
	ok(exists $meta->{$k}, "a) required key $k is there");
}
is(join(',', grep { !$known{$_} && !/^[xX]_./ } sort keys %$meta), '',
	'a) no key the spec does not know');

# --- b) forms --------------------------------------------------------------
my $term = qr/^[^\/\\\s[:cntrl:]]{2,}$/;
my $semver = qr/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)
	(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?
	(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/x;
my $range_part = qr/(?:(?:[=!]=|[<>]=?)\s*)?(?:\d+\.\d+\.\d+\S*|0)/;
sub is_range
{
	my ($v) = @_;
	return 1 if !ref $v && $v =~ /^0$/;
	return 0 if ref $v;
	return 0 + (join(',', map { /^\s*($range_part)\s*$/ ? 'ok' : 'bad' } split /,/, $v) !~ /bad/);
}

like($meta->{name} // '', $term, 'b) name is a Term');
like($meta->{version} // '', $semver, 'b) version is a Semantic Version');
ok(!ref $meta->{abstract} && length($meta->{abstract} // '') > 0, 'b) abstract is a non-empty string');
ok(!ref $meta->{maintainer} && length($meta->{maintainer} // '') > 0
	  || (ref $meta->{maintainer} eq 'ARRAY' && @{ $meta->{maintainer} }),
	'b) maintainer is a string or a list of them');
is($meta->{license}, 'postgresql', 'b) license is the spec\'s shortcut postgresql');
like(slurp_file("$src/LICENSE"), qr/Permission to use, copy, modify, and distribute this software and its\s+documentation for any purpose, without fee, and without a written agreement/,
	'b) LICENSE is the PostgreSQL License');
like($meta->{'meta-spec'}{version} // '', qr/^1\.0\.\d+$/, 'b) meta-spec.version is 1.0.x');

my $provides = $meta->{provides} // {};
ok(ref $provides eq 'HASH' && %$provides, 'b) provides names at least one extension');
for my $ext (sort keys %$provides)
{
	my $e = $provides->{$ext};
	like($ext, $term, "b) provided extension $ext is a Term");
	is(join(',', grep { !/^(file|version|abstract|docfile|[xX]_.+)$/ } sort keys %$e), '',
		"b) $ext has only the keys the spec knows");
	like($e->{version} // '', $semver, "b) $ext has a Semantic Version");
	ok(defined $e->{file}, "b) $ext names its file");
}

my %phases = map { $_ => 1 } qw(configure build test runtime develop);
my %relations = map { $_ => 1 } qw(requires recommends suggests conflicts);
my @bad;
for my $phase (sort keys %{ $meta->{prereqs} // {} })
{
	push @bad, "phase $phase" unless $phases{$phase};
	for my $rel (sort keys %{ $meta->{prereqs}{$phase} })
	{
		push @bad, "relationship $rel" unless $relations{$rel};
		while (my ($name, $range) = each %{ $meta->{prereqs}{$phase}{$rel} })
		{
			push @bad, "$name is not a Term" unless $name =~ $term;
			push @bad, "$name: $range is not a version range" unless is_range($range);
		}
	}
}
is(join('; ', @bad), '', 'b) prereqs are phase -> relationship -> Term -> version range');
is(join(',', grep { !/^[^\/\\[:cntrl:]]{2,255}$/ } @{ $meta->{tags} // [] }), '',
	'b) tags are Tags');
ok(!exists $meta->{release_status} || $meta->{release_status} =~ /^(stable|testing|unstable)$/,
	'b) release_status, if given, is stable, testing or unstable');

# --- c) the tree -------------------------------------------------------------
my ($default_version) = slurp_file("$src/graphile_worker.control") =~ /^default_version\s*=\s*'([^']+)'/m;
is($meta->{version}, $default_version, 'c) the distribution\'s version is the control file\'s default_version');
is($provides->{graphile_worker}{version}, $default_version,
	'c) so is the provided extension\'s');
my @scripts = map { s{^\Q$src\E/}{}r } glob("$src/extension/graphile_worker--*.sql");
my ($data) = slurp_file("$src/Makefile") =~ /^DATA\s*=\s*((?:.*\\\n)*.*)$/m;
is(join(' ', sort grep { index($data, $_) < 0 } @scripts), '',
	'c) every install and update script is in the Makefile\'s DATA');
ok((grep { /--\Q$default_version\E\.sql$/ } @scripts), 'c) the default version has an install path');
for my $ext (sort keys %$provides)
{
	for my $f (grep { defined } @{ $provides->{$ext} }{qw(file docfile)})
	{
		ok(-f "$src/$f", "c) $ext: file $f exists");
	}
}
for my $d (@{ $meta->{no_index}{directory} // [] })
{
	ok(-d "$src/$d", "c) no_index directory $d exists");
}
is($meta->{prereqs}{runtime}{requires}{PostgreSQL}, '13.0.0', 'c) it requires PostgreSQL 13');

# --- d) the README's build prerequisites ------------------------------------
my $readme = slurp_file("$src/README.md");
my ($quick) = $readme =~ /^## Quick start\n(.*?)^## /ms;
my ($packages) = slurp_file("$src/tests/setup.sh") =~ /^PACKAGES="([^"]*)"/m;
for my $p (grep { /^(build-essential|postgresql-\$PG_MAJOR|postgresql-server-dev-\$PG_MAJOR)$/ } split ' ', $packages)
{
	(my $name = $p) =~ s/\$PG_MAJOR/15/;
	like($quick // '', qr/\b\Q$name\E\b/, "d) the quick start names $name");
}

done_testing();
