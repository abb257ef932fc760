//! candles-core: the pure logic of redis-candles.
//!
//! No Redis types and no clock in here: every time-dependent decision takes `now_ms` from the
//! caller, so the module can replicate it as an effect and tests can pin time.

pub mod align;
pub mod binance;
mod bytes;
pub mod candle;
pub mod chart_cache;
pub mod chunk;
pub mod codec;
pub mod decimal;
pub mod error;
pub mod interval;
pub mod render;
pub mod series;
pub mod slot;
pub mod store;
pub mod ticks;
pub mod varint;

#[cfg(test)]
mod test_data;
#[cfg(test)]
mod test_rng;

pub use candle::Candle;
pub use decimal::Dec;
pub use error::{CoreError, CoreResult};
pub use interval::Interval;
