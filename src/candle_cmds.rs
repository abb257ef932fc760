//! CANDLE.* commands: parse → core → replicate the effect and notify only if something
//! changed → reply.

use candles_core::binance;
use candles_core::candle::parse_time;
use candles_core::candle::{CandleKind, Incoming};
use candles_core::series::{
    DuplicatePolicy, Effect, EffectMode, Series, Settings, WriteClock, LIVE_MAX_LIMIT,
    LIVE_TTL_LIMIT,
};
use candles_core::{render, Candle, Dec, Interval};
use redis_module::commands::KeySpecFlags;
use redis_module::key::RedisKeyWritable;
use redis_module::{
    raw, Context, ContextFlags, NotifyEvent, RedisError, RedisResult, RedisString, RedisValue,
};

use crate::candle_type::{EFFECT_TAG, SERIES_TYPE, SNAPSHOT_TAG};
use crate::command::module_command;
use crate::config;
use crate::datatype::ModuleValue;
use crate::stats;
use crate::util::{
    as_str, bulk, core_err, err, field_list, is_kw, json_reply, now_ms, option_value, parse_bound,
    parse_bounded, parse_format, parse_int, require_internal, wrong_type, Format,
};

/// Largest COUNT accepted by reads.
pub const MAX_COUNT: u64 = 10_000_000;

fn no_series(key: &RedisString) -> RedisError {
    err(format!(
        "no candle series at '{key}'; create it with CANDLE.CREATE {key} INTERVAL <i>, or pass INTERVAL <i> to this write"
    ))
}

/// `[INTERVAL i]` right after the key; returns it and the remaining arguments.
fn take_interval(args: &[RedisString]) -> Result<(Option<Interval>, &[RedisString]), RedisError> {
    match args.first() {
        Some(a) if is_kw(a, "INTERVAL") => {
            let v = option_value(args, 0, "INTERVAL")?;
            let i = Interval::parse(as_str(v)?).map_err(core_err)?;
            Ok((Some(i), args.get(2..).unwrap_or_default()))
        }
        _ => Ok((None, args)),
    }
}

/// Candles of a write, from `JSON payload` or positional `t o h l c v ...`, and the
/// interval each JSON kline names (none when no kline names one, as for positional candles
/// and REST rows), in a vector of their own so the candles are not copied once more to drop it.
type Parsed = binance::IncomingBatch;

fn parse_candles(rest: &[RedisString]) -> Result<Parsed, RedisError> {
    match rest.first() {
        None => Err(RedisError::WrongArity),
        Some(a) if is_kw(a, "JSON") => {
            let [_, payload] = rest else {
                return Err(err("JSON takes exactly one payload argument"));
            };
            binance::parse_incoming(payload.as_slice()).map_err(core_err)
        }
        Some(_) => {
            if !rest.len().is_multiple_of(6) {
                return Err(err(
                    "candles are given as 't o h l c v' groups of six arguments (or JSON payload)",
                ));
            }
            let incoming = rest
                .chunks(6)
                .map(|ch| {
                    let parts: [&[u8]; 6] =
                        std::array::from_fn(|i| ch.get(i).map_or(&b""[..], |s| s.as_slice()));
                    let candle = Candle::from_args(&parts).map_err(core_err)?;
                    Ok(Incoming {
                        candle,
                        closed: None,
                    })
                })
                .collect::<Result<Vec<_>, RedisError>>()?;
            Ok((incoming, Vec::new()))
        }
    }
}

/// The series at an open writable key: existing (checked against `interval`), or a new one
/// when `interval` is given. The bool says whether it is new (not yet stored in the key).
enum Target<'k> {
    Existing(&'k mut Series),
    New(Series),
}

fn open_target<'k>(
    key: &'k RedisKeyWritable,
    name: &RedisString,
    interval: Option<Interval>,
) -> Result<Target<'k>, RedisError> {
    match key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? {
        Some(s) => {
            if let Some(i) = interval {
                if i != s.interval() {
                    return Err(err(format!(
                        "series '{name}' has interval {}, not {i}",
                        s.interval()
                    )));
                }
            }
            Ok(Target::Existing(s))
        }
        None => match interval {
            Some(i) => Ok(Target::New(Series::new(config::default_settings(i)))),
            None => Err(no_series(name)),
        },
    }
}

