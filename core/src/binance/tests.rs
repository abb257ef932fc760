//! Tests of the Binance parsers, most of them pitting the byte-cursor path against the
//! Value path on the same payloads.

use super::value::{klines_of, parse_json};
use super::*;

const ROW: &str = r#"[1725416820000,"56714.00000000","56714.01000000","56634.00000000","56642.00000000","11.02444000",1725416879999,"624782.95032640",1425,"2.24261000","127055.79808400","0"]"#;

#[test]
fn rest_row_keeps_every_field() {
    let k = parse_klines(ROW.as_bytes()).unwrap();
    assert_eq!(k.len(), 1);
    let c = &k[0].candle;
    assert_eq!(c.open_time, 1_725_416_820_000);
    assert_eq!(c.open.to_string(), "56714");
    assert_eq!(c.high.to_string(), "56714.01");
    assert_eq!(c.close_time, Some(1_725_416_879_999));
    assert_eq!(c.quote_volume.unwrap().to_string(), "624782.9503264");
    assert_eq!(c.trades, Some(1425));
    assert_eq!(c.taker_buy_quote.unwrap().to_string(), "127055.798084");
    assert_eq!(k[0].closed, None);
}

#[test]
fn rest_body_and_short_rows() {
    let body = format!("[{ROW},{ROW}]");
    assert_eq!(parse_klines(body.as_bytes()).unwrap().len(), 2);
    assert!(parse_klines(b"[]").unwrap().is_empty());
    let k = parse_klines(br#"[60000, 1, 2, 0.5, "1.5", 0.1]"#).unwrap();
    assert_eq!(k[0].candle.volume.to_string(), "0.1");
    assert_eq!(k[0].candle.close_time, None);
}

#[test]
fn ws_event_plain_wrapped_and_k() {
    // Real frame from the 2021-04-04 capture.
    let k = r#"{"t":1617566580000,"T":1617566639999,"s":"BTCUSDT","i":"1m","f":745522651,"L":745522892,"o":"57994.60000000","c":"58001.03000000","h":"58008.75000000","l":"57994.59000000","v":"6.45389500","n":242,"x":false,"q":"374344.56589795","V":"1.89113100","Q":"109689.77187181","B":"0"}"#;
    let ev = format!(r#"{{"e":"kline","E":1617566592358,"s":"BTCUSDT","k":{k}}}"#);
    let wrapped = format!(r#"{{"stream":"btcusdt@kline_1m","data":{ev}}}"#);
    for p in [k.to_string(), ev, wrapped] {
        let v = parse_klines(p.as_bytes()).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].closed, Some(false));
        assert_eq!(v[0].interval, Some(Interval::M1));
        assert_eq!(v[0].symbol.as_deref(), Some("BTCUSDT"));
        assert_eq!(v[0].candle.trades, Some(242));
        assert_eq!(v[0].candle.open.to_string(), "57994.6");
    }
}

#[test]
fn bad_payloads_are_errors() {
    for p in [
        "",
        "{",
        "null",
        "1",
        "\"x\"",
        "[1,2]",
        "[[1,2,3]]",
        r#"[60000,"a","1","1","1","1"]"#,
        r#"{"e":"trade","k":{}}"#,
        r#"{"t":60000}"#,
        r#"[60000.5,"1","1","1","1","1"]"#,
        r#"[[60000,"1","1","1","1","1"], 5]"#,
        r#"{"k":{"t":60000,"o":"1","h":"1","l":"1","c":"1","v":"1","x":"no"}}"#,
    ] {
        assert!(parse_klines(p.as_bytes()).is_err(), "{p}");
    }
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(parse_klines(deep.as_bytes()).is_err());
}

/// The Value path alone, as `parse_klines` was before the fast path.
fn value_path(p: &[u8]) -> Result<Vec<Kline>, String> {
    parse_json(p)
        .and_then(|v| klines_of(&v))
        .map_err(|e| e.to_string())
}

fn same_as_value_path(p: &[u8]) -> bool {
    agrees_with_value_path(p, fast::rest_klines(p))
}

/// `fast`, a fast path's answer on `p`, is the Value path's wherever it answers, and
/// `parse_klines` always is; whether the fast path answered.
fn agrees_with_value_path(p: &[u8], fast: Option<Vec<Kline>>) -> bool {
    if let Some(k) = &fast {
        assert_eq!(
            Ok(k.clone()),
            value_path(p),
            "{}",
            String::from_utf8_lossy(p)
        );
    }
    assert_eq!(
        parse_klines(p).map_err(|e| e.to_string()),
        value_path(p),
        "{}",
        String::from_utf8_lossy(p)
    );
    assert_eq!(
        incoming_view(parse_incoming(p)),
        value_path(p).map(incoming_of_klines),
        "{}",
        String::from_utf8_lossy(p)
    );
    fast.is_some()
}

type IncomingView = (Vec<(Candle, Option<bool>)>, Vec<Option<Interval>>);

/// `parse_incoming`'s answer in comparable form (`Incoming` has no `PartialEq`).
fn incoming_view(r: CoreResult<IncomingBatch>) -> Result<IncomingView, String> {
    r.map(|(inc, intervals)| {
        (
            inc.into_iter().map(|i| (i.candle, i.closed)).collect(),
            intervals,
        )
    })
    .map_err(|e| e.to_string())
}

/// What `parse_incoming` must give for these klines: their candles and flags, and
/// their intervals when any kline names one.
fn incoming_of_klines(k: Vec<Kline>) -> IncomingView {
    let intervals = if k.iter().any(|k| k.interval.is_some()) {
        k.iter().map(|k| k.interval).collect()
    } else {
        Vec::new()
    };
    (
        k.into_iter().map(|k| (k.candle, k.closed)).collect(),
        intervals,
    )
}

#[test]
fn parse_incoming_matches_value_path() {
    let frames = fixture("ws_kline_1m_combined.jsonl");
    let mut cases: Vec<Vec<u8>> = frames
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let k = r#"{"t":60000,"o":"1","h":"2","l":"0.5","c":"1.5","v":"1","i":"1m","x":true}"#;
    let no_i = r#"{"t":120000,"o":"1","h":"2","l":"0.5","c":"1.5","v":"1","x":false}"#;
    for p in [
        k.to_string(),
        no_i.to_string(),
        format!("[{k},{no_i}]"),
        format!("[{no_i},{k}]"),
        format!("[{no_i},{no_i}]"),
        format!(r#"{{"e":"kline","k":{k}}}"#),
        format!(r#"{{"stream":"x","data":{{"e":"kline","k":{no_i}}}}}"#),
        format!("[{ROW},{ROW}]"),
        format!("[{ROW},[60000, 1, 2, 0.5, \"1.5\", 0.1]]"),
        ROW.to_string(),
        "[]".to_string(),
        r#"{"k":{"t":60000,"o":"1","h":"1","l":"1","c":"1","v":"1","i":"7q"}}"#.into(),
        r#"[60000,"a","1","1","1","1"]"#.into(),
        "{".into(),
    ] {
        cases.push(p.into_bytes());
    }
    cases.push(fixture("rest_klines_BTCUSDT_1m_limit1000.json"));
    for p in &cases {
        agrees_with_value_path(p, None);
    }
    // The intervals are there exactly when a kline names one.
    let (inc, intervals) = parse_incoming(k.as_bytes()).unwrap();
    assert_eq!((inc.len(), intervals), (1, vec![Some(Interval::M1)]));
    let (inc, intervals) = parse_incoming(no_i.as_bytes()).unwrap();
    assert_eq!((inc.len(), intervals.len()), (1, 0));
    let (inc, intervals) = parse_incoming(format!("[{ROW},{ROW}]").as_bytes()).unwrap();
    assert_eq!((inc.len(), intervals.len()), (2, 0));
}

use candles_testkit::fixtures::bytes as fixture;

#[test]
fn fast_path_matches_value_path_on_fixtures() {
    for name in [
        "rest_klines_BTCUSDT_1m_limit1000.json",
        "rest_klines_BTCUSDT_5m_limit1000.json",
        "rest_klines_BTCUSDT_15m_limit1000.json",
        "rest_klines_BTCUSDT_1m_10rows_nautilus.json",
    ] {
        let body = fixture(name);
        assert!(same_as_value_path(&body), "{name}: fast path not taken");
        let Value::Array(rows) = serde_json::from_slice::<Value>(&body).unwrap() else {
            panic!("{name}");
        };
        for r in &rows {
            // Each row alone (one-row shape: Value path) and as a one-row body (fast).
            let one = serde_json::to_vec(r).unwrap();
            same_as_value_path(&one);
            let mut wrapped = b"[".to_vec();
            wrapped.extend_from_slice(&one);
            wrapped.push(b']');
            assert!(same_as_value_path(&wrapped), "{name}");
        }
        // Pretty-printed bodies keep the fast path (whitespace between tokens).
        let pretty = serde_json::to_vec_pretty(&rows).unwrap();
        assert!(same_as_value_path(&pretty), "{name}: pretty");
    }
    let ws = fixture("ws_kline_1m_combined.jsonl");
    for line in ws.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(!same_as_value_path(line));
    }
}

/// The single-row reader (and `parse_one_kline`) agree with the Value path.
fn one_row_agrees(p: &[u8]) -> bool {
    let fast = fast::rest_row(p);
    assert_eq!(
        parse_one_kline(p).is_some(),
        fast.is_some() || fast::ws_kline(p).is_some()
    );
    agrees_with_value_path(p, fast.map(|k| vec![k]))
}

#[test]
fn single_row_fast_path_matches_value_path() {
    for name in [
        "rest_klines_BTCUSDT_1m_limit1000.json",
        "rest_klines_BTCUSDT_5m_limit1000.json",
        "rest_klines_BTCUSDT_1m_10rows_nautilus.json",
    ] {
        let Value::Array(rows) = serde_json::from_slice::<Value>(&fixture(name)).unwrap() else {
            panic!("{name}");
        };
        for r in &rows {
            let one = serde_json::to_vec(r).unwrap();
            assert!(one_row_agrees(&one), "{name}: fast path not taken");
            assert_eq!(
                parse_one_kline(&one).map(|k| vec![k]),
                Some(value_path(&one).unwrap())
            );
            let pretty = serde_json::to_vec_pretty(r).unwrap();
            assert!(one_row_agrees(&pretty), "{name}: pretty");
            let mut spaced = b" \n".to_vec();
            spaced.extend_from_slice(&one);
            spaced.extend_from_slice(b"\r\t ");
            assert!(one_row_agrees(&spaced), "{name}: spaced");
        }
    }
    // Short rows, and every malformed shape of the body test without its outer brackets.
    for c in [
        r#"[60000,"1","1","1","1","1"]"#,
        r#"[60000,"1","1","1","1","1",119999]"#,
        r#"[60000,"1","1","1","1","1",119999,"1",5,"1","1"]"#,
        r#"[60000,"1","1","1","1","1",119999,"1",5,"1","1","0",1]"#,
        r#"[60000,"1","1","1","1","1",119999,"1",5,"1","1",null]"#,
        r#"[60000,"1","1","1","1","1",119999,"1",5,"1","1",7]"#,
        r#"[60000,"1","1","1","1","1",119999,"1",-1]"#,
        r#"[60000,"1","1","1","1","1"]]"#,
        r#"[60000,"1","1","1","1","1"],"#,
        r#"[60000,"1","1","1","1"]"#,
        r#"[60000,1,"1","1","1","1"]"#,
        r#"[060000,"1","1","1","1","1"]"#,
        r#"[-0,"1","1","1","1","1"]"#,
        r#"[6e4,"1","1","1","1","1"]"#,
        r#"[9223372036854775808,"1","1","1","1","1"]"#,
        r#"[60000,"1\u0030","1","1","1","1"]"#,
        r#"[60000,"x","1","1","1","1"]"#,
        "[60000,\"1\t\",\"1\",\"1\",\"1\",\"1\"]",
        "[]",
        "[",
        "",
    ] {
        one_row_agrees(c.as_bytes());
    }
    // Every single-byte deletion and a set of substitutions of a full row.
    let b = ROW.as_bytes();
    assert!(one_row_agrees(b));
    for i in 0..b.len() {
        let mut d = b.to_vec();
        d.remove(i);
        one_row_agrees(&d);
        for sub in [
            b'0', b'9', b'-', b'"', b',', b'[', b']', b' ', b'.', b'e', b'\\', b'x',
        ] {
            let mut d = b.to_vec();
            d[i] = sub;
            one_row_agrees(&d);
        }
    }
}

#[test]
fn fast_path_matches_value_path_on_malformed_input() {
    let row = ROW;
    let cases: Vec<String> = vec![
        String::new(),
        "[".into(),
        "[[".into(),
        "[]".into(),
        "[[]]".into(),
        " [ [60000,\"1\",\"1\",\"1\",\"1\",\"1\"] ] ".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"],]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"]] x".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"]]]".into(),
        "[[060000,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[-0,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000.0,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[6e4,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[\"60000\",\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000,1,\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000,\"1\\u0030\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000,\"x\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000,\"-1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",-1]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",18446744073709551616]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",5,\"1\",\"1\",\"0\",1]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",5,\"1\",\"1\",null]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\",119999,\"1\",5,\"1\",\"1\",7]]".into(),
        "[[9223372036854775808,\"1\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"],[1]]".into(),
        "[[60000,\"1\",\"1\",\"1\",\"1\",\"1\"],5]".into(),
        "[[60000,\"1\u{e9}\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        "[[60000,\"1\t\",\"1\",\"1\",\"1\",\"1\"]]".into(),
        format!("[{row},{row}]"),
        format!("[{row} , {row}]\n"),
        format!("[{row}{row}]"),
    ];
    for c in &cases {
        same_as_value_path(c.as_bytes());
    }
    // Every single-byte deletion and a set of substitutions of a two-row body.
    let body = format!("[{row},{row}]");
    let b = body.as_bytes();
    for i in 0..b.len() {
        let mut d = b.to_vec();
        d.remove(i);
        same_as_value_path(&d);
        for sub in [
            b'0', b'-', b'"', b',', b'[', b']', b' ', b'.', b'e', b'\\', b'x',
        ] {
            let mut d = b.to_vec();
            d[i] = sub;
            same_as_value_path(&d);
        }
    }
}

