//! The chart cache: the rendered JSON windows of every series (what
//! `Series::range_merged_json` serves chart loads from), held in one ledger under one memory
//! budget, least recently used first out.
//!
//! A series keeps only a [`CacheSlot`] (an id in the ledger). The ledger owns the windows:
//! per series an entry with its two windows (plain, `FULL`), their heap bytes and the tick of
//! its last use (a counter bumped by every use: no clock). After every use, entries are
//! evicted, oldest use first, until the total fits the budget; the entry being served is the
//! last to go, and a window that alone exceeds the budget is not kept at all. Dropping a
//! series (on any thread: Redis frees values on its lazy-free thread) drops its entry.
//!
//! Thread-safe (one `Mutex`); a poisoned lock empties the cache instead of panicking.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::render::Window;

/// A ledger of rendered windows under a byte budget. Clones share the ledger.
#[derive(Clone)]
pub struct ChartCache(Arc<Shared>);

struct Shared {
    next_id: AtomicU64,
    /// The budget as last set (read without the lock; the ledger holds the one applied).
    budget: AtomicUsize,
    ledger: Mutex<Ledger>,
}

#[derive(Default)]
struct Ledger {
    budget: usize,
    bytes: usize,
    tick: u64,
    evictions: u64,
    entries: HashMap<u64, Entry>,
    /// Entries by last use (tick → id), oldest first.
    lru: BTreeMap<u64, u64>,
}

#[derive(Default)]
struct Entry {
    /// `[plain, FULL]`.
    windows: [Option<Box<Window>>; 2],
    bytes: usize,
    used: u64,
}

/// What INFO shows of a cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes held by all windows.
    pub bytes: usize,
    /// Series with at least one window.
    pub series: usize,
    pub windows: usize,
    /// Windows dropped to keep within the budget (or never kept, being larger than it).
    pub evictions: u64,
    pub budget: usize,
}

/// Bytes a window costs: its buffers and its box.
fn window_bytes(w: &Option<Box<Window>>) -> usize {
    w.as_ref()
        .map_or(0, |w| std::mem::size_of::<Window>() + w.heap_bytes())
}

fn windows_of(e: &Entry) -> u64 {
    e.windows.iter().filter(|w| w.is_some()).count() as u64
}

impl Ledger {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.entries.remove(&id)?;
        self.lru.remove(&e.used);
        self.bytes = self.bytes.saturating_sub(e.bytes);
        Some(e)
    }

    /// Evicts until the total fits the budget: other entries oldest first, then `keep`'s
    /// other window, then its window `keep.1`.
    fn fit(&mut self, keep: Option<(u64, usize)>) {
        while self.bytes > self.budget {
            let victim = self
                .lru
                .values()
                .copied()
                .find(|&id| Some(id) != keep.map(|k| k.0));
            match victim.and_then(|id| self.remove(id)) {
                Some(e) => self.evictions += windows_of(&e),
                None => break,
            }
        }
        let Some((id, served)) = keep else { return };
        for i in [1 - served.min(1), served.min(1)] {
            if self.bytes <= self.budget {
                return;
            }
            let Some(e) = self.entries.get_mut(&id) else {
                return;
            };
            let Some(w) = e.windows.get_mut(i) else {
                continue;
            };
            let freed = window_bytes(w);
            if w.take().is_some() {
                self.evictions += 1;
            }
            e.bytes = e.bytes.saturating_sub(freed);
            self.bytes = self.bytes.saturating_sub(freed);
            if e.windows.iter().all(Option::is_none) {
                self.remove(id);
            }
        }
    }
}