/// Runs a write on the target, keeps INFO counters exact and stores a new series. Returns
/// the op's result and its effect (with `create` set when the series is new).
fn apply_op<T>(
    key: &RedisKeyWritable,
    target: Target<'_>,
    op: impl FnOnce(&mut Series) -> Result<(T, Effect), RedisError>,
) -> Result<(T, Effect), RedisError> {
    let (out, effect) = match target {
        Target::Existing(s) => {
            let before = s.footprint();
            let r = op(s)?;
            stats::SERIES.changed(before, s.footprint());
            r
        }
        Target::New(mut s) => {
            let (out, mut effect) = op(&mut s)?;
            effect.create = Some(*s.settings());
            let fp = s.footprint();
            key.set_value(&SERIES_TYPE, s)?;
            stats::SERIES.add(fp, 1);
            (out, effect)
        }
    };
    Ok((out, effect))
}

/// `apply_op`, then replicate the effect and notify if anything changed.
fn write<T>(
    ctx: &Context,
    key: &RedisKeyWritable,
    name: &RedisString,
    target: Target<'_>,
    op: impl FnOnce(&mut Series) -> Result<(T, Effect), RedisError>,
) -> Result<T, RedisError> {
    let (out, effect) = apply_op(key, target, op)?;
    publish(ctx, name, &effect);
    Ok(out)
}

/// Replicates an effect as `CANDLE.APPLY key <blob>` and fires keyspace events.
fn publish(ctx: &Context, name: &RedisString, effect: &Effect) {
    if effect.is_empty() {
        return;
    }
    // One buffer reused across writes (taken out of the cell, so never borrowed twice); a
    // large one left by a big batch is not kept.
    let mut blob = EFFECT_BUF.take();
    blob.clear();
    blob.push(EFFECT_TAG);
    effect.encode(&mut blob);
    // RM_Replicate directly ("sb": the key string as received, the blob as a buffer): the
    // crate's `Context::replicate` allocates a CString, an argument vector and a copy of each
    // argument on every write (the hot path of LIVE_UPDATE / LIVE_TICK).
    // SAFETY: the context, the key string and the buffer outlive the call; "sb" matches the
    // (RedisModuleString*, const char*, size_t) arguments.
    unsafe {
        if let Some(replicate) = raw::RedisModule_Replicate {
            replicate(
                ctx.get_raw(),
                c"CANDLE.APPLY".as_ptr(),
                c"sb".as_ptr(),
                name.inner,
                blob.as_ptr().cast::<std::ffi::c_char>(),
                blob.len(),
            );
        }
    }
    if blob.capacity() <= EFFECT_BUF_KEEP {
        EFFECT_BUF.set(blob);
    }
    notify(ctx, name, effect);
}

/// Largest effect buffer kept for the next write.
const EFFECT_BUF_KEEP: usize = 64 * 1024;

