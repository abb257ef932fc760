//! Tick::from_json (TICKS.PUSH … JSON doc) and Tick::from_pairs on arbitrary bytes, then the
//! accepted ticks pushed into a book. Never a panic. A document that parses prints back
//! (to_json) as a document that parses to the same tick; the book encodes and decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| candles_fuzz_harness::tick_json(data));
