# outbox: one Makefile for the three daemons, the shared library, the
# migration runner and the tests.  See README.md ("Make targets").
#
#   make build   release binaries into build/release/bin
#   make test    install, start the private servers, ASan+UBSan build, tests
#   make dev     install, start the private servers, migrate, run the daemons
#   make infras  only start the private MariaDB and RabbitMQ
#   make clean   stop the private servers, remove build output
#   make lint    banned functions, cppcheck

SHELL := /bin/bash
CC ?= cc
VARIANT ?= release
# BUILD_ROOT lets two checkouts' worth of work (or two people) build side
# by side; tests/run.sh reads the same variable.
BUILD_ROOT ?= build
export BUILD_ROOT
B := $(BUILD_ROOT)/$(VARIANT)

PKGS := libmicrohttpd libmariadb librabbitmq jansson uuid
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS)) -lpthread
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
UNIT_SRC := $(wildcard tests/unit_*.c)
IT_SRC := $(wildcard tests/it_*.c) tests/harness.c

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

BINS := $(B)/bin/outbox-app $(B)/bin/outbox-migrate
ifneq ($(wildcard relay/main.c),)
BINS += $(B)/bin/outbox-relay
endif
ifneq ($(wildcard worker/main.c),)
BINS += $(B)/bin/outbox-worker
endif
TEST_BINS := $(B)/bin/outbox-unit $(B)/bin/outbox-itest

.PHONY: all build build-san tests-bin deps infras migrate dev test clean \
	lint

all: build

build:
	@$(MAKE) --no-print-directory VARIANT=release binaries

build-san:
	@$(MAKE) --no-print-directory VARIANT=san binaries tests-bin

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

$(B)/bin/outbox-migrate: $(call obj,migrations/migrate.c) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/bin/outbox-unit: $(call obj,$(UNIT_SRC) $(APP_LIB_SRC) $(RELAY_LIB_SRC) $(WORKER_LIB_SRC)) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_PKG_LIBS)

$(B)/bin/outbox-itest: $(call obj,$(IT_SRC)) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_PKG_LIBS)

# Tests include daemon headers as "app/validate.h" and so on.
$(B)/obj/tests/%.o: CFLAGS += -I.

-include $(shell find $(B) -name '*.d' 2>/dev/null)

deps:
	@bash scripts/deps.sh all

infras: deps
	@bash scripts/infra.sh start

migrate: build infras
	@scripts/env.sh $(BUILD_ROOT)/release/bin/outbox-migrate

dev: deps build infras migrate
	@bash scripts/dev.sh

test: deps
	@$(MAKE) --no-print-directory build-san
	@bash scripts/infra.sh start
	@bash tests/run.sh

clean:
	-@bash scripts/infra.sh stop
	rm -rf $(BUILD_ROOT)

lint:
	@bash scripts/lint.sh
