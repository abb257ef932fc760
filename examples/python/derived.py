# examples/python/derived.py: one exchange interval, every higher one derived inside Redis,
# exactly (decimal sums), kept current by each write, the forming bar included. Recorded Binance
# data (tests/fixtures/binance) stands in for the network. REDIS_PORT=<port of a server>.
import json, os, pathlib
import redis

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "binance"
r = redis.Redis(port=int(os.environ.get("REDIS_PORT", 6379)))
m1, m5, h1 = "candle:{BTCUSDT}:1m", "candle:{BTCUSDT}:5m", "candle:{BTCUSDT}:1h"

body = (FIXTURES / "rest_klines_BTCUSDT_1m_limit1000.json").read_text()
r.execute_command("CANDLE.OFFICIAL_ADD", m1, "INTERVAL", "1m", "JSON", body)
r.execute_command("CANDLE.CREATE", m5, "INTERVAL", "5m", "SOURCE", m1)   # back-filled now
r.execute_command("CANDLE.CREATE", h1, "INTERVAL", "1h", "SOURCE", m5)   # a chain
r.execute_command("CANDLE.CREATE", "candle:{BTCUSDT}:1d@IST", "INTERVAL", "1d",
                  "SOURCE", m5, "ALIGN", "+05:30")                    # Binance's timeZone

def chart(key, n=2):
    return [(c["open_time"], c["close"], c["volume"], c["status"]) for c in
            json.loads(r.execute_command("CANDLE.RANGE_MERGED", key, "-", "+", "COUNT", n,
                                         "FORMAT", "JSON"))]

# Binance's own 5m candle for 2024-09-04 18:55 UTC, and the one derived from its minutes.
five = json.loads((FIXTURES / "rest_klines_BTCUSDT_5m_limit1000.json").read_text())
binance = next(k for k in five if k[0] == 1725476100000)
print("binance 5m:", binance[4], binance[5])
print("derived 5m:", chart(m5, 3)[0][1:])
print("1h:", chart(h1))

# The forming minute reaches every level in the same command (R8): each bucket turns live.
r.execute_command("CANDLE.LIVE_UPDATE", m1, 1725476820000, "57771.01", "57800", "57760",
                  "57790.5", "3.25")
print("1h after a live minute:", chart(h1, 1))
info = r.execute_command("CANDLE.INFO", h1)
print("1h source:", dict(zip(info[::2], info[1::2]))[b"source"].decode())
