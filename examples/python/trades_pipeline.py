# examples/python/trades_pipeline.py: each aggTrade frame feeds the session's tape and the live
# candle, two commands per trade in one pipeline. Recorded Binance frames (tests/fixtures/binance)
# stand in for the stream. Run from the repository: REDIS_PORT=<port of a server with the module>.
import json, os, pathlib, re, time
import redis

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "binance"
r = redis.Redis(port=int(os.environ.get("REDIS_PORT", 6379)))
DATA = re.compile(r'"data"\s*:\s*')
decoder = json.JSONDecoder()

def data_text(line: str) -> str:
    """The frame's "data" object exactly as received (no re-encoding of its numbers)."""
    start = DATA.search(line).end()
    _, end = decoder.raw_decode(line, start)
    return line[start:end]

# Live: wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade
pipe = r.pipeline(transaction=False)
sent = {}                                # (session, stream) -> the newest trade's text
with open(FIXTURES / "ws_aggTrade_combined.jsonl") as frames:
    for line in frames:                  # raw combined-stream frames, one per line
        line = line.strip()              # a line read from a file keeps its newline
        frame = json.loads(line)
        d = frame["data"]
        session_key = time.strftime("ticks:%Y-%m-%d", time.gmtime(d["T"] / 1000))
        sent[session_key, frame["stream"]] = text = data_text(line)
        pipe.execute_command("TICKS.PUSH", session_key, frame["stream"], "TIMEFIELD", "T",
                             "JSON", text)
        pipe.execute_command("CANDLE.LIVE_TICK", f"candle:{{{d['s']}}}:1m", "INTERVAL", "1m",
                             d["T"], d["p"], d["q"])
replies = pipe.execute()
print("commands:", len(replies), "live candles changed:", sum(replies[1::2]))

tape = r.execute_command("TICKS.LATEST", "ticks:2021-04-04", "btcusdt@aggTrade",
                         "COUNT", 1, "FORMAT", "JSON")
print("last BTCUSDT trade of 2021-04-04:", tape.decode())
for candle in r.execute_command("CANDLE.LIVE", "candle:{BTCUSDT}:1m"):
    print("live BTCUSDT candle:", [v if isinstance(v, int) else v.decode() for v in candle])
assert tape.decode() == "[" + sent["ticks:2021-04-04", "btcusdt@aggTrade"] + "]"
