//! TICKS.* against a real redis-server with the module: caps, out-of-order times, merged reads,
//! JSON documents in the original design's shape, real Binance aggTrade frames, persistence
//! (DEBUG RELOAD, RDB restart, AOF rewrite), replication, COPY/DUMP/RESTORE, notifications,
//! lazy free, INFO counters and every error path.

use candles_testkit::fixtures;
use candles_testkit::server::*;
use redis::Value;

const ORIGINAL: &str = r#"{"ft": 1752810305, "token": "26001", "lp": 125.5, "pc": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}"#;
const AGG: &str = "ws_aggTrade_combined.jsonl";

fn compact(doc: &str) -> String {
    doc.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Runs a command given as byte strings.
fn qb<T: redis::FromRedisValue>(
    c: &mut redis::Connection,
    words: &[&[u8]],
) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(std::str::from_utf8(words[0]).unwrap());
    for w in &words[1..] {
        cmd.arg(*w);
    }
    cmd.query(c)
}

fn s(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Nil => "nil".into(),
        other => panic!("not a string: {other:?}"),
    }
}

fn arr(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

type Resp = (i64, Vec<(String, String)>);

fn fields(v: &Value) -> Vec<(String, String)> {
    arr(v).chunks(2).map(|p| (s(&p[0]), s(&p[1]))).collect()
}

/// A LATEST/RANGE RESP reply as (time, fields).
fn ticks(v: &Value) -> Vec<Resp> {
    arr(v)
        .iter()
        .map(|t| (int_of(&arr(t)[0]), fields(&arr(t)[1])))
        .collect()
}

fn latest(c: &mut redis::Connection, key: &str, stream: &str, extra: &[&str]) -> Vec<Resp> {
    let mut w = vec!["TICKS.LATEST", key, stream];
    w.extend_from_slice(extra);
    ticks(&val(c, &w))
}

fn range(
    c: &mut redis::Connection,
    key: &str,
    stream: &str,
    from: &str,
    to: &str,
    extra: &[&str],
) -> Vec<Resp> {
    let mut w = vec!["TICKS.RANGE", key, stream, from, to];
    w.extend_from_slice(extra);
    ticks(&val(c, &w))
}

fn json_reply(c: &mut redis::Connection, words: &[&str]) -> String {
    let mut w = words.to_vec();
    w.extend_from_slice(&["FORMAT", "JSON"]);
    q::<String>(c, &w).unwrap_or_else(|e| panic!("{w:?}: {e}"))
}

fn digest(c: &mut redis::Connection, key: &str) -> String {
    q::<Vec<String>>(c, &["DEBUG", "DIGEST-VALUE", key])
        .unwrap()
        .concat()
}

fn info_i(c: &mut redis::Connection, field: &str) -> i64 {
    info_field(c, "candles", &format!("candles_{field}"))
        .unwrap_or_else(|| panic!("INFO candles {field}"))
        .parse()
        .unwrap()
}

/// Pushes `n` field/value ticks to `stream` in one pipeline; times from `time(i)`.
fn push_many(
    c: &mut redis::Connection,
    key: &str,
    stream: &str,
    n: usize,
    time: impl Fn(usize) -> i64,
) {
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("TICKS.PUSH")
            .arg(key)
            .arg(stream)
            .arg(time(i))
            .arg("i")
            .arg(i)
            .ignore();
    }
    p.query::<()>(c).unwrap();
}

/// The tick book's full observable content: every stream, all ticks as JSON, and INFO.
fn snapshot(c: &mut redis::Connection, key: &str) -> (String, String, Vec<String>) {
    let merged = json_reply(c, &["TICKS.MERGED", key, "COUNT", "100000"]);
    let streams = format!("{:?}", val(c, &["TICKS.STREAMS", key]));
    let names: Vec<String> = arr(&val(c, &["TICKS.STREAMS", key]))
        .iter()
        .map(|r| s(&arr(r)[0]))
        .collect();
    let per: Vec<String> = names
        .iter()
        .map(|n| json_reply(c, &["TICKS.RANGE", key, n, "-", "+"]))
        .collect();
    (merged, streams, per)
}

#[test]
fn push_latest_range_basics() {
    let srv = Server::start();
    let mut c = srv.conn();
    assert_eq!(
        int(
            &mut c,
            &[
                "TICKS.PUSH",
                "sess",
                "indextick",
                "100",
                "lp",
                "125.5",
                "rt",
                "12:05:05"
            ]
        ),
        1
    );
    assert_eq!(
        int(
            &mut c,
            &[
                "TICKS.PUSH",
                "sess",
                "indextick",
                "200",
                "lp",
                "0.10",
                "rt",
                "12:05:06"
            ]
        ),
        2
    );
    assert_eq!(
        int(
            &mut c,
            &["TICKS.PUSH", "sess", "indextick", "150", "lp", "007"]
        ),
        3
    );
    let want_all = vec![
        (
            200,
            vec![
                ("lp".into(), "0.10".into()),
                ("rt".into(), "12:05:06".into()),
            ],
        ),
        (150, vec![("lp".into(), "007".into())]),
        (
            100,
            vec![
                ("lp".into(), "125.5".into()),
                ("rt".into(), "12:05:05".into()),
            ],
        ),
    ];
    assert_eq!(latest(&mut c, "sess", "indextick", &[]), want_all);
    assert_eq!(
        latest(&mut c, "sess", "indextick", &["COUNT", "1"]),
        want_all[..1].to_vec()
    );
    let mut asc = want_all.clone();
    asc.reverse();
    assert_eq!(range(&mut c, "sess", "indextick", "-", "+", &[]), asc);
    assert_eq!(
        range(&mut c, "sess", "indextick", "120", "+", &["COUNT", "1"]),
        asc[1..2].to_vec()
    );
    assert_eq!(
        range(&mut c, "sess", "indextick", "150", "150", &[]),
        asc[1..2].to_vec()
    );
    assert!(range(&mut c, "sess", "indextick", "300", "+", &[]).is_empty());
    assert!(range(&mut c, "sess", "indextick", "200", "100", &[]).is_empty());
    // field/value values are strings in JSON output
    assert_eq!(
        json_reply(&mut c, &["TICKS.LATEST", "sess", "indextick", "COUNT", "2"]),
        r#"[{"time":200,"lp":"0.10","rt":"12:05:06"},{"time":150,"lp":"007"}]"#
    );
    // a tick with no fields; binary-safe values
    assert_eq!(
        qb::<i64>(
            &mut c,
            &[b"TICKS.PUSH", b"sess", b"bin", b"5", b"k\x00", b"\xff\x00v"]
        )
        .unwrap(),
        1
    );
    let v = val(&mut c, &["TICKS.LATEST", "sess", "bin"]);
    let t = &arr(&v)[0];
    assert_eq!(arr(&arr(t)[1])[0], Value::BulkString(b"k\x00".to_vec()));
    assert_eq!(arr(&arr(t)[1])[1], Value::BulkString(b"\xff\x00v".to_vec()));
    assert_eq!(int(&mut c, &["TICKS.PUSH", "sess", "bare", "7"]), 1);
    assert_eq!(
        json_reply(&mut c, &["TICKS.LATEST", "sess", "bare"]),
        r#"[{"time":7}]"#
    );
    // missing key / stream: empty
    assert!(latest(&mut c, "nokey", "x", &[]).is_empty());
    assert!(latest(&mut c, "sess", "nostream", &[]).is_empty());
    assert!(range(&mut c, "nokey", "x", "-", "+", &[]).is_empty());
    assert_eq!(json_reply(&mut c, &["TICKS.LATEST", "nokey", "x"]), "[]");
    assert_eq!(json_reply(&mut c, &["TICKS.MERGED", "nokey"]), "[]");
    assert_eq!(
        val(&mut c, &["TICKS.MERGED", "nokey"]),
        Value::Array(vec![])
    );
    assert_eq!(
        val(&mut c, &["TICKS.STREAMS", "nokey"]),
        Value::Array(vec![])
    );
    assert_eq!(val(&mut c, &["TICKS.INFO", "nokey"]), Value::Array(vec![]));
    assert_eq!(q::<String>(&mut c, &["TYPE", "sess"]).unwrap(), "tickbook1");
    // LATEST default COUNT is 100
    push_many(&mut c, "sess", "many", 150, |i| i as i64);
    assert_eq!(latest(&mut c, "sess", "many", &[]).len(), 100);
    assert_eq!(latest(&mut c, "sess", "many", &["COUNT", "0"]).len(), 0);
    assert_eq!(range(&mut c, "sess", "many", "-", "+", &[]).len(), 150);
}

