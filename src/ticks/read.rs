//! The TICKS.* reads: LATEST, RANGE, MERGED and STREAMS, and the tick replies.

use candles_core::ticks::{ticks_to_json, Tick, TickBook};
use redis_module::commands::KeySpecFlags;
use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::book_type::TICKS_TYPE;
use crate::args::Args;
use crate::command::module_command;
use crate::util::{bulk, core_err, err, parse_format, wrong_type, Format};

/// Largest COUNT accepted by tick reads.
pub const MAX_TICK_COUNT: u64 = 100_000;
/// COUNT of TICKS.LATEST and TICKS.MERGED when none is given (TICKS.RANGE: all in range).
pub const DEFAULT_TICK_COUNT: usize = 100;

/// Options of the read commands.
struct ReadOpts<'a> {
    count: Option<usize>,
    prefix: Option<&'a [u8]>,
    format: Format,
}

/// The options that end the arguments.
fn parse_read_opts(
    mut args: Args<'_>,
    allow_prefix: bool,
    allow_format: bool,
) -> Result<ReadOpts<'_>, RedisError> {
    let mut o = ReadOpts {
        count: None,
        prefix: None,
        format: Format::Resp,
    };
    let names: &[&'static str] = match (allow_prefix, allow_format) {
        (true, true) => &["PREFIX", "COUNT", "FORMAT"],
        (false, true) => &["COUNT", "FORMAT"],
        (true, false) => &["PREFIX"],
        (false, false) => &[],
    };
    while let Some(a) = args.peek() {
        match args.take_option(names)? {
            Some("COUNT") => o.count = Some(args.value_in("COUNT", 0, MAX_TICK_COUNT)? as usize),
            Some("FORMAT") => o.format = parse_format(args.value_of("FORMAT")?)?,
            Some("PREFIX") => o.prefix = Some(args.value_of("PREFIX")?.as_slice()),
            _ => return Err(err(format!("unknown option '{a}'"))),
        }
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let stream = args.next_arg()?;
    let o = parse_read_opts(args, false, true)?;
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let stream = args.next_arg()?;
    let from = args.next_bound("from")?;
    let to = args.next_bound("to")?;
    let o = parse_read_opts(args, false, true)?;
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let o = parse_read_opts(args, true, true)?;
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
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let o = parse_read_opts(args, true, false)?;
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
