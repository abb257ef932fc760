//! candles-testkit: what the tests and benches of every crate of redis-candles share. Dev-only:
//! no shipped crate depends on it.
//!
//! * [`archive`]: Binance's kline archive (monthly/daily zips + `.CHECKSUM`) from recorded rows;
//! * [`cluster`]: a real 3-master Redis Cluster of module-loaded servers, slot moves;
//! * [`feeder`]: the `candles-feed` process and a Redis for the feeder's tests and benchmark;
//! * [`fixtures`]: the recorded Binance data committed under `tests/fixtures/binance/`;
//! * [`server`]: a real `redis-server` (or `valkey-server`, `$CANDLES_REDIS_SERVER`) with the
//!   module, on a free loopback port, killed when its guard drops;
//! * [`standin`]: a local Binance (REST klines + combined-stream WebSocket) on 127.0.0.1;
//! * [`web`]: the `candles-web` process, a plain HTTP GET and query encoding.

pub mod archive;
pub mod cluster;
pub mod feeder;
pub mod fixtures;
pub mod server;
pub mod standin;
pub mod web;

/// The `i`th command-line argument of an example or a benchmark, parsed; `default` when it is
/// missing or does not parse.
pub fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
