#!/usr/bin/env bash
# tests/cassert.sh: builds the assert-enabled PostgreSQL that
# `make check-cassert` (and `make test` with GW_CASSERT=1 or CI=true) runs
# the suites against.
#
# The sources are those of Debian's postgresql-$PG_MAJOR source package
# (its upstream tarball; Debian's patches are not applied, as they hard-code
# the /usr/lib/postgresql paths of the packaged server).  It is configured
# with --enable-cassert --enable-debug --enable-tap-tests and installed,
# with pg_regress, pg_isolation_regress, isolationtester and the TAP perl
# modules, into $CASSERT_PREFIX (GW_CASSERT_PREFIX, default
# /var/cache/graphile_worker/pg15-cassert).
#
# Idempotent: the newest source version that apt can fetch is built only if
# the stamp file in the prefix names another version or other flags.
# GW_CASSERT_REBUILD=1 rebuilds all the same.  Runs as root (through sudo
# for a sudoer): it adds a deb-src entry for the Debian mirror in use,
# installs the build dependencies and writes into /var/cache.
set -euo pipefail
source "$(dirname "$0")/setup.sh"

if [ "$(id -u)" != 0 ]; then
	exec sudo env PG_MAJOR="$PG_MAJOR" GW_CASSERT_PREFIX="$CASSERT_PREFIX" \
		GW_CASSERT_CFLAGS="${GW_CASSERT_CFLAGS:-}" \
		GW_CASSERT_REBUILD="${GW_CASSERT_REBUILD:-}" bash "$0" "$@"
fi

SRC_PACKAGE=postgresql-$PG_MAJOR
# -O1 keeps the assert build within a factor of about 1.5 of an optimised
# one; -O0 makes the suites several times slower.
CFLAGS_CASSERT=${GW_CASSERT_CFLAGS:-"-O1 -fno-omit-frame-pointer"}
CONFIGURE_FLAGS="--enable-cassert --enable-debug --enable-tap-tests --with-icu --without-readline"
BUILD_DEPENDS="build-essential pkg-config libicu-dev zlib1g-dev libipc-run-perl"
STAMP=$CASSERT_PREFIX/.graphile_worker-build

stamp_for() { echo "$SRC_PACKAGE $1 $CONFIGURE_FLAGS CFLAGS=$CFLAGS_CASSERT"; }

# source_versions lists the versions of the source package that apt knows,
# newest first.
source_versions() {
	apt-cache showsrc "$SRC_PACKAGE" 2>/dev/null | sed -n 's/^Version: //p' | sort -ruV
}

# add_deb_src adds deb-src twins of the system's Debian deb entries (the
# mirror in use), or of deb.debian.org when none is found.
add_deb_src() {
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
	apt-get update -qq
}

versions=$(source_versions || true)
if [ -z "$versions" ]; then
	add_deb_src
	versions=$(source_versions || true)
fi
[ -n "$versions" ] || { echo "no $SRC_PACKAGE source package known to apt"; exit 1; }

mkdir -p "$(dirname "$CASSERT_PREFIX")"
# One build at a time; a second caller waits and then finds it done.
exec 9>"$CASSERT_PREFIX.lock"
flock 9

SCRATCH=$(mktemp -d /var/tmp/graphile_worker_pg_cassert.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT

# The newest version that the mirror still serves (a security update's
# source may be missing from a mirror that has its binaries).
version=
for v in $versions; do
	if [ -z "${GW_CASSERT_REBUILD:-}" ] && [ -f "$STAMP" ] &&
		[ "$(cat "$STAMP")" = "$(stamp_for "$v")" ]; then
		echo "== PostgreSQL with assertions ($SRC_PACKAGE $v): $CASSERT_PREFIX"
		exit 0
	fi
	if (cd "$SCRATCH" && apt-get source --download-only -qq "$SRC_PACKAGE=$v") \
		>"$SCRATCH/download.log" 2>&1; then
		version=$v
		break
	fi
done
[ -n "$version" ] || { cat "$SCRATCH/download.log"; echo "could not download $SRC_PACKAGE"; exit 1; }

start=$(date +%s)
echo "== building PostgreSQL with assertions ($SRC_PACKAGE $version) into $CASSERT_PREFIX"
install_packages $BUILD_DEPENDS

LOG=$SCRATCH/build.log
mkdir "$SCRATCH/src"
tar -xf "$SCRATCH"/"${SRC_PACKAGE}"_*.orig.tar.* -C "$SCRATCH/src" --strip-components=1
# The prefix is ours only if it holds the stamp (empty while building).
if [ -n "$(ls -A "$CASSERT_PREFIX" 2>/dev/null)" ] && [ ! -f "$STAMP" ]; then
	echo "$CASSERT_PREFIX is not empty and has no $(basename "$STAMP"): not replacing it"
	exit 1
fi
rm -rf "$CASSERT_PREFIX"
mkdir -p "$CASSERT_PREFIX"
: >"$STAMP"
build() {
	cd "$SCRATCH/src" &&
		./configure --prefix="$CASSERT_PREFIX" $CONFIGURE_FLAGS CFLAGS="$CFLAGS_CASSERT" &&
		make -j"$(($(nproc) + 1))" &&
		make install
}
if ! (build) >"$LOG" 2>&1; then
	tail -40 "$LOG"
	echo "PostgreSQL build failed (log above)"
	exit 1
fi
chmod -R a+rX "$CASSERT_PREFIX"
stamp_for "$version" >"$STAMP"
echo "== built $("$CASSERT_PREFIX/bin/pg_config" --version) with assertions in $(($(date +%s) - start)) s"
