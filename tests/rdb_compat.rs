//! Encoding compatibility and hostile payloads.
//!
//! `tests/fixtures/v1.rdb` was written by the module at encoding version 1 (rc-series ENCVER 1,
//! and the tick book's version 1 once TICKS.* exists) from real Binance fixtures; every key must
//! read back exactly as recorded in `tests/fixtures/v1.expected.json`: after loading the file,
//! after re-saving it with today's code (DEBUG RELOAD) and after an AOF rewrite + restart.
//! A format change must keep this test green: bump the type's encoding version and keep
//! reading the old one. Never regenerate v1.rdb with a newer format (add a v2.rdb instead).
//! Regenerate it only while it is missing (or v1 never shipped):
//!
//! ```sh
//! cargo build --release && cargo test --release --test rdb_compat -- --ignored generate_v1_rdb
//! ```
//!
//! `RESTORE` of a corrupted `DUMP` is refused and the server keeps running: a bad checksum
//! (Redis refuses), and valid checksums over corrupted module payloads (the module refuses).

use candles_testkit::fixtures;
use candles_testkit::server::*;
use redis::{Connection, Value};
use serde_json::{json, Map, Value as Json};
use std::path::PathBuf;

const REST_1M: &str = "rest_klines_BTCUSDT_1m_limit1000.json";
const REST_15M: &str = "rest_klines_BTCUSDT_15m_limit1000.json";
const AGG: &str = "ws_aggTrade_combined.jsonl";

/// The committed RDB files of older encodings.
fn rdb_fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Servers here manage their own persistence (whatever `CANDLES_TEST_PERSISTENCE` says): no
/// AOF at start (an AOF would be loaded instead of dump.rdb) and no background saves.
const NO_PERSIST: [&str; 4] = ["--appendonly", "no", "--save", ""];

fn rows(name: &str) -> Vec<Json> {
    serde_json::from_slice(&fixtures::bytes(name)).unwrap()
}