/// Rows whose numbers have random digit counts and shapes, around the fast readers'
/// limits (16-digit integers, 15.8-digit decimals, leading zeros, signs, exponents).
#[test]
fn fast_path_matches_value_path_on_random_numbers() {
    let mut rng = crate::test_rng::XorShift(0x0123_4567_89ab_cdef);
    let mut next = move || rng.next();
    let mut digits = |n: u64, r: u64| -> String {
        (0..n)
            .map(|i| char::from(b'0' + ((r >> (i % 16 * 4)) % 10) as u8))
            .collect()
    };
    let mut fast = 0;
    for _ in 0..20_000 {
        let r = next();
        let r2 = next();
        let int = |r: u64, d: &mut dyn FnMut(u64, u64) -> String| -> String {
            let mut s = String::new();
            if r.is_multiple_of(17) {
                s.push('-');
            }
            let n = if r.is_multiple_of(5) {
                r % 21
            } else {
                1 + r % 17
            };
            s += &d(n, r >> 8);
            if r.is_multiple_of(23) {
                s.push_str(".0");
            }
            s
        };
        let dec = |r: u64, d: &mut dyn FnMut(u64, u64) -> String| -> String {
            let mut s = String::from("\"");
            if r.is_multiple_of(19) {
                s.push('-');
            }
            s += &d(r % 17, r >> 5);
            if !r.is_multiple_of(4) {
                s.push('.');
                s += &d((r >> 3) % 11, r >> 9);
            }
            if r.is_multiple_of(29) {
                s.push_str("e1");
            }
            s.push('"');
            s
        };
        let row = format!(
            "[{},{},{},{},{},{},{},{},{},{},{},\"0\"]",
            int(r, &mut digits),
            dec(r2, &mut digits),
            dec(r2.rotate_left(7), &mut digits),
            dec(r2.rotate_left(14), &mut digits),
            dec(r2.rotate_left(21), &mut digits),
            dec(r2.rotate_left(28), &mut digits),
            int(r.rotate_left(9), &mut digits),
            dec(r2.rotate_left(35), &mut digits),
            int(r.rotate_left(19), &mut digits),
            dec(r2.rotate_left(42), &mut digits),
            dec(r2.rotate_left(49), &mut digits),
        );
        fast += usize::from(same_as_value_path(format!("[{row}]").as_bytes()));
    }
    assert!(fast > 100, "{fast}");
}

