//! Tests of the tick book as a whole: JSON round trips, the codec's number forms, pushes,
//! reads against a model, the canonical encoding and its corruption checks, memory.

use super::book::ENCODING_MAGIC;
use super::codec::{format_dec, num_repr, Num, Reader, MAX_DEC_SCALE};
use super::value::canonical_i64;
use super::*;
use crate::error::{CoreError, CoreResult};
use crate::varint::{put_bytes, put_u64};
use std::collections::{BTreeMap, VecDeque};

const ORIGINAL: &str = r#"{"ft": 1752810305, "token": "26001", "lp": 125.5, "pc": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}"#;

fn compact(doc: &str) -> String {
    // Whitespace outside strings removed; the documents used here have none inside strings.
    doc.chars().filter(|c| !c.is_whitespace()).collect()
}

use crate::test_rng::Lcg;

fn pairs(time: i64, kv: &[(&str, &str)]) -> Tick {
    Tick::from_pairs(
        time,
        kv.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    )
    .unwrap()
}

fn val(t: &Tick, f: &str) -> String {
    t.fields
        .iter()
        .find(|(n, _)| n == f.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(&v.text).into_owned())
        .unwrap()
}

#[test]
fn original_shape_round_trips_exactly() {
    let t = Tick::from_json(ORIGINAL.as_bytes(), b"ft").unwrap();
    assert_eq!(t.time, 1752810305);
    assert_eq!(t.time_pos, 0);
    let mut b = TickBook::new();
    assert_eq!(
        b.push(b"optiontick:26001", None, 1000, std::slice::from_ref(&t))
            .unwrap(),
        1
    );
    let got = b.latest(b"optiontick:26001", 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to_json(None), compact(ORIGINAL));
    // time field in the middle keeps its position; numbers keep their exact text
    let doc = r#"{"a":"x","T":-5,"p":0.10,"q":1e5,"r":-0.0,"s":1752810305,"n":null,"b":true,"c":false,"o":{"x": [1, 2.50]},"e":[]}"#;
    let t = Tick::from_json(doc.as_bytes(), b"T").unwrap();
    assert_eq!(t.time_pos, 1);
    b.push(b"x", None, 10, &[t.clone(), t]).unwrap();
    for got in b.latest(b"x", 10).unwrap() {
        assert_eq!(got.to_json(None), doc);
        assert_eq!(
            got.to_json(Some(b"x")),
            format!("{{\"stream\":\"x\",{}", &doc[1..])
        );
    }
}

#[test]
fn string_values_round_trip_exactly() {
    let texts: Vec<Vec<u8>> = [
        "125.5",
        "0.10",
        "-0.0",
        "007",
        "",
        "0",
        "-0",
        "1e5",
        "58001.03000000",
        "-0.5",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "0.000000000000000001",
        "12:05:05",
        "12:05:06",
        "1.",
        ".5",
        "+1",
        "1.50",
        "1.5",
        "1.55",
        "x\u{e9}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([vec![0xff, 0x00, 0x80], vec![b'a'; 3000]])
    .collect();
    let mut b = TickBook::new();
    // the same field over and over exercises every delta op against each previous value
    for (i, t) in texts.iter().enumerate() {
        b.push(
            b"s",
            None,
            1000,
            &[Tick::from_pairs(i as i64, vec![(b"v".to_vec(), t.clone())]).unwrap()],
        )
        .unwrap();
    }
    let got = b.range(b"s", i64::MIN, i64::MAX, None).unwrap();
    assert_eq!(got.len(), texts.len());
    for (g, t) in got.iter().zip(&texts) {
        assert_eq!(&g.fields[0].1, &Value::str(t.clone()));
    }
    // number texts from JSON as numbers
    for n in [
        "125.5",
        "0.10",
        "-0.0",
        "0",
        "-0",
        "1e5",
        "1E-7",
        "123456789012345678901234567890",
        "0.35",
        "0.36",
    ] {
        let doc = format!("{{\"time\":1,\"n\":{n}}}");
        let t = Tick::from_json(doc.as_bytes(), b"time").unwrap();
        b.push(b"n", None, 1000, &[t]).unwrap();
        assert_eq!(b.latest(b"n", 1).unwrap()[0].to_json(None), doc);
    }
}

/// The two-pass `num_repr` the one-pass one replaced.
fn num_repr_reference(t: &[u8]) -> Num {
    if t.is_empty() || t.len() > 40 {
        return Num::None;
    }
    if let Some(v) = canonical_i64(t) {
        return Num::Int(v);
    }
    let (neg, rest) = match t.split_first() {
        Some((b'-', r)) => (true, r),
        _ => (false, t),
    };
    let dot = match rest.iter().position(|&c| c == b'.') {
        Some(d) => d,
        None => return Num::None,
    };
    let (int, frac) = (
        rest.get(..dot).unwrap_or(&[]),
        rest.get(dot + 1..).unwrap_or(&[]),
    );
    if int.is_empty() || frac.is_empty() || frac.len() > MAX_DEC_SCALE as usize {
        return Num::None;
    }
    if !int.iter().chain(frac.iter()).all(u8::is_ascii_digit)
        || (int.len() > 1 && int.first() == Some(&b'0'))
    {
        return Num::None;
    }
    let mut m: i128 = 0;
    for &c in int.iter().chain(frac.iter()) {
        m = match m
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(c - b'0')))
        {
            Some(v) => v,
            None => return Num::None,
        };
        if m > i128::from(i64::MAX) {
            return Num::None;
        }
    }
    if neg {
        if m == 0 {
            return Num::None; // "-0.0" would print back as "0.0"
        }
        m = -m;
    }
    match i64::try_from(m) {
        Ok(m) => Num::Dec(m, frac.len() as u8),
        Err(_) => Num::None,
    }
}

