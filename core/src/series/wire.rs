//! The byte formats of a series: the snapshot (RDB, DUMP, AOF rewrite) and the effect
//! (replicated as `CANDLE.APPLY`). Both are versioned, and decoding checks everything a
//! write would have: untrusted bytes never make a series that breaks the rules.

use super::{DuplicatePolicy, Effect, LiveCandle, Series, Settings};
use crate::candle::Candle;
use crate::codec::{self, Reader};
use crate::error::{CoreError, CoreResult};
use crate::interval::Interval;
use crate::store::OfficialStore;

impl DuplicatePolicy {
    fn code(self) -> u8 {
        self as u8
    }
    fn from_code(c: u8) -> Option<Self> {
        [Self::Replace, Self::Keep, Self::Block]
            .get(c as usize)
            .copied()
    }
}

impl Series {
    /// Encodes the whole series (versioned) for RDB, DUMP and AOF rewrite.
    ///
    /// Version 2 is version 1 followed by the write stamp; a series without a stamp is
    /// written as version 1, so data that never had one keeps its bytes (and its digest).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(if self.stamp.is_some() {
            SNAPSHOT_V2
        } else {
            SNAPSHOT_V1
        });
        put_settings(out, &self.settings);
        // The chunked store's own encoding: sealed chunks are written as they are in memory.
        let mut official = Vec::new();
        self.official.encode(&mut official);
        codec::put_bytes(out, &official);
        put_live(out, self.live.values());
        if let Some(t) = self.stamp {
            codec::put_i64(out, t);
        }
    }

    pub fn decode(bytes: &[u8]) -> CoreResult<Series> {
        let mut r = Reader::new(bytes);
        let v = r.u8()?;
        if v != SNAPSHOT_V1 && v != SNAPSHOT_V2 {
            return Err(CoreError::corrupt(format!(
                "unknown series encoding version {v}"
            )));
        }
        let settings = get_settings(&mut r)?;
        let mut s = Series::new(settings);
        s.official = OfficialStore::decode(r.bytes()?)?;
        let mut last = None;
        for c in s.official.iter() {
            check_decoded(&c, settings.interval, &mut last)?;
        }
        let mut last_live = None;
        for l in get_live(&mut r)? {
            check_decoded(&l.candle, settings.interval, &mut last_live)?;
            s.live.insert(l.candle.open_time, l);
        }
        if v == SNAPSHOT_V2 {
            s.stamp = Some(r.i64()?);
        }
        if !r.is_empty() {
            return Err(CoreError::corrupt("trailing bytes after series"));
        }
        // Reads rely on it (officials, then live): `apply` never leaves a live candle at or
        // before the newest official.
        if let (Some(&first_live), Some(last)) = (s.live.keys().next(), s.official.last_time()) {
            if first_live <= last {
                return Err(CoreError::corrupt(
                    "live candle at or before the newest official",
                ));
            }
        }
        if s.live.len() as u64 > settings.live_max
            || (settings.retention > 0 && s.official.len() as u64 > settings.retention)
        {
            return Err(CoreError::corrupt("series exceeds its own limits"));
        }
        Ok(s)
    }
}

const SNAPSHOT_V1: u8 = 1;
/// Adds the write stamp.
const SNAPSHOT_V2: u8 = 2;
const EFFECT_V1: u8 = 1;
/// Adds the write clock (effects in AOF files written before it are version 1).
const EFFECT_V2: u8 = 2;

fn check_decoded(c: &Candle, i: Interval, last: &mut Option<i64>) -> CoreResult<()> {
    c.validate(i)
        .map_err(|e| CoreError::corrupt(format!("stored candle invalid: {e}")))?;
    if last.is_some_and(|l| c.open_time <= l) {
        return Err(CoreError::corrupt("stored candles out of order"));
    }
    *last = Some(c.open_time);
    Ok(())
}

