//! Dec::parse_bytes on arbitrary bytes must never panic; whatever it accepts must print and
//! parse back to the same value (parse(display(x)) == x), and the text is canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| candles_fuzz_harness::decimal_parse(data));
