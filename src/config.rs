//! Module configuration: `--loadmodule libredis_candles.so retention 0 live_ttl 86400 ...` at
//! load time, `CONFIG SET candles.<name>` at run time. These are defaults for new series;
//! each series keeps its own settings once created.

use lazy_static::lazy_static;
use redis_module::enum_configuration;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use candles_core::series::{DuplicatePolicy, Settings};
use candles_core::Interval;

enum_configuration! {
    #[allow(non_camel_case_types)]
    #[derive(PartialEq, Eq, Debug)]
    pub enum PolicyConfig {
        replace = 0,
        keep = 1,
        block = 2,
    }
}

lazy_static! {
    pub static ref RETENTION: AtomicI64 = AtomicI64::new(0);
    pub static ref LIVE_TTL: AtomicI64 = AtomicI64::new(86_400);
    pub static ref LIVE_MAX: AtomicI64 = AtomicI64::new(64);
    pub static ref TICK_CAP: AtomicI64 = AtomicI64::new(1000);
    /// Newest official candles per series whose `FORMAT JSON` text is kept for chart loads.
    pub static ref JSON_CACHE: AtomicI64 = AtomicI64::new(1024);
    pub static ref DUPLICATE_POLICY: Mutex<PolicyConfig> = Mutex::new(PolicyConfig::replace);
}

pub fn default_policy() -> DuplicatePolicy {
    match DUPLICATE_POLICY
        .lock()
        .map(|g| g.clone())
        .unwrap_or(PolicyConfig::replace)
    {
        PolicyConfig::replace => DuplicatePolicy::Replace,
        PolicyConfig::keep => DuplicatePolicy::Keep,
        PolicyConfig::block => DuplicatePolicy::Block,
    }
}

/// Settings for a new series from the current defaults.
pub fn default_settings(interval: Interval) -> Settings {
    Settings {
        interval,
        retention: RETENTION.load(Ordering::Relaxed).max(0) as u64,
        live_ttl_s: LIVE_TTL.load(Ordering::Relaxed).max(0) as u64,
        live_max: LIVE_MAX.load(Ordering::Relaxed).max(1) as u64,
        policy: default_policy(),
    }
}
