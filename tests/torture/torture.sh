#!/usr/bin/env bash
# tests/torture/torture.sh: `make torture`.  Installs what is missing,
# builds and installs the extension and the example C handlers, then runs
# torture.pl against a throwaway cluster as an unprivileged user, for
# TORTURE_SECONDS (default 300) of chaos with TORTURE_SEED (default:
# random, printed).  The output ends with the line
#   torture: jobs=N succeeded=S failed=F lost=L duplicated=D locked=K seed=X
# and the exit status is 0 only when every invariant held.  The scratch
# folder (server log, test log, data directory) is kept after a failure.
set -uo pipefail

source "$(dirname "$0")/../setup.sh"

install_packages || { echo "package installation failed"; exit 1; }
find_postgres
build_all || { echo "build or install failed"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}"/graphile_worker_torture.XXXXXX)
cp -a "$ROOT/tests" "$WORK/"
define_run_as
own "$WORK"
echo "== torture (scratch folder $WORK)"
run_torture_script "${TORTURE_SECONDS:-300}"
rc=$?
[ "$rc" = 0 ] && rm -rf "$WORK"
exit "$rc"
