# examples/python/candles.py: bootstrap a chart from REST klines, apply WebSocket kline frames,
# read the chart and what is missing. Recorded Binance data (tests/fixtures/binance) stands in
# for the network. Run from the repository: REDIS_PORT=<port of a server with the module>.
import json, os, pathlib, time
import redis

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "binance"
r = redis.Redis(port=int(os.environ.get("REDIS_PORT", 6379)))
key = "candle:{BTCUSDT}:1m"

# Live: requests.get("https://api.binance.com/api/v3/klines",
#                    params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1000}).text
body = (FIXTURES / "rest_klines_BTCUSDT_1m_limit1000.json").read_text()
added = r.execute_command("CANDLE.OFFICIAL_ADD", key, "INTERVAL", "1m", "JSON", body)
# Live: 999, the forming last row is kept live (R4). This recording closed long ago: 1000.
print("official candles added:", added)

def on_kline_frame(frame: str):          # a raw combined-stream WebSocket frame
    data = json.loads(frame)["data"]
    cmd = "CANDLE.OFFICIAL_ADD" if data["k"]["x"] else "CANDLE.LIVE_UPDATE"
    return cmd, r.execute_command(cmd, f"candle:{{{data['s']}}}:1m", "INTERVAL", "1m",
                                  "JSON", frame)

# Live: wss://stream.binance.com:9443/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m
# Recorded in 2021: BTCUSDT's live frames are older than its newest official, so ignored (R2).
replies = {}
with open(FIXTURES / "ws_kline_1m_combined.jsonl") as frames:
    for line in frames:
        cmd, reply = on_kline_frame(line.strip())   # strip: a line keeps its newline
        replies[cmd, reply] = replies.get((cmd, reply), 0) + 1
print("kline frames:", sorted(replies.items()))
eth = r.execute_command("CANDLE.RANGE_MERGED", "candle:{ETHUSDT}:1m", "-", "+")
print("ETHUSDT:", [(c[0], c[4].decode(), c[6].decode()) for c in eth])

chart = json.loads(r.execute_command("CANDLE.RANGE_MERGED", key, "-", "+",
                                     "COUNT", 720, "FORMAT", "JSON"))
print("chart:", len(chart), "candles, newest", chart[-1]["open_time"], chart[-1]["status"])
now = int(time.time()) // 60 * 60_000
gaps = r.execute_command("CANDLE.GAPS", key, chart[0]["open_time"], now)
for start, end in gaps:
    print("missing official candles from", start, "to", end)
assert len(chart) == 720 and gaps == [[chart[-1]["open_time"] + 60_000, now]]
