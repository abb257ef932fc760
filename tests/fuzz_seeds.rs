//! Seed corpora of the cargo-fuzz targets (`fuzz/corpus/<target>/`), made from the real Binance
//! fixtures. Regenerate (after a deliberate encoding change) with
//!   cargo test --release --test fuzz_seeds -- --ignored
//! The non-ignored test checks that the committed binary seeds still decode with today's code,
//! so an accidental format change shows up here as well as in `rdb_compat`.

use candles_core::binance::parse_klines;
use candles_core::candle::Incoming;
use candles_core::chunk::ChunkedStore;
use candles_core::series::{DuplicatePolicy, Effect, Series, Settings};
use candles_core::ticks::{Tick, TickBook};
use candles_core::{Candle, Dec, Interval};
use candles_testkit::fixtures;

use std::path::PathBuf;

const NOW: i64 = 1_725_500_000_000;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Named seed files of one target.
type Seeds = Vec<(String, Vec<u8>)>;

/// Seeds per target.
fn seeds() -> Vec<(&'static str, Seeds)> {
    let rest = fixtures::bytes("rest_klines_BTCUSDT_1m_limit1000.json");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&rest).unwrap();
    let ws: Vec<String> = fixtures::lines("ws_kline_1m_combined.jsonl");
    let agg: Vec<String> = fixtures::lines("ws_aggTrade_combined.jsonl");
    let book: Vec<String> = fixtures::lines("ws_bookTicker_combined.jsonl");
    let klines = parse_klines(&rest).unwrap();
    let candles: Vec<Candle> = klines.iter().map(|k| k.candle).collect();

    let mut out = Vec::new();

    // decimal_parse: decimals as Binance writes them, and the edges of the accepted syntax.
    let mut dec: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, r) in rows.iter().take(3).enumerate() {
        for f in [1, 5, 7, 9] {
            dec.push((
                format!("row{i}_f{f}"),
                r[f].as_str().unwrap().as_bytes().to_vec(),
            ));
        }
    }
    for (i, s) in [
        "0",
        "-0",
        "-1.5",
        "1e-7",
        "1E+3",
        "0.000000000000000000000001",
        "123456789012345678901234567890123456",
        "9.99e2",
        "-0.10",
        "00012.3400",
    ]
    .iter()
    .enumerate()
    {
        dec.push((format!("edge{i}"), s.as_bytes().to_vec()));
    }
    out.push(("decimal_parse", dec));

    // klines_json: REST bodies and rows, WebSocket kline / trade / bookTicker frames.
    let mut kj: Vec<(String, Vec<u8>)> = vec![
        ("rest_3rows".into(), serde_json::to_vec(&rows[..3]).unwrap()),
        ("rest_1row".into(), serde_json::to_vec(&rows[0]).unwrap()),
        (
            "rest_10rows_nautilus".into(),
            fixtures::bytes("rest_klines_BTCUSDT_1m_10rows_nautilus.json"),
        ),
        ("rest_empty".into(), b"[]".to_vec()),
    ];
    for (i, l) in ws.iter().take(6).enumerate() {
        kj.push((format!("ws_kline{i}"), l.as_bytes().to_vec()));
    }
    let frame: serde_json::Value = serde_json::from_str(&ws[0]).unwrap();
    kj.push((
        "ws_kline_plain".into(),
        serde_json::to_vec(&frame["data"]).unwrap(),
    ));
    kj.push((
        "ws_kline_k".into(),
        serde_json::to_vec(&frame["data"]["k"]).unwrap(),
    ));
    for (i, l) in agg.iter().take(3).enumerate() {
        kj.push((format!("ws_aggtrade{i}"), l.as_bytes().to_vec()));
    }
    kj.push((
        "ws_trade_nautilus".into(),
        fixtures::bytes("ws_trade_ETHUSDT_single_nautilus.json"),
    ));
    kj.push(("ws_bookticker".into(), book[0].as_bytes().to_vec()));
    out.push(("klines_json", kj));

    // candle_args: `t o h l c v` groups, with interval words and a clock at the end.
    let six = |r: &serde_json::Value| {
        (0..6)
            .map(|i| r[i].to_string().trim_matches('"').to_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut ca: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, r) in rows.iter().take(5).enumerate() {
        ca.push((format!("row{i}"), six(r).into_bytes()));
    }
    ca.push((
        "two_rows_1m_now".into(),
        format!("1m {} {} {NOW}", six(&rows[0]), six(&rows[1])).into_bytes(),
    ));
    ca.push((
        "forming_now".into(),
        format!("{} {}", six(&rows[999]), rows[999][0]).into_bytes(),
    ));
    ca.push((
        "month".into(),
        b"1M 1725148800000 1 2 0.5 1.5 10 1725500000000".to_vec(),
    ));
    ca.push((
        "intervals".into(),
        b"1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M".to_vec(),
    ));
    out.push(("candle_args", ca));

    // series_decode: real encoded series (Series::encode) and effects (Effect::encode).
    let settings = |interval, retention, live_ttl_s, policy| Settings {
        align: Default::default(),
        interval,
        retention,
        live_ttl_s,
        live_max: 64,
        policy,
    };
    let mut sd: Vec<(String, Vec<u8>)> = Vec::new();
    let enc_series = |s: &Series| {
        let mut b = Vec::new();
        s.encode(&mut b);
        b
    };
    let enc_effect = |e: &Effect| {
        let mut b = Vec::new();
        e.encode(&mut b);
        b
    };
    let incoming = |cs: &[Candle]| {
        cs.iter()
            .map(|c| Incoming {
                candle: *c,
                closed: None,
            })
            .collect::<Vec<_>>()
    };
    let mut s = Series::new(settings(Interval::M1, 0, 0, DuplicatePolicy::Replace));
    sd.push(("series_empty".into(), enc_series(&s)));
    let first = s.add_official(&incoming(&candles[..300]), NOW).unwrap();
    let mut create = first.effect.clone();
    create.create = Some(*s.settings());
    create.official.truncate(3);
    sd.push(("effect_create_3".into(), enc_effect(&create)));
    let c300 = &candles[300];
    let live = Candle::ohlcv(
        candles[299].open_time + 60_000 * 2,
        c300.open,
        c300.high,
        c300.low,
        c300.close,
        c300.volume,
    );
    let lu = s.live_update(live, NOW).unwrap();
    sd.push(("effect_live_update".into(), enc_effect(&lu.effect)));
    let lt = s
        .live_tick(
            live.open_time + 60_000 + 5,
            Dec::parse("56000.5").unwrap(),
            Dec::parse("0.01").unwrap(),
            NOW,
        )
        .unwrap();
    sd.push(("effect_live_tick".into(), enc_effect(&lt.effect)));
    sd.push(("series_300_official_2_live".into(), enc_series(&s)));
    let more = s.add_official(&incoming(&candles[300..305]), NOW).unwrap();
    sd.push(("effect_official_5".into(), enc_effect(&more.effect)));
    let mut small = Series::new(settings(Interval::M1, 5, 60, DuplicatePolicy::Block));
    small.add_official(&incoming(&candles[..8]), NOW).unwrap();
    small.live_update(candles[9], NOW).unwrap();
    sd.push(("series_retention5_block".into(), enc_series(&small)));
    let mut month = Series::new(settings(Interval::Mo1, 0, 86_400, DuplicatePolicy::Keep));
    let d = |x: &str| Dec::parse(x).unwrap();
    month
        .add_official(
            &incoming(&[Candle::ohlcv(
                1_722_470_400_000,
                d("64628"),
                d("68000"),
                d("49000"),
                d("58969.9"),
                d("1234.5"),
            )]),
            NOW,
        )
        .unwrap();
    sd.push(("series_month".into(), enc_series(&month)));
    out.push(("series_decode", sd));

    // chunk_decode: the official region's own encoding (sealed chunks + tail).
    let mut cd: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, n) in [
        ("empty", 0),
        ("tail_10", 10),
        ("chunk_and_tail_300", 300),
        ("all_1000", 1000),
    ] {
        let mut st = ChunkedStore::new();
        for c in &candles[..n] {
            st.put(*c);
        }
        let mut b = Vec::new();
        st.encode(&mut b);
        cd.push((name.into(), b));
    }
    let mut ohlcv_only = ChunkedStore::new();
    for c in &candles[..300] {
        ohlcv_only.put(Candle::ohlcv(
            c.open_time,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
        ));
    }
    let mut b = Vec::new();
    ohlcv_only.encode(&mut b);
    cd.push(("ohlcv_only_300".into(), b));
    out.push(("chunk_decode", cd));

    // tick_json: first byte picks the time field (0 time, 1 T, 2 E, 3 ft), then a document;
    // the field/value form is `time 0xff field 0xff value ...`.
    let mut tj: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, l) in agg.iter().step_by(300).take(5).enumerate() {
        let frame: serde_json::Value = serde_json::from_str(l).unwrap();
        tj.push((
            format!("aggtrade{i}_T"),
            [&[1u8][..], &serde_json::to_vec(&frame["data"]).unwrap()].concat(),
        ));
    }
    let bt: serde_json::Value = serde_json::from_str(&book[0]).unwrap();
    tj.push((
        "bookticker_E".into(),
        [&[2u8][..], &serde_json::to_vec(&bt["data"]).unwrap()].concat(),
    ));
    tj.push((
        "option_tick_ft".into(),
        b"\x03{\"ft\":1752810305,\"token\":\"26001\",\"lp\":125.5,\"pc\":0.35,\"rt\":\"12:05:05\",\"data_type\":\"optiontick\"}".to_vec(),
    ));
    tj.push(("nested_time".into(), b"\x00{\"time\":1752810305,\"x\":[1,{\"a\":null}],\"ok\":true,\"e\":1e-7,\"s\":\"\\u00e9\"}".to_vec()));
    tj.push((
        "pairs".into(),
        b"\x001617566591314\xffp\xff58001.03\xffq\xffbin\x01".to_vec(),
    ));
    out.push(("tick_json", tj));

    // ticks_decode: encoded books (TickBook::encode) of real aggTrade documents per stream.
    let mut td: Vec<(String, Vec<u8>)> =
        vec![("book_empty".into(), TickBook::new().encode().unwrap())];
    let mut tb = TickBook::new();
    for (i, l) in agg.iter().take(300).enumerate() {
        let frame: serde_json::Value = serde_json::from_str(l).unwrap();
        let t = Tick::from_json(&serde_json::to_vec(&frame["data"]).unwrap(), b"T").unwrap();
        tb.push(
            frame["stream"].as_str().unwrap().as_bytes(),
            Some(50),
            1000,
            &[t],
        )
        .unwrap();
        if i == 3 || i == 40 {
            td.push((format!("book_{}", i + 1), tb.encode().unwrap()));
        }
    }
    td.push(("book_300_aggtrades".into(), tb.encode().unwrap()));
    let mark = Tick::from_pairs(
        rows[0][0].as_i64().unwrap(),
        vec![
            (b"p".to_vec(), b"58001.03".to_vec()),
            (b"q".to_vec(), b"bin\x01".to_vec()),
        ],
    )
    .unwrap();
    tb.push(b"mark", Some(3), 1000, &[mark.clone(), mark.clone(), mark])
        .unwrap();
    td.push(("book_with_pairs".into(), tb.encode().unwrap()));
    out.push(("ticks_decode", td));
    out
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand after a deliberate format change"]
fn write_fuzz_seeds() {
    for (target, files) in seeds() {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn committed_tick_book_seeds_still_decode() {
    let dir = corpus("ticks_decode");
    if !dir.exists() {
        return;
    }
    for (name, bytes) in seeds()
        .into_iter()
        .find(|(t, _)| *t == "ticks_decode")
        .unwrap()
        .1
    {
        let committed =
            std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        assert_eq!(
            committed, bytes,
            "seed {name}: today's encoding differs from the committed one"
        );
        TickBook::decode(&committed).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn committed_seeds_still_decode() {
    let dir = corpus("series_decode");
    if !dir.exists() {
        return;
    }
    for (name, bytes) in seeds()
        .into_iter()
        .find(|(t, _)| *t == "series_decode")
        .unwrap()
        .1
    {
        let committed =
            std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        assert_eq!(
            committed, bytes,
            "seed {name}: today's encoding differs from the committed one"
        );
        if name.starts_with("series") {
            Series::decode(&committed).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            Effect::decode(&committed).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    // `v1_*`: the same seeds as committed before version 2 (write stamp, effect clock). They
    // must keep decoding, and re-encode to the very same version-1 bytes (RDB files and AOF
    // effects written by older modules).
    let mut v1 = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(base) = name.strip_prefix("v1_") else {
            continue;
        };
        let committed = std::fs::read(entry.path()).unwrap();
        assert_eq!(committed.first(), Some(&1), "{name} is not version 1");
        let mut again = Vec::new();
        if base.starts_with("series") {
            Series::decode(&committed)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .encode(&mut again);
        } else {
            Effect::decode(&committed)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .encode(&mut again);
        }
        assert_eq!(again, committed, "{name} re-encodes differently");
        v1 += 1;
    }
    assert!(v1 >= 7, "only {v1} version-1 seeds");
    // Series seeds of an older layout: `c1_*`, chunks in chunk format 1 (committed before
    // chunk format 2); `bulk_tail_*`, a bulk append's last candles left as tail rows (before a
    // bulk append sealed them too). They decode to what today's seed of the same name holds,
    // and re-encode to the very same bytes (a store keeps its chunks and tail, written in the
    // oldest store format that holds them).
    let (mut c1, mut bulk_tail) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(base) = name
            .strip_prefix("c1_")
            .or_else(|| name.strip_prefix("bulk_tail_"))
        else {
            continue;
        };
        let committed = std::fs::read(entry.path()).unwrap();
        let old = Series::decode(&committed).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut again = Vec::new();
        old.encode(&mut again);
        assert_eq!(again, committed, "{name} re-encodes differently");
        let today = Series::decode(&std::fs::read(dir.join(base)).unwrap()).unwrap();
        let all = |s: &Series| format!("{:?}", s.range_merged(i64::MIN, i64::MAX, None, NOW));
        assert_eq!(all(&old), all(&today), "{name}: not the candles of {base}");
        if name.starts_with("c1_") {
            c1 += 1;
        } else {
            bulk_tail += 1;
        }
    }
    assert!(c1 >= 1, "no chunk-format-1 seeds");
    assert!(bulk_tail >= 1, "no seeds of a bulk append's tail rows");
}