fn s(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn words_cmd(words: &[String]) -> redis::Cmd {
    let mut c = redis::cmd(&words[0]);
    for w in &words[1..] {
        c.arg(w.as_bytes());
    }
    c
}

fn run(c: &mut Connection, words: &[String]) -> Value {
    words_cmd(words)
        .query(c)
        .unwrap_or_else(|e| panic!("{:?}: {e}", &words[..2.min(words.len())]))
}

fn w(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

/// A RESP value as JSON (bulk strings as text, nil as null), for the expectations file.
fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Int(i) => json!(i),
        Value::BulkString(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Json::String(s.clone()),
        Value::Okay => Json::String("OK".into()),
        Value::Array(a) | Value::Set(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Double(d) => json!(d),
        Value::Boolean(b) => json!(b),
        Value::Map(m) => Json::Array(
            m.iter()
                .flat_map(|(k, v)| [to_json(k), to_json(v)])
                .collect(),
        ),
        other => Json::String(format!("{other:?}")),
    }
}

/// A flat field/value reply without the fields that measure memory (they may change with the
/// in-memory layout, or with the reads that filled the chart cache, while the data stays the
/// same).
fn without_memory(v: Json) -> Json {
    let Json::Array(a) = v else { return v };
    Json::Array(
        a.chunks(2)
            .filter(|p| {
                !matches!(
                    p[0].as_str(),
                    Some("memory_usage" | "memory" | "json_cache_bytes")
                )
            })
            .flat_map(|p| p.to_vec())
            .collect(),
    )
}

/// CANDLE.INFO fields added after encoding version 1 (derived series), with the value every
/// series written at version 1 must show: an old series reads as a UTC series with no links.
/// Checked here, then left out of the comparison with what version 1 recorded.
fn without_later_fields(v: Json) -> Json {
    let Json::Array(a) = v else { return v };
    let later = [
        ("align", json!("UTC")),
        ("source", Json::Null),
        ("feeds", json!([])),
    ];
    let mut kept = Vec::new();
    for p in a.chunks(2) {
        match later.iter().find(|(name, _)| p[0].as_str() == Some(name)) {
            Some((name, default)) => {
                assert_eq!(&p[1], default, "CANDLE.INFO {name} of a version-1 series")
            }
            None => kept.extend(p.iter().cloned()),
        }
    }
    Json::Array(kept)
}

/// `FORMAT JSON` replies kept as parsed JSON (readable diffs); INFO without memory fields
/// (and, for candle series, with the later fields checked and set aside).
fn normalize(words: &[String], reply: Json) -> Json {
    if words[0] == "CANDLE.INFO" {
        return without_later_fields(without_memory(reply));
    }
    if words[0].ends_with(".INFO") {
        return without_memory(reply);
    }
    match (&reply, words.last().map(String::as_str)) {
        (Json::String(text), Some("JSON")) => serde_json::from_str(text).unwrap_or(reply),
        _ => reply,
    }
}

fn ticks_registered(c: &mut Connection) -> bool {
    let v: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("TICKS.PUSH")
        .query(c)
        .unwrap();
    v.first().is_some_and(|e| !matches!(e, Value::Nil))
}

/// The reads recorded for a key: a list of (command words, reply) — the command words are kept
/// in the file so the check replays exactly what was recorded.
fn reads_for(c: &mut Connection, key: &str) -> Vec<(Vec<String>, Json)> {
    let ty: String = redis::cmd("TYPE").arg(key).query(c).unwrap();
    let mut reads: Vec<Vec<String>> = vec![w(&["TYPE", key]), w(&["DEBUG", "DIGEST-VALUE", key])];
    match ty.as_str() {
        "rc-series" => {
            reads.push(w(&[
                "CANDLE.RANGE_MERGED",
                key,
                "-",
                "+",
                "FULL",
                "FORMAT",
                "JSON",
            ]));
            reads.push(w(&[
                "CANDLE.RANGE_MERGED",
                key,
                "-",
                "+",
                "COUNT",
                "5",
                "FULL",
            ]));
            reads.push(w(&["CANDLE.LIVE", key, "FULL", "FORMAT", "JSON"]));
            reads.push(w(&["CANDLE.INFO", key]));
            let info = run(c, &w(&["CANDLE.INFO", key]));
            let info = to_json(&info);
            let field = |name: &str| {
                info.as_array()
                    .unwrap()
                    .chunks(2)
                    .find(|p| p[0] == name)
                    .map(|p| p[1].clone())
            };
            if let (Some(Json::Number(a)), Some(Json::Number(b))) =
                (field("first_official"), field("last_official"))
            {
                reads.push(w(&["CANDLE.GAPS", key, &a.to_string(), &b.to_string()]));
            }
        }
        "tickbook1" => {
            reads.push(w(&["TICKS.STREAMS", key]));
            reads.push(w(&["TICKS.INFO", key]));
            reads.push(w(&[
                "TICKS.MERGED",
                key,
                "COUNT",
                "100000",
                "FORMAT",
                "JSON",
            ]));
            let streams = to_json(&run(c, &w(&["TICKS.STREAMS", key])));
            for st in streams.as_array().unwrap() {
                let name = st[0].as_str().unwrap().to_owned();
                reads.push(w(&["TICKS.RANGE", key, &name, "-", "+", "FORMAT", "JSON"]));
                reads.push(w(&["TICKS.LATEST", key, &name, "COUNT", "3"]));
            }
        }
        other => panic!("{key}: unexpected type {other}"),
    }
    reads
        .into_iter()
        .map(|words| {
            let reply = normalize(&words, to_json(&run(c, &words)));
            (words, reply)
        })
        .collect()
}

fn fill(c: &mut Connection) -> Vec<String> {
    let mut keys = Vec::new();

    // 1000 official 1m candles (every Binance field) + 3 live ones; live candles never expire.
    let k = "candle:{BTCUSDT}:1m";
    run(
        c,
        &w(&["CANDLE.CREATE", k, "INTERVAL", "1m", "LIVE_TTL", "0"]),
    );
    let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
        .arg(k)
        .arg("JSON")
        .arg(fixtures::bytes(REST_1M))
        .query(c)
        .unwrap();
    assert_eq!(n, 1000);
    let r = rows(REST_1M);
    let last_t = r[999][0].as_i64().unwrap();
    for (i, row) in r[990..992].iter().enumerate() {
        let t = (last_t + 60_000 * (i as i64 + 1)).to_string();
        let mut words = w(&["CANDLE.LIVE_UPDATE", k, &t]);
        words.extend((1..6).map(|f| s(&row[f])));
        assert_eq!(run(c, &words), Value::Int(1));
    }
    let t = (last_t + 3 * 60_000 + 1234).to_string();
    assert_eq!(
        run(c, &w(&["CANDLE.LIVE_TICK", k, &t, "56123.45", "0.00321"])),
        Value::Int(1)
    );
    keys.push(k.to_owned());

    // 1M, DUPLICATE_POLICY BLOCK, RETENTION 12, LIVE_MAX 2: real 15m OHLCV values at month opens.
    let k = "candle:{BTCUSDT}:1M";
    run(
        c,
        &w(&[
            "CANDLE.CREATE",
            k,
            "INTERVAL",
            "1M",
            "RETENTION",
            "12",
            "LIVE_TTL",
            "0",
            "LIVE_MAX",
            "2",
            "DUPLICATE_POLICY",
            "BLOCK",
        ]),
    );
    let r15 = rows(REST_15M);
    // Month starts 2023-01 .. 2024-06 (UTC), ms.
    let months: Vec<i64> = (0..18)
        .map(|i| {
            let (y, m) = (2023 + i / 12, 1 + i % 12);
            days_from_civil(y, m) * 86_400_000
        })
        .collect();
    let mut add = w(&["CANDLE.OFFICIAL_ADD", k]);
    for (i, t) in months[..15].iter().enumerate() {
        add.push(t.to_string());
        add.extend((1..6).map(|f| s(&r15[i * 7][f])));
    }
    assert_eq!(run(c, &add), Value::Int(12));
    for (i, t) in months[15..].iter().enumerate() {
        let mut words = w(&["CANDLE.LIVE_UPDATE", k, &t.to_string()]);
        words.extend((1..6).map(|f| s(&r15[200 + i][f])));
        assert_eq!(run(c, &words), Value::Int(1));
    }
    keys.push(k.to_owned());

    // 15m, DUPLICATE_POLICY KEEP, LIVE_MAX 10: a whole REST body.
    let k = "candle:{BTCUSDT}:15m";
    run(
        c,
        &w(&[
            "CANDLE.CREATE",
            k,
            "INTERVAL",
            "15m",
            "LIVE_TTL",
            "0",
            "DUPLICATE_POLICY",
            "KEEP",
            "LIVE_MAX",
            "10",
        ]),
    );
    let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
        .arg(k)
        .arg("JSON")
        .arg(fixtures::bytes(REST_15M))
        .query(c)
        .unwrap();
    assert_eq!(n, 1000);
    keys.push(k.to_owned());

    if ticks_registered(c) {
        // A tick book: aggTrade documents per symbol stream (JSON form, exact numbers kept),
        // and a field/value stream trimmed by MAXLEN.
        let k = "ticks:{binance}:2021-04-04";
        for line in fixtures::lines(AGG).iter().take(400) {
            let frame: Json = serde_json::from_str(line).unwrap();
            let stream = frame["stream"].as_str().unwrap();
            let doc = serde_json::to_string(&frame["data"]).unwrap();
            run(
                c,
                &w(&[
                    "TICKS.PUSH",
                    k,
                    stream,
                    "MAXLEN",
                    "100",
                    "TIMEFIELD",
                    "T",
                    "JSON",
                    &doc,
                ]),
            );
        }
        for (i, row) in r[..8].iter().enumerate() {
            let t = (row[0].as_i64().unwrap() + i as i64).to_string();
            run(
                c,
                &w(&[
                    "TICKS.PUSH",
                    k,
                    "mark:BTCUSDT",
                    "MAXLEN",
                    "5",
                    &t,
                    "price",
                    &s(&row[4]),
                    "note",
                    "bin\u{1}ary",
                ]),
            );
        }
        keys.push(k.to_owned());
    } else {
        println!("note: TICKS.* not registered: the fixture has no tick book");
    }
    keys
}

/// Days since 1970-01-01 of the first day of month `m` of year `y` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[test]
#[ignore = "writes tests/fixtures/v1.rdb and v1.expected.json; run only when they are missing"]
fn generate_v1_rdb() {
    let dir = rdb_fixtures_dir();
    let rdb = dir.join("v1.rdb");
    assert!(
        !rdb.exists() || std::env::var("CANDLES_OVERWRITE_V1").is_ok(),
        "{} exists: it must stay what version 1 wrote (set CANDLES_OVERWRITE_V1=1 only if v1 never shipped)",
        rdb.display()
    );
    let server = Server::start_with(&NO_PERSIST, &[]);
    let mut c = server.conn();
    let keys = fill(&mut c);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(server.dir.path().join("dump.rdb"), &rdb).unwrap();
    let mut expected = Map::new();
    for k in &keys {
        let reads: Vec<Json> = reads_for(&mut c, k)
            .into_iter()
            .map(|(words, reply)| json!({"cmd": words, "reply": reply}))
            .collect();
        expected.insert(k.clone(), Json::Array(reads));
    }
    let redis_version = info_field(&mut c, "server", "redis_version").unwrap_or_default();
    let doc = json!({
        "written_by": format!("redis-candles {} on redis-server {redis_version}", env!("CARGO_PKG_VERSION")),
        "encodings": {"rc-series": 1, "tickbook1": if keys.iter().any(|k| k.starts_with("ticks:")) { json!(1) } else { Json::Null }},
        "keys": expected,
    });
    std::fs::write(dir.join("v1.expected.json"), layout(&doc, 0) + "\n").unwrap();
}

/// JSON laid out for readable diffs: one candle / tick / reply row per line.
fn layout(v: &Json, depth: usize) -> String {
    let pad = "  ".repeat(depth + 1);
    let end = "  ".repeat(depth);
    let nested = |v: &Json| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|x| x.is_array() || x.is_object()))
    };
    match v {
        Json::Object(m) if !m.is_empty() && depth <= 3 => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{pad}{}: {}", Json::String(k.clone()), layout(x, depth + 1)))
                .collect();
            format!("{{\n{}\n{end}}}", items.join(",\n"))
        }
        Json::Array(a) if nested(v) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| {
                    format!(
                        "{pad}{}",
                        if (x.is_object() && depth < 3) || nested(x) {
                            layout(x, depth + 1)
                        } else {
                            x.to_string()
                        }
                    )
                })
                .collect();
            format!("[\n{}\n{end}]", items.join(",\n"))
        }
        other => other.to_string(),
    }
}

