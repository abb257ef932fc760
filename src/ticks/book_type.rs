//! The `tickbook1` Redis data type (one key per trading session, named tick streams inside)
//! and its INFO counters. Its versioned canonical encoding lives in `candles_core::ticks`; the
//! shared callbacks in `datatype`.

use candles_core::ticks::TickBook;
use candles_core::CoreResult;
use redis_module::logging;
use redis_module::native_types::RedisType;

use crate::datatype::{self, ModuleValue};
use crate::stats::{self, Footprint, Gauges};

/// Tag of an AOF-rewrite blob (`TICKS.APPLY key <tag><encoding>`) that carries a whole book.
pub const SNAPSHOT_TAG: u8 = b'B';

impl ModuleValue for TickBook {
    const WHAT: &'static str = "tick book";
    // The payload itself starts with its own versioned magic (`TKB\x01`).
    const ENCVER: i32 = 1;
    const APPLY_COMMAND: &'static std::ffi::CStr = c"TICKS.APPLY";
    const SNAPSHOT_TAG: u8 = SNAPSHOT_TAG;

    /// The canonical encoding; an empty book's if the book cannot be read (never expected:
    /// the book only holds what it validated).
    fn snapshot(&self, out: &mut Vec<u8>) {
        match self.encode() {
            Ok(v) => out.extend_from_slice(&v),
            Err(e) => {
                logging::log_warning(format!("candles: tick book cannot be encoded: {e}"));
                out.extend_from_slice(&TickBook::new().encode().unwrap_or_default());
            }
        }
    }
    fn restore(bytes: &[u8]) -> CoreResult<Self> {
        TickBook::decode(bytes)
    }
    fn mem_usage(&self) -> usize {
        TickBook::mem_usage(self)
    }
    fn free_effort(&self) -> usize {
        // One unit per chunk of ticks plus one per stream.
        TickBook::free_effort(self)
    }
    const GAUGES: &'static Gauges = &stats::TICK_BOOKS;
    fn footprint(&self) -> Footprint {
        [
            1,
            self.stream_count() as i64,
            self.tick_count() as i64,
            TickBook::mem_usage(self) as i64,
        ]
    }
    fn redis_type() -> &'static RedisType {
        &TICKS_TYPE
    }
}

pub static TICKS_TYPE: RedisType = RedisType::new(
    "tickbook1",
    TickBook::ENCVER,
    datatype::methods::<TickBook>(),
);
