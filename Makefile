# lottery: a national lottery server and its betting agencies.
#
#   make run    a whole lottery round on the shipped dataset (server + 5 agencies)
#   make test   builds, then runs every test suite (meson test)
#
# Both install what is missing first (make deps: Debian packages via apt-get).

SHELL      := /bin/bash
BUILD_DIR  ?= build
MESON_OPTS ?=
PYTHON     ?= python3
# CI sets WERROR=1: a warning is an error there.
ifeq ($(WERROR),1)
MESON_OPTS += -Dwerror=true
endif

DEB_PACKAGES := g++ meson ninja-build pkg-config cmake libfmt-dev libtomlplusplus-dev \
                doctest-dev python3
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all deps build run test test-unit test-integration test-sanitize clean help

all: build

help:
	@sed -n '1,8p' Makefile

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
	@set +e; meson test -C $(BUILD_DIR) --print-errorlogs --no-suite slow; rc=$$?; \
	$(PYTHON) tools/test_summary.py $(BUILD_DIR)/meson-logs/testlog.json; exit $$rc

test-unit: build
	meson test -C $(BUILD_DIR) --print-errorlogs --suite unit

test-integration: build
	meson test -C $(BUILD_DIR) --print-errorlogs --suite integration

# Every suite again with AddressSanitizer and UndefinedBehaviorSanitizer; the
# binaries' own reports (server, workers, agencies) go to build-asan/sanitizer/.
test-sanitize: deps
	@[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-asan
	@rm -rf build-asan/sanitizer && mkdir -p build-asan/sanitizer
	ASAN_OPTIONS=log_path=$(CURDIR)/build-asan/sanitizer/asan \
	UBSAN_OPTIONS=log_path=$(CURDIR)/build-asan/sanitizer/ubsan:print_stacktrace=1 \
	  meson test -C build-asan --print-errorlogs --no-suite slow
	@if [ -n "$$(ls build-asan/sanitizer)" ]; then cat build-asan/sanitizer/*; exit 1; fi

clean:
	rm -rf $(BUILD_DIR) build-asan
