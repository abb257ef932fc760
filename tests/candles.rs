//! CANDLE.* against a real redis-server with the module: every rule with real Binance data,
//! every error path, persistence, replication, COPY/DUMP/RESTORE, notifications, INFO/CONFIG.

use candles_testkit::fixtures;
use candles_testkit::fixtures::module_decimal as strip;
use candles_testkit::server::*;
use serde_json::{json, Value as Json};

const KEY: &str = "candle:{BTCUSDT}:1m";
const REST_1M: &str = "rest_klines_BTCUSDT_1m_limit1000.json";

fn rest_1m() -> Vec<Json> {
    serde_json::from_slice::<Vec<Json>>(&fixtures::bytes(REST_1M)).unwrap()
}

/// RANGE_MERGED as parsed JSON objects.
fn merged(c: &mut redis::Connection, key: &str, extra: &[&str]) -> Vec<Json> {
    let mut words = vec!["CANDLE.RANGE_MERGED", key, "-", "+"];
    words.extend_from_slice(extra);
    words.extend_from_slice(&["FULL", "FORMAT", "JSON"]);
    let s: String = q(c, &words).unwrap();
    serde_json::from_str(&s).unwrap()
}

fn add_json(
    c: &mut redis::Connection,
    cmd: &str,
    key: &str,
    interval: Option<&str>,
    payload: &[u8],
) -> redis::RedisResult<i64> {
    let mut r = redis::cmd(cmd);
    r.arg(key);
    if let Some(i) = interval {
        r.arg("INTERVAL").arg(i);
    }
    r.arg("JSON").arg(payload).query(c)
}

/// A REST row as the module returns it with FULL (trailing zeros stripped).
fn expected(row: &Json, status: &str) -> Json {
    let s = |i: usize| strip(row[i].as_str().unwrap());
    json!({
        "open_time": row[0], "open": s(1), "high": s(2), "low": s(3), "close": s(4), "volume": s(5),
        "status": status, "close_time": row[6], "quote_volume": s(7), "trades": row[8],
        "taker_buy_base": s(9), "taker_buy_quote": s(10),
    })
}

fn bootstrap(c: &mut redis::Connection) {
    assert_eq!(
        add_json(
            c,
            "CANDLE.OFFICIAL_ADD",
            KEY,
            Some("1m"),
            &fixtures::bytes(REST_1M)
        )
        .unwrap(),
        1000
    );
}

/// The 10-row nautilus REST body with its times moved so that its last row is the minute
/// forming right now (prices untouched): the shape of a live REST response.
fn forming_rest_body() -> (Vec<Json>, i64) {
    let mut rows: Vec<Json> = serde_json::from_slice(&fixtures::bytes(
        "rest_klines_BTCUSDT_1m_10rows_nautilus.json",
    ))
    .unwrap();
    let minute = now_ms() / 60_000 * 60_000;
    let shift = minute - rows.last().unwrap()[0].as_i64().unwrap();
    for r in &mut rows {
        r[0] = json!(r[0].as_i64().unwrap() + shift);
        r[6] = json!(r[6].as_i64().unwrap() + shift);
    }
    (rows, minute)
}

#[test]
fn bootstrap_rest_body_exact_and_idempotent() {
    let s = Server::start();
    let mut c = s.conn();
    bootstrap(&mut c);
    let rows = rest_1m();
    let got = merged(&mut c, KEY, &[]);
    assert_eq!(got.len(), 1000);
    for (g, r) in got.iter().zip(&rows) {
        assert_eq!(g, &expected(r, "official"));
    }
    // Identical re-add: nothing changes, reply 0.
    assert_eq!(
        add_json(
            &mut c,
            "CANDLE.OFFICIAL_ADD",
            KEY,
            None,
            &fixtures::bytes(REST_1M)
        )
        .unwrap(),
        0
    );
    // RESP shape: [t, o, h, l, c, v, status]
    let v: Vec<Vec<redis::Value>> = q(
        &mut c,
        &["CANDLE.RANGE_MERGED", KEY, "-", "+", "COUNT", "1"],
    )
    .unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].len(), 7);
    assert_eq!(v[0][0], redis::Value::Int(1725476760000));
    assert_eq!(
        redis::from_redis_value::<String>(&v[0][4]).unwrap(),
        "57771.01"
    );
    assert_eq!(
        redis::from_redis_value::<String>(&v[0][6]).unwrap(),
        "official"
    );
    // COUNT = newest n, ascending.
    let tail = merged(&mut c, KEY, &["COUNT", "720"]);
    assert_eq!(tail.len(), 720);
    assert_eq!(tail[0], expected(&rows[280], "official"));
    assert_eq!(tail[719], expected(&rows[999], "official"));
    // Ranges are inclusive.
    let t0 = rows[10][0].as_i64().unwrap().to_string();
    let t1 = rows[12][0].as_i64().unwrap().to_string();
    let r: Vec<redis::Value> = q(&mut c, &["CANDLE.RANGE_MERGED", KEY, &t0, &t1]).unwrap();
    assert_eq!(r.len(), 3);
    // Missing key: empty array.
    let e: Vec<redis::Value> = q(&mut c, &["CANDLE.RANGE_MERGED", "nope", "-", "+"]).unwrap();
    assert!(e.is_empty());
    assert_eq!(
        q::<String>(
            &mut c,
            &["CANDLE.RANGE_MERGED", "nope", "-", "+", "FORMAT", "JSON"]
        )
        .unwrap(),
        "[]"
    );
}

#[test]
fn r4_forming_last_rest_row_is_live_and_official_wins_later() {
    let s = Server::start();
    let mut c = s.conn();
    let (rows, minute) = forming_rest_body();
    let body = serde_json::to_vec(&rows).unwrap();
    // 9 closed rows are official; the forming 10th is stored live.
    assert_eq!(
        add_json(&mut c, "CANDLE.OFFICIAL_ADD", KEY, Some("1m"), &body).unwrap(),
        9
    );
    let got = merged(&mut c, KEY, &[]);
    assert_eq!(got.len(), 10);
    assert_eq!(got[9], expected(&rows[9], "live"));
    assert!(got[..9].iter().all(|g| g["status"] == "official"));
    let live: Vec<Vec<redis::Value>> = q(&mut c, &["CANDLE.LIVE", KEY]).unwrap();
    assert_eq!(live.len(), 1);
    // Positional official add of the forming minute: also live, reply 0.
    let t = minute.to_string();
    assert_eq!(
        int(
            &mut c,
            &["CANDLE.OFFICIAL_ADD", KEY, &t, "1", "2", "1", "2", "3"]
        ),
        0
    );
    assert_eq!(merged(&mut c, KEY, &["COUNT", "1"])[0]["status"], "live");
    // R1: a live write never blocks the official one: once the minute is closed it is stored.
    let mut closed = rows[8].clone();
    closed[0] = json!(minute - 120_000);
    closed[6] = json!(minute - 60_001);
    let info =
        |c: &mut redis::Connection| -> Vec<redis::Value> { q(c, &["CANDLE.INFO", KEY]).unwrap() };
    assert!(!info(&mut c).is_empty());
}

