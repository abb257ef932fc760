//! The command surface as a whole, against a real redis-server with the module: which reads
//! of a missing key error and which return empty, `-`/`+` in CANDLE.GAPS, options given twice,
//! positions in batch errors, the ranges bounded options state, and the value limit of the
//! JSON tick form. Every refused command is checked to have changed nothing.

use candles_core::series::{LIVE_MAX_LIMIT, LIVE_TTL_LIMIT};
use candles_core::ticks::{MAX_CAP, MAX_VALUE_BYTES};
use candles_testkit::server::*;
use redis::Value;

const M: i64 = 60_000;

/// The error of `words`, which must be exactly `want` (the `ERR` prefix aside).
fn refused(c: &mut redis::Connection, words: &[&str], want: &str) {
    let e = error(c, words);
    let text = e.split_once(": ").map_or(e.as_str(), |(_, t)| t);
    assert_eq!(text, want, "{words:?}: {e}");
}

fn digest(c: &mut redis::Connection) -> Value {
    val(c, &["DEBUG", "DIGEST"])
}

/// A positional candle `t 1 1 1 1 1`.
fn flat(t: i64) -> Vec<String> {
    vec![
        t.to_string(),
        "1".into(),
        "1".into(),
        "1".into(),
        "1".into(),
        "1".into(),
    ]
}

fn add(c: &mut redis::Connection, key: &str, times: &[i64]) -> i64 {
    let mut words: Vec<String> = vec!["CANDLE.OFFICIAL_ADD".into(), key.into()];
    words.extend(["INTERVAL".into(), "1m".into()]);
    for &t in times {
        words.extend(flat(t));
    }
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    int(c, &w)
}

fn gaps(c: &mut redis::Connection, key: &str, from: &str, to: &str) -> Vec<(i64, i64)> {
    q(c, &["CANDLE.GAPS", key, from, to]).unwrap()
}

#[test]
fn reads_of_a_missing_key_info_and_gaps_error_the_others_are_empty() {
    let srv = Server::start();
    let mut c = srv.conn();
    // INFO and GAPS need the series: an error naming the key (like XINFO STREAM, TS.INFO).
    refused(
        &mut c,
        &["CANDLE.INFO", "nokey"],
        "no candle series at 'nokey'",
    );
    for (from, to) in [("0", "60000"), ("-", "+")] {
        refused(
            &mut c,
            &["CANDLE.GAPS", "nokey", from, to],
            "no candle series at 'nokey'",
        );
    }
    // The other reads answer with an empty array (an empty JSON array with FORMAT JSON).
    let empty = Value::Array(vec![]);
    assert_eq!(
        val(&mut c, &["CANDLE.RANGE_MERGED", "nokey", "-", "+"]),
        empty
    );
    assert_eq!(val(&mut c, &["CANDLE.LIVE", "nokey"]), empty);
    let json: String = q(
        &mut c,
        &["CANDLE.RANGE_MERGED", "nokey", "-", "+", "FORMAT", "JSON"],
    )
    .unwrap();
    assert_eq!(json, "[]");
    for words in [
        &["TICKS.LATEST", "nokey", "s"][..],
        &["TICKS.RANGE", "nokey", "s", "-", "+"],
        &["TICKS.MERGED", "nokey"],
        &["TICKS.STREAMS", "nokey"],
        &["TICKS.INFO", "nokey"],
    ] {
        assert_eq!(val(&mut c, words), empty, "{words:?}");
    }
    // Nothing was created by any of them.
    assert_eq!(int(&mut c, &["EXISTS", "nokey"]), 0);
    assert_eq!(int(&mut c, &["DBSIZE"]), 0);
}

