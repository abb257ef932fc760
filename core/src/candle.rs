//! One candle (Binance kline) and its validation.

use crate::align::Buckets;
use crate::decimal::Dec;
use crate::error::{CoreError, CoreResult};
use crate::interval::Interval;

/// Which region a candle of a merged read came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CandleKind {
    Official,
    Live,
}

impl CandleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CandleKind::Official => "official",
            CandleKind::Live => "live",
        }
    }
}

/// A candle headed for the official region, with what its payload said about closing.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub candle: Candle,
    /// `Some(false)` for a WebSocket kline with `"x": false`.
    pub closed: Option<bool>,
}

/// OHLCV plus the optional extra Binance kline fields, exactly as given.
/// Every field is `Copy`, and so is the candle: a copy is one plain move of the struct (a
/// derived `Clone` alone would branch on every `Option`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Candle {
    pub open_time: i64,
    pub open: Dec,
    pub high: Dec,
    pub low: Dec,
    pub close: Dec,
    pub volume: Dec,
    pub close_time: Option<i64>,
    pub quote_volume: Option<Dec>,
    pub trades: Option<u64>,
    pub taker_buy_base: Option<Dec>,
    pub taker_buy_quote: Option<Dec>,
}

/// Most spare candle vectors kept per thread ([`recycle`]): one per level of a 5m → 1h → 1d
/// chain being derived (a tail's seal takes one too, and gives it back before it returns).
const SPARE_MAX: usize = 3;
/// Largest spare kept, in candles (~200 5m buckets in a 1000-row 1m page, 145 in a streamed
/// tail's seal; a back-fill's larger vectors are freed): at most ~400 KB per thread.
const SPARE_CAPACITY_MAX: usize = 512;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Vec<Candle>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty vector with room for `n` candles, a spare one ([`recycle`]) when there is one.
/// Candle vectors of a write's temporary work (a derived level's new candles, a tail being
/// sealed) run to tens of KB: fresh, such an allocation is often carved from pages never
/// touched before, and faulting those in cost about as much as the work done in them.
pub fn spare_vec(n: usize) -> Vec<Candle> {
    let mut v = SPARE
        .with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .unwrap_or_default();
    // Candles are large: one allocation, no regrowth copying them.
    v.reserve_exact(n);
    v
}

/// Hands back a vector the caller is done with (the cascade, once the levels below have
/// read a level's candles), emptied, for the next [`spare_vec`] on this thread.
pub fn recycle(mut v: Vec<Candle>) {
    if v.capacity() == 0 || v.capacity() > SPARE_CAPACITY_MAX {
        return;
    }
    v.clear();
    SPARE.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.len() < SPARE_MAX {
                s.push(v);
            }
        }
    });
}

/// Whether the candles' open times strictly ascend (no repeats): the shape of an append,
/// and of a batch each of whose candles is its own.
pub fn strictly_ascending(cs: &[Candle]) -> bool {
    cs.windows(2)
        .all(|w| matches!(w, [a, b] if a.open_time < b.open_time))
}

impl Candle {
    /// A candle with only OHLCV.
    pub fn ohlcv(open_time: i64, o: Dec, h: Dec, l: Dec, c: Dec, v: Dec) -> Candle {
        Candle {
            open_time,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
            close_time: None,
            quote_volume: None,
            trades: None,
            taker_buy_base: None,
            taker_buy_quote: None,
        }
    }

    /// Parses the positional form `t o h l c v` (all text).
    pub fn from_args(args: &[&[u8]]) -> CoreResult<Candle> {
        let [t, o, h, l, c, v] = args else {
            return Err(CoreError::invalid("a candle is 't o h l c v'"));
        };
        Ok(Candle::ohlcv(
            parse_time(t)?,
            Dec::parse_bytes(o)?,
            Dec::parse_bytes(h)?,
            Dec::parse_bytes(l)?,
            Dec::parse_bytes(c)?,
            Dec::parse_bytes(v)?,
        ))
    }

    /// The close time Binance would report: given, or the last ms of the bucket.
    pub fn effective_close_time(&self, buckets: impl Into<Buckets>) -> i64 {
        self.close_time
            .unwrap_or_else(|| buckets.into().close_time(self.open_time))
    }

