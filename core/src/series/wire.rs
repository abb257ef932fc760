//! The byte formats of a series: the snapshot (RDB, DUMP, AOF rewrite) and the effect
//! (replicated as `CANDLE.APPLY`). Both are versioned, and decoding checks everything a
//! write would have: untrusted bytes never make a series that breaks the rules.

use super::{DuplicatePolicy, Effect, LiveCandle, Sealed, Series, Settings};
use crate::align::{Align, Buckets};
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
    /// Version 2 is version 1 followed by the write stamp; version 3 (a series with an
    /// alignment or links, R8) adds those. Each series is written in the oldest version that
    /// holds it, so data that never used a newer field keeps its bytes (and its digest).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let v3 =
            self.settings.align != Align::Utc || self.source.is_some() || !self.feeds.is_empty();
        out.push(match (v3, self.stamp) {
            (true, _) => SNAPSHOT_V3,
            (false, Some(_)) => SNAPSHOT_V2,
            (false, None) => SNAPSHOT_V1,
        });
        put_settings(out, &self.settings, v3);
        // The chunked store's own encoding: sealed chunks are written as they are in memory.
        let mut official = Vec::new();
        self.official.encode(&mut official);
        codec::put_bytes(out, &official);
        put_live(out, self.live.values());
        if v3 {
            put_opt_i64(out, self.stamp);
            put_links(out, self.source.as_deref(), Some(&self.feeds));
        } else if let Some(t) = self.stamp {
            codec::put_i64(out, t);
        }
    }

    pub fn decode(bytes: &[u8]) -> CoreResult<Series> {
        let mut r = Reader::new(bytes);
        let v = r.u8()?;
        if !(SNAPSHOT_V1..=SNAPSHOT_V3).contains(&v) {
            return Err(CoreError::corrupt(format!(
                "unknown series encoding version {v}"
            )));
        }
        let settings = get_settings(&mut r, v == SNAPSHOT_V3)?;
        let buckets = settings.buckets();
        let mut s = Series::new(settings);
        s.official = OfficialStore::decode(r.bytes()?)?;
        let mut last = None;
        for c in s.official.iter() {
            check_decoded(&c, buckets, &mut last)?;
        }
        let mut last_live = None;
        for l in get_live(&mut r)? {
            check_decoded(&l.candle, buckets, &mut last_live)?;
            s.live.insert(l.candle.open_time, l);
        }
        match v {
            SNAPSHOT_V2 => s.stamp = Some(r.i64()?),
            SNAPSHOT_V3 => {
                s.stamp = get_opt_i64(&mut r)?;
                let (source, feeds) = get_links(&mut r)?;
                s.source = source;
                s.feeds = feeds.unwrap_or_default();
            }
            _ => {}
        }
        s.official.set_streamed(s.source.is_some());
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
/// Adds the alignment and the links of derived series (the stamp optional).
const SNAPSHOT_V3: u8 = 3;
const EFFECT_V1: u8 = 1;
/// Adds the write clock (effects in AOF files written before it are version 1).
const EFFECT_V2: u8 = 2;
/// Adds the alignment of a created series and link changes (the clock optional).
const EFFECT_V3: u8 = 3;
/// Version 3 with the official candles as sealed chunks (the store's encoding).
const EFFECT_V4: u8 = 4;
/// Most series one series may feed.
pub const MAX_FEEDS: usize = 64;

fn put_opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(t) => {
            out.push(1);
            codec::put_i64(out, t);
        }
        None => out.push(0),
    }
}

fn get_opt_i64(r: &mut Reader<'_>) -> CoreResult<Option<i64>> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.i64()?)),
        _ => Err(CoreError::corrupt("bad optional time")),
    }
}

fn put_links(out: &mut Vec<u8>, source: Option<&[u8]>, feeds: Option<&Vec<Vec<u8>>>) {
    match source {
        Some(s) => {
            out.push(1);
            codec::put_bytes(out, s);
        }
        None => out.push(0),
    }
    match feeds {
        Some(f) => {
            out.push(1);
            codec::put_u64(out, f.len() as u64);
            for k in f {
                codec::put_bytes(out, k);
            }
        }
        None => out.push(0),
    }
}

