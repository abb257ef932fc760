# redis-candles — two commands set everything up on a fresh Debian machine:
#   make run    build, start redis-server with the module (redis.conf), start the feeder
#   make test   install what is missing, build, run every test
SHELL := /bin/bash
CARGO ?= cargo
MODULE := target/release/libredis_candles.so
FEED := target/release/candles-feed
REDIS_PORT ?= 6379
SYMBOLS ?= BTCUSDT,ETHUSDT
INTERVALS ?= 1m,1h
REPLAY ?=

.PHONY: all deps build test unit lint run bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release --workspace

# Unit tests (pure core, feeder), integration tests against real redis-servers, lints.
test: build
	$(CARGO) test --release --workspace
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test -p candles-core

run: build
	@scripts/run.sh "$(REDIS_PORT)" "$(SYMBOLS)" "$(INTERVALS)" "$(REPLAY)"

bench: build
	@scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf .run .bench