    /// Rejects what no exchange could send: misaligned time, negative values, high below the
    /// body, low above it, a close time outside the bucket.
    pub fn validate(&self, buckets: impl Into<Buckets>) -> CoreResult<()> {
        let buckets = buckets.into();
        // The happy path only compares; each error is built out of line (`#[cold]`), so the
        // checks stay a few instructions per candle and the function small.
        buckets.check_open_time(self.open_time)?;
        let t = self.open_time;
        let any_negative = self.open.is_negative()
            | self.high.is_negative()
            | self.low.is_negative()
            | self.close.is_negative()
            | self.volume.is_negative()
            | self.quote_volume.is_some_and(|v| v.is_negative())
            | self.taker_buy_base.is_some_and(|v| v.is_negative())
            | self.taker_buy_quote.is_some_and(|v| v.is_negative());
        if any_negative {
            self.negative_error()?;
        }
        // `high < max(open, close)`, `low > min(open, close)`, without selecting the max/min.
        if self.high < self.open || self.high < self.close {
            return Err(self.high_error());
        }
        if self.low > self.open || self.low > self.close {
            return Err(self.low_error());
        }
        if let Some(ct) = self.close_time {
            if ct < t || ct >= buckets.next(t) {
                return Err(close_time_error(t, ct, buckets.interval));
            }
        }
        Ok(())
    }

    /// The error for the first negative field, in field order.
    #[cold]
    #[inline(never)]
    fn negative_error(&self) -> CoreResult<()> {
        let t = self.open_time;
        let named = [
            ("open", Some(self.open)),
            ("high", Some(self.high)),
            ("low", Some(self.low)),
            ("close", Some(self.close)),
            ("volume", Some(self.volume)),
            ("quote_volume", self.quote_volume),
            ("taker_buy_base", self.taker_buy_base),
            ("taker_buy_quote", self.taker_buy_quote),
        ];
        for (name, v) in named {
            if v.is_some_and(|v| v.is_negative()) {
                return Err(CoreError::invalid(format!(
                    "candle at {t}: {name} is negative"
                )));
            }
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn high_error(&self) -> CoreError {
        CoreError::invalid(format!(
            "candle at {}: high {} is below max(open, close)",
            self.open_time, self.high
        ))
    }

    #[cold]
    #[inline(never)]
    fn low_error(&self) -> CoreError {
        CoreError::invalid(format!(
            "candle at {}: low {} is above min(open, close)",
            self.open_time, self.low
        ))
    }

    /// Folds a trade into this candle (R7's same-bucket rule).
    pub fn fold_trade(&mut self, price: Dec, qty: Dec) -> CoreResult<()> {
        self.volume = self.volume.checked_add(qty)?;
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.close = price;
        Ok(())
    }
}

#[cold]
#[inline(never)]
fn close_time_error(t: i64, ct: i64, interval: Interval) -> CoreError {
    CoreError::invalid(format!(
        "candle at {t}: close_time {ct} is outside its {} bucket",
        interval.as_str()
    ))
}

/// Parses an integer ms timestamp.
pub fn parse_time(b: &[u8]) -> CoreResult<i64> {
    parse_i64(b).ok_or_else(|| {
        CoreError::invalid(format!(
            "invalid timestamp '{}'",
            String::from_utf8_lossy(b)
        ))
    })
}

/// Strict base-10 i64: optional '-', digits only.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    // What `str::parse::<i64>` accepts, minus a leading '+': one pass, checked arithmetic.
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    if digits.len() <= 16 {
        // Timestamps (13 digits): eight digits at a time; 16 digits cannot overflow.
        return short_i64(digits).map(|v| if neg { -v } else { v });
    }
    let mut v: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        // Accumulated negatively when negative, so i64::MIN parses.
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(i64::from(d))?
        } else {
            v.checked_add(i64::from(d))?
        };
    }
    Some(v)
}