/// Wherever the compact row reader answers, the general one reads the same candle and
/// stops at the same place: fixture rows, then rows with random numbers and random edits.
#[test]
fn compact_row_matches_general_row() {
    use crate::test_rng::XorShift;
    let mut rows: Vec<Vec<u8>> = Vec::new();
    for name in [
        "rest_klines_BTCUSDT_1m_limit1000.json",
        "rest_klines_BTCUSDT_5m_limit1000.json",
        "rest_klines_BTCUSDT_15m_limit1000.json",
        "rest_klines_BTCUSDT_1m_10rows_nautilus.json",
    ] {
        let Value::Array(all) = serde_json::from_slice::<Value>(&fixture(name)).unwrap() else {
            panic!("{name}");
        };
        rows.extend(all.iter().map(|r| serde_json::to_vec(r).unwrap()));
    }
    let mut r = XorShift(0xc0ff_ee00_1234_5678);
    // Mostly the compact shape, now and then a number it must refuse (a sign, a leading
    // zero, too many digits, an exponent, a fraction in an integer field).
    let num = |r: &mut XorShift, int: bool| -> String {
        let mut s = String::new();
        if r.below(40) == 0 {
            s.push('-');
        }
        let n = if r.below(10) == 0 {
            r.below(20)
        } else {
            1 + r.below(9)
        };
        for i in 0..n {
            let d = if i == 0 && r.below(20) > 0 {
                1 + r.below(9)
            } else {
                r.below(10)
            };
            s.push(char::from(b'0' + d as u8));
        }
        if (!int && r.below(4) > 0) || r.below(40) == 0 {
            s.push('.');
            for _ in 0..r.below(11) {
                s.push(char::from(b'0' + r.below(10) as u8));
            }
        }
        if r.below(60) == 0 {
            s.push_str("e2");
        }
        s
    };
    for _ in 0..30_000 {
        let f: Vec<String> = (0..12)
            .map(|i| num(&mut r, [0, 6, 8].contains(&i)))
            .collect();
        let q = |i: usize| format!("\"{}\"", f[i]);
        let row = format!(
            "[{},{},{},{},{},{},{},{},{},{},{},{}]",
            f[0],
            q(1),
            q(2),
            q(3),
            q(4),
            q(5),
            f[6],
            q(7),
            f[8],
            q(9),
            q(10),
            if r.below(10) == 0 {
                q(11)
            } else {
                "\"0\"".into()
            }
        );
        rows.push(row.into_bytes());
    }
    let edits: Vec<Vec<u8>> = rows
        .iter()
        .take(3000)
        .map(|row| {
            let mut e = row.clone();
            let i = r.below(e.len() as u64) as usize;
            match r.below(3) {
                0 => {
                    e.remove(i);
                }
                1 => e[i] = b"0-\",[]. e\\x9"[r.below(12) as usize],
                _ => e.insert(i, b' '),
            }
            e.extend_from_slice(b",[");
            e
        })
        .collect();
    rows.extend(edits);
    let mut compact = 0;
    for row in &rows {
        let [c, g] = fast::both_rows(row);
        if let Some(c) = c {
            compact += 1;
            assert_eq!(Some(c), g, "{}", String::from_utf8_lossy(row));
        }
    }
    assert!(compact > 5_000, "{compact}");
}