fn put_settings(out: &mut Vec<u8>, s: &Settings) {
    out.push(s.interval.code());
    out.push(s.policy.code());
    codec::put_u64(out, s.retention);
    codec::put_u64(out, s.live_ttl_s);
    codec::put_u64(out, s.live_max);
}

fn get_settings(r: &mut Reader<'_>) -> CoreResult<Settings> {
    let interval =
        Interval::from_code(r.u8()?).ok_or_else(|| CoreError::corrupt("unknown interval code"))?;
    let policy = DuplicatePolicy::from_code(r.u8()?)
        .ok_or_else(|| CoreError::corrupt("unknown policy code"))?;
    let s = Settings {
        interval,
        policy,
        retention: r.u64()?,
        live_ttl_s: r.u64()?,
        live_max: r.u64()?,
    };
    s.validate()
        .map_err(|e| CoreError::corrupt(format!("bad settings: {e}")))?;
    Ok(s)
}

fn put_live<'a>(out: &mut Vec<u8>, live: impl ExactSizeIterator<Item = &'a LiveCandle>) {
    codec::put_u64(out, live.len() as u64);
    for l in live {
        codec::put_i64(out, l.updated_ms);
        codec::put_candle(out, &l.candle);
    }
}

fn get_live(r: &mut Reader<'_>) -> CoreResult<Vec<LiveCandle>> {
    let n = r.count(codec::MIN_CANDLE_BYTES + 1)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let updated_ms = r.i64()?;
        v.push(LiveCandle {
            updated_ms,
            candle: codec::get_candle(r)?,
        });
    }
    Ok(v)
}

impl Effect {
    /// Versioned binary form, replicated as `CANDLE.APPLY key <blob>`.
    /// Version 2 is version 1 followed by the clock; an effect without one is version 1.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(if self.clock.is_some() {
            EFFECT_V2
        } else {
            EFFECT_V1
        });
        match &self.create {
            Some(s) => {
                out.push(1);
                put_settings(out, s);
            }
            None => out.push(0),
        }
        codec::put_u64(out, self.official.len() as u64);
        codec::put_candles(out, &self.official);
        codec::put_u64(out, self.live_drop.len() as u64);
        for t in &self.live_drop {
            codec::put_i64(out, *t);
        }
        put_live(out, self.live_put.iter());
        if let Some(t) = self.clock {
            codec::put_i64(out, t);
        }
    }

    /// Decodes and validates an effect against the interval it will be applied to.
    pub fn decode(bytes: &[u8]) -> CoreResult<Effect> {
        let mut r = Reader::new(bytes);
        let v = r.u8()?;
        if v != EFFECT_V1 && v != EFFECT_V2 {
            return Err(CoreError::corrupt(format!(
                "unknown effect encoding version {v}"
            )));
        }
        let create = match r.u8()? {
            0 => None,
            1 => Some(get_settings(&mut r)?),
            _ => return Err(CoreError::corrupt("bad effect header")),
        };
        let n = r.count(codec::MIN_CANDLE_BYTES)?;
        let mut official = Vec::with_capacity(n);
        for _ in 0..n {
            official.push(codec::get_candle(&mut r)?);
        }
        let n = r.count(1)?;
        let mut live_drop = Vec::with_capacity(n);
        for _ in 0..n {
            live_drop.push(r.i64()?);
        }
        let live_put = get_live(&mut r)?;
        let clock = if v == EFFECT_V2 { Some(r.i64()?) } else { None };
        if !r.is_empty() {
            return Err(CoreError::corrupt("trailing bytes after effect"));
        }
        Ok(Effect {
            create,
            official,
            live_drop,
            live_put,
            clock,
        })
    }

    /// Checks every candle against the series' interval before the effect is applied.
    pub fn validate(&self, interval: Interval) -> CoreResult<()> {
        for c in self
            .official
            .iter()
            .chain(self.live_put.iter().map(|l| &l.candle))
        {
            c.validate(interval)?;
        }
        Ok(())
    }
}
