//! Bytes per candle of `ChunkedStore` on the real Binance REST fixtures, and a timing of
//! appends and of reading the newest 720 candles.
//!
//! `cargo run --release -p candles-core --example bytes_per_candle [-- N_APPENDS]`

use candles_core::chunk::ChunkedStore;
use candles_core::{Candle, Dec};
use std::time::Instant;

const FIXTURES: [&str; 3] = [
    "rest_klines_BTCUSDT_1m_limit1000.json",
    "rest_klines_BTCUSDT_5m_limit1000.json",
    "rest_klines_BTCUSDT_15m_limit1000.json",
];

fn load(name: &str) -> Vec<Candle> {
    candles_testkit::fixtures::candles(name)
}

/// Deterministic Fisher-Yates with a xorshift generator.
fn shuffled(cs: &[Candle], mut seed: u64) -> Vec<Candle> {
    let mut v = cs.to_vec();
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    v
}

fn report(label: &str, s: &ChunkedStore) {
    let mut enc = Vec::new();
    s.encode(&mut enc);
    println!(
        "  {label:<9} len {:5}  mem_usage {:6} B = {:5.2} B/candle   encoded {:6} B = {:5.2} B/candle",
        s.len(),
        s.mem_usage(),
        s.mem_usage() as f64 / s.len() as f64,
        enc.len(),
        enc.len() as f64 / s.len() as f64
    );
}

fn main() {
    for f in FIXTURES {
        let cs = load(f);
        println!("{f}");
        let mut a = ChunkedStore::new();
        for c in &cs {
            a.put(*c);
        }
        report("in order", &a);
        sections(&cs);
        let mut b = ChunkedStore::new();
        for c in shuffled(&cs, 0x9e37_79b9_7f4a_7c15) {
            b.put(c);
        }
        report("shuffled", &b);
        println!("  {a:?}\n  {b:?}");
        assert!(a.iter().eq(cs.iter().cloned()) && b.iter().eq(cs.iter().cloned()));
    }

    let n: usize = candles_testkit::arg(1, 1_000_000);
    let base = load(FIXTURES[0]);
    // n synthetic minute candles cycling through the real 1m rows (values real, times continued).
    let mk = |i: usize| {
        let mut c = base[i % base.len()];
        let t = 1_600_000_000_000 / 60_000 * 60_000 + i as i64 * 60_000;
        c.open_time = t;
        c.close_time = Some(t + 59_999);
        c
    };
    let input: Vec<Candle> = (0..n).map(mk).collect();
    let mut s = ChunkedStore::new();
    let t0 = Instant::now();
    for c in input {
        s.put(c);
    }
    let put_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "append {n} candles: {put_ns:.0} ns/put, {:.2} B/candle",
        s.mem_usage() as f64 / n as f64
    );
    let last = s.last_time().unwrap_or(0);
    let reps = 200;
    let t0 = Instant::now();
    let mut got = 0;
    for _ in 0..reps {
        got += s.range(i64::MIN, last, Some(720)).len();
    }
    println!(
        "range newest 720: {:.1} us per call ({} candles)",
        t0.elapsed().as_secs_f64() * 1e6 / reps as f64,
        got / reps
    );
    let t0 = Instant::now();
    let mut hits = 0;
    for i in 0..10_000 {
        hits += usize::from(s.get(last - (i * 7919 % n as i64) * 60_000).is_some());
    }
    println!(
        "get: {:.1} us per call ({hits} hits)",
        t0.elapsed().as_secs_f64() * 1e6 / 10_000.0
    );
    let _ = Dec::ZERO;
}

#[allow(dead_code)]
fn sections(cs: &[Candle]) {
    let mut tot: Vec<(&'static str, usize)> = Vec::new();
    for ch in cs.chunks(candles_core::chunk::CHUNK_MAX) {
        for (i, (name, b)) in candles_core::chunk::section_bits(ch)
            .into_iter()
            .enumerate()
        {
            if tot.len() <= i {
                tot.push((name, 0));
            }
            tot[i].1 += b;
        }
    }
    let all: usize = tot.iter().map(|t| t.1).sum();
    let line: Vec<String> = tot
        .iter()
        .map(|(n, b)| format!("{n} {:.2}", *b as f64 / 8.0 / cs.len() as f64))
        .collect();
    println!(
        "  bytes/candle by section: {} (total {:.2})",
        line.join(", "),
        all as f64 / 8.0 / cs.len() as f64
    );
}
