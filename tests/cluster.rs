//! Redis Cluster: a real 3-master cluster on loopback, every node with the module loaded.
//!
//! * every CANDLE.* (and, once merged, TICKS.*) command form names its key: `COMMAND GETKEYS`
//!   returns exactly the key, and a node that does not own the key's slot answers
//!   `MOVED <slot> <owner>` (Redis computes that from the command's key spec);
//! * 30 symbols × {1m, 1h} with real Binance rows, written and read through redis-rs'
//!   cluster client, land in every master's slot range and read back exactly;
//! * the `candle:{SYMBOL}:<interval>` hash-tag convention puts all intervals of a symbol
//!   in one slot, so a 5m series derived from each symbol's 1m works on every master (and a
//!   source in another slot is refused).
//!
//! The cluster itself is `candles_testkit::cluster` (the feeder's and candles-web's tests use
//! it too).

use candles_testkit::cluster::Cluster;
use candles_testkit::fixtures;
use candles_testkit::fixtures::module_decimal as strip;
use candles_testkit::server::*;
use redis::{Connection, Value};
use serde_json::Value as Json;
use std::time::Instant;

const REST_1M: &str = "rest_klines_BTCUSDT_1m_limit1000.json";
const WS_1M: &str = "ws_kline_1m_combined.jsonl";

const SYMBOLS: [&str; 30] = [
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "DOGEUSDT",
    "DOTUSDT",
    "TRXUSDT",
    "LINKUSDT",
    "MATICUSDT",
    "LTCUSDT",
    "BCHUSDT",
    "AVAXUSDT",
    "XLMUSDT",
    "ATOMUSDT",
    "UNIUSDT",
    "ETCUSDT",
    "FILUSDT",
    "APTUSDT",
    "NEARUSDT",
    "ARBUSDT",
    "OPUSDT",
    "ICPUSDT",
    "VETUSDT",
    "AAVEUSDT",
    "ALGOUSDT",
    "SANDUSDT",
    "EOSUSDT",
    "THETAUSDT",
];

fn keyslot(c: &mut Connection, key: &str) -> i64 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(c)
        .unwrap()
}

fn is_registered(c: &mut Connection, name: &str) -> bool {
    let v: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg(name)
        .query(c)
        .unwrap();
    v.first().is_some_and(|e| !matches!(e, Value::Nil))
}

fn registered_commands(c: &mut Connection, pattern: &str) -> Vec<String> {
    let v: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("PATTERN")
        .arg(pattern)
        .query(c)
        .unwrap();
    v.into_iter().map(|s| s.to_ascii_uppercase()).collect()
}

fn rest_rows() -> Vec<Json> {
    serde_json::from_slice(&fixtures::bytes(REST_1M)).unwrap()
}