thread_local! {
    /// The encoding buffer of `publish` (commands run on the main thread).
    static EFFECT_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A module keyspace event with a static name (the crate's wrapper allocates a CString).
fn notify_event(ctx: &Context, event: &std::ffi::CStr, name: &RedisString) {
    // SAFETY: the context and key outlive the call; `event` is NUL-terminated.
    unsafe {
        if let Some(f) = raw::RedisModule_NotifyKeyspaceEvent {
            f(
                ctx.get_raw(),
                NotifyEvent::MODULE.bits(),
                event.as_ptr(),
                name.inner,
            );
        }
    }
}

fn notify(ctx: &Context, name: &RedisString, effect: &Effect) {
    if effect.create.is_some() {
        notify_event(ctx, c"candle.create", name);
    }
    if !effect.official.is_empty() {
        notify_event(ctx, c"candle.official", name);
    }
    if !effect.live_put.is_empty() || !effect.live_drop.is_empty() {
        notify_event(ctx, c"candle.live", name);
    }
}

fn check_json_interval(intervals: &[Option<Interval>], series: Interval) -> Result<(), RedisError> {
    match intervals.iter().find_map(|i| i.filter(|i| *i != series)) {
        Some(i) => Err(err(format!(
            "payload kline interval {i} does not match the series interval {series}"
        ))),
        None => Ok(()),
    }
}

fn target_interval(t: &Target<'_>) -> Interval {
    match t {
        Target::Existing(s) => s.interval(),
        Target::New(s) => s.interval(),
    }
}

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
    let Some(name) = args.get(1) else {
        return Err(RedisError::WrongArity);
    };
    let mut interval = None;
    let mut retention = None;
    let mut live_ttl = None;
    let mut live_max = None;
    let mut policy = None;
    let mut i = 2;
    while let Some(a) = args.get(i) {
        let v = option_value(args, i, as_str(a).unwrap_or("option"))?;
        if is_kw(a, "INTERVAL") {
            interval = Some(Interval::parse(as_str(v)?).map_err(core_err)?);
        } else if is_kw(a, "RETENTION") {
            retention = Some(parse_bounded(v, "RETENTION", i64::MAX as u64)?);
        } else if is_kw(a, "LIVE_TTL") {
            live_ttl = Some(parse_bounded(v, "LIVE_TTL", LIVE_TTL_LIMIT)?);
        } else if is_kw(a, "LIVE_MAX") {
            let n = parse_bounded(v, "LIVE_MAX", LIVE_MAX_LIMIT)?;
            if n == 0 {
                return Err(err(format!(
                    "LIVE_MAX must be between 1 and {LIVE_MAX_LIMIT}"
                )));
            }
            live_max = Some(n);
        } else if is_kw(a, "DUPLICATE_POLICY") {
            policy = Some(DuplicatePolicy::parse(as_str(v)?).map_err(core_err)?);
        } else {
            return Err(err(format!("unknown option '{a}'")));
        }
        i += 2;
    }
    let interval = interval.ok_or_else(|| err("CANDLE.CREATE needs INTERVAL <i>"))?;
    let d = config::default_settings(interval);
    let settings = Settings {
        interval,
        retention: retention.unwrap_or(d.retention),
        live_ttl_s: live_ttl.unwrap_or(d.live_ttl_s),
        live_max: live_max.unwrap_or(d.live_max),
        policy: policy.unwrap_or(d.policy),
    };
    settings.validate().map_err(core_err)?;
    let key = ctx.open_key_writable(name);
    if !key.is_empty() {
        return Err(
            match key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? {
                Some(_) => err(format!("key '{name}' already exists")),
                None => RedisError::WrongType,
            },
        );
    }
    write(ctx, &key, name, Target::New(Series::new(settings)), |_| {
        Ok(((), Effect::default()))
    })?;
    Ok(RedisValue::SimpleStringStatic("OK"))
}

module_command!(
    candle_official_add,
    entry: candle_official_add_entry,
    info: candle_official_add_info,
    name: "CANDLE.OFFICIAL_ADD",
    flags: "write deny-oom",
    arity: -4,
    summary: "Add official (exchange-final) candles; forming ones are kept live (R4)",
    complexity: "O(N log M) for N candles added to a series of M",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE,
);

fn candle_official_add(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name, rest @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let (interval, rest) = take_interval(rest)?;
    let (batch, intervals) = parse_candles(rest)?;
    let key = ctx.open_key_writable(name);
    let target = open_target(&key, name, interval)?;
    check_json_interval(&intervals, target_interval(&target))?;
    let now = now_ms();
    let changed = write(ctx, &key, name, target, |s| {
        let out = s.add_official(&batch, now).map_err(core_err)?;
        Ok((out.changed, out.effect))
    })?;
    Ok(RedisValue::Integer(changed as i64))
}

module_command!(
    candle_live_update,
    entry: candle_live_update_entry,
    info: candle_live_update_info,
    name: "CANDLE.LIVE_UPDATE",
    flags: "write deny-oom fast",
    arity: -4,
    summary: "Replace the live (forming) candle at its open time",
    complexity: "O(log N)",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE,
);

fn candle_live_update(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let (Some(name), Some(rest)) = (args.get(1), args.get(2..)) else {
        return Err(RedisError::WrongArity);
    };
    let (interval, rest) = take_interval(rest)?;
    // The hot form, one positional candle: parsed straight into a Candle (no vector), same
    // checks and errors as `parse_candles`, and no JSON interval to check.
    if let [t, o, h, l, c, v] = rest {
        if !is_kw(t, "JSON") {
            let parts = [t, o, h, l, c, v].map(|s| s.as_slice());
            let candle = Candle::from_args(&parts).map_err(core_err)?;
            let key = ctx.open_key_writable(name);
            let target = open_target(&key, name, interval)?;
            return live_write(ctx, &key, name, target, |s, now, mode| {
                s.live_update_with(&candle, now, mode)
            });
        }
    }
    // One kline as JSON (a REST row, as a client would `SET` it, or a WebSocket kline, as
    // the feeder sends it): read without a tree or vectors where the shape is plain.
    if let [kw, payload] = rest {
        if is_kw(kw, "JSON") {
            if let Some(k) = binance::parse_one_kline(payload.as_slice()) {
                let key = ctx.open_key_writable(name);
                let target = open_target(&key, name, interval)?;
                check_json_interval(&[k.interval], target_interval(&target))?;
                return live_write(ctx, &key, name, target, |s, now, mode| {
                    s.live_update_with(&k.candle, now, mode)
                });
            }
        }
    }
    let (mut candles, intervals) = parse_candles(rest)?;
    if candles.len() != 1 {
        return Err(err(format!(
            "CANDLE.LIVE_UPDATE takes exactly one candle, got {}",
            candles.len()
        )));
    }
    let key = ctx.open_key_writable(name);
    let target = open_target(&key, name, interval)?;
    check_json_interval(&intervals, target_interval(&target))?;
    let Some(incoming) = candles.pop() else {
        return Err(RedisError::WrongArity);
    };
    live_write(ctx, &key, name, target, |s, now, mode| {
        s.live_update_with(&incoming.candle, now, mode)
    })
}

/// The clock of a live write and whether the write may replicate verbatim
/// (`Series::write_clock`). A write replayed from the master or the AOF uses the stamp the
/// master used, never the local clock.
fn live_clock(ctx: &Context, target: &Target<'_>) -> (i64, bool) {
    let Target::Existing(s) = target else {
        // Creating the series: the effect carries its settings.
        return (now_ms(), false);
    };
    let now = now_ms();
    match s.write_clock(now) {
        // What a replay would use too: no need to ask whether this is one.
        WriteClock::Stamp(t) => (t, true),
        _ if ctx
            .get_flags()
            .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING) =>
        {
            (s.replay_clock(now), true)
        }
        WriteClock::Fresh(t) => (t, false),
    }
}

