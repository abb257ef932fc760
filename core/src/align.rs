//! Where a series' buckets start: an interval plus an alignment. UTC by default (SPEC §2);
//! `ALIGN ±HH:MM` shifts every bucket by a fixed offset (Binance's `timeZone`);
//! `TIMEZONE Area/City` starts days, weeks (Mondays) and months at local midnight of an IANA
//! zone, daylight saving included, so a local day may last 23 or 25 hours.
//!
//! Also the nesting rule of derived series (SPEC §2a): every source bucket must lie in exactly
//! one destination bucket, which holds when every destination boundary is a source boundary.

use crate::error::{CoreError, CoreResult};
use crate::interval::{Interval, MAX_TIME};
use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;

const SEC: i64 = 1_000;
const HOUR: i64 = 3_600 * SEC;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// 1970-01-05, the first Monday: where `1w` buckets count from.
const FIRST_MONDAY: i64 = 4 * DAY;
/// Largest fixed offset: ±14:00, as far as any zone goes.
pub const MAX_OFFSET_S: i32 = 14 * 3_600;

/// How buckets are placed in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Align {
    #[default]
    Utc,
    /// Local time = UTC + this many seconds (non-zero, within ±14:00, whole minutes).
    Offset(i32),
    /// Local midnight of an IANA zone (days, weeks and months only).
    Zone(Tz),
}

impl Align {
    /// `±HH:MM` (also `±HHMM`, `±HH`), as Binance's `timeZone` takes it; `+00:00` is UTC.
    pub fn parse_offset(s: &str) -> CoreResult<Align> {
        let bad = || {
            CoreError::invalid(format!(
                "ALIGN '{s}' is not an offset like +05:30 or -08:00 (within -14:00 to +14:00)"
            ))
        };
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, s.get(1..).ok_or_else(bad)?),
            Some(b'-') => (-1, s.get(1..).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "0"),
        };
        let all_digits =
            |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(h) || !all_digits(m) {
            return Err(bad());
        }
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        let secs = sign * (h * 3_600 + m * 60);
        if m >= 60 || secs.abs() > MAX_OFFSET_S {
            return Err(bad());
        }
        Ok(if secs == 0 {
            Align::Utc
        } else {
            Align::Offset(secs)
        })
    }

    /// An IANA zone name (`Europe/Berlin`, `America/New_York`, `UTC`).
    pub fn parse_zone(s: &str) -> CoreResult<Align> {
        s.parse::<Tz>().map(Align::Zone).map_err(|_| {
            CoreError::invalid(format!(
                "TIMEZONE '{s}' is not an IANA time zone name (such as Europe/Berlin)"
            ))
        })
    }

    /// `UTC`, `+05:30`, or the zone's name (what INFO shows; `parse_*` reads it back).
    pub fn name(&self) -> String {
        match self {
            Align::Utc => "UTC".to_string(),
            Align::Offset(s) => {
                let sign = if *s < 0 { '-' } else { '+' };
                let a = s.unsigned_abs();
                format!("{sign}{:02}:{:02}", a / 3_600, a % 3_600 / 60)
            }
            Align::Zone(tz) => tz.name().to_string(),
        }
    }
}

/// The UTC offset (ms) of `tz` at the instant `t` (ms).
fn zone_offset_ms(tz: Tz, t: i64) -> i64 {
    match DateTime::from_timestamp_millis(t) {
        Some(d) => {
            i64::from(
                tz.offset_from_utc_datetime(&d.naive_utc())
                    .fix()
                    .local_minus_utc(),
            ) * SEC
        }
        None => 0,
    }
}

/// An interval with its alignment: the buckets of one series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Buckets {
    pub interval: Interval,
    pub align: Align,
}

impl From<Interval> for Buckets {
    fn from(interval: Interval) -> Buckets {
        Buckets {
            interval,
            align: Align::Utc,
        }
    }
}

