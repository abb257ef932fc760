//! The CANDLE.* data writes: OFFICIAL_ADD (exchange-final candles), LIVE_UPDATE (the forming
//! candle) and LIVE_TICK (a trade folded into the live candle), with the parsing of candle
//! arguments and the clock of live writes.

use candles_core::binance;
use candles_core::candle::parse_time;
use candles_core::candle::Incoming;
use candles_core::series::{EffectMode, Series, WriteClock};
use candles_core::{Candle, Dec, Interval};
use redis_module::commands::KeySpecFlags;
use redis_module::key::RedisKeyWritable;
use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisString, RedisValue};

use super::publish::{notify_event, publish};
use super::{apply_op, derive, open_target, write, Target};
use crate::args::Args;
use crate::command::module_command;
use crate::datatype::Slot;
use crate::util::{as_str, core_err, err, is_kw, now_ms};

/// `[INTERVAL i]` right after the key.
fn take_interval(args: &mut Args<'_>) -> Result<Option<Interval>, RedisError> {
    if !args.take_kw("INTERVAL") {
        return Ok(None);
    }
    let v = args.value_of("INTERVAL")?;
    let interval = Interval::parse(as_str(v)?).map_err(core_err)?;
    // The data follows: a second INTERVAL would otherwise be read as a candle or a time.
    if args.peek_kw("INTERVAL") {
        return Err(err("INTERVAL given more than once"));
    }
    Ok(Some(interval))
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

fn check_json_interval(intervals: &[Option<Interval>], series: Interval) -> Result<(), RedisError> {
    match intervals.iter().find_map(|i| i.filter(|i| *i != series)) {
        Some(i) => Err(err(format!(
            "payload kline interval {i} does not match the series interval {series}"
        ))),
        None => Ok(()),
    }
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let interval = take_interval(&mut args)?;
    let (batch, intervals) = parse_candles(args.rest())?;
    let key = ctx.open_key_writable(name);
    let target = open_target(&key, name, interval)?;
    check_json_interval(&intervals, target.value().interval())?;
    let now = now_ms();
    let mut batch = batch;
    if let Slot::Stored(s) = &target {
        // A derived series takes exchange history only for buckets older than its source's
        // first candle: the rest is computed from the source, which wins (R8).
        if let Some(coverage) = derive::source_coverage(ctx, name, s, now) {
            s.validate_batch(&batch).map_err(core_err)?;
            batch.retain(|inc| coverage.is_none_or(|c| inc.candle.open_time < c));
        }
    }
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let interval = take_interval(&mut args)?;
    let rest = args.rest();
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
                check_json_interval(&[k.interval], target.value().interval())?;
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
    check_json_interval(&intervals, target.value().interval())?;
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
    let Slot::Stored(s) = target else {
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
    if let Slot::Stored(s) = &target {
        if s.source().is_some() {
            derive::refuse_if_derived(ctx, name, s)?;
        }
        if !s.feeds().is_empty() {
            // The cascade replicates the derived series' effects: the source's goes as its
            // effect too, never verbatim (a replica does not re-derive).
            let now = now_ms();
            let changed = write(ctx, key, name, target, |s| {
                let out = op(s, now, EffectMode::Build).map_err(core_err)?;
                Ok((out.changed, out.effect))
            })?;
            return Ok(RedisValue::Integer(i64::from(changed)));
        }
    }
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let interval = take_interval(&mut args)?;
    let rest = args.rest();
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

module_command!(
    candle_seal,
    entry: candle_seal_entry,
    info: candle_seal_info,
    name: "CANDLE.SEAL",
    flags: "write deny-oom",
    arity: 3,
    summary: "Make official every live candle whose bucket ended at or before a time (R9)",
    complexity: "O(L) for L live candles",
    since: "0.2.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE,
);

/// R9: for markets with no official feed (candles built with LIVE_TICK). Buckets still
/// forming by the server clock stay live (R4), so the write replicates as its effect.
fn candle_seal(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let until = parse_time(args.next_arg()?.as_slice()).map_err(core_err)?;
    args.done()?;
    let key = ctx.open_key_writable(name);
    let target = open_target(&key, name, None)?;
    if let Slot::Stored(s) = &target {
        derive::refuse_if_derived(ctx, name, s)?;
    }
    let now = now_ms();
    let sealed = write(ctx, &key, name, target, |s| Ok(s.seal(until, now)))?;
    Ok(RedisValue::Integer(sealed as i64))
}
