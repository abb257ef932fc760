//! The process-wide chart cache (every series' `FORMAT JSON` windows, one memory budget) and
//! the hook that applies `candles.json_cache_memory` to it. Apart from config.rs and stats.rs
//! so that neither imports the other: this reads the config, lib.rs registers the hook.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::LazyLock;

use candles_core::chart_cache::ChartCache;

use crate::config;

/// The chart cache of every series' `FORMAT JSON` windows, under `candles.json_cache_memory`
/// (INFO shows its bytes, series, evictions and budget).
pub static CHART_CACHE: LazyLock<ChartCache> =
    LazyLock::new(|| ChartCache::new(config::json_cache_budget()));

/// The change callback of `candles.json_cache_memory` (CONFIG SET, load): the chart cache
/// evicts at once, least recently used first, down to the new budget.
pub type OnChanged =
    Box<dyn Fn(&redis_module::configuration::ConfigurationContext, &str, &'static AtomicI64)>;

pub fn on_json_cache_memory() -> Option<OnChanged> {
    Some(Box::new(|_, _, v| {
        CHART_CACHE.set_budget(v.load(Ordering::Relaxed).max(0) as usize)
    }))
}