impl Buckets {
    pub fn new(interval: Interval, align: Align) -> CoreResult<Buckets> {
        if let Align::Zone(_) = align {
            if !matches!(interval, Interval::D1 | Interval::W1 | Interval::Mo1) {
                return Err(CoreError::invalid(format!(
                    "TIMEZONE aligns 1d, 1w and 1M buckets, not {interval} (use ALIGN +HH:MM or -HH:MM)"
                )));
            }
        }
        if let Align::Offset(s) = align {
            if s.abs() > MAX_OFFSET_S || s % 60 != 0 {
                return Err(CoreError::invalid("ALIGN offset out of range"));
            }
        }
        Ok(Buckets { interval, align })
    }

    /// Start of the bucket holding `t` (`t` in `0..=MAX_TIME`; the start may be negative).
    #[inline]
    pub fn align_down(self, t: i64) -> i64 {
        match self.align {
            Align::Utc => self.interval.align_down(t),
            Align::Offset(s) => {
                let o = i64::from(s) * SEC;
                self.interval.align_down(t + o) - o
            }
            Align::Zone(tz) => zone_align_down(tz, self.interval, t),
        }
    }

    #[inline]
    /// The length of every bucket, when they are all one length (fixed intervals outside
    /// time zones): then `next(t) == t + len` for every aligned `t`.
    pub fn step(self) -> Option<i64> {
        match self.align {
            Align::Zone(_) => None,
            Align::Utc | Align::Offset(_) => self.interval.fixed_ms(),
        }
    }

    pub fn is_aligned(self, t: i64) -> bool {
        self.align_down(t) == t
    }

    /// Open time of the bucket after the aligned `t`.
    #[inline]
    pub fn next(self, t: i64) -> i64 {
        match self.align {
            Align::Utc => self.interval.next(t),
            Align::Offset(s) => {
                let o = i64::from(s) * SEC;
                self.interval.next(t + o) - o
            }
            Align::Zone(tz) => zone_next(tz, self.interval, t),
        }
    }

    /// Open time of the bucket before the aligned `t`.
    pub fn prev(self, t: i64) -> i64 {
        match (self.align, self.interval.fixed_ms()) {
            (Align::Zone(_), _) | (_, None) => self.align_down(t - 1),
            (_, Some(len)) => t.saturating_sub(len),
        }
    }

    /// The last ms inside the bucket opened at `t`.
    pub fn close_time(self, t: i64) -> i64 {
        self.next(t) - 1
    }

    /// Checks an open time: inside the supported range and aligned.
    pub fn check_open_time(self, t: i64) -> CoreResult<()> {
        if let Align::Utc = self.align {
            return self.interval.check_open_time(t);
        }
        if !(0..=MAX_TIME).contains(&t) {
            return Err(CoreError::invalid(format!(
                "time {t} is out of range (0..={MAX_TIME} ms)"
            )));
        }
        if !self.is_aligned(t) {
            return Err(CoreError::invalid(format!(
                "time {t} is not aligned to interval {} {} (nearest earlier open time: {})",
                self.interval,
                self.align.name(),
                self.align_down(t)
            )));
        }
        Ok(())
    }

