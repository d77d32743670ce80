# tests/setup.sh: what `make test` (tests/run.sh), `make demo` (tests/demo.sh),
# `make torture` (tests/torture/torture.sh) and `make bench` share: install
# missing Debian packages, find PostgreSQL, build and install the extension
# and the example C handlers, and run commands as an unprivileged user when
# invoked as root (initdb refuses root).  Sourced, not run.
# tests/build_postgres.sh builds the PostgreSQL servers of other major
# versions and the assert-enabled one, in $PG_CACHE.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Debian's own server (bookworm's); other majors are built from source
PG_MAJOR=${PG_MAJOR:-15}
TEST_USER=${GW_TEST_USER:-gwtest}
PG_CACHE=${GW_PG_CACHE:-/var/cache/graphile_worker}
PACKAGES="build-essential postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR
	libcmocka-dev libipc-run-perl pkg-config"

# What tests/build_postgres.sh needs to build a server from source (bison
# and flex: since 17 the tarballs no longer carry the generated parsers).
PG_BUILD_PACKAGES="build-essential pkg-config libicu-dev zlib1g-dev
	libipc-run-perl bison flex"

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_get ARG... runs apt-get as root, one at a time: servers of other
# majors may be built in the background while a suite installs packages.
apt_get() {
	as_root env DEBIAN_FRONTEND=noninteractive \
		flock /var/lock/graphile_worker-apt.lock apt-get "$@"
}

# install_packages [PACKAGE...] installs those of the packages that are
# missing; without arguments $PACKAGES and npm (for the interop test and the
# benchmark).
install_packages() {
	local missing=() wanted=("$@")
	[ $# -eq 0 ] && wanted=($PACKAGES)
	for p in "${wanted[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	[ $# -eq 0 ] && ! command -v npm >/dev/null && missing+=(nodejs npm)
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "== installing: ${missing[*]}"
	apt_get update -qq &&
		apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# find_postgres sets PG_CONFIG (Debian's server unless PG_CONFIG is set),
# BINDIR and PGXS_DIR (the pgxs/src folder: test/regress/pg_regress,
# test/isolation/pg_isolation_regress, test/perl).
find_postgres() {
	PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
	[ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config)
	BINDIR=$("$PG_CONFIG" --bindir)
	PGXS_DIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/.." && pwd)
}

# source_postgres MAJOR KIND builds PostgreSQL MAJOR from Debian's source
# package once (tests/build_postgres.sh) and sets PG_CONFIG to its
# pg_config.  KIND "plain" is an optimised build in $PG_CACHE/pgMAJOR,
# "cassert" one with assertions in $PG_CACHE/pgMAJOR-cassert
# (GW_CASSERT_PREFIX for Debian's major).  With GW_PG_CACHED_ONLY=1 it only
# looks for a finished build.  Returns build_postgres.sh's status: 3 when
# the sources cannot be had (not known to apt, or not served).
source_postgres() {
	local major=$1 kind=$2 prefix cflags rebuild=${GW_PG_REBUILD:-} opts=()
	case $kind in
	plain)
		prefix=$PG_CACHE/pg$major
		cflags=-O2
		;;
	cassert)
		prefix=$PG_CACHE/pg$major-cassert
		[ "$major" = "$PG_MAJOR" ] && prefix=${GW_CASSERT_PREFIX:-$prefix}
		# -O1 keeps the assert build within a factor of about 1.5 of an
		# optimised one; -O0 makes the suites several times slower.
		cflags=${GW_CASSERT_CFLAGS:-"-O1 -fno-omit-frame-pointer"}
		opts=(--enable-cassert --enable-debug)
		rebuild=${GW_CASSERT_REBUILD:-$rebuild}
		;;
	esac
	GW_PG_REBUILD=$rebuild nice -n 19 \
		bash "$ROOT/tests/build_postgres.sh" "$major" "$prefix" "$cflags" "${opts[@]}" ||
		return
	PG_CONFIG=$prefix/bin/pg_config
}

# build_install SRC OBJ builds and installs the PGXS module whose Makefile
# is in SRC, in a copy of SRC's sources in OBJ, so that one
# source tree can be built for two servers without mixing their objects
# (and objects left in SRC by a build by hand do not count).
build_install() {
	local src=$1 obj=$2
	mkdir -p "$obj" &&
		(cd "$src" && tar cf - --exclude=.git --exclude='*.o' --exclude='*.so' \
			--exclude='*.bc' --exclude=tmp_check --exclude=results .) |
		(cd "$obj" && tar xf -) || return 1
	make -C "$obj" -s PG_CONFIG="$PG_CONFIG" >/dev/null &&
		as_root make -C "$obj" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# build_all builds and installs the extension and the example handlers into
# the PostgreSQL of $PG_CONFIG, in a scratch copy of the sources (the source
# tree stays free of objects).
build_all() {
	local obj rc
	obj=$(mktemp -d "${TMPDIR:-/tmp}"/graphile_worker_build.XXXXXX)
	echo "== building against $("$PG_CONFIG" --version) ($("$PG_CONFIG" --bindir))"
	build_install "$ROOT" "$obj/graphile_worker" &&
		build_install "$ROOT/tests/c_handler" "$obj/c_handler"
	rc=$?
	rm -rf "$obj"
	return $rc
}

# define_run_as defines run_as CMD...: CMD as $TEST_USER when root, else as
# the caller.  Files the command writes must be in a folder that user owns;
# its temporary files go to $WORK (the scratch folder it owns) or /tmp.
define_run_as() {
	if [ "$(id -u)" = 0 ]; then
		id "$TEST_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$TEST_USER"
		RUN_AS_HOME=$(getent passwd "$TEST_USER" | cut -d: -f6)
		run_as() { runuser -u "$TEST_USER" -- env HOME="$RUN_AS_HOME" TMPDIR="${WORK:-/tmp}" "$@"; }
		own() { chown -R "$TEST_USER" "$@"; }
	else
		run_as() { "$@"; }
		own() { :; }
	fi
}

# run_torture_script SECONDS runs tests/torture/torture.pl from the scratch
# copy $WORK as run_as, with SECONDS of chaos (TORTURE_SEED passes through).
# PostgreSQL's TAP modules put tmp_check under TESTDIR in 13 and 15, in
# TESTDATADIR and TESTLOGDIR in 18: both are set (so does run_tap).
run_torture_script() {
	(cd "$WORK/tests" && run_as env PATH="$BINDIR:$PATH" \
		TESTDIR="$WORK/tests" TESTDATADIR="$WORK/tests/tmp_check" \
		TESTLOGDIR="$WORK/tests/tmp_check/log" PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
		PERL5LIB="$PGXS_DIR/test/perl" \
		TORTURE_SECONDS="$1" TORTURE_SEED="${TORTURE_SEED:-}" \
		perl "$WORK/tests/torture/torture.pl")
}
