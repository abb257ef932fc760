//! Derived series in the glue (SPEC §2a): the links between a source and the series derived
//! from it, the cascade that re-derives them after every write to the source, and what
//! RENAME does to links.
//!
//! Links are key names stored at both ends: the derived series names its source, the source
//! lists the series it feeds. A link holds while both ends agree, so DEL of either end ends
//! it (the other end stays, an ordinary series), as RedisTimeSeries does with compaction
//! rules; RENAME carries it to the new name (`follow_rename`). Every effect the cascade
//! applies is replicated as its own `CANDLE.APPLY` (never re-derived on replicas), in the
//! same command as the source write.

use candles_core::series::{Effect, Series};
use candles_core::Candle;
use redis_module::key::RedisKeyWritable;
use redis_module::{Context, RedisError, RedisString};

use super::publish::publish_after;
use super::series_type::SERIES_TYPE;
use crate::datatype::{self, Slot};
use crate::util::err;

/// Longest chain followed (a chain of every interval is 15 long).
const MAX_DEPTH: usize = 16;

/// The source of `s` (at `name`), when the link holds: the source is a series that lists
/// `name` among the series it feeds.
pub(super) fn source_of(ctx: &Context, name: &[u8], s: &Series) -> Option<RedisString> {
    let src_name = ctx.create_string(s.source()?);
    let key = ctx.open_key(&src_name);
    let src = key.get_value::<Series>(&SERIES_TYPE).ok()??;
    src.feeds()
        .iter()
        .any(|f| f.as_slice() == name)
        .then_some(src_name)
}

/// The series `s` (at `name`) feeds, where the link holds.
pub(super) fn feeds_of(ctx: &Context, name: &[u8], s: &Series) -> Vec<Vec<u8>> {
    s.feeds()
        .iter()
        .filter(|f| {
            let key = ctx.open_key(&ctx.create_string(f.as_slice()));
            matches!(key.get_value::<Series>(&SERIES_TYPE), Ok(Some(d)) if d.source() == Some(name))
        })
        .cloned()
        .collect()
}

/// Refuses a client write that only the source may make (live writes, SEAL).
pub(super) fn refuse_if_derived(
    ctx: &Context,
    name: &RedisString,
    s: &Series,
) -> Result<(), RedisError> {
    match source_of(ctx, name.as_slice(), s) {
        Some(src) => Err(err(format!(
            "'{name}' is derived from '{src}': write to the source (its buckets are computed from it)"
        ))),
        None => Ok(()),
    }
}

/// Where the source of a derived series begins (`OFFICIAL_ADD` into the derived series is
/// kept to older buckets), or None for a series that is not derived.
pub(super) fn source_coverage(
    ctx: &Context,
    name: &RedisString,
    s: &Series,
    now: i64,
) -> Option<Option<i64>> {
    let src_name = source_of(ctx, name.as_slice(), s)?;
    let key = ctx.open_key(&src_name);
    let src = key.get_value::<Series>(&SERIES_TYPE).ok()??;
    Some(src.coverage_start(now))
}

/// After a write to the series at `key` (its effect applied, `live_before` its live times
/// before), re-derives the series it feeds, down every chain.
pub(super) fn cascade_from(
    ctx: &Context,
    key: &RedisKeyWritable,
    name: &RedisString,
    effect: &Effect,
    live_before: &[i64],
    now: i64,
) {
    let Ok(Some(src)) = datatype::get_mut::<Series>(key) else {
        return;
    };
    let touched = src.touched_times(effect, live_before);
    let mut path = vec![name.as_slice().to_vec()];
    cascade(ctx, src, &touched, &effect.official, now, &mut path);
}

/// `path`: the chain from the written series to `src` (its last element is `src`'s name);
/// `given`: the official candles the write stored in `src`.
fn cascade(
    ctx: &Context,
    src: &Series,
    touched: &[i64],
    given: &[Candle],
    now: i64,
    path: &mut Vec<Vec<u8>>,
) {
    if touched.is_empty() || path.len() > MAX_DEPTH {
        return;
    }
    let Some(src_name) = path.last().cloned() else {
        return;
    };
    for feed in src.feeds() {
        // A cycle (only RENAME tricks could make one) is never followed.
        if path.contains(feed) {
            continue;
        }
        let fname = ctx.create_string(feed.as_slice());
        let key = ctx.open_key_writable(&fname);
        let Ok(Some(dst)) = datatype::get_mut::<Series>(&key) else {
            continue;
        };
        if dst.source() != Some(src_name.as_slice()) {
            continue;
        }
        let effect = dst.derive(src, touched, given, now);
        if effect.is_empty() {
            continue;
        }
        let before = dst.live_times();
        if Slot::Stored(dst)
            .write(&key, |d| {
                d.apply(&effect);
                Ok(())
            })
            .is_err()
        {
            continue;
        }
        // Replicated whatever happens next: the effect is applied.
        let dst = datatype::get_mut::<Series>(&key).ok().flatten();
        publish_after(ctx, &fname, &effect, dst.as_deref());
        let Some(dst) = dst else {
            continue;
        };
        let next = dst.touched_times(&effect, &before);
        path.push(feed.clone());
        cascade(ctx, dst, &next, &effect.official, now, path);
        path.pop();
        candles_core::candle::recycle(effect.official);
    }
}

thread_local! {
    /// The old name of the key being renamed, between its `rename_from` and `rename_to`
    /// events (commands run on the main thread).
    static RENAMING: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Keyspace events of every key (registered for generic events): RENAME of a linked series
/// carries its links to the new name. Replicas and AOF replay run the same RENAME, so they
/// follow the same way; nothing is replicated from here.
pub fn on_generic_event(ctx: &Context, _t: redis_module::NotifyEvent, event: &str, key: &[u8]) {
    match event {
        "rename_from" => RENAMING.with(|r| *r.borrow_mut() = Some(key.to_vec())),
        "rename_to" => {
            if let Some(old) = RENAMING.with(|r| r.borrow_mut().take()) {
                follow_rename(ctx, &old, key);
            }
        }
        _ => {}
    }
}

fn follow_rename(ctx: &Context, old: &[u8], new: &[u8]) {
    let new_name = ctx.create_string(new);
    let key = ctx.open_key_writable(&new_name);
    let Ok(Some(s)) = datatype::get_mut::<Series>(&key) else {
        return;
    };
    let mut others: Vec<Vec<u8>> = s.feeds().to_vec();
    others.extend(s.source().map(<[u8]>::to_vec));
    for other in others {
        if other.as_slice() == new {
            continue;
        }
        let okey = ctx.open_key_writable(&ctx.create_string(other.as_slice()));
        if let Ok(Some(o)) = datatype::get_mut::<Series>(&okey) {
            let _ = Slot::Stored(o).write(&okey, |o| {
                o.rename_link(old, new);
                Ok(())
            });
        }
    }
}