/// Rows in Binance's decimal shape (8 fractional digits, what the compact reader's
/// fixed-size decimal reader takes) around its limits: 1..=9 integer digits, 7 to 9
/// fractional ones, zero fractions, bodies ending right after a short decimal, and random
/// byte edits. The fast path answers as the Value path does, and the compact row reader
/// as the general one.
#[test]
fn fixed8_rows_match_value_path() {
    use crate::test_rng::XorShift;
    let mut r = XorShift(0x8a5c_3e1f_d240_9b77);
    let dec = |r: &mut XorShift| -> String {
        let mut s = String::new();
        for i in 0..1 + r.below(9) {
            let d = if i == 0 { 1 + r.below(9) } else { r.below(10) };
            s.push(char::from(b'0' + d as u8));
        }
        s.push('.');
        let n = match r.below(20) {
            0 => 7,
            1 => 9,
            _ => 8,
        };
        let zeros = r.below(10);
        for i in 0..n {
            let d = if i >= zeros { 0 } else { r.below(10) };
            s.push(char::from(b'0' + d as u8));
        }
        format!("\"{s}\"")
    };
    let mut fast = 0;
    for i in 0..20_000 {
        let rows: Vec<String> = (0..1 + r.below(3))
            .map(|_| {
                let t = 1_725_416_820_000 + 60_000 * r.below(1000);
                let d: Vec<String> = (0..8).map(|_| dec(&mut r)).collect();
                format!(
                    "[{t},{},{},{},{},{},{},{},{},{},{},\"0\"]",
                    d[0],
                    d[1],
                    d[2],
                    d[3],
                    d[4],
                    t + 59_999,
                    d[5],
                    r.below(100_000),
                    d[6],
                    d[7],
                )
            })
            .collect();
        let mut body = format!("[{}]", rows.join(",")).into_bytes();
        if i % 2 == 1 {
            let at = r.below(body.len() as u64) as usize;
            body[at] = b"0123456789.-\",[] e"[r.below(17) as usize];
        }
        fast += usize::from(same_as_value_path(&body));
        if let Some(row) = body.get(1..) {
            let [c, g] = fast::both_rows(row);
            if c.is_some() {
                assert_eq!(c, g, "{}", String::from_utf8_lossy(row));
            }
        }
    }
    assert!(fast > 5_000, "{fast}");
}