    /// SPEC §2a: whether every bucket of `self` (the source) lies in exactly one bucket of
    /// `dst`, i.e. every boundary of `dst` is one of `self`. The error says why not.
    pub fn check_nests_in(self, dst: Buckets) -> CoreResult<()> {
        let refuse = |why: &str| {
            Err(CoreError::rejected(format!(
                "a {} series cannot be derived from a {} series: {why}",
                dst.describe(),
                self.describe()
            )))
        };
        if nominal_ms(dst.interval) <= nominal_ms(self.interval) {
            return refuse("the derived interval must be longer than the source's");
        }
        let src_len = self.interval.fixed_ms();
        match (self.align, dst.align) {
            (Align::Zone(a), Align::Zone(b)) => {
                if a != b {
                    return refuse("the two time zones differ");
                }
                // Local days tile local weeks and months; local weeks do not tile months.
                if self.interval == Interval::D1 {
                    Ok(())
                } else {
                    refuse("weeks do not divide months")
                }
            }
            (Align::Zone(_), _) => refuse("zone days do not nest in fixed-offset buckets"),
            (src_align, Align::Zone(tz)) => {
                // Every local midnight must be a source boundary: the source's length must
                // divide every offset the zone has had since 1970, relative to the source's.
                let Some(len) = src_len.filter(|l| DAY % l == 0) else {
                    return refuse("the source's buckets do not divide a day");
                };
                let src_off = fixed_offset_ms(src_align);
                match zone_offsets(tz)
                    .into_iter()
                    .find(|o| (o - src_off).rem_euclid(len) != 0)
                {
                    Some(o) => refuse(&format!(
                        "{} has been at UTC{}, which does not fall on a {} boundary",
                        tz.name(),
                        Align::Offset((o / SEC) as i32).name(),
                        self.interval
                    )),
                    None => Ok(()),
                }
            }
            (src_align, dst_align) => {
                let Some(len) = src_len else {
                    return refuse("nothing longer than a month");
                };
                let (so, d_o) = (fixed_offset_ms(src_align), fixed_offset_ms(dst_align));
                match dst.interval.fixed_ms() {
                    // Boundaries base + k * L - offset (1w counts from the first Monday).
                    Some(dlen) => {
                        let base = |i: Interval| if i == Interval::W1 { FIRST_MONDAY } else { 0 };
                        let shift = (base(dst.interval) - d_o) - (base(self.interval) - so);
                        if dlen % len != 0 {
                            refuse("its length is not a multiple of the source's")
                        } else if shift.rem_euclid(len) != 0 {
                            refuse("their alignments differ")
                        } else {
                            Ok(())
                        }
                    }
                    // Months start at (local) midnight.
                    None => {
                        if DAY % len != 0 {
                            refuse("the source's buckets do not divide a day")
                        } else if (so - d_o).rem_euclid(len) != 0 {
                            refuse("their alignments differ")
                        } else {
                            Ok(())
                        }
                    }
                }
            }
        }
    }

    /// `1d`, `1d +05:30`, `1M Europe/Berlin`.
    pub fn describe(self) -> String {
        match self.align {
            Align::Utc => self.interval.to_string(),
            a => format!("{} {}", self.interval, a.name()),
        }
    }
}

/// A bucket length to order intervals by (a month counts as 28 days, still above 3d and 1w).
fn nominal_ms(i: Interval) -> i64 {
    i.fixed_ms().unwrap_or(28 * DAY)
}

fn fixed_offset_ms(a: Align) -> i64 {
    match a {
        Align::Offset(s) => i64::from(s) * SEC,
        _ => 0,
    }
}

/// Every UTC offset (ms) `tz` takes between 1970 and 2100, sampled twice a day (no zone
/// keeps an offset for less than a day).
fn zone_offsets(tz: Tz) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    let mut t = 0;
    while t < 130 * 365 * DAY {
        let o = zone_offset_ms(tz, t);
        if !out.contains(&o) {
            out.push(o);
        }
        t += DAY / 2;
    }
    out
}

/// Local midnight (ms since the epoch in local time) of the day holding local time `l`,
/// then of the week or month.
fn local_bucket_start(i: Interval, local: i64) -> i64 {
    let day = local.div_euclid(DAY) * DAY;
    match i {
        Interval::W1 => FIRST_MONDAY + (day - FIRST_MONDAY).div_euclid(WEEK) * WEEK,
        Interval::Mo1 => Interval::Mo1.align_down(day),
        _ => day,
    }
}