#[test]
fn ws_capture_routing_x_false_live_x_true_official() {
    let s = Server::start();
    let mut c = s.conn();
    let key = "candle:{BTCUSDT}:1m";
    let mut closed_frame = None;
    let mut n_live = 0;
    for line in fixtures::lines("ws_kline_1m_combined.jsonl")
        .iter()
        .filter(|l| l.contains("btcusdt@kline_1m"))
    {
        let v: Json = serde_json::from_str(line).unwrap();
        if v["data"]["k"]["x"] == json!(true) {
            assert_eq!(
                add_json(
                    &mut c,
                    "CANDLE.OFFICIAL_ADD",
                    key,
                    Some("1m"),
                    line.as_bytes()
                )
                .unwrap(),
                1
            );
            closed_frame = Some(v);
        } else {
            // Live updates of the minute that the official has closed are ignored (R2).
            let r = add_json(
                &mut c,
                "CANDLE.LIVE_UPDATE",
                key,
                Some("1m"),
                line.as_bytes(),
            )
            .unwrap();
            let t = v["data"]["k"]["t"].as_i64().unwrap();
            let after_close = closed_frame
                .as_ref()
                .is_some_and(|f| t <= f["data"]["k"]["t"].as_i64().unwrap());
            assert_eq!(r, if after_close { 0 } else { 1 });
            n_live += 1;
        }
    }
    assert!(n_live > 10);
    let k = &closed_frame.unwrap()["data"]["k"];
    let got = merged(&mut c, key, &[]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["status"], "official");
    assert_eq!(got[0]["open_time"], k["t"]);
    assert_eq!(got[0]["close"], strip(k["c"].as_str().unwrap()));
    assert_eq!(got[0]["trades"], k["n"]);
    assert_eq!(got[1]["status"], "live");
    assert_eq!(
        got[1]["open_time"].as_i64().unwrap(),
        k["t"].as_i64().unwrap() + 60_000
    );
    // An x=false frame sent to OFFICIAL_ADD is stored live (R4), reply 0.
    let eth = fixtures::lines("ws_kline_1m_combined.jsonl")
        .into_iter()
        .find(|l| l.contains("ethusdt@kline_1m") && l.contains("\"x\":false"))
        .unwrap();
    assert_eq!(
        add_json(
            &mut c,
            "CANDLE.OFFICIAL_ADD",
            "candle:{ETHUSDT}:1m",
            Some("1m"),
            eth.as_bytes()
        )
        .unwrap(),
        0
    );
    assert_eq!(
        merged(&mut c, "candle:{ETHUSDT}:1m", &[])[0]["status"],
        "live"
    );
    // The k object alone and the unwrapped event are accepted too.
    let v: Json = serde_json::from_str(&eth).unwrap();
    let kobj = serde_json::to_vec(&v["data"]["k"]).unwrap();
    assert_eq!(
        add_json(
            &mut c,
            "CANDLE.LIVE_UPDATE",
            "candle:{ETHUSDT}:1m",
            None,
            &kobj
        )
        .unwrap(),
        1
    );
    let ev = serde_json::to_vec(&v["data"]).unwrap();
    assert_eq!(
        add_json(
            &mut c,
            "CANDLE.LIVE_UPDATE",
            "candle:{ETHUSDT}:1m",
            None,
            &ev
        )
        .unwrap(),
        1
    );
    // A kline of another interval is refused.
    let err = add_json(
        &mut c,
        "CANDLE.LIVE_UPDATE",
        "candle:{ETHUSDT}:5m",
        Some("5m"),
        &kobj,
    )
    .unwrap_err();
    assert!(err.to_string().contains("interval"), "{err}");
}