type Links = (Option<Vec<u8>>, Option<Vec<Vec<u8>>>);

fn get_links(r: &mut Reader<'_>) -> CoreResult<Links> {
    // Any key name a link was made with or renamed to reads back (its length is checked
    // against the payload, like every length here).
    let name = |r: &mut Reader<'_>| -> CoreResult<Vec<u8>> { Ok(r.bytes()?.to_vec()) };
    let source = match r.u8()? {
        0 => None,
        1 => Some(name(r)?),
        _ => return Err(CoreError::corrupt("bad source link")),
    };
    let feeds = match r.u8()? {
        0 => None,
        1 => {
            let n = r.count(1)?;
            if n > MAX_FEEDS {
                return Err(CoreError::corrupt("too many derived series"));
            }
            Some((0..n).map(|_| name(r)).collect::<CoreResult<Vec<_>>>()?)
        }
        _ => return Err(CoreError::corrupt("bad feed links")),
    };
    Ok((source, feeds))
}

fn check_decoded(c: &Candle, i: Buckets, last: &mut Option<i64>) -> CoreResult<()> {
    c.validate(i)
        .map_err(|e| CoreError::corrupt(format!("stored candle invalid: {e}")))?;
    if last.is_some_and(|l| c.open_time <= l) {
        return Err(CoreError::corrupt("stored candles out of order"));
    }
    *last = Some(c.open_time);
    Ok(())
}

/// The settings; with `align`, followed by the alignment (versions 3).
fn put_settings(out: &mut Vec<u8>, s: &Settings, align: bool) {
    out.push(s.interval.code());
    out.push(s.policy.code());
    codec::put_u64(out, s.retention);
    codec::put_u64(out, s.live_ttl_s);
    codec::put_u64(out, s.live_max);
    if align {
        match s.align {
            Align::Utc => out.push(0),
            Align::Offset(secs) => {
                out.push(1);
                codec::put_i64(out, i64::from(secs));
            }
            Align::Zone(tz) => {
                out.push(2);
                codec::put_bytes(out, tz.name().as_bytes());
            }
        }
    }
}

fn get_align(r: &mut Reader<'_>) -> CoreResult<Align> {
    match r.u8()? {
        0 => Ok(Align::Utc),
        1 => {
            let secs = i32::try_from(r.i64()?).map_err(|_| CoreError::corrupt("bad offset"))?;
            Ok(Align::Offset(secs))
        }
        2 => {
            let name = std::str::from_utf8(r.bytes()?)
                .map_err(|_| CoreError::corrupt("bad time zone name"))?;
            Align::parse_zone(name).map_err(|e| CoreError::corrupt(e.message().to_string()))
        }
        _ => Err(CoreError::corrupt("unknown alignment")),
    }
}

