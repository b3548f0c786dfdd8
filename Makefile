# outbox: one Makefile for the three daemons, the shared library, the
# migration runner and the tests.  See README.md ("Make targets").
#
#   make build   release binaries into build/release/bin
#   make test    install, ASan+UBSan build, tests on the test servers
#   make dev     install, start the dev servers, migrate, run the daemons
#                (MONITOR=1: and a private Prometheus with monitoring/;
#                RELAYS=N WORKERS=M; OUTBOX_MQ_NODES=3: a RabbitMQ cluster)
#   make infras  only start the dev MariaDB and RabbitMQ
#   make clean   stop both sets of private servers, remove build output
#   make admin ARGS="dlq list"  outbox-admin on the dev servers
#
# Two sets of private servers (scripts/ports.env): dev (make dev, infras,
# migrate, audit, admin) and test (make test, chaos, chaos-db, bench, valgrind,
# containers-smoke), with their own ports and data: the tests never touch
# what `make dev` wrote, and may run while it runs.
#   make lint    banned functions, cppcheck

SHELL := /bin/bash
CC ?= cc
VARIANT ?= release
# BUILD_ROOT lets two checkouts' worth of work (or two people) build side
# by side; tests/run.sh reads the same variable.
BUILD_ROOT ?= build
export BUILD_ROOT
B := $(BUILD_ROOT)/$(VARIANT)
# The sub-makes that compile (build, build-san, and those of bench, chaos,
# valgrind) use every core unless the caller gave -j itself (make -j4
# build: its jobs, shared with the sub-make).
JOBS = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 1))

# The test servers, whatever OUTBOX_* the caller's shell exports for the
# dev ones, with one RabbitMQ node (scripts/lib.sh's use_test_servers does
# the same; tests/cluster_test.sh asks for its cluster itself).
TEST_SERVERS := env -u OUTBOX_VAR -u OUTBOX_DB_PORT -u OUTBOX_MQ_PORT \
	-u OUTBOX_MQ_DIST_PORT -u OUTBOX_MQ_EPMD_PORT -u OUTBOX_MQ_PORTS \
	-u OUTBOX_MQ_DIST_PORTS -u OUTBOX_MQ_NODES OUTBOX_SERVERS=test

PKGS := libmicrohttpd libmariadb librabbitmq jansson uuid
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
# libunistring (Unicode character classes) has no pkg-config file.
PKG_LIBS = $(shell pkg-config --libs $(PKGS)) -lunistring -lpthread
TEST_PKG_CFLAGS = $(shell pkg-config --cflags check libcurl)
TEST_PKG_LIBS = $(shell pkg-config --libs check libcurl)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
# CI=true (set by the CI runner) turns warnings into errors.
ifneq ($(CI),)
WARN += -Werror
endif
ifeq ($(VARIANT),san)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
else
OPT := -O2 -g
endif
CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -pthread -Icommon \
	$(EXTRA_CFLAGS)
LDFLAGS := $(OPT) -pthread $(EXTRA_LDFLAGS)

