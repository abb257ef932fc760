//! How a candle write leaves the module: its effect replicated as `CANDLE.APPLY key <blob>`
//! (one reused buffer, straight through `RM_Replicate`) and its keyspace events.

use candles_core::series::{Effect, Series};
use redis_module::{raw, Context, NotifyEvent, RedisString};

use super::series_type::EFFECT_TAG;

/// Replicates an effect as `CANDLE.APPLY key <blob>` and fires keyspace events.
pub(super) fn publish(ctx: &Context, name: &RedisString, effect: &Effect) {
    publish_after(ctx, name, effect, None);
}

/// [`publish`] of an effect just applied to `after`: official candles that the write sealed
/// as whole chunks are replicated as those chunks' bytes ([`Effect::encode_after`]).
pub(super) fn publish_after(
    ctx: &Context,
    name: &RedisString,
    effect: &Effect,
    after: Option<&Series>,
) {
    if effect.is_empty() {
        return;
    }
    // One buffer reused across writes (taken out of the cell, so never borrowed twice); a
    // large one left by a big batch is not kept.
    let mut blob = EFFECT_BUF.take();
    blob.clear();
    // Room for a typical encoding at once (a 1000-row page is ~80 KB): growing by doubling
    // would copy it several times.
    blob.reserve(64 + EFFECT_BYTES_PER_CANDLE * (effect.official.len() + effect.live_put.len()));
    blob.push(EFFECT_TAG);
    match after {
        Some(s) if !effect.official.is_empty() => effect.encode_after(s, &mut blob),
        _ => effect.encode(&mut blob),
    }
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

/// Largest effect buffer kept for the next write (a 1000-row page's effect fits).
const EFFECT_BUF_KEEP: usize = 256 * 1024;

/// Bytes reserved per candle of an effect: a full Binance kline's record takes ~75.
const EFFECT_BYTES_PER_CANDLE: usize = 96;

thread_local! {
    /// The encoding buffer of `publish` (commands run on the main thread).
    static EFFECT_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A module keyspace event with a static name (the crate's wrapper allocates a CString).
pub(super) fn notify_event(ctx: &Context, event: &std::ffi::CStr, name: &RedisString) {
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

pub(super) fn notify(ctx: &Context, name: &RedisString, effect: &Effect) {
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
