//! Binance REST klines: weight-aware, honours 429/418 `Retry-After`, retries with backoff, pages.

use crate::backoff::{Backoff, Shutdown};
use crate::errors::chain;
use crate::stats::STATS;
use candles_core::binance::parse_klines;
use candles_core::Interval;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// Binance's klines page limit.
pub const MAX_LIMIT: usize = 1000;
/// Request weight of `/api/v3/klines` (2 for every limit since 2023).
pub const KLINES_WEIGHT: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("rate limited (HTTP {status}), retry after {after:?}")]
    RateLimited { status: u16, after: Duration },
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("{0}")]
    Transport(String),
    #[error("bad klines body: {0}")]
    Body(String),
    #[error("shutting down")]
    Shutdown,
}

impl RestError {
    /// 4xx other than 429/418 (e.g. an unknown symbol): retrying will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, RestError::Status { status, .. } if (400..500).contains(status))
            || matches!(self, RestError::Body(_))
    }
}

/// One page of klines: the body exactly as received, and what it holds.
#[derive(Clone, Debug)]
pub struct Page {
    pub body: String,
    pub rows: usize,
    pub first_open: i64,
    pub last_open: i64,
}

#[derive(Debug, Default)]
struct Weight {
    used: u32,
    minute: i64,
}

pub struct Rest {
    http: reqwest::Client,
    base: String,
    weight_limit: u32,
    weight: Mutex<Weight>,
    backoff_min: Duration,
    backoff_max: Duration,
    shutdown: Shutdown,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long to wait before a request of `weight`, given `used` weight in the current minute
/// (`now_ms` is in the same minute as the count). Keeps a 10% margin under the limit.
pub fn pace_delay(used: u32, weight: u32, limit: u32, now_ms: i64) -> Option<Duration> {
    let budget = limit.saturating_sub(limit / 10).max(weight);
    if used.saturating_add(weight) <= budget {
        return None;
    }
    let into_minute = now_ms.rem_euclid(60_000);
    Some(Duration::from_millis((60_000 - into_minute) as u64 + 250))
}

/// Parses `Retry-After` (seconds); Binance always sends seconds.
pub fn retry_after(v: Option<&str>, status: u16) -> Duration {
    match v.and_then(|s| s.trim().parse::<u64>().ok()) {
        Some(s) => Duration::from_secs(s),
        // Without the header: a minute for 429, two for an IP ban (418).
        None => Duration::from_secs(if status == 418 { 120 } else { 60 }),
    }
}

pub fn klines_url(
    base: &str,
    symbol: &str,
    interval: Interval,
    start: Option<i64>,
    end: Option<i64>,
    limit: usize,
) -> String {
    let mut u = format!(
        "{}/api/v3/klines?symbol={}&interval={}",
        base.trim_end_matches('/'),
        symbol,
        interval.as_str()
    );
    if let Some(s) = start {
        u.push_str(&format!("&startTime={s}"));
    }
    if let Some(e) = end {
        u.push_str(&format!("&endTime={e}"));
    }
    u.push_str(&format!("&limit={}", limit.clamp(1, MAX_LIMIT)));
    u
}

impl Rest {
    pub fn new(
        base: &str,
        weight_limit: u32,
        backoff_min: Duration,
        backoff_max: Duration,
        shutdown: Shutdown,
    ) -> anyhow::Result<Rest> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("candles-feed/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Rest {
            http,
            base: base.trim_end_matches('/').to_string(),
            weight_limit,
            weight: Mutex::new(Weight::default()),
            backoff_min,
            backoff_max,
            shutdown,
        })
    }

    /// The weight used this minute, as last reported by the server.
    pub fn used_weight(&self) -> u32 {
        self.weight.lock().map(|w| w.used).unwrap_or(0)
    }

    async fn pace(&self) -> Result<(), RestError> {
        loop {
            let delay = {
                let mut w = self
                    .weight
                    .lock()
                    .map_err(|_| RestError::Transport("weight lock poisoned".into()))?;
                let now = now_ms();
                if now.div_euclid(60_000) != w.minute {
                    w.minute = now.div_euclid(60_000);
                    w.used = 0;
                }
                match pace_delay(w.used, KLINES_WEIGHT, self.weight_limit, now) {
                    None => {
                        // Count our own request until the server tells us the real figure.
                        w.used += KLINES_WEIGHT;
                        return Ok(());
                    }
                    Some(d) => (d, w.used),
                }
            };
            info!(
                used_weight = delay.1,
                limit = self.weight_limit,
                wait_ms = delay.0.as_millis() as u64,
                "REST weight near the limit, slowing down"
            );
            if !self.shutdown.sleep(delay.0).await {
                return Err(RestError::Shutdown);
            }
        }
    }

    /// One klines request, no retry.
    pub async fn klines_once(
        &self,
        symbol: &str,
        interval: Interval,
        start: Option<i64>,
        end: Option<i64>,
        limit: usize,
    ) -> Result<Page, RestError> {
        self.pace().await?;
        let r = self.request(symbol, interval, start, end, limit).await;
        STATS.add_rest_request(r.is_err());
        r
    }

    async fn request(
        &self,
        symbol: &str,
        interval: Interval,
        start: Option<i64>,
        end: Option<i64>,
        limit: usize,
    ) -> Result<Page, RestError> {
        let url = klines_url(&self.base, symbol, interval, start, end, limit);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| RestError::Transport(format!("GET {url}: {}", chain(&e))))?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(used) =
            header("x-mbx-used-weight-1m").and_then(|v| v.trim().parse::<u32>().ok())
        {
            if let Ok(mut w) = self.weight.lock() {
                w.used = used;
                w.minute = now_ms().div_euclid(60_000);
            }
        }
        if status == 429 || status == 418 {
            let after = retry_after(header("retry-after").as_deref(), status);
            return Err(RestError::RateLimited { status, after });
        }
        let body = resp
            .text()
            .await
            .map_err(|e| RestError::Transport(format!("GET {url}: reading body: {}", chain(&e))))?;
        if !(200..300).contains(&status) {
            let mut body = body;
            body.truncate(300);
            return Err(RestError::Status { status, body });
        }
        let rows = parse_klines(body.as_bytes()).map_err(|e| RestError::Body(e.to_string()))?;
        let first_open = rows.first().map(|k| k.candle.open_time).unwrap_or(0);
        let last_open = rows.last().map(|k| k.candle.open_time).unwrap_or(0);
        Ok(Page {
            body,
            rows: rows.len(),
            first_open,
            last_open,
        })
    }

    /// One klines request, retried until it succeeds, fails permanently or shutdown.
    pub async fn klines(
        &self,
        symbol: &str,
        interval: Interval,
        start: Option<i64>,
        end: Option<i64>,
        limit: usize,
    ) -> Result<Page, RestError> {
        self.klines_tries(symbol, interval, start, end, limit, u32::MAX)
            .await
    }

    /// One klines request, tried at most `tries` times (at least once): the last error is
    /// returned once they are spent, so one failing symbol cannot hold its caller forever.
    pub async fn klines_tries(
        &self,
        symbol: &str,
        interval: Interval,
        start: Option<i64>,
        end: Option<i64>,
        limit: usize,
        tries: u32,
    ) -> Result<Page, RestError> {
        let mut backoff = Backoff::new(self.backoff_min, self.backoff_max);
        let mut tried = 0u32;
        loop {
            if self.shutdown.is_set() {
                return Err(RestError::Shutdown);
            }
            let err = match self.klines_once(symbol, interval, start, end, limit).await {
                Ok(p) => return Ok(p),
                Err(e) if e.is_permanent() || matches!(e, RestError::Shutdown) => return Err(e),
                Err(e) => e,
            };
            tried = tried.saturating_add(1);
            if tried >= tries {
                return Err(err);
            }
            let wait = match &err {
                RestError::RateLimited { after, .. } => *after,
                _ => backoff.next_delay(),
            };
            warn!(symbol, interval = interval.as_str(), error = %err, retry_in_ms = wait.as_millis() as u64, attempt = tried, "REST klines request failed, retrying");
            if !self.shutdown.sleep(wait).await {
                return Err(RestError::Shutdown);
            }
        }
    }

    /// The last `n` klines (the forming one included), oldest page first; each request retried
    /// until it succeeds (see [`Rest::klines`]).
    pub async fn last_klines(
        &self,
        symbol: &str,
        interval: Interval,
        n: usize,
    ) -> Result<Vec<Page>, RestError> {
        self.last_klines_tries(symbol, interval, n, u32::MAX).await
    }

    /// [`Rest::last_klines`] with each request tried at most `tries` times.
    pub async fn last_klines_tries(
        &self,
        symbol: &str,
        interval: Interval,
        n: usize,
        tries: u32,
    ) -> Result<Vec<Page>, RestError> {
        let mut pages = Vec::new();
        let mut remaining = n;
        let mut end = None;
        while remaining > 0 {
            let limit = remaining.min(MAX_LIMIT);
            let p = self
                .klines_tries(symbol, interval, None, end, limit, tries)
                .await?;
            if p.rows == 0 {
                break;
            }
            remaining = remaining.saturating_sub(p.rows);
            let short = p.rows < limit;
            end = Some(p.first_open - 1);
            pages.push(p);
            if short {
                break;
            }
        }
        pages.reverse();
        Ok(pages)
    }
}