/// A live write (`LIVE_UPDATE`, `LIVE_TICK`): replicated verbatim when its clock is the
/// series' stamp, else as its effect.
fn live_write(
    ctx: &Context,
    key: &RedisKeyWritable,
    name: &RedisString,
    target: Target<'_>,
    op: impl FnOnce(
        &mut Series,
        i64,
        EffectMode,
    ) -> candles_core::CoreResult<candles_core::series::LiveOutcome>,
) -> RedisResult {
    let (now, verbatim) = live_clock(ctx, &target);
    // A write replicated verbatim needs no effect: the core skips building it.
    let mode = if verbatim {
        EffectMode::Skip
    } else {
        EffectMode::Build
    };
    let (changed, effect) = apply_op(key, target, |s| {
        let out = op(s, now, mode).map_err(core_err)?;
        Ok((out.changed, out.effect))
    })?;
    if verbatim {
        // Verbatim writes are to an existing series' live region (no create, no officials).
        if changed {
            ctx.replicate_verbatim();
            notify_event(ctx, c"candle.live", name);
        }
    } else {
        publish(ctx, name, &effect);
    }
    Ok(RedisValue::Integer(i64::from(changed)))
}

module_command!(
    candle_live_tick,
    entry: candle_live_tick_entry,
    info: candle_live_tick_info,
    name: "CANDLE.LIVE_TICK",
    flags: "write deny-oom fast",
    arity: -4,
    summary: "Fold a trade price (and quantity) into the live candle of its bucket (R7)",
    complexity: "O(log N)",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE,
);

fn candle_live_tick(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let (Some(name), Some(rest)) = (args.get(1), args.get(2..)) else {
        return Err(RedisError::WrongArity);
    };
    let (interval, rest) = take_interval(rest)?;
    let (time, price, qty) = match rest {
        [t, p] => (t, p, None),
        [t, p, q] => (t, p, Some(q)),
        _ => return Err(err("CANDLE.LIVE_TICK key [INTERVAL i] time price [qty]")),
    };
    let time = parse_time(time.as_slice()).map_err(core_err)?;
    let price = Dec::parse_bytes(price.as_slice()).map_err(|e| err(format!("price: {e}")))?;
    let qty = match qty {
        Some(q) => Dec::parse_bytes(q.as_slice()).map_err(|e| err(format!("qty: {e}")))?,
        None => Dec::ZERO,
    };
    let key = ctx.open_key_writable(name);
    let target = open_target(&key, name, interval)?;
    live_write(ctx, &key, name, target, |s, now, mode| {
        s.live_tick_with(time, price, qty, now, mode)
    })
}