fn s(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every command form of the module, for `key`, as argument words.
fn command_forms(key: &str, rows: &[Json], ws_frame: &str, ticks: bool) -> Vec<Vec<String>> {
    let r0 = &rows[0];
    let six = |r: &Json| (0..6).map(|i| s(&r[i])).collect::<Vec<_>>();
    let one_row = serde_json::to_string(&rows[..3]).unwrap();
    let w = |words: &[&str]| words.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let with = |head: &[&str], tail: Vec<String>| {
        let mut v = w(head);
        v.extend(tail);
        v
    };
    let t0 = s(&r0[0]);
    let mut forms = vec![
        w(&["CANDLE.CREATE", key, "INTERVAL", "1m"]),
        w(&[
            "CANDLE.CREATE",
            key,
            "INTERVAL",
            "1h",
            "RETENTION",
            "100",
            "LIVE_TTL",
            "0",
            "LIVE_MAX",
            "5",
            "DUPLICATE_POLICY",
            "BLOCK",
        ]),
        with(&["CANDLE.OFFICIAL_ADD", key], six(r0)),
        with(
            &["CANDLE.OFFICIAL_ADD", key, "INTERVAL", "1m"],
            [six(r0), six(&rows[1])].concat(),
        ),
        w(&["CANDLE.OFFICIAL_ADD", key, "JSON", &one_row]),
        w(&[
            "CANDLE.OFFICIAL_ADD",
            key,
            "INTERVAL",
            "1m",
            "JSON",
            ws_frame,
        ]),
        with(&["CANDLE.LIVE_UPDATE", key], six(r0)),
        w(&[
            "CANDLE.LIVE_UPDATE",
            key,
            "INTERVAL",
            "1m",
            "JSON",
            ws_frame,
        ]),
        w(&["CANDLE.LIVE_TICK", key, &t0, "56714.5"]),
        w(&["CANDLE.SEAL", key, &t0]),
        w(&[
            "CANDLE.CREATE",
            key,
            "INTERVAL",
            "1d",
            "SOURCE",
            &format!("{key}:source"),
            "TIMEZONE",
            "Europe/Berlin",
        ]),
        w(&[
            "CANDLE.LIVE_TICK",
            key,
            "INTERVAL",
            "1m",
            &t0,
            "56714.5",
            "0.01",
        ]),
        w(&["CANDLE.RANGE_MERGED", key, "-", "+"]),
        w(&[
            "CANDLE.RANGE_MERGED",
            key,
            &t0,
            "+",
            "COUNT",
            "5",
            "FULL",
            "FORMAT",
            "JSON",
        ]),
        w(&["CANDLE.LIVE", key]),
        w(&["CANDLE.LIVE", key, "FULL", "FORMAT", "JSON"]),
        w(&["CANDLE.GAPS", key, &t0, &t0]),
        w(&["CANDLE.INFO", key]),
        w(&["CANDLE.APPLY", key, "E\u{1}\u{0}\u{0}\u{0}\u{0}"]),
    ];
    if ticks {
        forms.extend([
            w(&[
                "TICKS.PUSH",
                key,
                "btcusdt@trade",
                &t0,
                "p",
                "56714.5",
                "q",
                "0.01",
            ]),
            w(&[
                "TICKS.PUSH",
                key,
                "btcusdt@trade",
                "MAXLEN",
                "10",
                &t0,
                "p",
                "56714.5",
            ]),
            w(&[
                "TICKS.PUSH",
                key,
                "btcusdt@trade",
                "TIMEFIELD",
                "T",
                "JSON",
                r#"{"T":1,"p":"1"}"#,
                r#"{"T":2,"p":"2"}"#,
            ]),
            w(&["TICKS.LATEST", key, "btcusdt@trade"]),
            w(&[
                "TICKS.LATEST",
                key,
                "btcusdt@trade",
                "COUNT",
                "5",
                "FORMAT",
                "JSON",
            ]),
            w(&["TICKS.RANGE", key, "btcusdt@trade", "-", "+", "COUNT", "5"]),
            w(&["TICKS.MERGED", key]),
            w(&[
                "TICKS.MERGED",
                key,
                "PREFIX",
                "btc",
                "COUNT",
                "5",
                "FORMAT",
                "JSON",
            ]),
            w(&["TICKS.STREAMS", key, "PREFIX", "btc"]),
            w(&["TICKS.INFO", key]),
            w(&["TICKS.APPLY", key, "x"]),
        ]);
    }
    forms
}

fn cmd_of(words: &[String]) -> redis::Cmd {
    let mut c = redis::cmd(&words[0]);
    for a in &words[1..] {
        c.arg(a.as_bytes());
    }
    c
}

/// Hourly candles aggregated from the 1m rows (`t o h l c v` words), oldest first.
fn hourly(rows: &[Json]) -> Vec<[String; 6]> {
    use candles_core::Dec;
    let mut out: Vec<(i64, Dec, Dec, Dec, Dec, Dec)> = Vec::new();
    for r in rows {
        let t = r[0].as_i64().unwrap();
        let h = t - t.rem_euclid(3_600_000);
        let d = |i: usize| Dec::parse(r[i].as_str().unwrap()).unwrap();
        match out.last_mut() {
            Some(c) if c.0 == h => {
                c.2 = c.2.max(d(2));
                c.3 = c.3.min(d(3));
                c.4 = d(4);
                c.5 = c.5.checked_add(d(5)).unwrap();
            }
            _ => out.push((h, d(1), d(2), d(3), d(4), d(5))),
        }
    }
    out.into_iter()
        .map(|(t, o, h, l, c, v)| {
            [
                t.to_string(),
                o.to_string(),
                h.to_string(),
                l.to_string(),
                c.to_string(),
                v.to_string(),
            ]
        })
        .collect()
}

#[test]
fn cluster_routes_every_command_by_its_key() {
    let started = Instant::now();
    let cluster = Cluster::start();
    println!("cluster up in {:?}", started.elapsed());
    let mut direct: Vec<Connection> = cluster.nodes.iter().map(Server::conn).collect();
    let mut cc = cluster.client();
    let rows = rest_rows();
    let ws_frame = fixtures::lines(WS_1M).into_iter().next().unwrap();
    let ticks = is_registered(&mut direct[0], "TICKS.PUSH");

    // The hash-tag convention: every interval of a symbol in the slot of the symbol.
    let a = keyslot(&mut direct[0], "candle:{BTCUSDT}:1m");
    assert_eq!(a, keyslot(&mut direct[0], "candle:{BTCUSDT}:1h"));
    assert_eq!(a, keyslot(&mut direct[0], "BTCUSDT"));
    assert_ne!(a, keyslot(&mut direct[0], "candle:{ETHUSDT}:1m"));

    // COMMAND DOCS from the module's #[command] metadata.
    let docs: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg("CANDLE.RANGE_MERGED")
        .query(&mut direct[0])
        .unwrap();
    let summary =
        find_field(&docs, "summary").expect("COMMAND DOCS CANDLE.RANGE_MERGED has a summary");
    assert!(summary.len() > 10, "summary {summary:?}");

    // Every registered command of the module is among the forms checked below.
    let probe = command_forms("k", &rows, &ws_frame, ticks);
    let mut registered = registered_commands(&mut direct[0], "candle.*");
    if ticks {
        registered.extend(registered_commands(&mut direct[0], "ticks.*"));
    } else {
        println!("note: TICKS.* is not registered (COMMAND INFO TICKS.PUSH is empty): tick-book checks skipped");
    }
    assert!(registered.len() >= 9, "{registered:?}");
    for name in &registered {
        assert!(
            probe.iter().any(|f| f[0].eq_ignore_ascii_case(name)),
            "{name} has no form in command_forms()"
        );
    }

    // GETKEYS and MOVED for every form, with keys of every master.
    let mut owners_seen = [false; 3];
    for sym in SYMBOLS {
        for iv in ["1m", "1h"] {
            let key = format!("candle:{{{sym}}}:{iv}");
            let slot = keyslot(&mut direct[0], &key);
            let owner = cluster.owner(slot as u16);
            // Every form for BTCUSDT and for the first key of each master; enough.
            let first_of_owner = !owners_seen[owner];
            owners_seen[owner] = true;
            if sym != "BTCUSDT" && !first_of_owner {
                continue;
            }
            let other = (owner + 1) % 3;
            for form in command_forms(&key, &rows, &ws_frame, ticks) {
                let mut gk = redis::cmd("COMMAND");
                gk.arg("GETKEYS");
                for a in &form {
                    gk.arg(a.as_bytes());
                }
                let keys: Vec<String> = gk
                    .query(&mut direct[0])
                    .unwrap_or_else(|e| panic!("GETKEYS {form:?}: {e}"));
                assert_eq!(keys, vec![key.clone()], "COMMAND GETKEYS {:?}", &form[..2]);
                let e = cmd_of(&form)
                    .query::<Value>(&mut direct[other])
                    .expect_err("non-owner must redirect");
                assert_eq!(
                    e.kind(),
                    redis::ErrorKind::Moved,
                    "{:?} on a non-owner: {e}",
                    &form[..2]
                );
                let (addr, s) = e.redirect_node().unwrap();
                assert_eq!(
                    (addr.to_string(), i64::from(s)),
                    (format!("127.0.0.1:{}", cluster.nodes[owner].port), slot)
                );
            }
        }
    }
    assert_eq!(
        owners_seen, [true; 3],
        "the keys cover every master's slot range"
    );

    // Writes through the cluster client: real rows, official + live, 1m and 1h.
    let body = fixtures::bytes(REST_1M);
    let last = rows.last().unwrap();
    let last_t = last[0].as_i64().unwrap();
    let hours = hourly(&rows);
    let t_write = Instant::now();
    for sym in SYMBOLS {
        let k1 = format!("candle:{{{sym}}}:1m");
        let kh = format!("candle:{{{sym}}}:1h");
        let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
            .arg(&k1)
            .arg("INTERVAL")
            .arg("1m")
            .arg("JSON")
            .arg(&body[..])
            .query(&mut cc)
            .unwrap();
        assert_eq!(n, 1000, "{k1}");
        let live_t = (last_t + 60_000).to_string();
        let n: i64 = redis::cmd("CANDLE.LIVE_UPDATE")
            .arg(&k1)
            .arg(&live_t)
            .arg(s(&last[4]))
            .arg(s(&last[4]))
            .arg(s(&last[4]))
            .arg(s(&last[4]))
            .arg("0")
            .query(&mut cc)
            .unwrap();
        assert_eq!(n, 1);
        let n: i64 = redis::cmd("CANDLE.LIVE_TICK")
            .arg(&k1)
            .arg(last_t + 60_500)
            .arg("99999.5")
            .arg("0.25")
            .query(&mut cc)
            .unwrap();
        assert_eq!(n, 1);
        let ok: String = redis::cmd("CANDLE.CREATE")
            .arg(&kh)
            .arg("INTERVAL")
            .arg("1h")
            .arg("RETENTION")
            .arg(10)
            .query(&mut cc)
            .unwrap();
        assert_eq!(ok, "OK");
        let mut add = redis::cmd("CANDLE.OFFICIAL_ADD");
        add.arg(&kh);
        for h in &hours {
            add.arg(&h[..]);
        }
        let n: i64 = add.query(&mut cc).unwrap();
        // RETENTION 10: the reply counts the candles that are stored after the write.
        assert_eq!(n as usize, hours.len().min(10));
    }
    let write_time = t_write.elapsed();

    // Reads through the cluster client.
    let t_read = Instant::now();
    for sym in SYMBOLS {
        let k1 = format!("candle:{{{sym}}}:1m");
        let kh = format!("candle:{{{sym}}}:1h");
        let json: String = redis::cmd("CANDLE.RANGE_MERGED")
            .arg(&k1)
            .arg("-")
            .arg("+")
            .arg("FORMAT")
            .arg("JSON")
            .query(&mut cc)
            .unwrap();
        let got: Vec<Json> = serde_json::from_str(&json).unwrap();
        assert_eq!(got.len(), 1001, "{k1}");
        for (g, r) in got.iter().zip(&rows) {
            assert_eq!(g["open_time"], r[0]);
            assert_eq!(g["close"].as_str().unwrap(), strip(r[4].as_str().unwrap()));
            assert_eq!(g["status"], "official");
        }
        let live = &got[1000];
        assert_eq!(
            (
                live["open_time"].as_i64(),
                live["high"].as_str(),
                live["status"].as_str()
            ),
            (Some(last_t + 60_000), Some("99999.5"), Some("live"))
        );
        let live: Vec<Value> = redis::cmd("CANDLE.LIVE").arg(&k1).query(&mut cc).unwrap();
        assert_eq!(live.len(), 1);
        let gaps: Vec<Vec<i64>> = redis::cmd("CANDLE.GAPS")
            .arg(&k1)
            .arg(rows[0][0].as_i64().unwrap())
            .arg(last_t)
            .query(&mut cc)
            .unwrap();
        assert!(gaps.is_empty(), "{k1} gaps {gaps:?}");
        let info: Vec<Value> = redis::cmd("CANDLE.INFO").arg(&kh).query(&mut cc).unwrap();
        assert_eq!(
            info_int(&info, "official_count"),
            10.min(hours.len() as i64)
        );
        assert_eq!(info_int(&info, "retention"), 10);
        let newest: Vec<Vec<Value>> = redis::cmd("CANDLE.RANGE_MERGED")
            .arg(&kh)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query(&mut cc)
            .unwrap();
        let want = hours.last().unwrap();
        assert_eq!(
            redis::from_redis_value::<i64>(&newest[0][0])
                .unwrap()
                .to_string(),
            want[0]
        );
        assert_eq!(
            redis::from_redis_value::<String>(&newest[0][5]).unwrap(),
            want[5]
        );
    }
    let read_time = t_read.elapsed();

    // Derived series on every master: a 5m series derived from each symbol's 1m (one hash
    // tag, one slot), kept current by writes through the cluster client.
    for sym in SYMBOLS {
        let k1 = format!("candle:{{{sym}}}:1m");
        let k5 = format!("candle:{{{sym}}}:5m");
        let ok: String = redis::cmd("CANDLE.CREATE")
            .arg(&k5)
            .arg("INTERVAL")
            .arg("5m")
            .arg("SOURCE")
            .arg(&k1)
            .query(&mut cc)
            .unwrap();
        assert_eq!(ok, "OK");
        let info: Vec<Value> = redis::cmd("CANDLE.INFO").arg(&k5).query(&mut cc).unwrap();
        assert_eq!(info_int(&info, "official_count"), 199, "{k5}");
        let n: i64 = redis::cmd("CANDLE.LIVE_TICK")
            .arg(&k1)
            .arg(last_t + 60_700)
            .arg("100000.5")
            .query(&mut cc)
            .unwrap();
        assert_eq!(n, 1);
        let newest: Vec<Vec<Value>> = redis::cmd("CANDLE.RANGE_MERGED")
            .arg(&k5)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query(&mut cc)
            .unwrap();
        assert_eq!(
            redis::from_redis_value::<String>(&newest[0][2]).unwrap(),
            "100000.5"
        );
        let e = redis::cmd("CANDLE.CREATE")
            .arg("candle:{OTHER}:5m")
            .arg("INTERVAL")
            .arg("5m")
            .arg("SOURCE")
            .arg(&k1)
            .query::<Value>(&mut cc)
            .unwrap_err();
        assert!(e.to_string().contains("slots"), "{e}");
    }

    // Every key lives on the node that owns its slot; every node holds some.
    let mut total = 0;
    for (i, c) in direct.iter_mut().enumerate() {
        let n: i64 = redis::cmd("DBSIZE").query(c).unwrap();
        assert!(n > 0, "node {i} holds no series");
        total += n;
    }
    assert_eq!(total, 3 * SYMBOLS.len() as i64);
    for sym in SYMBOLS {
        let key = format!("candle:{{{sym}}}:1m");
        let slot = keyslot(&mut direct[0], &key);
        let owner = cluster.owner(slot as u16);
        let info: Vec<Value> = redis::cmd("CANDLE.INFO")
            .arg(&key)
            .query(&mut direct[owner])
            .unwrap();
        assert_eq!(info_int(&info, "official_count"), 1000);
    }

    if ticks {
        let key = "ticks:{BTCUSDT}:2024-09-04";
        for (i, frame) in fixtures::lines("ws_aggTrade_combined.jsonl")
            .iter()
            .take(20)
            .enumerate()
        {
            let doc: Json = serde_json::from_str(frame).unwrap();
            let data = serde_json::to_string(&doc["data"]).unwrap();
            let n: i64 = redis::cmd("TICKS.PUSH")
                .arg(key)
                .arg("aggTrade")
                .arg("TIMEFIELD")
                .arg("T")
                .arg("JSON")
                .arg(&data)
                .query(&mut cc)
                .unwrap();
            assert_eq!(n, i as i64 + 1);
        }
        let latest: String = redis::cmd("TICKS.LATEST")
            .arg(key)
            .arg("aggTrade")
            .arg("COUNT")
            .arg(1)
            .arg("FORMAT")
            .arg("JSON")
            .query(&mut cc)
            .unwrap();
        let latest: Vec<Json> = serde_json::from_str(&latest).unwrap();
        assert_eq!(latest.len(), 1);
        assert!(latest[0].get("T").is_some(), "{latest:?}");
        let slot = keyslot(&mut direct[0], key);
        let owner = cluster.owner(slot as u16);
        let n: Vec<Value> = redis::cmd("TICKS.LATEST")
            .arg(key)
            .arg("aggTrade")
            .arg("COUNT")
            .arg(100)
            .query(&mut direct[owner])
            .unwrap();
        assert_eq!(n.len(), 20);
    }

    println!(
        "cluster test: {} series written in {write_time:?}, read in {read_time:?}, total {:?}",
        2 * SYMBOLS.len(),
        started.elapsed()
    );
}

fn info_int(info: &[Value], field: &str) -> i64 {
    let i = info
        .iter()
        .position(|v| redis::from_redis_value::<String>(v).is_ok_and(|s| s == field))
        .unwrap_or_else(|| panic!("no {field} in {info:?}"));
    redis::from_redis_value(&info[i + 1]).unwrap()
}

/// A field of a (nested) RESP2 field/value reply, e.g. `summary` in COMMAND DOCS.
fn find_field(v: &Value, name: &str) -> Option<String> {
    match v {
        Value::Array(items) => {
            for pair in items.windows(2) {
                if redis::from_redis_value::<String>(&pair[0]).is_ok_and(|s| s == name) {
                    if let Ok(s) = redis::from_redis_value::<String>(&pair[1]) {
                        return Some(s);
                    }
                }
            }
            items.iter().find_map(|i| find_field(i, name))
        }
        Value::Map(m) => m.iter().find_map(|(k, val)| {
            if redis::from_redis_value::<String>(k).is_ok_and(|s| s == name) {
                redis::from_redis_value::<String>(val).ok()
            } else {
                find_field(val, name)
            }
        }),
        _ => None,
    }
}
