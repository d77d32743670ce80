# Makefile for graphile_worker (PGXS)
#
#   make            build graphile_worker.so
#   make install    install the library and the extension's SQL files
#   make test       install what is missing, build, install, run every suite
#                   (GW_CASSERT=1, the default when CI=true: also make
#                   check-cassert's pass; CI=true also runs regress,
#                   isolation and tap against assert-enabled 13, 17 and 18,
#                   GW_OTHER_PG); PG=18: against PostgreSQL 18
#                   built once from Debian's source package into
#                   /var/cache/graphile_worker (tests/build_postgres.sh)
#   make check-cassert  the suites against an assert-enabled PostgreSQL,
#                   built once the same way (tests/build_postgres.sh)
#   make test-versions  every suite against each major of PG_VERSIONS
#                   (default 13 15 17 18) whose sources can be had
#   make deb        Debian packages, one per installed server-dev major
#                   (pg_buildext, debian/), into DEB_DIR; then installs,
#                   uses and removes them in a throwaway overlay of the
#                   system (tests/deb.sh; TAP output)
#   make torture    randomized crash and chaos test hunting for lost,
#                   duplicated and stuck jobs (tests/torture; TORTURE_SECONDS,
#                   default 300, and TORTURE_SEED)
#   make bench      compare with Node graphile-worker (tests/bench/bench.sh);
#                   make bench-quick: a < 60 s subset
#
# The test suites themselves are run by tests/run.sh; see README.md.

EXTENSION = graphile_worker
MODULE_big = graphile_worker
OBJS = \
	extension/core/cron_parse.o \
	extension/core/cron_json5.o \
	extension/core/cron_schedule.o \
	extension/core/worker_id.o \
	extension/graphile_worker.o \
	extension/guc.o \
	extension/shmem.o \
	extension/start_worker.o \
	extension/db_settings.o \
	extension/control.o \
	extension/xact.o \
	extension/wakeup.o \
	extension/workers_view.o \
	extension/utility_hook.o \
	extension/adopt.o \
	extension/job_access.o \
	extension/job_key_lock.o \
	extension/add_job.o \
	extension/crontab.o \
	extension/cron_fire.o \
	extension/stats.o \
	extension/wait_job.o \
	extension/monitor.o \
	bgworker/launcher.o \
	bgworker/supervisor.o \
	bgworker/recovery.o \
	bgworker/cron_ticker.o \
	bgworker/maintenance.o \
	bgworker/job_worker.o \
	bgworker/job_runner.o \
	bgworker/claim.o \
	bgworker/outcome.o \
	bgworker/handler.o

DATA = extension/graphile_worker--0.1.0.sql \
	extension/graphile_worker--0.1.0--0.2.0.sql
PGFILEDESC = "graphile_worker - Graphile Worker job queue in PostgreSQL"

# bgworker/ finds its own headers next to its files; extension/ cannot
# include them: the layers call one way (README, Layout)
PG_CPPFLAGS = -I$(srcdir)/extension -I$(srcdir)/extension/core
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

# make installcheck: pg_regress and isolation tests, each in a temporary
# instance with the library preloaded (run it as a user that may run
# initdb, i.e. not root; make test does that for you)
REGRESS = $(sort $(basename $(notdir $(wildcard $(srcdir)/sql/*.sql))))
REGRESS_OPTS = --inputdir=$(srcdir) --temp-config=$(srcdir)/tests/regress.conf \
	--temp-instance=./tmp_check_regress
ISOLATION = $(sort $(basename $(notdir $(wildcard $(srcdir)/tests/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=$(srcdir)/tests/isolation --outputdir=./tests/isolation/results \
	--temp-config=$(srcdir)/tests/regress.conf --temp-instance=./tmp_check_isolation \
	--load-extension=graphile_worker

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# A VPATH build (pg_buildext, debian/rules: make -f SRC/Makefile VPATH=SRC
# in a folder per PostgreSQL version) puts the objects in subfolders of
# the build folder
ifdef VPATH
$(shell mkdir -p extension/core bgworker)
endif

# PGXS does not track header dependencies
HEADERS_OWN = $(wildcard $(srcdir)/extension/*.h $(srcdir)/extension/core/*.h \
	$(srcdir)/bgworker/*.h)
$(OBJS): $(HEADERS_OWN)

# PG=M: the major version to test (Debian 12's 15 when empty)
PG ?=
PG_VERSIONS ?= 13 15 17 18

# make deb: where the .deb files go
DEB_DIR ?= $(CURDIR)/debs

.PHONY: test check-cassert test-versions deb demo torture bench bench-quick
test:
	GW_PG=$(PG) bash tests/run.sh

check-cassert:
	GW_PG=$(PG) GW_CASSERT=only GW_OTHER_PG= bash tests/run.sh

test-versions:
	GW_PG="$(PG_VERSIONS)" GW_PG_ABSENT=skip GW_CASSERT=0 GW_OTHER_PG= bash tests/run.sh

deb:
	bash tests/deb.sh build $(DEB_DIR) && bash tests/deb.sh check $(DEB_DIR)

demo:
	bash tests/demo.sh

torture:
	bash tests/torture/torture.sh

bench:
	bash tests/bench/bench.sh

bench-quick:
	GW_BENCH_QUICK=1 bash tests/bench/bench.sh
