//! The general path: a payload parsed into a `serde_json::Value` tree, then read as
//! klines or a stream event. Every shape and every error message is decided here; the
//! byte-cursor path (`fast.rs`) only ever answers where it agrees with this one.

use super::{Kline, StreamEvent, Trade, MAX_PAYLOAD_BYTES};
use crate::candle::Candle;
use crate::decimal::Dec;
use crate::error::{CoreError, CoreResult};
use crate::interval::Interval;
use serde_json::{Map, Value};

pub(super) fn parse_json(payload: &[u8]) -> CoreResult<Value> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(CoreError::invalid(format!(
            "JSON payload larger than {MAX_PAYLOAD_BYTES} bytes"
        )));
    }
    serde_json::from_slice(payload).map_err(|e| CoreError::invalid(format!("invalid JSON: {e}")))
}

pub(super) fn klines_of(v: &Value) -> CoreResult<Vec<Kline>> {
    match v {
        Value::Array(rows) => match rows.first() {
            None => Ok(Vec::new()),
            Some(Value::Array(_)) => rows
                .iter()
                .enumerate()
                // Positions count from 1.
                .map(|(i, r)| (i + 1, r))
                .map(|(n, r)| match r {
                    Value::Array(f) => {
                        kline_of_row(f).map_err(|e| CoreError::invalid(format!("row {n}: {e}")))
                    }
                    _ => Err(CoreError::invalid(format!(
                        "row {n}: a klines row is a JSON array"
                    ))),
                })
                .collect(),
            Some(_) => Ok(vec![kline_of_row(rows)?]),
        },
        Value::Object(o) => {
            if let Some(data) = o.get("data") {
                return klines_of(data);
            }
            if let Some(k) = o.get("k") {
                if let Some(e) = o.get("e").and_then(Value::as_str) {
                    if e != "kline" {
                        return Err(CoreError::invalid(format!("event '{e}' is not a kline")));
                    }
                }
                return match k {
                    Value::Object(k) => Ok(vec![kline_of_k(k)?]),
                    _ => Err(CoreError::invalid("'k' of a kline event is a JSON object")),
                };
            }
            Ok(vec![kline_of_k(o)?])
        }
        _ => Err(CoreError::invalid(
            "expected a klines array, a kline row or a kline event object",
        )),
    }
}

/// `[openTime, "o", "h", "l", "c", "v", closeTime, "q", trades, "V", "Q", "ignore"]`
fn kline_of_row(f: &[Value]) -> CoreResult<Kline> {
    let wrong_len =
        || CoreError::invalid(format!("a klines row has 6 to 12 fields, got {}", f.len()));
    let [t, o, h, l, c, v, ..] = f else {
        return Err(wrong_len());
    };
    if f.len() > 12 {
        return Err(wrong_len());
    }
    let opt_dec = |i: usize, name: &str| f.get(i).map(|v| dec_of(v, name)).transpose();
    let candle = Candle {
        open_time: int_of(t, "open time")?,
        open: dec_of(o, "open")?,
        high: dec_of(h, "high")?,
        low: dec_of(l, "low")?,
        close: dec_of(c, "close")?,
        volume: dec_of(v, "volume")?,
        close_time: f.get(6).map(|v| int_of(v, "close time")).transpose()?,
        quote_volume: opt_dec(7, "quote volume")?,
        trades: f.get(8).map(|v| uint_of(v, "trades")).transpose()?,
        taker_buy_base: opt_dec(9, "taker buy base volume")?,
        taker_buy_quote: opt_dec(10, "taker buy quote volume")?,
    };
    Ok(Kline {
        candle,
        closed: None,
        interval: None,
        symbol: None,
    })
}

/// The `k` object of a WebSocket kline event.
fn kline_of_k(k: &Map<String, Value>) -> CoreResult<Kline> {
    let req = |name: &str| {
        k.get(name)
            .ok_or_else(|| CoreError::invalid(format!("kline object lacks '{name}'")))
    };
    let opt_dec = |name: &str| k.get(name).map(|v| dec_of(v, name)).transpose();
    let candle = Candle {
        open_time: int_of(req("t")?, "t")?,
        open: dec_of(req("o")?, "o")?,
        high: dec_of(req("h")?, "h")?,
        low: dec_of(req("l")?, "l")?,
        close: dec_of(req("c")?, "c")?,
        volume: dec_of(req("v")?, "v")?,
        close_time: k.get("T").map(|v| int_of(v, "T")).transpose()?,
        quote_volume: opt_dec("q")?,
        trades: k.get("n").map(|v| uint_of(v, "n")).transpose()?,
        taker_buy_base: opt_dec("V")?,
        taker_buy_quote: opt_dec("Q")?,
    };
    let closed = match k.get("x") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(CoreError::invalid("'x' of a kline is true or false")),
    };
    let interval = match k.get("i") {
        None => None,
        Some(Value::String(s)) => Some(Interval::parse(s)?),
        Some(_) => return Err(CoreError::invalid("'i' of a kline is a string")),
    };
    let symbol = k.get("s").and_then(Value::as_str).map(str::to_owned);
    Ok(Kline {
        candle,
        closed,
        interval,
        symbol,
    })
}

/// A parsed WebSocket frame (combined `{"stream","data"}` or plain) as a routing event.
pub(super) fn stream_event(v: &Value) -> CoreResult<StreamEvent> {
    let data = match v.get("data") {
        Some(d) if v.get("stream").is_some() => d,
        _ => v,
    };
    let Some(obj) = data.as_object() else {
        return Ok(StreamEvent::Other);
    };
    match obj.get("e").and_then(Value::as_str) {
        Some("kline") => {
            let mut ks = klines_of(data)?;
            ks.pop()
                .map(StreamEvent::Kline)
                .ok_or_else(|| CoreError::invalid("empty kline event"))
        }
        Some(e @ ("aggTrade" | "trade")) => {
            let req = |name: &str| {
                obj.get(name)
                    .ok_or_else(|| CoreError::invalid(format!("{e} event lacks '{name}'")))
            };
            let id_field = if e == "aggTrade" { "a" } else { "t" };
            Ok(StreamEvent::Trade(Trade {
                symbol: req("s")?.as_str().unwrap_or_default().to_owned(),
                price: dec_of(req("p")?, "p")?,
                qty: dec_of(req("q")?, "q")?,
                time: int_of(req("T")?, "T")?,
                id: obj
                    .get(id_field)
                    .map(|v| uint_of(v, id_field))
                    .transpose()?,
                buyer_is_maker: obj.get("m").and_then(Value::as_bool),
                raw: data.clone(),
            }))
        }
        _ => Ok(StreamEvent::Other),
    }
}

/// A decimal given as a JSON string (Binance) or number (exact text kept).
pub fn dec_of(v: &Value, name: &str) -> CoreResult<Dec> {
    match v {
        Value::String(s) => Dec::parse(s),
        Value::Number(n) => Dec::parse(&n.to_string()),
        _ => Err(CoreError::invalid(format!(
            "{name} must be a decimal string or number"
        ))),
    }
    .map_err(|e| CoreError::invalid(format!("{name}: {e}")))
}

pub fn int_of(v: &Value, name: &str) -> CoreResult<i64> {
    v.as_i64()
        .ok_or_else(|| CoreError::invalid(format!("{name} must be an integer")))
}

fn uint_of(v: &Value, name: &str) -> CoreResult<u64> {
    v.as_u64()
        .ok_or_else(|| CoreError::invalid(format!("{name} must be a non-negative integer")))
}
