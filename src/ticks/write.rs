//! TICKS.PUSH, the one tick write.
//!
//! Writes parse and validate everything before touching the key (a bad argument or document
//! changes nothing). A push replicates as given, except one that creates a stream without
//! `MAXLEN`: that one carries its effective `MAXLEN`, so a replica or the AOF never depends on
//! its own `candles.tick_cap`.

use std::cell::RefCell;

use candles_core::ticks::{PushOutcome, TickBatch, TickBook, DEFAULT_TIME_FIELD, MAX_CAP};
use redis_module::commands::KeySpecFlags;
use redis_module::{raw, Context, NotifyEvent, RedisError, RedisResult, RedisString, RedisValue};

use super::default_cap;
use crate::args::Args;
use crate::command::module_command;
use crate::datatype::Slot;
use crate::util::{core_err, err};

/// What follows the options of TICKS.PUSH.
enum Body<'a> {
    /// `time field value [field value ...]` (the time parsed)
    Pairs(i64, &'a [RedisString]),
    /// `JSON doc [doc ...]`
    Json(&'a [RedisString]),
}

struct Push<'a> {
    name: &'a RedisString,
    stream: &'a RedisString,
    maxlen: Option<usize>,
    timefield: Option<&'a RedisString>,
    body: Body<'a>,
    /// The arguments from the body on (`time ...` or `JSON ...`), as given.
    body_args: &'a [RedisString],
}

fn parse_push(args: &[RedisString]) -> Result<Push<'_>, RedisError> {
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let stream = args.next_arg()?;
    let mut maxlen = None;
    let mut timefield = None;
    // Each argument's bytes are fetched once (a call into the server each): the options and
    // the body's first word are told apart on them, as `Args::take_option` and `is_kw` would.
    loop {
        let body_args = args.remaining();
        let Some(a) = args.next_opt() else {
            return Err(err(
                "TICKS.PUSH needs a time and field/value pairs, or JSON documents",
            ));
        };
        let word = a.as_slice();
        if word.eq_ignore_ascii_case(b"MAXLEN") {
            if maxlen.is_some() {
                return Err(err("MAXLEN given more than once"));
            }
            maxlen = Some(args.value_in("MAXLEN", 1, MAX_CAP as u64)? as usize);
            continue;
        }
        if word.eq_ignore_ascii_case(b"TIMEFIELD") {
            if timefield.is_some() {
                return Err(err("TIMEFIELD given more than once"));
            }
            timefield = Some(args.value_of("TIMEFIELD")?);
            continue;
        }
        if word.eq_ignore_ascii_case(b"JSON") {
            let docs = args.rest();
            if docs.is_empty() {
                return Err(err("JSON needs at least one document"));
            }
            return Ok(Push {
                name,
                stream,
                maxlen,
                timefield,
                body: Body::Json(docs),
                body_args,
            });
        }
        let Some(time) = candles_core::candle::parse_i64(word) else {
            return Err(err(format!(
                "time must be an integer (or an option: MAXLEN n, TIMEFIELD f, JSON doc ...), got '{a}'"
            )));
        };
        if timefield.is_some() {
            return Err(err("TIMEFIELD applies to JSON documents only"));
        }
        let pairs = args.rest();
        if !pairs.len().is_multiple_of(2) {
            return Err(err(
                "fields and values come in pairs: time field value [field value ...]",
            ));
        }
        return Ok(Push {
            name,
            stream,
            maxlen,
            timefield,
            body: Body::Pairs(time, pairs),
            body_args,
        });
    }
}

thread_local! {
    /// The batch every push parses into: kept between commands so a push allocates nothing.
    static BATCH: RefCell<TickBatch> = RefCell::new(TickBatch::new());
}

/// Parses and validates the body of a push into `batch` (nothing is written on error).
fn fill_batch(p: &Push<'_>, batch: &mut TickBatch) -> Result<(), RedisError> {
    match p.body {
        Body::Pairs(time, pairs) => {
            let kv = pairs.chunks_exact(2).filter_map(|c| match c {
                [f, v] => Some((f.as_slice(), v.as_slice())),
                _ => None,
            });
            batch.push_pairs(time, kv).map_err(core_err)
        }
        Body::Json(docs) => {
            let tf = p.timefield.map_or(DEFAULT_TIME_FIELD, |f| f.as_slice());
            for (n, d) in docs.iter().enumerate() {
                batch.push_json(d.as_slice(), tf).map_err(|e| {
                    if docs.len() > 1 {
                        err(format!("document {}: {e}", n + 1))
                    } else {
                        core_err(e)
                    }
                })?;
            }
            Ok(())
        }
    }
}

