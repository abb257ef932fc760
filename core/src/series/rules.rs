//! The write rules of a series: R1–R4 for official candles, R2/R5/R7 for live ones, the
//! clock a write decides with, and `apply`, which every write (and every replicated
//! effect) goes through, with the invariants it restores.

use super::{
    live_fresh, DuplicatePolicy, Effect, EffectMode, LiveCandle, LiveOutcome, OfficialOutcome,
    Series, WriteClock, STAMP_REUSE_MAX_MS,
};
use crate::candle::{Candle, Incoming};
use crate::decimal::Dec;
use crate::error::{CoreError, CoreResult};
use crate::interval::MAX_TIME;
use std::collections::HashMap;

impl Series {
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

    pub(super) fn expired_live(&self, now_ms: i64) -> Vec<i64> {
        self.live
            .values()
            .filter(|l| !self.is_live_fresh(l, now_ms))
            .map(|l| l.candle.open_time)
            .collect()
    }

    /// R1–R4: adds official candles. The whole batch is validated (and, under `BLOCK`,
    /// checked for conflicts) before anything is written.
    pub fn add_official(&mut self, batch: &[Incoming], now_ms: i64) -> CoreResult<OfficialOutcome> {
        self.validate_batch(batch)?;
        let interval = self.buckets();
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
        // The last row of each open time wins, in the order of those last rows (as if each
        // row replaced an earlier one of its time): walked backwards, the first seen of each
        // time kept. A set, not a search of what is kept: a page of n forming rows is n log n.
        let mut seen = std::collections::BTreeSet::new();
        for inc in forming.iter().rev() {
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
            if seen.insert(t) {
                effect.live_put.push(LiveCandle {
                    candle: inc.candle,
                    updated_ms: now_ms,
                });
            }
        }
        effect.live_put.reverse();
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

    /// Checks every candle of a batch against the series' buckets (the first bad one named by
    /// its position).
    pub fn validate_batch(&self, batch: &[Incoming]) -> CoreResult<()> {
        let buckets = self.buckets();
        for (i, inc) in batch.iter().enumerate() {
            inc.candle.validate(buckets).map_err(|e| {
                if batch.len() > 1 {
                    // Positions count from 1, as `document n` of TICKS.PUSH.
                    CoreError::invalid(format!("candle #{}: {e}", i + 1))
                } else {
                    e
                }
            })?;
        }
        Ok(())
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
        candle.validate(self.buckets())?;
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
        let t = self.buckets().align_down(time);
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
        if let Some(src) = &e.source {
            // Before the candles: a derived series' store takes its few candles per write
            // into a longer tail (see `STREAM_TAIL_MAX`), back-fill included.
            self.source = Some(src.clone());
            self.official.set_streamed(true);
        }
        if !e.official.is_empty() {
            let appends = crate::candle::strictly_ascending(&e.official)
                && e.official.first().is_none_or(|c| {
                    self.official
                        .last_time()
                        .is_none_or(|last| c.open_time > last)
                });
            if !appends {
                // Cached text may show candles this write changes. (Retention only drops the
                // oldest, which reads skip by time.)
                self.official_gen = self.official_gen.wrapping_add(1);
                self.json.forget();
            }
            // A replica (or an AOF replay) installs the chunks the master sealed, unencoded.
            if !e.sealed.install(&mut self.official, &e.official) {
                self.official.put_all(&e.official);
            }
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
        if let Some(feeds) = &e.feeds {
            self.feeds = feeds.clone();
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
}
