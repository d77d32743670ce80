#!/usr/bin/env bash
# tests/deb.sh: the Debian package.
#
#   deb.sh build [OUTDIR]
#                  the first half of `make deb`: builds
#                  postgresql-M-graphile-worker for each
#                  PostgreSQL major M whose postgresql-server-dev-M is
#                  installed (pg_buildext, debian/), with
#                  `dpkg-buildpackage -us -uc -b` in a scratch copy of the
#                  sources; the .deb files go to OUTDIR (or $GW_DEB_DIR;
#                  default: a new /tmp/graphile_worker_deb.XXXXXX), whose
#                  path it prints last.  The source tree is left as it was.
#   deb.sh check DIR
#                  the second half of `make deb`, and with build the `deb`
#                  suite of tests/run.sh: installs the packages of
#                  DIR with dpkg -i, checks that dpkg -L lists the library,
#                  the control file and the SQL scripts in PostgreSQL's
#                  Debian locations, runs a job in a fresh cluster
#                  (pg_createcluster) that preloads the packaged library,
#                  then removes the packages with dpkg -r and checks that
#                  none of their files is left.  TAP output.
#
# The check changes nothing on the machine: it runs as root in a private
# mount namespace, chrooted into an overlay of the root filesystem whose
# writes go to a tmpfs that vanishes with the namespace.  So dpkg's
# database, /usr/lib/postgresql and /etc/postgresql of the system (where the
# other suites install the extension with `make install`) stay as they
# were, and the check may run while other servers use them.  It needs
# unshare(1) and overlayfs; without them it skips.
set -uo pipefail
source "$(dirname "$0")/setup.sh"

DEB_PACKAGES="build-essential dpkg-dev debhelper postgresql-server-dev-all"