module_command!(
    ticks_push,
    entry: ticks_push_entry,
    info: ticks_push_info,
    name: "TICKS.PUSH",
    flags: "write deny-oom",
    arity: -4,
    summary: "Append ticks to a named stream of a tick book (field/value pairs or JSON documents)",
    complexity: "O(F) per tick of F fields (amortized; O(log L) more for a late tick among L)",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::INSERT,
);

fn ticks_push(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let p = parse_push(args)?;
    BATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut batch) => {
            batch.clear();
            let r = push_batch(ctx, &p, &mut batch);
            batch.clear();
            r
        }
        // Not reachable (commands do not nest), but never a panic: a fresh batch.
        Err(_) => push_batch(ctx, &p, &mut TickBatch::new()),
    })
}

fn push_batch(ctx: &Context, p: &Push<'_>, batch: &mut TickBatch) -> RedisResult {
    let name = p.name;
    let stream = p.stream.as_slice();
    let cap_default = default_cap();
    let key = ctx.open_key_writable(name);
    let slot = match Slot::open(&key, || Ok(TickBook::new())) {
        Ok(slot) => slot,
        Err(e) => {
            // A key of another type: a bad body is reported first, as for any key.
            fill_batch(p, batch)?;
            return Err(e);
        }
    };
    let slot = match (&p.body, slot.is_new()) {
        (Body::Json(docs), false) => {
            // The lane of JSON pushes to a stored book: documents encoded as they are read,
            // or nothing done (then the batch below decides, and words any error, as for
            // any push).
            let tf = p.timefield.map_or(DEFAULT_TIME_FIELD, |f| f.as_slice());
            let lane = slot.write(&key, |b| {
                Ok(b.push_json_lane(stream, p.maxlen, cap_default, tf, docs, batch))
            })?;
            match lane {
                Some(out) => return pushed(ctx, p, out),
                None => Slot::open(&key, || Ok(TickBook::new()))?,
            }
        }
        _ => slot,
    };
    fill_batch(p, batch)?;
    let out = slot.write(&key, |b| {
        b.push_batch(stream, p.maxlen, cap_default, batch)
            .map_err(core_err)
    })?;
    pushed(ctx, p, out)
}

/// Replication, the keyspace event and the reply of a push that did `out`.
fn pushed(ctx: &Context, p: &Push<'_>, out: PushOutcome) -> RedisResult {
    let name = p.name;
    let stream = p.stream.as_slice();
    if p.maxlen.is_some() || !out.created {
        // The command as given is already independent of the replica's (or the AOF
        // loader's) candles.tick_cap: its MAXLEN is explicit, or it pushes to an existing
        // stream, whose cap the replica has too (streams never vanish, caps replicate).
        ctx.replicate_verbatim();
    } else {
        // Creating a stream with the default cap: replicate with the cap explicit.
        let cap_s = out.cap.to_string();
        let mut rep: Vec<&[u8]> = vec![name.as_slice(), stream, b"MAXLEN", cap_s.as_bytes()];
        if let Some(tf) = p.timefield {
            rep.push(b"TIMEFIELD");
            rep.push(tf.as_slice());
        }
        rep.extend(p.body_args.iter().map(|a| a.as_slice()));
        ctx.replicate("TICKS.PUSH", &rep[..]);
    }
    notify(ctx, name);
    Ok(RedisValue::Integer(out.len as i64))
}

/// The `ticks.push` keyspace event, with a static event name (redis-module's wrapper builds a
/// `CString` per call).
fn notify(ctx: &Context, key: &RedisString) {
    // SAFETY: plain call into the server with a NUL-terminated static string and a live key
    // name; the function pointer is set once the module is loaded.
    unsafe {
        if let Some(f) = raw::RedisModule_NotifyKeyspaceEvent {
            f(
                ctx.get_raw(),
                NotifyEvent::MODULE.bits(),
                c"ticks.push".as_ptr(),
                key.inner,
            );
        }
    }
}
