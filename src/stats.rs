//! Global counters for the `candles` INFO section, kept exact on every create, write, copy,
//! load and free (free may run on the lazy-free thread, hence atomics).

use std::sync::atomic::{AtomicI64, Ordering};

pub static SERIES: AtomicI64 = AtomicI64::new(0);
pub static OFFICIAL: AtomicI64 = AtomicI64::new(0);
pub static LIVE: AtomicI64 = AtomicI64::new(0);
pub static SERIES_BYTES: AtomicI64 = AtomicI64::new(0);

/// What one value contributes to the counters.
#[derive(Clone, Copy, Default)]
pub struct Footprint {
    pub values: i64,
    pub official: i64,
    pub live: i64,
    pub bytes: i64,
}

impl Footprint {
    pub fn of_series(s: &candles_core::series::Series) -> Footprint {
        Footprint {
            values: 1,
            official: s.official_len() as i64,
            live: s.live_len() as i64,
            bytes: s.mem_usage() as i64,
        }
    }
}

fn add(f: Footprint, sign: i64) {
    SERIES.fetch_add(sign * f.values, Ordering::Relaxed);
    OFFICIAL.fetch_add(sign * f.official, Ordering::Relaxed);
    LIVE.fetch_add(sign * f.live, Ordering::Relaxed);
    SERIES_BYTES.fetch_add(sign * f.bytes, Ordering::Relaxed);
}

pub fn series_added(f: Footprint) {
    add(f, 1);
}

pub fn series_removed(f: Footprint) {
    add(f, -1);
}

/// Replaces a value's old footprint by its new one.
pub fn series_changed(before: Footprint, after: Footprint) {
    add(before, -1);
    add(after, 1);
}

pub fn get(c: &AtomicI64) -> i64 {
    c.load(Ordering::Relaxed)
}
