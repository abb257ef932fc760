//! Tick books: one key per trading session holding named, capped streams. Its data type
//! (`book_type`) and the TICKS.* commands by family (`write`, `read`, `admin`).

pub mod admin;
pub mod book_type;
pub mod read;
pub mod write;

use std::sync::atomic::Ordering;

use candles_core::ticks::MAX_CAP;

use crate::config::TICK_CAP;

pub use read::{DEFAULT_TICK_COUNT, MAX_TICK_COUNT};

/// The cap of a stream created without `MAXLEN` (`candles.tick_cap`).
fn default_cap() -> usize {
    TICK_CAP.load(Ordering::Relaxed).clamp(1, MAX_CAP as i64) as usize
}