#[test]
fn gaps_accepts_first_and_last_official_as_minus_and_plus() {
    let srv = Server::start();
    let mut c = srv.conn();
    // Officials at minutes 2, 3, 5 and 8: holes at 4 and 6..=7.
    assert_eq!(add(&mut c, "k", &[2 * M, 3 * M, 5 * M, 8 * M]), 4);
    let (m4, m6, m7) = (4 * M, 6 * M, 7 * M);
    assert_eq!(gaps(&mut c, "k", "-", "+"), vec![(m4, m4), (m6, m7)]);
    // `-` is the first official (minute 2), `+` the last (minute 8).
    assert_eq!(
        gaps(&mut c, "k", "-", "+"),
        gaps(&mut c, "k", &(2 * M).to_string(), &(8 * M).to_string())
    );
    assert_eq!(
        gaps(&mut c, "k", &M.to_string(), "+"),
        vec![(M, M), (m4, m4), (m6, m7)]
    );
    assert_eq!(
        gaps(&mut c, "k", "-", &(10 * M).to_string()),
        vec![(m4, m4), (m6, m7), (9 * M, 10 * M)]
    );
    // Reversed ends: an empty range, as with explicit times.
    assert_eq!(gaps(&mut c, "k", "+", "-"), vec![]);
    assert_eq!(gaps(&mut c, "k", &(9 * M).to_string(), "+"), vec![]);
    // Other words are still refused, and an explicit end is still checked for alignment.
    refused(
        &mut c,
        &["CANDLE.GAPS", "k", "x", "+"],
        "from must be an integer",
    );
    refused(
        &mut c,
        &["CANDLE.GAPS", "k", "-", "++"],
        "to must be an integer",
    );
    refused(
        &mut c,
        &["CANDLE.GAPS", "k", "-", "60001"],
        "time 60001 is not aligned to interval 1m (nearest earlier open time: 60000)",
    );

    // A series with no official candle: `-`/`+` stand for nothing, so the range between the
    // first and the last official is empty and so is the reply; explicit ends still report.
    val(&mut c, &["CANDLE.CREATE", "e", "INTERVAL", "1m"]);
    assert_eq!(gaps(&mut c, "e", "-", "+"), vec![]);
    assert_eq!(gaps(&mut c, "e", &M.to_string(), "+"), vec![]);
    assert_eq!(gaps(&mut c, "e", "-", &M.to_string()), vec![]);
    assert_eq!(gaps(&mut c, "e", "0", &M.to_string()), vec![(0, M)]);
    // Live candles are not officials: `-`/`+` ignore them.
    let now = now_ms() / M * M;
    int(&mut c, &["CANDLE.LIVE_TICK", "e", &now.to_string(), "5"]);
    assert_eq!(gaps(&mut c, "e", "-", "+"), vec![]);
}

