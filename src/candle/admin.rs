//! The CANDLE.* commands about a series as a whole: CREATE, INFO, and the internal APPLY
//! (the replication/AOF form of every write).

use candles_core::align::Align;
use candles_core::series::{
    DuplicatePolicy, Effect, Series, Settings, LIVE_MAX_LIMIT, LIVE_TTL_LIMIT, MAX_FEEDS,
};
use candles_core::slot::key_slot;
use candles_core::Interval;
use redis_module::commands::KeySpecFlags;
use redis_module::key::RedisKeyWritable;
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::derive;
use super::publish::{notify, publish};
use super::series_type::{EFFECT_TAG, SERIES_TYPE, SNAPSHOT_TAG};
use super::{apply_op, missing_series, no_series, write};
use crate::args::Args;
use crate::command::module_command;
use crate::config;
use crate::datatype::{self, ModuleValue, Slot};
use crate::util::{as_str, bulk, core_err, err, field_list, now_ms, require_internal, wrong_type};

module_command!(
    candle_create,
    entry: candle_create_entry,
    info: candle_create_info,
    name: "CANDLE.CREATE",
    flags: "write deny-oom",
    arity: -4,
    summary: "Create an empty candle series",
    complexity: "O(1)",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::INSERT,
);

fn candle_create(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let mut interval = None;
    let mut retention = None;
    let mut live_ttl = None;
    let mut live_max = None;
    let mut policy = None;
    let mut source = None;
    let mut align = None;
    const OPTIONS: &[&str] = &[
        "INTERVAL",
        "RETENTION",
        "LIVE_TTL",
        "LIVE_MAX",
        "DUPLICATE_POLICY",
        "SOURCE",
        "ALIGN",
        "TIMEZONE",
    ];
    while let Some(a) = args.peek() {
        match args.take_option(OPTIONS)? {
            Some("INTERVAL") => {
                let v = as_str(args.value_of("INTERVAL")?)?;
                interval = Some(Interval::parse(v).map_err(core_err)?);
            }
            Some("RETENTION") => {
                retention = Some(args.value_in("RETENTION", 0, i64::MAX as u64)?);
            }
            Some("LIVE_TTL") => live_ttl = Some(args.value_in("LIVE_TTL", 0, LIVE_TTL_LIMIT)?),
            Some("LIVE_MAX") => live_max = Some(args.value_in("LIVE_MAX", 1, LIVE_MAX_LIMIT)?),
            Some("SOURCE") => source = Some(args.value_of("SOURCE")?),
            Some(kw @ ("ALIGN" | "TIMEZONE")) => {
                if align.is_some() {
                    return Err(err("ALIGN and TIMEZONE exclude each other"));
                }
                let v = as_str(args.value_of(kw)?)?;
                align = Some(
                    if kw == "ALIGN" {
                        Align::parse_offset(v)
                    } else {
                        Align::parse_zone(v)
                    }
                    .map_err(core_err)?,
                );
            }
            Some(_) => {
                let v = as_str(args.value_of("DUPLICATE_POLICY")?)?;
                policy = Some(DuplicatePolicy::parse(v).map_err(core_err)?);
            }
            None => return Err(err(format!("unknown option '{a}'"))),
        }
    }
    let interval = interval.ok_or_else(|| err("CANDLE.CREATE needs INTERVAL <i>"))?;
    let d = config::default_settings(interval);
    let settings = Settings {
        interval,
        align: align.unwrap_or_default(),
        retention: retention.unwrap_or(d.retention),
        live_ttl_s: live_ttl.unwrap_or(d.live_ttl_s),
        live_max: live_max.unwrap_or(d.live_max),
        policy: policy.unwrap_or(d.policy),
    };
    settings.validate().map_err(core_err)?;
    let key = ctx.open_key_writable(name);
    if !key.is_empty() {
        return Err(match datatype::get_mut::<Series>(&key)? {
            Some(_) => err(format!("key '{name}' already exists")),
            None => RedisError::WrongType,
        });
    }
    match source {
        None => write(ctx, &key, name, Slot::New(Series::new(settings)), |_| {
            Ok(((), Effect::default()))
        })?,
        Some(src) => create_derived(ctx, &key, name, src, settings)?,
    }
    Ok(RedisValue::SimpleStringStatic("OK"))
}

