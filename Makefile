# lottery: a national lottery server and its betting agencies.
#
#   make run    a whole lottery round on the shipped dataset (server + 5 agencies)
#   make test   builds, then runs the native test suites (all but slow, docker, swarm)
#
# Every target (make help prints this):
#   all / build          compile (build/)         deps        install missing Debian packages
#   run                  one round, shipped data  test        all but slow, docker, swarm
#   test-unit            the unit suite           test-integration  the integration suite
#   test-daemon          the daemon suite         test-slow   the long loads (tests/load/)
#   test-sanitize        every suite under ASan and UBSan (build-asan/)
#   bench                the benchmark (docs/PERFORMANCE.md)
#   fuzz-deps / fuzz-build / fuzz-ci / fuzz   the libFuzzer targets (build-fuzz/)
#   install              PREFIX=/usr/local, DESTDIR honoured
#   docker-image         both images              compose     CLIENTS=N compose file
#   docker-compose-up / docker-compose-logs / docker-compose-down   run it
#   validate-echo-server the echo check in a container   test-docker  the docker suite
#   stack-file / stack-deploy   STACK=lottery CLIENTS=N on Docker Swarm (docs/DEPLOY.md)
#   stack-rm / stack-logs   remove it / follow its services' logs   test-swarm  the swarm suite
#   format               clang-format-14 over src/ (the format test checks it)
#   help                 this text                clean       remove every build directory
#
# Targets install what is missing first (make deps: Debian packages via apt-get).
# Docker targets need a running engine.

SHELL      := /bin/bash
BUILD_DIR  ?= build
MESON_OPTS ?=
PYTHON     ?= python3
# CI sets WERROR=1: a warning is an error there.
ifeq ($(WERROR),1)
MESON_OPTS += -Dwerror=true
endif

DEB_PACKAGES := g++ meson ninja-build pkg-config cmake libfmt-dev libtomlplusplus-dev libsystemd-dev \
                doctest-dev python3 strace iproute2 libssl-dev openssl prometheus python3-matplotlib socat \
                libpq-dev postgresql clang-format-14
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: bench all deps build run test format test-unit test-integration test-daemon test-slow test-sanitize install clean help fuzz fuzz-ci fuzz-build fuzz-deps \
        docker-image compose docker-compose-up docker-compose-down docker-compose-logs \
        validate-echo-server test-docker stack-file stack-deploy stack-rm stack-logs test-swarm

all: build

help:
	@sed -n '1,/^# Docker targets need/p' Makefile

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/build.ninja:
	meson setup $(BUILD_DIR) $(MESON_OPTS)

build: deps $(BUILD_DIR)/build.ninja
	@if [ -n "$(MESON_OPTS)" ]; then meson configure $(BUILD_DIR) $(MESON_OPTS) >/dev/null; fi
	ninja -C $(BUILD_DIR)

run: build
	$(PYTHON) tools/run_round.py --build-dir $(BUILD_DIR)

# Every suite but the slow one; prints "N passed, N failed" last.
test: build
	@set +e; meson test -C $(BUILD_DIR) --print-errorlogs --no-suite slow --no-suite docker --no-suite swarm; rc=$$?; \
	$(PYTHON) tools/test_summary.py $(BUILD_DIR)/meson-logs/testlog.json; exit $$rc

# Rewrites src/'s C++ files in place as .clang-format says, with
# clang-format-14 (Debian bookworm's: other versions format differently). The
# format test (tests/format/format_test.py, in make test) fails until it is run.
format:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES=clang-format-14
	$(PYTHON) tests/format/format_test.py --fix

test-unit: build
	meson test -C $(BUILD_DIR) --print-errorlogs --suite unit

test-integration: build
	meson test -C $(BUILD_DIR) --print-errorlogs --suite integration

test-daemon: build
	meson test -C $(BUILD_DIR) --print-errorlogs --suite daemon

