//! `Dec::parse_bytes` on the short arguments of LIVE_UPDATE and positional OFFICIAL_ADD
//! (`42000.01`, `41950`, `12.345`, `56714.01000000`, ...). Prints a digest of the values
//! (unchanged digest = unchanged results).
//!
//! For deterministic figures count instructions in `parse_all` only:
//! `valgrind --tool=callgrind --toggle-collect='*parse_all*' target/release/examples/parse_args`
//! (each call of `parse_all` parses `ARGS.len()` x REPS arguments).
//!
//! `cargo run --release -p candles-core --example parse_args [-- REPS [INDEX]]`

use candles_core::Dec;
use std::hash::{Hash, Hasher};
use std::hint::black_box;

const ARGS: [&str; 10] = [
    "42000.01",
    "41950",
    "12.345",
    "56714.01000000",
    "0.00123000",
    "11.02444000",
    "1725416820000",
    "624782.95032640",
    "0",
    "-3.5",
];

#[inline(never)]
fn parse_all(args: &[&[u8]], reps: usize) -> u64 {
    // A cheap fold (a few instructions per call); the digest in `main` hashes properly.
    let mut h = 0u64;
    for _ in 0..reps {
        for a in args {
            let d = Dec::parse_bytes(black_box(a));
            h = h.rotate_left(5) ^ d.map_or(u64::MAX, |d| d.mantissa() as u64);
        }
    }
    h
}

fn main() {
    let reps: usize = candles_testkit::arg(1, 10_000);
    // An index picks that one argument (to count its instructions alone).
    let args: Vec<&[u8]> = match std::env::args().nth(2).and_then(|s| s.parse().ok()) {
        Some(i) => ARGS.get(i..=i).unwrap_or(&ARGS[..]).iter(),
        None => ARGS.iter(),
    }
    .map(|s| s.as_bytes())
    .collect();
    let t0 = std::time::Instant::now();
    let fold = parse_all(&args, reps);
    let dt = t0.elapsed().as_secs_f64();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for a in &args {
        Dec::parse_bytes(a).map_err(|e| e.to_string()).hash(&mut h);
    }
    println!(
        "{} calls in {:.2} ms = {:.1} ns/call; fold {fold:016x}, digest {:016x}",
        reps * args.len(),
        dt * 1e3,
        dt * 1e9 / (reps * args.len()) as f64,
        h.finish()
    );
}