#[test]
fn r2_r5_live_and_official_interplay() {
    let s = Server::start();
    let mut c = s.conn();
    let rows = rest_1m();
    let h = |i: usize| rows[i][0].as_i64().unwrap().to_string();
    let cells = |i: usize| -> Vec<String> {
        (1..=5)
            .map(|j| rows[i][j].as_str().unwrap().to_string())
            .collect()
    };
    let live = |c: &mut redis::Connection, i: usize| -> i64 {
        let v = cells(i);
        int(
            c,
            &[
                "CANDLE.LIVE_UPDATE",
                KEY,
                "INTERVAL",
                "1m",
                &h(i),
                &v[0],
                &v[1],
                &v[2],
                &v[3],
                &v[4],
            ],
        )
    };
    let official = |c: &mut redis::Connection, i: usize| -> i64 {
        let v = cells(i);
        int(
            c,
            &[
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "INTERVAL",
                "1m",
                &h(i),
                &v[0],
                &v[1],
                &v[2],
                &v[3],
                &v[4],
            ],
        )
    };
    // R5: 10:00 and 11:00 live, no official yet: both show.
    assert_eq!(live(&mut c, 0), 1);
    assert_eq!(live(&mut c, 1), 1);
    let m = merged(&mut c, KEY, &[]);
    assert_eq!(
        m.iter()
            .map(|x| x["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["live", "live"]
    );
    // Official for the first arrives: it wins, the second stays live.
    assert_eq!(official(&mut c, 0), 1);
    let m = merged(&mut c, KEY, &[]);
    assert_eq!(
        m.iter()
            .map(|x| x["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["official", "live"]
    );
    // R2: live at an official time, or older than the newest official, is ignored.
    assert_eq!(live(&mut c, 0), 0);
    assert_eq!(official(&mut c, 5), 1);
    assert_eq!(live(&mut c, 3), 0);
    // The official drops every live candle at or before it.
    assert!(merged(&mut c, KEY, &[])
        .iter()
        .all(|x| x["status"] == "official"));
    let l: Vec<redis::Value> = q(&mut c, &["CANDLE.LIVE", KEY]).unwrap();
    assert!(l.is_empty());
}

#[test]
fn r3_duplicate_policies() {
    let s = Server::start();
    let mut c = s.conn();
    let rows = rest_1m();
    let t = rows[0][0].as_i64().unwrap().to_string();
    for (policy, reply, close) in [("REPLACE", 1, "56650"), ("KEEP", 0, "56642")] {
        let key = format!("dup:{policy}");
        val(
            &mut c,
            &[
                "CANDLE.CREATE",
                &key,
                "INTERVAL",
                "1m",
                "DUPLICATE_POLICY",
                policy,
            ],
        );
        // The first row of the fixture, with this close.
        let mut add = |close: &str| {
            int(
                &mut c,
                &[
                    "CANDLE.OFFICIAL_ADD",
                    &key,
                    &t,
                    "56714",
                    "56714.01",
                    "56634",
                    close,
                    "11.02444",
                ],
            )
        };
        assert_eq!(add("56642"), 1);
        assert_eq!(add("56642"), 0, "identical re-add");
        assert_eq!(add("56650"), reply);
        assert_eq!(merged(&mut c, &key, &[])[0]["close"], close);
    }
    val(
        &mut c,
        &[
            "CANDLE.CREATE",
            "dup:BLOCK",
            "INTERVAL",
            "1m",
            "DUPLICATE_POLICY",
            "block",
        ],
    );
    int(
        &mut c,
        &[
            "CANDLE.OFFICIAL_ADD",
            "dup:BLOCK",
            &t,
            "56714",
            "56714.01",
            "56634",
            "56642",
            "11.02444",
        ],
    );
    let t2 = rows[1][0].as_i64().unwrap().to_string();
    let e = error(
        &mut c,
        &[
            "CANDLE.OFFICIAL_ADD",
            "dup:BLOCK",
            &t2,
            "1",
            "1",
            "1",
            "1",
            "1",
            &t,
            "56714",
            "56714.01",
            "56634",
            "56650",
            "11.02444",
        ],
    );
    assert!(e.contains("BLOCK"), "{e}");
    assert_eq!(
        merged(&mut c, "dup:BLOCK", &[]).len(),
        1,
        "nothing of the batch written"
    );
}

#[test]
fn r6_one_bad_candle_writes_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rows = rest_1m();
    rows[700][2] = json!("1.00000000"); // high below open
    let e = add_json(
        &mut c,
        "CANDLE.OFFICIAL_ADD",
        KEY,
        Some("1m"),
        &serde_json::to_vec(&rows).unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("high"), "{e}");
    assert_eq!(
        int(&mut c, &["EXISTS", KEY]),
        0,
        "a failed first write creates no key"
    );
    bootstrap(&mut c);
    let before = val(&mut c, &["DEBUG", "DIGEST-VALUE", KEY]);
    let e = add_json(
        &mut c,
        "CANDLE.OFFICIAL_ADD",
        KEY,
        None,
        &serde_json::to_vec(&rows).unwrap(),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("ERR") || e.to_string().contains("high"),
        "{e}"
    );
    assert_eq!(val(&mut c, &["DEBUG", "DIGEST-VALUE", KEY]), before);
}

#[test]
fn r7_live_ticks_exact() {
    let s = Server::start();
    let mut c = s.conn();
    // Real trades from the aggTrade capture, folded into the live 1m candle.
    let trades: Vec<Json> = fixtures::lines("ws_aggTrade_combined.jsonl")
        .iter()
        .filter(|l| l.contains("btcusdt@aggTrade"))
        .map(|l| serde_json::from_str::<Json>(l).unwrap()["data"].clone())
        .take(200)
        .collect();
    let key = "candle:{BTCUSDT}:1m:ticks";
    let mut expect: std::collections::BTreeMap<i64, (String, String, String, String, f64)> =
        Default::default();
    for t in &trades {
        let (time, p, qty) = (
            t["T"].as_i64().unwrap(),
            t["p"].as_str().unwrap(),
            t["q"].as_str().unwrap(),
        );
        assert_eq!(
            int(
                &mut c,
                &[
                    "CANDLE.LIVE_TICK",
                    key,
                    "INTERVAL",
                    "1m",
                    &time.to_string(),
                    p,
                    qty
                ]
            ),
            1
        );
        let pf = |s: &str| s.parse::<f64>().unwrap();
        let e = expect.entry(time / 60_000 * 60_000).or_insert((
            p.into(),
            p.into(),
            p.into(),
            p.into(),
            0.0,
        ));
        if pf(p) > pf(&e.1) {
            e.1 = p.into();
        }
        if pf(p) < pf(&e.2) {
            e.2 = p.into();
        }
        e.3 = p.into();
        e.4 += pf(qty);
    }
    let got = merged(&mut c, key, &[]);
    assert_eq!(got.len(), expect.len());
    for (g, (t, e)) in got.iter().zip(&expect) {
        assert_eq!(g["open_time"].as_i64().unwrap(), *t);
        assert_eq!(
            (
                g["open"].as_str().unwrap(),
                g["high"].as_str().unwrap(),
                g["low"].as_str().unwrap(),
                g["close"].as_str().unwrap()
            ),
            (
                strip(&e.0).as_str(),
                strip(&e.1).as_str(),
                strip(&e.2).as_str(),
                strip(&e.3).as_str()
            )
        );
        // Volume is an exact decimal sum: compare against the float sum loosely, and check
        // it has no float noise (at most 8 decimals like the inputs).
        let v = g["volume"].as_str().unwrap();
        assert!(
            (v.parse::<f64>().unwrap() - e.4).abs() < 1e-9,
            "{v} vs {}",
            e.4
        );
        assert!(v.split('.').nth(1).map_or(0, str::len) <= 8, "{v}");
    }
    // Exact sum: 0.1 + 0.2 = 0.3.
    int(
        &mut c,
        &[
            "CANDLE.LIVE_TICK",
            "sum",
            "INTERVAL",
            "1m",
            "60000",
            "1",
            "0.1",
        ],
    );
    int(&mut c, &["CANDLE.LIVE_TICK", "sum", "60001", "1", "0.2"]);
    assert_eq!(merged(&mut c, "sum", &[])[0]["volume"], "0.3");
    // A bucket that has an official candle ignores ticks.
    int(
        &mut c,
        &[
            "CANDLE.OFFICIAL_ADD",
            "sum",
            "120000",
            "1",
            "1",
            "1",
            "1",
            "1",
        ],
    );
    assert_eq!(
        int(&mut c, &["CANDLE.LIVE_TICK", "sum", "120500", "5", "1"]),
        0
    );
}

#[test]
fn gaps_info_create_and_live_limits() {
    let s = Server::start();
    let mut c = s.conn();
    let rows = rest_1m();
    let mut holed = rows.clone();
    holed.drain(100..103);
    holed.remove(497); // the original row 500
    add_json(
        &mut c,
        "CANDLE.OFFICIAL_ADD",
        KEY,
        Some("1m"),
        &serde_json::to_vec(&holed).unwrap(),
    )
    .unwrap();
    let t = |i: usize| rows[i][0].as_i64().unwrap();
    let first = (t(0) - 120_000).to_string();
    let last = t(999).to_string();
    let gaps: Vec<(i64, i64)> = q(&mut c, &["CANDLE.GAPS", KEY, &first, &last]).unwrap();
    assert_eq!(
        gaps,
        vec![
            (t(0) - 120_000, t(0) - 60_000),
            (t(100), t(102)),
            (t(500), t(500))
        ]
    );
    let e = error(&mut c, &["CANDLE.GAPS", KEY, "1", &last]);
    assert!(e.contains("aligned"), "{e}");
    // INFO
    let info: Vec<redis::Value> = q(&mut c, &["CANDLE.INFO", KEY]).unwrap();
    let m: std::collections::HashMap<String, redis::Value> = info
        .chunks(2)
        .map(|p| {
            (
                redis::from_redis_value::<String>(&p[0]).unwrap(),
                p[1].clone(),
            )
        })
        .collect();
    assert_eq!(m["official_count"], redis::Value::Int(996));
    assert_eq!(m["first_official"], redis::Value::Int(t(0)));
    assert_eq!(
        redis::from_redis_value::<String>(&m["interval"]).unwrap(),
        "1m"
    );
    assert_eq!(
        redis::from_redis_value::<String>(&m["duplicate_policy"]).unwrap(),
        "REPLACE"
    );
    let mem: i64 = redis::from_redis_value(&m["memory_usage"]).unwrap();
    assert!(mem > 0);
    let usage = int(&mut c, &["MEMORY", "USAGE", KEY]);
    assert!(
        usage >= mem,
        "MEMORY USAGE {usage} tracks the value ({mem})"
    );
    // CREATE with every option; LIVE_MAX evicts the oldest live candle; RETENTION trims.
    assert_eq!(
        q::<String>(
            &mut c,
            &[
                "CANDLE.CREATE",
                "c2",
                "INTERVAL",
                "1h",
                "RETENTION",
                "3",
                "LIVE_TTL",
                "60",
                "LIVE_MAX",
                "2",
                "DUPLICATE_POLICY",
                "KEEP"
            ]
        )
        .unwrap(),
        "OK"
    );
    assert!(error(&mut c, &["CANDLE.CREATE", "c2", "INTERVAL", "1h"]).contains("exists"));
    for hh in 1..=3 {
        let t = (hh * 3_600_000).to_string();
        int(
            &mut c,
            &["CANDLE.LIVE_UPDATE", "c2", &t, "1", "1", "1", "1", "1"],
        );
    }
    let live: Vec<Vec<redis::Value>> = q(&mut c, &["CANDLE.LIVE", "c2"]).unwrap();
    assert_eq!(
        live.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        vec![redis::Value::Int(7_200_000), redis::Value::Int(10_800_000)]
    );
    for hh in 10..=15 {
        let t = (hh * 3_600_000).to_string();
        int(
            &mut c,
            &["CANDLE.OFFICIAL_ADD", "c2", &t, "1", "1", "1", "1", "1"],
        );
    }
    assert_eq!(
        merged(&mut c, "c2", &[])
            .iter()
            .map(|x| x["open_time"].as_i64().unwrap() / 3_600_000)
            .collect::<Vec<_>>(),
        vec![13, 14, 15]
    );
}

#[test]
fn every_error_path_is_a_clear_err_and_changes_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    bootstrap(&mut c);
    val(&mut c, &["SET", "str", "x"]);
    let before = val(&mut c, &["DEBUG", "DIGEST"]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["CANDLE.OFFICIAL_ADD", KEY], "wrong number"),
        (
            vec!["CANDLE.OFFICIAL_ADD", KEY, "1725416820000"],
            "wrong number",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "1725416820000",
                "1",
                "2",
                "0.5",
                "1",
            ],
            "groups of six",
        ),
        (
            vec!["CANDLE.OFFICIAL_ADD", KEY, "abc", "1", "2", "0.5", "1", "1"],
            "timestamp",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "1725416820000",
                "nan",
                "2",
                "0.5",
                "1",
                "1",
            ],
            "decimal",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "1725416820000",
                "inf",
                "2",
                "0.5",
                "1",
                "1",
            ],
            "decimal",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "1725416820000",
                "1",
                "2",
                "0.5",
                "1",
                "-1",
            ],
            "negative",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "1725416820001",
                "1",
                "2",
                "0.5",
                "1",
                "1",
            ],
            "aligned",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "1725416820000",
                "1",
                "0.9",
                "0.5",
                "1",
                "1",
            ],
            "high",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "1725416820000",
                "1",
                "2",
                "1.5",
                "1",
                "1",
            ],
            "low",
        ),
        (
            vec!["CANDLE.OFFICIAL_ADD", KEY, "JSON", "[[1,2"],
            "invalid JSON",
        ),
        (
            vec!["CANDLE.OFFICIAL_ADD", KEY, "JSON", "{\"e\":\"trade\"}"],
            "kline",
        ),
        (
            vec!["CANDLE.OFFICIAL_ADD", KEY, "JSON", "[1,2,3]"],
            "6 to 12",
        ),
        (vec!["CANDLE.OFFICIAL_ADD", KEY, "JSON"], "wrong number"),
        (
            vec!["CANDLE.OFFICIAL_ADD", KEY, "INTERVAL", "1m", "JSON"],
            "JSON takes exactly one",
        ),
        (
            vec!["CANDLE.OFFICIAL_ADD", KEY, "JSON", "[]", "x"],
            "JSON takes exactly one",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "INTERVAL",
                "7m",
                "60000",
                "1",
                "1",
                "1",
                "1",
                "1",
            ],
            "unknown interval",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                KEY,
                "INTERVAL",
                "5m",
                "60000",
                "1",
                "1",
                "1",
                "1",
                "1",
            ],
            "has interval 1m",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                "missing",
                "60000",
                "1",
                "1",
                "1",
                "1",
                "1",
            ],
            "CANDLE.CREATE",
        ),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                "str",
                "INTERVAL",
                "1m",
                "60000",
                "1",
                "1",
                "1",
                "1",
                "1",
            ],
            "WRONGTYPE",
        ),
        (
            vec![
                "CANDLE.LIVE_UPDATE",
                KEY,
                "60000",
                "1",
                "1",
                "1",
                "1",
                "1",
                "120000",
                "1",
                "1",
                "1",
                "1",
                "1",
            ],
            "exactly one",
        ),
        (vec!["CANDLE.LIVE_TICK", KEY, "60000"], "wrong number"),
        (
            vec!["CANDLE.LIVE_TICK", KEY, "1", "2", "3", "4"],
            "time price",
        ),
        (vec!["CANDLE.LIVE_TICK", KEY, "60000", "x"], "price"),
        (
            vec!["CANDLE.LIVE_TICK", KEY, "60000", "1", "-2"],
            "negative",
        ),
        (vec!["CANDLE.LIVE_TICK", KEY, "-5", "1", "2"], "range"),
        (vec!["CANDLE.RANGE_MERGED", KEY, "a", "+"], "integer"),
        (
            vec!["CANDLE.RANGE_MERGED", KEY, "-", "+", "COUNT"],
            "needs a value",
        ),
        (
            vec!["CANDLE.RANGE_MERGED", KEY, "-", "+", "COUNT", "-1"],
            "COUNT",
        ),
        (
            vec!["CANDLE.RANGE_MERGED", KEY, "-", "+", "FORMAT", "XML"],
            "FORMAT",
        ),
        (
            vec!["CANDLE.RANGE_MERGED", KEY, "-", "+", "BOGUS"],
            "unknown option",
        ),
        (vec!["CANDLE.RANGE_MERGED", "str", "-", "+"], "WRONGTYPE"),
        (
            vec!["CANDLE.GAPS", "missing", "0", "60000"],
            "no candle series",
        ),
        (vec!["CANDLE.GAPS", KEY, "0"], "wrong number"),
        (vec!["CANDLE.INFO", "missing"], "no candle series"),
        (vec!["CANDLE.CREATE", "n1"], "wrong number"),
        (vec!["CANDLE.CREATE", "n1", "RETENTION", "5"], "INTERVAL"),
        (
            vec!["CANDLE.CREATE", "n1", "INTERVAL", "1m", "LIVE_MAX", "0"],
            "LIVE_MAX",
        ),
        (
            vec![
                "CANDLE.CREATE",
                "n1",
                "INTERVAL",
                "1m",
                "LIVE_MAX",
                "9999999",
            ],
            "LIVE_MAX",
        ),
        (
            vec!["CANDLE.CREATE", "n1", "INTERVAL", "1m", "RETENTION", "-1"],
            "RETENTION",
        ),
        (
            vec![
                "CANDLE.CREATE",
                "n1",
                "INTERVAL",
                "1m",
                "DUPLICATE_POLICY",
                "MAYBE",
            ],
            "DUPLICATE_POLICY",
        ),
        (
            vec!["CANDLE.CREATE", "n1", "INTERVAL", "1m", "LIVE_TTL"],
            "needs a value",
        ),
        (vec!["CANDLE.CREATE", "str", "INTERVAL", "1m"], "WRONGTYPE"),
        (vec!["CANDLE.APPLY", KEY, "E\u{1}"], "internal"),
    ];
    for (words, needle) in &cases {
        let e = error(&mut c, words);
        assert!(
            e.to_lowercase().contains(&needle.to_lowercase()),
            "{words:?}: {e}"
        );
    }
    assert_eq!(
        val(&mut c, &["DEBUG", "DIGEST"]),
        before,
        "errors changed nothing"
    );
    // Decimals beyond what is representable, and huge JSON nesting, are refused, never a crash.
    let e = error(
        &mut c,
        &[
            "CANDLE.OFFICIAL_ADD",
            KEY,
            "60000",
            &"9".repeat(50),
            "1",
            "1",
            "1",
            "1",
        ],
    );
    assert!(e.contains("digits"), "{e}");
    let deep = "[".repeat(100_000);
    assert!(error(&mut c, &["CANDLE.OFFICIAL_ADD", KEY, "JSON", &deep]).contains("JSON"));
    assert_eq!(q::<String>(&mut c, &["PING"]).unwrap(), "PONG");
}

