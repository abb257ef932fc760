//! Candle intervals and their alignment: fixed lengths since the epoch, `1w` on Mondays,
//! `1M` on the first of each calendar month (UTC).

use crate::error::{CoreError, CoreResult};

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// 1970-01-01 was a Thursday; the first Monday is 1970-01-05.
const FIRST_MONDAY: i64 = 4 * DAY;

/// Latest accepted open time: 9999-12-01T00:00:00Z, so `next()` of any valid time fits.
pub const MAX_TIME: i64 = 253_399_622_400_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interval {
    S1,
    M1,
    M3,
    M5,
    M15,
    M30,
    H1,
    H2,
    H4,
    H6,
    H8,
    H12,
    D1,
    D3,
    W1,
    Mo1,
}

pub const ALL: [Interval; 16] = [
    Interval::S1,
    Interval::M1,
    Interval::M3,
    Interval::M5,
    Interval::M15,
    Interval::M30,
    Interval::H1,
    Interval::H2,
    Interval::H4,
    Interval::H6,
    Interval::H8,
    Interval::H12,
    Interval::D1,
    Interval::D3,
    Interval::W1,
    Interval::Mo1,
];

impl Interval {
    /// Binance spelling; case matters (`1m` is a minute, `1M` a month).
    pub fn parse(s: &str) -> CoreResult<Interval> {
        ALL.iter()
            .copied()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| {
                CoreError::invalid(format!(
                "unknown interval '{s}' (one of 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M)"
            ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "1s",
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H6 => "6h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
            Interval::D3 => "3d",
            Interval::W1 => "1w",
            Interval::Mo1 => "1M",
        }
    }

    /// Stable small number for encodings.
    pub fn code(self) -> u8 {
        ALL.iter().position(|&i| i == self).unwrap_or(0) as u8
    }

    pub fn from_code(c: u8) -> Option<Interval> {
        ALL.get(c as usize).copied()
    }

    /// Length in ms of every bucket, or None for `1M` (calendar months vary).
    #[inline]
    pub fn fixed_ms(self) -> Option<i64> {
        Some(match self {
            Interval::S1 => SEC,
            Interval::M1 => MIN,
            Interval::M3 => 3 * MIN,
            Interval::M5 => 5 * MIN,
            Interval::M15 => 15 * MIN,
            Interval::M30 => 30 * MIN,
            Interval::H1 => HOUR,
            Interval::H2 => 2 * HOUR,
            Interval::H4 => 4 * HOUR,
            Interval::H6 => 6 * HOUR,
            Interval::H8 => 8 * HOUR,
            Interval::H12 => 12 * HOUR,
            Interval::D1 => DAY,
            Interval::D3 => 3 * DAY,
            Interval::W1 => WEEK,
            Interval::Mo1 => return None,
        })
    }

    /// Start of the bucket holding `t` (`t` in `0..=MAX_TIME`).
    // Inlined (with `is_aligned` and `next`) into the checks of every candle written; the
    // calendar arithmetic of months stays out of line.
    #[inline]
    pub fn align_down(self, t: i64) -> i64 {
        match self {
            Interval::W1 => FIRST_MONDAY + (t - FIRST_MONDAY).div_euclid(WEEK) * WEEK,
            Interval::Mo1 => month_start(t),
            other => {
                let len = other.fixed_ms().unwrap_or(MIN);
                t.div_euclid(len) * len
            }
        }
    }

    #[inline]
    pub fn is_aligned(self, t: i64) -> bool {
        self.align_down(t) == t
    }

    /// Open time of the bucket after the aligned `t`.
    #[inline]
    pub fn next(self, t: i64) -> i64 {
        match self.fixed_ms() {
            Some(len) => t.saturating_add(len),
            None => next_month_start(t),
        }
    }

    /// Open time of the bucket before the aligned `t`.
    pub fn prev(self, t: i64) -> i64 {
        match self.fixed_ms() {
            Some(len) => t.saturating_sub(len),
            None => self.align_down(t - 1),
        }
    }

    /// Binance's close time of the bucket opened at `t`: the last ms inside it.
    pub fn close_time(self, t: i64) -> i64 {
        self.next(t) - 1
    }

    /// Checks an open time: inside the supported range and aligned to this interval.
    pub fn check_open_time(self, t: i64) -> CoreResult<()> {
        if !(0..=MAX_TIME).contains(&t) || !self.is_aligned(t) {
            // Out of line: checked once per candle of every write, the text built only
            // for a bad one.
            return Err(self.open_time_error(t));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn open_time_error(self, t: i64) -> CoreError {
        if !(0..=MAX_TIME).contains(&t) {
            return CoreError::invalid(format!("time {t} is out of range (0..={MAX_TIME} ms)"));
        }
        CoreError::invalid(format!(
            "time {t} is not aligned to interval {} (nearest earlier open time: {})",
            self.as_str(),
            self.align_down(t)
        ))
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Start of the calendar month holding `t`.
#[inline(never)]
fn month_start(t: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(DAY));
    days_from_civil(y, m, 1) * DAY
}

/// Start of the calendar month after the one holding `t`.
#[inline(never)]
fn next_month_start(t: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(DAY));
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1) * DAY
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian, days since 1970-01-01).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_binance_interval() {
        for i in ALL {
            assert_eq!(Interval::parse(i.as_str()).unwrap(), i);
            assert_eq!(Interval::from_code(i.code()), Some(i));
        }
        assert!(Interval::parse("2m").is_err());
        assert!(Interval::parse("1H").is_err());
        assert!(Interval::parse("").is_err());
    }

    #[test]
    fn fixed_alignment() {
        // 2024-09-04 02:27:00 UTC, first row of the 1m fixture.
        let t = 1_725_416_820_000;
        assert!(Interval::M1.is_aligned(t));
        assert!(!Interval::M5.is_aligned(t));
        assert_eq!(Interval::M5.align_down(t), 1_725_416_700_000);
        assert_eq!(Interval::M1.close_time(t), t + 59_999);
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2024-09-02 is a Monday.
        let monday = 1_725_235_200_000;
        assert!(Interval::W1.is_aligned(monday));
        assert!(!Interval::W1.is_aligned(monday + DAY));
        assert_eq!(Interval::W1.align_down(monday + 3 * DAY + 5), monday);
        assert_eq!(Interval::W1.next(monday), monday + WEEK);
    }

    #[test]
    fn months_follow_the_calendar() {
        let feb_2024 = 1_706_745_600_000; // 2024-02-01
        let mar_2024 = 1_709_251_200_000; // 2024-03-01 (leap year: 29 days later)
        assert!(Interval::Mo1.is_aligned(feb_2024));
        assert!(!Interval::Mo1.is_aligned(feb_2024 + DAY));
        assert_eq!(Interval::Mo1.next(feb_2024), mar_2024);
        assert_eq!(Interval::Mo1.prev(mar_2024), feb_2024);
        assert_eq!(Interval::Mo1.align_down(mar_2024 - 1), feb_2024);
        assert_eq!(Interval::Mo1.close_time(feb_2024), mar_2024 - 1);
        let dec_2023 = 1_701_388_800_000;
        let jan_2024 = 1_704_067_200_000;
        assert_eq!(Interval::Mo1.next(dec_2023), jan_2024);
        assert_eq!(Interval::Mo1.prev(jan_2024), dec_2023);
        assert!(Interval::Mo1.is_aligned(0));
        assert!(Interval::Mo1.is_aligned(MAX_TIME));
    }

    #[test]
    fn range_checks() {
        assert!(Interval::M1.check_open_time(-60_000).is_err());
        assert!(Interval::M1.check_open_time(MAX_TIME + 60_000).is_err());
        assert!(Interval::M1.check_open_time(1).is_err());
        assert!(Interval::M1.check_open_time(60_000).is_ok());
    }
}
