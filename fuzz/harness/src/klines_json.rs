//! The Binance payload parsers on arbitrary bytes: REST klines bodies, single rows, WebSocket
//! kline events and combined-stream frames, trade frames. Never a panic; every parsed kline
//! prints back (Display of its decimals parses again) and validates or is refused cleanly.
use candles_core::binance::{parse_klines, parse_stream_frame};
use candles_core::{Dec, Interval};

/// The `klines_json` target: panics on a finding.
pub fn klines_json(data: &[u8]) {
    if let Ok(klines) = parse_klines(data) {
        for k in &klines {
            let c = &k.candle;
            for d in [c.open, c.high, c.low, c.close, c.volume] {
                assert_eq!(Dec::parse(&d.to_string()).unwrap(), d);
            }
            let _ = c.validate(k.interval.unwrap_or(Interval::M1));
        }
    }
    let _ = parse_stream_frame(data);
}
