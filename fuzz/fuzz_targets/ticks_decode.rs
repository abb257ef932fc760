//! TickBook::decode (the tick book's RDB/DUMP payload and TICKS.APPLY snapshot) on arbitrary
//! bytes. Never a panic, never an allocation the input can't justify. A book that decodes
//! reads consistently, and its encoding is canonical: encode → decode → encode gives the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| candles_fuzz_harness::ticks_decode(data));
