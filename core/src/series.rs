//! A candle series: the official region, the live region, and the rules R1–R7 that keep
//! them apart. Every write computes an [`Effect`] (what changes, decided with the caller's
//! `now_ms`) and applies it; the module replicates that effect, so replicas and the AOF
//! replay exactly what the master decided, whatever their clocks say.

use crate::candle::{Candle, CandleKind, Incoming};
use crate::codec::{self, Reader};
use crate::decimal::Dec;
use crate::error::{CoreError, CoreResult};
use crate::interval::{Interval, MAX_TIME};
use crate::render::{self, JsonCache, Window};
use crate::store::OfficialStore;
use std::collections::{BTreeMap, HashMap};

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
    fn code(self) -> u8 {
        self as u8
    }
    fn from_code(c: u8) -> Option<Self> {
        [Self::Replace, Self::Keep, Self::Block]
            .get(c as usize)
            .copied()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub interval: Interval,
    /// Newest official candles kept; 0 = unlimited.
    pub retention: u64,
    /// Seconds a live candle lives after its last update; 0 = until its official arrives.
    pub live_ttl_s: u64,
    pub live_max: u64,
    pub policy: DuplicatePolicy,
}

impl Settings {
    pub fn validate(&self) -> CoreResult<()> {
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
}

impl Effect {
    pub fn is_empty(&self) -> bool {
        self.create.is_none()
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

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    settings: Settings,
    official: OfficialStore,
    live: BTreeMap<i64, LiveCandle>,
    /// Bumped by every official write that is not a pure append (what invalidates `json`).
    official_gen: u64,
    /// JSON text of the newest official candles (see `range_merged_json`).
    json: JsonCache,
    /// The server time of the last write replicated as an effect (see `write_clock`).
    stamp: Option<i64>,
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
            json: JsonCache::default(),
            stamp: None,
        }
    }

    /// The clock of a live write at server time `now_ms`. Live writes need a time only to
    /// stamp candles for `LIVE_TTL` and to expire old ones; reusing the stamp of the last
    /// effect-replicated write for a short while (at most 1 s, and at most 1% of `LIVE_TTL`)
    /// lets bursts of writes replicate verbatim, like `SET`, instead of as effects. The price:
    /// a live candle may expire that much before `LIVE_TTL` has passed since its update.
    pub fn write_clock(&self, now_ms: i64) -> WriteClock {
        match self.stamp {
            Some(s) if now_ms >= s && now_ms - s < self.stamp_reuse_ms() => WriteClock::Stamp(s),
            _ => WriteClock::Fresh(now_ms),
        }
    }

    /// The clock of a write replayed verbatim (from the master or the AOF): the stamp the
    /// master used. `fallback` (the local clock) only for a series that never had one, which
    /// the master never replicates verbatim.
    pub fn replay_clock(&self, fallback: i64) -> i64 {
        self.stamp.unwrap_or(fallback)
    }

