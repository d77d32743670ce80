#!/usr/bin/env bash
# tests/build_postgres.sh MAJOR PREFIX CFLAGS [CONFIGURE_OPTION...]
#
# Builds PostgreSQL MAJOR from the upstream tarball of Debian's
# postgresql-MAJOR source package and installs it into PREFIX, with
# pg_regress, pg_isolation_regress, isolationtester and the TAP perl
# modules, for the test passes of tests/run.sh: the assert-enabled server of
# `make check-cassert` (--enable-cassert --enable-debug) and the other major
# versions of `make test PG=M`.  Debian's patches are not applied: they
# hard-code the /usr/lib/postgresql paths of the packaged server.  The
# configure options are CONFIGURE_OPTION... followed by --enable-tap-tests
# --with-icu --without-readline, and CFLAGS=CFLAGS.
#
# Where the sources come from: the deb-src twins of the system's own Debian
# entries (gw-deb-src.sources or .list in /etc/apt/sources.list.d), and
# for the majors of other Debian releases gw-pg-versions.sources, deb-src
# entries of deb.debian.org for bullseye (13), trixie (17) and sid (18);
# each file is added the first time a source package is not known to apt.
# When the mirror serves none of the versions apt knows, an earlier point
# release of POOL_RELEASES still in the pool is fetched with curl and
# checked against its pinned SHA-256.
#
# Idempotent: the newest source version that apt can fetch is built only if
# the stamp file PREFIX/.graphile_worker-build names another version or
# other flags; a version whose source the mirror no longer serves (a
# security update's, say) is skipped for the next older one.
# GW_PG_REBUILD=1 rebuilds all the same.  GW_PG_CACHED_ONLY=1 builds
# nothing: it succeeds when PREFIX holds a finished build of MAJOR with
# these flags (any version) and fails otherwise.  Runs as root (through
# sudo for a sudoer): it adds deb-src entries, installs the build
# dependencies and writes into PREFIX (under /var/cache).
#
# Exit status: 0 when PREFIX holds the build, 3 when the sources cannot be
# had (no source package known to apt, none served, or no cached build
# with GW_PG_CACHED_ONLY), 1 when the build failed, 2 on bad usage.
set -euo pipefail