fn expected() -> Map<String, Json> {
    let text = std::fs::read_to_string(rdb_fixtures_dir().join("v1.expected.json"))
        .expect("tests/fixtures/v1.expected.json");
    let doc: Json = serde_json::from_str(&text).unwrap();
    doc["keys"].as_object().unwrap().clone()
}

fn check_all(c: &mut Connection, expected: &Map<String, Json>, stage: &str) {
    let dbsize: i64 = redis::cmd("DBSIZE").query(c).unwrap();
    assert_eq!(dbsize as usize, expected.len(), "{stage}: key count");
    for (key, reads) in expected {
        for r in reads.as_array().unwrap() {
            let words: Vec<String> = r["cmd"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            let reply = normalize(&words, to_json(&run(c, &words)));
            let what = if words[0] == "DEBUG" {
                " (the digest is over the canonical encoding: a changed digest means today's code \
                 re-encodes old data differently — keep reading the old format and record the new digest \
                 deliberately)"
            } else {
                ""
            };
            assert!(
                reply == r["reply"],
                "{stage}: {key}: {:?} differs{what}\n got: {}\nwant: {}",
                &words,
                trunc(&reply),
                trunc(&r["reply"])
            );
        }
    }
}

fn trunc(v: &Json) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{}… ({} bytes)", &s[..600], s.len())
    } else {
        s
    }
}

