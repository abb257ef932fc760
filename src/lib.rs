//! redis-candles: exchange candles (live vs official) and tick books as native Redis types.
//!
//! This crate is the thin Redis layer: argument parsing, replication, notifications and
//! replies. The rules live in `candles-core`, which has no Redis types and no clock.
//!
//! By data type: `candle/` (the series type and the CANDLE.* commands) and `ticks/` (the tick
//! book type and the TICKS.* commands), each with one file per command family. Shared at the
//! top: `datatype` (type callbacks, open-or-create with the INFO bookkeeping), `args` (the
//! argument cursor), `command` (registration), `config`, `stats` (INFO gauges), `util`.

mod args;
pub mod candle;
pub mod chart_cache;
mod command;
pub mod config;
pub mod datatype;
pub mod stats;
pub mod ticks;
pub mod util;

use redis_module::configuration::ConfigurationFlags;
use redis_module::{
    redis_module, Context, InfoContext, ModuleOptions, RedisResult, RedisString, Status,
};
use redis_module_macros::info_command_handler;

use crate::candle::series_type::SERIES_TYPE;
use crate::config::{
    PolicyConfig, DUPLICATE_POLICY, JSON_CACHE, JSON_CACHE_CFG, JSON_CACHE_MEMORY,
    JSON_CACHE_MEMORY_CFG, LIVE_MAX, LIVE_MAX_CFG, LIVE_TTL, LIVE_TTL_CFG, RETENTION,
    RETENTION_CFG, TICK_CAP, TICK_CAP_CFG,
};
use crate::ticks::book_type::TICKS_TYPE;

// The builder API always names a sub-section (`candles_<name>`); the plain API with no
// name gives the section the module's own name, as SPEC asks: `INFO candles`.
#[allow(deprecated)]
#[info_command_handler]
fn module_info(ctx: &InfoContext, _for_crash_report: bool) -> RedisResult<()> {
    // Section named after the module: `INFO candles`.
    if ctx.add_info_section(None) == Status::Ok {
        let fields = [
            (
                &stats::SERIES,
                ["series", "official_candles", "live_candles", "series_bytes"],
            ),
            (
                &stats::TICK_BOOKS,
                ["tick_books", "tick_streams", "ticks", "tick_bytes"],
            ),
        ];
        for (gauges, names) in fields {
            for (i, name) in names.into_iter().enumerate() {
                ctx.add_info_field_long_long(name, gauges.get(i));
            }
        }
        // The chart cache (not data: the gauges above leave it out).
        let cache = chart_cache::CHART_CACHE.stats();
        for (name, v) in [
            ("json_cache_bytes", cache.bytes as u64),
            ("json_cache_series", cache.series as u64),
            ("json_cache_evictions", cache.evictions),
            ("json_cache_budget", cache.budget as u64),
        ] {
            ctx.add_info_field_long_long(name, i64::try_from(v).unwrap_or(i64::MAX));
        }
    }
    Ok(())
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    let words: Vec<&[u8]> = args.iter().map(RedisString::as_slice).collect();
    if let Err(e) = config::check_load_args(&words) {
        // Redis refuses to load the module and the server stops: the log says why.
        ctx.log_warning(&format!("redis-candles not loaded: {e}"));
        return Status::Err;
    }
    // Short reads and corrupt payloads during RDB/replication loading reach rdb_load as
    // errors (which refuses the value) instead of aborting the server.
    ctx.set_module_options(ModuleOptions::HANDLE_IO_ERRORS);
    Status::Ok
}

redis_module! {
    name: "candles",
    version: 100,
    allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
    data_types: [
        SERIES_TYPE,
        TICKS_TYPE,
    ],
    init: init,
    commands: [],
    // RENAME of a linked series carries its links (derived series, R8).
    event_handlers: [
        [@GENERIC: candle::derive::on_generic_event],
    ],
    configurations: [
        i64: [
            ["retention", &*RETENTION, RETENTION_CFG.default, RETENTION_CFG.min, RETENTION_CFG.max, ConfigurationFlags::DEFAULT, None],
            ["live_ttl", &*LIVE_TTL, LIVE_TTL_CFG.default, LIVE_TTL_CFG.min, LIVE_TTL_CFG.max, ConfigurationFlags::DEFAULT, None],
            ["live_max", &*LIVE_MAX, LIVE_MAX_CFG.default, LIVE_MAX_CFG.min, LIVE_MAX_CFG.max, ConfigurationFlags::DEFAULT, None],
            ["tick_cap", &*TICK_CAP, TICK_CAP_CFG.default, TICK_CAP_CFG.min, TICK_CAP_CFG.max, ConfigurationFlags::DEFAULT, None],
            ["json_cache", &*JSON_CACHE, JSON_CACHE_CFG.default, JSON_CACHE_CFG.min, JSON_CACHE_CFG.max, ConfigurationFlags::DEFAULT, None],
            ["json_cache_memory", &*JSON_CACHE_MEMORY, JSON_CACHE_MEMORY_CFG.default, JSON_CACHE_MEMORY_CFG.min, JSON_CACHE_MEMORY_CFG.max, ConfigurationFlags::DEFAULT, chart_cache::on_json_cache_memory()],
        ],
        string: [],
        bool: [],
        enum: [
            ["duplicate_policy", &*DUPLICATE_POLICY, PolicyConfig::replace, ConfigurationFlags::DEFAULT, None],
        ],
        module_args_as_configuration: true,
    ]
}