/// Read options shared by RANGE_MERGED and LIVE.
struct ReadOpts {
    count: Option<usize>,
    full: bool,
    format: Format,
}

fn parse_read_opts(args: &[RedisString], allow_count: bool) -> Result<ReadOpts, RedisError> {
    let mut o = ReadOpts {
        count: None,
        full: false,
        format: Format::Resp,
    };
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if allow_count && is_kw(a, "COUNT") {
            o.count =
                Some(parse_bounded(option_value(args, i, "COUNT")?, "COUNT", MAX_COUNT)? as usize);
            i += 2;
        } else if is_kw(a, "FULL") {
            o.full = true;
            i += 1;
        } else if is_kw(a, "FORMAT") {
            o.format = parse_format(option_value(args, i, "FORMAT")?)?;
            i += 2;
        } else {
            return Err(err(format!("unknown option '{a}'")));
        }
    }
    Ok(o)
}

/// A decimal as a bulk string, formatted without `fmt` into a reused buffer (a chart load
/// replies thousands of them).
fn reply_dec(ctx: *mut raw::RedisModuleCtx, buf: &mut Vec<u8>, d: Dec) {
    buf.clear();
    render::write_dec(buf, d);
    raw::reply_with_string_buffer(ctx, buf.as_ptr().cast(), buf.len());
}

fn reply_opt_dec(ctx: *mut raw::RedisModuleCtx, buf: &mut Vec<u8>, d: Option<Dec>) {
    match d {
        Some(d) => reply_dec(ctx, buf, d),
        None => {
            raw::reply_with_null(ctx);
        }
    }
}

fn reply_opt_int(ctx: *mut raw::RedisModuleCtx, v: Option<i64>) {
    match v {
        Some(v) => raw::reply_with_long_long(ctx, v),
        None => raw::reply_with_null(ctx),
    };
}

/// Writes one candle as a RESP array straight to the client: `[open_time, open, high, low,
/// close, volume, status]`, with FULL also `close_time, quote_volume, trades,
/// taker_buy_base, taker_buy_quote` (nulls where absent). Every string is a bulk string,
/// as in `XRANGE` (a status reply would cost Redis an allocation per candle).
fn reply_candle_resp(
    ctx: *mut raw::RedisModuleCtx,
    buf: &mut Vec<u8>,
    c: &Candle,
    kind: CandleKind,
    full: bool,
) {
    raw::reply_with_array(ctx, if full { 12 } else { 7 });
    raw::reply_with_long_long(ctx, c.open_time);
    for d in [c.open, c.high, c.low, c.close, c.volume] {
        reply_dec(ctx, buf, d);
    }
    let status = kind.as_str();
    raw::reply_with_string_buffer(ctx, status.as_ptr().cast(), status.len());
    if full {
        reply_opt_int(ctx, c.close_time);
        reply_opt_dec(ctx, buf, c.quote_volume);
        reply_opt_int(ctx, c.trades.map(|n| n as i64));
        reply_opt_dec(ctx, buf, c.taker_buy_base);
        reply_opt_dec(ctx, buf, c.taker_buy_quote);
    }
}

/// Replies with the candles `visit` hands, in order, to the function it is given: RESP
/// arrays written as they come (the outer array's length set at the end), or one JSON text.
/// Nothing is collected first, so a long range holds one decoded chunk at a time.
fn reply_candles(
    ctx: &Context,
    o: &ReadOpts,
    visit: impl FnOnce(&mut dyn FnMut(&Candle, CandleKind)),
) -> RedisValue {
    match o.format {
        Format::Resp => {
            let c = ctx.get_raw();
            raw::reply_with_array(c, raw::REDISMODULE_POSTPONED_LEN as std::ffi::c_long);
            let mut buf = Vec::with_capacity(48);
            let mut n: std::ffi::c_long = 0;
            visit(&mut |candle, kind| {
                reply_candle_resp(c, &mut buf, candle, kind, o.full);
                n += 1;
            });
            // SAFETY: a plain call into the server, closing the postponed array opened above
            // on the same context; the function pointer is set once the module is loaded.
            unsafe {
                if let Some(set_len) = raw::RedisModule_ReplySetArrayLength {
                    set_len(c, n);
                }
            }
            RedisValue::NoReply
        }
        Format::Json => json_reply(ctx, &render::candles_json_with(o.full, visit)),
    }
}