#[test]
fn v1_rdb_reads_back_exactly() {
    let rdb = rdb_fixtures_dir().join("v1.rdb");
    let expected = expected();
    let mut server = Server::start_with(&NO_PERSIST, &[]);
    std::fs::copy(&rdb, server.dir.path().join("dump.rdb")).unwrap();
    server.restart("NOSAVE");
    let mut c = server.conn();
    let keys_with_ticks = expected.keys().any(|k| k.starts_with("ticks:"));
    if keys_with_ticks {
        assert!(
            ticks_registered(&mut c),
            "v1.rdb holds a tick book but TICKS.* is not registered"
        );
    }
    check_all(&mut c, &expected, "loaded v1.rdb");

    // Today's code writes it back and reads it again.
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    check_all(&mut c, &expected, "after DEBUG RELOAD");

    // AOF: a rewrite of the old data (CANDLE.APPLY / TICKS.APPLY snapshots), then a restart
    // that loads only the AOF.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query(&mut c)
        .unwrap();
    eventually("AOF rewrite", || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(&mut c, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
            && info_field(&mut c, "persistence", "aof_last_bgrewrite_status").as_deref()
                == Some("ok")
            && info_field(&mut c, "persistence", "aof_enabled").as_deref() == Some("1")
    });
    std::fs::remove_file(server.dir.path().join("dump.rdb")).unwrap();
    server.restart_with("NOSAVE", &["--appendonly", "yes"]);
    let mut c = server.conn();
    check_all(&mut c, &expected, "after AOF rewrite + restart");
    assert!(
        server.log().contains("DB loaded from append only file")
            || server.log().contains("append only file"),
        "{}",
        server.log()
    );
}