if [ $# -lt 3 ]; then
	echo "usage: $0 MAJOR PREFIX CFLAGS [CONFIGURE_OPTION...]" >&2
	exit 2
fi
MAJOR=$1
PREFIX=$2
CFLAGS_PG=$3
shift 3
SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

if [ "$(id -u)" != 0 ]; then
	exec sudo env GW_PG_REBUILD="${GW_PG_REBUILD:-}" \
		GW_PG_CACHED_ONLY="${GW_PG_CACHED_ONLY:-}" \
		bash "$SCRIPT" "$MAJOR" "$PREFIX" "$CFLAGS_PG" "$@"
fi
PG_MAJOR=$MAJOR
source "$(dirname "$SCRIPT")/setup.sh"
# Under `make test` this runs inside make: PostgreSQL's makefiles generate
# their headers only at MAKELEVEL 0.
unset MAKELEVEL MAKEFLAGS MFLAGS

SRC_PACKAGE=postgresql-$MAJOR
CONFIGURE_FLAGS="$* --enable-tap-tests --with-icu --without-readline"
CONFIGURE_FLAGS=${CONFIGURE_FLAGS# }
STAMP=$PREFIX/.graphile_worker-build
LABEL="PostgreSQL $MAJOR ($CONFIGURE_FLAGS CFLAGS=$CFLAGS_PG)"

# Earlier point releases, "MAJOR VERSION SHA256" (of the upstream tarball,
# as in the release's .dsc), for a major whose current source the mirror
# does not serve: trixie's 17.12 is listed by apt but missing from the pool.
POOL_RELEASES="17 17.11-0+deb13u1 dd27f2b3c59e73ed14aa3324901242bf69a032a6347805f274e6260322d42979"

stamp_for() { echo "$SRC_PACKAGE $1 $CONFIGURE_FLAGS CFLAGS=$CFLAGS_PG"; }

if [ -n "${GW_PG_CACHED_ONLY:-}" ]; then
	if [ -s "$STAMP" ] && [ -x "$PREFIX/bin/pg_config" ] &&
		[ "$(cut -d' ' -f1 "$STAMP") $(cut -d' ' -f3- "$STAMP")" = \
			"$SRC_PACKAGE $CONFIGURE_FLAGS CFLAGS=$CFLAGS_PG" ]; then
		echo "== $LABEL: $PREFIX ($(cut -d' ' -f2 "$STAMP"), cached)"
		exit 0
	fi
	echo "== $LABEL: no build in $PREFIX (GW_PG_CACHED_ONLY)"
	exit 3
fi

# source_versions lists the versions of the source package that apt knows,
# newest first.
source_versions() {
	apt-cache showsrc "$SRC_PACKAGE" 2>/dev/null | sed -n 's/^Version: //p' | sort -ruV
}

# add_system_deb_src adds deb-src twins of the system's Debian deb entries
# (the mirror in use), or of deb.debian.org when none is found.
add_system_deb_src() {
	local codename dir=/etc/apt/sources.list.d
	if [ -f "$dir/debian.sources" ]; then
		sed 's/^Types:.*/Types: deb-src/' "$dir/debian.sources" >"$dir/gw-deb-src.sources"
	fi
	if [ -f /etc/apt/sources.list ] &&
		grep -qE '^deb .*debian' /etc/apt/sources.list; then
		sed -n 's/^deb \(.*debian.*\)$/deb-src \1/p' /etc/apt/sources.list >"$dir/gw-deb-src.list"
	fi
	if [ ! -s "$dir/gw-deb-src.sources" ] && [ ! -s "$dir/gw-deb-src.list" ]; then
		codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
		cat >"$dir/gw-deb-src.list" <<-EOF
			deb-src http://deb.debian.org/debian $codename main
			deb-src http://deb.debian.org/debian $codename-updates main
			deb-src http://deb.debian.org/debian-security $codename-security main
		EOF
	fi
	echo "== added deb-src entries in $dir/gw-deb-src.*"
}

# add_other_deb_src adds deb-src entries for the Debian releases whose
# PostgreSQL major differs from ours: bullseye has 13, trixie 17, sid 18.
# Source entries only: what apt installs does not change.
add_other_deb_src() {
	local file=/etc/apt/sources.list.d/gw-pg-versions.sources
	cat >"$file" <<-EOF
		# deb-src entries for PostgreSQL 13 (bullseye), 17 (trixie) and
		# 18 (sid), added by graphile_worker's tests/build_postgres.sh
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: bullseye trixie sid
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb-src
		URIs: http://deb.debian.org/debian-security
		Suites: bullseye-security trixie-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	echo "== added deb-src entries in $file"
}

versions=$(source_versions || true)
if [ -z "$versions" ] && [ ! -f /etc/apt/sources.list.d/gw-deb-src.sources ] &&
	[ ! -f /etc/apt/sources.list.d/gw-deb-src.list ]; then
	add_system_deb_src
	apt_get update -qq
	versions=$(source_versions || true)
fi
if [ -z "$versions" ] && [ ! -f /etc/apt/sources.list.d/gw-pg-versions.sources ]; then
	add_other_deb_src
	apt_get update -qq
	versions=$(source_versions || true)
fi
[ -n "$versions" ] || { echo "no $SRC_PACKAGE source package known to apt"; exit 3; }

mkdir -p "$(dirname "$PREFIX")"
# One build per prefix at a time; a second caller waits and then finds it
# done.
exec 9>"$PREFIX.lock"
flock 9

SCRATCH=$(mktemp -d /var/tmp/graphile_worker_pg_build.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT

# The newest version that the mirror still serves (a security update's
# source may be missing from a mirror that has its binaries).
version=
for v in $versions; do
	if [ -z "${GW_PG_REBUILD:-}" ] && [ -f "$STAMP" ] &&
		[ "$(cat "$STAMP")" = "$(stamp_for "$v")" ]; then
		echo "== $LABEL: $PREFIX ($v)"
		exit 0
	fi
	if (cd "$SCRATCH" && apt_get source --download-only -qq "$SRC_PACKAGE=$v") \
		>"$SCRATCH/download.log" 2>&1; then
		version=$v
		break
	fi
done
# Else an earlier point release that the mirror's pool still holds,
# checked against the upstream tarball's SHA-256 that its Debian .dsc gives.
if [ -z "$version" ]; then
	install_packages curl
	while read -r major v sha; do
		[ "$major" = "$MAJOR" ] || continue
		if [ -z "${GW_PG_REBUILD:-}" ] && [ -f "$STAMP" ] &&
			[ "$(cat "$STAMP")" = "$(stamp_for "$v")" ]; then
			echo "== $LABEL: $PREFIX ($v)"
			exit 0
		fi
		orig=${SRC_PACKAGE}_${v%-*}.orig.tar.bz2
		if curl -fsS -m 300 -o "$SCRATCH/$orig" \
			"http://deb.debian.org/debian/pool/main/p/$SRC_PACKAGE/$orig" \
			>>"$SCRATCH/download.log" 2>&1 &&
			echo "$sha  $SCRATCH/$orig" | sha256sum -c --quiet >>"$SCRATCH/download.log" 2>&1; then
			version=$v
			echo "== $SRC_PACKAGE: the mirror serves no version apt knows; $v from its pool"
			break
		fi
		rm -f "$SCRATCH/$orig"
	done <<<"$POOL_RELEASES"
fi
[ -n "$version" ] || { cat "$SCRATCH/download.log"; echo "could not download $SRC_PACKAGE (no version of it is served)"; exit 3; }

start=$(date +%s)
echo "== building $LABEL from $SRC_PACKAGE $version into $PREFIX"
install_packages $PG_BUILD_PACKAGES

LOG=$SCRATCH/build.log
mkdir "$SCRATCH/src"
tar -xf "$SCRATCH"/"${SRC_PACKAGE}"_*.orig.tar.* -C "$SCRATCH/src" --strip-components=1
# The prefix is ours only if it holds the stamp (empty while building).
if [ -n "$(ls -A "$PREFIX" 2>/dev/null)" ] && [ ! -f "$STAMP" ]; then
	echo "$PREFIX is not empty and has no $(basename "$STAMP"): not replacing it"
	exit 1
fi
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
: >"$STAMP"
# Before 14, make install leaves out pg_isolation_regress and
# isolationtester, which PGXS's installcheck runs from the pgxs folder.
install_isolation() {
	local dir
	dir=$(dirname "$("$PREFIX/bin/pg_config" --pgxs)")/../test/isolation
	[ -x "$dir/pg_isolation_regress" ] && return 0
	make -C src/test/isolation -j"$(($(nproc) + 1))" &&
		mkdir -p "$dir" &&
		install -m 755 src/test/isolation/pg_isolation_regress \
			src/test/isolation/isolationtester "$dir/"
}
build() {
	cd "$SCRATCH/src" &&
		./configure --prefix="$PREFIX" $CONFIGURE_FLAGS CFLAGS="$CFLAGS_PG" &&
		make -j"$(($(nproc) + 1))" &&
		make install &&
		install_isolation
}
if ! (build) >"$LOG" 2>&1; then
	tail -40 "$LOG"
	echo "PostgreSQL build failed (log above)"
	exit 1
fi
chmod -R a+rX "$PREFIX"
stamp_for "$version" >"$STAMP"
echo "== built $("$PREFIX/bin/pg_config" --version) in $PREFIX in $(($(date +%s) - start)) s"
