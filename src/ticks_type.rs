//! The `tickbook1` Redis data type (one key per trading session, named tick streams inside)
//! and its INFO counters. Its versioned canonical encoding lives in `candles_core::ticks`; the
//! shared callbacks in `datatype`.

use std::sync::atomic::{AtomicI64, Ordering};

use candles_core::ticks::TickBook;
use candles_core::CoreResult;
use redis_module::logging;
use redis_module::native_types::RedisType;

use crate::datatype::{self, ModuleValue};

/// Tag of an AOF-rewrite blob (`TICKS.APPLY key <tag><encoding>`) that carries a whole book.
pub const SNAPSHOT_TAG: u8 = b'B';

// Counters of the `candles` INFO section for tick books (exact on create, push, evict, copy,
// load and free; free may run on the lazy-free thread, hence atomics).
pub static TICK_BOOKS: AtomicI64 = AtomicI64::new(0);
pub static TICK_STREAMS: AtomicI64 = AtomicI64::new(0);
pub static TICKS: AtomicI64 = AtomicI64::new(0);
pub static TICK_BYTES: AtomicI64 = AtomicI64::new(0);

/// What one book contributes to the counters.
#[derive(Clone, Copy, Default)]
pub struct Footprint {
    streams: i64,
    ticks: i64,
    bytes: i64,
}

impl Footprint {
    pub fn of(b: &TickBook) -> Footprint {
        Footprint {
            streams: b.stream_count() as i64,
            ticks: b.tick_count() as i64,
            bytes: b.mem_usage() as i64,
        }
    }
}

fn count(f: Footprint, sign: i64) {
    TICK_STREAMS.fetch_add(sign * f.streams, Ordering::Relaxed);
    TICKS.fetch_add(sign * f.ticks, Ordering::Relaxed);
    TICK_BYTES.fetch_add(sign * f.bytes, Ordering::Relaxed);
}

pub fn book_added(f: Footprint) {
    TICK_BOOKS.fetch_add(1, Ordering::Relaxed);
    count(f, 1);
}

pub fn book_removed(f: Footprint) {
    TICK_BOOKS.fetch_add(-1, Ordering::Relaxed);
    count(f, -1);
}

pub fn book_changed(before: Footprint, after: Footprint) {
    count(before, -1);
    count(after, 1);
}

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
    fn count(&self, sign: i64) {
        let f = Footprint::of(self);
        if sign > 0 {
            book_added(f)
        } else {
            book_removed(f)
        }
    }
}

pub static TICKS_TYPE: RedisType = RedisType::new(
    "tickbook1",
    TickBook::ENCVER,
    datatype::methods::<TickBook>(),
);
