//! A candle series: the official region, the live region, and the rules R1–R7 that keep
//! them apart. Every write computes an [`Effect`] (what changes, decided with the caller's
//! `now_ms`) and applies it; the module replicates that effect, so replicas and the AOF
//! replay exactly what the master decided, whatever their clocks say.
//!
//! This file holds the types and the state with its accessors; the rest of `Series` is
//! split by concern: `rules` (writes: R1–R5 and R7, official/live, effects applied),
//! `derive` (R8 rollups and R9 sealing), `read` (merged reads, `GAPS`, JSON reads and their cache) and `wire` (the byte formats
//! of the snapshot and of the effect).

mod derive;
#[cfg(test)]
mod derive_tests;
mod read;
mod rules;
#[cfg(test)]
mod tests;
mod wire;

pub use read::Merged;
pub use wire::MAX_FEEDS;

use crate::align::{Align, Buckets};
use crate::candle::Candle;
use crate::chart_cache::CacheSlot;
use crate::error::{CoreError, CoreResult};
use crate::interval::Interval;
use crate::store::OfficialStore;
use std::collections::BTreeMap;

/// Most live candles a series may keep (`LIVE_MAX` upper bound).
pub const LIVE_MAX_LIMIT: u64 = 100_000;
/// Largest `LIVE_TTL` in seconds (10 years).
pub const LIVE_TTL_LIMIT: u64 = 10 * 366 * 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicatePolicy {
    /// The newest exchange data wins (corrects a candle stored too early).
    Replace,
    /// The first official candle wins (`ZADD NX`).
    Keep,
    /// A different candle for an existing time is an error; nothing is written.
    Block,
}