/// CRC-64/Jones as Redis computes it (reflected, poly 0xad93d23594c935a9, init 0, no xorout).
fn crc64(data: &[u8]) -> u64 {
    const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Replaces the CRC footer of a DUMP payload with the right one for its body.
fn reseal(mut payload: Vec<u8>) -> Vec<u8> {
    let n = payload.len() - 8;
    let crc = crc64(&payload[..n]);
    payload[n..].copy_from_slice(&crc.to_le_bytes());
    payload
}

/// Where the module's string buffer lies in a DUMP of a module value written with
/// `rdbcompression no`: type byte (7, module v2), module id (0x81 + 8 bytes), the string
/// opcode (5), the string length (RDB length encoding), the bytes; then the EOF opcode (0),
/// the 2-byte RDB version and the 8-byte CRC.
fn module_blob(payload: &[u8]) -> std::ops::Range<usize> {
    assert_eq!(payload[0], 7, "RDB_TYPE_MODULE_2");
    assert_eq!(payload[1], 0x81, "64-bit module id");
    let mut p = 10;
    assert_eq!(payload[p], 5, "RDB_MODULE_OPCODE_STRING");
    p += 1;
    let (len, hdr) = match payload[p] >> 6 {
        0 => (usize::from(payload[p] & 0x3f), 1),
        1 => (
            (usize::from(payload[p] & 0x3f) << 8) | usize::from(payload[p + 1]),
            2,
        ),
        2 if payload[p] == 0x80 => (
            u32::from_be_bytes(payload[p + 1..p + 5].try_into().unwrap()) as usize,
            5,
        ),
        2 if payload[p] == 0x81 => (
            u64::from_be_bytes(payload[p + 1..p + 9].try_into().unwrap()) as usize,
            9,
        ),
        _ => panic!("compressed or encoded string in the DUMP (rdbcompression must be no)"),
    };
    let start = p + hdr;
    assert_eq!(
        start + len + 1 + 2 + 8,
        payload.len(),
        "layout of the DUMP payload"
    );
    assert_eq!(payload[start + len], 0, "RDB_MODULE_OPCODE_EOF");
    start..start + len
}

fn restore(c: &mut Connection, key: &str, payload: &[u8]) -> redis::RedisResult<Value> {
    redis::cmd("RESTORE")
        .arg(key)
        .arg(0)
        .arg(payload)
        .arg("REPLACE")
        .query(c)
}

fn alive(c: &mut Connection) {
    let pong: String = redis::cmd("PING")
        .query(c)
        .expect("server still answers after a hostile RESTORE");
    assert_eq!(pong, "PONG");
}

#[test]
fn restore_refuses_corrupt_dumps() {
    assert_eq!(
        crc64(b"123456789"),
        0xe9c6_d914_c4b8_d9ca,
        "CRC-64/Jones check value"
    );
    let server = Server::start_with(&NO_PERSIST, &[]);
    let mut c = server.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdbcompression")
        .arg("no")
        .query(&mut c)
        .unwrap();
    let key = "candle:{BTCUSDT}:1m";
    let body = serde_json::to_vec(&rows(REST_1M)[..300]).unwrap();
    let _: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
        .arg(key)
        .arg("INTERVAL")
        .arg("1m")
        .arg("JSON")
        .arg(body)
        .query(&mut c)
        .unwrap();
    let last_t: i64 = rows(REST_1M)[299][0].as_i64().unwrap();
    let _: i64 = redis::cmd("CANDLE.LIVE_UPDATE")
        .arg(key)
        .arg(last_t + 60_000)
        .arg(1)
        .arg(2)
        .arg(1)
        .arg(2)
        .arg(3)
        .query(&mut c)
        .unwrap();
    let dump: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
    let digest: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query(&mut c)
        .unwrap();
    let blob = module_blob(&dump);

    // The untouched payload restores to the same value; re-sealing an unchanged payload is a no-op.
    assert_eq!(reseal(dump.clone()), dump, "our CRC-64 matches Redis'");
    restore(&mut c, "copy", &dump).unwrap();
    let d2: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg("copy")
        .query(&mut c)
        .unwrap();
    assert_eq!(d2, digest);

    // 1. Bad checksum: Redis refuses before the module sees anything.
    let mut bad = dump.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x5a;
    let e = restore(&mut c, "x", &bad).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    alive(&mut c);

    // 2. Valid checksums over corrupted module payloads: the module refuses (`Bad data format`).
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut version = dump.clone();
    version[blob.start] = 0xee; // unknown series encoding version
    cases.push(("series version byte", version));
    let mut interval = dump.clone();
    interval[blob.start + 1] = 0x7f; // unknown interval code
    cases.push(("interval code", interval));
    let mut policy = dump.clone();
    policy[blob.start + 2] = 9; // unknown duplicate policy
    cases.push(("policy code", policy));
    let mut trailing = dump.clone();
    trailing[blob.end - 1] ^= 0xff; // inside the live region at the end of the buffer
    cases.push(("last byte of the series", trailing));
    // The string buffer's length made longer / shorter than the payload: Redis' own reader
    // fails mid-value (needs the module's HANDLE_IO_ERRORS not to be fatal).
    let len_at = blob.start - 1; // last byte of the length encoding
    let mut longer = dump.clone();
    longer[len_at] = longer[len_at].wrapping_add(7);
    cases.push(("string length +7", longer));
    let mut shorter = dump.clone();
    shorter[len_at] = shorter[len_at].wrapping_sub(3);
    cases.push(("string length -3", shorter));
    // A module id of another type.
    let mut id = dump.clone();
    id[9] ^= 0x01; // the module type's encoding version lives in the id's low bits
    cases.push(("module id / encoding version", id));
    for (what, payload) in cases {
        let payload = reseal(payload);
        let r = restore(&mut c, "x", &payload);
        assert!(
            r.is_err(),
            "{what}: a corrupted payload with a valid checksum was accepted: {r:?}"
        );
        alive(&mut c);
        let exists: i64 = redis::cmd("EXISTS").arg("x").query(&mut c).unwrap();
        assert_eq!(exists, 0, "{what}: nothing restored");
    }

    // 3. The generic cases, then 300 random bit flips of the series bytes (checksum valid):
    //    each is refused or restores a value that reads, re-dumps and digests without harm.
    //    The columnar encoding is dense and has no checksum of its own (the DUMP/RDB CRC-64 is
    //    the integrity check): most flips give another valid series, which is fine as long as
    //    it is a valid one.
    let read = |c: &mut Connection, k: &str| {
        run(
            c,
            &w(&["CANDLE.RANGE_MERGED", k, "-", "+", "FULL", "FORMAT", "JSON"]),
        );
        run(c, &w(&["CANDLE.INFO", k]));
        run(c, &w(&["CANDLE.LIVE", k]));
    };
    let (refused, accepted) = hostile_restores(&mut c, &dump, 300, &read);
    println!("series random corruptions: {refused} refused, {accepted} accepted as different valid series");
    assert!(refused > 0 && refused + accepted == 300);
    // The original value is untouched by all of this.
    let d3: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query(&mut c)
        .unwrap();
    assert_eq!(d3, digest);
    assert!(
        !server.log().contains("Guru Meditation"),
        "{}",
        server.log()
    );
}

/// The generic hostile cases for a DUMP of a module value: the first payload byte (format
/// magic / version), the string length, the module id, then `flips` random bit flips. Every
/// case is refused or restores a value that `read` can read and that DUMPs/RESTOREs again.
/// Returns (refused, accepted) of the random flips.
fn hostile_restores(
    c: &mut Connection,
    dump: &[u8],
    flips: usize,
    read: &dyn Fn(&mut Connection, &str),
) -> (usize, usize) {
    let blob = module_blob(dump);
    let mut fixed: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut first = dump.to_vec();
    first[blob.start] ^= 0xff;
    fixed.push(("first payload byte", first));
    let len_at = blob.start - 1;
    let mut longer = dump.to_vec();
    longer[len_at] = longer[len_at].wrapping_add(7);
    fixed.push(("string length +7", longer));
    let mut shorter = dump.to_vec();
    shorter[len_at] = shorter[len_at].wrapping_sub(3);
    fixed.push(("string length -3", shorter));
    let mut id = dump.to_vec();
    id[9] ^= 0x01;
    fixed.push(("module id / encoding version", id));
    for (what, payload) in fixed {
        let r = restore(c, "x", &reseal(payload));
        assert!(
            r.is_err(),
            "{what}: a corrupted payload with a valid checksum was accepted: {r:?}"
        );
        alive(c);
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut refused, mut accepted) = (0, 0);
    for _ in 0..flips {
        let mut p = dump.to_vec();
        for _ in 0..1 + next() % 4 {
            let at = blob.start + (next() as usize) % blob.len();
            p[at] ^= 1 << (next() % 8);
        }
        match restore(c, "fuzz", &reseal(p)) {
            Err(_) => refused += 1,
            Ok(_) => {
                accepted += 1;
                read(c, "fuzz");
                let again: Vec<u8> = redis::cmd("DUMP").arg("fuzz").query(c).unwrap();
                restore(c, "fuzz2", &again).expect("a value the module accepted must DUMP/RESTORE");
            }
        }
        alive(c);
    }
    (refused, accepted)
}

#[test]
fn restore_refuses_corrupt_tick_book_dumps() {
    let server = Server::start_with(&NO_PERSIST, &[]);
    let mut c = server.conn();
    if !ticks_registered(&mut c) {
        println!("note: TICKS.* not registered: tick-book RESTORE checks skipped");
        return;
    }
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdbcompression")
        .arg("no")
        .query(&mut c)
        .unwrap();
    let key = "ticks:{binance}:2021-04-04";
    for line in fixtures::lines(AGG).iter().take(200) {
        let frame: Json = serde_json::from_str(line).unwrap();
        let doc = serde_json::to_string(&frame["data"]).unwrap();
        let stream = frame["stream"].as_str().unwrap();
        run(
            &mut c,
            &w(&[
                "TICKS.PUSH",
                key,
                stream,
                "MAXLEN",
                "64",
                "TIMEFIELD",
                "T",
                "JSON",
                &doc,
            ]),
        );
    }
    run(
        &mut c,
        &w(&["TICKS.PUSH", key, "mark", "1617566591314", "p", "58001.03"]),
    );
    let dump: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
    let digest = run(&mut c, &w(&["DEBUG", "DIGEST-VALUE", key]));
    restore(&mut c, "copy", &dump).unwrap();
    assert_eq!(run(&mut c, &w(&["DEBUG", "DIGEST-VALUE", "copy"])), digest);

    let mut bad = dump.clone();
    let n = bad.len();
    bad[n - 3] ^= 0x10;
    let e = restore(&mut c, "x", &bad).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    alive(&mut c);

    let read = |c: &mut Connection, k: &str| {
        let streams = to_json(&run(c, &w(&["TICKS.STREAMS", k])));
        for s in streams.as_array().unwrap() {
            let name = s[0].as_str().unwrap().to_owned();
            run(
                c,
                &w(&["TICKS.RANGE", k, &name, "-", "+", "FORMAT", "JSON"]),
            );
        }
        run(c, &w(&["TICKS.MERGED", k, "COUNT", "1000"]));
        run(c, &w(&["TICKS.INFO", k]));
    };
    let (refused, accepted) = hostile_restores(&mut c, &dump, 300, &read);
    println!("tick book random corruptions: {refused} refused, {accepted} accepted as different valid books");
    assert!(refused > 0 && refused + accepted == 300);
    assert_eq!(run(&mut c, &w(&["DEBUG", "DIGEST-VALUE", key])), digest);
    assert!(
        !server.log().contains("Guru Meditation"),
        "{}",
        server.log()
    );
}
