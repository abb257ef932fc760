#!/usr/bin/env bash
# `make bench`: the module against the hand-written Redis patterns it replaces
# (benches/compare/: one redis-server, side by side, table with ratios and targets), then the
# feeder's own benchmark when it exists, then candles-web's (push latency from a module write
# to 100 WebSocket viewers, CPU per update). Exits non-zero when any target is missed.
#   BENCH_SECS=2.5 BENCH_REPEATS=3   seconds per redis-benchmark run, runs per figure (median)
#   FEED_BENCH_QUICK=1               shortens the feeder's benchmark (default here: 1)
#   SKIP_FEED_BENCH=1                skips it
#   SKIP_WEB_BENCH=1                 skips candles-web's
set -uo pipefail
cd "$(dirname "$0")/.."
export BENCH_DIR="${BENCH_DIR:-$PWD/.bench}"
mkdir -p "$BENCH_DIR"

# The comparison kills its redis-server itself; should it be killed first, stop the server
# it left behind (only if that pid is still a redis-server started from $BENCH_DIR's pid file).
cleanup() {
  local f="$BENCH_DIR/redis.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null)
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "redis-server.*$BENCH_DIR"; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
start=$SECONDS
echo "== redis-candles vs hand-written Redis patterns: cargo bench --bench compare"
cargo bench --bench compare || status=$?
cleanup

if [ -z "${SKIP_FEED_BENCH:-}" ] && compgen -G "feed/benches/*.rs" >/dev/null; then
  echo
  # Only the bench targets (plain `cargo bench -p candles-feed` also builds its unit tests).
  feed_benches=()
  for f in feed/benches/*.rs; do feed_benches+=(--bench "$(basename "$f" .rs)"); done
  echo "== feeder benchmark: cargo bench -p candles-feed ${feed_benches[*]} (FEED_BENCH_QUICK=${FEED_BENCH_QUICK:-1})"
  FEED_BENCH_QUICK="${FEED_BENCH_QUICK:-1}" cargo bench -p candles-feed "${feed_benches[@]}" || status=$?
fi
if [ -z "${SKIP_WEB_BENCH:-}" ] && [ -f web/benches/web_bench.rs ]; then
  echo
  echo "== candles-web benchmark: cargo bench -p candles-web --bench web_bench"
  cargo bench -p candles-web --bench web_bench || status=$?
fi
echo
echo "bench finished in $((SECONDS - start)) s, exit status $status"
exit "$status"