#[test]
fn every_option_given_twice_is_refused_the_same_way() {
    let srv = Server::start();
    let mut c = srv.conn();
    add(&mut c, "k", &[M]);
    int(&mut c, &["TICKS.PUSH", "t", "s", "1", "a", "b"]);
    let before = digest(&mut c);
    let cr = |rest: &[&'static str]| {
        let mut w = vec!["CANDLE.CREATE", "new", "INTERVAL", "1m"];
        w.extend_from_slice(rest);
        w
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["CANDLE.CREATE", "new", "INTERVAL", "1m", "interval", "1m"],
            "INTERVAL",
        ),
        (cr(&["RETENTION", "5", "RETENTION", "6"]), "RETENTION"),
        (cr(&["RETENTION", "5", "retention", "5"]), "RETENTION"),
        (cr(&["LIVE_TTL", "5", "LIVE_TTL", "6"]), "LIVE_TTL"),
        (cr(&["LIVE_MAX", "5", "LIVE_MAX", "6"]), "LIVE_MAX"),
        (
            cr(&["DUPLICATE_POLICY", "KEEP", "DUPLICATE_POLICY", "BLOCK"]),
            "DUPLICATE_POLICY",
        ),
        // Refused at the repeat, before its (here missing or bad) value is read.
        (cr(&["LIVE_MAX", "5", "LIVE_MAX"]), "LIVE_MAX"),
        (cr(&["RETENTION", "5", "RETENTION", "x"]), "RETENTION"),
        (
            vec![
                "CANDLE.OFFICIAL_ADD",
                "k",
                "INTERVAL",
                "1m",
                "INTERVAL",
                "1m",
                "120000",
                "1",
                "1",
                "1",
                "1",
                "1",
            ],
            "INTERVAL",
        ),
        (
            vec![
                "CANDLE.LIVE_UPDATE",
                "k",
                "INTERVAL",
                "1m",
                "INTERVAL",
                "1m",
                "120000",
                "1",
                "1",
                "1",
                "1",
                "1",
            ],
            "INTERVAL",
        ),
        (
            vec![
                "CANDLE.LIVE_TICK",
                "k",
                "INTERVAL",
                "1m",
                "INTERVAL",
                "1m",
                "120000",
                "1",
            ],
            "INTERVAL",
        ),
        (
            vec![
                "CANDLE.RANGE_MERGED",
                "k",
                "-",
                "+",
                "COUNT",
                "1",
                "COUNT",
                "2",
            ],
            "COUNT",
        ),
        (
            vec!["CANDLE.RANGE_MERGED", "k", "-", "+", "FULL", "full"],
            "FULL",
        ),
        (
            vec![
                "CANDLE.RANGE_MERGED",
                "k",
                "-",
                "+",
                "FORMAT",
                "JSON",
                "FORMAT",
                "RESP",
            ],
            "FORMAT",
        ),
        (vec!["CANDLE.LIVE", "k", "FULL", "FULL"], "FULL"),
        (
            vec!["CANDLE.LIVE", "k", "FORMAT", "JSON", "FORMAT", "JSON"],
            "FORMAT",
        ),
        (
            vec![
                "TICKS.PUSH",
                "t",
                "s",
                "MAXLEN",
                "5",
                "MAXLEN",
                "6",
                "2",
                "a",
                "b",
            ],
            "MAXLEN",
        ),
        (
            vec![
                "TICKS.PUSH",
                "t",
                "s",
                "MAXLEN",
                "5",
                "TIMEFIELD",
                "ft",
                "maxlen",
                "5",
                "JSON",
                r#"{"ft":2}"#,
            ],
            "MAXLEN",
        ),
        (
            vec![
                "TICKS.PUSH",
                "t",
                "s",
                "TIMEFIELD",
                "ft",
                "TIMEFIELD",
                "ft",
                "JSON",
                r#"{"ft":2}"#,
            ],
            "TIMEFIELD",
        ),
        (
            vec!["TICKS.LATEST", "t", "s", "COUNT", "1", "COUNT", "1"],
            "COUNT",
        ),
        (
            vec!["TICKS.LATEST", "t", "s", "FORMAT", "RESP", "FORMAT", "JSON"],
            "FORMAT",
        ),
        (
            vec![
                "TICKS.RANGE",
                "t",
                "s",
                "-",
                "+",
                "COUNT",
                "1",
                "COUNT",
                "1",
            ],
            "COUNT",
        ),
        (
            vec![
                "TICKS.RANGE",
                "t",
                "s",
                "-",
                "+",
                "FORMAT",
                "JSON",
                "FORMAT",
                "JSON",
            ],
            "FORMAT",
        ),
        (
            vec!["TICKS.MERGED", "t", "PREFIX", "a", "PREFIX", "b"],
            "PREFIX",
        ),
        (
            vec!["TICKS.MERGED", "t", "COUNT", "1", "COUNT", "1"],
            "COUNT",
        ),
        (
            vec!["TICKS.MERGED", "t", "FORMAT", "JSON", "FORMAT", "JSON"],
            "FORMAT",
        ),
        (
            vec!["TICKS.STREAMS", "t", "PREFIX", "a", "PREFIX", "a"],
            "PREFIX",
        ),
    ];
    for (words, option) in &cases {
        refused(&mut c, words, &format!("{option} given more than once"));
    }
    assert_eq!(
        digest(&mut c),
        before,
        "no refused command changed anything"
    );
    assert_eq!(int(&mut c, &["EXISTS", "new"]), 0);
    // Each option once, in any order and case, is still fine.
    val(
        &mut c,
        &[
            "CANDLE.CREATE",
            "new",
            "retention",
            "5",
            "LIVE_TTL",
            "6",
            "INTERVAL",
            "1m",
            "live_max",
            "7",
            "duplicate_policy",
            "keep",
        ],
    );
    let _: String = q(
        &mut c,
        &[
            "CANDLE.RANGE_MERGED",
            "k",
            "-",
            "+",
            "format",
            "JSON",
            "FULL",
            "COUNT",
            "1",
        ],
    )
    .unwrap();
    int(
        &mut c,
        &[
            "TICKS.PUSH",
            "t",
            "s",
            "TIMEFIELD",
            "ft",
            "MAXLEN",
            "5",
            "JSON",
            r#"{"ft":2}"#,
        ],
    );
    // An unknown option is still named as such (CREATE used to ask it for a value first).
    refused(
        &mut c,
        &["CANDLE.CREATE", "other", "INTERVAL", "1m", "BOGUS"],
        "unknown option 'BOGUS'",
    );
    assert_eq!(int(&mut c, &["EXISTS", "other"]), 0);
}

