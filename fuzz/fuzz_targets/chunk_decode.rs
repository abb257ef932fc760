//! ChunkedStore::decode (the official region inside the RDB payload) on arbitrary bytes.
//! Never a panic; what decodes reads consistently and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| candles_fuzz_harness::chunk_decode(data));
