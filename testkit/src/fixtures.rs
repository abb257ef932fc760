//! The recorded Binance market data in `tests/fixtures/binance/` (provenance in its
//! `SOURCES.md`). Every test, bench and example reads it through here, so a clone of the
//! repository needs nothing beside it.

use std::path::{Path, PathBuf};

/// `tests/fixtures/binance/` of this checkout.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/binance")
}

/// The path of one fixture file.
pub fn path(name: &str) -> PathBuf {
    dir().join(name)
}

pub fn bytes(name: &str) -> Vec<u8> {
    let p = path(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

pub fn text(name: &str) -> String {
    String::from_utf8(bytes(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn lines(name: &str) -> Vec<String> {
    text(name).lines().map(str::to_owned).collect()
}

/// Names of the fixture files, sorted.
pub fn names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("fixtures {}: {e}", dir().display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// The candles of a REST klines fixture (every row, the forming last one included).
pub fn candles(name: &str) -> Vec<candles_core::Candle> {
    candles_core::binance::parse_klines(&bytes(name))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
        .into_iter()
        .map(|k| k.candle)
        .collect()
}

/// A Binance decimal string as a JSON number, the way a Python float prints it
/// ("58001.03000000" → "58001.03", "5.00" → "5.0"): how the recorded trades become the
/// original design's tick documents in benches and examples.
pub fn json_decimal(p: &str) -> String {
    if !p.contains('.') {
        return p.to_string();
    }
    let t = p.trim_end_matches('0');
    if t.ends_with('.') {
        format!("{t}0")
    } else {
        t.to_string()
    }
}

/// A Binance decimal text as the module prints it: trailing fractional zeros dropped
/// (`"58194.01000000"` → `58194.01`, `"2.00000000"` → `2`, `"0.00000000"` → `0`).
pub fn module_decimal(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    let t = s.trim_end_matches('0').trim_end_matches('.');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// `reps` copies of the real 1000-row BTCUSDT 1m REST body, open and close times shifted by
/// 1000 minutes per copy (prices untouched): the bulk ingest the benchmarks measure.
pub fn rest_1m_bodies(reps: usize) -> Vec<Vec<u8>> {
    const MIN: i64 = 60_000;
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&bytes("rest_klines_BTCUSDT_1m_limit1000.json"))
            .expect("the 1m fixture is JSON");
    (0..reps)
        .map(|rep| {
            let shift = rep as i64 * 1000 * MIN;
            let shifted: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    for i in [0, 6] {
                        let t = r[i].as_i64().expect("a time");
                        r[i] = serde_json::Value::from(t + shift);
                    }
                    r
                })
                .collect();
            serde_json::Value::Array(shifted).to_string().into_bytes()
        })
        .collect()
}