COMMON_SRC := $(wildcard common/*.c)
APP_LIB_SRC := $(filter-out app/main.c,$(wildcard app/*.c))
RELAY_LIB_SRC := $(filter-out relay/main.c,$(wildcard relay/*.c))
WORKER_LIB_SRC := $(filter-out worker/main.c,$(wildcard worker/*.c))
ADMIN_LIB_SRC := $(filter-out admin/main.c,$(wildcard admin/*.c))
IT_SRC := $(wildcard tests/it_*.c) $(wildcard tests/harness*.c) tests/suites.c tests/testuid.c
# The relay's poll, run by a test in a session of its own.
IT_SRC += relay/poll.c relay/outbatch.c relay/unmarked.c relay/binlog_check.c \
	relay/position.c relay/backlog.c relay/retention.c relay/relay_metrics.c

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

BINS := $(B)/bin/outbox-app $(B)/bin/outbox-migrate $(B)/bin/outbox-audit \
	$(B)/bin/outbox-admin
ifneq ($(wildcard relay/main.c),)
BINS += $(B)/bin/outbox-relay
endif
ifneq ($(wildcard worker/main.c),)
BINS += $(B)/bin/outbox-worker
endif
TEST_BINS := $(B)/bin/outbox-unit $(B)/bin/outbox-itest
# The load of the chaos run (tests/run.sh runs a short one).
TEST_BINS += $(B)/bin/outbox-chaos-load
# Preloaded into a MariaDB of the durability tests (tests/fsync_hold.c).
TEST_BINS += $(B)/lib/outbox-fsync-hold.so
# Loses the reply to a COMMIT on demand (tests/sqlproxy.c).
TEST_BINS += $(B)/bin/outbox-sqlproxy
# Leaves a port in TIME-WAIT as an outgoing connection does (tests/tcp_timewait.c).
TEST_BINS += $(B)/bin/outbox-tcp-timewait

.PHONY: all build build-san tests-bin deps infras migrate dev test clean \
	lint fuzz audit admin bench bench-charts valgrind

all: build

build:
	@$(MAKE) --no-print-directory $(JOBS) VARIANT=release binaries

build-san:
	@$(MAKE) --no-print-directory $(JOBS) VARIANT=san binaries tests-bin

binaries: $(BINS)
tests-bin: $(TEST_BINS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(TEST_PKG_CFLAGS) -MMD -MP -c $< -o $@

$(B)/libcommon.a: $(call obj,$(COMMON_SRC))
	@rm -f $@
	ar rcs $@ $^

$(B)/bin/outbox-app: $(call obj,app/main.c $(APP_LIB_SRC)) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/bin/outbox-relay: $(call obj,relay/main.c $(RELAY_LIB_SRC)) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/bin/outbox-worker: $(call obj,worker/main.c $(WORKER_LIB_SRC)) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

MIGRATE_LIB_SRC := migrations/sqlsplit.c
$(B)/bin/outbox-migrate: $(call obj,migrations/migrate.c $(MIGRATE_LIB_SRC)) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/bin/outbox-audit: $(call obj,audit/audit.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/bin/outbox-admin: $(call obj,admin/main.c $(ADMIN_LIB_SRC)) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Every unit test in one binary: no two modules of the tree share a name.
UNIT_SRC := $(wildcard tests/unit_*.c) tests/suites.c tests/testuid.c
$(B)/bin/outbox-unit: $(call obj,$(UNIT_SRC) $(APP_LIB_SRC) $(RELAY_LIB_SRC) $(WORKER_LIB_SRC) $(MIGRATE_LIB_SRC) admin/args.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_PKG_LIBS)

$(B)/bin/outbox-itest: $(call obj,$(IT_SRC)) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_PKG_LIBS)

$(B)/bin/outbox-sqlproxy: $(call obj,tests/sqlproxy.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/bin/outbox-tcp-timewait: $(call obj,tests/tcp_timewait.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Runs inside mariadbd: never with the sanitizers.
$(B)/lib/outbox-fsync-hold.so: tests/fsync_hold.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -fPIC -shared -o $@ $< -ldl

# Tests include daemon headers as "app/validate.h" and so on.
$(B)/obj/tests/%.o: CFLAGS += -I.

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# ---- fuzzing (libFuzzer, clang) ------------------------------------------
# make fuzz FUZZ_SECONDS=60: runs each harness for that long on its seed
# corpus (tests/fuzz/corpus/*) plus what it found before (build/fuzz/).
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Icommon -I.
FUZZ_COMMON := common/buf.c common/msg.c common/uid.c common/log.c \
    common/timefmt.c

$(BUILD_ROOT)/fuzz/fuzz-body: tests/fuzz/fuzz_body.c app/validate.c $(FUZZ_COMMON)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD_ROOT)/fuzz/fuzz-msg: tests/fuzz/fuzz_msg.c $(FUZZ_COMMON)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS)

fuzz: $(BUILD_ROOT)/fuzz/fuzz-body $(BUILD_ROOT)/fuzz/fuzz-msg
	@for h in body msg; do \
		mkdir -p $(BUILD_ROOT)/fuzz/corpus-$$h; \
		echo "fuzz: $$h for $(FUZZ_SECONDS) s"; \
		$(BUILD_ROOT)/fuzz/fuzz-$$h -max_total_time=$(FUZZ_SECONDS) \
		    -max_len=20000 -timeout=10 -print_final_stats=1 \
		    $(BUILD_ROOT)/fuzz/corpus-$$h tests/fuzz/corpus/$$h \
		    2>$(BUILD_ROOT)/fuzz/$$h.log || \
		    { tail -n 60 $(BUILD_ROOT)/fuzz/$$h.log; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^stat::new_units_added' \
		    $(BUILD_ROOT)/fuzz/$$h.log; \
	done

deps:
	@bash scripts/deps.sh all

# RELAY_MODE=binlog (make dev, make infras, make chaos): the relay reads
# the binary log (README, "Binlog mode"); the dev MariaDB is started with
# it (one running without it is restarted with it).
RELAY_MODE ?= poll
ifeq ($(filter poll binlog,$(RELAY_MODE)),)
$(error RELAY_MODE=$(RELAY_MODE): poll or binlog)
endif
DB_BINLOG := $(if $(filter binlog,$(RELAY_MODE)),1,0)

infras: deps
	@OUTBOX_DB_BINLOG=$(DB_BINLOG) bash scripts/infra.sh start

migrate: build infras
	@scripts/env.sh $(BUILD_ROOT)/release/bin/outbox-migrate

# MONITOR=1: a private Prometheus too (scripts/dev.sh; README, "Monitoring").
# RELAYS=N WORKERS=M: that many relays and workers (scripts/dev.sh).
# OUTBOX_MQ_NODES=3 in the environment: against a 3-node RabbitMQ cluster.
MONITOR ?= 0
RELAYS ?= 1
WORKERS ?= 1
dev: deps build infras migrate
	@DEV_MONITOR=$(MONITOR) DEV_RELAYS=$(RELAYS) DEV_WORKERS=$(WORKERS) \
	    DEV_RELAY_MODE=$(RELAY_MODE) bash scripts/dev.sh

# tests/run.sh starts the test servers (and stops them if it did).  Their
# MariaDBs run without the huge-page shim (OUTBOX_DB_THP=0): it makes each
# start 0.5 GiB larger and slower, and the crash and restart tests start
# many (tests/infra_test.sh checks the shim itself).
test: deps
	@$(TEST_SERVERS) OUTBOX_DB_THP=0 bash tests/run.sh --preflight
	@$(MAKE) --no-print-directory build-san
	@$(MAKE) --no-print-directory build
	@$(TEST_SERVERS) OUTBOX_DB_THP=0 bash tests/run.sh

clean:
	-@bash scripts/infra.sh stop
	-@$(TEST_SERVERS) bash scripts/infra.sh stop
	-@OUTBOX_MQ_NODES=3 bash scripts/infra.sh mq-stop
	-@$(TEST_SERVERS) OUTBOX_MQ_NODES=3 bash scripts/infra.sh mq-stop
	rm -rf $(BUILD_ROOT)

lint:
	@bash scripts/lint.sh

# The system against the raw limits of the same servers, as ratios (see
# tests/load/bench.sh).  Never part of `make test`.
#   make bench CLUSTER=3: only its cluster section (BENCH_ONLY=cluster):
#   the test set's MariaDB and 3-node RabbitMQ cluster (started by the
#   bench unless it runs, then stopped), quorum queues; cluster.json.
BENCH_BINS := $(addprefix $(BUILD_ROOT)/release/bin/outbox-bench-,txn e2e publish consume)
CLUSTER ?=
bench: deps
ifeq ($(strip $(CLUSTER)),)
	@$(MAKE) --no-print-directory $(JOBS) VARIANT=release binaries $(BENCH_BINS)
	@$(TEST_SERVERS) bash scripts/infra.sh start
	@$(TEST_SERVERS) scripts/env.sh $(BUILD_ROOT)/release/bin/outbox-migrate
	@$(TEST_SERVERS) bash tests/load/bench.sh
else ifeq ($(strip $(CLUSTER)),3)
	@$(MAKE) --no-print-directory $(JOBS) VARIANT=release binaries $(BENCH_BINS)
	@$(TEST_SERVERS) bash scripts/infra.sh db-start
	@$(TEST_SERVERS) scripts/env.sh $(BUILD_ROOT)/release/bin/outbox-migrate
	@$(TEST_SERVERS) BENCH_ONLY=cluster bash tests/load/bench.sh
else
	$(error CLUSTER=$(CLUSTER): empty (the whole bench) or 3 (its section on a 3-node RabbitMQ cluster))
endif

# The charts of a bench run drawn again from its folder, the bench not
# run again (BENCH_DIR, default the last run's): after a change of their
# style (tests/load/charts/*.gp), or of what they show.
BENCH_DIR ?= $(BUILD_ROOT)/bench
bench-charts: deps
	@bash tests/load/bench_charts.sh $(BENCH_DIR)

# The three daemons under valgrind memcheck with traffic (tests/load/valgrind.sh).
valgrind: deps
	@$(MAKE) --no-print-directory $(JOBS) VARIANT=release binaries \
	    $(BUILD_ROOT)/release/bin/outbox-bench-e2e
	@$(TEST_SERVERS) bash scripts/infra.sh start
	@$(TEST_SERVERS) scripts/env.sh $(BUILD_ROOT)/release/bin/outbox-migrate
	@$(TEST_SERVERS) bash tests/load/valgrind.sh

# Reconciles the database and the broker (see audit/audit.c).
audit: build
	@. scripts/roles.env && scripts/env.sh env \
	    DB_USER=$$OUTBOX_AUDIT_DB_USER DB_PASS=$$OUTBOX_AUDIT_DB_PASS \
	    RABBITMQ_USER=$$OUTBOX_AUDIT_MQ_USER \
	    RABBITMQ_PASS=$$OUTBOX_AUDIT_MQ_PASS \
	    $(BUILD_ROOT)/release/bin/outbox-audit

# An operator's tool for stuck and dead-lettered messages (admin/main.c;
# README, "Admin"), as its own login:  make admin ARGS="dlq list"
ARGS ?= status
admin: build
	@. scripts/roles.env && scripts/env.sh env \
	    DB_USER=$$OUTBOX_ADMIN_DB_USER DB_PASS=$$OUTBOX_ADMIN_DB_PASS \
	    RABBITMQ_USER=$$OUTBOX_ADMIN_MQ_USER \
	    RABBITMQ_PASS=$$OUTBOX_ADMIN_MQ_PASS \
	    $(BUILD_ROOT)/release/bin/outbox-admin $(ARGS)

# ---- app benchmark: raw two-row transaction client (not part of `make test`)
$(B)/bin/outbox-bench-txn: $(call obj,tests/load/bench_txn.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/bin/outbox-bench-e2e: $(call obj,tests/load/bench_e2e.c tests/load/loadgen.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_PKG_LIBS)

# ---- chaos run (tests/load/chaos.sh; README, "Chaos run"): not part of
# `make test` directly (tests/run.sh runs a short one with the san build).
#   make chaos CHAOS_REQUESTS=20000 CHAOS_RATE=300 [CHAOS_SEED=n]
#   make chaos-db: database kills weighted up (at least 22 of 30 faults,
#   half of them with the redo log held), then 30 rounds of the
#   phantom-events crash test (make chaos: CHAOS_HOLD_ROUNDS=20).
#   make chaos RELAY_MODE=binlog: the same with the test MariaDB restarted
#   with the binary log (and without it at the end), two relays in binlog
#   mode, the binary log's sync held in db-held, and the binlog suite's
#   crash test as the rounds (tests/load/chaos.sh).
CHAOS_REQUESTS ?= 20000
CHAOS_RATE ?= 300
CHAOS_HOLD_ROUNDS ?= 20
.PHONY: chaos chaos-db chaos-load
chaos: deps
	@$(MAKE) --no-print-directory $(JOBS) VARIANT=release binaries chaos-load
	@$(TEST_SERVERS) bash scripts/infra.sh start
	@$(TEST_SERVERS) CHAOS_BIN=$(abspath $(BUILD_ROOT))/release/bin \
	    CHAOS_REQUESTS=$(CHAOS_REQUESTS) CHAOS_RATE=$(CHAOS_RATE) \
	    CHAOS_HOLD_ROUNDS=$(CHAOS_HOLD_ROUNDS) \
	    CHAOS_RELAY_MODE=$(RELAY_MODE) bash tests/load/chaos.sh

chaos-db: deps
	@$(MAKE) --no-print-directory $(JOBS) VARIANT=release binaries chaos-load
	@$(TEST_SERVERS) bash scripts/infra.sh start
	@$(TEST_SERVERS) CHAOS_BIN=$(abspath $(BUILD_ROOT))/release/bin \
	    CHAOS_REQUESTS=36000 CHAOS_RATE=$(CHAOS_RATE) CHAOS_FAULTS=30 \
	    CHAOS_DB_FAULTS=22 CHAOS_GAP_MIN_S=1 CHAOS_GAP_MAX_S=4 \
	    CHAOS_HOLD_ROUNDS=30 CHAOS_RELAY_MODE=$(RELAY_MODE) \
	    bash tests/load/chaos.sh

# The broker failover of tests/cluster_test.sh (make test runs it with
# 2,000 POSTs) at the issue's size: 20,000 POSTs at 300/s through 2 relays
# and 2 workers, the leader of the queue outbox killed (kill -9) under
# load, two nodes of three down, then a rolling restart of the three under
# 12,000 more POSTs, against the 3-node cluster of the test set (release
# build).
CLUSTER_REQUESTS ?= 20000
CLUSTER_RATE ?= 300
.PHONY: chaos-cluster
chaos-cluster: deps
	@$(MAKE) --no-print-directory $(JOBS) VARIANT=release binaries chaos-load
	@$(TEST_SERVERS) CLUSTER_BIN=$(abspath $(BUILD_ROOT))/release/bin \
	    CLUSTER_REQUESTS=$(CLUSTER_REQUESTS) CLUSTER_RATE=$(CLUSTER_RATE) \
	    CLUSTER_SETTLE_S=180 CLUSTER_ROLLING_POSTS=12000 bash tests/cluster_test.sh

chaos-load: $(B)/bin/outbox-chaos-load $(B)/lib/outbox-fsync-hold.so \
	$(B)/bin/outbox-itest $(B)/bin/outbox-sqlproxy

$(B)/bin/outbox-chaos-load: $(call obj,tests/load/chaos_load.c tests/load/loadgen.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_PKG_LIBS)

# ---- relay benchmark: raw confirmed-publish client (not part of `make test`)
# The reference figure the relay's drain rate is compared with; see the
# header of tests/load/bench_publish.c.  `make bench-publish` builds it into
# $(BUILD_ROOT)/release/bin.
.PHONY: bench-publish
bench-publish:
	@$(MAKE) --no-print-directory VARIANT=release $(BUILD_ROOT)/release/bin/outbox-bench-publish

$(B)/bin/outbox-bench-publish: $(call obj,tests/load/bench_publish.c tests/load/rawamqp.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# ---------------------------------------------------------------- containers
# Dockerfile.app/.relay/.worker and docker-compose.yml, proven with podman
# (no Docker engine here): scripts/containers.sh. Not part of `make test`.
#   make images            one-time podman setup, then build outbox-app,
#                          outbox-relay, outbox-worker and check them
#   make containers-smoke  the same, then run the three containers against
#                          the test servers: POST, the relay's and the
#                          worker's lines, clean SIGTERM stop
.PHONY: images containers-smoke

images:
	@bash scripts/containers.sh setup images

containers-smoke:
	@$(TEST_SERVERS) bash scripts/containers.sh setup images smoke

# ---- worker benchmark: raw consume client (not part of `make test`) -------
# The reference figure the worker's drain rate is compared with; see the
# header of tests/load/bench_consume.c.  `make bench-consume` builds it into
# $(BUILD_ROOT)/release/bin.
.PHONY: bench-consume
bench-consume:
	@$(MAKE) --no-print-directory VARIANT=release $(BUILD_ROOT)/release/bin/outbox-bench-consume

$(B)/bin/outbox-bench-consume: $(call obj,tests/load/bench_consume.c tests/load/rawamqp.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
