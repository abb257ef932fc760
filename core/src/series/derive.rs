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
use crate::decimal::{Dec, DecSum};
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

/// What `aggregate` produced, in bucket order: the official candles of buckets after every
/// stored official (the append case: no stored candle to compare with) straight in the
/// vector that becomes the effect's, everything else with its bucket for `effect_of`. Each
/// derived candle is written once, not moved through a vector of results.
struct Results {
    /// The newest stored official's open time, when the buckets were derived.
    newest: Option<i64>,
    appended: Vec<Candle>,
    other: Vec<(i64, Derived)>,
}

impl Results {
    fn new(newest: Option<i64>, buckets: usize) -> Results {
        Results {
            newest,
            appended: crate::candle::spare_vec(buckets),
            other: Vec::new(),
        }
    }

    /// The official candle of the bucket at `start`.
    #[inline(always)]
    fn official(&mut self, start: i64, c: Candle) {
        if self.newest.is_none_or(|n| start > n) {
            self.appended.push(c);
        } else {
            self.other.push((start, Derived::Official(c)));
        }
    }

    #[inline(always)]
    fn push(&mut self, start: i64, d: Derived) {
        match d {
            Derived::Official(c) => self.official(start, c),
            other => self.other.push((start, other)),
        }
    }
}

/// The running aggregate of one bucket: the fields of the candle it becomes, the sums still
/// running (no whole candle inside: the aggregate is moved and cloned whole).
#[derive(Clone, Debug)]
pub(super) struct Acc {
    start: i64,
    open: Dec,
    high: Dec,
    low: Dec,
    close: Dec,
    trades: Option<u64>,
    volume: DecSum,
    quote_volume: Option<DecSum>,
    taker_buy_base: Option<DecSum>,
    taker_buy_quote: Option<DecSum>,
    all_official: bool,
    /// The source buckets seen so far follow each other from the bucket's start.
    contiguous: bool,
    expect: i64,
    overflow: bool,
}

/// An optional sum: present while every candle has the field.
#[inline]
fn add_opt(a: &mut Option<DecSum>, b: Option<Dec>, overflow: &mut bool) {
    match (a.as_mut(), b) {
        (Some(sum), Some(d)) => *overflow |= !sum.add(d),
        _ => *a = None,
    }
}

impl Acc {
    fn new(start: i64, c: &Candle, kind: CandleKind, src: Buckets) -> Acc {
        Acc {
            start,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            trades: c.trades,
            volume: c.volume.sum(),
            quote_volume: c.quote_volume.map(Dec::sum),
            taker_buy_base: c.taker_buy_base.map(Dec::sum),
            taker_buy_quote: c.taker_buy_quote.map(Dec::sum),
            all_official: kind == CandleKind::Official,
            contiguous: c.open_time == start,
            expect: src.next(c.open_time),
            overflow: false,
        }
    }

    fn add(&mut self, c: &Candle, kind: CandleKind, src: Buckets) {
        self.fold(c);
        self.all_official &= kind == CandleKind::Official;
        self.contiguous &= c.open_time == self.expect;
        self.expect = src.next(c.open_time);
    }

    /// `c`'s prices, sums and trade count into the aggregate (`add` without the bookkeeping
    /// of kinds and contiguity).
    #[inline(always)]
    fn fold(&mut self, c: &Candle) {
        // Branch-free selects: whether a candle moves the bucket's high or low is data.
        self.high = self.high.max(c.high);
        self.low = self.low.min(c.low);
        self.close = c.close;
        self.overflow |= !self.volume.add(c.volume);
        add_opt(&mut self.quote_volume, c.quote_volume, &mut self.overflow);
        add_opt(
            &mut self.taker_buy_base,
            c.taker_buy_base,
            &mut self.overflow,
        );
        add_opt(
            &mut self.taker_buy_quote,
            c.taker_buy_quote,
            &mut self.overflow,
        );
        self.trades = match (self.trades, c.trades) {
            (Some(x), Some(y)) => x.checked_add(y).or_else(|| {
                self.overflow = true;
                None
            }),
            _ => None,
        };
    }