# deb_build [OUTDIR]: see the header.
deb_build() {
	local out=${1:-${GW_DEB_DIR:-}} scratch version src
	install_packages $DEB_PACKAGES || { echo "package installation failed"; return 1; }
	[ -n "$out" ] || out=$(mktemp -d /tmp/graphile_worker_deb.XXXXXX)
	mkdir -p "$out"
	scratch=$(mktemp -d /tmp/graphile_worker_debbuild.XXXXXX)
	version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
	src=$scratch/graphile-worker-$version
	mkdir "$src"
	(cd "$ROOT" && tar cf - --exclude=.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=tmp_check --exclude=results --exclude=./debs .) |
		(cd "$src" && tar xf -) || return 1
	# the packages are for the servers whose headers are installed;
	# debian/control is generated for them from debian/control.in
	if ! (cd "$src" && PG_SUPPORTED_VERSIONS=installed PG_UPDATECONTROL=yes \
		dpkg-buildpackage -us -uc -b) >"$scratch/build.log" 2>&1; then
		tail -40 "$scratch/build.log"
		echo "dpkg-buildpackage failed (log above; all of it in $scratch/build.log)"
		return 1
	fi
	# only this build's packages in OUTDIR: check installs them all
	rm -f "$out"/postgresql-*-graphile-worker*_*.deb "$out"/graphile-worker_*.buildinfo \
		"$out"/graphile-worker_*.changes
	mv "$scratch"/*.deb "$out"/ &&
		mv "$scratch"/*.buildinfo "$scratch"/*.changes "$out"/ 2>/dev/null
	rm -rf "$scratch"
	(cd "$out" && ls -1 *.deb | sed 's/^/== built /')
	echo "$out"
}

# deb_check DIR: see the header.  As root; re-executes itself in a private
# mount namespace (deb_check_namespace), which chroots into the overlay
# and runs deb_check_inside there.
deb_check() {
	local dir=$1 top rc
	if [ "$(id -u)" != 0 ]; then
		exec sudo bash "$0" check "$dir"
	fi
	if ! command -v unshare >/dev/null ||
		{ ! grep -qw overlay /proc/filesystems && ! modprobe overlay 2>/dev/null; }; then
		echo "1..0 # SKIP needs unshare and overlayfs"
		return 0
	fi
	# a container may forbid mount namespaces even to root
	if ! unshare --mount --propagation private true 2>/dev/null; then
		echo "1..0 # SKIP cannot create a mount namespace here"
		return 0
	fi
	# the namespace mounts a tmpfs on this empty folder; when it ends, all
	# its mounts go with it and the folder is empty again
	top=$(mktemp -d /tmp/graphile_worker_debcheck.XXXXXX)
	unshare --mount --propagation private bash "$0" namespace "$dir" "$top"
	rc=$?
	rmdir "$top"
	return $rc
}

# deb_check_namespace DIR TOP: in the private mount namespace.  Nothing
# here may remove files: TOP/root shows the real /dev and /sys.
deb_check_namespace() {
	local dir=$1 top=$2 root
	mount -t tmpfs -o size=2g gwdeb "$top" &&
		mkdir "$top/upper" "$top/work" "$top/root" &&
		mount -t overlay gwdeb -o "lowerdir=/,upperdir=$top/upper,workdir=$top/work" \
			"$top/root" || { echo "1..0 # SKIP could not mount an overlay of /"; exit 0; }
	root=$top/root
	mount --rbind /dev "$root/dev" &&
		mount -t proc proc "$root/proc" &&
		mount --rbind /sys "$root/sys" &&
		mount -t tmpfs gwdeb-run "$root/run" &&
		mount -t tmpfs gwdeb-tmp "$root/tmp" || exit 1
	chmod 1777 "$root/tmp"
	mkdir -p "$root/tmp/gwdeb"
	cp "$dir"/*.deb "$ROOT/tests/deb.sh" "$ROOT/tests/setup.sh" "$root/tmp/gwdeb/"
	chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		bash /tmp/gwdeb/deb.sh inside /tmp/gwdeb
}

# deb_check_inside DIR: the check proper, as root in the overlay.
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/# /'; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

deb_check_inside() {
	local dir=$1 debs pkgs=() files deb major p f missing left port=5496 cluster=gwdeb sock out
	debs=("$dir"/postgresql-*-graphile-worker_*.deb)
	echo "1..$((${#debs[@]} * 10))"
	for deb in "${debs[@]}"; do
		p=$(dpkg-deb -f "$deb" Package)
		major=$(echo "$p" | sed -n 's/^postgresql-\([0-9]*\)-graphile-worker$/\1/p')
		pkgs+=("$p")
		# files left by `make install` on the system would hide a package
		# that lacks them
		for f in $(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|'); do
			[ -f "$f" ] && rm -f "$f"
		done
		out=$(dpkg -i "$deb" 2>&1)
		check "dpkg -i $(basename "$deb")" [ $? = 0 ] || echo "$out" | sed 's/^/# /'
		files=$(dpkg -L "$p" 2>/dev/null)
		missing=
		for f in /usr/lib/postgresql/$major/lib/graphile_worker.so \
			/usr/share/postgresql/$major/extension/graphile_worker.control \
			/usr/share/postgresql/$major/extension/graphile_worker--0.1.0.sql \
			/usr/share/postgresql/$major/extension/graphile_worker--0.1.0--0.2.0.sql \
			/usr/share/doc/$p/copyright; do
			grep -qxF "$f" <<<"$files" && [ -f "$f" ] || missing+=" $f"
		done
		if [ -z "$missing" ]; then
			ok "dpkg -L $p lists the library, control file and SQL scripts, installed"
		else
			not_ok "dpkg -L $p lists the library, control file and SQL scripts, installed" \
				"missing:$missing"$'\n'"$files"
		fi
		check "$p depends on postgresql-$major" \
			grep -q "postgresql-$major" <<<"$(dpkg-query -W -f='${Depends}' "$p")"

		# a fresh cluster of the packaged server, the Debian way
		sock=/tmp/gwdeb/sock-$major
		mkdir -p "$sock" /run/postgresql && chown postgres "$sock" /run/postgresql
		out=$(pg_createcluster "$major" "$cluster" -p "$port" -s "$sock" \
			-o listen_addresses= -o "shared_preload_libraries=graphile_worker" \
			-o "graphile_worker.concurrency=2" 2>&1 &&
			pg_ctlcluster --skip-systemctl-redirect "$major" "$cluster" start 2>&1)
		check "a fresh cluster preloading graphile_worker starts (PostgreSQL $major)" \
			[ $? = 0 ] || echo "$out" | sed 's/^/# /'
		psql_deb() {
			runuser -u postgres -- psql -X -qAt -h "$sock" -p "$port" -d postgres \
				-v ON_ERROR_STOP=1 "$@"
		}
		out=$(psql_deb -c "CREATE EXTENSION graphile_worker" \
			-c "SELECT extversion FROM pg_extension WHERE extname = 'graphile_worker'" 2>&1)
		check "CREATE EXTENSION graphile_worker installs 0.2.0 from the packaged scripts" \
			[ "$out" = 0.2.0 ] || echo "$out" | sed 's/^/# /'
		psql_deb >/dev/null 2>&1 <<-'EOF'
			CREATE SCHEMA graphile_worker_tasks;
			CREATE TABLE outbox (address text);
			CREATE FUNCTION graphile_worker_tasks.send_email(payload json)
			RETURNS void LANGUAGE plpgsql AS $$
			BEGIN
			  INSERT INTO outbox (address) VALUES (payload->>'to');
			END $$;
			SELECT graphile_worker.add_job('send_email', '{"to": "a@b.c"}');
		EOF
		for _ in $(seq 1 300); do
			out=$(psql_deb -c "SELECT (SELECT count(*) FROM graphile_worker.jobs)
				|| ' ' || (SELECT string_agg(address, ',') FROM outbox)" 2>&1)
			[ "$out" = "0 a@b.c" ] && break
			sleep 0.1
		done
		check "a job worker of the packaged library runs a job" [ "$out" = "0 a@b.c" ] ||
			echo "jobs left, outbox: $out" | sed 's/^/# /'
		out=$(pg_ctlcluster --skip-systemctl-redirect "$major" "$cluster" stop 2>&1 &&
			pg_dropcluster "$major" "$cluster" 2>&1)
		check "the cluster stops and is dropped" [ $? = 0 ] || echo "$out" | sed 's/^/# /'

		out=$(dpkg -r "$p" 2>&1)
		check "dpkg -r $p" [ $? = 0 ] || echo "$out" | sed 's/^/# /'
		left=
		while IFS= read -r f; do
			[ -f "$f" ] && left+=" $f"
		done <<<"$files"
		check "no file of $p is left" [ -z "$left" ] || echo "# left:$left"
		check "dpkg knows $p as not installed" \
			[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | cut -c2)" != i ]
	done
}

case ${1:-} in
build) shift; deb_build "$@" ;;
check) deb_check "$2" ;;
namespace) deb_check_namespace "$2" "$3" ;;
inside) deb_check_inside "$2" ;;
*)
	echo "usage: $0 build [OUTDIR] | check DIR" >&2
	exit 2
	;;
esac