impl ChartCache {
    /// An empty cache holding at most `budget` bytes (0: none).
    pub fn new(budget: usize) -> ChartCache {
        ChartCache(Arc::new(Shared {
            next_id: AtomicU64::new(1),
            budget: AtomicUsize::new(budget),
            ledger: Mutex::new(Ledger {
                budget,
                ..Ledger::default()
            }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.0)
    }

    /// The budget as last set.
    pub fn budget(&self) -> usize {
        self.0.budget.load(Ordering::Relaxed)
    }

    /// Sets the budget and evicts, least recently used first, down to it.
    pub fn set_budget(&self, budget: usize) {
        self.0.budget.store(budget, Ordering::Relaxed);
        let mut l = self.lock();
        l.budget = budget;
        l.fit(None);
    }

    pub fn stats(&self) -> CacheStats {
        let l = self.lock();
        CacheStats {
            bytes: l.bytes,
            series: l.entries.len(),
            windows: l.entries.values().map(windows_of).sum::<u64>() as usize,
            evictions: l.evictions,
            budget: l.budget,
        }
    }

    /// `f` on `slot`'s window of the `full` shape (None: not cached yet), then the budget
    /// kept. None (and `f` not run) when the budget is 0, or the slot is another cache's.
    pub(crate) fn with_window<R>(
        &self,
        slot: &CacheSlot,
        full: bool,
        f: impl FnOnce(&mut Option<Box<Window>>) -> R,
    ) -> Option<R> {
        if self.budget() == 0 {
            // Drop whatever a budget set to 0 since the last use has left.
            if self.lock().bytes > 0 {
                self.set_budget(0);
            }
            return None;
        }
        let id = slot.id_in(self)?;
        let mut guard = self.lock();
        let l = &mut *guard;
        l.tick += 1;
        let tick = l.tick;
        let served = usize::from(full);
        let e = l.entries.entry(id).or_default();
        let last_used = std::mem::replace(&mut e.used, tick);
        let [plain, with_full] = &mut e.windows;
        let w = if full { with_full } else { plain };
        let r = f(w);
        if window_bytes(w) > l.budget {
            // Alone over the budget: served this once, not kept.
            if w.take().is_some() {
                l.evictions += 1;
            }
        }
        let bytes: usize = e.windows.iter().map(window_bytes).sum();
        let before = std::mem::replace(&mut e.bytes, bytes);
        let empty = e.windows.iter().all(Option::is_none);
        l.lru.remove(&last_used);
        if empty {
            l.entries.remove(&id);
        } else {
            l.lru.insert(tick, id);
        }
        l.bytes = l.bytes.saturating_sub(before) + bytes;
        l.fit(Some((id, served)));
        Some(r)
    }
}

fn lock(s: &Shared) -> MutexGuard<'_, Ledger> {
    match s.ledger.lock() {
        Ok(g) => g,
        Err(poisoned) => {
            // A panic mid-update may have left the totals wrong: start empty.
            let mut g = poisoned.into_inner();
            *g = Ledger {
                budget: g.budget,
                tick: g.tick,
                evictions: g.evictions,
                ..Ledger::default()
            };
            s.ledger.clear_poison();
            g
        }
    }
}

/// A series' place in a [`ChartCache`]: its ledger and id, set at its first cached read.
/// Dropping it drops its entry. A clone is a fresh, empty slot; slots always compare equal
/// (the cache is never part of a series' data).
#[derive(Default)]
pub struct CacheSlot(OnceCell<(Weak<Shared>, u64)>);

impl CacheSlot {
    /// The slot's id in `cache` (assigned now if it has none); None if it is in another.
    fn id_in(&self, cache: &ChartCache) -> Option<u64> {
        let (owner, id) = self.0.get_or_init(|| {
            (
                Arc::downgrade(&cache.0),
                cache.0.next_id.fetch_add(1, Ordering::Relaxed),
            )
        });
        std::ptr::eq(owner.as_ptr(), Arc::as_ptr(&cache.0)).then_some(*id)
    }

    /// Bytes this slot's windows hold now (0 once evicted).
    pub fn bytes(&self) -> usize {
        self.with_ledger(|l, id| l.entries.get(&id).map_or(0, |e| e.bytes))
            .unwrap_or(0)
    }

    /// Drops this slot's windows.
    pub fn forget(&self) {
        self.with_ledger(|l, id| l.remove(id));
    }

    fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger, u64) -> R) -> Option<R> {
        let (owner, id) = self.0.get()?;
        let shared = owner.upgrade()?;
        let mut l = lock(&shared);
        Some(f(&mut l, *id))
    }
}

impl Drop for CacheSlot {
    fn drop(&mut self) {
        self.forget();
    }
}

impl Clone for CacheSlot {
    fn clone(&self) -> Self {
        CacheSlot::default()
    }
}