#[test]
fn num_repr_matches_the_reference() {
    let mut rng = Lcg(77);
    let mut cases: Vec<Vec<u8>> = [
        "",
        "0",
        "-0",
        "00",
        "01",
        "-01",
        "1",
        "-1",
        "+1",
        "0.0",
        "-0.0",
        "-0.00",
        "0.",
        ".0",
        "-.5",
        "1.",
        "1.2.3",
        "1e5",
        "1.5e3",
        "00.5",
        "0.5",
        "-0.5",
        "10.50",
        "58001.03",
        "58001.03000000",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "922337203685477580.7",
        "922337203685477580.8",
        "-922337203685477580.8",
        "-922337203685477580.9",
        "0.000000000000000001",
        "0.0000000000000000001",
        "1.000000000000000000",
        "12:05:05",
        // The unchecked (at most 19 bytes) and checked passes' border.
        "9999999999999999999",
        "-999999999999999999",
        "99999999999999999.9",
        "9999999999999999.99",
        "0.99999999999999999",
        "0.00000000000000001",
        "99999999999999999999",
        "-9999999999999999999",
        "optiontick",
        "26001",
        "1617566591314",
        " 1",
        "1 ",
        "-",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    cases.push(vec![b'1'; 41]);
    cases.push(vec![b'1'; 40]);
    let mut forty = vec![b'0', b'.'];
    forty.extend(std::iter::repeat_n(b'1', 38));
    cases.push(forty);
    let alphabet = b"0123456789-.+e :x";
    for _ in 0..200_000 {
        let len = rng.pick(26);
        let digits = rng.pick(2) == 0;
        cases.push(
            (0..len)
                .map(|_| {
                    if digits && rng.pick(4) != 0 {
                        b'0' + rng.pick(10) as u8
                    } else {
                        alphabet[rng.pick(alphabet.len())]
                    }
                })
                .collect(),
        );
    }
    for c in cases {
        assert_eq!(
            num_repr(&c),
            num_repr_reference(&c),
            "{:?}",
            String::from_utf8_lossy(&c)
        );
    }
}

#[test]
fn decimal_repr_prints_back() {
    let mut r = Lcg(7);
    for _ in 0..20000 {
        let len = 1 + r.below(22) as usize;
        let s: String = (0..len)
            .map(|_| b"0123456789.-"[r.below(12) as usize] as char)
            .collect();
        match num_repr(s.as_bytes()) {
            Num::Int(v) => assert_eq!(v.to_string(), s),
            Num::Dec(m, sc) => {
                let mut o = Vec::new();
                format_dec(&mut o, m, sc);
                assert_eq!(String::from_utf8(o).unwrap(), s);
            }
            Num::None => {}
        }
    }
}

#[test]
fn json_errors() {
    let e = |doc: &str, tf: &str| {
        Tick::from_json(doc.as_bytes(), tf.as_bytes())
            .unwrap_err()
            .message()
            .to_string()
    };
    assert!(
        e("{", "time").contains("invalid JSON"),
        "{}",
        e("{", "time")
    );
    assert!(e("[1,2]", "time").contains("must be an object"));
    assert!(e("42", "time").contains("must be an object"));
    assert!(e(r#"{"a":1}"#, "time").contains("no integer time field 'time'"));
    assert!(e(r#"{"time":1.5}"#, "time").contains("must be an integer"));
    assert!(e(r#"{"time":"1"}"#, "time").contains("must be an integer"));
    assert!(e(r#"{"time":1.0}"#, "time").contains("must be an integer"));
    assert!(e(r#"{"time":99999999999999999999}"#, "time").contains("must be an integer"));
    assert!(e(r#"{"time":1,"a":1,"a":2}"#, "time").contains("duplicate field"));
    assert!(e(r#"{"time":1,"time":2}"#, "time").contains("duplicate field"));
    assert!(e(r#"{"time":1} x"#, "time").contains("invalid JSON"));
    assert!(Tick::from_json(br#"{"time":1,"":2}"#, b"time").is_err());
    let e = Tick::from_pairs(1, vec![(b"time".to_vec(), b"1".to_vec())]).unwrap_err();
    assert!(e.message().contains("reserved"));
    assert!(Tick::from_pairs(
        1,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"a".to_vec(), b"2".to_vec())
        ]
    )
    .is_err());
    assert!(Tick::from_pairs(1, vec![(vec![b'a'; MAX_NAME_BYTES + 1], b"1".to_vec())]).is_err());
    assert!(Tick::from_pairs(1, vec![(b"a".to_vec(), vec![0; MAX_VALUE_BYTES + 1])]).is_err());
    // The JSON form holds values to the same limit on every path (the flat fast path, its
    // template path, the serde path), counting a string's text without its quotes.
    let doc = |n: usize, nested: bool| {
        if nested {
            format!(r#"{{"time":1,"v":["{}"]}}"#, "x".repeat(n - 4))
        } else {
            format!(r#"{{"time":1,"v":"{}"}}"#, "x".repeat(n))
        }
    };
    for nested in [false, true] {
        let mut b = TickBatch::new();
        // Twice: the second push of a flat shape goes by the template.
        for _ in 0..2 {
            b.push_json(doc(MAX_VALUE_BYTES, nested).as_bytes(), b"time")
                .unwrap();
            let e = b
                .push_json(doc(MAX_VALUE_BYTES + 1, nested).as_bytes(), b"time")
                .unwrap_err();
            assert_eq!(
                e.message(),
                format!("value longer than {MAX_VALUE_BYTES} bytes")
            );
        }
        assert_eq!(b.len(), 2);
    }
    assert!(Tick::from_pairs(
        1,
        (0..=MAX_FIELDS)
            .map(|i| (format!("f{i}").into_bytes(), vec![]))
            .collect()
    )
    .is_err());
}

#[test]
fn push_errors_change_nothing() {
    let mut b = TickBook::new();
    let t = pairs(1, &[("a", "1")]);
    assert!(b
        .push(b"s", Some(0), 100, std::slice::from_ref(&t))
        .is_err());
    assert!(b
        .push(b"s", Some(MAX_CAP + 1), 100, std::slice::from_ref(&t))
        .is_err());
    assert!(b.push(b"s", None, 0, std::slice::from_ref(&t)).is_err());
    assert!(b.push(b"", None, 10, std::slice::from_ref(&t)).is_err());
    let mut bad = t.clone();
    bad.fields.push((b"a".to_vec(), Value::str("dup")));
    assert!(b.push(b"s", None, 10, &[t.clone(), bad]).is_err());
    assert_eq!(b.stream_count(), 0);
    assert_eq!(b.tick_count(), 0);
    b.push(b"s", None, 10, std::slice::from_ref(&t)).unwrap();
    let mut bad = t.clone();
    bad.fields[0].1 = Value::num("1x");
    assert!(b.push(b"s", None, 10, &[t.clone(), bad]).is_err());
    assert_eq!(b.tick_count(), 1);
    // dictionary limit is checked up front
    let many: Vec<Tick> = (0..MAX_NAMES_PER_STREAM / MAX_FIELDS + 1)
        .map(|i| {
            Tick::from_pairs(
                1,
                (0..MAX_FIELDS)
                    .map(|j| (format!("f{i}_{j}").into_bytes(), b"v".to_vec()))
                    .collect(),
            )
            .unwrap()
        })
        .collect();
    let e = b.push(b"s", None, 1000, &many).unwrap_err();
    assert!(e.message().contains("distinct field names"));
    assert_eq!(b.tick_count(), 1);
}

/// Reference model: every tick with (time, seq), newest-first / ascending by sorting.
#[derive(Default)]
struct Model {
    streams: BTreeMap<Vec<u8>, (usize, VecDeque<Tick>)>,
    seq: u64,
}
impl Model {
    fn push(&mut self, s: &[u8], maxlen: Option<usize>, cap: usize, t: &Tick) -> usize {
        let e = self
            .streams
            .entry(s.to_vec())
            .or_insert((maxlen.unwrap_or(cap), VecDeque::new()));
        if let Some(m) = maxlen {
            e.0 = m;
        }
        let mut t = t.clone();
        t.seq = self.seq;
        self.seq += 1;
        e.1.push_back(t);
        while e.1.len() > e.0 {
            e.1.pop_front();
        }
        e.1.len()
    }
    fn sorted(&self, s: &[u8]) -> Vec<Tick> {
        let mut v: Vec<Tick> = self
            .streams
            .get(s)
            .map(|e| e.1.iter().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|t| (t.time, t.seq));
        v
    }
}

type Fields = Vec<(Vec<u8>, Value)>;

fn strip(v: Vec<Tick>) -> Vec<(i64, Fields)> {
    v.into_iter().map(|t| (t.time, t.fields)).collect()
}

#[test]
fn out_of_order_latest_and_range() {
    let mut b = TickBook::new();
    for (i, t) in [5, 3, 7, 3, 1, 9, 8, 9].iter().enumerate() {
        b.push(b"s", None, 100, &[pairs(*t, &[("i", &i.to_string())])])
            .unwrap();
    }
    let got: Vec<(i64, String)> = b
        .latest(b"s", 100)
        .unwrap()
        .iter()
        .map(|t| (t.time, val(t, "i")))
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
    let got: Vec<(i64, String)> = b
        .range(b"s", 3, 8, None)
        .unwrap()
        .iter()
        .map(|t| (t.time, val(t, "i")))
        .collect();
    let want: Vec<(i64, String)> = [(3, 1), (3, 3), (5, 0), (7, 2), (8, 6)]
        .iter()
        .map(|(t, i)| (*t, i.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(b.range(b"s", 3, 8, Some(2)).unwrap().len(), 2);
    assert!(b.range(b"s", 8, 3, None).unwrap().is_empty());
    assert!(b.latest(b"nope", 5).unwrap().is_empty());
    assert_eq!(b.latest(b"s", 0).unwrap().len(), 0);
    assert_eq!(b.streams(None).unwrap()[0].newest_time, Some(9));
}

#[test]
fn randomized_against_model() {
    for (seed, cap, jitter) in [
        (1u64, 37usize, 5i64),
        (2, 5, 100),
        (3, 200, 0),
        (4, 1, 3),
        (5, 64, 1000),
    ] {
        let mut r = Lcg(seed);
        let mut b = TickBook::new();
        let mut m = Model::default();
        let names: Vec<Vec<u8>> = (0..4).map(|i| format!("st:{i}").into_bytes()).collect();
        let mut clock = 1_000_000i64;
        for step in 0..3000 {
            clock += r.below(3) as i64;
            let time = clock
                - if jitter > 0 {
                    r.below(jitter as u64) as i64
                } else {
                    0
                };
            let s = &names[r.below(names.len() as u64) as usize];
            let maxlen = if r.below(50) == 0 {
                Some(1 + r.below(cap as u64 * 2) as usize)
            } else {
                None
            };
            let mut kv = vec![(
                "lp".to_string(),
                format!("{}.{}", 100 + r.below(5), r.below(100)),
            )];
            if r.below(3) == 0 {
                kv.push(("rt".into(), format!("12:05:{:02}", r.below(60))));
            }
            if r.below(7) == 0 {
                kv.push((format!("x{}", r.below(9)), r.below(1000).to_string()));
            }
            let t = Tick::from_pairs(
                time,
                kv.into_iter()
                    .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
                    .collect(),
            )
            .unwrap();
            let l1 = b.push(s, maxlen, cap, std::slice::from_ref(&t)).unwrap();
            let l2 = m.push(s, maxlen, cap, &t);
            assert_eq!(l1, l2);
            if step % 97 == 0 || step > 2950 {
                let total: usize = m.streams.values().map(|e| e.1.len()).sum();
                assert_eq!(b.tick_count(), total);
                for n in &names {
                    let sorted = m.sorted(n);
                    let mut desc = sorted.clone();
                    desc.reverse();
                    let k = r.below(sorted.len() as u64 + 3) as usize;
                    assert_eq!(
                        strip(b.latest(n, k).unwrap()),
                        strip(desc.iter().take(k).cloned().collect())
                    );
                    let lo = clock - r.below(300) as i64;
                    let hi = lo + r.below(300) as i64;
                    let want: Vec<Tick> = sorted
                        .iter()
                        .filter(|t| t.time >= lo && t.time <= hi)
                        .cloned()
                        .collect();
                    assert_eq!(
                        strip(b.range(n, lo, hi, None).unwrap()),
                        strip(want.clone())
                    );
                    assert_eq!(
                        strip(b.range(n, lo, hi, Some(3)).unwrap()),
                        strip(want.into_iter().take(3).collect())
                    );
                }
                // merged = all ticks by (time, seq) descending
                let mut all: Vec<(Vec<u8>, Tick)> = m
                    .streams
                    .iter()
                    .flat_map(|(n, e)| e.1.iter().map(move |t| (n.clone(), t.clone())))
                    .collect();
                all.sort_by_key(|(_, t)| std::cmp::Reverse((t.time, t.seq)));
                let k = r.below(all.len() as u64 + 2) as usize;
                let got: Vec<(Vec<u8>, i64, Fields)> = b
                    .merged(None, k)
                    .unwrap()
                    .into_iter()
                    .map(|(n, t)| (n, t.time, t.fields))
                    .collect();
                let want: Vec<(Vec<u8>, i64, Fields)> = all
                    .into_iter()
                    .take(k)
                    .map(|(n, t)| (n, t.time, t.fields))
                    .collect();
                assert_eq!(got, want);
                for st in b.streams(None).unwrap() {
                    let newest = m.sorted(&st.name).last().map(|t| t.time);
                    assert_eq!(st.newest_time, newest);
                    assert_eq!(st.len, m.streams[&st.name].1.len());
                }
                // canonical encoding round trip
                let enc = b.encode().unwrap();
                let d = TickBook::decode(&enc).unwrap();
                assert_eq!(d.encode().unwrap(), enc);
                assert_eq!(d.tick_count(), b.tick_count());
                for n in &names {
                    assert_eq!(
                        strip(d.latest(n, usize::MAX).unwrap()),
                        strip(b.latest(n, usize::MAX).unwrap())
                    );
                }
            }
        }
    }
}

#[test]
fn merged_many_streams_prefix_and_count() {
    let mut b = TickBook::new();
    for i in 0..60 {
        for j in 0..20 {
            let name = if i % 2 == 0 {
                format!("optiontick:{i}")
            } else {
                format!("indextick:{i}")
            };
            b.push(
                name.as_bytes(),
                None,
                1000,
                &[pairs(j * 100 + i, &[("i", &i.to_string())])],
            )
            .unwrap();
        }
    }
    let all = b.merged(None, 10_000).unwrap();
    assert_eq!(all.len(), 1200);
    assert!(all
        .windows(2)
        .all(|w| (w[0].1.time, w[0].1.seq) > (w[1].1.time, w[1].1.seq)));
    let top = b.merged(Some(b"optiontick:"), 7).unwrap();
    assert_eq!(top.len(), 7);
    assert!(top.iter().all(|(n, _)| n.starts_with(b"optiontick:")));
    assert_eq!(top[0].1.time, 19 * 100 + 58);
    assert_eq!(top[1].1.time, 19 * 100 + 56);
    assert!(b.merged(Some(b"zzz"), 10).unwrap().is_empty());
    assert!(b.merged(None, 0).unwrap().is_empty());
    let st = b.streams(Some(b"indextick:")).unwrap();
    assert_eq!(st.len(), 30);
    assert!(st.windows(2).all(|w| w[0].name < w[1].name));
    assert_eq!(st[0].name, b"indextick:1");
    assert_eq!((st[0].len, st[0].newest_time), (20, Some(1901)));
    let info = b.info();
    assert_eq!(
        (info.streams, info.ticks, info.cap_min, info.cap_max),
        (60, 1200, 1000, 1000)
    );
}

#[test]
fn same_content_same_encoding() {
    // a book that evicted history and one built from its live ticks encode identically
    let mut a = TickBook::new();
    let mut r = Lcg(9);
    for i in 0..500 {
        let s = if r.below(2) == 0 {
            b"a".as_slice()
        } else {
            b"b".as_slice()
        };
        a.push(
            s,
            None,
            50,
            &[pairs(
                i + r.below(20) as i64,
                &[("v", &r.below(10).to_string())],
            )],
        )
        .unwrap();
    }
    let mut b = TickBook::new();
    a.for_each_in_arrival(|n, cap, t| b.push(n, Some(cap), cap, &[t]).map(|_| ()))
        .unwrap();
    assert_eq!(a.encode().unwrap(), b.encode().unwrap());
    assert_eq!(
        TickBook::new().encode().unwrap(),
        TickBook::decode(&TickBook::new().encode().unwrap())
            .unwrap()
            .encode()
            .unwrap()
    );
}

#[test]
fn inline_shapes_beyond_the_dictionary() {
    let mut b = TickBook::new();
    for i in 0..(MAX_SHAPES_PER_STREAM + 100) {
        // each tick has a distinct set of fields (i's binary digits)
        let kv: Vec<(Vec<u8>, Vec<u8>)> = (0..14)
            .filter(|bit| i >> bit & 1 == 1)
            .map(|bit| (format!("b{bit}").into_bytes(), i.to_string().into_bytes()))
            .collect();
        b.push(
            b"s",
            None,
            MAX_CAP,
            &[Tick::from_pairs(i as i64, kv).unwrap()],
        )
        .unwrap();
    }
    let last = b.latest(b"s", 1).unwrap();
    let i = MAX_SHAPES_PER_STREAM + 99;
    assert_eq!(
        last[0].fields.len(),
        (0..14).filter(|bit| i >> bit & 1 == 1).count()
    );
    let enc = b.encode().unwrap();
    assert_eq!(TickBook::decode(&enc).unwrap().encode().unwrap(), enc);
}

fn sample_book() -> TickBook {
    let mut b = TickBook::new();
    let mut r = Lcg(3);
    for i in 0..100 {
        let doc = format!(
            r#"{{"ft":{},"token":"26001","lp":{}.{},"n":null,"b":true,"o":{{"k":[1]}},"rt":"12:05:{:02}"}}"#,
            1000 + i - r.below(3) as i64,
            120 + r.below(10),
            r.below(10),
            i % 60
        );
        let s = format!("s{}", i % 3);
        b.push(
            s.as_bytes(),
            None,
            40,
            &[Tick::from_json(doc.as_bytes(), b"ft").unwrap()],
        )
        .unwrap();
    }
    b
}

#[test]
fn corrupt_encodings_are_refused_without_panic() {
    let enc = sample_book().encode().unwrap();
    assert!(TickBook::decode(&enc).is_ok());
    for n in 0..enc.len() {
        assert!(
            matches!(TickBook::decode(&enc[..n]), Err(CoreError::Corrupt(_))),
            "prefix {n}"
        );
    }
    let mut longer = enc.clone();
    longer.push(0);
    assert!(TickBook::decode(&longer).is_err());
    let mut r = Lcg(11);
    for _ in 0..20000 {
        let mut e = enc.clone();
        for _ in 0..1 + r.below(3) {
            let i = r.below(e.len() as u64) as usize;
            e[i] = r.below(256) as u8;
        }
        if let Ok(b) = TickBook::decode(&e) {
            // whatever decodes is internally consistent
            let again = b.encode().unwrap();
            assert_eq!(TickBook::decode(&again).unwrap().encode().unwrap(), again);
            b.merged(None, usize::MAX).unwrap();
        }
    }
    for _ in 0..5000 {
        let len = r.below(64) as usize;
        let mut e: Vec<u8> = ENCODING_MAGIC.to_vec();
        e.extend((0..len).map(|_| r.below(256) as u8));
        let _ = TickBook::decode(&e);
    }
    // hostile huge counts / lengths
    let mut e = ENCODING_MAGIC.to_vec();
    put_u64(&mut e, u64::MAX);
    put_u64(&mut e, u64::MAX);
    assert!(TickBook::decode(&e).is_err());
    let mut e = ENCODING_MAGIC.to_vec();
    put_u64(&mut e, 5);
    put_u64(&mut e, 1);
    put_bytes(&mut e, b"s");
    put_u64(&mut e, 10);
    put_u64(&mut e, 1 << 40);
    assert!(TickBook::decode(&e).is_err());
    assert!(TickBook::decode(b"").is_err());
    assert!(TickBook::decode(b"TKB\x02\x00\x00").is_err());
    let mut bad = vec![0xffu8; 11];
    bad.push(0);
    assert!(Reader::new(&bad).varint().is_err());
}

#[test]
fn eq_short_is_slice_equality() {
    let mut rng = Lcg(3);
    for _ in 0..100_000 {
        let len = rng.pick(40);
        let a: Vec<u8> = (0..len).map(|_| b"ab\x00\xff"[rng.pick(4)]).collect();
        let mut b = a.clone();
        match rng.pick(3) {
            0 if len > 0 => {
                let i = rng.pick(len);
                b[i] = b"ab\x00\xff"[rng.pick(4)];
            }
            1 => b.truncate(rng.pick(len + 1)),
            _ => {}
        }
        assert_eq!(eq_short(&a, &b), a == b, "{a:?} {b:?}");
    }
}

/// The encoder's running `text_cap` is the sum it replaces, also in clones.
#[test]
fn codec_text_cap_is_the_sum_of_capacities() {
    let mut rng = Lcg(11);
    let mut b = TickBook::new();
    let check = |b: &TickBook| {
        for s in b.streams.values() {
            let sum: usize = s.enc.slot_texts().map(|t| t.capacity()).sum();
            assert_eq!(s.enc.text_cap, sum);
        }
    };
    for i in 0..3000 {
        let v = "x".repeat(rng.pick(40));
        let t = pairs(i, &[("a", &v), ("b", &format!("{}", rng.pick(5)))]);
        let stream: &[u8] = if rng.pick(2) == 0 { b"s1" } else { b"s2" };
        b.push(stream, Some(100), 100, &[t]).unwrap();
        check(&b);
    }
    check(&b.clone());
}

#[test]
fn memory_and_counters() {
    let mut b = TickBook::new();
    let m0 = b.mem_usage();
    for i in 0..5000 {
        b.push(b"s", None, 1000, &[pairs(i, &[("v", "x")])])
            .unwrap();
    }
    assert_eq!(b.tick_count(), 1000);
    assert!(b.mem_usage() > m0);
    b.push(b"s", Some(10), 1000, &[pairs(1, &[("v", "x")])])
        .unwrap();
    assert_eq!(b.tick_count(), 10);
    assert_eq!(b.info().late_ticks, 1);
    assert_eq!(b.latest(b"s", 100).unwrap().len(), 10);
    assert!(b.free_effort() >= 1);
}

/// Bytes per tick of the original design's tick shape, realistic variation.
#[test]
fn bytes_per_tick_original_shape() {
    let mut b = TickBook::new();
    let mut r = Lcg(5);
    let n = 10_000;
    let mut lp: i64 = 12550;
    let mut json_bytes = 0;
    for i in 0..n {
        let ft = 1752810305 + i / 4;
        lp += r.below(7) as i64 - 3;
        let doc = format!(
            r#"{{"ft": {ft}, "token": "26001", "lp": {}.{:02}, "pc": 0.{:02}, "rt": "{:02}:{:02}:{:02}", "ts": {}, "data_type": "optiontick"}}"#,
            lp / 100,
            lp % 100,
            30 + r.below(10),
            12 + (ft % 86400) / 3600 % 12,
            (ft % 3600) / 60,
            ft % 60,
            ft * 1000 + (i % 4) * 250 + r.below(50) as i64,
        );
        json_bytes += doc.len();
        b.push(
            b"optiontick:26001",
            None,
            n as usize,
            &[Tick::from_json(doc.as_bytes(), b"ft").unwrap()],
        )
        .unwrap();
    }
    let per_tick_mem = b.mem_usage() as f64 / n as f64;
    let per_tick_enc = b.encode().unwrap().len() as f64 / n as f64;
    let per_tick_json = json_bytes as f64 / n as f64;
    println!("original shape: json {per_tick_json:.1} B/tick, memory {per_tick_mem:.1} B/tick, encoding {per_tick_enc:.1} B/tick");
    assert!(
        per_tick_mem < per_tick_json / 4.0,
        "{per_tick_mem} vs {per_tick_json}"
    );
    assert!(ORIGINAL.len() == 128 || ORIGINAL.len() > 100);
}

/// The encoder's per-chunk slots of previous values are reused across chunks in another
/// order of first appearance (stale `slot_of` entries must not be taken for live ones), and
/// long texts are given back when their chunk closes: every tick reads back as pushed, the
/// encoding round-trips, and `text_cap` stays the sum of the slots' capacities.
#[test]
fn codec_slots_survive_chunk_reuse() {
    let mut rng = Lcg(0x5107);
    let mut b = TickBook::new();
    let mut pushed = Vec::new();
    let fields = ["a", "b", "c", "d", "e", "f"];
    for i in 0..40 * CHUNK as i64 {
        // Each tick has a random subset of the fields in a random order, so the order in
        // which the fields first appear (their slots) changes from chunk to chunk.
        let mut kv: Vec<(String, String)> = Vec::new();
        for _ in 0..1 + rng.pick(fields.len()) {
            let f = fields[rng.pick(fields.len())];
            if kv.iter().any(|(n, _)| n == f) {
                continue;
            }
            let v = match rng.pick(5) {
                0 => format!("{}", rng.pick(1000)),
                1 => format!("{}.{:02}", rng.pick(100), rng.pick(100)),
                2 => "x".repeat(300 + rng.pick(100)),
                3 => format!("s{}", rng.pick(3)),
                _ => format!("p{}", "q".repeat(rng.pick(20))),
            };
            kv.push((f.to_string(), v));
        }
        let kv: Vec<(&str, &str)> = kv.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        let t = pairs(i, &kv);
        b.push(b"s", Some(100_000), 100_000, std::slice::from_ref(&t))
            .unwrap();
        pushed.push(t);
        for s in b.streams.values() {
            let sum: usize = s.enc.slot_texts().map(|t| t.capacity()).sum();
            assert_eq!(s.enc.text_cap, sum);
        }
    }
    let got = b.range(b"s", i64::MIN, i64::MAX, None).unwrap();
    assert_eq!(got.len(), pushed.len());
    for (g, p) in got.iter().zip(&pushed) {
        assert_eq!((g.time, &g.fields), (p.time, &p.fields));
    }
    let enc = b.encode().unwrap();
    let back = TickBook::decode(&enc).unwrap();
    assert_eq!(back.encode().unwrap(), enc);
    assert_eq!(back.range(b"s", i64::MIN, i64::MAX, None).unwrap(), got);
}

/// A document of the original layout with values that vary as a feed's do (repeats, late
/// times, numbers of other forms, strings that read as numbers, numbers that do not).
fn lane_doc(rng: &mut Lcg, i: usize) -> String {
    let ft = 1_752_810_305 + (i / 4) as i64 - if rng.pick(20) == 0 { 7 } else { 0 };
    let lp = match rng.pick(12) {
        0 => "1e5".to_string(),
        1 => "-0.0".to_string(),
        2 => "123456789012345678901".to_string(),
        3 => format!("{}", 125 + rng.pick(3)),
        _ => format!("{}.{:02}", 125 + rng.pick(3), rng.pick(100)),
    };
    let token = ["26001", "26001", "x26001", "0.50"][rng.pick(4)];
    format!(
        r#"{{"ft": {ft}, "token": "{token}", "lp": {lp}, "pc": 0.{:02}, "rt": "12:05:{:02}", "ts": {}, "data_type": "optiontick"}}"#,
        rng.pick(100),
        (i / 4) % 60,
        ft * 1000 + rng.pick(1000) as i64
    )
}

/// What the module does for `TICKS.PUSH book stream TIMEFIELD ft JSON docs..`: the lane when
/// it applies (`lane`), or else the batch. Returns the outcome and whether the lane took it.
fn push_docs(
    book: &mut TickBook,
    batch: &mut TickBatch,
    stream: &[u8],
    maxlen: Option<usize>,
    docs: &[String],
    lane: bool,
) -> (CoreResult<PushOutcome>, bool) {
    batch.clear();
    let docs: Vec<&[u8]> = docs.iter().map(|d| d.as_bytes()).collect();
    if lane {
        if let Some(o) = book.push_json_lane(stream, maxlen, 1000, b"ft", &docs, batch) {
            return (Ok(o), true);
        }
    }
    for d in &docs {
        if let Err(e) = batch.push_json(d, b"ft") {
            return (Err(e), false);
        }
    }
    (book.push_batch(stream, maxlen, 1000, batch), false)
}

/// The lane stores what the batch stores: same outcomes, same bytes, same memory, whether
/// a push has one document or many, a new cap, a late tick, a document of another layout.
#[test]
fn json_lane_encodes_like_the_batch() {
    let mut rng = Lcg(0x1a7e);
    let (mut by_lane, mut by_batch) = (TickBook::new(), TickBook::new());
    let (mut b1, mut b2) = (TickBatch::new(), TickBatch::new());
    let mut i = 0;
    let mut lane_pushes = 0;
    for round in 0..1500 {
        let stream: &[u8] = [&b"s1"[..], b"s2", b"s3"][rng.pick(3)];
        let n = if rng.pick(3) == 0 {
            1
        } else {
            1 + rng.pick(120)
        };
        let mut docs: Vec<String> = (0..n).map(|k| lane_doc(&mut rng, i + k)).collect();
        i += n;
        if rng.pick(30) == 0 {
            let at = rng.pick(n);
            docs[at] = format!(r#"{{"ft":{},"other":1}}"#, 1_752_810_305 + i as i64);
        }
        let maxlen = (rng.pick(40) == 0).then(|| 50 + rng.pick(2000));
        let (a, took) = push_docs(&mut by_lane, &mut b1, stream, maxlen, &docs, true);
        let (b, _) = push_docs(&mut by_batch, &mut b2, stream, maxlen, &docs, false);
        lane_pushes += usize::from(took);
        assert_eq!(a.unwrap(), b.unwrap(), "round {round}");
    }
    assert!(lane_pushes > 1000, "{lane_pushes}");
    assert_eq!(by_lane.encode().unwrap(), by_batch.encode().unwrap());
    assert_eq!(by_lane.mem_usage(), by_batch.mem_usage());
    for s in [&b"s1"[..], b"s2", b"s3"] {
        assert_eq!(
            by_lane.latest(s, 5000).unwrap(),
            by_batch.latest(s, 5000).unwrap()
        );
    }
}

/// A batch whose 57th document is bad: the lane declines it and leaves the book byte for
/// byte as it was (mid-chunk, so any half-written record would show), the batch words the
/// error, and the next good push is stored as on a book that never saw the bad one.
#[test]
fn json_lane_declines_a_bad_batch_and_changes_nothing() {
    let mut rng = Lcg(0x57);
    let good = |rng: &mut Lcg, from: usize, n: usize| -> Vec<String> {
        (from..from + n).map(|i| lane_doc(rng, i)).collect()
    };
    let (mut book, mut reference) = (TickBook::new(), TickBook::new());
    let mut batch = TickBatch::new();
    // 1013 ticks: the open chunk holds some records.
    let fill = good(&mut rng, 0, 1013);
    push_docs(&mut book, &mut batch, b"s", None, &fill, true)
        .0
        .unwrap();
    push_docs(&mut reference, &mut batch, b"s", None, &fill, true)
        .0
        .unwrap();
    let bad_57th = [
        r#"{"ft": 1752810305, "token": "26001", "lp": 12x.5, "pc": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}"#,
        r#"{"ft": 1752810305, "token": "26001", "lp": 125.5, "pc": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"#,
        r#"{"ft": 1.5, "token": "26001", "lp": 125.5, "pc": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}"#,
        r#"{"ft": 1752810305, "token": "26001", "lp": 125.5, "pc": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}x"#,
        r#"{"ft": 1752810305, "token": "26001", "lp": 125.5, "lp": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}"#,
        r#"{"token": "26001", "lp": 125.5, "pc": 0.35, "rt": "12:05:05", "ts": 1752810305123, "data_type": "optiontick"}"#,
    ];
    let mut at = 1013;
    for bad in bad_57th {
        let mut docs = good(&mut rng, at, 100);
        docs[56] = bad.to_string();
        let (before, mem) = (book.encode().unwrap(), book.mem_usage());
        let (len, cap) = (book.stream_len(b"s"), book.stream_cap(b"s"));
        batch.clear();
        let refs: Vec<&[u8]> = docs.iter().map(|d| d.as_bytes()).collect();
        assert_eq!(
            book.push_json_lane(b"s", Some(10), 1000, b"ft", &refs, &mut batch),
            None,
            "{bad}"
        );
        assert_eq!(book.encode().unwrap(), before);
        assert_eq!(book.mem_usage(), mem);
        assert_eq!((book.stream_len(b"s"), book.stream_cap(b"s")), (len, cap));
        // The module then runs the batch, which fails at the 57th document.
        let (r, took) = push_docs(&mut book, &mut batch, b"s", Some(10), &docs, true);
        assert!(r.is_err() && !took, "{bad}");
        assert!(batch.len() == 56, "{bad}: {}", batch.len());
        assert_eq!(book.encode().unwrap(), before);
        assert_eq!(book.mem_usage(), mem);
        // Then good pushes (the first one through the batch when the bad document took the
        // template with it, the next one through the lane), stored as on the reference book.
        for round in 0..2 {
            let next = good(&mut rng, at + 100, 100);
            at += 100;
            let (a, took) = push_docs(&mut book, &mut batch, b"s", None, &next, true);
            let (b, _) = push_docs(&mut reference, &mut batch, b"s", None, &next, false);
            assert!(took || round == 0, "{bad}");
            assert_eq!(a.unwrap(), b.unwrap());
            assert_eq!(book.encode().unwrap(), reference.encode().unwrap());
            assert_eq!(book.mem_usage(), reference.mem_usage());
        }
        at += 100;
    }
}

/// What the lane stores reads back as the documents: numbers held by their Num in the
/// codec's previous values print back exactly, also where a prefix or a repeat needs them.
#[test]
fn json_lane_reads_back_the_documents() {
    let mut rng = Lcg(0x7ead);
    let mut book = TickBook::new();
    let mut batch = TickBatch::new();
    let mut want = Vec::new();
    for k in 0..40 {
        let n = 1 + rng.pick(100);
        let docs: Vec<String> = (0..n)
            .map(|i| {
                let lp = match rng.pick(6) {
                    0 => "1e5".to_string(),
                    1 => "125".to_string(),
                    2 => "1250".to_string(),
                    3 => "123456789012345678901".to_string(),
                    _ => format!("125.{}", rng.pick(3)),
                };
                format!(
                    r#"{{"ft":{},"lp":{lp},"s":"{}"}}"#,
                    k * 1000 + i,
                    rng.pick(3)
                )
            })
            .collect();
        for d in &docs {
            want.push(Tick::from_json(d.as_bytes(), b"ft").unwrap());
        }
        let (r, _) = push_docs(&mut book, &mut batch, b"s", Some(100_000), &docs, true);
        r.unwrap();
    }
    let mut got = book.latest(b"s", 100_000).unwrap();
    got.reverse();
    assert_eq!(strip(got), strip(want));
    let again = TickBook::decode(&book.encode().unwrap()).unwrap();
    assert_eq!(again.encode().unwrap(), book.encode().unwrap());
}
