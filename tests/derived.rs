//! Derived series (SPEC §2a, R8/R9) against a real redis-server: derived candles equal
//! Binance's own on the recorded fixtures, chains, corrections and live bars cascading,
//! refusals that leave nothing behind, DEL/RENAME of either end, persistence (DEBUG RELOAD,
//! RDB restart, AOF replay), a replica's digest, COPY/DUMP/RESTORE, alignment and SEAL.

use candles_testkit::fixtures;
use candles_testkit::fixtures::module_decimal as strip;
use candles_testkit::server::*;
use serde_json::Value as Json;

const M1: &str = "candle:{BTCUSDT}:1m";
const M5: &str = "candle:{BTCUSDT}:5m";
const M15: &str = "candle:{BTCUSDT}:15m";
const H1: &str = "candle:{BTCUSDT}:1h";
const Q15: &str = "candle:{BTCUSDT}:q15";

fn rows(name: &str) -> Vec<Json> {
    serde_json::from_slice(&fixtures::bytes(name)).unwrap()
}

fn add_json(c: &mut redis::Connection, key: &str, interval: Option<&str>, body: &[u8]) -> i64 {
    let mut r = redis::cmd("CANDLE.OFFICIAL_ADD");
    r.arg(key);
    if let Some(i) = interval {
        r.arg("INTERVAL").arg(i);
    }
    r.arg("JSON").arg(body).query(c).unwrap()
}

fn load(c: &mut redis::Connection, key: &str, interval: &str, fixture: &str) {
    add_json(c, key, Some(interval), &fixtures::bytes(fixture));
}

/// RANGE_MERGED ... FULL FORMAT JSON, parsed.
fn merged(c: &mut redis::Connection, key: &str) -> Vec<Json> {
    let s: String = q(
        c,
        &[
            "CANDLE.RANGE_MERGED",
            key,
            "-",
            "+",
            "FULL",
            "FORMAT",
            "JSON",
        ],
    )
    .unwrap();
    serde_json::from_str(&s).unwrap()
}

/// `CANDLE.LIVE_UPDATE key t o h l c v`.
fn live_update(c: &mut redis::Connection, key: &str, t: &str, ohlcv: [&str; 5]) -> i64 {
    let mut words = vec!["CANDLE.LIVE_UPDATE", key, t];
    words.extend(ohlcv);
    int(c, &words)
}

/// The open time of the newest candle of `key`.
fn last_open(c: &mut redis::Connection, key: &str) -> i64 {
    merged(c, key).last().unwrap()["open_time"]
        .as_i64()
        .unwrap()
}

/// Every official candle of `key` equals the exchange row with its open time, field for
/// field; returns how many were compared.
fn compare_with_exchange(c: &mut redis::Connection, key: &str, exchange: &[Json]) -> usize {
    let mut n = 0;
    for got in merged(c, key) {
        if got["status"] != "official" {
            continue;
        }
        let Some(row) = exchange.iter().find(|r| r[0] == got["open_time"]) else {
            continue;
        };
        let s = |i: usize| Json::String(strip(row[i].as_str().unwrap()));
        for (field, want) in [
            ("open", s(1)),
            ("high", s(2)),
            ("low", s(3)),
            ("close", s(4)),
            ("volume", s(5)),
            ("close_time", row[6].clone()),
            ("quote_volume", s(7)),
            ("trades", row[8].clone()),
            ("taker_buy_base", s(9)),
            ("taker_buy_quote", s(10)),
        ] {
            assert_eq!(got[field], want, "{key} bucket {} field {field}", row[0]);
        }
        n += 1;
    }
    n
}

fn info(c: &mut redis::Connection, key: &str) -> std::collections::HashMap<String, redis::Value> {
    let v: Vec<redis::Value> = q(c, &["CANDLE.INFO", key]).unwrap();
    v.chunks(2)
        .map(|p| {
            (
                redis::from_redis_value::<String>(&p[0]).unwrap(),
                p[1].clone(),
            )
        })
        .collect()
}

fn source(c: &mut redis::Connection, key: &str) -> Option<String> {
    redis::from_redis_value(&info(c, key)["source"]).unwrap()
}

fn feeds(c: &mut redis::Connection, key: &str) -> Vec<String> {
    redis::from_redis_value(&info(c, key)["feeds"]).unwrap()
}