/// Where the next page of a `from..=to` paging starts, or None when `page` was the last one.
pub fn next_page_start(page: &Page, limit: usize, to: i64, interval: Interval) -> Option<i64> {
    if page.rows == 0 || page.rows < limit || page.last_open >= to {
        None
    } else {
        Some(interval.next(page.last_open))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            klines_url("https://api.binance.com/", "BTCUSDT", Interval::M1, Some(1), Some(2), 5000),
            "https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=1&endTime=2&limit=1000"
        );
        assert_eq!(
            klines_url("http://h", "ETHUSDT", Interval::Mo1, None, None, 10),
            "http://h/api/v3/klines?symbol=ETHUSDT&interval=1M&limit=10"
        );
    }

    #[test]
    fn pacing() {
        assert_eq!(pace_delay(0, 2, 1200, 0), None);
        assert_eq!(pace_delay(1078, 2, 1200, 0), None);
        let d = pace_delay(1079, 2, 1200, 45_000).unwrap();
        assert_eq!(d, Duration::from_millis(15_250));
        // a tiny limit still lets one request through per minute
        assert_eq!(pace_delay(0, 2, 1, 0), None);
    }

    #[test]
    fn paging() {
        let p = |rows, last_open| Page {
            body: String::new(),
            rows,
            first_open: 0,
            last_open,
        };
        assert_eq!(
            next_page_start(&p(1000, 59_940_000), 1000, 120_000_000, Interval::M1),
            Some(60_000_000)
        );
        assert_eq!(
            next_page_start(&p(999, 59_880_000), 1000, 120_000_000, Interval::M1),
            None
        );
        assert_eq!(
            next_page_start(&p(1000, 120_000_000), 1000, 120_000_000, Interval::M1),
            None
        );
        assert_eq!(
            next_page_start(&p(0, 0), 1000, 120_000_000, Interval::M1),
            None
        );
    }

    #[test]
    fn retry_after_header() {
        assert_eq!(retry_after(Some("3"), 429), Duration::from_secs(3));
        assert_eq!(retry_after(None, 429), Duration::from_secs(60));
        assert_eq!(retry_after(Some("soon"), 418), Duration::from_secs(120));
    }
}
