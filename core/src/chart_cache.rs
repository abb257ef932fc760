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