    fn stamp_reuse_ms(&self) -> i64 {
        match self.settings.live_ttl_s {
            0 => STAMP_REUSE_MAX_MS,
            // 1% of the TTL (ms = s * 1000 / 100).
            ttl => (ttl as i64).saturating_mul(10).min(STAMP_REUSE_MAX_MS),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn interval(&self) -> Interval {
        self.settings.interval
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

    fn expired_live(&self, now_ms: i64) -> Vec<i64> {
        self.live
            .values()
            .filter(|l| !self.is_live_fresh(l, now_ms))
            .map(|l| l.candle.open_time)
            .collect()
    }

    /// R1–R4: adds official candles. The whole batch is validated (and, under `BLOCK`,
    /// checked for conflicts) before anything is written.
    pub fn add_official(&mut self, batch: &[Incoming], now_ms: i64) -> CoreResult<OfficialOutcome> {
        let interval = self.interval();
        for (i, inc) in batch.iter().enumerate() {
            inc.candle.validate(interval).map_err(|e| {
                if batch.len() > 1 {
                    CoreError::invalid(format!("candle #{i}: {e}"))
                } else {
                    e
                }
            })?;
        }
        // R4: a forming candle (x=false, or closing in the future) is never official.
        // Sized for the common case, all official: one allocation, no regrowth.
        let mut official: Vec<&Incoming> = Vec::with_capacity(batch.len());
        let mut forming: Vec<&Incoming> = Vec::new();
        for inc in batch {
            if inc.closed != Some(false) && inc.candle.effective_close_time(interval) <= now_ms {
                official.push(inc);
            } else {
                forming.push(inc);
            }
        }

        let mut pending: HashMap<i64, &Candle> = HashMap::new();
        let mut order: Vec<i64> = Vec::new();
        // A pure append (strictly ascending, all newer than the newest stored) has no
        // duplicate to look for: every candle is inserted, in batch order.
        let stored_last = self.official.last_time();
        let pure_append = official.windows(2).all(|w| match w {
            [a, b] => a.candle.open_time < b.candle.open_time,
            _ => true,
        }) && official
            .first()
            .is_none_or(|f| stored_last.is_none_or(|n| f.candle.open_time > n));
        let official_iter = if pure_append {
            order.extend(official.iter().map(|inc| inc.candle.open_time));
            [].iter()
        } else {
            official.iter()
        };
        // The stored candles the batch may collide with, read in one pass (each touched chunk
        // decoded once; a lookup per candle would decode a chunk per candle).
        let mut probe: Vec<i64> = official_iter
            .clone()
            .map(|inc| inc.candle.open_time)
            .filter(|t| stored_last.is_some_and(|n| *t <= n))
            .collect();
        probe.sort_unstable();
        probe.dedup();
        let stored: HashMap<i64, Candle> = probe
            .iter()
            .zip(self.official.get_many(&probe))
            .filter_map(|(t, c)| c.map(|c| (*t, c)))
            .collect();
        for inc in official_iter {
            let c = &inc.candle;
            let t = c.open_time;
            let prev = pending.get(&t).copied().or(stored.get(&t));
            match prev {
                Some(p) if p == c => continue,
                Some(_) if self.settings.policy == DuplicatePolicy::Keep => continue,
                Some(_) if self.settings.policy == DuplicatePolicy::Block => {
                    return Err(CoreError::rejected(format!(
                        "a different official candle exists at {t} (DUPLICATE_POLICY BLOCK); nothing written"
                    )))
                }
                _ => {}
            }
            if pending.insert(t, c).is_none() {
                order.push(t);
            }
        }
        let mut effect = Effect {
            official: if pure_append {
                official.iter().map(|inc| inc.candle).collect()
            } else {
                order
                    .iter()
                    .filter_map(|t| pending.get(t).map(|c| **c))
                    .collect()
            },
            ..Effect::default()
        };

        let newest_official = self
            .official
            .last_time()
            .into_iter()
            .chain(order.iter().copied())
            .max();
        let mut routed_live = 0;
        for inc in &forming {
            let t = inc.candle.open_time;
            let in_batch = if pure_append {
                order.binary_search(&t).is_ok()
            } else {
                pending.contains_key(&t)
            };
            if in_batch || newest_official.is_some_and(|n| t <= n) {
                continue; // R2: official wins.
            }
            routed_live += 1;
            effect.live_put.retain(|l| l.candle.open_time != t);
            effect.live_put.push(LiveCandle {
                candle: inc.candle,
                updated_ms: now_ms,
            });
        }
        if effect.is_empty() {
            return Ok(OfficialOutcome {
                changed: 0,
                routed_live,
                effect,
            });
        }
        effect.live_drop = self.expired_live(now_ms);
        effect.clock = Some(now_ms);
        self.apply(&effect);
        // Each candle of `effect.official` (one per open time) was just put, so it is stored
        // as given unless RETENTION dropped it as one of the oldest: count the survivors
        // without reading them back (a read decodes a whole chunk).
        let first = self.official.first_time();
        let changed = effect
            .official
            .iter()
            .filter(|c| first.is_some_and(|f| c.open_time >= f))
            .count();
        debug_assert_eq!(
            changed,
            effect
                .official
                .iter()
                .filter(|c| self.official.get(c.open_time).as_ref() == Some(c))
                .count()
        );
        Ok(OfficialOutcome {
            changed,
            routed_live,
            effect,
        })
    }

    /// R2/R5: replaces the live candle at its open time with these absolute values.
    pub fn live_update(&mut self, candle: Candle, now_ms: i64) -> CoreResult<LiveOutcome> {
        self.live_update_with(&candle, now_ms, EffectMode::Build)
    }

    /// [`Self::live_update`], building its effect or not. (By reference: the candle is
    /// copied once, into the live region.)
    pub fn live_update_with(
        &mut self,
        candle: &Candle,
        now_ms: i64,
        mode: EffectMode,
    ) -> CoreResult<LiveOutcome> {
        candle.validate(self.interval())?;
        if self.official_blocks(candle.open_time) {
            return Ok(LiveOutcome::default());
        }
        self.write_live(candle, now_ms, mode)
    }

    /// R7: folds a trade into the live candle of its bucket.
    pub fn live_tick(
        &mut self,
        time: i64,
        price: Dec,
        qty: Dec,
        now_ms: i64,
    ) -> CoreResult<LiveOutcome> {
        self.live_tick_with(time, price, qty, now_ms, EffectMode::Build)
    }

    /// [`Self::live_tick`], building its effect or not.
    pub fn live_tick_with(
        &mut self,
        time: i64,
        price: Dec,
        qty: Dec,
        now_ms: i64,
        mode: EffectMode,
    ) -> CoreResult<LiveOutcome> {
        if !(0..=MAX_TIME).contains(&time) {
            return Err(CoreError::invalid(format!(
                "time {time} is out of range (0..={MAX_TIME} ms)"
            )));
        }
        if price.is_negative() || qty.is_negative() {
            return Err(CoreError::invalid("price and qty must not be negative"));
        }
        let t = self.interval().align_down(time);
        if t < 0 {
            // 1w buckets start on Mondays: the first days of 1970 belong to one opening on
            // 1969-12-29, which no stored candle may have (it could not be loaded back).
            return Err(CoreError::invalid(format!(
                "time {time} falls in a {} bucket opening before 1970-01-01",
                self.interval().as_str()
            )));
        }
        if self.official_blocks(t) {
            return Ok(LiveOutcome::default());
        }
        let candle = match self.live.get(&t).filter(|l| self.is_live_fresh(l, now_ms)) {
            Some(l) => {
                let mut c = l.candle;
                c.fold_trade(price, qty)?;
                c
            }
            None => Candle::ohlcv(t, price, price, price, price, qty),
        };
        self.write_live(&candle, now_ms, mode)
    }

    /// R2: an official at `t`, or a newer one, blocks live writes at `t`. Any official at
    /// `t` implies `t <= newest`, so the newest time alone decides (no chunk decoding).
    fn official_blocks(&self, t: i64) -> bool {
        self.official.last_time().is_some_and(|n| t <= n)
    }

    /// The live candle `candle`, updated at `now_ms`.
    fn write_live(
        &mut self,
        candle: &Candle,
        now_ms: i64,
        mode: EffectMode,
    ) -> CoreResult<LiveOutcome> {
        let live = LiveCandle {
            candle: *candle,
            updated_ms: now_ms,
        };
        if mode == EffectMode::Skip {
            // The state `apply` reaches from the effect built below, reached directly: no
            // effect vectors, the candle written in place when its open time is live already.
            let (t, ttl) = (candle.open_time, self.settings.live_ttl_s);
            self.live
                .retain(|&k, l| k == t || live_fresh(ttl, l, now_ms));
            match self.live.get_mut(&t) {
                Some(slot) => *slot = live,
                None => {
                    self.live.insert(t, live);
                }
            }
            self.stamp = Some(now_ms);
            self.settle();
            return Ok(LiveOutcome {
                changed: true,
                effect: Effect::default(),
            });
        }
        let mut effect = Effect {
            live_drop: self.expired_live(now_ms),
            clock: Some(now_ms),
            ..Effect::default()
        };
        effect.live_drop.retain(|t| *t != live.candle.open_time);
        effect.live_put = vec![live];
        self.apply(&effect);
        Ok(LiveOutcome {
            changed: true,
            effect,
        })
    }

    /// Applies an effect, then the invariants every state keeps: no live candle at or before
    /// the newest official (R2), `RETENTION`, `LIVE_MAX` (oldest evicted first, R5).
    pub fn apply(&mut self, e: &Effect) {
        if !e.official.is_empty() {
            let appends = e
                .official
                .windows(2)
                .all(|w| w[0].open_time < w[1].open_time)
                && e.official.first().is_none_or(|c| {
                    self.official
                        .last_time()
                        .is_none_or(|last| c.open_time > last)
                });
            if !appends {
                // Cached text may show candles this write changes. (Retention only drops the
                // oldest, which reads skip by time.)
                self.official_gen = self.official_gen.wrapping_add(1);
                self.json.clear();
            }
            self.official.put_all(&e.official);
        }
        for t in &e.live_drop {
            self.live.remove(t);
        }
        for l in &e.live_put {
            self.live.insert(l.candle.open_time, l.clone());
        }
        if e.clock.is_some() {
            self.stamp = e.clock;
        }
        self.settle();
    }

    /// The invariants every state keeps after a write: no live candle at or before the
    /// newest official (R2), `RETENTION`, `LIVE_MAX` (oldest evicted first, R5).
    fn settle(&mut self) {
        if let Some(newest) = self.official.last_time() {
            // Drop live candles at or before the newest official (no allocation when none).
            while let Some(e) = self.live.first_entry() {
                if *e.key() > newest {
                    break;
                }
                e.remove();
            }
        }
        let retention = self.settings.retention as usize;
        if retention > 0 && self.official.len() > retention {
            self.official.remove_oldest(self.official.len() - retention);
        }
        while self.live.len() as u64 > self.settings.live_max {
            self.live.pop_first();
        }
    }

    /// R6: for every open time in `[from, to]`, the official candle, else a fresh live one,
    /// ascending; with `count`, only the newest `count`.
    pub fn range_merged(
        &self,
        from: i64,
        to: i64,
        count: Option<usize>,
        now_ms: i64,
    ) -> Vec<(Candle, CandleKind)> {
        let mut out = Vec::new();
        self.visit_merged(from, to, count, now_ms, |c, k| out.push((*c, k)));
        out
    }

    /// [`range_merged`](Self::range_merged) without collecting it: `f` sees each candle in
    /// order. Officials come a decoded chunk at a time, so a long read never holds the
    /// whole range.
    pub fn visit_merged(
        &self,
        from: i64,
        to: i64,
        count: Option<usize>,
        now_ms: i64,
        mut f: impl FnMut(&Candle, CandleKind),
    ) {
        if from > to || count == Some(0) {
            return;
        }
        // At most LIVE_MAX, and all newer than every official: the newest `count` are the
        // newest officials, then these.
        let live: Vec<&Candle> = self.fresh_live(from, to, now_ms).collect();
        let (live, officials) = match count {
            Some(n) => {
                let l = live.get(live.len().saturating_sub(n)..).unwrap_or(&[]);
                (l, Some(n - l.len()))
            }
            None => (&live[..], None),
        };
        self.official.visit_range(from, to, officials, |cs| {
            cs.iter().for_each(|c| f(c, CandleKind::Official))
        });
        for c in live {
            f(c, CandleKind::Live);
        }
    }

    /// The unexpired live candles in `[from, to]`, oldest first. They are all newer than the
    /// newest official (`apply` keeps it so), so a merged read is officials, then these.
    fn fresh_live(&self, from: i64, to: i64, now_ms: i64) -> impl Iterator<Item = &Candle> {
        self.live
            .range(from..=to)
            .filter(move |(_, l)| self.is_live_fresh(l, now_ms))
            .map(|(_, l)| &l.candle)
    }

    /// `range_merged` as the JSON text of `FORMAT JSON`. A read that reaches the newest
    /// official candle (what a chart loads) is served from a cache of the newest `cache_cap`
    /// officials' text, extended as candles are appended and dropped when older ones change;
    /// other reads, and `cache_cap == 0`, render from the store.
    pub fn range_merged_json(
        &self,
        from: i64,
        to: i64,
        count: Option<usize>,
        full: bool,
        now_ms: i64,
        cache_cap: usize,
    ) -> Vec<u8> {
        if from > to || count == Some(0) {
            return b"[]".to_vec();
        }
        if cache_cap == 0 {
            self.json.clear();
        } else if self.official.last_time().is_some_and(|l| to >= l) {
            let cached = self.json.with(full, |slot| {
                self.sync_window(slot, full, cache_cap);
                self.json_from_window(slot.as_ref()?, from, to, count, full, now_ms)
            });
            if let Some(Some(out)) = cached {
                return out;
            }
        }
        render::candles_json_with(full, |push| {
            self.visit_merged(from, to, count, now_ms, |c, k| push(c, k))
        })
    }

    /// Brings the cached window up to date: the newest officials, at most `cap * 5 / 4`.
    fn sync_window(&self, slot: &mut Option<Box<Window>>, full: bool, cap: usize) {
        if !slot
            .as_ref()
            .is_some_and(|w| w.gen == self.official_gen && w.full == full)
        {
            *slot = Some(Box::new(Window::new(self.official_gen, full)));
        }
        let Some(w) = slot.as_mut() else {
            return;
        };
        let cached_last = w.times.last().copied();
        let Some(last) = self.official.last_time() else {
            *slot = None;
            return;
        };
        if cached_last.is_some_and(|t| t >= last) {
            return;
        }
        let newer = self
            .official
            .range(cached_last.map_or(i64::MIN, |t| t + 1), last, Some(cap));
        if cached_last.is_some() && newer.len() >= cap {
            // Too many appends since the last read to stay contiguous: start over.
            **w = Window::new(self.official_gen, full);
        }
        for c in &newer {
            if !w.push(c) {
                *slot = None;
                return;
            }
        }
        if w.times.len() > cap + cap / 4 {
            w.keep_newest(cap);
        }
        // Growth by doubling would leave up to half the text buffer unused for as long as
        // the cache lives; appends come a few per minute, so give the slack back each time.
        w.shrink();
    }

    /// The reply from the window, or None when the officials asked for are not all in it.
    fn json_from_window(
        &self,
        w: &Window,
        from: i64,
        to: i64,
        count: Option<usize>,
        full: bool,
        now_ms: i64,
    ) -> Option<Vec<u8>> {
        let live: Vec<&Candle> = self.fresh_live(from, to, now_ms).collect();
        let (live, officials_wanted) = match count {
            Some(n) if live.len() >= n => (&live[live.len() - n..], Some(0)),
            Some(n) => (&live[..], Some(n - live.len())),
            None => (&live[..], None),
        };
        // The window is a suffix of the store, so the officials in [lo_t, to] it holds are
        // all there are from its first time on (older ones were dropped by RETENTION).
        let lo_t = from.max(self.official.first_time()?);
        let lo = w.times.partition_point(|&t| t < lo_t);
        let hi = w.times.partition_point(|&t| t <= to);
        let covers_lo = w.times.first().is_some_and(|&t0| t0 <= lo_t);
        let start = match officials_wanted {
            Some(k) if hi.saturating_sub(lo) >= k => hi - k,
            _ if covers_lo => lo,
            _ => return None,
        };
        let body = w.text.get(w.start_of(start)..w.start_of(hi))?;
        let mut out = Vec::with_capacity(body.len() + 2 + live.len() * 400);
        out.push(b'[');
        out.extend_from_slice(body);
        for c in live {
            render::candle_json(&mut out, c, CandleKind::Live, full);
            out.push(b',');
        }
        if out.len() > 1 {
            out.pop();
        }
        out.push(b']');
        Some(out)
    }

    /// Heap bytes of the JSON cache (MEMORY USAGE shows them; INFO counts data only).
    pub fn cache_bytes(&self) -> usize {
        self.json.heap_bytes()
    }

    /// The fresh live candles, oldest first.
    pub fn live_candles(&self, now_ms: i64) -> Vec<Candle> {
        self.fresh_live(i64::MIN, i64::MAX, now_ms)
            .cloned()
            .collect()
    }

    /// Stored live candles with their update times (expired ones included), oldest first.
    pub fn live_entries(&self) -> impl Iterator<Item = &LiveCandle> {
        self.live.values()
    }

    /// Missing official ranges `[start, end]` (inclusive open times) within `[from, to]`.
    pub fn gaps(&self, from: i64, to: i64) -> CoreResult<Vec<(i64, i64)>> {
        let i = self.interval();
        i.check_open_time(from)?;
        i.check_open_time(to)?;
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        let mut expect = from;
        for t in self.official.times(from, to) {
            if t > expect {
                out.push((expect, i.prev(t)));
            }
            expect = i.next(t);
        }
        if expect <= to {
            out.push((expect, to));
        }
        Ok(out)
    }

    /// Heap bytes held by the value.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Series>()
            + self.official.mem_usage()
            + self.live.len()
                * (std::mem::size_of::<LiveCandle>() + std::mem::size_of::<i64>() + 16)
    }

    /// Encodes the whole series (versioned) for RDB, DUMP and AOF rewrite.
    ///
    /// Version 2 is version 1 followed by the write stamp; a series without a stamp is
    /// written as version 1, so data that never had one keeps its bytes (and its digest).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(if self.stamp.is_some() {
            SNAPSHOT_V2
        } else {
            SNAPSHOT_V1
        });
        put_settings(out, &self.settings);
        // The chunked store's own encoding: sealed chunks are written as they are in memory.
        let mut official = Vec::new();
        self.official.encode(&mut official);
        codec::put_bytes(out, &official);
        put_live(out, self.live.values());
        if let Some(t) = self.stamp {
            codec::put_i64(out, t);
        }
    }

    pub fn decode(bytes: &[u8]) -> CoreResult<Series> {
        let mut r = Reader::new(bytes);
        let v = r.u8()?;
        if v != SNAPSHOT_V1 && v != SNAPSHOT_V2 {
            return Err(CoreError::corrupt(format!(
                "unknown series encoding version {v}"
            )));
        }
        let settings = get_settings(&mut r)?;
        let mut s = Series::new(settings);
        s.official = OfficialStore::decode(r.bytes()?)?;
        let mut last = None;
        for c in s.official.iter() {
            check_decoded(&c, settings.interval, &mut last)?;
        }
        let mut last_live = None;
        for l in get_live(&mut r)? {
            check_decoded(&l.candle, settings.interval, &mut last_live)?;
            s.live.insert(l.candle.open_time, l);
        }
        if v == SNAPSHOT_V2 {
            s.stamp = Some(r.i64()?);
        }
        if !r.is_empty() {
            return Err(CoreError::corrupt("trailing bytes after series"));
        }
        // Reads rely on it (officials, then live): `apply` never leaves a live candle at or
        // before the newest official.
        if let (Some(&first_live), Some(last)) = (s.live.keys().next(), s.official.last_time()) {
            if first_live <= last {
                return Err(CoreError::corrupt(
                    "live candle at or before the newest official",
                ));
            }
        }
        if s.live.len() as u64 > settings.live_max
            || (settings.retention > 0 && s.official.len() as u64 > settings.retention)
        {
            return Err(CoreError::corrupt("series exceeds its own limits"));
        }
        Ok(s)
    }
}

