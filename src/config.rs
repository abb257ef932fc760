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

/// A numeric config: its name (without `candles.`), default and range. One table serves the
/// registration (lib.rs) and the check of load-time arguments, so both agree.
pub struct NumConfig {
    pub name: &'static str,
    pub default: i64,
    pub min: i64,
    pub max: i64,
}

pub const RETENTION_CFG: NumConfig = NumConfig {
    name: "retention",
    default: 0,
    min: 0,
    max: i64::MAX,
};
pub const LIVE_TTL_CFG: NumConfig = NumConfig {
    name: "live_ttl",
    default: 86_400,
    min: 0,
    max: candles_core::series::LIVE_TTL_LIMIT as i64,
};
pub const LIVE_MAX_CFG: NumConfig = NumConfig {
    name: "live_max",
    default: 64,
    min: 1,
    max: candles_core::series::LIVE_MAX_LIMIT as i64,
};
pub const TICK_CAP_CFG: NumConfig = NumConfig {
    name: "tick_cap",
    default: 1000,
    min: 1,
    max: 1_000_000,
};
pub const JSON_CACHE_CFG: NumConfig = NumConfig {
    name: "json_cache",
    default: 1024,
    min: 0,
    max: 1_000_000,
};
pub const JSON_CACHE_MEMORY_CFG: NumConfig = NumConfig {
    name: "json_cache_memory",
    default: 64 << 20,
    min: 0,
    max: 1 << 50,
};
const NUMERIC: [&NumConfig; 6] = [
    &RETENTION_CFG,
    &LIVE_TTL_CFG,
    &LIVE_MAX_CFG,
    &TICK_CAP_CFG,
    &JSON_CACHE_CFG,
    &JSON_CACHE_MEMORY_CFG,
];
const POLICIES: [&str; 3] = ["replace", "keep", "block"];

/// Checks `--loadmodule ... name value ...` the way `CONFIG SET candles.<name>` checks a value:
/// known names, each once, a value in range. redis-module applies load-time arguments as the
/// configs' defaults without any range check, so without this a bad argument would load.
pub fn check_load_args(args: &[&[u8]]) -> Result<(), String> {
    if !args.len().is_multiple_of(2) {
        let last = args
            .last()
            .map(|a| String::from_utf8_lossy(a))
            .unwrap_or_default();
        return Err(format!(
            "load-time arguments are name/value pairs: '{last}' has no value"
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for pair in args.chunks_exact(2) {
        let [name, value] = pair else { continue };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = String::from_utf8_lossy(value);
        let name = name.strip_prefix("candles.").unwrap_or(&name).to_string();
        if seen.contains(&name) {
            return Err(format!("load-time argument '{name}' given more than once"));
        }
        if name == "duplicate_policy" {
            if !POLICIES.iter().any(|p| p.eq_ignore_ascii_case(&value)) {
                return Err(format!(
                    "load-time argument 'duplicate_policy {value}': must be one of replace, keep, block"
                ));
            }
        } else if let Some(cfg) = NUMERIC.iter().find(|c| c.name == name) {
            match value.parse::<i64>() {
                Ok(v) if (cfg.min..=cfg.max).contains(&v) => {}
                _ => {
                    return Err(format!(
                        "load-time argument '{name} {value}': must be an integer between {} and {}",
                        cfg.min, cfg.max
                    ))
                }
            }
        } else {
            let mut known: Vec<&str> = NUMERIC.iter().map(|c| c.name).collect();
            known.push("duplicate_policy");
            return Err(format!(
                "unknown load-time argument '{name}' (known: {})",
                known.join(", ")
            ));
        }
        seen.push(name);
    }
    Ok(())
}

lazy_static! {
    pub static ref RETENTION: AtomicI64 = AtomicI64::new(RETENTION_CFG.default);
    pub static ref LIVE_TTL: AtomicI64 = AtomicI64::new(LIVE_TTL_CFG.default);
    pub static ref LIVE_MAX: AtomicI64 = AtomicI64::new(LIVE_MAX_CFG.default);
    pub static ref TICK_CAP: AtomicI64 = AtomicI64::new(TICK_CAP_CFG.default);
    /// Newest official candles per series whose `FORMAT JSON` text is kept for chart loads.
    pub static ref JSON_CACHE: AtomicI64 = AtomicI64::new(JSON_CACHE_CFG.default);
    /// Bytes the chart cache may hold across all series (`chart_cache::CHART_CACHE`).
    pub static ref JSON_CACHE_MEMORY: AtomicI64 = AtomicI64::new(JSON_CACHE_MEMORY_CFG.default);
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
        align: Default::default(),
        interval,
        retention: RETENTION.load(Ordering::Relaxed).max(0) as u64,
        live_ttl_s: LIVE_TTL.load(Ordering::Relaxed).max(0) as u64,
        live_max: LIVE_MAX.load(Ordering::Relaxed).max(1) as u64,
        policy: default_policy(),
    }
}

/// The chart cache's budget as configured.
pub fn json_cache_budget() -> usize {
    JSON_CACHE_MEMORY.load(Ordering::Relaxed).max(0) as usize
}
