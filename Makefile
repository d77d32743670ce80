# Makefile for graphile_worker (PGXS)
#
#   make            build graphile_worker.so
#   make install    install the library and the extension's SQL files
#   make test       install what is missing, build, install, run every suite
#                   (GW_CASSERT=1, the default when CI=true: also make
#                   check-cassert's pass)
#   make check-cassert  the suites against an assert-enabled PostgreSQL,
#                   built once into /var/cache/graphile_worker (tests/cassert.sh)
#   make bench      compare with Node graphile-worker (tests/bench/bench.sh);
#                   make bench-quick: a < 60 s subset
#
# The test suites themselves are run by tests/run.sh; see README.md.

EXTENSION = graphile_worker
MODULE_big = graphile_worker
OBJS = \
	extension/xact.o \
	extension/graphile_worker.o \
	extension/guc.o \
	extension/shmem.o \
	extension/wakeup.o \
	extension/workers_view.o \
	extension/utility_hook.o \
	extension/crontab.o \
	extension/add_job.o \
	extension/job_key_lock.o \
	extension/job_access.o \
	bgworker/launcher.o \
	bgworker/supervisor.o \
	bgworker/job_worker.o \
	bgworker/job_runner.o \
	bgworker/claim.o \
	bgworker/handler.o \
	bgworker/recovery.o \
	bgworker/worker_id.o \
	bgworker/cron_parse.o \
	bgworker/cron_json5.o \
	bgworker/cron_schedule.o \
	bgworker/cron_fire.o

DATA = extension/graphile_worker--0.1.0.sql \
	extension/graphile_worker--0.1.0--0.2.0.sql
PGFILEDESC = "graphile_worker - Graphile Worker job queue in PostgreSQL"

PG_CPPFLAGS = -I$(srcdir)/extension -I$(srcdir)/bgworker
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies
HEADERS_OWN = $(wildcard extension/*.h bgworker/*.h)
$(OBJS): $(HEADERS_OWN)

.PHONY: test check-cassert demo bench bench-quick
test:
	bash tests/run.sh

check-cassert:
	GW_CASSERT=only bash tests/run.sh

demo:
	bash tests/demo.sh

bench:
	bash tests/bench/bench.sh

bench-quick:
	GW_BENCH_QUICK=1 bash tests/bench/bench.sh