fn state(c: &mut redis::Connection, key: &str) -> (Vec<Json>, redis::Value, redis::Value) {
    (
        merged(c, key, &[]),
        val(c, &["CANDLE.LIVE", key]),
        val(c, &["DEBUG", "DIGEST-VALUE", key]),
    )
}

#[test]
fn persistence_debug_reload_rdb_restart_and_aof() {
    let mut s = Server::start();
    let mut c = s.conn();
    let (rows, _) = forming_rest_body();
    add_json(
        &mut c,
        "CANDLE.OFFICIAL_ADD",
        "forming",
        Some("1m"),
        &serde_json::to_vec(&rows).unwrap(),
    )
    .unwrap();
    bootstrap(&mut c);
    int(
        &mut c,
        &["CANDLE.LIVE_TICK", KEY, "1725476820000", "57771.5", "0.5"],
    );
    val(
        &mut c,
        &[
            "CANDLE.CREATE",
            "empty",
            "INTERVAL",
            "1M",
            "RETENTION",
            "12",
            "DUPLICATE_POLICY",
            "BLOCK",
        ],
    );
    let before: Vec<_> = ["forming", KEY, "empty"]
        .iter()
        .map(|k| state(&mut c, k))
        .collect();
    assert_eq!(q::<String>(&mut c, &["DEBUG", "RELOAD"]).unwrap(), "OK");
    let after: Vec<_> = ["forming", KEY, "empty"]
        .iter()
        .map(|k| state(&mut c, k))
        .collect();
    assert_eq!(
        before, after,
        "DEBUG RELOAD keeps everything, live region included"
    );
    s.restart("SAVE");
    let mut c = s.conn();
    let after: Vec<_> = ["forming", KEY, "empty"]
        .iter()
        .map(|k| state(&mut c, k))
        .collect();
    assert_eq!(before, after, "restart from RDB");
    let info = val(&mut c, &["CANDLE.INFO", "empty"]);
    assert!(
        format!("{info:?}").contains("BLOCK"),
        "settings survive: {info:?}"
    );
}