fn empty_reply(ctx: &Context, o: &ReadOpts) -> RedisValue {
    reply_candles(ctx, o, |_| {})
}

module_command!(
    candle_range_merged,
    entry: candle_range_merged_entry,
    info: candle_range_merged_info,
    name: "CANDLE.RANGE_MERGED",
    flags: "readonly",
    arity: -4,
    summary: "Official candles, else live ones, for every open time in a range (R6)",
    complexity: "O(log N + M) for M candles returned",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn candle_range_merged(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name, from, to, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let from = parse_bound(from, "from")?;
    let to = parse_bound(to, "to")?;
    let o = parse_read_opts(opts, true)?;
    let key = ctx.open_key(name);
    let Some(s) = key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? else {
        return Ok(empty_reply(ctx, &o));
    };
    if o.format == Format::Json {
        let cap = config::JSON_CACHE
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0) as usize;
        let text = s.range_merged_json(from, to, o.count, o.full, now_ms(), cap);
        return Ok(json_reply(ctx, &text));
    }
    let now = now_ms();
    Ok(reply_candles(ctx, &o, |f| {
        s.visit_merged(from, to, o.count, now, |c, k| f(c, k))
    }))
}

module_command!(
    candle_live,
    entry: candle_live_entry,
    info: candle_live_info,
    name: "CANDLE.LIVE",
    flags: "readonly fast",
    arity: -2,
    summary: "The live (forming or not yet official) candles, newest last",
    complexity: "O(L) for L live candles (at most LIVE_MAX)",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn candle_live(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let o = parse_read_opts(opts, false)?;
    let key = ctx.open_key(name);
    let Some(s) = key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? else {
        return Ok(empty_reply(ctx, &o));
    };
    let live = s.live_candles(now_ms());
    Ok(reply_candles(ctx, &o, |f| {
        live.iter().for_each(|c| f(c, CandleKind::Live))
    }))
}

module_command!(
    candle_gaps,
    entry: candle_gaps_entry,
    info: candle_gaps_info,
    name: "CANDLE.GAPS",
    flags: "readonly",
    arity: 4,
    summary: "Missing official ranges [start, end] between two aligned open times",
    complexity: "O(log N + M) for M official candles in the range",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn candle_gaps(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name, from, to] = args else {
        return Err(RedisError::WrongArity);
    };
    let from = parse_int(from, "from")?;
    let to = parse_int(to, "to")?;
    let key = ctx.open_key(name);
    let Some(s) = key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? else {
        return Err(no_series(name));
    };
    let gaps = s.gaps(from, to).map_err(core_err)?;
    Ok(RedisValue::Array(
        gaps.into_iter()
            .map(|(a, b)| RedisValue::Array(vec![RedisValue::Integer(a), RedisValue::Integer(b)]))
            .collect(),
    ))
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
    let [_, name] = args else {
        return Err(RedisError::WrongArity);
    };
    let key = ctx.open_key(name);
    let Some(s) = key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? else {
        return Err(no_series(name));
    };
    let st = s.settings();
    let opt_int = |v: Option<i64>| v.map_or(RedisValue::Null, RedisValue::Integer);
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
    let [_, name, blob] = args else {
        return Err(RedisError::WrongArity);
    };
    let blob = blob.as_slice();
    let key = ctx.open_key_writable(name);
    match blob.split_first() {
        Some((&SNAPSHOT_TAG, body)) => {
            let s = Series::decode(body).map_err(core_err)?;
            let fp = s.footprint();
            key.set_value(&SERIES_TYPE, s)?;
            stats::SERIES.add(fp, 1);
        }
        Some((&EFFECT_TAG, body)) => {
            let effect = Effect::decode(body).map_err(core_err)?;
            let target = match (
                key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)?,
                effect.create,
            ) {
                (Some(s), _) => Target::Existing(s),
                (None, Some(settings)) => Target::New(Series::new(settings)),
                (None, None) => return Err(no_series(name)),
            };
            effect
                .validate(target_interval(&target))
                .map_err(core_err)?;
            let ((), applied) = apply_op(&key, target, |s| {
                s.apply(&effect);
                Ok((
                    (),
                    Effect {
                        create: None,
                        ..effect.clone()
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