#[test]
fn caps_default_maxlen_and_config() {
    let srv = Server::start();
    let mut c = srv.conn();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "candles.tick_cap"]).unwrap()[1],
        "1000"
    );
    push_many(&mut c, "b", "s", 1005, |i| i as i64);
    assert_eq!(
        int(&mut c, &["TICKS.PUSH", "b", "s", "2000", "x", "y"]),
        1000
    );
    let r = range(&mut c, "b", "s", "-", "+", &["COUNT", "1"]);
    assert_eq!(r[0].0, 6, "the oldest by arrival are dropped first");
    // MAXLEN trims now and becomes the stream's cap
    assert_eq!(
        int(
            &mut c,
            &["TICKS.PUSH", "b", "s", "MAXLEN", "10", "2001", "x", "y"]
        ),
        10
    );
    assert_eq!(int(&mut c, &["TICKS.PUSH", "b", "s", "2002", "x", "y"]), 10);
    assert_eq!(latest(&mut c, "b", "s", &[])[0].0, 2002);
    // oldest by arrival, not by time: a late tick is the first to go when it is the oldest
    assert_eq!(
        int(
            &mut c,
            &["TICKS.PUSH", "b", "t", "MAXLEN", "3", "50", "x", "1"]
        ),
        1
    );
    assert_eq!(int(&mut c, &["TICKS.PUSH", "b", "t", "10", "x", "2"]), 2);
    assert_eq!(int(&mut c, &["TICKS.PUSH", "b", "t", "60", "x", "3"]), 3);
    assert_eq!(int(&mut c, &["TICKS.PUSH", "b", "t", "70", "x", "4"]), 3);
    let times: Vec<i64> = range(&mut c, "b", "t", "-", "+", &[])
        .iter()
        .map(|t| t.0)
        .collect();
    assert_eq!(times, vec![10, 60, 70]);
    // CONFIG SET applies to streams created afterwards
    let _: () = q(&mut c, &["CONFIG", "SET", "candles.tick_cap", "50"]).unwrap();
    push_many(&mut c, "b", "new", 80, |i| i as i64);
    assert_eq!(range(&mut c, "b", "new", "-", "+", &[]).len(), 50);
    assert_eq!(range(&mut c, "b", "s", "-", "+", &[]).len(), 10);
    let info = val(&mut c, &["TICKS.INFO", "b"]);
    let kv: Vec<String> = arr(&info).iter().map(s).collect();
    let get = |k: &str| kv[kv.iter().position(|x| x == k).unwrap() + 1].clone();
    assert_eq!(get("streams"), "3");
    assert_eq!(get("ticks"), "63");
    assert_eq!(get("cap_min"), "3");
    assert_eq!(get("cap_max"), "50");
    assert_eq!(get("default_cap"), "50");
    assert!(get("memory").parse::<i64>().unwrap() > 0);
    error(&mut c, &["CONFIG", "SET", "candles.tick_cap", "0"]);
    error(&mut c, &["CONFIG", "SET", "candles.tick_cap", "1000001"]);
    // load-time argument
    let srv2 = Server::start_with(&[], &["tick_cap", "500"]);
    let mut c2 = srv2.conn();
    assert_eq!(
        q::<Vec<String>>(&mut c2, &["CONFIG", "GET", "candles.tick_cap"]).unwrap()[1],
        "500"
    );
    push_many(&mut c2, "b", "s", 600, |i| i as i64);
    assert_eq!(range(&mut c2, "b", "s", "-", "+", &[]).len(), 500);
}