    fn finish(self, end: i64) -> Derived {
        let Some(c) = self.candle(end) else {
            return Derived::Skip;
        };
        if self.all_official && self.contiguous && self.expect == end {
            Derived::Official(c)
        } else {
            Derived::Live(c)
        }
    }

    /// The candle of the bucket ending at `end`, or None when a sum left the decimal range.
    #[inline(always)]
    fn candle(&self, end: i64) -> Option<Candle> {
        if self.overflow {
            return None;
        }
        Some(Candle {
            open_time: self.start,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume.finish(),
            close_time: Some(end - 1),
            quote_volume: self.quote_volume.map(DecSum::finish),
            trades: self.trades,
            taker_buy_base: self.taker_buy_base.map(DecSum::finish),
            taker_buy_quote: self.taker_buy_quote.map(DecSum::finish),
        })
    }
}

/// What a cached aggregate of source officials was computed from: the source value, its
/// official region's shape and write generation, and the bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PrefixKey {
    source: u64,
    gen: u64,
    len: usize,
    first: Option<i64>,
    last: Option<i64>,
    start: i64,
}

impl PrefixKey {
    fn of(src: &Series, start: i64) -> PrefixKey {
        PrefixKey {
            source: src.uid,
            gen: src.official_gen,
            len: src.official.len(),
            first: src.official.first_time(),
            last: src.official.last_time(),
            start,
        }
    }
}