#[test]
fn aof_replays_clock_decisions_as_made() {
    let mut s = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"], &[]);
    let mut c = s.conn();
    bootstrap(&mut c);
    // A 1s candle sent as official while its second is still forming: stored live (R4).
    let sec = now_ms() / 1000 * 1000 + 1000; // the next second: surely still forming
    let t = sec.to_string();
    assert_eq!(
        int(
            &mut c,
            &[
                "CANDLE.OFFICIAL_ADD",
                "sec",
                "INTERVAL",
                "1s",
                &t,
                "1",
                "2",
                "1",
                "2",
                "3"
            ]
        ),
        0
    );
    let before = (state(&mut c, "sec"), state(&mut c, KEY));
    // Replay after that second is long closed: a verbatim replay would make it official.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    s.restart("NOSAVE");
    let mut c = s.conn();
    assert_eq!(
        (state(&mut c, "sec"), state(&mut c, KEY)),
        before,
        "AOF replayed the decision as made"
    );
    assert_eq!(merged(&mut c, "sec", &[])[0]["status"], "live");
    // AOF rewrite, then more writes, then restart: still identical.
    let _: String = q(&mut c, &["BGREWRITEAOF"]).unwrap();
    eventually("rewrite done", || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(&mut c, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
    int(
        &mut c,
        &["CANDLE.LIVE_TICK", KEY, "1725476820000", "57771.5", "0.5"],
    );
    let before = (state(&mut c, "sec"), state(&mut c, KEY));
    s.restart("NOSAVE");
    let mut c = s.conn();
    assert_eq!(
        (state(&mut c, "sec"), state(&mut c, KEY)),
        before,
        "AOF rewrite + restart"
    );
}

#[test]
fn replica_shows_exactly_what_master_shows() {
    let master = Server::start();
    let replica = start_replica(&master);
    let mut m = master.conn();
    let mut r = replica.conn();
    bootstrap(&mut m);
    // Later pages of the same rows, 1000 minutes on, in uneven pages: bulk appends onto a
    // last chunk that is sometimes over half full (left sealed) and sometimes not (topped
    // up); the replica must build the same chunks (DEBUG DIGEST and MEMORY USAGE below).
    let later: Vec<Json> = rest_1m()
        .into_iter()
        .map(|mut row| {
            for i in [0, 6] {
                row[i] = json!(row[i].as_i64().unwrap() + 1000 * 60_000);
            }
            row
        })
        .collect();
    for page in [
        &later[..400],
        &later[400..750],
        &later[750..850],
        &later[850..],
    ] {
        let body = serde_json::to_vec(page).unwrap();
        let n = add_json(&mut m, "CANDLE.OFFICIAL_ADD", KEY, None, &body).unwrap();
        assert_eq!(n, page.len() as i64);
    }
    let sec = (now_ms() / 1000 * 1000 + 1000).to_string();
    int(
        &mut m,
        &[
            "CANDLE.OFFICIAL_ADD",
            "sec",
            "INTERVAL",
            "1s",
            &sec,
            "1",
            "2",
            "1",
            "2",
            "3",
        ],
    );
    for line in fixtures::lines("ws_kline_1m_combined.jsonl")
        .iter()
        .filter(|l| l.contains("ethusdt@kline_1m"))
    {
        let cmd = if line.contains("\"x\":true") {
            "CANDLE.OFFICIAL_ADD"
        } else {
            "CANDLE.LIVE_UPDATE"
        };
        add_json(
            &mut m,
            cmd,
            "candle:{ETHUSDT}:1m",
            Some("1m"),
            line.as_bytes(),
        )
        .unwrap();
    }
    int(
        &mut m,
        &["CANDLE.LIVE_TICK", KEY, "1725476820000", "57771.5", "0.5"],
    );
    val(
        &mut m,
        &["CANDLE.CREATE", "cfg", "INTERVAL", "4h", "LIVE_MAX", "3"],
    );
    sync_replica(&mut m);
    // Valkey 8 sometimes gives the replica's key object (the server's own allocation, not the
    // module's) a larger size class than the master's: MEMORY USAGE 16 B apart, one run in
    // about six. The module's share of it is CANDLE.INFO's memory_usage, compared exactly
    // below on every server; MEMORY USAGE as a whole is compared exactly on Redis.
    let valkey = info_field(&mut m, "server", "server_name").as_deref() == Some("valkey");
    for key in [KEY, "sec", "candle:{ETHUSDT}:1m", "cfg"] {
        assert_eq!(state(&mut r, key), state(&mut m, key), "{key}");
        let (mu_r, mu_m): (i64, i64) = (
            q(&mut r, &["MEMORY", "USAGE", key]).unwrap(),
            q(&mut m, &["MEMORY", "USAGE", key]).unwrap(),
        );
        if valkey {
            assert!((mu_r - mu_m).abs() <= 64, "{key}: {mu_r} vs {mu_m}");
        } else {
            assert_eq!(mu_r, mu_m, "{key}");
        }
        assert_eq!(
            val(&mut r, &["CANDLE.INFO", key]),
            val(&mut m, &["CANDLE.INFO", key]),
            "{key}"
        );
    }
    assert_eq!(
        val(&mut r, &["DEBUG", "DIGEST"]),
        val(&mut m, &["DEBUG", "DIGEST"])
    );
    assert_eq!(
        info_field(&mut r, "candles", "candles_official_candles"),
        info_field(&mut m, "candles", "candles_official_candles")
    );
    // Replicas refuse writes; clients can't inject CANDLE.APPLY.
    let e = error(
        &mut r,
        &["CANDLE.LIVE_TICK", KEY, "1725476820000", "1", "1"],
    );
    assert!(
        e.to_lowercase().contains("read only") || e.contains("READONLY"),
        "{e}"
    );
    assert!(error(&mut m, &["CANDLE.APPLY", KEY, "S"]).contains("internal"));
    // A new replica syncing from the RDB also matches.
    let replica2 = start_replica(&master);
    let mut r2 = replica2.conn();
    assert_eq!(
        val(&mut r2, &["DEBUG", "DIGEST"]),
        val(&mut m, &["DEBUG", "DIGEST"])
    );
}

#[test]
fn migrate_moves_a_series_between_servers() {
    let (src, dst) = (Server::start(), Server::start());
    let (mut a, mut b) = (src.conn(), dst.conn());
    bootstrap(&mut a);
    int(
        &mut a,
        &["CANDLE.LIVE_TICK", KEY, "1725476820000", "57771.5", "0.5"],
    );
    let before = state(&mut a, KEY);
    let port = dst.port.to_string();
    let migrate = |c: &mut redis::Connection, extra: &[&str]| -> String {
        let mut words = vec!["MIGRATE", "127.0.0.1", &port, KEY, "0", "5000"];
        words.extend_from_slice(extra);
        q(c, &words).unwrap()
    };
    // COPY: both servers hold it, the same.
    assert_eq!(migrate(&mut a, &["COPY"]), "OK");
    assert_eq!(state(&mut b, KEY), before);
    assert_eq!(state(&mut a, KEY), before);
    // The target already has it: refused without REPLACE, replaced with it (and moved).
    assert!(error(&mut a, &["MIGRATE", "127.0.0.1", &port, KEY, "0", "5000"]).contains("BUSYKEY"));
    int(
        &mut b,
        &["CANDLE.LIVE_TICK", KEY, "1725476820000", "60000", "1"],
    );
    assert_ne!(state(&mut b, KEY), before);
    assert_eq!(migrate(&mut a, &["REPLACE"]), "OK");
    assert_eq!(state(&mut b, KEY), before);
    assert_eq!(int(&mut a, &["EXISTS", KEY]), 0);
    // MIGRATE deletes the key here, and REPLACE the old value there; Valkey 8 frees both in
    // the background by default (lazyfree-lazy-server-del yes): the counters follow once the
    // free callbacks have run.
    eventually("the migrated series freed on the source", || {
        info_field(&mut a, "candles", "candles_series").as_deref() == Some("0")
    });
    eventually("the replaced series freed on the target", || {
        info_field(&mut b, "candles", "candles_official_candles").as_deref() == Some("1000")
    });
    // The moved series takes writes as before.
    assert_eq!(
        add_json(
            &mut b,
            "CANDLE.OFFICIAL_ADD",
            KEY,
            None,
            &fixtures::bytes(REST_1M)
        )
        .unwrap(),
        0
    );
}

#[test]
fn copy_dump_restore_and_lazy_free() {
    let s = Server::start();
    let mut c = s.conn();
    bootstrap(&mut c);
    int(
        &mut c,
        &["CANDLE.LIVE_TICK", KEY, "1725476820000", "57771.5", "0.5"],
    );
    assert_eq!(int(&mut c, &["COPY", KEY, "copy"]), 1);
    assert_eq!(state(&mut c, "copy"), state(&mut c, KEY));
    // The copy is independent.
    int(
        &mut c,
        &["CANDLE.LIVE_TICK", "copy", "1725476820000", "60000", "1"],
    );
    assert_ne!(state(&mut c, "copy"), state(&mut c, KEY));
    let dump: Vec<u8> = redis::cmd("DUMP").arg(KEY).query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("restored")
        .arg(0)
        .arg(&dump)
        .query(&mut c)
        .unwrap();
    assert_eq!(state(&mut c, "restored"), state(&mut c, KEY));
    let mut bad = dump.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    let e = redis::cmd("RESTORE")
        .arg("bad")
        .arg(0)
        .arg(&bad)
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string().contains("checksum") || e.to_string().contains("payload"),
        "{e}"
    );
    assert_eq!(int(&mut c, &["EXISTS", "bad"]), 0);
    assert_eq!(
        info_field(&mut c, "candles", "candles_series").as_deref(),
        Some("3")
    );
    assert_eq!(
        info_field(&mut c, "candles", "candles_official_candles").as_deref(),
        Some("3000")
    );
    // UNLINK of a big series frees it (in the background: free_effort > lazyfree threshold).
    assert_eq!(int(&mut c, &["UNLINK", KEY, "copy", "restored"]), 3);
    eventually("counters drop to 0", || {
        info_field(&mut c, "candles", "candles_series").as_deref() == Some("0")
    });
    assert_eq!(
        info_field(&mut c, "candles", "candles_official_candles").as_deref(),
        Some("0")
    );
    assert_eq!(
        info_field(&mut c, "candles", "candles_live_candles").as_deref(),
        Some("0")
    );
    assert_eq!(
        info_field(&mut c, "candles", "candles_series_bytes").as_deref(),
        Some("0")
    );
}

#[test]
fn keyspace_notifications_only_on_change() {
    let s = Server::start_with(&["--notify-keyspace-events", "KEA"], &[]);
    let mut c = s.conn();
    let mut sub = s.conn();
    let mut ps = sub.as_pubsub();
    ps.psubscribe("__keyevent@0__:candle.*").unwrap();
    ps.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    bootstrap(&mut c);
    // Ignored write: no event. Then a live write.
    add_json(
        &mut c,
        "CANDLE.OFFICIAL_ADD",
        KEY,
        None,
        &fixtures::bytes(REST_1M),
    )
    .unwrap();
    int(
        &mut c,
        &["CANDLE.LIVE_TICK", KEY, "1725476820000", "57771.5", "0.5"],
    );
    let mut events = Vec::new();
    while let Ok(msg) = ps.get_message() {
        events.push((
            msg.get_channel_name().to_string(),
            msg.get_payload::<String>().unwrap(),
        ));
    }
    assert_eq!(
        events,
        vec![
            ("__keyevent@0__:candle.create".to_string(), KEY.to_string()),
            (
                "__keyevent@0__:candle.official".to_string(),
                KEY.to_string()
            ),
            ("__keyevent@0__:candle.live".to_string(), KEY.to_string()),
        ]
    );
}

#[test]
fn config_defaults_at_load_and_config_set() {
    let s = Server::start_with(
        &[],
        &[
            "retention",
            "5",
            "live_max",
            "7",
            "duplicate_policy",
            "keep",
        ],
    );
    let mut c = s.conn();
    let cfg: Vec<String> = q(&mut c, &["CONFIG", "GET", "candles.*"]).unwrap();
    let cfg: std::collections::HashMap<_, _> = cfg
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(cfg["candles.retention"], "5");
    assert_eq!(cfg["candles.live_max"], "7");
    assert_eq!(cfg["candles.duplicate_policy"], "keep");
    assert_eq!(cfg["candles.live_ttl"], "86400");
    assert_eq!(cfg["candles.tick_cap"], "1000");
    int(
        &mut c,
        &["CANDLE.LIVE_TICK", "a", "INTERVAL", "1m", "60000", "1"],
    );
    let _: () = q(&mut c, &["CONFIG", "SET", "candles.live_max", "9"]).unwrap();
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "candles.duplicate_policy", "block"],
    )
    .unwrap();
    int(
        &mut c,
        &["CANDLE.LIVE_TICK", "b", "INTERVAL", "1m", "60000", "1"],
    );
    let info = |c: &mut redis::Connection, k: &str| -> Vec<String> {
        let v: Vec<redis::Value> = q(c, &["CANDLE.INFO", k]).unwrap();
        v.iter()
            .map(|x| redis::from_redis_value::<String>(x).unwrap_or_default())
            .collect()
    };
    let a = info(&mut c, "a");
    let b = info(&mut c, "b");
    assert_eq!(
        (&a[3], &a[5], &a[9]),
        (&"KEEP".to_string(), &"5".to_string(), &"7".to_string())
    );
    assert_eq!((&b[3], &b[9]), (&"BLOCK".to_string(), &"9".to_string()));
    assert!(q::<()>(&mut c, &["CONFIG", "SET", "candles.live_max", "0"]).is_err());
    let modules: Vec<Vec<redis::Value>> = q(&mut c, &["MODULE", "LIST"]).unwrap();
    assert_eq!(
        redis::from_redis_value::<String>(&modules[0][1]).unwrap(),
        "candles"
    );
}

