#!/usr/bin/env bash
# `make run`: redis-server with the module (redis.conf), then the feeder in the foreground.
# Ctrl-C stops the feeder and shuts Redis down (data is kept in ./.run).
set -euo pipefail
port=$1 symbols=$2 intervals=$3 replay=${4:-}
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
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "redis-server with redis-candles on 127.0.0.1:$port (log: .run/redis.log)"
args=(--redis "redis://127.0.0.1:$port" --symbols "$symbols" --intervals "$intervals")
if [ -n "$replay" ]; then
  args+=(--replay "$replay")
fi
"$feed" "${args[@]}" || true
if [ -n "$replay" ]; then
  echo "replay done; Redis keeps running on 127.0.0.1:$port until Ctrl-C"
  while true; do sleep 3600; done
fi