/// Folds `rest` (official, ascending) into `acc`, begun at `start` with the candle before
/// them: `acc.contiguous` then says whether they are consecutive source buckets from `start`
/// on, and `acc.expect` where they end. In place: an aggregate is ~25 words, and moving it
/// in and out of an `Option` per bucket cost about a fifth of a 5-candle bucket's work.
fn fold_from_start(acc: &mut Acc, rest: &[Candle], start: i64, sb: Buckets) {
    match sb.step() {
        // Buckets of one length: `n` strictly ascending aligned times from `start` follow
        // each other exactly when the last is `n - 1` steps on (no `next` per candle).
        Some(step) => {
            let (mut prev, mut ascending) = (start, true);
            for c in rest {
                acc.fold(c);
                ascending &= c.open_time > prev;
                prev = c.open_time;
            }
            let steps = i64::try_from(rest.len())
                .ok()
                .and_then(|n| n.checked_mul(step));
            acc.contiguous = ascending && steps == prev.checked_sub(start);
            acc.expect = prev.saturating_add(step);
        }
        None => {
            for c in rest {
                acc.add(c, CandleKind::Official, sb);
            }
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
    /// holding one of the source open times `touched`. `given`: official candles the write
    /// just stored in `src` (any order); a bucket they cover whole is aggregated from them
    /// without reading the source's chunks.
    pub fn derive(
        &mut self,
        src: &Series,
        touched: &[i64],
        given: &[Candle],
        now_ms: i64,
    ) -> Effect {
        let b = self.buckets();
        // The bucket of each time, aligned only when the time leaves the previous one's
        // bucket: an append's times come in order, many to a bucket (the same starts, minus
        // repeats that `dedup` drops below anyway).
        let mut starts: Vec<i64> = Vec::new();
        let mut bucket: Option<(i64, i64)> = None;
        for &t in touched.iter().filter(|t| (0..=MAX_TIME).contains(*t)) {
            if bucket.is_some_and(|(s, e)| s <= t && t < e) {
                continue;
            }
            let s = b.align_down(t);
            bucket = Some((s, b.next(s)));
            if s >= 0 {
                starts.push(s);
            }
        }
        // Usually ascending already (an append's times).
        if !starts.windows(2).all(|w| matches!(w, [a, b] if a <= b)) {
            starts.sort_unstable();
        }
        starts.dedup();
        let sorted = crate::candle::strictly_ascending(given);
        let given: std::borrow::Cow<'_, [Candle]> = if sorted {
            given.into()
        } else {
            let mut v = given.to_vec();
            v.sort_unstable_by_key(|c| c.open_time);
            v.into()
        };
        let mut results = Results::new(self.official.last_time(), starts.len());
        self.aggregate(src, &starts, &given, now_ms, &mut results);
        self.effect_of(results, now_ms)
    }

    /// R8 over everything the source holds (creation back-fill), a window of source candles
    /// at a time.
    pub fn derive_all(&mut self, src: &Series, now_ms: i64) -> Effect {
        const WINDOW: usize = 4096;
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
            let next = b.next(s);
            if next <= s {
                break; // never: buckets move forward (a guard against a zone's oddities)
            }
            s = next;
        }
        let mut results = Results::new(self.official.last_time(), starts.len());
        // Source buckets a bucket spans, at most (a month counts 28 days).
        let src_len = src.interval().fixed_ms().unwrap_or(28 * 86_400_000).max(1);
        let span = |s: i64| ((b.next(s) - s) / src_len).max(1) as usize;
        let mut i = 0;
        while i < starts.len() {
            // Buckets whose source candles fill about one window, read once.
            let from = starts.get(i).copied().unwrap_or(0);
            let mut j = i + 1;
            let mut n = span(from);
            while let Some(&next) = starts.get(j) {
                if n + span(next) > WINDOW {
                    break;
                }
                n += span(next);
                j += 1;
            }
            let upto = starts.get(j - 1).map_or(from, |&s| b.next(s) - 1);
            let given = src.official.range(from, upto, None);
            let these = starts.get(i..j).unwrap_or(&[]);
            self.aggregate(src, these, &given, now_ms, &mut results);
            i = j;
        }
        self.effect_of(results, now_ms)
    }

    /// The newest open time the merged view holds.
    fn last_time(&self, now_ms: i64) -> Option<i64> {
        let live = self
            .fresh_live(i64::MIN, i64::MAX, now_ms)
            .last()
            .map(|c| c.open_time);
        live.or(self.official.last_time())
    }

    /// The effect of the derived buckets becoming `results`.
    fn effect_of(&self, results: Results, now_ms: i64) -> Effect {
        let mut effect = Effect::default();
        let Results {
            newest,
            appended,
            other,
        } = results;
        // Buckets that may hold an official already (at or before the newest): looked up,
        // and left out of the effect when unchanged.
        let lookup: Vec<i64> = other
            .iter()
            .filter(|(_, r)| matches!(r, Derived::Official(_)))
            .map(|(s, _)| *s)
            .collect();
        if lookup.is_empty() {
            effect.official = appended;
        } else {
            let existing: std::collections::HashMap<i64, Candle> = lookup
                .iter()
                .zip(self.official.get_many(&lookup))
                .filter_map(|(t, c)| c.map(|c| (*t, c)))
                .collect();
            effect.official.reserve_exact(lookup.len() + appended.len());
            for (start, r) in &other {
                if let Derived::Official(c) = r {
                    if existing.get(start) != Some(c) {
                        effect.official.push(*c);
                    }
                }
            }
            // All after the looked-up ones (their buckets follow the newest official).
            effect.official.extend_from_slice(&appended);
            crate::candle::recycle(appended);
        }
        for (start, result) in other {
            match result {
                Derived::Official(_) | Derived::Skip => {}
                Derived::Live(c) => {
                    if newest.is_none_or(|n| start > n) {
                        effect.live_put.push(LiveCandle {
                            candle: c,
                            updated_ms: now_ms,
                        });
                    }
                }
                Derived::Empty => {
                    if self.live.contains_key(&start) {
                        effect.live_drop.push(start);
                    }
                }
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

    /// Aggregates the source's merged candles into each bucket of `starts` (ascending): from
    /// `given` (ascending) when it holds the bucket whole, else from the source's officials
    /// (through the prefix cache) and its live candles.
    fn aggregate(
        &mut self,
        src: &Series,
        starts: &[i64],
        given: &[Candle],
        now_ms: i64,
        out: &mut Results,
    ) {
        let b = self.buckets();
        let sb = src.buckets();
        let coverage = src.coverage_start(now_ms);
        // `given`'s candles in the bucket, found by a cursor that only moves forward (starts
        // and `given` ascend): a step per candle, no binary search per bucket.
        let mut lo = 0;
        for &start in starts {
            let end = b.next(start);
            if coverage.is_some_and(|cov| start < cov) {
                out.push(start, Derived::Skip);
                continue;
            }
            while given.get(lo).is_some_and(|c| c.open_time < start) {
                lo += 1;
            }
            let mut hi = lo;
            while given.get(hi).is_some_and(|c| c.open_time < end) {
                hi += 1;
            }
            let mine = given.get(lo..hi).unwrap_or(&[]);
            let mut run = None;
            if let Some((first, rest)) = mine.split_first().filter(|(f, _)| f.open_time == start) {
                let mut acc = Acc::new(start, first, CandleKind::Official, sb);
                fold_from_start(&mut acc, rest, start, sb);
                if acc.contiguous && acc.expect == end {
                    // Every source bucket present and official: the common case, the candle
                    // written straight where it goes.
                    match acc.candle(end) {
                        Some(c) => out.official(start, c),
                        None => out.push(start, Derived::Skip),
                    }
                    continue;
                }
                if acc.contiguous {
                    run = Some(acc);
                }
            }
            // The source's officials in the bucket: `given`'s when they run from its start
            // to the newest official (the bucket still forming: nothing else can be in
            // it), else the stored ones.
            let newest = mine.last().map(|c| c.open_time);
            let mut acc = match run {
                Some(acc) if newest.is_some() && newest == src.official.last_time() => {
                    // The next write to this bucket starts from here.
                    self.prefix = Some((PrefixKey::of(src, start), Some(acc.clone())));
                    Some(acc)
                }
                _ => self.officials_of(src, start, end, given),
            };
            for c in src.fresh_live(start, end - 1, now_ms) {
                match acc.as_mut() {
                    Some(a) => a.add(c, CandleKind::Live, sb),
                    None => acc = Some(Acc::new(start, c, CandleKind::Live, sb)),
                }
            }
            out.push(start, acc.map_or(Derived::Empty, |a| a.finish(end)));
        }
    }

    /// The aggregate of the source's officials in `[start, end)`, from the prefix cache when
    /// the source's officials have not changed since it was filled (a live write to the
    /// source, the common case, reads no chunk).
    fn officials_of(
        &mut self,
        src: &Series,
        start: i64,
        end: i64,
        given: &[Candle],
    ) -> Option<Acc> {
        let key = PrefixKey::of(src, start);
        let sb = src.buckets();
        if let Some((k, acc)) = &self.prefix {
            if *k == key {
                return acc.clone();
            }
            // Only appends since (same generation, nothing dropped): the cached officials
            // plus the appended ones, all in `given` when their count says so.
            let appended_after = k.last.unwrap_or(i64::MIN);
            let from = given.partition_point(|c| c.open_time <= appended_after);
            let appended = given.get(from..).unwrap_or(&[]);
            if k.source == key.source
                && k.gen == key.gen
                && k.first == key.first
                && k.start == start
                && k.len + appended.len() == key.len
            {
                let mut acc = acc.clone();
                for c in appended.iter().take_while(|c| c.open_time < end) {
                    match acc.as_mut() {
                        Some(a) => a.add(c, CandleKind::Official, sb),
                        None => acc = Some(Acc::new(start, c, CandleKind::Official, sb)),
                    }
                }
                self.prefix = Some((key, acc.clone()));
                return acc;
            }
        }
        let mut acc: Option<Acc> = None;
        src.official.visit_range(start, end - 1, None, |cs| {
            for c in cs {
                match acc.as_mut() {
                    Some(a) => a.add(c, CandleKind::Official, sb),
                    None => acc = Some(Acc::new(start, c, CandleKind::Official, sb)),
                }
            }
        });
        self.prefix = Some((key, acc.clone()));
        acc
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