impl DuplicatePolicy {
    pub fn parse(s: &str) -> CoreResult<Self> {
        match s.to_ascii_uppercase().as_str() {
            "REPLACE" => Ok(Self::Replace),
            "KEEP" => Ok(Self::Keep),
            "BLOCK" => Ok(Self::Block),
            _ => Err(CoreError::invalid(format!(
                "unknown DUPLICATE_POLICY '{s}' (REPLACE, KEEP or BLOCK)"
            ))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "REPLACE",
            Self::Keep => "KEEP",
            Self::Block => "BLOCK",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub interval: Interval,
    /// Where buckets start (UTC unless `ALIGN`/`TIMEZONE` said otherwise).
    pub align: Align,
    /// Newest official candles kept; 0 = unlimited.
    pub retention: u64,
    /// Seconds a live candle lives after its last update; 0 = until its official arrives.
    pub live_ttl_s: u64,
    pub live_max: u64,
    pub policy: DuplicatePolicy,
}

impl Settings {
    /// The buckets of the series: its interval with its alignment.
    pub fn buckets(&self) -> Buckets {
        Buckets {
            interval: self.interval,
            align: self.align,
        }
    }

    pub fn validate(&self) -> CoreResult<()> {
        Buckets::new(self.interval, self.align)?;
        if self.live_max == 0 || self.live_max > LIVE_MAX_LIMIT {
            return Err(CoreError::invalid(format!(
                "LIVE_MAX must be between 1 and {LIVE_MAX_LIMIT}"
            )));
        }
        if self.live_ttl_s > LIVE_TTL_LIMIT {
            return Err(CoreError::invalid(format!(
                "LIVE_TTL must be between 0 and {LIVE_TTL_LIMIT} seconds"
            )));
        }
        if self.retention > i64::MAX as u64 {
            return Err(CoreError::invalid("RETENTION out of range"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveCandle {
    pub candle: Candle,
    /// Server time (ms) of the last update, for `LIVE_TTL`.
    pub updated_ms: i64,
}

/// What a write changes, with every clock decision already made. Applying the same effect
/// to the same state gives the same state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effect {
    /// Present when the write created the series.
    pub create: Option<Settings>,
    /// Official candles to store (insert or overwrite).
    pub official: Vec<Candle>,
    /// Live open times to drop (expired).
    pub live_drop: Vec<i64>,
    /// Live candles to store (insert or overwrite).
    pub live_put: Vec<LiveCandle>,
    /// The server time the write decided with; applying the effect makes it the series'
    /// write stamp (see [`Series::write_clock`]). Not a change by itself.
    pub clock: Option<i64>,
    /// Makes the series derived from this source key (`CANDLE.CREATE ... SOURCE`).
    pub source: Option<Vec<u8>>,
    /// Replaces the keys of the series derived from this one.
    pub feeds: Option<Vec<Vec<u8>>>,
    /// `official` as the sealed chunks a version-4 effect carried (decoded on a replica or
    /// in an AOF replay), which `apply` installs as they are when they extend the store.
    pub sealed: Sealed,
}

/// [`Effect::sealed`]: a form of the effect's official candles, not part of its value (two
/// effects are equal when they change the same things).
#[derive(Clone, Debug, Default)]
pub struct Sealed(Option<Box<OfficialStore>>);

impl PartialEq for Sealed {
    fn eq(&self, _: &Sealed) -> bool {
        true
    }
}

impl Sealed {
    /// Appends the chunks to `store` when they hold exactly `official` (by count and first
    /// and last open time: both were decoded from the same bytes) and extend it
    /// ([`ChunkedStore::append_sealed`](crate::chunk::ChunkedStore::append_sealed)).
    fn install(&self, store: &mut OfficialStore, official: &[Candle]) -> bool {
        let time = |c: Option<&Candle>| c.map(|c| c.open_time);
        match &self.0 {
            Some(s)
                if s.len() == official.len()
                    && s.first_time() == time(official.first())
                    && s.last_time() == time(official.last()) =>
            {
                store.append_sealed(s)
            }
            _ => false,
        }
    }
}

impl Effect {
    pub fn is_empty(&self) -> bool {
        self.create.is_none()
            && self.source.is_none()
            && self.feeds.is_none()
            && self.official.is_empty()
            && self.live_drop.is_empty()
            && self.live_put.is_empty()
    }
}

/// Result of an official write.
#[derive(Debug, Default)]
pub struct OfficialOutcome {
    /// Official candles inserted or changed (identical re-adds and R4 reroutes not counted).
    pub changed: usize,
    /// Candles sent as official but still forming (R4), stored as live.
    pub routed_live: usize,
    pub effect: Effect,
}

/// Whether a live write builds its replication effect. A caller that replicates the
/// command itself (verbatim) has no use for it: `Skip` reaches the same state, and the
/// outcome's effect stays empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectMode {
    Build,
    Skip,
}

/// R5: whether a live candle is still fresh at `now_ms` under a `LIVE_TTL` of `ttl_s`.
fn live_fresh(ttl_s: u64, l: &LiveCandle, now_ms: i64) -> bool {
    ttl_s == 0 || l.updated_ms.saturating_add(ttl_s as i64 * 1000) > now_ms
}

/// Result of a live write.
#[derive(Debug, Default)]
pub struct LiveOutcome {
    pub changed: bool,
    pub effect: Effect,
}

/// Compared by stored data only, not by cache state (see its `PartialEq`).
#[derive(Clone, Debug)]
pub struct Series {
    settings: Settings,
    official: OfficialStore,
    live: BTreeMap<i64, LiveCandle>,
    /// Bumped by every official write that is not a pure append (what invalidates `json`).
    official_gen: u64,
    /// Its place in the chart cache, which holds the JSON text of its newest official
    /// candles (see `range_merged_json`).
    json: CacheSlot,
    /// The server time of the last write replicated as an effect (see `write_clock`).
    stamp: Option<i64>,
    /// The key this series is derived from (R8), by name: the link holds while that key is
    /// a series that lists this one in its `feeds`.
    source: Option<Vec<u8>>,
    /// The keys of the series derived from this one, in creation order.
    feeds: Vec<Vec<u8>>,
    /// This value's identity for caches built from it (never persisted).
    uid: u64,
    /// A derived series' aggregate of its source's officials in one bucket, and what it was
    /// computed from (see `derive.rs`; never persisted).
    prefix: Option<(derive::PrefixKey, Option<derive::Acc>)>,
}

/// Source of `Series::uid`.
static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Two series are equal when they hold the same data: what the snapshot (`wire.rs`)
/// persists, so that a series and its RDB round trip compare equal. `uid`, `prefix`,
/// `official_gen` and
/// `json` are read-side cache state (a cache key and the text it keys), never persisted: a
/// decoded series starts them afresh, whatever the original's history of non-append
/// writes and JSON reads, so comparing them would make equal data unequal.
impl PartialEq for Series {
    fn eq(&self, other: &Self) -> bool {
        // Destructured, so a field added later must be placed on one side or the other.
        let Series {
            settings,
            official,
            live,
            stamp,
            source,
            feeds,
            official_gen: _,
            json: _,
            uid: _,
            prefix: _,
        } = self;
        *settings == other.settings
            && *official == other.official
            && *live == other.live
            && *stamp == other.stamp
            && *source == other.source
            && *feeds == other.feeds
    }
}

/// The clock a write decides with (`Series::write_clock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteClock {
    /// The series' stamp, reused: the write then depends only on the stored state and its
    /// arguments, so it replicates verbatim and a replica (or the AOF) replays it exactly
    /// with the same stamp ([`Series::replay_clock`]).
    Stamp(i64),
    /// Fresh server time: the write restamps the series and replicates as its effect.
    Fresh(i64),
}

impl WriteClock {
    pub fn ms(self) -> i64 {
        match self {
            WriteClock::Stamp(t) | WriteClock::Fresh(t) => t,
        }
    }
}

/// Longest reuse of a write stamp (ms): `LIVE_TTL` is counted in seconds.
pub const STAMP_REUSE_MAX_MS: i64 = 1000;

impl Series {
    pub fn new(settings: Settings) -> Series {
        Series {
            settings,
            official: OfficialStore::new(),
            live: BTreeMap::new(),
            official_gen: 0,
            json: CacheSlot::default(),
            stamp: None,
            source: None,
            feeds: Vec::new(),
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            prefix: None,
        }
    }

    /// The key this series is derived from, as stored (the caller checks the link holds).
    pub fn source(&self) -> Option<&[u8]> {
        self.source.as_deref()
    }
    /// The keys derived from this series, as stored.
    pub fn feeds(&self) -> &[Vec<u8>] {
        &self.feeds
    }
    /// Renames a link end (RENAME of a linked key): `old` becomes `new` as source or feed.
    pub fn rename_link(&mut self, old: &[u8], new: &[u8]) -> bool {
        let mut changed = false;
        if self.source.as_deref() == Some(old) {
            self.source = Some(new.to_vec());
            changed = true;
        }
        for f in self.feeds.iter_mut().filter(|f| f.as_slice() == old) {
            *f = new.to_vec();
            changed = true;
        }
        changed
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn interval(&self) -> Interval {
        self.settings.interval
    }
    pub fn buckets(&self) -> Buckets {
        self.settings.buckets()
    }
    pub fn official(&self) -> &OfficialStore {
        &self.official
    }
    pub fn official_len(&self) -> usize {
        self.official.len()
    }
    /// Live candles stored, expired or not (what memory holds).
    pub fn live_len(&self) -> usize {
        self.live.len()
    }

    fn is_live_fresh(&self, l: &LiveCandle, now_ms: i64) -> bool {
        live_fresh(self.settings.live_ttl_s, l, now_ms)
    }

    /// Heap bytes held by the value.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Series>()
            + self.source.as_ref().map_or(0, Vec::len)
            + self.feeds.iter().map(|f| f.len() + 24).sum::<usize>()
            + self.official.mem_usage()
            + self.live.len()
                * (std::mem::size_of::<LiveCandle>() + std::mem::size_of::<i64>() + 16)
    }
}