fn create(c: &mut redis::Connection, key: &str, interval: &str, src: &str) {
    val(
        c,
        &["CANDLE.CREATE", key, "INTERVAL", interval, "SOURCE", src],
    );
}

/// 1m history, then the 5m → 15m → 1h chain over it.
fn chain(c: &mut redis::Connection) {
    load(c, M1, "1m", "rest_klines_BTCUSDT_1m_limit1000.json");
    create(c, M5, "5m", M1);
    create(c, M15, "15m", M5);
    create(c, H1, "1h", M15);
}

#[test]
fn derived_candles_equal_binance_field_for_field() {
    let s = Server::start();
    let mut c = s.conn();
    // 1m → 5m against the 5m REST body: every closed bucket the 1m history covers whole.
    load(&mut c, M1, "1m", "rest_klines_BTCUSDT_1m_limit1000.json");
    create(&mut c, M5, "5m", M1);
    let five = rows("rest_klines_BTCUSDT_5m_limit1000.json");
    assert_eq!(compare_with_exchange(&mut c, M5, &five), 199);
    // 5m → 15m against the 15m body where the two overlap (its last row was still forming
    // when recorded, so it is not a closed candle to compare with).
    load(
        &mut c,
        "candle:{B}:5m",
        "5m",
        "rest_klines_BTCUSDT_5m_limit1000.json",
    );
    create(&mut c, "candle:{B}:15m", "15m", "candle:{B}:5m");
    let mut fifteen = rows("rest_klines_BTCUSDT_15m_limit1000.json");
    fifteen.pop();
    let n = compare_with_exchange(&mut c, "candle:{B}:15m", &fifteen);
    assert!(n >= 30, "{n} buckets compared");
}

#[test]
fn a_chain_equals_each_level_derived_straight_from_one_minute() {
    let s = Server::start();
    let mut c = s.conn();
    chain(&mut c);
    for (key, interval) in [(M15, "15m"), (H1, "1h")] {
        let direct = format!("candle:{{BTCUSDT}}:direct{interval}");
        create(&mut c, &direct, interval, M1);
        assert_eq!(merged(&mut c, key), merged(&mut c, &direct), "{interval}");
    }
    assert_eq!(source(&mut c, H1).as_deref(), Some(M15));
    assert_eq!(
        feeds(&mut c, M1),
        vec![
            M5.to_string(),
            "candle:{BTCUSDT}:direct15m".into(),
            "candle:{BTCUSDT}:direct1h".into()
        ]
    );
}

#[test]
fn a_correction_and_a_live_minute_reach_the_end_of_the_chain() {
    let s = Server::start();
    let mut c = s.conn();
    chain(&mut c);
    let hour = merged(&mut c, H1)[1].clone();
    let t = hour["open_time"].as_i64().unwrap();
    // REPLACE correction of one minute inside that hour: a higher high.
    let minute = (t + 60_000).to_string();
    int(
        &mut c,
        &[
            "CANDLE.OFFICIAL_ADD",
            M1,
            &minute,
            "57000",
            "99999.5",
            "50000",
            "57000",
            "1",
        ],
    );
    let after = merged(&mut c, H1)[1].clone();
    assert_eq!(after["high"], "99999.5");
    assert_eq!(after["status"], "official");
    // A live minute after the last one: every level's bucket turns live.
    let last = last_open(&mut c, M1);
    let next = (last + 60_000).to_string();
    live_update(&mut c, M1, &next, ["1", "99999.9", "0.5", "2", "3"]);
    for key in [M5, M15, H1] {
        let bar = merged(&mut c, key).last().unwrap().clone();
        assert_eq!(bar["status"], "live", "{key}");
        assert_eq!(bar["high"], "99999.9", "{key}");
        assert_eq!(bar["close"], "2", "{key}");
    }
    // A live tick folds in everywhere too.
    int(&mut c, &["CANDLE.LIVE_TICK", M1, &next, "100000", "1"]);
    assert_eq!(merged(&mut c, H1).last().unwrap()["high"], "100000");
    // Derived series take no live writes: the source does.
    let e = error(
        &mut c,
        &[
            "CANDLE.LIVE_UPDATE",
            H1,
            &t.to_string(),
            "1",
            "1",
            "1",
            "1",
            "1",
        ],
    );
    assert!(e.contains("derived from"), "{e}");
    let e = error(&mut c, &["CANDLE.LIVE_TICK", M5, &next, "1"]);
    assert!(e.contains("derived from"), "{e}");
}

