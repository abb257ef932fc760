#!/usr/bin/env bash
# `make run`: redis-server with the module (redis.conf), then the feeder in the foreground.
# Ctrl-C stops the feeder and shuts Redis down (data is kept in ./.run).
set -euo pipefail
port=$1 symbols=$2 intervals=$3 replay=${4:-}
shift 4 || shift $#
extra=("$@")
cd "$(dirname "$0")/.."
mkdir -p .run
feed=target/release/candles-feed
if [ ! -x "$feed" ]; then
  echo "feeder not built: running redis-server in the foreground (Ctrl-C to stop)"
  exec redis-server redis.conf --port "$port"
fi
redis-server redis.conf --port "$port" --daemonize yes --pidfile "$PWD/.run/redis.pid" --logfile "$PWD/.run/redis.log"
cleanup() { redis-cli -p "$port" shutdown >/dev/null 2>&1 || true; }
trap cleanup EXIT
up=""
for _ in $(seq 100); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "redis-server did not start; last lines of .run/redis.log:" >&2
  tail -n 5 .run/redis.log >&2
  exit 1
fi
echo "redis-server with redis-candles on 127.0.0.1:$port (log: .run/redis.log)"
args=(--redis "redis://127.0.0.1:$port" --symbols "$symbols" --intervals "$intervals" "${extra[@]}")
if [ -n "$replay" ]; then
  args+=(--replay "$replay")
fi
"$feed" "${args[@]}" || true
if [ -n "$replay" ]; then
  echo "replay done; Redis keeps running on 127.0.0.1:$port until Ctrl-C"
  while true; do sleep 3600; done
fi
