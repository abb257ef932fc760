//! TICKS.* commands: tick books, one key per trading session holding named, capped streams.
//!
//! Writes parse and validate everything before touching the key (a bad argument or document
//! changes nothing). A push replicates as given, except one that creates a stream without
//! `MAXLEN`: that one carries its effective `MAXLEN`, so a replica or the AOF never depends on
//! its own `candles.tick_cap`.

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use candles_core::ticks::{ticks_to_json, Tick, TickBatch, TickBook, DEFAULT_TIME_FIELD, MAX_CAP};
use redis_module::commands::KeySpecFlags;
use redis_module::{raw, Context, NotifyEvent, RedisError, RedisResult, RedisString, RedisValue};

use crate::command::module_command;
use crate::config::TICK_CAP;
use crate::datatype::ModuleValue;
use crate::stats;
use crate::ticks_type::{SNAPSHOT_TAG, TICKS_TYPE};
use crate::util::{
    bulk, core_err, err, field_list, is_kw, option_value, parse_bound, parse_bounded, parse_format,
    require_internal, wrong_type, Format,
};

/// Largest COUNT accepted by tick reads.
pub const MAX_TICK_COUNT: u64 = 100_000;
/// COUNT of TICKS.LATEST and TICKS.MERGED when none is given (TICKS.RANGE: all in range).
pub const DEFAULT_TICK_COUNT: usize = 100;

fn default_cap() -> usize {
    TICK_CAP.load(Ordering::Relaxed).clamp(1, MAX_CAP as i64) as usize
}

/// What follows the options of TICKS.PUSH.
enum Body<'a> {
    /// `time field value [field value ...]`
    Pairs(&'a RedisString, &'a [RedisString]),
    /// `JSON doc [doc ...]`
    Json(&'a [RedisString]),
}

struct Push<'a> {
    maxlen: Option<usize>,
    timefield: Option<&'a RedisString>,
    body: Body<'a>,
    /// Index in the arguments where the body starts (`time` or `JSON`).
    body_at: usize,
}

fn parse_push(args: &[RedisString]) -> Result<Push<'_>, RedisError> {
    let mut maxlen = None;
    let mut timefield = None;
    let mut i = 3;
    loop {
        let Some(a) = args.get(i) else {
            return Err(err(
                "TICKS.PUSH needs a time and field/value pairs, or JSON documents",
            ));
        };
        let kw = a.as_slice();
        if kw.eq_ignore_ascii_case(b"MAXLEN") {
            if maxlen.is_some() {
                return Err(err("MAXLEN given twice"));
            }
            let n = parse_bounded(option_value(args, i, "MAXLEN")?, "MAXLEN", MAX_CAP as u64)?;
            if n == 0 {
                return Err(err(format!("MAXLEN must be between 1 and {MAX_CAP}")));
            }
            maxlen = Some(n as usize);
            i += 2;
        } else if kw.eq_ignore_ascii_case(b"TIMEFIELD") {
            if timefield.is_some() {
                return Err(err("TIMEFIELD given twice"));
            }
            timefield = Some(option_value(args, i, "TIMEFIELD")?);
            i += 2;
        } else if kw.eq_ignore_ascii_case(b"JSON") {
            let docs = args.get(i + 1..).unwrap_or_default();
            if docs.is_empty() {
                return Err(err("JSON needs at least one document"));
            }
            return Ok(Push {
                maxlen,
                timefield,
                body: Body::Json(docs),
                body_at: i,
            });
        } else {
            if candles_core::candle::parse_i64(kw).is_none() {
                return Err(err(format!(
                    "time must be an integer (or an option: MAXLEN n, TIMEFIELD f, JSON doc ...), got '{a}'"
                )));
            }
            if timefield.is_some() {
                return Err(err("TIMEFIELD applies to JSON documents only"));
            }
            let pairs = args.get(i + 1..).unwrap_or_default();
            if pairs.len() % 2 != 0 {
                return Err(err(
                    "fields and values come in pairs: time field value [field value ...]",
                ));
            }
            return Ok(Push {
                maxlen,
                timefield,
                body: Body::Pairs(a, pairs),
                body_at: i,
            });
        }
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
            let time = candles_core::candle::parse_i64(time.as_slice())
                .ok_or_else(|| err("time must be an integer"))?;
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
            let r = push_batch(ctx, args, &p, &mut batch);
            batch.clear();
            r
        }
        // Not reachable (commands do not nest), but never a panic: a fresh batch.
        Err(_) => push_batch(ctx, args, &p, &mut TickBatch::new()),
    })
}

