//! Real market data for the unit tests.

use crate::binance::parse_klines;
use crate::Candle;

const MIN: i64 = 60_000;

/// The 1000 real BTCUSDT 1m REST rows, moved `rep * 1000` minutes later: copies 0, 1, 2, ...
/// follow one another without a gap (how the ingest bench builds 100k candles).
pub fn rest_1m_copy(rep: i64) -> Vec<Candle> {
    let body = candles_testkit::fixtures::bytes("rest_klines_BTCUSDT_1m_limit1000.json");
    let shift = rep * 1000 * MIN;
    parse_klines(&body)
        .unwrap()
        .into_iter()
        .map(|k| {
            let mut c = k.candle;
            c.open_time += shift;
            c.close_time = c.close_time.map(|t| t + shift);
            c
        })
        .collect()
}