#[test]
fn out_of_order_times() {
    let srv = Server::start();
    let mut c = srv.conn();
    for (i, t) in [5, 3, 7, 3, 1, 9, 8, 9].iter().enumerate() {
        int(
            &mut c,
            &["TICKS.PUSH", "b", "s", &t.to_string(), "i", &i.to_string()],
        );
    }
    let got: Vec<(i64, String)> = latest(&mut c, "b", "s", &[])
        .into_iter()
        .map(|(t, f)| (t, f[0].1.clone()))
        .collect();
    let want: Vec<(i64, String)> = [
        (9, 7),
        (9, 5),
        (8, 6),
        (7, 2),
        (5, 0),
        (3, 3),
        (3, 1),
        (1, 4),
    ]
    .iter()
    .map(|(t, i)| (*t, i.to_string()))
    .collect();
    assert_eq!(got, want);
    let got: Vec<(i64, String)> = range(&mut c, "b", "s", "3", "8", &[])
        .into_iter()
        .map(|(t, f)| (t, f[0].1.clone()))
        .collect();
    let want: Vec<(i64, String)> = [(3, 1), (3, 3), (5, 0), (7, 2), (8, 6)]
        .iter()
        .map(|(t, i)| (*t, i.to_string()))
        .collect();
    assert_eq!(got, want);
    // many jittered arrivals across chunk boundaries, checked against a sort
    let mut rng = 12345u64;
    let mut model: Vec<(i64, usize)> = Vec::new();
    let mut p = redis::pipe();
    for i in 0..2000usize {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let t = 10_000 + i as i64 - ((rng >> 33) % 40) as i64;
        model.push((t, i));
        p.cmd("TICKS.PUSH")
            .arg("b")
            .arg("j")
            .arg("MAXLEN")
            .arg(1500)
            .arg(t)
            .arg("i")
            .arg(i)
            .ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let live: Vec<(i64, usize)> = model[500..].to_vec();
    let mut asc = live.clone();
    asc.sort();
    let got: Vec<(i64, usize)> = range(&mut c, "b", "j", "-", "+", &[])
        .into_iter()
        .map(|(t, f)| (t, f[0].1.parse().unwrap()))
        .collect();
    assert_eq!(got, asc);
    let got: Vec<(i64, usize)> = latest(&mut c, "b", "j", &["COUNT", "300"])
        .into_iter()
        .map(|(t, f)| (t, f[0].1.parse().unwrap()))
        .collect();
    let mut desc = asc.clone();
    desc.reverse();
    assert_eq!(got, desc[..300].to_vec());
    let got: Vec<(i64, usize)> = range(&mut c, "b", "j", "10700", "10900", &["COUNT", "50"])
        .into_iter()
        .map(|(t, f)| (t, f[0].1.parse().unwrap()))
        .collect();
    let want: Vec<(i64, usize)> = asc
        .iter()
        .filter(|(t, _)| (10700..=10900).contains(t))
        .take(50)
        .cloned()
        .collect();
    assert_eq!(got, want);
}

#[test]
fn merged_across_60_streams_with_prefix_and_count() {
    let srv = Server::start();
    let mut c = srv.conn();
    let mut p = redis::pipe();
    for j in 0..20i64 {
        for i in 0..60i64 {
            let name = if i % 3 == 0 {
                format!("indextick:{i}")
            } else {
                format!("optiontick:{}", 26000 + i)
            };
            p.cmd("TICKS.PUSH")
                .arg("sess")
                .arg(name)
                .arg(j * 100 + i)
                .arg("i")
                .arg(i)
                .arg("j")
                .arg(j)
                .ignore();
        }
    }
    p.query::<()>(&mut c).unwrap();
    let all = val(&mut c, &["TICKS.MERGED", "sess", "COUNT", "100000"]);
    let rows: Vec<(String, i64)> = arr(&all)
        .iter()
        .map(|r| (s(&arr(r)[0]), int_of(&arr(r)[1])))
        .collect();
    assert_eq!(rows.len(), 1200);
    assert!(rows.windows(2).all(|w| w[0].1 > w[1].1));
    assert_eq!(rows[0], ("optiontick:26059".to_string(), 1959));
    // each tick names its stream and carries its fields
    let first = &arr(&all)[0];
    assert_eq!(
        fields(&arr(first)[2]),
        vec![("i".into(), "59".into()), ("j".into(), "19".into())]
    );
    // default COUNT 100; PREFIX restricts; COUNT applies after merging
    assert_eq!(arr(&val(&mut c, &["TICKS.MERGED", "sess"])).len(), 100);
    let idx = val(
        &mut c,
        &[
            "TICKS.MERGED",
            "sess",
            "PREFIX",
            "indextick:",
            "COUNT",
            "25",
        ],
    );
    let rows: Vec<(String, i64)> = arr(&idx)
        .iter()
        .map(|r| (s(&arr(r)[0]), int_of(&arr(r)[1])))
        .collect();
    assert_eq!(rows.len(), 25);
    assert!(rows.iter().all(|(n, _)| n.starts_with("indextick:")));
    let want: Vec<i64> = {
        let mut v: Vec<i64> = (0..20)
            .flat_map(|j| (0..60).filter(|i| i % 3 == 0).map(move |i| j * 100 + i))
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.truncate(25);
        v
    };
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), want);
    assert!(arr(&val(&mut c, &["TICKS.MERGED", "sess", "PREFIX", "zzz"])).is_empty());
    // ties across streams: latest arrival first
    int(&mut c, &["TICKS.PUSH", "tie", "a", "5", "n", "1"]);
    int(&mut c, &["TICKS.PUSH", "tie", "b", "5", "n", "2"]);
    int(&mut c, &["TICKS.PUSH", "tie", "a", "5", "n", "3"]);
    assert_eq!(
        json_reply(&mut c, &["TICKS.MERGED", "tie"]),
        r#"[{"stream":"a","time":5,"n":"3"},{"stream":"b","time":5,"n":"2"},{"stream":"a","time":5,"n":"1"}]"#
    );
    // STREAMS: sorted by name, with length and newest time
    let st = val(&mut c, &["TICKS.STREAMS", "sess", "PREFIX", "indextick:"]);
    let rows: Vec<(String, i64, i64)> = arr(&st)
        .iter()
        .map(|r| (s(&arr(r)[0]), int_of(&arr(r)[1]), int_of(&arr(r)[2])))
        .collect();
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0], ("indextick:0".into(), 20, 1900));
    assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(arr(&val(&mut c, &["TICKS.STREAMS", "sess"])).len(), 60);
    assert_eq!(info_i(&mut c, "tick_streams"), 62);
    assert_eq!(info_i(&mut c, "ticks"), 1203);
    assert_eq!(info_i(&mut c, "tick_books"), 2);
}