fn push_batch(
    ctx: &Context,
    args: &[RedisString],
    p: &Push<'_>,
    batch: &mut TickBatch,
) -> RedisResult {
    let (Some(name), Some(stream)) = (args.get(1), args.get(2)) else {
        return Err(RedisError::WrongArity);
    };
    let stream = stream.as_slice();
    fill_batch(p, batch)?;
    let key = ctx.open_key_writable(name);
    let cap_default = default_cap();
    let out = match key.get_value::<TickBook>(&TICKS_TYPE).map_err(wrong_type)? {
        Some(b) => {
            let before = b.footprint();
            let r = b.push_batch(stream, p.maxlen, cap_default, batch);
            stats::TICK_BOOKS.changed(before, b.footprint());
            r.map_err(core_err)?
        }
        None => {
            let mut b = TickBook::new();
            let out = b
                .push_batch(stream, p.maxlen, cap_default, batch)
                .map_err(core_err)?;
            let fp = b.footprint();
            key.set_value(&TICKS_TYPE, b)?;
            stats::TICK_BOOKS.add(fp, 1);
            out
        }
    };
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
        rep.extend(
            args.get(p.body_at..)
                .unwrap_or_default()
                .iter()
                .map(|a| a.as_slice()),
        );
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

/// Options of the read commands.
struct ReadOpts<'a> {
    count: Option<usize>,
    prefix: Option<&'a [u8]>,
    format: Format,
}

fn parse_read_opts<'a>(
    args: &'a [RedisString],
    allow_prefix: bool,
    allow_format: bool,
) -> Result<ReadOpts<'a>, RedisError> {
    let mut o = ReadOpts {
        count: None,
        prefix: None,
        format: Format::Resp,
    };
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if is_kw(a, "COUNT") && allow_format {
            o.count = Some(
                parse_bounded(option_value(args, i, "COUNT")?, "COUNT", MAX_TICK_COUNT)? as usize,
            );
        } else if is_kw(a, "FORMAT") && allow_format {
            o.format = parse_format(option_value(args, i, "FORMAT")?)?;
        } else if is_kw(a, "PREFIX") && allow_prefix {
            o.prefix = Some(option_value(args, i, "PREFIX")?.as_slice());
        } else {
            return Err(err(format!("unknown option '{a}'")));
        }
        i += 2;
    }
    Ok(o)
}

fn fields_resp(t: &Tick) -> RedisValue {
    let mut v = Vec::with_capacity(t.fields.len() * 2);
    for (n, val) in &t.fields {
        v.push(RedisValue::StringBuffer(n.clone()));
        v.push(RedisValue::StringBuffer(val.text.clone()));
    }
    RedisValue::Array(v)
}

fn reply_ticks(ticks: &[Tick], format: Format) -> RedisValue {
    match format {
        Format::Resp => RedisValue::Array(
            ticks
                .iter()
                .map(|t| RedisValue::Array(vec![RedisValue::Integer(t.time), fields_resp(t)]))
                .collect(),
        ),
        Format::Json => bulk(ticks_to_json(ticks.iter().map(|t| (None, t)))),
    }
}

fn reply_merged(ticks: &[(Vec<u8>, Tick)], format: Format) -> RedisValue {
    match format {
        Format::Resp => RedisValue::Array(
            ticks
                .iter()
                .map(|(s, t)| {
                    RedisValue::Array(vec![
                        RedisValue::StringBuffer(s.clone()),
                        RedisValue::Integer(t.time),
                        fields_resp(t),
                    ])
                })
                .collect(),
        ),
        Format::Json => bulk(ticks_to_json(
            ticks.iter().map(|(s, t)| (Some(s.as_slice()), t)),
        )),
    }
}

fn empty(format: Format) -> RedisValue {
    reply_ticks(&[], format)
}

