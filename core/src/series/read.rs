//! The reads of a series: officials and fresh live candles merged (R6), visited or
//! collected, as JSON text (served from the per-series cache when the read reaches the
//! newest official), the live region on its own, and the gaps of the official region.

use super::{LiveCandle, Series};
use crate::candle::{Candle, CandleKind};
use crate::chart_cache::ChartCache;
use crate::error::CoreResult;
use crate::render::{self, Window};

/// One candle of [`Series::visit_merged_cached`]: the cached JSON text of an official candle,
/// or a decoded candle.
pub enum Merged<'a> {
    Cached(&'a [u8]),
    Candle(&'a Candle, CandleKind),
}

impl Series {
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
            None => (live.as_slice(), None),
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
    pub(super) fn fresh_live(
        &self,
        from: i64,
        to: i64,
        now_ms: i64,
    ) -> impl Iterator<Item = &Candle> {
        self.live
            .range(from..=to)
            .filter(move |(_, l)| self.is_live_fresh(l, now_ms))
            .map(|(_, l)| &l.candle)
    }

    /// `range_merged` as the JSON text of `FORMAT JSON`. A read that reaches the newest
    /// official candle (what a chart loads) is served from `cache`'s window of the newest
    /// `cache_cap` officials' text, extended as candles are appended and dropped when older
    /// ones change; other reads, reads with `cache_cap == 0` (which drop the series' windows)
    /// or a zero budget, and reads whose window was evicted, render from the store (and
    /// refill the window). The text is the same either way.
    #[allow(clippy::too_many_arguments)]
    pub fn range_merged_json(
        &self,
        from: i64,
        to: i64,
        count: Option<usize>,
        full: bool,
        now_ms: i64,
        cache: &ChartCache,
        cache_cap: usize,
    ) -> Vec<u8> {
        if from > to || count == Some(0) {
            return b"[]".to_vec();
        }
        let cached = self.with_window(to, full, cache, cache_cap, |w| {
            self.json_from_window(w, from, to, count, full, now_ms)
        });
        if let Some(out) = cached {
            return out;
        }
        render::candles_json_with(full, |push| {
            self.visit_merged(from, to, count, now_ms, |c, k| push(c, k))
        })
    }

    /// `serve` on the series' cached window of `full`'s shape, brought up to date, when a read
    /// up to `to` reaches the newest official and the cache is on (`cache_cap == 0` drops the
    /// series' windows); None when the read is not served from it.
    fn with_window<R>(
        &self,
        to: i64,
        full: bool,
        cache: &ChartCache,
        cache_cap: usize,
        serve: impl FnOnce(&Window) -> Option<R>,
    ) -> Option<R> {
        if cache_cap == 0 {
            self.json.forget();
            return None;
        }
        if self.official.last_time().is_none_or(|l| to < l) {
            return None;
        }
        cache
            .with_window(&self.json, full, |slot| {
                self.sync_window(slot, full, cache_cap);
                serve(slot.as_ref()?)
            })
            .flatten()
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

    /// The officials a read takes from the window (`start..hi`, indices into it) and the live
    /// candles after them, or None when the officials asked for are not all in it.
    fn window_span<'a>(
        &'a self,
        w: &Window,
        from: i64,
        to: i64,
        count: Option<usize>,
        now_ms: i64,
    ) -> Option<(usize, usize, Vec<&'a Candle>)> {
        let mut live: Vec<&Candle> = self.fresh_live(from, to, now_ms).collect();
        let officials_wanted = match count {
            Some(n) if live.len() >= n => {
                live.drain(..live.len() - n);
                Some(0)
            }
            Some(n) => Some(n - live.len()),
            None => None,
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
        Some((start, hi, live))
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
        let (start, hi, live) = self.window_span(w, from, to, count, now_ms)?;
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

    /// [`visit_merged`](Self::visit_merged) for replies that are not one JSON text (RESP
    /// arrays): a read that reaches the newest official candle hands `f` the officials as
    /// their cached text ([`Merged::Cached`], read back by [`render::CachedCandle`]), sparing
    /// the chunk decoding and the decimal formatting; the live candles, and every candle of
    /// other reads, come decoded. The same cache and rules as
    /// [`range_merged_json`](Self::range_merged_json); `f` runs under the cache's lock.
    #[allow(clippy::too_many_arguments)]
    pub fn visit_merged_cached(
        &self,
        from: i64,
        to: i64,
        count: Option<usize>,
        full: bool,
        now_ms: i64,
        cache: &ChartCache,
        cache_cap: usize,
        mut f: impl FnMut(Merged<'_>),
    ) {
        if from > to || count == Some(0) {
            return;
        }
        let served = self.with_window(to, full, cache, cache_cap, |w| {
            let (start, hi, live) = self.window_span(w, from, to, count, now_ms)?;
            for i in start..hi {
                // Each candle's text without the comma that follows it.
                let end = w.start_of(i + 1).saturating_sub(1);
                f(Merged::Cached(
                    w.text.get(w.start_of(i)..end).unwrap_or_default(),
                ));
            }
            for c in live {
                f(Merged::Candle(c, CandleKind::Live));
            }
            Some(())
        });
        if served.is_some() {
            return;
        }
        self.visit_merged(from, to, count, now_ms, |c, k| f(Merged::Candle(c, k)));
    }

    /// Bytes the chart cache holds for this series now (0 once evicted; MEMORY USAGE shows
    /// them, the data gauges of INFO do not).
    pub fn cache_bytes(&self) -> usize {
        self.json.bytes()
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
        let i = self.buckets();
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
}
