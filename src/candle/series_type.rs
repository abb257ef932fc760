//! The `rc-series` Redis data type (a candle series). Its encoding lives in
//! `candles_core::series`; the shared callbacks in `datatype`.

use candles_core::series::Series;
use candles_core::CoreResult;
use redis_module::native_types::RedisType;

use crate::datatype::{self, ModuleValue};
use crate::stats::{self, Footprint, Gauges};

/// Tag of a `CANDLE.APPLY` blob that carries a whole series (AOF rewrite).
pub const SNAPSHOT_TAG: u8 = b'S';
/// Tag of a `CANDLE.APPLY` blob that carries one write's effect (replication, AOF).
pub const EFFECT_TAG: u8 = b'E';

impl ModuleValue for Series {
    const WHAT: &'static str = "series";
    const ENCVER: i32 = 1;
    const APPLY_COMMAND: &'static std::ffi::CStr = c"CANDLE.APPLY";
    const SNAPSHOT_TAG: u8 = SNAPSHOT_TAG;

    fn snapshot(&self, out: &mut Vec<u8>) {
        out.reserve(64 + self.official_len() * 24);
        self.encode(out);
    }
    fn restore(bytes: &[u8]) -> CoreResult<Self> {
        Series::decode(bytes)
    }
    fn mem_usage(&self) -> usize {
        // MEMORY USAGE includes the JSON cache; the INFO gauges (footprint) count data only,
        // since reads grow the cache without telling them.
        Series::mem_usage(self) + self.cache_bytes()
    }
    fn free_effort(&self) -> usize {
        self.official_len() + self.live_len()
    }
    const GAUGES: &'static Gauges = &stats::SERIES;
    fn footprint(&self) -> Footprint {
        [
            1,
            self.official_len() as i64,
            self.live_len() as i64,
            Series::mem_usage(self) as i64,
        ]
    }
    fn redis_type() -> &'static RedisType {
        &SERIES_TYPE
    }
}

pub static SERIES_TYPE: RedisType =
    RedisType::new("rc-series", Series::ENCVER, datatype::methods::<Series>());
