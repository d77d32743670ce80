# Makefile for graphile_worker (PGXS)
#
#   make            build graphile_worker.so
#   make install    install the library and the extension's SQL files
#   make test       install what is missing, build, install, run every suite
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
	extension/graphile_worker.o \
	extension/guc.o \
	extension/shmem.o \
	extension/wakeup.o \
	extension/workers_view.o \
	extension/utility_hook.o \
	extension/crontab.o \
	extension/add_job.o \
	bgworker/launcher.o \
	bgworker/supervisor.o \
	bgworker/job_worker.o \
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

.PHONY: test demo torture bench bench-quick
test:
	bash tests/run.sh

demo:
	bash tests/demo.sh

torture:
	bash tests/torture/torture.sh

bench:
	bash tests/bench/bench.sh

bench-quick:
	GW_BENCH_QUICK=1 bash tests/bench/bench.sh
