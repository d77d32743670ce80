# tests/setup.sh: what `make test` (tests/run.sh), `make demo` (tests/demo.sh),
# `make torture` (tests/torture/torture.sh) and `make bench` share: install
# missing Debian packages, find PostgreSQL, build and install the extension
# and the example C handlers, and run commands as an unprivileged user when
# invoked as root (initdb refuses root).  Sourced, not run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
TEST_USER=${GW_TEST_USER:-gwtest}
PACKAGES="build-essential postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR
	libcmocka-dev libipc-run-perl pkg-config"

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# install_packages installs what is missing (and npm, for the interop test
# and the benchmark).
install_packages() {
	local missing=()
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	command -v npm >/dev/null || missing+=(nodejs npm)
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "== installing: ${missing[*]}"
	as_root apt-get update -qq &&
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${missing[@]}" >/dev/null
}

# find_postgres sets PG_CONFIG, BINDIR and PGXS_DIR.
find_postgres() {
	PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
	[ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config)
	BINDIR=$("$PG_CONFIG" --bindir)
	PGXS_DIR=$(dirname "$("$PG_CONFIG" --pgxs)")/..
}

build_install() {
	make -C "$1" -s PG_CONFIG="$PG_CONFIG" >/dev/null &&
		as_root make -C "$1" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# build_all builds and installs the extension and the example handlers.
build_all() {
	echo "== building against $("$PG_CONFIG" --version)"
	build_install "$ROOT" && build_install "$ROOT/tests/c_handler"
}

# define_run_as defines run_as CMD...: CMD as $TEST_USER when root, else as
# the caller.  Files the command writes must be in a folder that user owns.
define_run_as() {
	if [ "$(id -u)" = 0 ]; then
		id "$TEST_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$TEST_USER"
		RUN_AS_HOME=$(getent passwd "$TEST_USER" | cut -d: -f6)
		run_as() { runuser -u "$TEST_USER" -- env HOME="$RUN_AS_HOME" "$@"; }
		own() { chown -R "$TEST_USER" "$@"; }
	else
		run_as() { "$@"; }
		own() { :; }
	fi
}

# run_torture_script SECONDS runs tests/torture/torture.pl from the scratch
# copy $WORK as run_as, with SECONDS of chaos (TORTURE_SEED passes through).
run_torture_script() {
	(cd "$WORK/tests" && run_as env PATH="$BINDIR:$PATH" \
		TESTDIR="$WORK/tests" PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
		PERL5LIB="$PGXS_DIR/test/perl" \
		TORTURE_SECONDS="$1" TORTURE_SEED="${TORTURE_SEED:-}" \
		perl "$WORK/tests/torture/torture.pl")
}