#[test]
fn command_metadata_for_cluster_clients() {
    let s = Server::start();
    let mut c = s.conn();
    for (cmd, args) in [
        (
            "CANDLE.OFFICIAL_ADD",
            vec!["k1", "60000", "1", "1", "1", "1", "1"],
        ),
        ("CANDLE.RANGE_MERGED", vec!["k1", "-", "+"]),
        ("CANDLE.LIVE_TICK", vec!["k1", "60000", "1"]),
        ("CANDLE.GAPS", vec!["k1", "0", "60000"]),
    ] {
        let mut w = vec!["COMMAND", "GETKEYS", cmd];
        w.extend(args);
        let keys: Vec<String> = q(&mut c, &w).unwrap();
        assert_eq!(keys, vec!["k1"], "{cmd}");
    }
    let info: Vec<Vec<redis::Value>> = q(
        &mut c,
        &[
            "COMMAND",
            "INFO",
            "CANDLE.OFFICIAL_ADD",
            "CANDLE.RANGE_MERGED",
        ],
    )
    .unwrap();
    let flags = |i: usize| -> Vec<String> { redis::from_redis_value(&info[i][2]).unwrap() };
    assert!(
        flags(0).contains(&"write".to_string()) && flags(0).contains(&"denyoom".to_string()),
        "{:?}",
        flags(0)
    );
    assert!(flags(1).contains(&"readonly".to_string()));
    let docs = val(&mut c, &["COMMAND", "DOCS", "CANDLE.RANGE_MERGED"]);
    assert!(format!("{docs:?}").contains("summary"));
}

