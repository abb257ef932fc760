//! Series::decode and Effect::decode (the RDB/DUMP payload and the replicated CANDLE.APPLY
//! blob) on arbitrary bytes. Never a panic, never an allocation the input can't justify. What
//! decodes re-encodes to something that decodes to an equal value; a decoded effect that
//! validates is applied (as CANDLE.APPLY does) and the resulting series must survive an RDB
//! round trip too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| candles_fuzz_harness::series_decode(data));
