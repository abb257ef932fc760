//! Global gauges for the `candles` INFO section, kept exact on every create, write, copy,
//! load and free (free may run on the lazy-free thread, hence atomics).

use std::sync::atomic::{AtomicI64, Ordering};

/// What one value contributes to its type's gauges: `[values, items, items, bytes]`.
pub type Footprint = [i64; 4];

/// The four gauges of one data type.
pub struct Gauges([AtomicI64; 4]);

impl Gauges {
    pub const fn new() -> Gauges {
        Gauges([const { AtomicI64::new(0) }; 4])
    }

    /// Adds (`sign` 1) or removes (-1) a value's footprint.
    pub fn add(&self, f: Footprint, sign: i64) {
        for (g, v) in self.0.iter().zip(f) {
            g.fetch_add(sign * v, Ordering::Relaxed);
        }
    }

    /// Replaces a value's old footprint by its new one. Only gauges that moved are touched:
    /// most writes (a live candle replaced, a tick pushed into a full stream) move none,
    /// and each atomic add is a locked instruction on the command path.
    pub fn changed(&self, before: Footprint, after: Footprint) {
        for ((g, b), a) in self.0.iter().zip(before).zip(after) {
            if a != b {
                g.fetch_add(a - b, Ordering::Relaxed);
            }
        }
    }

    pub fn get(&self, i: usize) -> i64 {
        self.0.get(i).map_or(0, |g| g.load(Ordering::Relaxed))
    }
}

impl Default for Gauges {
    fn default() -> Self {
        Self::new()
    }
}

/// Candle series: `[series, official candles, live candles, bytes]`.
pub static SERIES: Gauges = Gauges::new();
/// Tick books: `[books, streams, ticks, bytes]`.
pub static TICK_BOOKS: Gauges = Gauges::new();