/// `FORMAT JSON` chart loads are served from the cached text of the newest officials: the
/// cache never shows stale data (appends, replaced candles, live candles), shows in MEMORY
/// USAGE, and is not data (digest, DUMP unchanged; `candles.json_cache 0` turns it off).
#[test]
fn json_cache_follows_every_write() {
    let srv = Server::start();
    let mut c = srv.conn();
    let rows = rest_1m();
    let first: Vec<Json> = rows[..900].to_vec();
    assert_eq!(
        add_json(
            &mut c,
            "CANDLE.OFFICIAL_ADD",
            KEY,
            Some("1m"),
            &serde_json::to_vec(&first).unwrap()
        )
        .unwrap(),
        900
    );
    let digest: Vec<String> = q(&mut c, &["DEBUG", "DIGEST-VALUE", KEY]).unwrap();
    let mem0: i64 = q(&mut c, &["MEMORY", "USAGE", KEY]).unwrap();
    // The reference: the same read on a copy with the cache off (a read with
    // json_cache 0 frees the cache of the series it reads, so not on KEY itself).
    let uncached = |c: &mut redis::Connection, extra: &[&str]| {
        q::<()>(c, &["COPY", KEY, "ref", "REPLACE"]).unwrap();
        q::<()>(c, &["CONFIG", "SET", "candles.json_cache", "0"]).unwrap();
        let v = merged(c, "ref", extra);
        q::<()>(c, &["CONFIG", "SET", "candles.json_cache", "1024"]).unwrap();
        q::<()>(c, &["DEL", "ref"]).unwrap();
        v
    };
    let chart = merged(&mut c, KEY, &["COUNT", "720"]);
    let mem1: i64 = q(&mut c, &["MEMORY", "USAGE", KEY]).unwrap();
    assert!(
        mem1 > mem0 + 720 * 100,
        "MEMORY USAGE shows the cache: {mem0} -> {mem1}"
    );
    let info: std::collections::HashMap<String, redis::Value> =
        q(&mut c, &["CANDLE.INFO", KEY]).unwrap();
    let cache: i64 = redis::from_redis_value(&info["json_cache_bytes"]).unwrap();
    let info_mem: i64 = redis::from_redis_value(&info["memory_usage"]).unwrap();
    assert!(cache > 720 * 100, "CANDLE.INFO json_cache_bytes {cache}");
    // MEMORY USAGE adds the key's own overhead to the value's figure.
    assert!(
        info_mem <= mem1 && mem1 - info_mem < 200,
        "{info_mem} {mem1}"
    );
    let data = info_mem - cache;
    assert!(
        data <= mem0 && mem0 - data < 200,
        "data {data}, before the read {mem0}"
    );
    assert_eq!(chart.len(), 720);
    assert_eq!(chart[719], expected(&rows[899], "official"));
    assert_eq!(chart, uncached(&mut c, &["COUNT", "720"]));
    let digest_after: Vec<String> = q(&mut c, &["DEBUG", "DIGEST-VALUE", KEY]).unwrap();
    assert_eq!(digest, digest_after);

    // Appends extend it; a live candle after them is merged in.
    let rest: Vec<Json> = rows[900..].to_vec();
    add_json(
        &mut c,
        "CANDLE.OFFICIAL_ADD",
        KEY,
        None,
        &serde_json::to_vec(&rest).unwrap(),
    )
    .unwrap();
    let live_t = rows[999][0].as_i64().unwrap() + 60_000;
    let lt = live_t.to_string();
    let n: i64 = q(
        &mut c,
        &["CANDLE.LIVE_UPDATE", KEY, &lt, "1", "3", "0.5", "2", "7"],
    )
    .unwrap();
    assert_eq!(n, 1);
    let chart = merged(&mut c, KEY, &["COUNT", "720"]);
    assert_eq!(chart[718], expected(&rows[999], "official"));
    assert_eq!(chart[719]["status"], "live");
    assert_eq!(chart, uncached(&mut c, &["COUNT", "720"]));

    // A corrected (replaced) candle inside the cached window shows at once.
    let mut fix = rows[950].clone();
    fix[4] = fix[3].clone();
    fix[2] = json!("99999");
    let n = add_json(
        &mut c,
        "CANDLE.OFFICIAL_ADD",
        KEY,
        None,
        &serde_json::to_vec(&vec![fix.clone()]).unwrap(),
    )
    .unwrap();
    assert_eq!(n, 1);
    let chart = merged(&mut c, KEY, &["COUNT", "720"]);
    assert_eq!(chart[718 - 49], expected(&fix, "official"));
    assert_eq!(chart, uncached(&mut c, &["COUNT", "720"]));
    // Ranges that end before the newest candle, or reach past the cache, agree too.
    for extra in [&["COUNT", "5000"][..], &[][..]] {
        assert_eq!(merged(&mut c, KEY, extra), uncached(&mut c, extra));
    }
    let t = rows[500][0].as_i64().unwrap().to_string();
    let s: String = q(
        &mut c,
        &["CANDLE.RANGE_MERGED", KEY, &t, "+", "FORMAT", "JSON"],
    )
    .unwrap();
    let v: Vec<Json> = serde_json::from_str(&s).unwrap();
    assert_eq!(v.len(), 501);
    assert_eq!(
        v[0],
        json!({
            "open_time": rows[500][0], "open": strip(rows[500][1].as_str().unwrap()),
            "high": strip(rows[500][2].as_str().unwrap()), "low": strip(rows[500][3].as_str().unwrap()),
            "close": strip(rows[500][4].as_str().unwrap()), "volume": strip(rows[500][5].as_str().unwrap()),
            "status": "official"
        })
    );
    // With json_cache 0 a read frees the cache.
    q::<()>(&mut c, &["CONFIG", "SET", "candles.json_cache", "0"]).unwrap();
    merged(&mut c, KEY, &["COUNT", "720"]);
    let mem2: i64 = q(&mut c, &["MEMORY", "USAGE", KEY]).unwrap();
    assert!(mem2 < mem0 + 720 * 50, "cache freed: {mem0} -> {mem2}");
    q::<()>(&mut c, &["CONFIG", "SET", "candles.json_cache", "1024"]).unwrap();
    // A copy starts without the cache and answers the same.
    q::<()>(&mut c, &["COPY", KEY, "copy"]).unwrap();
    assert_eq!(
        merged(&mut c, "copy", &["COUNT", "720"]),
        merged(&mut c, KEY, &["COUNT", "720"])
    );
}