/// `CANDLE.CREATE dst ... SOURCE src`: every check first (nothing is written on refusal),
/// then the source lists `dst` among the series it feeds and `dst` is created back-filled
/// from what the source holds (R8). Replicated as two effects, the source's then `dst`'s.
fn create_derived(
    ctx: &Context,
    key: &RedisKeyWritable,
    name: &RedisString,
    src_name: &RedisString,
    settings: Settings,
) -> Result<(), RedisError> {
    if src_name.as_slice() == name.as_slice() {
        return Err(err("a series cannot be derived from itself"));
    }
    if key_slot(src_name.as_slice()) != key_slot(name.as_slice()) {
        return Err(err(format!(
            "'{name}' and its source '{src_name}' hash to different cluster slots; give them one hash tag, e.g. candle:{{BTCUSDT}}:1m and candle:{{BTCUSDT}}:1h"
        )));
    }
    let src_key = ctx.open_key_writable(src_name);
    let src = match datatype::get_mut::<Series>(&src_key)? {
        Some(s) => s,
        None => return Err(err(format!("no candle series at SOURCE '{src_name}'"))),
    };
    src.buckets()
        .check_nests_in(settings.buckets())
        .map_err(core_err)?;
    let mut feeds = derive::feeds_of(ctx, src_name.as_slice(), src);
    if feeds.len() >= MAX_FEEDS {
        return Err(err(format!(
            "'{src_name}' already feeds {MAX_FEEDS} series, the most one series may feed"
        )));
    }
    feeds.push(name.as_slice().to_vec());
    let now = now_ms();
    let link = Effect {
        feeds: Some(feeds),
        ..Effect::default()
    };
    let mut dst = Series::new(settings);
    let mut created = dst.derive_all(src, now);
    created.create = Some(settings);
    created.source = Some(src_name.as_slice().to_vec());
    dst.apply(&created);
    let ((), link) = apply_op(&src_key, Slot::Stored(src), |s| {
        s.apply(&link);
        Ok(((), link))
    })?;
    publish(ctx, src_name, &link);
    datatype::store(key, dst)?;
    publish(ctx, name, &created);
    Ok(())
}

module_command!(
    candle_info,
    entry: candle_info_entry,
    info: candle_info_info,
    name: "CANDLE.INFO",
    flags: "readonly fast",
    arity: 2,
    summary: "Settings and counts of a candle series",
    complexity: "O(1)",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn candle_info(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let mut args = Args::new(args);
    let name = args.next_key()?;
    args.done()?;
    let key = ctx.open_key(name);
    let Some(s) = key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? else {
        return Err(missing_series(name));
    };
    let st = s.settings();
    let opt_int = |v: Option<i64>| v.map_or(RedisValue::Null, RedisValue::Integer);
    let source = derive::source_of(ctx, name.as_slice(), s);
    let feeds = derive::feeds_of(ctx, name.as_slice(), s);
    let fields = vec![
        ("interval", bulk(st.interval.as_str())),
        ("duplicate_policy", bulk(st.policy.as_str())),
        ("retention", RedisValue::Integer(st.retention as i64)),
        ("live_ttl", RedisValue::Integer(st.live_ttl_s as i64)),
        ("live_max", RedisValue::Integer(st.live_max as i64)),
        (
            "official_count",
            RedisValue::Integer(s.official_len() as i64),
        ),
        ("first_official", opt_int(s.official().first_time())),
        ("last_official", opt_int(s.official().last_time())),
        (
            "live_count",
            RedisValue::Integer(s.live_candles(now_ms()).len() as i64),
        ),
        // What MEMORY USAGE reports (the chart cache included), and the cache on its own.
        (
            "memory_usage",
            RedisValue::Integer(ModuleValue::mem_usage(s) as i64),
        ),
        (
            "json_cache_bytes",
            RedisValue::Integer(s.cache_bytes() as i64),
        ),
        // Derived series (R8), after the fields of earlier versions.
        ("align", bulk(st.align.name())),
        (
            "source",
            source.map_or(RedisValue::Null, RedisValue::BulkRedisString),
        ),
        (
            "feeds",
            RedisValue::Array(feeds.into_iter().map(RedisValue::StringBuffer).collect()),
        ),
    ];
    Ok(field_list(fields))
}

// Internal: applies a replicated effect or an AOF-rewritten snapshot. Refused from clients,
// so R1/R4 cannot be bypassed.
module_command!(
    candle_apply,
    entry: candle_apply_entry,
    info: candle_apply_info,
    name: "CANDLE.APPLY",
    flags: "write",
    arity: 3,
    summary: "Internal: replication/AOF form of candle writes (refused from clients)",
    complexity: "O(N log M)",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE,
);

fn candle_apply(ctx: &Context, args: &[RedisString]) -> RedisResult {
    require_internal(ctx, "CANDLE.APPLY")?;
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let blob = args.next_arg()?.as_slice();
    args.done()?;
    let key = ctx.open_key_writable(name);
    match blob.split_first() {
        Some((&SNAPSHOT_TAG, body)) => {
            let s = Series::decode(body).map_err(core_err)?;
            datatype::store(&key, s)?;
        }
        Some((&EFFECT_TAG, body)) => {
            let effect = Effect::decode(body).map_err(core_err)?;
            let target = Slot::open(&key, || {
                effect
                    .create
                    .map(Series::new)
                    .ok_or_else(|| no_series(name))
            })?;
            effect
                .validate(target.value().buckets())
                .map_err(core_err)?;
            // The effect moves into what `notify` reads (no copy of its candles or chunks).
            let ((), applied) = apply_op(&key, target, move |s| {
                s.apply(&effect);
                Ok((
                    (),
                    Effect {
                        create: None,
                        ..effect
                    },
                ))
            })?;
            notify(ctx, name, &applied);
        }
        _ => return Err(err("CANDLE.APPLY: unknown payload")),
    }
    ctx.replicate_verbatim();
    Ok(RedisValue::SimpleStringStatic("OK"))
}
