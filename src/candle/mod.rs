//! The candle series: its data type (`series_type`), the CANDLE.* commands by family
//! (`write`, `read`, `admin`), and what the writes share: opening the series at a key and
//! running a write on it with the INFO gauges kept exact (here), replicating and notifying its
//! effect (`publish`).
//!
//! Every command: parse → core → replicate the effect and notify only if something changed →
//! reply.

pub mod admin;
pub mod derive;
mod publish;
pub mod read;
pub mod series_type;
pub mod write;

use candles_core::series::{Effect, Series};
use candles_core::Interval;
use redis_module::key::RedisKeyWritable;
use redis_module::{Context, RedisError, RedisString};

use crate::config;
use crate::datatype::{self, Slot};
use crate::util::err;
use publish::publish_after;

pub use read::MAX_COUNT;

/// The error of a read that needs the series (`INFO`, `GAPS`) at a key that holds none: like
/// `XINFO STREAM` and `TS.INFO`, not an empty reply (for `GAPS`, an empty reply would say
/// nothing is missing).
fn missing_series(key: &RedisString) -> RedisError {
    err(format!("no candle series at '{key}'"))
}

fn no_series(key: &RedisString) -> RedisError {
    err(format!(
        "no candle series at '{key}'; create it with CANDLE.CREATE {key} INTERVAL <i>, or pass INTERVAL <i> to this write"
    ))
}

/// The series at an open writable key: the stored one, or a new one to be stored by the write.
type Target<'k> = Slot<'k, Series>;

/// The series at `key`, checked against `interval` when given; a new one when the key is
/// empty and `interval` is given.
fn open_target<'k>(
    key: &'k RedisKeyWritable,
    name: &RedisString,
    interval: Option<Interval>,
) -> Result<Target<'k>, RedisError> {
    let target = Slot::open(key, || match interval {
        Some(i) => Ok(Series::new(config::default_settings(i))),
        None => Err(no_series(name)),
    })?;
    if let (Slot::Stored(s), Some(i)) = (&target, interval) {
        if i != s.interval() {
            return Err(err(format!(
                "series '{name}' has interval {}, not {i}",
                s.interval()
            )));
        }
    }
    Ok(target)
}

/// Runs a write on the target ([`Slot::write`]: INFO gauges kept exact, a new series stored).
/// Returns the op's result and its effect (with `create` set when the series is new).
fn apply_op<T>(
    key: &RedisKeyWritable,
    target: Target<'_>,
    op: impl FnOnce(&mut Series) -> Result<(T, Effect), RedisError>,
) -> Result<(T, Effect), RedisError> {
    let new = target.is_new();
    target.write(key, |s| {
        let (out, mut effect) = op(s)?;
        if new {
            effect.create = Some(*s.settings());
        }
        Ok((out, effect))
    })
}

/// `apply_op`, then replicate the effect and notify if anything changed, then re-derive the
/// series this one feeds (R8).
fn write<T>(
    ctx: &Context,
    key: &RedisKeyWritable,
    name: &RedisString,
    target: Target<'_>,
    op: impl FnOnce(&mut Series) -> Result<(T, Effect), RedisError>,
) -> Result<T, RedisError> {
    let live_before = feeding(&target).then(|| target.value().live_times());
    let (out, effect) = apply_op(key, target, op)?;
    let after = datatype::get_mut::<Series>(key).ok().flatten();
    publish_after(ctx, name, &effect, after.as_deref());
    if let Some(before) = live_before {
        if !effect.is_empty() {
            let now = effect.clock.unwrap_or_else(crate::util::now_ms);
            derive::cascade_from(ctx, key, name, &effect, &before, now);
        }
    }
    Ok(out)
}

/// Whether a write to the target must re-derive other series (it feeds some).
fn feeding(target: &Target<'_>) -> bool {
    matches!(target, Slot::Stored(s) if !s.feeds().is_empty())
}