#[test]
fn original_design_json_documents() {
    let srv = Server::start();
    let mut c = srv.conn();
    assert_eq!(
        int(
            &mut c,
            &[
                "TICKS.PUSH",
                "sess",
                "optiontick:26001",
                "TIMEFIELD",
                "ft",
                "JSON",
                ORIGINAL
            ]
        ),
        1
    );
    assert_eq!(
        json_reply(&mut c, &["TICKS.LATEST", "sess", "optiontick:26001"]),
        format!("[{}]", compact(ORIGINAL))
    );
    // RESP: exact text of numbers, time field not among the fields
    assert_eq!(
        latest(&mut c, "sess", "optiontick:26001", &[]),
        vec![(
            1752810305,
            vec![
                ("token".into(), "26001".into()),
                ("lp".into(), "125.5".into()),
                ("pc".into(), "0.35".into()),
                ("rt".into(), "12:05:05".into()),
                ("ts".into(), "1752810305123".into()),
                ("data_type".into(), "optiontick".into()),
            ]
        )]
    );
    // several documents per call, exact numbers, nested JSON kept as its text, default `time`
    let d1 = r#"{"time":1752810306,"lp":0.10,"pc":-0.0,"big":123456789012345678901234567890,"e":1e-7,"ok":true,"no":null,"nested":{"a": [1, 2.50]},"s":"1.50"}"#;
    let d2 = r#"{"lp":125,"time":1752810307}"#;
    assert_eq!(
        int(&mut c, &["TICKS.PUSH", "sess", "indextick", "JSON", d1, d2]),
        2
    );
    assert_eq!(
        json_reply(&mut c, &["TICKS.RANGE", "sess", "indextick", "-", "+"]),
        format!("[{d1},{d2}]")
    );
    // MERGED JSON adds "stream"
    let m = json_reply(&mut c, &["TICKS.MERGED", "sess", "COUNT", "2"]);
    assert_eq!(
        m,
        r#"[{"stream":"indextick","lp":125,"time":1752810307},{"stream":"indextick","time":1752810306,"lp":0.10,"pc":-0.0,"big":123456789012345678901234567890,"e":1e-7,"ok":true,"no":null,"nested":{"a": [1, 2.50]},"s":"1.50"}]"#
    );
    // the whole array parses as JSON
    let parsed: serde_json::Value = serde_json::from_str(&m).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 2);
    // a whole session in the original shape: memory per tick well under 1/4 of the JSON text
    let mut p = redis::pipe();
    let mut json_bytes = 0;
    let n = 10_000i64;
    for i in 0..n {
        let ft = 1752810305 + i / 4;
        let doc = format!(
            r#"{{"ft": {ft}, "token": "26001", "lp": {}.{}, "pc": 0.{:02}, "rt": "12:{:02}:{:02}", "ts": {}, "data_type": "optiontick"}}"#,
            120 + (i * 7919) % 13,
            (i * 31) % 10,
            30 + i % 10,
            (ft / 60) % 60,
            ft % 60,
            ft * 1000 + (i % 4) * 250 + (i * 13) % 50
        );
        json_bytes += doc.len() as i64;
        p.cmd("TICKS.PUSH")
            .arg("big")
            .arg("optiontick:26001")
            .arg("MAXLEN")
            .arg(n)
            .arg("TIMEFIELD")
            .arg("ft")
            .arg("JSON")
            .arg(doc)
            .ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let mem: i64 = q(&mut c, &["MEMORY", "USAGE", "big"]).unwrap();
    println!(
        "original shape: {} B/tick JSON, {} B/tick in memory",
        json_bytes / n,
        mem / n
    );
    assert!(mem * 4 < json_bytes, "memory {mem} vs JSON {json_bytes}");
}