#[test]
fn positions_in_batch_errors_count_from_one() {
    let srv = Server::start();
    let mut c = srv.conn();
    add(&mut c, "k", &[M]);
    let before = digest(&mut c);
    // The second candle of a positional batch is misaligned.
    let mut words: Vec<String> = vec!["CANDLE.OFFICIAL_ADD".into(), "k".into()];
    words.extend(flat(2 * M));
    words.extend(flat(3 * M + 1));
    words.extend(flat(4 * M));
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    refused(
        &mut c,
        &w,
        "candle #2: time 180001 is not aligned to interval 1m (nearest earlier open time: 180000)",
    );
    // The same in a REST klines body: row 2 of 2.
    let body = format!(
        r#"[[{},"1","1","1","1","1",{},"1",1,"1","1","0"],[{},"1","1","1","1","1",{},"1",1,"1","1","0"]]"#,
        2 * M,
        3 * M - 1,
        3 * M + 1,
        4 * M - 1
    );
    refused(
        &mut c,
        &["CANDLE.OFFICIAL_ADD", "k", "JSON", &body],
        "candle #2: time 180001 is not aligned to interval 1m (nearest earlier open time: 180000)",
    );
    // A row that is not a klines row, second in its body.
    let body = format!(r#"[[{},"1","1","1","1","1"],{{"a":1}}]"#, 2 * M);
    refused(
        &mut c,
        &["CANDLE.OFFICIAL_ADD", "k", "JSON", &body],
        "row 2: a klines row is a JSON array",
    );
    // A single candle names no position.
    refused(
        &mut c,
        &["CANDLE.OFFICIAL_ADD", "k", "60001", "1", "1", "1", "1", "1"],
        "time 60001 is not aligned to interval 1m (nearest earlier open time: 60000)",
    );
    // Ticks count from 1 as well.
    refused(
        &mut c,
        &[
            "TICKS.PUSH",
            "k2",
            "s",
            "JSON",
            r#"{"time":1}"#,
            r#"{"x":1}"#,
        ],
        "document 2: JSON document has no integer time field 'time'",
    );
    assert_eq!(digest(&mut c), before, "no refused batch changed anything");
}

#[test]
fn bounded_options_state_the_range_they_enforce() {
    let srv = Server::start();
    let mut c = srv.conn();
    add(&mut c, "k", &[M]);
    int(&mut c, &["TICKS.PUSH", "t", "s", "1", "a", "b"]);
    let before = digest(&mut c);
    let live_max = format!("LIVE_MAX must be between 1 and {LIVE_MAX_LIMIT}");
    let live_ttl = format!("LIVE_TTL must be between 0 and {LIVE_TTL_LIMIT}");
    let retention = format!("RETENTION must be between 0 and {}", i64::MAX);
    let maxlen = format!("MAXLEN must be between 1 and {MAX_CAP}");
    let candle_count = "COUNT must be between 0 and 10000000".to_string();
    let tick_count = "COUNT must be between 0 and 100000".to_string();
    let over = |n: u64| (n + 1).to_string();
    let (lm, lt, mc) = (
        over(LIVE_MAX_LIMIT),
        over(LIVE_TTL_LIMIT),
        over(MAX_CAP as u64),
    );
    let create = |opt: &'static str, v: &str| -> Vec<String> {
        ["CANDLE.CREATE", "new", "INTERVAL", "1m", opt, v]
            .map(String::from)
            .to_vec()
    };
    let words = |w: &[&str]| -> Vec<String> { w.iter().map(|s| s.to_string()).collect() };
    let cases: Vec<(Vec<String>, &String)> = vec![
        (create("LIVE_MAX", "0"), &live_max),
        (create("LIVE_MAX", "-1"), &live_max),
        (create("LIVE_MAX", &lm), &live_max),
        (create("LIVE_TTL", "-1"), &live_ttl),
        (create("LIVE_TTL", &lt), &live_ttl),
        (create("RETENTION", "-1"), &retention),
        (
            words(&["CANDLE.RANGE_MERGED", "k", "-", "+", "COUNT", "-1"]),
            &candle_count,
        ),
        (
            words(&["CANDLE.RANGE_MERGED", "k", "-", "+", "COUNT", "10000001"]),
            &candle_count,
        ),
        (
            words(&["TICKS.PUSH", "t", "s", "MAXLEN", "0", "2", "a", "b"]),
            &maxlen,
        ),
        (
            words(&["TICKS.PUSH", "t", "s", "MAXLEN", "-1", "2", "a", "b"]),
            &maxlen,
        ),
        (
            words(&["TICKS.PUSH", "t", "s", "MAXLEN", &mc, "2", "a", "b"]),
            &maxlen,
        ),
        (
            words(&["TICKS.LATEST", "t", "s", "COUNT", "-1"]),
            &tick_count,
        ),
        (
            words(&["TICKS.LATEST", "t", "s", "COUNT", "100001"]),
            &tick_count,
        ),
        (words(&["TICKS.MERGED", "t", "COUNT", "-1"]), &tick_count),
        (
            words(&["TICKS.RANGE", "t", "s", "-", "+", "COUNT", "100001"]),
            &tick_count,
        ),
    ];
    for (w, want) in &cases {
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        refused(&mut c, &w, want);
    }
    assert_eq!(
        digest(&mut c),
        before,
        "no refused command changed anything"
    );
    assert_eq!(int(&mut c, &["EXISTS", "new"]), 0);
    // Both ends of every range are accepted.
    for (opt, v) in [
        ("LIVE_MAX", "1".to_string()),
        ("LIVE_MAX", LIVE_MAX_LIMIT.to_string()),
        ("LIVE_TTL", "0".to_string()),
        ("LIVE_TTL", LIVE_TTL_LIMIT.to_string()),
        ("RETENTION", "0".to_string()),
        ("RETENTION", i64::MAX.to_string()),
    ] {
        let w = create(opt, &v);
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        val(&mut c, &w);
        int(&mut c, &["DEL", "new"]);
    }
    for n in ["1", &MAX_CAP.to_string()] {
        int(
            &mut c,
            &["TICKS.PUSH", "t", "s2", "MAXLEN", n, "2", "a", "b"],
        );
    }
    for n in ["0", "100000"] {
        val(&mut c, &["TICKS.LATEST", "t", "s", "COUNT", n]);
    }
    for n in ["0", "10000000"] {
        val(&mut c, &["CANDLE.RANGE_MERGED", "k", "-", "+", "COUNT", n]);
    }
}

