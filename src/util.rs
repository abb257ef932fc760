//! Small helpers shared by the command families: errors, argument parsing, clock, replies.

use candles_core::CoreError;
use redis_module::{raw, Context, ContextFlags, RedisError, RedisString, RedisValue};

/// `ERR <message>` for a core error.
pub fn core_err(e: CoreError) -> RedisError {
    RedisError::String(format!("ERR {e}"))
}

pub fn err(msg: impl std::fmt::Display) -> RedisError {
    RedisError::String(format!("ERR {msg}"))
}

/// The server clock in ms. Only the module layer reads it; the core gets it passed in.
pub fn now_ms() -> i64 {
    // SAFETY: a plain call into the server; the pointer is set once the module is loaded.
    unsafe { raw::RedisModule_Milliseconds.map(|f| f()).unwrap_or(0) }
}

pub fn is_kw(arg: &RedisString, kw: &str) -> bool {
    arg.as_slice().eq_ignore_ascii_case(kw.as_bytes())
}

pub fn as_str(arg: &RedisString) -> Result<&str, RedisError> {
    std::str::from_utf8(arg.as_slice()).map_err(|_| err("argument is not valid UTF-8"))
}

pub fn parse_int(arg: &RedisString, what: &str) -> Result<i64, RedisError> {
    candles_core::candle::parse_i64(arg.as_slice())
        .ok_or_else(|| err(format!("{what} must be an integer")))
}

/// An integer in `min..=max`; the error states exactly that range, whichever end is crossed.
pub fn parse_range(arg: &RedisString, what: &str, min: u64, max: u64) -> Result<u64, RedisError> {
    let v = parse_int(arg, what)?;
    match u64::try_from(v) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(err(format!("{what} must be between {min} and {max}"))),
    }
}

/// A timestamp bound: an integer, `-` (lowest) or `+` (highest).
pub fn parse_bound(arg: &RedisString, what: &str) -> Result<i64, RedisError> {
    match arg.as_slice() {
        b"-" => Ok(i64::MIN),
        b"+" => Ok(i64::MAX),
        _ => parse_int(arg, what),
    }
}

pub fn bulk(s: impl Into<String>) -> RedisValue {
    RedisValue::BulkString(s.into())
}

/// Replies with `text` as one bulk string, straight from the buffer (`RedisValue::BulkString`
/// would copy it into a `String` first; chart replies are tens of kilobytes).
pub fn json_reply(ctx: &Context, text: &[u8]) -> RedisValue {
    raw::reply_with_string_buffer(ctx.get_raw(), text.as_ptr().cast(), text.len());
    RedisValue::NoReply
}

/// Reply format of read commands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Resp,
    Json,
}

pub fn parse_format(arg: &RedisString) -> Result<Format, RedisError> {
    if is_kw(arg, "RESP") {
        Ok(Format::Resp)
    } else if is_kw(arg, "JSON") {
        Ok(Format::Json)
    } else {
        Err(err("FORMAT is RESP or JSON"))
    }
}

/// redis-module reports a key of another type as a plain error; clients expect WRONGTYPE.
pub fn wrong_type(_: RedisError) -> RedisError {
    RedisError::WrongType
}

/// Internal commands (`*.APPLY`) write exactly what they are given, bypassing the rules, so
/// they are accepted only from the replication link or while loading the AOF.
pub fn require_internal(ctx: &Context, command: &str) -> Result<(), RedisError> {
    if ctx
        .get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
    {
        Ok(())
    } else {
        Err(err(format!(
            "{command} is internal: it is accepted only from a master or while loading the AOF"
        )))
    }
}

/// A flat `[name, value, name, value, ...]` reply, the shape of `XINFO`/`TS.INFO`.
pub fn field_list(fields: impl IntoIterator<Item = (&'static str, RedisValue)>) -> RedisValue {
    RedisValue::Array(
        fields
            .into_iter()
            .flat_map(|(k, v)| [RedisValue::SimpleStringStatic(k), v])
            .collect(),
    )
}
