//! Derived series (SPEC §2a): R8, a bucket of a derived series computed exactly from the
//! source's merged candles, and R9, sealing the live candles of a tick-built series.
//!
//! A derived bucket `B` is official only when every source bucket of `B` is present and
//! official; live (the forming higher bar) otherwise. A bucket starting before the source's
//! first candle is not derived at all: the source holds only part of it, and exchange history
//! (`OFFICIAL_ADD` into the derived series) may fill it.

use super::{Effect, LiveCandle, Series};
use crate::align::Buckets;
use crate::candle::{Candle, CandleKind};
use crate::decimal::Dec;
use crate::interval::MAX_TIME;

/// What a derived bucket becomes.
#[derive(Debug, PartialEq)]
enum Derived {
    Official(Candle),
    Live(Candle),
    /// The source has no candle in it.
    Empty,
    /// Not derived: before the source's first candle, or a sum out of range.
    Skip,
}

/// The running aggregate of one bucket.
struct Acc {
    c: Candle,
    all_official: bool,
    /// The source buckets seen so far follow each other from the bucket's start.
    contiguous: bool,
    expect: i64,
    overflow: bool,
}

fn add_opt(a: Option<Dec>, b: Option<Dec>, overflow: &mut bool) -> Option<Dec> {
    match (a, b) {
        (Some(a), Some(b)) => a.checked_add(b).map_err(|_| *overflow = true).ok(),
        _ => None,
    }
}

impl Acc {
    fn new(start: i64, c: &Candle, kind: CandleKind, src: Buckets) -> Acc {
        Acc {
            c: Candle {
                open_time: start,
                ..*c
            },
            all_official: kind == CandleKind::Official,
            contiguous: c.open_time == start,
            expect: src.next(c.open_time),
            overflow: false,
        }
    }

    fn add(&mut self, c: &Candle, kind: CandleKind, src: Buckets) {
        let a = &mut self.c;
        a.high = a.high.max(c.high);
        a.low = a.low.min(c.low);
        a.close = c.close;
        match a.volume.checked_add(c.volume) {
            Ok(v) => a.volume = v,
            Err(_) => self.overflow = true,
        }
        a.quote_volume = add_opt(a.quote_volume, c.quote_volume, &mut self.overflow);
        a.taker_buy_base = add_opt(a.taker_buy_base, c.taker_buy_base, &mut self.overflow);
        a.taker_buy_quote = add_opt(a.taker_buy_quote, c.taker_buy_quote, &mut self.overflow);
        a.trades = match (a.trades, c.trades) {
            (Some(x), Some(y)) => x.checked_add(y).or_else(|| {
                self.overflow = true;
                None
            }),
            _ => None,
        };
        self.all_official &= kind == CandleKind::Official;
        self.contiguous &= c.open_time == self.expect;
        self.expect = src.next(c.open_time);
    }

    fn finish(mut self, end: i64) -> Derived {
        if self.overflow {
            return Derived::Skip;
        }
        self.c.close_time = Some(end - 1);
        if self.all_official && self.contiguous && self.expect == end {
            Derived::Official(self.c)
        } else {
            Derived::Live(self.c)
        }
    }
}

impl Series {
    /// Open times of the stored live candles (what `touched_times` compares with).
    pub fn live_times(&self) -> Vec<i64> {
        self.live.keys().copied().collect()
    }

    /// The open times whose merged candle an applied `effect` may have changed: its candles,
    /// its dropped live times, and live candles `settle` dropped (in `live_before`, gone now).
    pub fn touched_times(&self, effect: &Effect, live_before: &[i64]) -> Vec<i64> {
        let mut out: Vec<i64> = effect.official.iter().map(|c| c.open_time).collect();
        out.extend(effect.live_put.iter().map(|l| l.candle.open_time));
        out.extend(&effect.live_drop);
        out.extend(live_before.iter().filter(|t| !self.live.contains_key(t)));
        out
    }

    /// Where the source's history begins: its oldest official, else its oldest fresh live.
    pub fn coverage_start(&self, now_ms: i64) -> Option<i64> {
        let live = self
            .fresh_live(i64::MIN, i64::MAX, now_ms)
            .next()
            .map(|c| c.open_time);
        match (self.official.first_time(), live) {
            (Some(o), Some(l)) => Some(o.min(l)),
            (o, l) => o.or(l),
        }
    }

    /// R8: the effect that brings this derived series up to date with `src` in every bucket
    /// holding one of the source open times `touched`.
    pub fn derive(&self, src: &Series, touched: &[i64], now_ms: i64) -> Effect {
        let b = self.buckets();
        let mut starts: Vec<i64> = touched
            .iter()
            .filter(|t| (0..=MAX_TIME).contains(*t))
            .map(|&t| b.align_down(t))
            .filter(|s| *s >= 0)
            .collect();
        starts.sort_unstable();
        starts.dedup();
        self.derive_buckets(src, &starts, now_ms)
    }