#[test]
fn json_tick_values_are_held_to_the_same_limit_as_field_values() {
    let srv = Server::start();
    let mut c = srv.conn();
    let too_long = format!("value longer than {MAX_VALUE_BYTES} bytes");
    let doc = |n: usize| format!(r#"{{"time":1,"lp":125.5,"v":"{}"}}"#, "x".repeat(n));
    let nested = |n: usize| format!(r#"{{"time":1,"v":["{}"]}}"#, "x".repeat(n - 4));
    // One value over the limit: refused, nothing written (the key is not even created).
    for d in [doc(MAX_VALUE_BYTES + 1), nested(MAX_VALUE_BYTES + 1)] {
        refused(&mut c, &["TICKS.PUSH", "b", "s", "JSON", &d], &too_long);
        assert_eq!(int(&mut c, &["EXISTS", "b"]), 0);
    }
    // The field/value form, the same.
    let big = "x".repeat(MAX_VALUE_BYTES + 1);
    refused(&mut c, &["TICKS.PUSH", "b", "s", "1", "v", &big], &too_long);
    assert_eq!(int(&mut c, &["EXISTS", "b"]), 0);
    // Exactly at the limit: accepted, and read back whole.
    assert_eq!(
        int(
            &mut c,
            &["TICKS.PUSH", "b", "s", "JSON", &doc(MAX_VALUE_BYTES)]
        ),
        1
    );
    assert_eq!(
        int(
            &mut c,
            &["TICKS.PUSH", "b", "s", "JSON", &nested(MAX_VALUE_BYTES)]
        ),
        2
    );
    let latest: String = q(
        &mut c,
        &["TICKS.LATEST", "b", "s", "COUNT", "2", "FORMAT", "JSON"],
    )
    .unwrap();
    let latest: serde_json::Value = serde_json::from_str(&latest).unwrap();
    assert_eq!(
        latest[0]["v"][0].as_str().unwrap().len(),
        MAX_VALUE_BYTES - 4
    );
    assert_eq!(latest[1]["v"].as_str().unwrap().len(), MAX_VALUE_BYTES);
    // A stream that has seen this shape (the push reuses it): still refused, nothing written,
    // also as the second document of a batch.
    let before = digest(&mut c);
    refused(
        &mut c,
        &["TICKS.PUSH", "b", "s", "JSON", &doc(MAX_VALUE_BYTES + 1)],
        &too_long,
    );
    refused(
        &mut c,
        &[
            "TICKS.PUSH",
            "b",
            "s",
            "JSON",
            &doc(3),
            &doc(MAX_VALUE_BYTES + 1),
        ],
        &format!("document 2: {too_long}"),
    );
    assert_eq!(digest(&mut c), before, "no refused push changed anything");
    assert_eq!(int(&mut c, &["TICKS.PUSH", "b", "s", "JSON", &doc(3)]), 3);
}
