# examples/python/ticks.py: a tick book in the original design's shape, JSON and field/value
# ticks, read back exactly. Run from the repository: REDIS_PORT=<port of a server with the module>.
import json, os
from decimal import Decimal
import redis

r = redis.Redis(port=int(os.environ.get("REDIS_PORT", 6379)))
book = "ticks:2025-07-18"

tick = {"ft": 1752810305, "token": "26001", "lp": 125.5, "pc": 0.35,
        "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}
r.execute_command("TICKS.PUSH", book, "optiontick:26001", "TIMEFIELD", "ft",
                  "JSON", json.dumps(tick))

# field/value form: values are strings
r.execute_command("TICKS.PUSH", book, "indextick", 1752810306, "lp", "24950.10")

# JSON replies: parse numbers as Decimal to keep their exact text
latest = json.loads(r.execute_command("TICKS.LATEST", book, "optiontick:26001",
                                      "COUNT", 10, "FORMAT", "JSON"),
                    parse_float=Decimal)
print("latest:", latest[0])
assert latest[0] == {**tick, "lp": Decimal("125.5"), "pc": Decimal("0.35")}

# RESP replies: [time, [field, value, ...]]
for time, fields in r.execute_command("TICKS.RANGE", book, "indextick", "-", "+"):
    print("indextick:", time, dict(zip(fields[::2], fields[1::2])))

# the tape across all option streams, newest first, each tick naming its stream
for stream, time, fields in r.execute_command("TICKS.MERGED", book,
                                              "PREFIX", "optiontick:", "COUNT", 100):
    print("merged:", stream.decode(), time, fields[fields.index(b"lp") + 1].decode())
