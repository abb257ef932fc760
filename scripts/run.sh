#!/usr/bin/env bash
# `make run`: a redis-server of our own with the module (redis.conf), then the feeder in the
# foreground. Ctrl-C stops the feeder and the redis-server this script started (data is kept in
# the run directory), and nothing else: a server that was already on the port is never touched.
#
#   scripts/run.sh PORT SYMBOLS INTERVALS REPLAY [feeder options...]
#
# Empty SYMBOLS/INTERVALS: live mode uses BTCUSDT,ETHUSDT and 1m,1h; a replay stores every
# symbol and interval in its file unless they are given. RUN_DIR (default .run) must be a
# folder directly under the repository root: redis.conf loads the module as
# ../target/release/libredis_candles.so relative to it.
set -euo pipefail
port=$1 symbols=$2 intervals=$3 replay=${4:-}
shift 4 || shift $#
extra=("$@")
cd "$(dirname "$0")/.."
run_dir=${RUN_DIR:-.run}
feed=target/release/candles-feed
module=target/release/libredis_candles.so

die() { echo "make run: $*" >&2; exit 1; }

[ -x "$feed" ] || die "$feed is not built (make run builds it; or: cargo build --release --workspace)"
[ -f "$module" ] || die "$module is not built"
if [ -n "$replay" ] && [ ! -f "$replay" ]; then
  die "replay file '$replay' does not exist"
fi

# A port that answers is someone else's server: say so instead of failing to bind and then
# feeding (and finally shutting down) that server.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_taken "$port"; then
  die "port $port is taken (another Redis?). Pick a free one, e.g.: make run REDIS_PORT=6390"
fi

# redis.conf says `dir ./.run` (applied before --dir overrides it): both must exist.
mkdir -p .run "$run_dir"
pidfile="$PWD/$run_dir/redis.pid"
log="$PWD/$run_dir/redis.log"
rm -f "$pidfile"
redis-server redis.conf --port "$port" --dir "$PWD/$run_dir" --daemonize yes \
  --pidfile "$pidfile" --logfile "$log"

pid=""
cleanup() {
  # Only the server this script started, identified by its pid.
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 100); do
  [ -s "$pidfile" ] && pid=$(cat "$pidfile") && break
  sleep 0.1
done
up=""
if [ -n "$pid" ]; then
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    if redis-cli -p "$port" MODULE LIST 2>/dev/null | grep -qx candles; then up=1; break; fi
    sleep 0.1
  done
fi
if [ -z "$up" ]; then
  echo "make run: redis-server with the module did not start on port $port; last lines of $log:" >&2
  tail -n 5 "$log" >&2 || true
  exit 1
fi
echo "redis-server (pid $pid) with redis-candles on 127.0.0.1:$port (log: $log)"

args=(--redis "redis://127.0.0.1:$port")
if [ -n "$replay" ]; then
  args+=(--replay "$replay")
else
  symbols=${symbols:-BTCUSDT,ETHUSDT}
  intervals=${intervals:-1m,1h}
fi
[ -n "$symbols" ] && args+=(--symbols "$symbols")
[ -n "$intervals" ] && args+=(--intervals "$intervals")
args+=("${extra[@]}")

status=0
"$feed" "${args[@]}" || status=$?
if [ "$status" -ne 0 ]; then
  echo "make run: candles-feed exited with status $status; stopping redis-server (pid $pid)" >&2
  exit "$status"
fi
if [ -n "$replay" ]; then
  echo "replay stored; Redis keeps running on 127.0.0.1:$port until Ctrl-C"
  while true; do sleep 3600 & wait $!; done
fi