#[test]
fn refused_creates_leave_nothing_behind() {
    let s = Server::start();
    let mut c = s.conn();
    load(&mut c, M5, "5m", "rest_klines_BTCUSDT_5m_limit1000.json");
    val(&mut c, &["SET", "plain", "x"]);
    let digest = val(&mut c, &["DEBUG", "DIGEST"]);
    for (words, want) in [
        (
            vec!["candle:{BTCUSDT}:3m", "INTERVAL", "3m", "SOURCE", M5],
            "longer",
        ),
        (
            vec!["candle:{ETHUSDT}:1h", "INTERVAL", "1h", "SOURCE", M5],
            "slots",
        ),
        (
            vec![
                "candle:{BTCUSDT}:1h",
                "INTERVAL",
                "1h",
                "SOURCE",
                "candle:{BTCUSDT}:none",
            ],
            "no candle series",
        ),
        (
            vec!["{plain}x", "INTERVAL", "1h", "SOURCE", "plain"],
            "WRONGTYPE",
        ),
        (
            vec![
                "candle:{BTCUSDT}:1h",
                "INTERVAL",
                "1h",
                "SOURCE",
                M5,
                "TIMEZONE",
                "Europe/Berlin",
            ],
            "TIMEZONE aligns",
        ),
        (
            vec![
                "candle:{BTCUSDT}:1d",
                "INTERVAL",
                "1d",
                "SOURCE",
                M5,
                "TIMEZONE",
                "Mars/Base",
            ],
            "IANA",
        ),
        (
            vec![
                "candle:{BTCUSDT}:1d",
                "INTERVAL",
                "1d",
                "SOURCE",
                M5,
                "ALIGN",
                "+05:30",
                "TIMEZONE",
                "Asia/Kolkata",
            ],
            "exclude",
        ),
        (
            vec![
                "candle:{BTCUSDT}:1d",
                "INTERVAL",
                "1d",
                "SOURCE",
                M5,
                "ALIGN",
                "+05:17",
            ],
            "alignments differ",
        ),
        (vec![M5, "INTERVAL", "1h", "SOURCE", M5], "exists"),
    ] {
        let mut all = vec!["CANDLE.CREATE"];
        all.extend(words);
        let e = error(&mut c, &all);
        assert!(e.contains(want), "{all:?}: {e}");
    }
    assert_eq!(val(&mut c, &["DEBUG", "DIGEST"]), digest);
    assert!(feeds(&mut c, M5).is_empty());
    let e = error(
        &mut c,
        &[
            "CANDLE.CREATE",
            "{plain}y",
            "INTERVAL",
            "1h",
            "SOURCE",
            "{plain}",
        ],
    );
    assert!(e.contains("no candle series"), "{e}");
}

#[test]
fn deleting_or_renaming_either_end() {
    let s = Server::start();
    let mut c = s.conn();
    chain(&mut c);
    // RENAME carries the links to the new name, both ways.
    val(&mut c, &["RENAME", M15, "candle:{BTCUSDT}:quarter"]);
    assert_eq!(
        feeds(&mut c, M5),
        vec!["candle:{BTCUSDT}:quarter".to_string()]
    );
    assert_eq!(
        source(&mut c, H1).as_deref(),
        Some("candle:{BTCUSDT}:quarter")
    );
    let last = last_open(&mut c, M1);
    let next = (last + 60_000).to_string();
    live_update(&mut c, M1, &next, ["1", "99999.9", "0.5", "2", "3"]);
    assert_eq!(merged(&mut c, H1).last().unwrap()["high"], "99999.9");
    // DEL of a derived series: its source stops feeding it.
    int(&mut c, &["DEL", H1]);
    assert!(feeds(&mut c, "candle:{BTCUSDT}:quarter").is_empty());
    // DEL of a source: what it fed stays, an ordinary series that takes every write.
    int(&mut c, &["DEL", M1]);
    assert_eq!(source(&mut c, M5), None);
    live_update(
        &mut c,
        M5,
        &(last / 300_000 * 300_000).to_string(),
        ["1", "2", "0.5", "2", "3"],
    );
    // A new key under the old name does not feed the old derived series.
    load(&mut c, M1, "1m", "rest_klines_BTCUSDT_1m_limit1000.json");
    assert_eq!(source(&mut c, M5), None);
    assert!(feeds(&mut c, M1).is_empty());
}