    /// R8 over everything the source holds (creation back-fill).
    pub fn derive_all(&self, src: &Series, now_ms: i64) -> Effect {
        let b = self.buckets();
        let (Some(first), Some(last)) = (src.coverage_start(now_ms), src.last_time(now_ms)) else {
            return Effect::default();
        };
        let mut starts = Vec::new();
        let mut s = b.align_down(first).max(0);
        if !b.is_aligned(s) {
            s = b.next(b.align_down(s));
        }
        let end = b.align_down(last);
        while s <= end {
            starts.push(s);
            s = b.next(s);
        }
        self.derive_buckets(src, &starts, now_ms)
    }

    /// The newest open time the merged view holds.
    fn last_time(&self, now_ms: i64) -> Option<i64> {
        let live = self
            .fresh_live(i64::MIN, i64::MAX, now_ms)
            .last()
            .map(|c| c.open_time);
        live.or(self.official.last_time())
    }

    /// `starts`: ascending bucket open times of this series.
    fn derive_buckets(&self, src: &Series, starts: &[i64], now_ms: i64) -> Effect {
        let mut effect = Effect::default();
        if starts.is_empty() {
            return effect;
        }
        let results = self.aggregate(src, starts, now_ms);
        let existing = self.official.get_many(starts);
        for ((start, result), existing) in starts.iter().zip(results).zip(existing) {
            match result {
                Derived::Official(c) => {
                    if existing.as_ref() != Some(&c) {
                        effect.official.push(c);
                    }
                }
                Derived::Live(c) => {
                    if !self.official.last_time().is_some_and(|n| *start <= n) {
                        effect.live_put.push(LiveCandle {
                            candle: c,
                            updated_ms: now_ms,
                        });
                    }
                }
                Derived::Empty => {
                    if self.live.contains_key(start) {
                        effect.live_drop.push(*start);
                    }
                }
                Derived::Skip => {}
            }
        }
        if effect.is_empty() {
            return effect;
        }
        let expired: Vec<i64> = self
            .expired_live(now_ms)
            .into_iter()
            .filter(|t| {
                !effect.live_drop.contains(t)
                    && !effect.live_put.iter().any(|l| l.candle.open_time == *t)
            })
            .collect();
        effect.live_drop.extend(expired);
        effect.clock = Some(now_ms);
        effect
    }

    /// Aggregates the source's merged candles into each bucket of `starts` (ascending), one
    /// source read per run of adjacent buckets.
    fn aggregate(&self, src: &Series, starts: &[i64], now_ms: i64) -> Vec<Derived> {
        let b = self.buckets();
        let sb = src.buckets();
        let coverage = src.coverage_start(now_ms);
        let mut out: Vec<Derived> = Vec::with_capacity(starts.len());
        let mut i = 0;
        while i < starts.len() {
            // A run: buckets each starting where the one before ends.
            let mut j = i + 1;
            while j < starts.len()
                && starts.get(j).copied() == starts.get(j - 1).map(|&s| b.next(s))
            {
                j += 1;
            }
            let (Some(&first), Some(&last)) = (starts.get(i), starts.get(j - 1)) else {
                break;
            };
            let run_end = b.next(last);
            let mut accs: Vec<Option<Acc>> = (i..j).map(|_| None).collect();
            let mut k = 0;
            src.visit_merged(first, run_end - 1, None, now_ms, |c, kind| {
                while starts.get(i + k + 1).is_some_and(|&s| s <= c.open_time) {
                    k += 1;
                }
                let Some(&start) = starts.get(i + k) else {
                    return;
                };
                if let Some(slot) = accs.get_mut(k) {
                    match slot {
                        Some(acc) => acc.add(c, kind, sb),
                        None => *slot = Some(Acc::new(start, c, kind, sb)),
                    }
                }
            });
            for (n, acc) in accs.into_iter().enumerate() {
                let start = starts.get(i + n).copied().unwrap_or(0);
                let end = b.next(start);
                out.push(match (coverage, acc) {
                    (Some(cov), _) if start < cov => Derived::Skip,
                    (_, Some(acc)) => acc.finish(end),
                    (_, None) => Derived::Empty,
                });
            }
            i = j;
        }
        out
    }

    /// R9: makes official every fresh live candle whose bucket ended at or before `until`
    /// (and before `now_ms`: a bucket still forming stays live, R4). Returns how many.
    pub fn seal(&mut self, until: i64, now_ms: i64) -> (usize, Effect) {
        let b = self.buckets();
        let until = until.min(now_ms);
        let sealed: Vec<Candle> = self
            .fresh_live(i64::MIN, i64::MAX, now_ms)
            .filter(|c| b.next(c.open_time) <= until)
            .copied()
            .collect();
        if sealed.is_empty() {
            return (0, Effect::default());
        }
        let n = sealed.len();
        let effect = Effect {
            official: sealed,
            live_drop: self.expired_live(now_ms),
            clock: Some(now_ms),
            ..Effect::default()
        };
        self.apply(&effect);
        (n, effect)
    }
}
