//! The Binance payload parsers on arbitrary bytes: REST klines bodies, single rows, WebSocket
//! kline events and combined-stream frames, trade frames. Never a panic; every parsed kline
//! prints back (Display of its decimals parses again) and validates or is refused cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| candles_fuzz_harness::klines_json(data));