#[test]
fn exchange_history_older_than_the_source_fills_a_derived_series() {
    let s = Server::start();
    let mut c = s.conn();
    load(&mut c, M1, "1m", "rest_klines_BTCUSDT_1m_limit1000.json");
    create(&mut c, M5, "5m", M1);
    let before = merged(&mut c, M5);
    // The 5m REST body: 800 older buckets are stored; those the 1m source covers are its.
    let n = add_json(
        &mut c,
        M5,
        None,
        &fixtures::bytes("rest_klines_BTCUSDT_5m_limit1000.json"),
    );
    let after = merged(&mut c, M5);
    assert_eq!(after.len() as i64, before.len() as i64 + n);
    assert_eq!(&after[after.len() - before.len()..], &before[..]);
    assert!(n > 700, "{n}");
}

#[test]
fn derived_series_survive_reload_restart_aof_and_reach_a_replica() {
    let mut s = Server::start_with(&["--appendonly", "yes", "--appendfsync", "always"], &[]);
    let replica = start_replica(&s);
    let mut c = s.conn();
    chain(&mut c);
    // Ten days of 15m candles: local days of Berlin and of India derived from them.
    load(&mut c, Q15, "15m", "rest_klines_BTCUSDT_15m_limit1000.json");
    for (key, opt, v) in [
        ("candle:{BTCUSDT}:1d", "TIMEZONE", "Europe/Berlin"),
        ("candle:{BTCUSDT}:1dist", "ALIGN", "+05:30"),
    ] {
        val(
            &mut c,
            &[
                "CANDLE.CREATE",
                key,
                "INTERVAL",
                "1d",
                "SOURCE",
                Q15,
                opt,
                v,
            ],
        );
        assert!(merged(&mut c, key).len() >= 9, "{key}");
    }
    let last = last_open(&mut c, M1);
    let next = (last + 60_000).to_string();
    live_update(&mut c, M1, &next, ["1", "99999.9", "0.5", "2", "3"]);
    int(&mut c, &["CANDLE.LIVE_TICK", M1, &next, "3", "1"]);
    val(&mut c, &["RENAME", M15, "candle:{BTCUSDT}:quarter"]);
    int(&mut c, &["CANDLE.LIVE_TICK", M1, &next, "4", "1"]);
    let digest = val(&mut c, &["DEBUG", "DIGEST"]);
    let keys = [
        M1,
        M5,
        Q15,
        "candle:{BTCUSDT}:quarter",
        H1,
        "candle:{BTCUSDT}:1d",
        "candle:{BTCUSDT}:1dist",
    ];
    let snapshot = |c: &mut redis::Connection| -> Vec<(Vec<Json>, Option<String>, Vec<String>)> {
        keys.iter()
            .map(|k| (merged(c, k), source(c, k), feeds(c, k)))
            .collect()
    };
    let want = snapshot(&mut c);
    assert_eq!(want[5].1.as_deref(), Some(Q15));
    assert_eq!(
        info(&mut c, "candle:{BTCUSDT}:1d")["align"],
        redis::Value::BulkString(b"Europe/Berlin".to_vec())
    );
    // The replica holds the same, links included.
    sync_replica(&mut c);
    let mut r = replica.conn();
    assert_eq!(val(&mut r, &["DEBUG", "DIGEST"]), digest);
    assert_eq!(snapshot(&mut r), want);
    // DEBUG RELOAD, an AOF replay (with the RENAME in it), an AOF rewrite, an RDB restart.
    val(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(val(&mut c, &["DEBUG", "DIGEST"]), digest);
    s.restart("NOSAVE");
    let mut c = s.conn();
    assert_eq!(val(&mut c, &["DEBUG", "DIGEST"]), digest, "AOF replay");
    assert_eq!(snapshot(&mut c), want);
    val(&mut c, &["BGREWRITEAOF"]);
    eventually("AOF rewrite", || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(&mut c, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
    s.restart("NOSAVE");
    let mut c = s.conn();
    assert_eq!(val(&mut c, &["DEBUG", "DIGEST"]), digest, "AOF rewrite");
    s.restart_with("SAVE", &["--appendonly", "no"]);
    let mut c = s.conn();
    assert_eq!(val(&mut c, &["DEBUG", "DIGEST"]), digest, "RDB");
    // The rules still run after all that.
    int(&mut c, &["CANDLE.LIVE_TICK", M1, &next, "100001", "1"]);
    assert_eq!(merged(&mut c, H1).last().unwrap()["high"], "100001");
    let q_last = last_open(&mut c, Q15);
    let q_next = (q_last + 900_000 + 1).to_string();
    int(&mut c, &["CANDLE.LIVE_TICK", Q15, &q_next, "100002", "1"]);
    for key in ["candle:{BTCUSDT}:1d", "candle:{BTCUSDT}:1dist"] {
        let bar = merged(&mut c, key).last().unwrap().clone();
        assert_eq!(
            (bar["high"].as_str(), bar["status"].as_str()),
            (Some("100002"), Some("live")),
            "{key}"
        );
    }
}

#[test]
fn copy_dump_and_restore_keep_the_rule_only_where_both_ends_agree() {
    let s = Server::start();
    let mut c = s.conn();
    chain(&mut c);
    let dump: Vec<u8> = q(&mut c, &["DUMP", H1]).unwrap();
    // DUMP/RESTORE under the same name keeps the link (the source still lists it).
    int(&mut c, &["DEL", H1]);
    redis::cmd("RESTORE")
        .arg(H1)
        .arg(0)
        .arg(&dump)
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(source(&mut c, H1).as_deref(), Some(M15));
    // A copy is an ordinary series: its source does not list it.
    int(&mut c, &["COPY", H1, "candle:{BTCUSDT}:copy"]);
    assert_eq!(source(&mut c, "candle:{BTCUSDT}:copy"), None);
    int(&mut c, &["COPY", M1, "candle:{BTCUSDT}:copy1m"]);
    assert!(feeds(&mut c, "candle:{BTCUSDT}:copy1m").is_empty());
    let before = merged(&mut c, M5);
    let last = last_open(&mut c, M1);
    live_update(
        &mut c,
        "candle:{BTCUSDT}:copy1m",
        &(last + 60_000).to_string(),
        ["1", "2", "0.5", "2", "3"],
    );
    assert_eq!(merged(&mut c, M5), before);
}

#[test]
fn seal_finishes_tick_built_candles_and_their_derived_buckets() {
    let s = Server::start();
    let mut c = s.conn();
    let trades: Vec<(i64, String, String)> = fixtures::lines("ws_aggTrade_combined.jsonl")
        .iter()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .filter(|f| f["stream"] == "btcusdt@aggTrade")
        .map(|f| {
            let d = &f["data"];
            (
                d["T"].as_i64().unwrap(),
                d["p"].as_str().unwrap().into(),
                d["q"].as_str().unwrap().into(),
            )
        })
        .collect();
    // A market with no official candles: seconds built from its trades, minutes from those.
    val(
        &mut c,
        &[
            "CANDLE.CREATE",
            "candle:{T}:1s",
            "INTERVAL",
            "1s",
            "LIVE_MAX",
            "1000",
        ],
    );
    val(
        &mut c,
        &[
            "CANDLE.CREATE",
            "candle:{T}:1m",
            "INTERVAL",
            "1m",
            "SOURCE",
            "candle:{T}:1s",
        ],
    );
    for (t, p, qty) in &trades {
        int(
            &mut c,
            &["CANDLE.LIVE_TICK", "candle:{T}:1s", &t.to_string(), p, qty],
        );
    }
    let minutes = merged(&mut c, "candle:{T}:1m");
    assert!(!minutes.is_empty() && minutes.iter().all(|b| b["status"] == "live"));
    // Seal everything up to the last whole minute: those seconds turn official.
    let last = trades.last().unwrap().0;
    let minute_end = last / 60_000 * 60_000;
    let live_seconds = |c: &mut redis::Connection| {
        merged(c, "candle:{T}:1s")
            .iter()
            .filter(|b| b["status"] == "live")
            .count() as i64
    };
    let before = live_seconds(&mut c);
    let n = int(
        &mut c,
        &["CANDLE.SEAL", "candle:{T}:1s", &minute_end.to_string()],
    );
    assert!(n > 0);
    assert_eq!(live_seconds(&mut c), before - n);
    let sealed = merged(&mut c, "candle:{T}:1s");
    assert!(sealed
        .iter()
        .all(|b| (b["status"] == "official") == (b["open_time"].as_i64().unwrap() < minute_end)));
    assert_eq!(
        int(
            &mut c,
            &["CANDLE.SEAL", "candle:{T}:1s", &minute_end.to_string()]
        ),
        0
    );
    // A minute whose every second traded and was sealed is an official derived minute: the
    // recorded trades, one per second, through a whole minute.
    val(
        &mut c,
        &[
            "CANDLE.CREATE",
            "candle:{U}:1s",
            "INTERVAL",
            "1s",
            "LIVE_MAX",
            "1000",
        ],
    );
    val(
        &mut c,
        &[
            "CANDLE.CREATE",
            "candle:{U}:1m",
            "INTERVAL",
            "1m",
            "SOURCE",
            "candle:{U}:1s",
        ],
    );
    let m0 = 1_617_566_640_000; // 2021-04-04T20:04:00Z, inside the recording
    for (i, (_, p, qty)) in trades.iter().take(60).enumerate() {
        let t = (m0 + i as i64 * 1000 + 7).to_string();
        int(&mut c, &["CANDLE.LIVE_TICK", "candle:{U}:1s", &t, p, qty]);
    }
    assert_eq!(merged(&mut c, "candle:{U}:1m")[0]["status"], "live");
    assert_eq!(
        int(
            &mut c,
            &["CANDLE.SEAL", "candle:{U}:1s", &(m0 + 60_000).to_string()]
        ),
        60
    );
    let minute = &merged(&mut c, "candle:{U}:1m")[0];
    assert_eq!(minute["status"], "official");
    assert_eq!(minute["open"], strip(&trades[0].1));
    assert_eq!(minute["close"], strip(&trades[59].1));
    let e = error(
        &mut c,
        &["CANDLE.SEAL", "candle:{T}:1m", &minute_end.to_string()],
    );
    assert!(e.contains("derived from"), "{e}");
    assert!(error(&mut c, &["CANDLE.SEAL", "candle:{T}:1s", "soon"]).contains("invalid"));
    assert!(error(&mut c, &["CANDLE.SEAL", "candle:{T}:none", "1"]).contains("no candle series"));
}

#[test]
fn derived_writes_fire_keyspace_events() {
    let s = Server::start();
    let mut c = s.conn();
    val(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEd"]);
    load(&mut c, M1, "1m", "rest_klines_BTCUSDT_1m_limit1000.json");
    create(&mut c, M5, "5m", M1);
    let mut sub = s.conn();
    let mut ps = sub.as_pubsub();
    ps.psubscribe("__keyspace@0__:candle:*").unwrap();
    ps.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let last = last_open(&mut c, M1);
    live_update(
        &mut c,
        M1,
        &(last + 60_000).to_string(),
        ["1", "2", "0.5", "2", "3"],
    );
    let mut got = Vec::new();
    while got.len() < 2 {
        let m = ps.get_message().unwrap();
        got.push((
            m.get_channel_name().to_string(),
            m.get_payload::<String>().unwrap(),
        ));
    }
    assert_eq!(
        got,
        vec![
            (format!("__keyspace@0__:{M1}"), "candle.live".to_string()),
            (format!("__keyspace@0__:{M5}"), "candle.live".to_string()),
        ]
    );
}

#[test]
fn links_to_long_key_names_survive_a_reload() {
    let s = Server::start();
    let mut c = s.conn();
    load(&mut c, M1, "1m", "rest_klines_BTCUSDT_1m_limit1000.json");
    create(&mut c, M5, "5m", M1);
    // A 100 KB name (Redis allows up to 512 MB): the link follows the RENAME and is saved.
    let long = format!("candle:{{BTCUSDT}}:{}", "x".repeat(100_000));
    val(&mut c, &["RENAME", M5, &long]);
    let digest = val(&mut c, &["DEBUG", "DIGEST"]);
    val(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(val(&mut c, &["DEBUG", "DIGEST"]), digest);
    assert_eq!(feeds(&mut c, M1), vec![long.clone()]);
    assert_eq!(source(&mut c, &long).as_deref(), Some(M1));
}
