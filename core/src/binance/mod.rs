//! Binance market-data payloads, as received: REST klines bodies, WebSocket kline events
//! (plain or combined-stream wrapped), aggTrade and trade events.
//!
//! Numbers keep their exact text (serde_json's `arbitrary_precision`), so decimals are exact
//! whether Binance sends them as strings (it does) or a client sends JSON numbers.
//!
//! Two readers, one result: `fast` reads the shapes Binance actually sends straight from the
//! bytes, and `value` reads anything through a `serde_json::Value` tree (and decides every
//! error). This file holds the types both produce and the public entry points, which try
//! the fast reader first and fall back to the Value one.

mod fast;
#[cfg(test)]
mod tests;
mod value;

pub use value::{dec_of, int_of};

use crate::candle::Candle;
use crate::candle::Incoming;
use crate::decimal::Dec;
use crate::error::CoreResult;
use crate::interval::Interval;
use serde_json::Value;

/// Largest JSON payload accepted by the parsers (a 1000-row REST body is ~170 KB).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;

/// A kline from any Binance shape, with what the shape says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Kline {
    pub candle: Candle,
    /// `x` of a WebSocket kline: false while the candle is forming. None for REST rows.
    pub closed: Option<bool>,
    /// `i` of a WebSocket kline.
    pub interval: Option<Interval>,
    /// `s` of a WebSocket kline.
    pub symbol: Option<String>,
}

/// A parsed combined-stream (or plain) WebSocket frame, for routing.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived, one per frame; boxing would only add an allocation
pub enum StreamEvent {
    Kline(Kline),
    /// `@aggTrade` or `@trade`: one trade.
    Trade(Trade),
    /// Anything else (bookTicker, depth, subscription replies): not ours to store.
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trade {
    pub symbol: String,
    pub price: Dec,
    pub qty: Dec,
    /// Trade time `T` (ms).
    pub time: i64,
    /// `a` (aggTrade id) or `t` (trade id).
    pub id: Option<u64>,
    pub buyer_is_maker: Option<bool>,
    /// The event object (`data` of a combined frame), for storing as a tick document.
    pub raw: Value,
}

/// Parses every kline shape Binance sends: a REST klines body (array of rows), one row, a
/// WebSocket kline event (plain or `{"stream":…,"data":…}`), or its `k` object.
pub fn parse_klines(payload: &[u8]) -> CoreResult<Vec<Kline>> {
    if payload.len() <= MAX_PAYLOAD_BYTES {
        if let Some(klines) = fast::rest_klines(payload) {
            return Ok(klines);
        }
    }
    klines_not_rest(payload)
}

/// What a write (`Series::add_official`) takes from a payload: [`parse_klines`]'s candles
/// and `closed` flags, with the interval each kline names, or no intervals at all when no
/// kline names one (REST rows never do).
pub type IncomingBatch = (Vec<Incoming>, Vec<Option<Interval>>);

/// [`parse_klines`] for a write: the same klines (and errors), read straight into the
/// [`Incoming`] the series takes, so a REST body's rows are not copied once more.
pub fn parse_incoming(payload: &[u8]) -> CoreResult<IncomingBatch> {
    if payload.len() <= MAX_PAYLOAD_BYTES {
        if let Some(rows) = fast::rest_klines(payload) {
            return Ok((rows, Vec::new()));
        }
    }
    let klines = klines_not_rest(payload)?;
    let intervals = if klines.iter().any(|k| k.interval.is_some()) {
        klines.iter().map(|k| k.interval).collect()
    } else {
        Vec::new()
    };
    let incoming = klines.into_iter().map(Incoming::from).collect();
    Ok((incoming, intervals))
}

/// `parse_klines` where the REST body reader did not answer: a WebSocket kline read
/// without a tree, else the Value path.
fn klines_not_rest(payload: &[u8]) -> CoreResult<Vec<Kline>> {
    if payload.len() <= MAX_PAYLOAD_BYTES {
        if let Some(kline) = fast::ws_kline(payload) {
            return Ok(vec![kline]);
        }
    }
    let v = value::parse_json(payload)?;
    value::klines_of(&v)
}

impl From<Kline> for Incoming {
    fn from(k: Kline) -> Incoming {
        Incoming {
            candle: k.candle,
            closed: k.closed,
        }
    }
}

/// The one kline of a payload that is a single REST row or a WebSocket kline (frame, event
/// or `k` object), read without a JSON tree: `LIVE_UPDATE ... JSON` takes exactly one. `None`
/// when the payload is not plainly one of those shapes; [`parse_klines`] then decides (and
/// gives the same kline wherever this one answers).
pub fn parse_one_kline(payload: &[u8]) -> Option<Kline> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return None;
    }
    fast::rest_row(payload).or_else(|| fast::ws_kline(payload))
}

/// Parses one WebSocket frame (combined `{"stream","data"}` or plain) for routing.
pub fn parse_stream_frame(frame: &[u8]) -> CoreResult<StreamEvent> {
    let v = value::parse_json(frame)?;
    value::stream_event(&v)
}