const SNAPSHOT_V1: u8 = 1;
/// Adds the write stamp.
const SNAPSHOT_V2: u8 = 2;
const EFFECT_V1: u8 = 1;
/// Adds the write clock (effects in AOF files written before it are version 1).
const EFFECT_V2: u8 = 2;

fn check_decoded(c: &Candle, i: Interval, last: &mut Option<i64>) -> CoreResult<()> {
    c.validate(i)
        .map_err(|e| CoreError::corrupt(format!("stored candle invalid: {e}")))?;
    if last.is_some_and(|l| c.open_time <= l) {
        return Err(CoreError::corrupt("stored candles out of order"));
    }
    *last = Some(c.open_time);
    Ok(())
}

fn put_settings(out: &mut Vec<u8>, s: &Settings) {
    out.push(s.interval.code());
    out.push(s.policy.code());
    codec::put_u64(out, s.retention);
    codec::put_u64(out, s.live_ttl_s);
    codec::put_u64(out, s.live_max);
}

fn get_settings(r: &mut Reader<'_>) -> CoreResult<Settings> {
    let interval =
        Interval::from_code(r.u8()?).ok_or_else(|| CoreError::corrupt("unknown interval code"))?;
    let policy = DuplicatePolicy::from_code(r.u8()?)
        .ok_or_else(|| CoreError::corrupt("unknown policy code"))?;
    let s = Settings {
        interval,
        policy,
        retention: r.u64()?,
        live_ttl_s: r.u64()?,
        live_max: r.u64()?,
    };
    s.validate()
        .map_err(|e| CoreError::corrupt(format!("bad settings: {e}")))?;
    Ok(s)
}