# Long loads (tests/load/): 200 agencies x 20,000 bets with durable acks.
test-slow: build
	meson test -C $(BUILD_DIR) --print-errorlogs --suite slow --verbose

# The benchmark (docs/PERFORMANCE.md): raw loopback copy vs whole rounds, and
# PostgreSQL as a baseline. Prints a table and writes build/bench.json.
# Datasets are generated once into build/bench-data. BENCH_ARGS passes options
# to tools/bench.py (e.g. BENCH_ARGS="--runs 5 --datasets 5x1M").
BENCH_ARGS ?=
# The PostgreSQL baseline installs Debian's postgresql-15 when it is missing
# (without starting its system cluster; tools/bench_postgres.py).
bench: build
	$(PYTHON) tools/bench.py --build-dir $(BUILD_DIR) $(BENCH_ARGS)

# Installs the three programs (server, agency, lotteryctl), their manual
# pages, the configs (sysconfdir/lottery) and the systemd units. PREFIX=/usr
# gives /usr/bin, /etc/lottery and the distribution's unit directory; DESTDIR
# stages the tree for a package.
PREFIX  ?= /usr/local
DESTDIR ?=
install: deps $(BUILD_DIR)/build.ninja
	meson configure $(BUILD_DIR) -Dprefix=$(PREFIX) $(MESON_OPTS) >/dev/null
	ninja -C $(BUILD_DIR)
	meson install -C $(BUILD_DIR) --no-rebuild $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))

