//! Candle::from_args on arbitrary argument splits (space-separated words, as a client would
//! send `t o h l c v`), Interval::parse on every word, and the accepted candles through a
//! series' write rules (official add, live update, live tick) with a fuzzed clock.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| candles_fuzz_harness::candle_args(data));
