#!/usr/bin/env bash
# Server instructions of TICKS.PUSH, deterministic (issue 17): redis-server under callgrind,
# counting inside call() only (what INFO commandstats times), the counters zeroed after 10
# streams were filled to their cap of 1000 by one-document pushes; then 10,000 ticks more,
# one document a command (`one`) or 100 (`batch`), through `redis-cli --pipe`.
#   scripts/ticks_push_callgrind.sh [MODULE.so] [one|batch] [PORT]
# Prints instructions per command and per tick. Needs valgrind, redis-server, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
so=$(realpath "${1:-target/release/libredis_candles.so}")
mode=${2:-one}
port=${3:-6499}
dir=$(mktemp -d)
gen() {
  python3 - "$@" <<'PY'
import sys
def resp(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
def doc(i, tok):
    ft = 1752810305 + i // 4
    lp = 12550 + (i * 7919 % 13) - 6
    s = ft % 86400
    return ('{"ft": %d, "token": "%s", "lp": %d.%02d, "pc": 0.%02d, "rt": "%02d:%02d:%02d", '
            '"ts": %d, "data_type": "optiontick"}') % (
        ft, tok, lp // 100, lp % 100, 30 + i % 10, s // 3600, s // 60 % 60, s % 60,
        ft * 1000 + (i % 4) * 250 + i % 50)
mode, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
streams = [str(26000 + k) for k in range(10)]
w = sys.stdout.buffer
pre = ["TICKS.PUSH", "book"]
if mode == "one":
    for i in range(start, start + n):
        tok = streams[i % 10]
        w.write(resp(pre + [tok, "TIMEFIELD", "ft", "JSON", doc(i // 10, tok)]))
else:
    for c in range(n):
        tok = streams[c % 10]
        base = start + (c // 10) * 100
        w.write(resp(pre + [tok, "TIMEFIELD", "ft", "JSON"] + [doc(base + j, tok) for j in range(100)]))
PY
}
gen one 0 10000 >"$dir/fill.resp"
if [ "$mode" = one ]; then gen one 10000 10000 >"$dir/run.resp"; cmds=10000; else gen batch 200000 100 >"$dir/run.resp"; cmds=100; fi
valgrind --tool=callgrind --collect-atstart=no --toggle-collect=call \
  --callgrind-out-file="$dir/cg.out" redis-server --port "$port" --save '' --appendonly no \
  --loadmodule "$so" >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 60); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 1; done
redis-cli -p "$port" --pipe <"$dir/fill.resp" >/dev/null
callgrind_control -z "$pid" >/dev/null
redis-cli -p "$port" --pipe <"$dir/run.resp" | tail -1
callgrind_control -d "$pid" >/dev/null
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait "$pid" || true
ir=$(awk '/^summary:/{print $2}' "$dir/cg.out.1")
echo "$mode: $ir instructions in call(), $((ir / cmds)) per command, $((ir / 10000)) per tick ($dir/cg.out.1)"
