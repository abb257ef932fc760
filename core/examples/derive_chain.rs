//! The server-side work of `CANDLE.OFFICIAL_ADD` into a 1m series that feeds a 5m → 1h → 1d
//! chain (benchmark row 7), without Redis: 1000-row REST bodies of the real 1m rows (times
//! shifted by 1000 min per body) are parsed and added, each level re-derived and applied as
//! the module's cascade does, and every effect encoded (the module replicates each one).
//! Prints digests of the effects and of every level's snapshot (unchanged digests =
//! unchanged results and byte formats).
//!
//! Deterministic figures: count instructions in the measured functions only, the chain and
//! the same ingest feeding nothing:
//! `valgrind --tool=callgrind --toggle-collect='*chain_all*' target/release/examples/derive_chain`
//! `valgrind --tool=callgrind --toggle-collect='*plain_all*' target/release/examples/derive_chain`
//!
//! `cargo run --release -p candles-core --example derive_chain [-- REPS]`

use candles_core::align::Align;
use candles_core::binance::parse_incoming;
use candles_core::series::{DuplicatePolicy, Effect, Series, Settings};
use candles_core::Interval;
use std::time::Instant;

const NOW: i64 = i64::MAX / 2;

/// FNV-1a, for a digest of the produced bytes.
fn fnv(h: &mut u64, b: &[u8]) {
    for &x in b {
        *h ^= u64::from(x);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

fn series(interval: &str) -> Series {
    Series::new(Settings {
        align: Align::Utc,
        interval: Interval::parse(interval).expect("interval"),
        retention: 0,
        live_ttl_s: 86_400,
        live_max: 64,
        policy: DuplicatePolicy::Replace,
    })
}

/// The 1m series and the levels it feeds (`DERIVE_LEVELS` of 5m, 1h, 1d; all three unless set),
/// each level linked to the one above as `CANDLE.CREATE ... SOURCE` links it (a derived
/// series' store takes the streamed tail).
fn chain() -> Vec<Series> {
    let levels = std::env::var("DERIVE_LEVELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // Each level's source is the level before it.
    let mut above: Option<&str> = None;
    ["1m", "5m", "1h", "1d"]
        .into_iter()
        .take(1 + levels)
        .map(|iv| {
            let mut s = series(iv);
            if let Some(src) = above.replace(iv) {
                s.apply(&Effect {
                    source: Some(src.as_bytes().to_vec()),
                    ..Effect::default()
                });
            }
            s
        })
        .collect()
}

/// One body into `chain[0]`, then down the chain as `src/candle/derive.rs` does; each
/// effect encoded into `blob` and handed to `sink`.
fn add_body(chain: &mut [Series], body: &[u8], blob: &mut Vec<u8>, sink: &mut impl FnMut(&[u8])) {
    let (batch, _intervals) = parse_incoming(body).expect("parses");
    let Some(first) = chain.first_mut() else {
        return;
    };
    let before = first.live_times();
    let out = first.add_official(&batch, NOW).expect("adds");
    blob.clear();
    out.effect.encode(blob);
    sink(blob);
    let mut touched = first.touched_times(&out.effect, &before);
    let mut given = out.effect.official;
    for i in 1..chain.len() {
        let (src, rest) = chain.split_at_mut(i);
        let (Some(src), Some(dst)) = (src.last(), rest.first_mut()) else {
            return;
        };
        let e: Effect = dst.derive(src, &touched, &given, NOW);
        if e.is_empty() {
            return;
        }
        let before = dst.live_times();
        dst.apply(&e);
        blob.clear();
        e.encode(blob);
        sink(blob);
        touched = dst.touched_times(&e, &before);
        // The level above is done with its candles: handed back, as the cascade does.
        candles_core::candle::recycle(std::mem::replace(&mut given, e.official));
    }
    candles_core::candle::recycle(given);
}

fn run(chain: &mut [Series], bodies: &[Vec<u8>], blob: &mut Vec<u8>) {
    for body in bodies {
        add_body(chain, body, blob, &mut |b| {
            std::hint::black_box(b);
        });
    }
}

#[inline(never)]
fn chain_all(chain: &mut [Series], bodies: &[Vec<u8>], blob: &mut Vec<u8>) {
    run(chain, bodies, blob);
}

/// The 1m series alone (a chain of one).
#[inline(never)]
fn plain_all(chain: &mut [Series], bodies: &[Vec<u8>], blob: &mut Vec<u8>) {
    run(chain.get_mut(..1).unwrap_or_default(), bodies, blob);
}

fn main() {
    let reps: usize = candles_testkit::arg(1, 20);
    let bodies = candles_testkit::fixtures::rest_1m_bodies(reps);
    // See examples/ingest.rs: glibc's one-off consolidation, outside the measured work.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(64 << 10)));
    let mut blob = Vec::new();
    let mut plain = chain();
    let t0 = Instant::now();
    plain_all(&mut plain, &bodies, &mut blob);
    let tp = t0.elapsed().as_secs_f64();
    let mut chained = chain();
    let t0 = Instant::now();
    chain_all(&mut chained, &bodies, &mut blob);
    let tc = t0.elapsed().as_secs_f64();
    // Digests from a third run, outside the measured functions.
    let mut fresh = chain();
    let mut effects = 0xcbf2_9ce4_8422_2325u64;
    for body in &bodies {
        add_body(&mut fresh, body, &mut blob, &mut |b| fnv(&mut effects, b));
    }
    let mut snapshots = 0xcbf2_9ce4_8422_2325u64;
    let mut snap = Vec::new();
    for s in &fresh {
        snap.clear();
        s.encode(&mut snap);
        fnv(&mut snapshots, &snap);
    }
    let n = (reps * 1000) as f64;
    println!(
        "{reps} bodies: plain {:.3} us/candle, chain {:.3} us/candle ({:.2}x); derived 5m/1h/1d {}/{}/{}; effects digest {effects:016x}, snapshots digest {snapshots:016x}",
        tp * 1e6 / n,
        tc * 1e6 / n,
        tc / tp,
        fresh.get(1).map_or(0, Series::official_len),
        fresh.get(2).map_or(0, Series::official_len),
        fresh.get(3).map_or(0, Series::official_len),
    );
}
