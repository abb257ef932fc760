//! The CANDLE.* reads: RANGE_MERGED, LIVE and GAPS, and the candle replies (RESP written
//! straight to the client, or JSON).

use candles_core::candle::CandleKind;
use candles_core::render::Field;
use candles_core::series::Merged;
use candles_core::series::Series;
use candles_core::{render, Candle, Dec};
use redis_module::commands::KeySpecFlags;
use redis_module::{raw, Context, RedisError, RedisResult, RedisString, RedisValue};

use super::missing_series;
use super::series_type::SERIES_TYPE;
use crate::args::Args;
use crate::command::module_command;
use crate::config;
use crate::util::{core_err, parse_int};
use crate::util::{err, json_reply, now_ms, parse_format, wrong_type, Format};

/// Largest COUNT accepted by reads.
pub const MAX_COUNT: u64 = 10_000_000;

/// Read options shared by RANGE_MERGED and LIVE.
struct ReadOpts {
    count: Option<usize>,
    full: bool,
    format: Format,
}

/// The options that end the arguments.
fn parse_read_opts(mut args: Args<'_>, allow_count: bool) -> Result<ReadOpts, RedisError> {
    let mut o = ReadOpts {
        count: None,
        full: false,
        format: Format::Resp,
    };
    let names: &[&'static str] = if allow_count {
        &["COUNT", "FULL", "FORMAT"]
    } else {
        &["FULL", "FORMAT"]
    };
    while let Some(a) = args.peek() {
        match args.take_option(names)? {
            Some("COUNT") => o.count = Some(args.value_in("COUNT", 0, MAX_COUNT)? as usize),
            Some("FULL") => o.full = true,
            Some("FORMAT") => o.format = parse_format(args.value_of("FORMAT")?)?,
            _ => return Err(err(format!("unknown option '{a}'"))),
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

/// Writes one official candle from its cached text (see [`render::CachedCandle`]): the same
/// array as [`reply_candle_resp`] of the candle it was rendered from.
fn reply_cached_resp(ctx: *mut raw::RedisModuleCtx, text: &[u8], full: bool) {
    let len: usize = if full { 12 } else { 7 };
    raw::reply_with_array(ctx, len as std::ffi::c_long);
    let mut fields = render::CachedCandle::new(text);
    for _ in 0..len {
        match fields.next_field() {
            Some(Field::Text(t)) => {
                raw::reply_with_string_buffer(ctx, t.as_ptr().cast(), t.len());
            }
            Some(Field::Int(v)) => {
                raw::reply_with_long_long(ctx, v);
            }
            // Null, or (never: the cache holds what `candle_json` wrote) a short text: the
            // array still has its length.
            Some(Field::Null) | None => {
                raw::reply_with_null(ctx);
            }
        }
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
            set_array_len(c, n);
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let from = args.next_bound("from")?;
    let to = args.next_bound("to")?;
    let o = parse_read_opts(args, true)?;
    let key = ctx.open_key(name);
    let Some(s) = key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? else {
        return Ok(empty_reply(ctx, &o));
    };
    if o.format == Format::Json {
        let (cache, cap) = chart_cache();
        let text = s.range_merged_json(from, to, o.count, o.full, now_ms(), cache, cap);
        return Ok(json_reply(ctx, &text));
    }
    let now = now_ms();
    if o.format == Format::Resp {
        // Chart loads as RESP arrays: the cached text of the newest officials, as for JSON.
        let (cache, cap) = chart_cache();
        let c = ctx.get_raw();
        raw::reply_with_array(c, raw::REDISMODULE_POSTPONED_LEN as std::ffi::c_long);
        let mut buf = Vec::with_capacity(48);
        let mut n: std::ffi::c_long = 0;
        s.visit_merged_cached(from, to, o.count, o.full, now, cache, cap, |m| {
            match m {
                Merged::Cached(text) => reply_cached_resp(c, text, o.full),
                Merged::Candle(candle, kind) => {
                    reply_candle_resp(c, &mut buf, candle, kind, o.full)
                }
            }
            n += 1;
        });
        set_array_len(c, n);
        return Ok(RedisValue::NoReply);
    }
    Ok(reply_candles(ctx, &o, |f| {
        s.visit_merged(from, to, o.count, now, |c, k| f(c, k))
    }))
}

/// The chart cache with the budget as configured, and the window length
/// (`candles.json_cache`).
fn chart_cache() -> (&'static candles_core::chart_cache::ChartCache, usize) {
    let cap = config::JSON_CACHE
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(0) as usize;
    let cache = &*crate::chart_cache::CHART_CACHE;
    let budget = config::json_cache_budget();
    if cache.budget() != budget {
        cache.set_budget(budget);
    }
    (cache, cap)
}

/// Closes a postponed array opened on `c`.
fn set_array_len(c: *mut raw::RedisModuleCtx, n: std::ffi::c_long) {
    // SAFETY: a plain call into the server, closing the postponed array opened on the same
    // context; the function pointer is set once the module is loaded.
    unsafe {
        if let Some(set_len) = raw::RedisModule_ReplySetArrayLength {
            set_len(c, n);
        }
    }
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let o = parse_read_opts(args, false)?;
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

/// An end of a GAPS range: an open time, or `-` / `+` for the first / last official candle.
enum GapEnd {
    At(i64),
    FirstOfficial,
    LastOfficial,
}

impl GapEnd {
    fn parse(arg: &RedisString, what: &str) -> Result<GapEnd, RedisError> {
        match arg.as_slice() {
            b"-" => Ok(GapEnd::FirstOfficial),
            b"+" => Ok(GapEnd::LastOfficial),
            _ => parse_int(arg, what).map(GapEnd::At),
        }
    }

    /// The time it stands for; `None` for `-`/`+` on a series with no official candle.
    fn resolve(&self, s: &Series) -> Option<i64> {
        match self {
            GapEnd::At(t) => Some(*t),
            GapEnd::FirstOfficial => s.official().first_time(),
            GapEnd::LastOfficial => s.official().last_time(),
        }
    }
}

fn candle_gaps(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let from = GapEnd::parse(args.next_arg()?, "from")?;
    let to = GapEnd::parse(args.next_arg()?, "to")?;
    args.done()?;
    let key = ctx.open_key(name);
    let Some(s) = key.get_value::<Series>(&SERIES_TYPE).map_err(wrong_type)? else {
        return Err(missing_series(name));
    };
    // `-`/`+` with no official candle: the range between the first and the last official
    // candle is empty, so nothing in it is missing.
    let (Some(from), Some(to)) = (from.resolve(s), to.resolve(s)) else {
        return Ok(RedisValue::Array(vec![]));
    };
    let gaps = s.gaps(from, to).map_err(core_err)?;
    Ok(RedisValue::Array(
        gaps.into_iter()
            .map(|(a, b)| RedisValue::Array(vec![RedisValue::Integer(a), RedisValue::Integer(b)]))
            .collect(),
    ))
}