/// 1..=16 ASCII digits as a number, `None` if any byte is not a digit.
fn short_i64(digits: &[u8]) -> Option<i64> {
    use crate::decimal::swar;
    let n1 = digits.len().min(8);
    let w1 = swar::load8(digits, 0) ^ swar::ZEROS;
    // Bytes past the end load as 0, which is no digit: the run stops there.
    if swar::digit_run_t(w1) != n1 {
        return None;
    }
    let hi = swar::value(w1, n1);
    let n2 = digits.len() - n1;
    if n2 == 0 {
        return i64::try_from(hi).ok();
    }
    let w2 = swar::load8(digits, 8) ^ swar::ZEROS;
    if swar::digit_run_t(w2) != n2 {
        return None;
    }
    let v = hi * swar::POW10_U64.get(n2)? + swar::value(w2, n2);
    i64::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(t: i64, o: &str, h: &str, l: &str, cl: &str, v: &str) -> Candle {
        let d = |s: &str| Dec::parse(s).unwrap();
        Candle::ohlcv(t, d(o), d(h), d(l), d(cl), d(v))
    }

    #[test]
    fn validation() {
        let i = Interval::M1;
        assert!(c(60_000, "1", "2", "0.5", "1.5", "10").validate(i).is_ok());
        assert!(c(60_000, "1", "1", "1", "1", "0").validate(i).is_ok());
        assert!(c(60_001, "1", "2", "0.5", "1.5", "10").validate(i).is_err());
        assert!(c(60_000, "1", "1.4", "0.5", "1.5", "10")
            .validate(i)
            .is_err());
        assert!(c(60_000, "1", "2", "1.1", "1.5", "10").validate(i).is_err());
        assert!(c(60_000, "1", "2", "0.5", "1.5", "-1").validate(i).is_err());
        let mut x = c(60_000, "1", "2", "0.5", "1.5", "10");
        x.close_time = Some(120_000);
        assert!(x.validate(i).is_err());
        x.close_time = Some(119_999);
        assert!(x.validate(i).is_ok());
    }

    #[test]
    fn parses_args() {
        let a: Vec<&[u8]> = vec![b"60000", b"1", b"2", b"0.5", b"1.5", b"10"];
        assert_eq!(Candle::from_args(&a).unwrap().high.to_string(), "2");
        let bad: Vec<&[u8]> = vec![b"60000", b"1", b"2", b"nan", b"1.5", b"10"];
        assert!(Candle::from_args(&bad).is_err());
        assert!(Candle::from_args(&a[..5]).is_err());
        assert!(parse_time(b"+5").is_err());
        assert!(parse_time(b"1.5").is_err());
    }

    #[test]
    fn parse_i64_matches_std() {
        let reference = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .filter(|s| !s.starts_with('+'))
                .and_then(|s| s.parse::<i64>().ok())
        };
        let mut inputs: Vec<Vec<u8>> = [
            "",
            "-",
            "+",
            "+5",
            "0",
            "-0",
            "00",
            "1725476820000",
            "-1725476820000",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "1.5",
            "1e3",
            " 1",
            "1 ",
            "--1",
            "0x10",
            "١",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        inputs.push(vec![0xff, b'1']);
        inputs.push(b"17254768200\x0000".to_vec());
        inputs.push(b"172547682\xb000".to_vec());
        // Neighbours of the digits ('/' and ':') and NUL probe the 8-at-a-time digit check.
        let alphabet = b"0123456789-+ 9/:\x0099";
        let mut rng = crate::test_rng::XorShift(0x2545_F491_4F6C_DD1D);
        for _ in 0..100_000 {
            let x = rng.next();
            let len = (x % 22) as usize;
            inputs.push(
                (0..len)
                    .map(|i| alphabet[((x >> (i * 3 % 60)) % alphabet.len() as u64) as usize])
                    .collect(),
            );
        }
        // All-digit strings of every length, with and without a sign.
        for len in 1..=20 {
            for k in 0..200u64 {
                let x = rng.next();
                let digits: Vec<u8> = (0..len)
                    .map(|i| b'0' + ((x >> (i % 60)) % 10) as u8)
                    .collect();
                if k % 2 == 1 {
                    inputs.push([b"-".as_slice(), &digits].concat());
                }
                inputs.push(digits);
            }
        }
        for b in &inputs {
            assert_eq!(
                parse_i64(b),
                reference(b),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn folds_trades_exactly() {
        let mut x = c(60_000, "10", "10", "10", "10", "0.1");
        x.fold_trade(Dec::parse("12").unwrap(), Dec::parse("0.2").unwrap())
            .unwrap();
        x.fold_trade(Dec::parse("9.5").unwrap(), Dec::parse("0.0001").unwrap())
            .unwrap();
        assert_eq!(
            (
                x.high.to_string(),
                x.low.to_string(),
                x.close.to_string(),
                x.volume.to_string()
            ),
            ("12".into(), "9.5".into(), "9.5".into(), "0.3001".into())
        );
    }
}
