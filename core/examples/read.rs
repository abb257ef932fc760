//! The chunk decoding behind a chart load (`CANDLE.RANGE_MERGED key - + COUNT 720`), without
//! Redis: the real 1m rows x100 (times shifted by 1000 min per copy, as the ingest example
//! does) go into one `ChunkedStore`, then the newest 720 candles and the whole store are read
//! over and over. Prints the time per decoded candle and a digest of what was read
//! (unchanged digest = unchanged decoding).
//!
//! For deterministic figures count instructions in the read loops only:
//! `valgrind --tool=callgrind --toggle-collect='*read_newest*' target/release/examples/read`
//! (or `'*read_whole*'`).
//!
//! `cargo run --release -p candles-core --example read [-- REPS_NEWEST [REPS_WHOLE]]`

use candles_core::binance::parse_klines;
use candles_core::chunk::ChunkedStore;
use candles_core::Candle;
use std::hash::{Hash, Hasher};
use std::time::Instant;

const MIN: i64 = 60_000;

fn store() -> ChunkedStore {
    let bytes = candles_testkit::fixtures::bytes("rest_klines_BTCUSDT_1m_limit1000.json");
    let rows: Vec<Candle> = parse_klines(&bytes)
        .expect("fixture parses")
        .into_iter()
        .map(|k| k.candle)
        .collect();
    let mut all = Vec::with_capacity(rows.len() * 100);
    for rep in 0..100i64 {
        let shift = rep * 1000 * MIN;
        all.extend(rows.iter().map(|c| {
            let mut c = *c;
            c.open_time += shift;
            c.close_time = c.close_time.map(|t| t + shift);
            c
        }));
    }
    let mut s = ChunkedStore::new();
    s.put_all(&all);
    s
}

/// The newest 720 candles, `reps` times; returns the candles decoded.
#[inline(never)]
fn read_newest(s: &ChunkedStore, reps: usize, sink: &mut u64) -> usize {
    let mut n = 0;
    for _ in 0..reps {
        let cs = s.range(i64::MIN, i64::MAX, Some(720));
        n += cs.len();
        *sink = sink.wrapping_add(cs.last().map_or(0, |c| c.open_time as u64));
    }
    n
}

/// The whole store, `reps` times.
#[inline(never)]
fn read_whole(s: &ChunkedStore, reps: usize, sink: &mut u64) -> usize {
    let mut n = 0;
    for _ in 0..reps {
        let cs = s.range(i64::MIN, i64::MAX, None);
        n += cs.len();
        *sink = sink.wrapping_add(cs.first().map_or(0, |c| c.open_time as u64));
    }
    n
}

fn main() {
    let arg = candles_testkit::arg::<usize>;
    let (newest_reps, whole_reps) = (arg(1, 200), arg(2, 3));
    let s = store();
    let mut sink = 0u64;
    let t0 = Instant::now();
    let n1 = read_newest(&s, newest_reps, &mut sink);
    let d1 = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let n2 = read_whole(&s, whole_reps, &mut sink);
    let d2 = t0.elapsed().as_secs_f64();
    // Digest of everything the store holds, outside the measured functions.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in s.range(i64::MIN, i64::MAX, None) {
        c.hash(&mut h);
    }
    println!(
        "newest 720: {:.1} us/read, {:.1} ns/candle; whole ({} candles): {:.2} ms/read, {:.1} ns/candle; digest {:016x} ({sink})",
        d1 * 1e6 / newest_reps as f64,
        d1 * 1e9 / n1 as f64,
        s.len(),
        d2 * 1e3 / whole_reps as f64,
        d2 * 1e9 / n2 as f64,
        h.finish(),
    );
}