# Every suite again with AddressSanitizer and UndefinedBehaviorSanitizer; the
# binaries' own reports (server, workers, agencies) go to build-asan/sanitizer/.
test-sanitize: deps
	@[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-asan
	@rm -rf build-asan/sanitizer && mkdir -p build-asan/sanitizer
	ASAN_OPTIONS=log_path=$(CURDIR)/build-asan/sanitizer/asan \
	UBSAN_OPTIONS=log_path=$(CURDIR)/build-asan/sanitizer/ubsan:print_stacktrace=1 \
	  meson test -C build-asan --print-errorlogs --no-suite slow --no-suite docker --no-suite swarm
	@if [ -n "$$(ls build-asan/sanitizer)" ]; then cat build-asan/sanitizer/*; exit 1; fi

# --- Fuzzing -------------------------------------------------------------------
# libFuzzer targets (src/fuzz/) in their own clang build with ASan and UBSan.
# fuzz-ci runs each for about a minute, as CI does; fuzz runs each for
# FUZZ_SECONDS. A crash leaves its input in build-fuzz/src/fuzz/artifacts/.
FUZZ_DIR     ?= build-fuzz
FUZZ_CXX     ?= clang++-16
FUZZ_SECONDS ?= 600
FUZZ_PACKAGES := clang-16 libclang-rt-16-dev

fuzz-deps: deps
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(FUZZ_PACKAGES)"

fuzz-build: fuzz-deps
	@[ -f $(FUZZ_DIR)/build.ninja ] || CXX=$(FUZZ_CXX) meson setup $(FUZZ_DIR) -Dfuzz=true \
	  -Dtests=false -Dlibsystemd=disabled -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(FUZZ_DIR)

fuzz-ci: fuzz-build
	meson test -C $(FUZZ_DIR) --suite fuzz --print-errorlogs

fuzz: fuzz-build
	meson test -C $(FUZZ_DIR) --suite fuzz --print-errorlogs --verbose \
	  --test-args=-max_total_time=$(FUZZ_SECONDS)

# --- Docker ------------------------------------------------------------------
# Images are built here, not by compose. Where the engine's containers have no
# route out (as on the CI machines), pass DOCKER_BUILD_FLAGS="--network host".
DOCKER_BUILD_FLAGS ?=
SERVER_IMAGE    ?= lottery-server:latest
AGENCY_IMAGE    ?= lottery-agency:latest
CLIENTS         ?= 5
COMPOSE_FILE    ?= docker-compose-dev.yaml
COMPOSE_PROJECT ?= lottery
# Must match STOP_GRACE_SECONDS in tools/gen_compose.py.
STOP_GRACE      ?= 10
# Where docker-compose-down saves the round's bets file before removing the volume.
BETS_OUT        ?= $(BUILD_DIR)/docker-bets/bets-$(shell date +%Y%m%d-%H%M%S).csv
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_CMD = $(COMPOSE) -p $(COMPOSE_PROJECT) -f $(COMPOSE_FILE)

docker-image:
	docker build $(DOCKER_BUILD_FLAGS) -f docker/server.Dockerfile -t $(SERVER_IMAGE) .
	docker build $(DOCKER_BUILD_FLAGS) -f docker/agency.Dockerfile -t $(AGENCY_IMAGE) .

compose:
	$(PYTHON) tools/gen_compose.py $(COMPOSE_FILE) $(CLIENTS)

# The compose file is made again first: it also makes what is missing of the
# certificate set in certs/ beside it (tools/gen_compose.py, docs/SECURITY.md).
docker-compose-up: docker-image compose
	$(COMPOSE_CMD) up -d

# Graceful stop (the server stops its workers and logs its exit), then the
# round's bets file is copied out and the containers, network and volume go:
# the next up starts a new round on an empty file.
docker-compose-down:
	$(COMPOSE_CMD) stop -t $(STOP_GRACE)
	@mkdir -p $(dir $(BETS_OUT)); \
	if docker cp server:/var/lib/lottery/bets.csv $(BETS_OUT) >/dev/null 2>&1; then \
	  echo "bets file saved to $(BETS_OUT)"; fi
	$(COMPOSE_CMD) down --volumes --remove-orphans

docker-compose-logs:
	$(COMPOSE_CMD) logs -f

# Over TLS with certs/probe.* (ECHO_TLS_MODE=off for a plaintext server).
validate-echo-server:
	@AGENCY_IMAGE=$(AGENCY_IMAGE) ECHO_TLS_DIR=$(dir $(COMPOSE_FILE))certs tools/validate-echo-server.sh

# --- Docker Swarm (docs/DEPLOY.md) ---------------------------------------------
STACK      ?= lottery
STACK_FILE ?= docker-stack.yaml

stack-file:
	$(PYTHON) tools/gen_compose.py --swarm $(STACK_FILE) $(CLIENTS)

# Images must be on every node that runs a task: on one machine the local
# build is enough; on several, push them to a registry (docs/DEPLOY.md).
stack-deploy: docker-image stack-file
	@tools/stack-preflight.sh
	docker stack deploy -c $(STACK_FILE) $(STACK)

# Services, secrets, configs and the network go; the bets volume stays (it is
# the round's data): docker volume rm $(STACK)_bets when it is saved.
stack-rm:
	docker stack rm $(STACK)

stack-logs:
	@services=$$(docker stack services -q $(STACK)); 	if [ -z "$$services" ]; then echo "no stack named $(STACK)" >&2; exit 1; fi; 	trap 'kill 0' INT TERM; 	for s in $$services; do docker service logs --follow $$s & done; wait

# The swarm suite (tests/swarm/): skipped, not failed, without an engine.
test-swarm: build
	@set +e; DOCKER_BUILD_FLAGS="$(DOCKER_BUILD_FLAGS)" meson test -C $(BUILD_DIR) --print-errorlogs --suite swarm; rc=$$?; \
	$(PYTHON) tools/test_summary.py $(BUILD_DIR)/meson-logs/testlog.json; exit $$rc

# The docker suite (tests/docker/): skipped, not failed, without an engine.
test-docker: build
	@set +e; DOCKER_BUILD_FLAGS="$(DOCKER_BUILD_FLAGS)" meson test -C $(BUILD_DIR) --print-errorlogs --suite docker; rc=$$?; \
	$(PYTHON) tools/test_summary.py $(BUILD_DIR)/meson-logs/testlog.json; exit $$rc

clean:
	rm -rf $(BUILD_DIR) build-asan $(FUZZ_DIR)