/// The first UTC instant whose local time is at or after local midnight `l` (a midnight that
/// daylight saving skips starts the day when the clocks jump).
fn utc_of_local(tz: Tz, l: i64) -> i64 {
    let local_of = |u: i64| u + zone_offset_ms(tz, u);
    // The usual case: the offset just before midnight holds at midnight.
    let guess = l - zone_offset_ms(tz, l - zone_offset_ms(tz, l));
    if local_of(guess) == l && local_of(guess - 1) < l {
        return guess;
    }
    // Otherwise the earliest instant whose local time reaches `l` (offsets stay within ±26h).
    let (mut lo, mut hi) = (l - 26 * HOUR, l + 26 * HOUR);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if local_of(mid) >= l {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

fn zone_align_down(tz: Tz, i: Interval, t: i64) -> i64 {
    let start = utc_of_local(tz, local_bucket_start(i, t + zone_offset_ms(tz, t)));
    // A day that starts after `t` in UTC can only come from a skipped midnight resolved late;
    // then `t` belongs to the bucket before.
    if start > t {
        utc_of_local(tz, local_bucket_start(i, t + zone_offset_ms(tz, t) - DAY))
    } else {
        start
    }
}

fn zone_next(tz: Tz, i: Interval, t: i64) -> i64 {
    let local_start = local_bucket_start(i, t + zone_offset_ms(tz, t));
    let local_next = match i {
        Interval::W1 => local_start + WEEK,
        Interval::Mo1 => Interval::Mo1.next(local_start),
        _ => local_start + DAY,
    };
    utc_of_local(tz, local_next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T2024_03_10: i64 = 1_710_028_800_000; // 2024-03-10T00:00:00Z, US DST starts that day

    fn b(i: &str, a: Align) -> Buckets {
        Buckets::new(Interval::parse(i).unwrap(), a).unwrap()
    }

    #[test]
    fn offsets_parse_and_print() {
        assert_eq!(
            Align::parse_offset("+05:30").unwrap(),
            Align::Offset(19_800)
        );
        assert_eq!(
            Align::parse_offset("-08:00").unwrap(),
            Align::Offset(-28_800)
        );
        assert_eq!(Align::parse_offset("+0545").unwrap(), Align::Offset(20_700));
        assert_eq!(Align::parse_offset("+8").unwrap(), Align::Offset(28_800));
        assert_eq!(Align::parse_offset("+00:00").unwrap(), Align::Utc);
        for bad in [
            "", "+", "05:30", "+15:00", "+05:60", "+5:3x", "+123:00", "++1",
        ] {
            assert!(Align::parse_offset(bad).is_err(), "{bad}");
        }
        assert_eq!(Align::Offset(19_800).name(), "+05:30");
        assert_eq!(Align::Offset(-34_200).name(), "-09:30");
        assert!(Align::parse_zone("Europe/Berlin").is_ok());
        assert!(Align::parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn fixed_offsets_shift_buckets() {
        let d = b("1d", Align::Offset(19_800));
        // 2024-03-10T00:00Z is 05:30 local: its local day began at 2024-03-09T18:30Z.
        let start = T2024_03_10 - 5 * HOUR - 30 * 60 * SEC;
        assert_eq!(d.align_down(T2024_03_10), start);
        assert_eq!(d.next(start), start + DAY);
        assert!(d.check_open_time(start).is_ok());
        assert!(d.check_open_time(T2024_03_10).is_err());
        // Hours shift by the half hour, whole-hour offsets leave them alone.
        assert_eq!(
            b("1h", Align::Offset(19_800)).align_down(T2024_03_10 + 10),
            T2024_03_10 - 30 * 60 * SEC
        );
        assert_eq!(
            b("1h", Align::Offset(28_800)).align_down(T2024_03_10 + 10),
            T2024_03_10
        );
    }

    #[test]
    fn zone_days_follow_daylight_saving() {
        let ny = Align::parse_zone("America/New_York").unwrap();
        let d = b("1d", ny);
        // 2024-03-10 in New York: midnight is 05:00Z (EST), the day lasts 23 hours.
        let start = T2024_03_10 + 5 * HOUR;
        assert_eq!(d.align_down(start + 3 * HOUR), start);
        assert_eq!(d.next(start), start + 23 * HOUR);
        assert_eq!(d.prev(start + 23 * HOUR), start);
        // 2024-11-03: 25 hours.
        let nov3 = 1_730_606_400_000; // 2024-11-03T04:00:00Z, EDT midnight
        assert_eq!(d.align_down(nov3 + 20 * HOUR), nov3);
        assert_eq!(d.next(nov3), nov3 + 25 * HOUR);
        // Weeks start on local Monday midnight, months on the 1st.
        let w = b("1w", ny);
        let mon = 1_709_528_400_000; // 2024-03-04T05:00:00Z, Monday midnight EST
        assert_eq!(w.align_down(T2024_03_10), mon);
        assert_eq!(w.next(mon), mon + WEEK - HOUR);
        let m = b("1M", ny);
        let apr1 = 1_711_944_000_000; // 2024-04-01T04:00:00Z (EDT)
        assert_eq!(m.next(m.align_down(T2024_03_10)), apr1);
        assert!(Buckets::new(Interval::H1, ny).is_err());
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_when_clocks_jump() {
        // America/Santiago skipped 2022-09-11 00:00 (to 01:00).
        let d = b("1d", Align::parse_zone("America/Santiago").unwrap());
        let jump = 1_662_868_800_000; // 2022-09-11T04:00:00Z = 01:00 -03
        assert_eq!(d.align_down(jump + HOUR), jump);
        assert_eq!(d.next(d.prev(jump)), jump);
        assert_eq!(d.next(jump), jump + 23 * HOUR);
    }

    #[test]
    fn nesting() {
        let utc = |i| b(i, Align::Utc);
        assert!(utc("1m").check_nests_in(utc("5m")).is_ok());
        assert!(utc("5m").check_nests_in(utc("3m")).is_err());
        assert!(utc("3m").check_nests_in(utc("5m")).is_err());
        assert!(utc("1d").check_nests_in(utc("1w")).is_ok());
        assert!(utc("1d").check_nests_in(utc("1M")).is_ok());
        assert!(utc("1w").check_nests_in(utc("1M")).is_err());
        assert!(utc("3d").check_nests_in(utc("1w")).is_err());
        assert!(utc("1h").check_nests_in(utc("1h")).is_err());
        assert!(utc("1h").check_nests_in(utc("1m")).is_err());
        let ist = Align::Offset(19_800);
        assert!(utc("30m").check_nests_in(b("1d", ist)).is_ok());
        assert!(utc("1h").check_nests_in(b("1d", ist)).is_err());
        assert!(b("1h", ist).check_nests_in(b("1d", ist)).is_ok());
        assert!(b("1d", ist).check_nests_in(b("1w", ist)).is_ok());
        assert!(b("1d", ist).check_nests_in(utc("1w")).is_err());
        let berlin = Align::parse_zone("Europe/Berlin").unwrap();
        assert!(utc("1h").check_nests_in(b("1d", berlin)).is_ok());
        assert!(b("1d", berlin).check_nests_in(b("1w", berlin)).is_ok());
        assert!(b("1d", berlin).check_nests_in(b("1M", berlin)).is_ok());
        assert!(b("1w", berlin).check_nests_in(b("1M", berlin)).is_err());
        assert!(utc("1d").check_nests_in(b("1w", berlin)).is_err());
        let kolkata = Align::parse_zone("Asia/Kolkata").unwrap();
        assert!(utc("1h").check_nests_in(b("1d", kolkata)).is_err());
        assert!(utc("30m").check_nests_in(b("1d", kolkata)).is_ok());
        let e = utc("1h").check_nests_in(b("1d", Align::parse_zone("Asia/Kathmandu").unwrap()));
        assert!(e.unwrap_err().message().contains("Kathmandu"));
    }
}