/// The `data` object of a combined-stream frame, as its exact text.
fn frame_data(line: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let stream = v["stream"].as_str().unwrap().to_string();
    let at = line.find(r#""data":"#).unwrap() + 7;
    (stream, line[at..line.len() - 1].to_string())
}

#[test]
fn binance_aggtrade_frames_round_trip_exactly() {
    let srv = Server::start();
    let mut c = srv.conn();
    let lines = fixtures::lines(AGG);
    assert!(lines.len() > 3000);
    let mut p = redis::pipe();
    let mut by_stream: std::collections::BTreeMap<String, Vec<(i64, String)>> = Default::default();
    for l in &lines {
        let (stream, data) = frame_data(l);
        let t = serde_json::from_str::<serde_json::Value>(&data).unwrap()["T"]
            .as_i64()
            .unwrap();
        by_stream
            .entry(stream.clone())
            .or_default()
            .push((t, data.clone()));
        p.cmd("TICKS.PUSH")
            .arg("binance")
            .arg(stream)
            .arg("MAXLEN")
            .arg(5000)
            .arg("TIMEFIELD")
            .arg("T")
            .arg("JSON")
            .arg(data)
            .ignore();
    }
    p.query::<()>(&mut c).unwrap();
    for (stream, docs) in &by_stream {
        let mut sorted = docs.clone();
        sorted.sort_by_key(|d| d.0); // stable: ties keep arrival order
        let want = format!(
            "[{}]",
            sorted
                .iter()
                .map(|d| d.1.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(
            json_reply(&mut c, &["TICKS.RANGE", "binance", stream, "-", "+"]),
            want,
            "{stream}"
        );
        // RESP: string values come back as their exact text ("58001.03000000")
        let first = &range(&mut c, "binance", stream, "-", "+", &["COUNT", "1"])[0];
        let doc: serde_json::Value = serde_json::from_str(&sorted[0].1).unwrap();
        assert_eq!(
            first.1.iter().find(|f| f.0 == "p").unwrap().1,
            doc["p"].as_str().unwrap()
        );
        assert_eq!(first.0, sorted[0].0);
    }
    // the tape across all symbols, newest first
    let m = val(&mut c, &["TICKS.MERGED", "binance", "COUNT", "500"]);
    let times: Vec<i64> = arr(&m).iter().map(|r| int_of(&arr(r)[1])).collect();
    assert_eq!(times.len(), 500);
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
    let mut all: Vec<i64> = by_stream.values().flatten().map(|d| d.0).collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, all[..500].to_vec());
    let btc = val(
        &mut c,
        &[
            "TICKS.MERGED",
            "binance",
            "PREFIX",
            "btc",
            "COUNT",
            "100000",
        ],
    );
    let n_btc: usize = by_stream
        .iter()
        .filter(|(k, _)| k.starts_with("btc"))
        .map(|(_, v)| v.len())
        .sum();
    assert_eq!(arr(&btc).len(), n_btc);
    let streams = val(&mut c, &["TICKS.STREAMS", "binance"]);
    assert_eq!(arr(&streams).len(), by_stream.len());
    for r in arr(&streams) {
        let docs = &by_stream[&s(&arr(r)[0])];
        assert_eq!(int_of(&arr(r)[1]) as usize, docs.len());
        assert_eq!(int_of(&arr(r)[2]), docs.iter().map(|d| d.0).max().unwrap());
    }
    let mem: i64 = q(&mut c, &["MEMORY", "USAGE", "binance"]).unwrap();
    let text: usize = lines.iter().map(|l| frame_data(l).1.len()).sum();
    println!(
        "aggTrade: {} B/trade JSON, {} B/trade in memory",
        text / lines.len(),
        mem as usize / lines.len()
    );
    assert!((mem as usize) < text / 3);
}

/// A session with out-of-order ticks, several shapes and evicted history.
fn fill_session(c: &mut redis::Connection, key: &str) {
    let mut p = redis::pipe();
    for i in 0..3000i64 {
        let stream = format!("optiontick:{}", 26000 + i % 7);
        let t = 1_000_000 + i - (i * 7) % 11;
        if i % 5 == 0 {
            p.cmd("TICKS.PUSH")
                .arg(key)
                .arg(&stream)
                .arg("MAXLEN")
                .arg(300)
                .arg(t)
                .arg("lp")
                .arg(format!("1{}.5", i % 9))
                .ignore();
        } else {
            let doc = format!(
                r#"{{"ft":{t},"lp":{}.{},"rt":"12:00:{:02}","ok":true}}"#,
                100 + i % 13,
                i % 10,
                i % 60
            );
            p.cmd("TICKS.PUSH")
                .arg(key)
                .arg(&stream)
                .arg("MAXLEN")
                .arg(300)
                .arg("TIMEFIELD")
                .arg("ft")
                .arg("JSON")
                .arg(doc)
                .ignore();
        }
    }
    p.cmd("TICKS.PUSH")
        .arg(key)
        .arg("indextick")
        .arg(5)
        .arg("v")
        .arg("x")
        .ignore();
    p.query::<()>(c).unwrap();
}

#[test]
fn persistence_reload_rdb_and_aof() {
    let mut srv = Server::start();
    let mut c = srv.conn();
    fill_session(&mut c, "sess");
    let before = snapshot(&mut c, "sess");
    let d = digest(&mut c, "sess");
    let counters = (
        info_i(&mut c, "tick_books"),
        info_i(&mut c, "tick_streams"),
        info_i(&mut c, "ticks"),
    );
    assert_eq!(counters, (1, 8, 7 * 300 + 1));
    let _: () = q(&mut c, &["DEBUG", "RELOAD"]).unwrap();
    assert_eq!(snapshot(&mut c, "sess"), before);
    assert_eq!(digest(&mut c, "sess"), d);
    assert_eq!(
        (
            info_i(&mut c, "tick_books"),
            info_i(&mut c, "tick_streams"),
            info_i(&mut c, "ticks")
        ),
        counters
    );
    // restart from the RDB
    srv.restart("SAVE");
    let mut c = srv.conn();
    assert_eq!(snapshot(&mut c, "sess"), before);
    assert_eq!(digest(&mut c, "sess"), d);
    assert_eq!(
        (
            info_i(&mut c, "tick_books"),
            info_i(&mut c, "tick_streams"),
            info_i(&mut c, "ticks")
        ),
        counters
    );
    // the stream caps survive: another push still trims at 300
    assert_eq!(
        int(
            &mut c,
            &[
                "TICKS.PUSH",
                "sess",
                "optiontick:26000",
                "2000000",
                "lp",
                "1"
            ]
        ),
        300
    );
    let before = snapshot(&mut c, "sess");
    let d = digest(&mut c, "sess");
    // AOF: turn it on, rewrite, push more (AOF tail), restart from the AOF
    let _: () = q(&mut c, &["CONFIG", "SET", "appendonly", "yes"]).unwrap();
    eventually("AOF rewrite done", || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(&mut c, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
    let _: () = q(&mut c, &["BGREWRITEAOF"]).unwrap_or(());
    eventually("BGREWRITEAOF done", || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress").as_deref() == Some("0")
            && info_field(&mut c, "persistence", "aof_rewrite_scheduled").as_deref() == Some("0")
    });
    assert_eq!(digest(&mut c, "sess"), d);
    int(
        &mut c,
        &["TICKS.PUSH", "sess", "indextick", "6", "v", "after-rewrite"],
    );
    let after = snapshot(&mut c, "sess");
    assert_ne!(after, before);
    let d2 = digest(&mut c, "sess");
    srv.restart_with("NOSAVE", &["--appendonly", "yes"]);
    let mut c = srv.conn();
    assert_eq!(snapshot(&mut c, "sess"), after);
    assert_eq!(digest(&mut c, "sess"), d2);
    assert_eq!(info_i(&mut c, "ticks"), 7 * 300 + 2);
    assert!(error(&mut c, &["TICKS.APPLY", "sess", "B"]).contains("internal"));
}

#[test]
fn replication_to_a_real_replica() {
    let master = Server::start();
    let mut m = master.conn();
    int(&mut m, &["TICKS.PUSH", "sess", "early", "1", "a", "b"]);
    // a replica with a different default cap: pushes replicate with explicit MAXLEN
    let port = master.port.to_string();
    let replica = Server::start_with(&["--replicaof", "127.0.0.1", &port], &["tick_cap", "7"]);
    let mut r = replica.conn();
    eventually("replica link up", || {
        info_field(&mut r, "replication", "master_link_status").as_deref() == Some("up")
    });
    let _: () = q(&mut r, &["CONFIG", "SET", "candles.tick_cap", "7"]).unwrap();
    fill_session(&mut m, "sess");
    push_many(&mut m, "sess", "defaultcap", 40, |i| 40 - i as i64);
    // errors replicate nothing
    assert!(error(&mut m, &["TICKS.PUSH", "sess", "x", "JSON", "{bad"]).contains("invalid JSON"));
    sync_replica(&mut m);
    assert_eq!(snapshot(&mut r, "sess"), snapshot(&mut m, "sess"));
    assert_eq!(digest(&mut r, "sess"), digest(&mut m, "sess"));
    assert_eq!(range(&mut r, "sess", "defaultcap", "-", "+", &[]).len(), 40);
    assert!(latest(&mut r, "sess", "x", &[]).is_empty());
    assert_eq!(info_i(&mut r, "ticks"), info_i(&mut m, "ticks"));
    let e = error(&mut r, &["TICKS.PUSH", "sess", "x", "1", "a", "b"]);
    assert!(e.to_lowercase().contains("read only"), "{e}");
}

/// Redis's CRC-64 (Jones, reflected), for building DUMP payloads.
fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn with_crc(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&crc64(body).to_le_bytes());
    p
}

#[test]
fn migrate_moves_a_book_between_servers() {
    let (src, dst) = (Server::start(), Server::start());
    let (mut a, mut b) = (src.conn(), dst.conn());
    fill_session(&mut a, "sess");
    let (snap, d) = (snapshot(&mut a, "sess"), digest(&mut a, "sess"));
    // A loaded book's buffers are exact-sized: reload first, so both sides count alike.
    let _: () = q(&mut a, &["DEBUG", "RELOAD"]).unwrap();
    assert_eq!(digest(&mut a, "sess"), d);
    let bytes = info_i(&mut a, "tick_bytes");
    let port = dst.port.to_string();
    let ok: String = q(
        &mut a,
        &["MIGRATE", "127.0.0.1", &port, "sess", "0", "5000"],
    )
    .unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(int(&mut a, &["EXISTS", "sess"]), 0);
    // MIGRATE deletes the key; Valkey 8 frees it in the background by default
    // (lazyfree-lazy-server-del yes), so its counters drop once the free callback has run.
    eventually("the migrated book freed on the source", || {
        (info_i(&mut a, "tick_books"), info_i(&mut a, "tick_bytes")) == (0, 0)
    });
    assert_eq!(snapshot(&mut b, "sess"), snap);
    assert_eq!(digest(&mut b, "sess"), d);
    assert_eq!(
        (info_i(&mut b, "tick_books"), info_i(&mut b, "tick_bytes")),
        (1, bytes)
    );
    // The moved book takes pushes as before.
    int(
        &mut b,
        &["TICKS.PUSH", "sess", "indextick", "9", "v", "after-migrate"],
    );
    assert_ne!(digest(&mut b, "sess"), d);
}

#[test]
fn copy_dump_restore_and_corrupt_payloads() {
    let srv = Server::start();
    let mut c = srv.conn();
    fill_session(&mut c, "sess");
    let snap = snapshot(&mut c, "sess");
    let d = digest(&mut c, "sess");
    let bytes = info_i(&mut c, "tick_bytes");
    assert_eq!(int(&mut c, &["COPY", "sess", "copy"]), 1);
    assert_eq!(snapshot(&mut c, "copy"), snap);
    assert_eq!(digest(&mut c, "copy"), d);
    assert_eq!(info_i(&mut c, "tick_books"), 2);
    assert_eq!(info_i(&mut c, "tick_bytes"), 2 * bytes);
    int(
        &mut c,
        &["TICKS.PUSH", "copy", "indextick", "9", "v", "only-in-copy"],
    );
    assert_eq!(snapshot(&mut c, "sess"), snap, "a copy is independent");
    assert_ne!(digest(&mut c, "copy"), d);
    // DUMP / RESTORE
    let dump: Vec<u8> = q(&mut c, &["DUMP", "sess"]).unwrap();
    let (body, trailer) = dump.split_at(dump.len() - 8);
    assert_eq!(
        crc64(body).to_le_bytes(),
        trailer,
        "CRC-64 helper matches Redis"
    );
    let _: () = qb(&mut c, &[b"RESTORE", b"restored", b"0", &dump]).unwrap();
    assert_eq!(snapshot(&mut c, "restored"), snap);
    assert_eq!(digest(&mut c, "restored"), d);
    // a corrupted payload with a valid checksum: an unknown encoding version
    let at = body
        .windows(4)
        .position(|w| w == b"TKB\x01")
        .expect("encoding magic in the payload");
    let mut bad = body.to_vec();
    bad[at + 3] = 9;
    let e = qb::<()>(&mut c, &[b"RESTORE", b"bad", b"0", &with_crc(&bad)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Bad data format"), "{e}");
    // truncated and bit-flipped payloads never crash the server and never half-load
    for cut in [at + 5, at + 40, body.len() / 2, body.len() - 20] {
        let mut t = body[..cut].to_vec();
        t.extend_from_slice(&body[body.len() - 3..]); // EOF opcode + RDB version
        assert!(qb::<()>(&mut c, &[b"RESTORE", b"bad", b"0", &with_crc(&t)]).is_err());
    }
    let mut rng = 99u64;
    let mut accepted = 0;
    for k in 0..300 {
        let mut t = body.to_vec();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let i = at + 4 + (rng >> 33) as usize % (body.len() - at - 7);
        t[i] ^= 1 << (k % 8);
        let key = format!("fuzz{k}");
        if qb::<()>(&mut c, &[b"RESTORE", key.as_bytes(), b"0", &with_crc(&t)]).is_ok() {
            accepted += 1;
            // whatever loads is readable and consistent
            let _ = snapshot(&mut c, &key);
            let _ = digest(&mut c, &key);
        }
    }
    assert!(
        q::<String>(&mut c, &["PING"]).is_ok(),
        "server died; log:\n{}",
        srv.log()
    );
    assert_eq!(int(&mut c, &["EXISTS", "bad"]), 0);
    println!("bit flips accepted (values changed but valid): {accepted}/300");
    // counters stay exact across all of it. FLUSHALL frees in the background where the server
    // says so (Valkey 8's lazyfree-lazy-user-flush defaults to yes): the free callbacks, and so
    // the gauges, land shortly after the reply.
    let _: () = q(&mut c, &["FLUSHALL"]).unwrap();
    let counters = |c: &mut redis::Connection| {
        (
            info_i(c, "tick_books"),
            info_i(c, "tick_streams"),
            info_i(c, "ticks"),
            info_i(c, "tick_bytes"),
        )
    };
    eventually("tick gauges back to zero after FLUSHALL", || {
        counters(&mut c) == (0, 0, 0, 0)
    });
    assert_eq!(counters(&mut c), (0, 0, 0, 0));
}

#[test]
fn keyspace_notifications_on_every_push() {
    let srv = Server::start();
    let mut c = srv.conn();
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Kd"]).unwrap();
    let mut sub = srv.conn();
    let mut ps = sub.as_pubsub();
    ps.subscribe("__keyspace@0__:sess").unwrap();
    ps.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    int(&mut c, &["TICKS.PUSH", "sess", "a", "1", "x", "y"]);
    int(
        &mut c,
        &[
            "TICKS.PUSH",
            "sess",
            "b",
            "JSON",
            r#"{"time":2}"#,
            r#"{"time":3}"#,
        ],
    );
    assert!(error(&mut c, &["TICKS.PUSH", "sess", "b", "JSON", "{"]).contains("invalid JSON"));
    int(&mut c, &["TICKS.PUSH", "sess", "a", "4", "x", "y"]);
    let mut got = Vec::new();
    for _ in 0..3 {
        let msg = ps.get_message().unwrap();
        got.push(msg.get_payload::<String>().unwrap());
    }
    assert_eq!(got, vec!["ticks.push"; 3]);
    // reads notify nothing; the next event is the next push
    latest(&mut c, "sess", "a", &[]);
    int(&mut c, &["TICKS.PUSH", "sess", "c", "5"]);
    assert_eq!(
        ps.get_message().unwrap().get_payload::<String>().unwrap(),
        "ticks.push"
    );
}

#[test]
fn unlink_of_a_100k_tick_session_frees_in_background() {
    let srv = Server::start_with(&["--lazyfree-lazy-user-del", "no"], &[]);
    let mut c = srv.conn();
    let mut p = redis::pipe();
    for s in 0..100 {
        let stream = format!("optiontick:{}", 26000 + s);
        for batch in 0..2 {
            let mut cmd = redis::cmd("TICKS.PUSH");
            cmd.arg("sess")
                .arg(&stream)
                .arg("TIMEFIELD")
                .arg("ft")
                .arg("JSON");
            for i in 0..500 {
                let n = batch * 500 + i;
                cmd.arg(format!(
                    r#"{{"ft":{},"lp":{}.5,"rt":"12:00:{:02}"}}"#,
                    1752810305 + n,
                    100 + n % 7,
                    n % 60
                ));
            }
            p.add_command(cmd).ignore();
        }
    }
    p.query::<()>(&mut c).unwrap();
    assert_eq!(info_i(&mut c, "ticks"), 100_000);
    let mem: i64 = q(&mut c, &["MEMORY", "USAGE", "sess"]).unwrap();
    assert!(mem > 100_000 && mem < 100_000 * 40, "{mem}");
    // MEMORY USAGE adds the key's own overhead to the type's mem_usage
    let tick_bytes = info_i(&mut c, "tick_bytes");
    assert!(
        tick_bytes <= mem && tick_bytes > mem - 200,
        "{tick_bytes} vs {mem}"
    );
    let freed_before: i64 = info_field(&mut c, "memory", "lazyfreed_objects")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(int(&mut c, &["UNLINK", "sess"]), 1);
    assert_eq!(int(&mut c, &["EXISTS", "sess"]), 0);
    eventually("background free", || {
        info_field(&mut c, "memory", "lazyfreed_objects")
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > freed_before
    });
    eventually("counters back to zero", || info_i(&mut c, "ticks") == 0);
    assert_eq!(
        (
            info_i(&mut c, "tick_books"),
            info_i(&mut c, "tick_streams"),
            info_i(&mut c, "tick_bytes")
        ),
        (0, 0, 0)
    );
    // a small book is freed synchronously (effort below the lazy-free threshold)
    int(&mut c, &["TICKS.PUSH", "small", "s", "1"]);
    assert_eq!(int(&mut c, &["UNLINK", "small"]), 1);
    assert_eq!(info_i(&mut c, "tick_books"), 0);
}

#[test]
fn command_flags_and_key_specs() {
    let srv = Server::start();
    let mut c = srv.conn();
    let info = format!(
        "{:?}",
        val(
            &mut c,
            &[
                "COMMAND",
                "INFO",
                "TICKS.PUSH",
                "TICKS.LATEST",
                "TICKS.MERGED"
            ]
        )
    );
    let rows = arr(&val(
        &mut c,
        &[
            "COMMAND",
            "INFO",
            "TICKS.PUSH",
            "TICKS.LATEST",
            "TICKS.RANGE",
            "TICKS.MERGED",
            "TICKS.STREAMS",
            "TICKS.INFO",
        ],
    ))
    .to_vec();
    let flags = |i: usize| -> Vec<String> { arr(&arr(&rows[i])[2]).iter().map(s).collect() };
    assert!(
        flags(0).contains(&"write".to_string()) && flags(0).contains(&"denyoom".to_string()),
        "{:?}",
        flags(0)
    );
    for i in 1..6 {
        assert!(flags(i).contains(&"readonly".to_string()), "{:?}", flags(i));
    }
    assert!(
        info.contains("RW") || info.contains("rw") || info.contains("insert"),
        "key spec: {info}"
    );
    let keys: Vec<String> = q(
        &mut c,
        &[
            "COMMAND",
            "GETKEYS",
            "TICKS.PUSH",
            "sess",
            "s",
            "1",
            "a",
            "b",
        ],
    )
    .unwrap();
    assert_eq!(keys, vec!["sess"]);
    let keys: Vec<String> = q(
        &mut c,
        &["COMMAND", "GETKEYS", "TICKS.MERGED", "sess", "PREFIX", "x"],
    )
    .unwrap();
    assert_eq!(keys, vec!["sess"]);
}

#[test]
fn every_error_path_changes_nothing() {
    let srv = Server::start();
    let mut c = srv.conn();
    int(&mut c, &["TICKS.PUSH", "sess", "s", "1", "a", "b"]);
    let d = digest(&mut c, "sess");
    let cases: &[(&[&str], &str)] = &[
        (&["TICKS.PUSH", "sess", "s"], "wrong number of arguments"),
        (&["TICKS.PUSH", "sess"], "wrong number of arguments"),
        (
            &["TICKS.PUSH", "sess", "s", "abc", "a", "b"],
            "time must be an integer",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "1.5", "a", "b"],
            "time must be an integer",
        ),
        (&["TICKS.PUSH", "sess", "s", "1", "a"], "pairs"),
        (&["TICKS.PUSH", "sess", "s", "1", "a", "b", "c"], "pairs"),
        (
            &["TICKS.PUSH", "sess", "s", "MAXLEN", "0", "1", "a", "b"],
            "MAXLEN must be between 1 and 1000000",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "MAXLEN", "-1", "1", "a", "b"],
            "MAXLEN must be between 1 and 1000000",
        ),
        (
            &[
                "TICKS.PUSH",
                "sess",
                "s",
                "MAXLEN",
                "1000001",
                "1",
                "a",
                "b",
            ],
            "MAXLEN must be between 1 and 1000000",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "MAXLEN", "x", "1", "a", "b"],
            "MAXLEN must be an integer",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "MAXLEN"],
            "MAXLEN needs a value",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "MAXLEN", "5", "MAXLEN", "6", "1"],
            "MAXLEN given more than once",
        ),
        (&["TICKS.PUSH", "sess", "s", "MAXLEN", "5"], "needs a time"),
        (
            &["TICKS.PUSH", "sess", "s", "TIMEFIELD", "ft", "1", "a", "b"],
            "TIMEFIELD applies to JSON",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "NOPE", "1", "a", "b"],
            "time must be an integer (or an option",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "1", "time", "b"],
            "reserved for the tick time",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "1", "a", "b", "a", "c"],
            "duplicate field 'a'",
        ),
        (
            &["TICKS.PUSH", "sess", "", "1", "a", "b"],
            "empty stream name",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "1", "", "b"],
            "empty field name",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "JSON"],
            "JSON needs at least one document",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "JSON", "{bad"],
            "invalid JSON document",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "JSON", "[1,2]"],
            "must be an object",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "JSON", "\"x\""],
            "must be an object",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "JSON", r#"{"ft":1}"#],
            "no integer time field 'time'",
        ),
        (
            &[
                "TICKS.PUSH",
                "sess",
                "s",
                "TIMEFIELD",
                "ft",
                "JSON",
                r#"{"time":1}"#,
            ],
            "no integer time field 'ft'",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "JSON", r#"{"time":1.5}"#],
            "must be an integer",
        ),
        (
            &["TICKS.PUSH", "sess", "s", "JSON", r#"{"time":"1"}"#],
            "must be an integer",
        ),
        (
            &[
                "TICKS.PUSH",
                "sess",
                "s",
                "JSON",
                r#"{"time":1,"a":1,"a":2}"#,
            ],
            "duplicate field",
        ),
        (
            &[
                "TICKS.PUSH",
                "sess",
                "s",
                "JSON",
                r#"{"time":1}"#,
                r#"{"time":2"#,
            ],
            "document 2: invalid JSON",
        ),
        (
            &[
                "TICKS.PUSH",
                "sess",
                "s",
                "JSON",
                r#"{"time":1}"#,
                r#"{"x":2}"#,
            ],
            "document 2: JSON document has no integer time field",
        ),
        (&["TICKS.LATEST", "sess"], "wrong number of arguments"),
        (
            &["TICKS.LATEST", "sess", "s", "COUNT"],
            "COUNT needs a value",
        ),
        (
            &["TICKS.LATEST", "sess", "s", "COUNT", "-1"],
            "COUNT must be between 0 and 100000",
        ),
        (
            &["TICKS.LATEST", "sess", "s", "COUNT", "100001"],
            "COUNT must be between 0 and 100000",
        ),
        (
            &["TICKS.LATEST", "sess", "s", "COUNT", "x"],
            "COUNT must be an integer",
        ),
        (
            &["TICKS.LATEST", "sess", "s", "FORMAT", "XML"],
            "FORMAT is RESP or JSON",
        ),
        (
            &["TICKS.LATEST", "sess", "s", "PREFIX", "x"],
            "unknown option 'PREFIX'",
        ),
        (
            &["TICKS.LATEST", "sess", "s", "BOGUS", "1"],
            "unknown option 'BOGUS'",
        ),
        (
            &["TICKS.RANGE", "sess", "s", "-"],
            "wrong number of arguments",
        ),
        (
            &["TICKS.RANGE", "sess", "s", "x", "+"],
            "from must be an integer",
        ),
        (
            &["TICKS.RANGE", "sess", "s", "-", "y"],
            "to must be an integer",
        ),
        (
            &["TICKS.RANGE", "sess", "s", "-", "+", "COUNT", "100001"],
            "COUNT must be between",
        ),
        (&["TICKS.MERGED", "sess", "PREFIX"], "PREFIX needs a value"),
        (
            &["TICKS.MERGED", "sess", "COUNT", "1000000"],
            "COUNT must be between",
        ),
        (
            &["TICKS.MERGED", "sess", "NOPE", "x"],
            "unknown option 'NOPE'",
        ),
        (&["TICKS.MERGED"], "wrong number of arguments"),
        (
            &["TICKS.STREAMS", "sess", "COUNT", "1"],
            "unknown option 'COUNT'",
        ),
        (&["TICKS.INFO"], "wrong number of arguments"),
        (&["TICKS.INFO", "sess", "x"], "wrong number of arguments"),
        (&["TICKS.APPLY", "sess", "Bxx"], "internal"),
    ];
    for (words, want) in cases {
        let e = error(&mut c, words);
        assert!(e.contains(want), "{words:?}: got '{e}', want '{want}'");
    }
    assert_eq!(digest(&mut c, "sess"), d, "no error changed the book");
    assert_eq!(arr(&val(&mut c, &["TICKS.STREAMS", "sess"])).len(), 1);
    // a failed first push does not create the key
    assert!(error(
        &mut c,
        &["TICKS.PUSH", "fresh", "s", "JSON", r#"{"time":1}"#, "{"]
    )
    .contains("invalid JSON"));
    assert_eq!(int(&mut c, &["EXISTS", "fresh"]), 0);
    // wrong key type, for every command, and the other way round
    let _: () = q(&mut c, &["SET", "str", "x"]).unwrap();
    for words in [
        &["TICKS.PUSH", "str", "s", "1", "a", "b"][..],
        &["TICKS.PUSH", "str", "s", "JSON", r#"{"time":1}"#],
        &["TICKS.LATEST", "str", "s"],
        &["TICKS.RANGE", "str", "s", "-", "+"],
        &["TICKS.MERGED", "str"],
        &["TICKS.STREAMS", "str"],
        &["TICKS.INFO", "str"],
    ] {
        let e = error(&mut c, words);
        assert!(
            e.contains("WRONGTYPE") && e.contains("wrong kind of value"),
            "{words:?}: {e}"
        );
    }
    let e = error(&mut c, &["GET", "sess"]);
    assert!(e.contains("WRONGTYPE"), "{e}");
    assert_eq!(info_i(&mut c, "tick_books"), 1);
    assert_eq!(info_i(&mut c, "ticks"), 1);
}

/// A push of 100 JSON documents of the feed's layout whose 57th is bad, to a stream whose
/// pushes take the JSON lane: the error names the document, the book stays byte for byte
/// (digest, MEMORY USAGE), and the next good pushes are stored as on a key that never saw it.
#[test]
fn json_batch_with_a_bad_57th_document_changes_nothing() {
    let srv = Server::start();
    let mut c = srv.conn();
    let doc = |i: usize, lp: &str| {
        format!(
            r#"{{"ft": {}, "token": "26001", "lp": {lp}, "pc": 0.{:02}, "rt": "12:05:{:02}", "ts": {}, "data_type": "optiontick"}}"#,
            1_752_810_305 + i / 4,
            i % 100,
            (i / 4) % 60,
            1_752_810_305_000u64 + (i as u64) * 250
        )
    };
    let push = |c: &mut redis::Connection, key: &str, docs: &[String]| {
        let mut w = vec!["TICKS.PUSH", key, "s", "TIMEFIELD", "ft", "JSON"];
        w.extend(docs.iter().map(|d| d.as_str()));
        q::<i64>(c, &w)
    };
    let batch = |from: usize| -> Vec<String> {
        (from..from + 100)
            .map(|i| doc(i, &format!("125.{:02}", i % 97)))
            .collect()
    };
    // 1013 ticks each: the open chunk holds some records.
    for k in 0..10 {
        let docs = batch(k * 100);
        push(&mut c, "sess2", &docs).unwrap();
        push(&mut c, "refs2", &docs).unwrap();
    }
    let docs: Vec<String> = (1000..1013).map(|i| doc(i, "125.5")).collect();
    push(&mut c, "sess2", &docs).unwrap();
    push(&mut c, "refs2", &docs).unwrap();
    let memory =
        |c: &mut redis::Connection, key: &str| -> i64 { q(c, &["MEMORY", "USAGE", key]).unwrap() };
    let bad_57th = [
        (doc(0, "12x.5"), "document 57: invalid JSON"),
        (
            doc(0, "125.5").replace("\"pc\"", "\"lp\""),
            "document 57: duplicate field",
        ),
        (
            doc(0, "125.5").replace("\"ft\": ", "\"ft\": 1."),
            "document 57:",
        ),
    ];
    let mut at = 1013;
    for (bad, want) in bad_57th {
        let (d, m) = (digest(&mut c, "sess2"), memory(&mut c, "sess2"));
        let mut docs = batch(at);
        docs[56] = bad;
        let e = push(&mut c, "sess2", &docs).unwrap_err().to_string();
        assert!(e.contains(want), "got '{e}', want '{want}'");
        assert_eq!(digest(&mut c, "sess2"), d);
        assert_eq!(memory(&mut c, "sess2"), m);
        for _ in 0..2 {
            let docs = batch(at);
            at += 100;
            assert_eq!(
                push(&mut c, "sess2", &docs).unwrap(),
                push(&mut c, "refs2", &docs).unwrap()
            );
            assert_eq!(digest(&mut c, "sess2"), digest(&mut c, "refs2"));
            assert_eq!(memory(&mut c, "sess2"), memory(&mut c, "refs2"));
        }
    }
}