fn get_settings(r: &mut Reader<'_>, align: bool) -> CoreResult<Settings> {
    let interval =
        Interval::from_code(r.u8()?).ok_or_else(|| CoreError::corrupt("unknown interval code"))?;
    let policy = DuplicatePolicy::from_code(r.u8()?)
        .ok_or_else(|| CoreError::corrupt("unknown policy code"))?;
    let mut s = Settings {
        interval,
        align: Align::Utc,
        policy,
        retention: r.u64()?,
        live_ttl_s: r.u64()?,
        live_max: r.u64()?,
    };
    if align {
        s.align = get_align(r)?;
    }
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
    /// Version 2 is version 1 followed by the clock; version 3 (a created series with an
    /// alignment, or link changes) carries those; version 4 is version 3 with the official
    /// candles as the sealed chunks that hold them ([`encode_after`](Self::encode_after)).
    /// Each effect is written in the oldest version that holds it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_with(out, None);
    }

    /// [`encode`](Self::encode) for an effect just applied to `s`: when its official
    /// candles are exactly the chunks the write sealed (a bulk append: a REST page, a derived
    /// level's buckets), they go as those chunks' bytes (version 4), copied, not encoded
    /// again: ~3x fewer bytes than candle records, and no record encoding on the write path.
    /// A replica decodes them to the same candles and applies the same effect.
    pub fn encode_after(&self, s: &Series, out: &mut Vec<u8>) {
        let ascending = crate::candle::strictly_ascending(&self.official);
        let (Some(first), Some(last)) = (self.official.first(), self.official.last()) else {
            return self.encode(out);
        };
        if !ascending || s.official.last_time() != Some(last.open_time) {
            return self.encode(out);
        }
        // Sealed chunks are ~20 B per candle; put_bytes prefixes the length.
        let mut sealed = Vec::new();
        if s.official
            .encode_newest(first.open_time, self.official.len(), &mut sealed)
        {
            self.encode_with(out, Some(&sealed));
        } else {
            self.encode(out);
        }
    }

    /// `sealed`: the official candles as a store encoding (version 4), else as records.
    fn encode_with(&self, out: &mut Vec<u8>, sealed: Option<&[u8]>) {
        let v3 = sealed.is_some()
            || self.source.is_some()
            || self.feeds.is_some()
            || self.create.is_some_and(|c| c.align != Align::Utc);
        out.push(match (sealed.is_some(), v3, self.clock) {
            (true, _, _) => EFFECT_V4,
            (false, true, _) => EFFECT_V3,
            (false, false, Some(_)) => EFFECT_V2,
            (false, false, None) => EFFECT_V1,
        });
        match &self.create {
            Some(s) => {
                out.push(1);
                put_settings(out, s, v3);
            }
            None => out.push(0),
        }
        match sealed {
            Some(b) => codec::put_bytes(out, b),
            None => {
                codec::put_u64(out, self.official.len() as u64);
                codec::put_candles(out, &self.official);
            }
        }
        codec::put_u64(out, self.live_drop.len() as u64);
        for t in &self.live_drop {
            codec::put_i64(out, *t);
        }
        put_live(out, self.live_put.iter());
        if v3 {
            put_opt_i64(out, self.clock);
            put_links(out, self.source.as_deref(), self.feeds.as_ref());
        } else if let Some(t) = self.clock {
            codec::put_i64(out, t);
        }
    }

    /// Decodes and validates an effect against the interval it will be applied to.
    pub fn decode(bytes: &[u8]) -> CoreResult<Effect> {
        let mut r = Reader::new(bytes);
        let v = r.u8()?;
        if !(EFFECT_V1..=EFFECT_V4).contains(&v) {
            return Err(CoreError::corrupt(format!(
                "unknown effect encoding version {v}"
            )));
        }
        let create = match r.u8()? {
            0 => None,
            1 => Some(get_settings(&mut r, v >= EFFECT_V3)?),
            _ => return Err(CoreError::corrupt("bad effect header")),
        };
        let (official, sealed) = if v == EFFECT_V4 {
            // Chunks checked as an RDB's are (ascending, counts agree); the candles then as
            // records' are (`validate`). The chunks are kept: `apply` installs them.
            let (store, candles) = OfficialStore::decode_with_candles(r.bytes()?)?;
            (candles, Sealed(Some(Box::new(store))))
        } else {
            let n = r.count(codec::MIN_CANDLE_BYTES)?;
            let mut official = Vec::with_capacity(n);
            for _ in 0..n {
                official.push(codec::get_candle(&mut r)?);
            }
            (official, Sealed::default())
        };
        let n = r.count(1)?;
        let mut live_drop = Vec::with_capacity(n);
        for _ in 0..n {
            live_drop.push(r.i64()?);
        }
        let live_put = get_live(&mut r)?;
        let (clock, (source, feeds)) = match v {
            EFFECT_V3 | EFFECT_V4 => (get_opt_i64(&mut r)?, get_links(&mut r)?),
            EFFECT_V2 => (Some(r.i64()?), (None, None)),
            _ => (None, (None, None)),
        };
        if !r.is_empty() {
            return Err(CoreError::corrupt("trailing bytes after effect"));
        }
        Ok(Effect {
            create,
            official,
            live_drop,
            live_put,
            clock,
            source,
            feeds,
            sealed,
        })
    }

    /// Checks every candle against the series' interval before the effect is applied.
    pub fn validate(&self, buckets: impl Into<Buckets>) -> CoreResult<()> {
        let interval = buckets.into();
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
