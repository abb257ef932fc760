//! The candle series: its data type (`series_type`), the CANDLE.* commands by family
//! (`write`, `read`, `admin`), and what the writes share: opening the series at a key and
//! running a write on it with the INFO gauges kept exact (here), replicating and notifying its
//! effect (`publish`).
//!
//! Every command: parse → core → replicate the effect and notify only if something changed →
//! reply.

pub mod admin;
mod publish;
pub mod read;
pub mod series_type;
pub mod write;

use candles_core::series::{Effect, Series};
use candles_core::Interval;
use redis_module::key::RedisKeyWritable;
use redis_module::{Context, RedisError, RedisString};

use crate::config;
use crate::datatype::ModuleValue;
use crate::stats;
use crate::util::{err, wrong_type};
use publish::publish;
use series_type::SERIES_TYPE;

pub use read::MAX_COUNT;

fn no_series(key: &RedisString) -> RedisError {
    err(format!(
        "no candle series at '{key}'; create it with CANDLE.CREATE {key} INTERVAL <i>, or pass INTERVAL <i> to this write"
    ))
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

fn target_interval(t: &Target<'_>) -> Interval {
    match t {
        Target::Existing(s) => s.interval(),
        Target::New(s) => s.interval(),
    }
}