module_command!(
    ticks_latest,
    entry: ticks_latest_entry,
    info: ticks_latest_info,
    name: "TICKS.LATEST",
    flags: "readonly",
    arity: -3,
    summary: "The newest ticks of a stream by time (ties: latest arrival first)",
    complexity: "O(C + N) for N ticks returned (C: one chunk of 32 records)",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn ticks_latest(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name, stream, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let o = parse_read_opts(opts, false, true)?;
    let key = ctx.open_key(name);
    let Some(b) = key.get_value::<TickBook>(&TICKS_TYPE).map_err(wrong_type)? else {
        return Ok(empty(o.format));
    };
    let ticks = b
        .latest(stream.as_slice(), o.count.unwrap_or(DEFAULT_TICK_COUNT))
        .map_err(core_err)?;
    Ok(reply_ticks(&ticks, o.format))
}

module_command!(
    ticks_range,
    entry: ticks_range_entry,
    info: ticks_range_info,
    name: "TICKS.RANGE",
    flags: "readonly",
    arity: -5,
    summary: "Ticks of a stream with from <= time <= to, ascending (ties: arrival order); - and + are open ends",
    complexity: "O(log N + C + M) for M ticks returned",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn ticks_range(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name, stream, from, to, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let from = parse_bound(from, "from")?;
    let to = parse_bound(to, "to")?;
    let o = parse_read_opts(opts, false, true)?;
    let key = ctx.open_key(name);
    let Some(b) = key.get_value::<TickBook>(&TICKS_TYPE).map_err(wrong_type)? else {
        return Ok(empty(o.format));
    };
    let ticks = b
        .range(stream.as_slice(), from, to, o.count)
        .map_err(core_err)?;
    Ok(reply_ticks(&ticks, o.format))
}

module_command!(
    ticks_merged,
    entry: ticks_merged_entry,
    info: ticks_merged_info,
    name: "TICKS.MERGED",
    flags: "readonly",
    arity: -2,
    summary: "The newest ticks across all streams (or those whose name starts with PREFIX), each naming its stream",
    complexity: "O(S (C + log S) + N log S) for S streams and N ticks returned",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn ticks_merged(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let o = parse_read_opts(opts, true, true)?;
    let key = ctx.open_key(name);
    let Some(b) = key.get_value::<TickBook>(&TICKS_TYPE).map_err(wrong_type)? else {
        return Ok(empty(o.format));
    };
    let ticks = b
        .merged(o.prefix, o.count.unwrap_or(DEFAULT_TICK_COUNT))
        .map_err(core_err)?;
    Ok(reply_merged(&ticks, o.format))
}

module_command!(
    ticks_streams,
    entry: ticks_streams_entry,
    info: ticks_streams_info,
    name: "TICKS.STREAMS",
    flags: "readonly",
    arity: -2,
    summary: "The streams of a tick book (or those whose name starts with PREFIX): name, length, newest time",
    complexity: "O(S * C) for S streams",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn ticks_streams(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name, opts @ ..] = args else {
        return Err(RedisError::WrongArity);
    };
    let o = parse_read_opts(opts, true, false)?;
    let key = ctx.open_key(name);
    let Some(b) = key.get_value::<TickBook>(&TICKS_TYPE).map_err(wrong_type)? else {
        return Ok(RedisValue::Array(vec![]));
    };
    let rows = b.streams(o.prefix).map_err(core_err)?;
    Ok(RedisValue::Array(
        rows.into_iter()
            .map(|s| {
                RedisValue::Array(vec![
                    RedisValue::StringBuffer(s.name),
                    RedisValue::Integer(s.len as i64),
                    s.newest_time.map_or(RedisValue::Null, RedisValue::Integer),
                ])
            })
            .collect(),
    ))
}

module_command!(
    ticks_info,
    entry: ticks_info_entry,
    info: ticks_info_info,
    name: "TICKS.INFO",
    flags: "readonly",
    arity: 2,
    summary: "Counts, caps and memory of a tick book",
    complexity: "O(S) for S streams",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn ticks_info(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let [_, name] = args else {
        return Err(RedisError::WrongArity);
    };
    let key = ctx.open_key(name);
    let Some(b) = key.get_value::<TickBook>(&TICKS_TYPE).map_err(wrong_type)? else {
        return Ok(RedisValue::Array(vec![]));
    };
    let i = b.info();
    let int = |v: usize| RedisValue::Integer(v as i64);
    let fields = [
        ("streams", int(i.streams)),
        ("ticks", int(i.ticks)),
        ("late_ticks", int(i.late_ticks)),
        ("cap_min", int(i.cap_min)),
        ("cap_max", int(i.cap_max)),
        ("default_cap", int(default_cap())),
        ("memory", int(i.memory)),
    ];
    Ok(field_list(fields))
}

// Internal: the AOF-rewrite form of a tick book (a canonical snapshot). Refused from clients.
module_command!(
    ticks_apply,
    entry: ticks_apply_entry,
    info: ticks_apply_info,
    name: "TICKS.APPLY",
    flags: "write",
    arity: 3,
    summary: "Internal: AOF-rewrite form of a tick book (refused from clients)",
    complexity: "O(N) for N ticks",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE,
);

fn ticks_apply(ctx: &Context, args: &[RedisString]) -> RedisResult {
    require_internal(ctx, "TICKS.APPLY")?;
    let [_, name, book] = args else {
        return Err(RedisError::WrongArity);
    };
    let book = match book.as_slice().split_first() {
        Some((&SNAPSHOT_TAG, body)) => TickBook::decode(body).map_err(core_err)?,
        _ => return Err(err("TICKS.APPLY: unknown payload")),
    };
    let key = ctx.open_key_writable(name);
    if !key.is_empty() {
        // Only ever replaces a tick book (the old one is freed and uncounted by the type).
        key.get_value::<TickBook>(&TICKS_TYPE).map_err(wrong_type)?;
    }
    let fp = book.footprint();
    key.set_value(&TICKS_TYPE, book)?;
    stats::TICK_BOOKS.add(fp, 1);
    ctx.replicate_verbatim();
    Ok(RedisValue::SimpleStringStatic("OK"))
}