impl PartialEq for CacheSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for CacheSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CacheSlot({} bytes)", self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Candle, Dec};

    /// Fills (or keeps) the window with `n` candles.
    fn fill(n: usize) -> impl FnOnce(&mut Option<Box<Window>>) {
        move |w| {
            if w.is_none() {
                let mut win = Window::new(0, false);
                let d = Dec::parse("12345.678").unwrap_or_default();
                for t in 0..n as i64 {
                    win.push(&Candle::ohlcv(t * 60_000, d, d, d, d, d));
                }
                win.shrink();
                *w = Some(Box::new(win));
            }
        }
    }

    /// Bytes of a window of `n` candles.
    fn cost(n: usize) -> usize {
        let c = ChartCache::new(usize::MAX);
        let s = CacheSlot::default();
        c.with_window(&s, false, fill(n));
        s.bytes()
    }

    fn check(c: &ChartCache, slots: &[CacheSlot]) -> CacheStats {
        let st = c.stats();
        assert!(st.bytes <= st.budget, "{st:?}");
        assert_eq!(st.bytes, slots.iter().map(CacheSlot::bytes).sum::<usize>());
        st
    }

    #[test]
    fn budget_holds_after_every_use_and_the_least_recent_go_first() {
        let one = cost(100);
        assert!(one > 100 * 50, "{one}");
        // Room for three windows of 100 candles, not four.
        let c = ChartCache::new(one * 3 + one / 2);
        let slots: Vec<CacheSlot> = (0..6).map(|_| CacheSlot::default()).collect();
        for s in &slots[..3] {
            assert_eq!(c.with_window(s, false, fill(100)), Some(()));
            check(&c, &slots);
        }
        assert_eq!(c.stats().series, 3);
        assert_eq!(c.stats().evictions, 0);
        // Using 0 makes 1 the least recent: the fourth series evicts 1.
        c.with_window(&slots[0], false, fill(100));
        c.with_window(&slots[3], false, fill(100));
        let st = check(&c, &slots);
        assert_eq!((st.series, st.evictions), (3, 1));
        assert_eq!(slots[1].bytes(), 0);
        assert!(slots[0].bytes() > 0 && slots[2].bytes() > 0 && slots[3].bytes() > 0);
        // A FULL window is a second window of the same entry; the oldest (2) goes.
        c.with_window(&slots[3], true, fill(100));
        let st = check(&c, &slots);
        assert_eq!((st.series, st.windows, st.evictions), (2, 3, 2));
        assert_eq!(slots[2].bytes(), 0);
        assert_eq!(slots[3].bytes(), 2 * one);
        // A window of its own over the budget is served, not kept; the others stay.
        let mut seen = false;
        c.with_window(&slots[4], false, |w| {
            fill(1000)(w);
            seen = w.is_some();
        });
        assert!(seen);
        let st = check(&c, &slots);
        assert_eq!((st.series, st.evictions), (2, 3));
        assert_eq!(slots[4].bytes(), 0);
        // Lowering the budget evicts at once, least recent first: 0 goes, 3 stays.
        c.set_budget(one * 2 + one / 2);
        let st = check(&c, &slots);
        assert_eq!((st.series, st.windows), (1, 2));
        assert_eq!(slots[0].bytes(), 0);
        // The entry being served keeps the window it serves over its other one.
        c.set_budget(one + one / 2);
        check(&c, &slots);
        c.with_window(&slots[3], true, fill(100));
        c.with_window(&slots[3], false, fill(100));
        let st = check(&c, &slots);
        assert_eq!((st.series, st.windows), (1, 1));
        assert_eq!(c.with_window(&slots[3], false, |w| w.is_some()), Some(true));
        assert_eq!(c.with_window(&slots[3], true, |w| w.is_some()), Some(false));
        check(&c, &slots);
        // Budget 0: nothing is cached, nothing is run.
        c.set_budget(0);
        assert_eq!(check(&c, &slots).bytes, 0);
        assert_eq!(c.with_window(&slots[5], false, |_| ()), None);
        assert_eq!(check(&c, &slots).series, 0);
    }

    #[test]
    fn a_dropped_slot_returns_its_bytes_even_on_another_thread() {
        let c = ChartCache::new(usize::MAX);
        let a = CacheSlot::default();
        let b = CacheSlot::default();
        c.with_window(&a, false, fill(50));
        c.with_window(&a, true, fill(50));
        c.with_window(&b, false, fill(50));
        assert_eq!(c.stats().series, 2);
        let held = c.stats().bytes;
        let a_bytes = a.bytes();
        std::thread::spawn(move || drop(a)).join().unwrap();
        let st = c.stats();
        assert_eq!((st.series, st.bytes), (1, held - a_bytes));
        // A clone is a fresh slot: it holds nothing, and dropping it leaves b alone.
        let b2 = b.clone();
        assert_eq!(b2.bytes(), 0);
        drop(b2);
        assert_eq!(c.stats().bytes, b.bytes());
        b.forget();
        assert_eq!(
            c.stats(),
            CacheStats {
                evictions: 0,
                budget: usize::MAX,
                ..CacheStats::default()
            }
        );
        // A slot outlives its cache harmlessly.
        let d = CacheSlot::default();
        {
            let c2 = ChartCache::new(usize::MAX);
            c2.with_window(&d, false, fill(10));
            assert!(d.bytes() > 0);
        }
        assert_eq!(d.bytes(), 0);
    }

    #[test]
    fn a_slot_serves_one_cache_only() {
        let (c1, c2) = (ChartCache::new(usize::MAX), ChartCache::new(usize::MAX));
        let s = CacheSlot::default();
        assert_eq!(c1.with_window(&s, false, fill(10)), Some(()));
        assert_eq!(c2.with_window(&s, false, fill(10)), None);
        assert_eq!(c2.stats().series, 0);
    }

    #[test]
    fn a_poisoned_ledger_starts_empty_without_panicking() {
        let c = ChartCache::new(usize::MAX);
        let a = CacheSlot::default();
        c.with_window(&a, false, fill(10));
        let b = CacheSlot::default();
        let c2 = c.clone();
        let hit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c2.with_window(&b, false, |_| panic!("mid-update"));
        }));
        assert!(hit.is_err());
        let st = c.stats();
        assert_eq!((st.series, st.bytes), (0, 0));
        assert_eq!(a.bytes(), 0);
        assert_eq!(c.with_window(&a, false, fill(10)), Some(()));
        assert!(a.bytes() > 0);
        assert_eq!(c.stats().bytes, a.bytes());
    }
}