#[test]
fn routes_stream_frames() {
    let agg = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1617566591315,"s":"BTCUSDT","a":665076760,"p":"58001.03000000","q":"0.08620500","f":745522877,"l":745522877,"T":1617566591314,"m":true,"M":true}}"#;
    match parse_stream_frame(agg.as_bytes()).unwrap() {
        StreamEvent::Trade(t) => {
            assert_eq!(t.price.to_string(), "58001.03");
            assert_eq!(t.qty.to_string(), "0.086205");
            assert_eq!(t.id, Some(665076760));
            assert_eq!(t.time, 1617566591314);
        }
        other => panic!("{other:?}"),
    }
    let book = r#"{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"1","A":"1"}}"#;
    assert_eq!(
        parse_stream_frame(book.as_bytes()).unwrap(),
        StreamEvent::Other
    );
}

/// `fast::ws_kline` answers only as the Value path does: every kline frame of the
/// captures in its three shapes (frame, event, `k` object), then edited ones (bytes
/// changed, members repeated, reordered, retyped, nested, spaced).
#[test]
fn ws_kline_fast_path_matches_value_path() {
    use crate::test_rng::XorShift;
    let check = |p: &[u8]| agrees_with_value_path(p, fast::ws_kline(p).map(|k| vec![k]));
    let mut docs: Vec<Vec<u8>> = Vec::new();
    for name in [
        "ws_kline_1m_combined.jsonl",
        "ws_capture_spot_2021-04-04_BTCUSDT_ETHUSDT_DOTUSDT.jsonl",
        "ws_capture_spot_2021-10-12_4symbols.jsonl",
    ] {
        for line in fixture(name).split(|b| *b == b'\n') {
            let kline = b"\"e\":\"kline\"";
            if !line.windows(kline.len()).any(|w| w == kline) {
                continue;
            }
            let mut v: Value = serde_json::from_slice(line).unwrap();
            if let Some(frame) = v.get("frame") {
                // The capture files wrap each frame with its receive time.
                v = frame.clone();
                docs.push(serde_json::to_vec(&v).unwrap());
            } else {
                docs.push(line.to_vec());
            }
            docs.push(serde_json::to_vec(&v["data"]).unwrap());
            docs.push(serde_json::to_vec(&v["data"]["k"]).unwrap());
            docs.push(serde_json::to_vec_pretty(&v).unwrap());
        }
    }
    let mut fast_hits = 0;
    for d in &docs {
        fast_hits += usize::from(check(d));
    }
    assert!(docs.len() > 1000, "{} kline documents", docs.len());
    assert_eq!(
        fast_hits,
        docs.len(),
        "every real kline shape takes the fast path"
    );

    let edits: [(&[u8], &[u8]); 18] = [
        (b"\"x\":false", b"\"x\":null"),
        (b"\"x\":false", b"\"x\":0"),
        (b"\"x\":false", b"\"x\" : true"),
        (b"\"t\":", b"\"t\":\"1\",\"t\":"),
        (b"\"o\":", b"\"z\":{},\"o\":"),
        (b"\"o\":", b"\"z\":1.5,\"o\":"),
        (b"\"o\":", b"\"z\":\"\\u0041\",\"o\":"),
        (b"\"o\":\"", b"\"o\":1"),
        (b"\"i\":\"1m\"", b"\"i\":\"7m\""),
        (b"\"i\":\"1m\"", b"\"i\":1"),
        (b"\"s\":", b"\"s\":7,\"y\":"),
        (b"\"e\":\"kline\"", b"\"e\":\"trade\""),
        (b"\"e\":\"kline\"", b"\"e\":5"),
        (b"\"n\":", b"\"n\":-"),
        (b"\"data\":", b"\"data\":[],\"x\":"),
        (b"\"k\":", b"\"k\":\"no\",\"j\":"),
        (b"\"T\":", b"\"T\":1e3,\"U\":"),
        (b"}", b",}"),
    ];
    let base: Vec<Vec<u8>> = docs.iter().step_by(7).cloned().collect();
    for d in &base {
        for (from, to) in edits {
            if let Some(at) = d.windows(from.len()).position(|w| w == from) {
                check(&[&d[..at], to, &d[at + from.len()..]].concat());
            }
        }
    }
    let mut rng = XorShift(0x005e_ed0f_ca7e);
    let alphabet = b"{}[]\",:0123456789.-etrufalsnxkdi \\";
    for _ in 0..20_000 {
        let d = &base[rng.below(base.len() as u64) as usize];
        let mut e = d.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(e.len() as u64) as usize;
            match rng.below(3) {
                _ if at >= e.len() => e.push(b'}'),
                0 => e[at] = alphabet[rng.below(alphabet.len() as u64) as usize],
                1 => {
                    e.remove(at);
                }
                _ => e.insert(at, alphabet[rng.below(alphabet.len() as u64) as usize]),
            }
        }
        check(&e);
    }
}