/// Every `.aof` file of a server's AOF directory (Redis 7 multi-part AOF), as text.
fn aof_text(s: &Server) -> String {
    let mut out = String::new();
    if let Ok(dir) = std::fs::read_dir(s.dir.path().join("appendonlydir")) {
        for e in dir.flatten() {
            out.push_str(&String::from_utf8_lossy(
                &std::fs::read(e.path()).unwrap_or_default(),
            ));
        }
    }
    out
}

/// Bursts of live writes (real trades folded with LIVE_TICK, kline updates with LIVE_UPDATE)
/// reuse their series' write stamp and replicate verbatim, like `SET`; the first write of
/// each burst replicates as its effect and restamps. The replica, the AOF, an AOF rewrite and
/// restarts all end in exactly the master's state, live expiry included.
#[test]
fn live_bursts_replicate_verbatim_with_the_masters_stamp() {
    let mut master = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"], &[]);
    let replica = start_replica(&master);
    let mut m = master.conn();
    let trades: Vec<(String, String, String)> = fixtures::lines("ws_aggTrade_combined.jsonl")
        .iter()
        .filter(|l| l.contains("btcusdt@aggTrade"))
        .map(|l| {
            let v: Json = serde_json::from_str(l).unwrap();
            let d = &v["data"];
            (
                d["T"].to_string(),
                d["p"].as_str().unwrap().to_owned(),
                d["q"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let klines: Vec<String> = fixtures::lines("ws_kline_1m_combined.jsonl")
        .into_iter()
        .filter(|l| l.contains("ethusdt@kline_1m") && l.contains("\"x\":false"))
        .collect();
    let ticks_key = "candle:{BTCUSDT}:1m:ticks";
    let kline_key = "candle:{ETHUSDT}:1m";
    let burst = |c: &mut redis::Connection, trades: &[(String, String, String)]| {
        let mut p = redis::pipe();
        for (t, price, qty) in trades {
            p.cmd("CANDLE.LIVE_TICK")
                .arg(ticks_key)
                .arg("INTERVAL")
                .arg("1m")
                .arg(t)
                .arg(price)
                .arg(qty)
                .ignore();
        }
        p.query::<()>(c).unwrap();
    };
    let (first, rest) = trades.split_at(trades.len() / 2);
    burst(&mut m, first);
    for line in &klines {
        add_json(
            &mut m,
            "CANDLE.LIVE_UPDATE",
            kline_key,
            Some("1m"),
            line.as_bytes(),
        )
        .unwrap();
    }
    // Single REST rows as JSON (what a client would `SET`), each replacing the live candle.
    let rows_key = "candle:{BTCUSDT}:1m:rows";
    let body: Json =
        serde_json::from_slice(&fixtures::bytes("rest_klines_BTCUSDT_1m_limit1000.json")).unwrap();
    let rows = body.as_array().unwrap();
    for r in &rows[rows.len() - 40..] {
        let text = serde_json::to_string(r).unwrap();
        assert_eq!(
            add_json(
                &mut m,
                "CANDLE.LIVE_UPDATE",
                rows_key,
                Some("1m"),
                text.as_bytes()
            ),
            Ok(1)
        );
    }
    // A short LIVE_TTL: its live candle expires between two bursts (the drop is decided
    // with the master's clock and must reach the replica and the AOF as decided).
    val(
        &mut m,
        &["CANDLE.CREATE", "short", "INTERVAL", "1m", "LIVE_TTL", "1"],
    );
    let lu = |c: &mut redis::Connection, t: &str| {
        int(
            c,
            &[
                "CANDLE.LIVE_UPDATE",
                "short",
                t,
                "1.5",
                "2",
                "1",
                "1.75",
                "10",
            ],
        )
    };
    lu(&mut m, "1725476820000");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    burst(&mut m, rest);
    lu(&mut m, "1725476880000");
    assert_eq!(
        merged(&mut m, "short", &[]).len(),
        1,
        "the first live candle expired"
    );

    let aof = aof_text(&master);
    let verbatim = aof.matches("CANDLE.LIVE_TICK").count();
    let effects = aof.matches("CANDLE.APPLY").count();
    assert!(
        verbatim > trades.len() / 2 && effects >= 3,
        "{verbatim} verbatim LIVE_TICKs and {effects} effects for {} ticks",
        trades.len()
    );

    sync_replica(&mut m);
    let mut r = replica.conn();
    for key in [ticks_key, kline_key, rows_key, "short"] {
        assert_eq!(state(&mut r, key), state(&mut m, key), "{key}");
    }
    let digest = val(&mut m, &["DEBUG", "DIGEST"]);
    assert_eq!(val(&mut r, &["DEBUG", "DIGEST"]), digest);

    master.restart("NOSAVE");
    let mut m = master.conn();
    assert_eq!(val(&mut m, &["DEBUG", "DIGEST"]), digest, "AOF replay");

    // Rewrite, then a burst whose writes reuse the stamp the rewrite stored, then restart.
    let _: String = q(&mut m, &["BGREWRITEAOF"]).unwrap();
    eventually("rewrite done", || {
        info_field(&mut m, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(&mut m, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
    burst(&mut m, &trades[..200]);
    lu(&mut m, "1725476880000");
    let digest = val(&mut m, &["DEBUG", "DIGEST"]);
    master.restart("NOSAVE");
    let mut m = master.conn();
    assert_eq!(
        val(&mut m, &["DEBUG", "DIGEST"]),
        digest,
        "AOF rewrite + restart"
    );
    let mut r = replica.conn();
    eventually("replica caught up", || {
        val(&mut r, &["DEBUG", "DIGEST"]) == digest
    });
}