fn put_live<'a>(out: &mut Vec<u8>, live: impl ExactSizeIterator<Item = &'a LiveCandle>) {
    codec::put_u64(out, live.len() as u64);
    for l in live {
        codec::put_i64(out, l.updated_ms);
        codec::put_candle(out, &l.candle);
    }
}

fn get_live(r: &mut Reader<'_>) -> CoreResult<Vec<LiveCandle>> {
    let n = r.count(codec::MIN_CANDLE_BYTES + 1)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let updated_ms = r.i64()?;
        v.push(LiveCandle {
            updated_ms,
            candle: codec::get_candle(r)?,
        });
    }
    Ok(v)
}

impl Effect {
    /// Versioned binary form, replicated as `CANDLE.APPLY key <blob>`.
    /// Version 2 is version 1 followed by the clock; an effect without one is version 1.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(if self.clock.is_some() {
            EFFECT_V2
        } else {
            EFFECT_V1
        });
        match &self.create {
            Some(s) => {
                out.push(1);
                put_settings(out, s);
            }
            None => out.push(0),
        }
        codec::put_u64(out, self.official.len() as u64);
        codec::put_candles(out, &self.official);
        codec::put_u64(out, self.live_drop.len() as u64);
        for t in &self.live_drop {
            codec::put_i64(out, *t);
        }
        put_live(out, self.live_put.iter());
        if let Some(t) = self.clock {
            codec::put_i64(out, t);
        }
    }

    /// Decodes and validates an effect against the interval it will be applied to.
    pub fn decode(bytes: &[u8]) -> CoreResult<Effect> {
        let mut r = Reader::new(bytes);
        let v = r.u8()?;
        if v != EFFECT_V1 && v != EFFECT_V2 {
            return Err(CoreError::corrupt(format!(
                "unknown effect encoding version {v}"
            )));
        }
        let create = match r.u8()? {
            0 => None,
            1 => Some(get_settings(&mut r)?),
            _ => return Err(CoreError::corrupt("bad effect header")),
        };
        let n = r.count(codec::MIN_CANDLE_BYTES)?;
        let mut official = Vec::with_capacity(n);
        for _ in 0..n {
            official.push(codec::get_candle(&mut r)?);
        }
        let n = r.count(1)?;
        let mut live_drop = Vec::with_capacity(n);
        for _ in 0..n {
            live_drop.push(r.i64()?);
        }
        let live_put = get_live(&mut r)?;
        let clock = if v == EFFECT_V2 { Some(r.i64()?) } else { None };
        if !r.is_empty() {
            return Err(CoreError::corrupt("trailing bytes after effect"));
        }
        Ok(Effect {
            create,
            official,
            live_drop,
            live_put,
            clock,
        })
    }

    /// Checks every candle against the series' interval before the effect is applied.
    pub fn validate(&self, interval: Interval) -> CoreResult<()> {
        for c in self
            .official
            .iter()
            .chain(self.live_put.iter().map(|l| &l.candle))
        {
            c.validate(interval)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "series_test.rs"]
mod tests;
