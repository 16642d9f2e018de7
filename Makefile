# greenroom: build, run and test.
#
#   make run     build the release binary and start a server (prints the studio and watch URLs)
#   make test    everything CI checks: deps, services, fmt, clippy, Rust tests, browser tests
#   make lint    cargo fmt --check and clippy with warnings as errors
#   make bench   criterion benches (greenroom-benches)
#   make load    the load generator; pass its flags with LOAD_ARGS="..."

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := run

CARGO ?= cargo
NPM ?= npm
NODE ?= node
CARGO_TARGET_DIR ?= $(HOME)/.cache/greenroom-target
export CARGO_TARGET_DIR

# The binary the browser tests start.
GREENROOM_BIN ?= $(CARGO_TARGET_DIR)/debug/greenroom
export GREENROOM_BIN

# Services started by scripts/services.sh, for Rust tests that want them.
GREENROOM_TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
GREENROOM_TEST_REDIS_URL ?= redis://127.0.0.1:6379
export GREENROOM_TEST_DATABASE_URL GREENROOM_TEST_REDIS_URL

LOAD_ARGS ?=
FANOUT_ARGS ?= 250 20 f

.PHONY: test-tools run test lint fmt-check clippy build test-rust test-browser browser-deps \
	deps deps-build services bench load fanout

run: deps-build
	$(CARGO) build --release -p greenroom
	$(CARGO_TARGET_DIR)/release/greenroom serve

test:
	$(MAKE) deps
	$(MAKE) test-tools
	$(MAKE) services
	$(MAKE) browser-deps
	$(MAKE) lint
	$(MAKE) build
	$(MAKE) test-rust
	$(MAKE) test-browser

lint: fmt-check clippy

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build:
	$(CARGO) build -p greenroom

test-rust:
	$(CARGO) test --workspace

# Real Chromium against the debug binary (see tests/browser/harness.js).
test-browser:
	test -x "$(GREENROOM_BIN)" || { echo "no greenroom binary at $(GREENROOM_BIN): run make build" >&2; exit 1; }
	$(NODE) --test --test-concurrency=1 tests/browser/

browser-deps:
	cd tests/browser && $(NPM) ci --no-audit --no-fund

deps:
	scripts/install-deps.sh all

deps-build:
	scripts/install-deps.sh build

# Real servers some Rust tests start (s3s-fs: S3-compatible, checks SigV4 signatures).
test-tools:
	scripts/install-test-tools.sh

services:
	scripts/services.sh

bench: deps-build
	$(CARGO) bench -p greenroom-benches

load: deps-build
	$(CARGO) run --release -p greenroom-load -- $(LOAD_ARGS)

fanout: deps-build
	benches/fanout.sh $(FANOUT_ARGS)
