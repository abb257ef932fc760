#!/usr/bin/env bash
# `make run`: a redis-server of our own with the module (redis.conf), candles-web (the live
# chart, http://127.0.0.1:$WEB_PORT/, default 8080) beside it, then the feeder in the
# foreground. Ctrl-C stops the feeder, candles-web and the redis-server this script started
# (data is kept in the run directory), and nothing else: a server that was already on the port
# is never touched.
#
#   [WEB_PORT=8080] scripts/run.sh PORT SYMBOLS INTERVALS REPLAY [feeder options...]
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
web=target/release/candles-web
module=target/release/libredis_candles.so
web_port=${WEB_PORT:-8080}

die() { echo "make run: $*" >&2; exit 1; }

[ -x "$feed" ] || die "$feed is not built (make run builds it; or: cargo build --release --workspace)"
[ -f "$module" ] || die "$module is not built"
[ -x "$web" ] || die "$web is not built (make run builds it; or: cargo build --release --workspace)"
if [ -n "$replay" ] && [ ! -f "$replay" ]; then
  die "replay file '$replay' does not exist"
fi

# A port that answers is someone else's server: say so instead of failing to bind and then
# feeding (and finally shutting down) that server.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_taken "$port"; then
  die "port $port is taken (another Redis?). Pick a free one, e.g.: make run REDIS_PORT=6390"
fi
if port_taken "$web_port"; then
  die "port $web_port (candles-web) is taken. Pick a free one, e.g.: make run WEB_PORT=8090"
fi

# redis.conf says `dir ./.run` (applied before --dir overrides it): both must exist.
mkdir -p .run "$run_dir"
pidfile="$PWD/$run_dir/redis.pid"
log="$PWD/$run_dir/redis.log"
rm -f "$pidfile"
redis-server redis.conf --port "$port" --dir "$PWD/$run_dir" --daemonize yes \
  --pidfile "$pidfile" --logfile "$log"

pid=""
web_pid=""
cleanup() {
  # Only the processes this script started, identified by their pids.
  if [ -n "$web_pid" ] && kill -0 "$web_pid" 2>/dev/null; then
    kill -TERM "$web_pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$web_pid" 2>/dev/null || break; sleep 0.1; done
  fi
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

# The chart, read-only, on loopback.
web_log="$PWD/$run_dir/web.log"
"$web" --redis "redis://127.0.0.1:$port" --listen "127.0.0.1:$web_port" 2>"$web_log" &
web_pid=$!
web_up=""
for _ in $(seq 100); do
  kill -0 "$web_pid" 2>/dev/null || break
  if grep -q "candles-web listening" "$web_log" 2>/dev/null; then web_up=1; break; fi
  sleep 0.1
done
if [ -z "$web_up" ]; then
  echo "make run: candles-web did not start on 127.0.0.1:$web_port; last lines of $web_log:" >&2
  tail -n 5 "$web_log" >&2 || true
  exit 1
fi
echo "candles-web (pid $web_pid): open http://127.0.0.1:$web_port/ (log: $web_log)"

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
  echo "replay stored; Redis keeps running on 127.0.0.1:$port and the chart on http://127.0.0.1:$web_port/ until Ctrl-C"
  while true; do sleep 3600 & wait $!; done
fi
