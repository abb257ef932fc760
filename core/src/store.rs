//! Official region storage: candles by open time, ascending.
//!
//! Series use the compact columnar [`ChunkedStore`](crate::chunk::ChunkedStore) (≤ 24 bytes
//! per full Binance candle). [`ReferenceStore`] is the obvious BTreeMap implementation of the
//! same API, kept as the oracle the chunked store is tested against.

/// The store series use.
pub type OfficialStore = crate::chunk::ChunkedStore;

use crate::candle::Candle;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReferenceStore {
    map: BTreeMap<i64, Candle>,
}

impl ReferenceStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn first_time(&self) -> Option<i64> {
        self.map.keys().next().copied()
    }
    pub fn last_time(&self) -> Option<i64> {
        self.map.keys().next_back().copied()
    }
    pub fn get(&self, t: i64) -> Option<Candle> {
        self.map.get(&t).cloned()
    }
    pub fn contains(&self, t: i64) -> bool {
        self.map.contains_key(&t)
    }
    /// The stored candles at `times`.
    pub fn get_many(&self, times: &[i64]) -> Vec<Option<Candle>> {
        times.iter().map(|t| self.map.get(t).cloned()).collect()
    }
    /// Inserts, or overwrites the candle at the same open time.
    pub fn put(&mut self, c: Candle) {
        self.map.insert(c.open_time, c);
    }
    /// Puts every candle, in order.
    pub fn put_all(&mut self, cs: &[Candle]) {
        for c in cs {
            self.put(*c);
        }
    }
    /// Candles with `from <= open_time <= to`, ascending; only the newest `limit` when given.
    pub fn range(&self, from: i64, to: i64, limit: Option<usize>) -> Vec<Candle> {
        if from > to {
            return Vec::new();
        }
        let r = self.map.range(from..=to);
        match limit {
            None => r.map(|(_, c)| *c).collect(),
            Some(n) => {
                let mut v: Vec<Candle> = r.rev().take(n).map(|(_, c)| *c).collect();
                v.reverse();
                v
            }
        }
    }
    /// Open times with `from <= t <= to`, ascending.
    pub fn times(&self, from: i64, to: i64) -> Vec<i64> {
        if from > to {
            return Vec::new();
        }
        self.map.range(from..=to).map(|(t, _)| *t).collect()
    }
    /// Drops the `n` oldest candles.
    pub fn remove_oldest(&mut self, n: usize) {
        for _ in 0..n {
            if self.map.pop_first().is_none() {
                break;
            }
        }
    }
    /// All candles, ascending.
    pub fn iter(&self) -> impl Iterator<Item = Candle> + '_ {
        self.map.values().cloned()
    }
    /// Heap bytes held (approximate for the map's nodes).
    pub fn mem_usage(&self) -> usize {
        self.map.len() * (std::mem::size_of::<Candle>() + std::mem::size_of::<i64>() + 16)
    }
}
