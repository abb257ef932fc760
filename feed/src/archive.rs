//! `--history-from DATE`: back-fills every series from Binance's public kline archive
//! (`--archive-url`, default <https://data.binance.vision>):
//!
//! * the monthly zips of every complete month since DATE
//!   (`{base}/data/spot/monthly/klines/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{YYYY-MM}.zip`),
//! * then the daily zips of the current month up to yesterday
//!   (`…/daily/klines/…/{SYMBOL}-{interval}-{YYYY-MM-DD}.zip`),
//!   (1s series read daily files only: a monthly 1s file is 2.6M rows),
//! * then the gap filler fetches by REST whatever is still missing (today, a file the archive
//!   lacks or refused) — it asks `CANDLE.GAPS`, so only the holes cost request weight.
//!
//! Every zip is checked against its `.CHECKSUM` (`<sha256 hex>  <file name>`) before use: a
//! mismatch, an unreadable zip or CSV is refused and logged, and the month falls back to its
//! daily files (a refused day falls back to REST). A month whose monthly file is not published
//! yet (the month just ended) also falls back to its daily files. Archive CSVs have the 12
//! REST kline columns, no header (one is skipped if present); open and close times are in
//! milliseconds, or microseconds in the newer files (told by their magnitude), and are stored
//! in milliseconds. The rows go to the module as REST-shaped JSON with `CANDLE.OFFICIAL_ADD`:
//! the module's rules decide what is official, exactly as for REST pages.

use crate::backoff::{Backoff, Shutdown};
use crate::config::{Args, Series};
use crate::errors::chain;
use crate::route;
use crate::sink::{Sink, SinkError};
use crate::writer::GapCheck;
use candles_core::Interval;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Rows per `CANDLE.OFFICIAL_ADD` (as a REST page).
pub const ROWS_PER_COMMAND: usize = 1000;
/// Largest zip accepted (a month of 1s candles is ~100 MB unzipped, ~40 MB zipped).
const MAX_ZIP: usize = 256 << 20;
/// Largest CSV accepted inside a zip.
const MAX_CSV: u64 = 1 << 30;
const DAY: i64 = 86_400_000;

/// Parses `YYYY-MM-DD` or `YYYY-MM` (UTC) into milliseconds since the epoch.
pub fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid date '{s}': expected YYYY-MM-DD or YYYY-MM (UTC)");
    let parts: Vec<&str> = s.trim().split('-').collect();
    if !(2..=3).contains(&parts.len()) || parts[0].len() != 4 {
        return Err(bad());
    }
    let num = |p: &str| p.parse::<u32>().map_err(|_| bad());
    let y = num(parts[0])? as i64;
    let m = num(parts[1])?;
    let d = if parts.len() == 3 { num(parts[2])? } else { 1 };
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || y < 1970 {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) * DAY)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// One archive file: a month or a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Month(i64, u32),
    Day(i64, u32, u32),
}

impl Period {
    /// Open times covered: `[start, end)` in ms.
    pub fn span(&self) -> (i64, i64) {
        match *self {
            Period::Month(y, m) => {
                let s = days_from_civil(y, m, 1) * DAY;
                (s, s + i64::from(days_in_month(y, m)) * DAY)
            }
            Period::Day(y, m, d) => {
                let s = days_from_civil(y, m, d) * DAY;
                (s, s + DAY)
            }
        }
    }

    fn label(&self) -> String {
        match *self {
            Period::Month(y, m) => format!("{y:04}-{m:02}"),
            Period::Day(y, m, d) => format!("{y:04}-{m:02}-{d:02}"),
        }
    }

    /// The days of a month (a day is its own only day).
    pub fn days(&self) -> Vec<Period> {
        match *self {
            Period::Month(y, m) => (1..=days_in_month(y, m))
                .map(|d| Period::Day(y, m, d))
                .collect(),
            d => vec![d],
        }
    }
}

/// The URL of the zip of `symbol`/`interval` for `p` (its checksum: the same + `.CHECKSUM`).
pub fn zip_url(base: &str, symbol: &str, interval: Interval, p: Period) -> String {
    let (kind, label) = match p {
        Period::Month(..) => ("monthly", p.label()),
        Period::Day(..) => ("daily", p.label()),
    };
    let iv = interval.as_str();
    format!(
        "{}/data/spot/{kind}/klines/{symbol}/{iv}/{symbol}-{iv}-{label}.zip",
        base.trim_end_matches('/')
    )
}

/// The files to fetch for a back-fill from `from` at `now`: every complete month since the
/// month of `from`, then the days of the current month before today. Days before `from`
/// are left out; a month that starts before `from` is still fetched whole (its rows before
/// `from` are dropped).
pub fn plan(from: i64, now: i64) -> Vec<Period> {
    let (fy, fm, fd) = civil_from_days(from.div_euclid(DAY));
    let (ny, nm, nd) = civil_from_days(now.div_euclid(DAY));
    let mut out = Vec::new();
    let (mut y, mut m) = (fy, fm);
    while (y, m) < (ny, nm) {
        out.push(Period::Month(y, m));
        if m == 12 {
            y += 1;
            m = 1;
        } else {
            m += 1;
        }
    }
    let first_day = if (fy, fm) == (ny, nm) { fd } else { 1 };
    for d in first_day..nd {
        out.push(Period::Day(ny, nm, d));
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not in the archive (HTTP 404)")]
    NotFound,
    #[error("checksum mismatch: the .CHECKSUM says {want}, the zip hashes to {got}")]
    Checksum { want: String, got: String },
    #[error("bad .CHECKSUM file: {0}")]
    BadChecksumFile(String),
    #[error("unreadable zip: {0}")]
    Zip(String),
    #[error("bad CSV: {0}")]
    Csv(String),
    #[error("{0}")]
    Transport(String),
    #[error("shutting down")]
    Shutdown,
}

/// SHA-256 of `data` in lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `zip` against a `.CHECKSUM` file's text (`<hex>  <name>`).
pub fn verify(zip: &[u8], checksum_file: &str) -> Result<(), ArchiveError> {
    let want = checksum_file
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| ArchiveError::BadChecksumFile(checksum_file.chars().take(100).collect()))?
        .to_ascii_lowercase();
    let got = sha256_hex(zip);
    if want == got {
        Ok(())
    } else {
        Err(ArchiveError::Checksum { want, got })
    }
}

/// The CSV of the zip's first `.csv` entry (its first entry if none is named so).
pub fn unzip_csv(zip: &[u8]) -> Result<String, ArchiveError> {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| ArchiveError::Zip(e.to_string()))?;
    let idx = (0..a.len())
        .find(|&i| {
            a.name_for_index(i)
                .is_some_and(|n| n.is_ok_and(|n| n.ends_with(".csv")))
        })
        .unwrap_or(0);
    let f = a
        .by_index(idx)
        .map_err(|e| ArchiveError::Zip(e.to_string()))?;
    let mut s = String::new();
    f.take(MAX_CSV)
        .read_to_string(&mut s)
        .map_err(|e| ArchiveError::Zip(e.to_string()))?;
    Ok(s)
}

/// Open times of 10¹⁴ and more are microseconds (10¹⁴ ms is the year 5138).
const MICROS_FROM: i64 = 100_000_000_000_000;

fn to_ms(t: i64) -> i64 {
    if t >= MICROS_FROM {
        t.div_euclid(1000)
    } else {
        t
    }
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == 'E' || c == '+')
}

/// Parses archive CSV rows into REST-shaped JSON rows (`[t,"o","h","l","c","v",T,"q",n,"V","Q","B"]`,
/// times in ms), keeping those with open time in `[from, to)`, in file order. A header line is
/// skipped; any other malformed line refuses the whole file.
pub fn csv_rows(csv: &str, from: i64, to: i64) -> Result<Vec<String>, ArchiveError> {
    let mut out = Vec::new();
    for (n, line) in csv.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if n == 0 && f.first().is_some_and(|x| x.parse::<i64>().is_err()) {
            continue; // header
        }
        let bad = || {
            ArchiveError::Csv(format!(
                "line {}: {}",
                n + 1,
                line.chars().take(120).collect::<String>()
            ))
        };
        if f.len() < 11 {
            return Err(bad());
        }
        let t = f[0].parse::<i64>().map_err(|_| bad())?;
        let ct = f[6].parse::<i64>().map_err(|_| bad())?;
        let trades = f[8].parse::<u64>().map_err(|_| bad())?;
        for i in [1, 2, 3, 4, 5, 7, 9, 10] {
            if !is_decimal(f[i]) {
                return Err(bad());
            }
        }
        let ignore = f.get(11).copied().filter(|s| is_decimal(s)).unwrap_or("0");
        let (t, ct) = (to_ms(t), to_ms(ct));
        if t < from || t >= to {
            continue;
        }
        out.push(format!(
            r#"[{t},"{}","{}","{}","{}","{}",{ct},"{}",{trades},"{}","{}","{ignore}"]"#,
            f[1], f[2], f[3], f[4], f[5], f[7], f[9], f[10]
        ));
    }
    Ok(out)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct Archive {
    http: reqwest::Client,
    base: String,
    backoff_min: Duration,
    backoff_max: Duration,
    shutdown: Shutdown,
}

impl Archive {
    pub fn new(args: &Args, shutdown: Shutdown) -> anyhow::Result<Archive> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("candles-feed/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Archive {
            http,
            base: args.archive_url.trim_end_matches('/').to_string(),
            backoff_min: args.backoff_min,
            backoff_max: args.backoff_max,
            shutdown,
        })
    }

    /// GET with a few retries on transport errors and 5xx/429; 404 is [`ArchiveError::NotFound`].
    async fn get(&self, url: &str) -> Result<Vec<u8>, ArchiveError> {
        let mut backoff = Backoff::new(self.backoff_min, self.backoff_max);
        let mut last = String::new();
        for _ in 0..4 {
            if self.shutdown.is_set() {
                return Err(ArchiveError::Shutdown);
            }
            match self.http.get(url).send().await {
                Ok(r) if r.status().as_u16() == 404 => return Err(ArchiveError::NotFound),
                Ok(r) if r.status().is_success() => {
                    if r.content_length().is_some_and(|n| n as usize > MAX_ZIP) {
                        return Err(ArchiveError::Transport(format!(
                            "GET {url}: larger than {MAX_ZIP} bytes"
                        )));
                    }
                    match r.bytes().await {
                        Ok(b) if b.len() <= MAX_ZIP => return Ok(b.to_vec()),
                        Ok(_) => {
                            return Err(ArchiveError::Transport(format!("GET {url}: too large")))
                        }
                        Err(e) => last = format!("GET {url}: {}", chain(&e)),
                    }
                }
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    return Err(ArchiveError::Transport(format!(
                        "GET {url}: HTTP {}",
                        r.status()
                    )));
                }
                Ok(r) => last = format!("GET {url}: HTTP {}", r.status()),
                Err(e) => last = format!("GET {url}: {}", chain(&e)),
            }
            if !self.shutdown.sleep(backoff.next_delay()).await {
                return Err(ArchiveError::Shutdown);
            }
        }
        Err(ArchiveError::Transport(last))
    }

    /// The rows of one archive file in `[from, to)`, its checksum verified.
    pub async fn rows(
        &self,
        s: &Series,
        p: Period,
        from: i64,
        to: i64,
    ) -> Result<Vec<String>, ArchiveError> {
        let url = zip_url(&self.base, &s.symbol, s.interval, p);
        let zip = self.get(&url).await?;
        let sum = self.get(&format!("{url}.CHECKSUM")).await?;
        verify(&zip, &String::from_utf8_lossy(&sum))?;
        let csv = unzip_csv(&zip)?;
        csv_rows(&csv, from, to)
    }
}

/// What the back-fill of one series did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Filled {
    pub files: usize,
    pub refused: usize,
    pub candles: usize,
}

/// Stores `rows` (JSON rows) in pages of [`ROWS_PER_COMMAND`].
async fn store(
    sink: &mut Sink,
    s: &Series,
    rows: &[String],
    backoff: &mut Backoff,
    shutdown: &Shutdown,
) -> Result<usize, SinkError> {
    let mut n = 0;
    for chunk in rows.chunks(ROWS_PER_COMMAND) {
        let body = format!("[{}]", chunk.join(","));
        let cmd = route::official_add(&s.key, s.interval, body.into_bytes());
        match sink
            .exec_retrying(std::slice::from_ref(&cmd), backoff, shutdown)
            .await
        {
            Ok(_) => n += chunk.len(),
            Err(SinkError::Shutdown) => return Err(SinkError::Shutdown),
            Err(e) => warn!(key = %s.key, error = %e, "history: CANDLE.OFFICIAL_ADD refused"),
        }
    }
    Ok(n)
}

/// Back-fills one series from `from` (see the module's documentation). Returns None at shutdown.
pub async fn backfill_series(
    archive: &Archive,
    sink: &mut Sink,
    s: &Series,
    from: i64,
    now: i64,
    shutdown: &Shutdown,
) -> Option<Filled> {
    let mut backoff = Backoff::new(archive.backoff_min, archive.backoff_max);
    let mut done = Filled::default();
    let today = now.div_euclid(DAY) * DAY;
    let mut periods = plan(from, now);
    if s.interval == Interval::S1 {
        // A month of 1s candles is 2.6M rows (a ~200 MB CSV): 1s series read the daily files.
        periods = periods.into_iter().flat_map(|p| p.days()).collect();
    }
    let last_month_end = periods
        .iter()
        .filter(|p| matches!(p, Period::Month(..)))
        .map(|p| p.span().1)
        .max();
    let total = periods.len();
    let mut queue: std::collections::VecDeque<Period> = periods.into();
    let mut handled = 0usize;
    while let Some(p) = queue.pop_front() {
        let (a, b) = p.span();
        let r = archive.rows(s, p, from.max(a), b.min(today)).await;
        let rows = match r {
            Ok(rows) => rows,
            Err(ArchiveError::Shutdown) => return None,
            Err(e) => {
                let is_month = matches!(p, Period::Month(..));
                let fallback_daily = is_month
                    && match e {
                        // The month just ended: its monthly file may not be published yet.
                        ArchiveError::NotFound => Some(b) == last_month_end,
                        _ => true,
                    };
                if !matches!(e, ArchiveError::NotFound) {
                    done.refused += 1;
                    warn!(symbol = %s.symbol, interval = %s.interval, file = %zip_url(&archive.base, &s.symbol, s.interval, p), error = %e,
                        fallback = if fallback_daily { "daily files" } else { "REST" }, "history: archive file refused");
                } else {
                    info!(symbol = %s.symbol, interval = %s.interval, period = %p.label(), fallback = if fallback_daily { "daily files" } else { "REST" }, "history: not in the archive");
                }
                if fallback_daily {
                    for d in p.days().into_iter().rev() {
                        if d.span().1 > from && d.span().0 < today {
                            queue.push_front(d);
                        }
                    }
                }
                continue;
            }
        };
        done.files += 1;
        match store(sink, s, &rows, &mut backoff, shutdown).await {
            Ok(n) => done.candles += n,
            Err(_) => return None,
        }
        handled += 1;
        if matches!(p, Period::Month(..)) || handled.is_multiple_of(10) {
            info!(symbol = %s.symbol, interval = %s.interval, period = %p.label(), candles = rows.len(), progress = format!("{handled}/{total}+"), "history: archive file stored");
        }
    }
    Some(done)
}

/// Back-fills every series from `--history-from`, at most `concurrency` series at once, then
/// hands the whole range of each series to the gap filler (REST for what is still missing).
pub async fn backfill(
    args: Args,
    series: Vec<Series>,
    sinks: Vec<Sink>,
    gap_tx: mpsc::UnboundedSender<GapCheck>,
    shutdown: Shutdown,
) {
    let Some(from_date) = args.history_from else {
        return;
    };
    let archive = match Archive::new(&args, shutdown.clone()) {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "history: cannot build the HTTP client; REST only");
            return;
        }
    };
    let started = Instant::now();
    let now = now_ms();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let total = series.len();
    let (y, m, d) = civil_from_days(from_date.div_euclid(DAY));
    info!(series = total, from = %format!("{y:04}-{m:02}-{d:02}"), archive = %archive.base, "history: back-fill from the archive starting");
    let results = futures_util::future::join_all(sinks.into_iter().map(|mut sink| {
        let (archive, series, next, shutdown, gap_tx) = (&archive, &series, &next, &shutdown, &gap_tx);
        async move {
            let mut sum = Filled::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(s) = series.get(i) else { break };
                let from = s.interval.align_down(from_date);
                let Some(f) = backfill_series(archive, &mut sink, s, from, now, shutdown).await else {
                    break;
                };
                info!(symbol = %s.symbol, interval = %s.interval, files = f.files, refused = f.refused, candles = f.candles, progress = format!("{}/{total}", i + 1), "history: series back-filled from the archive");
                sum.files += f.files;
                sum.refused += f.refused;
                sum.candles += f.candles;
                let to = s.interval.prev(s.interval.align_down(now_ms()));
                if from <= to {
                    let _ = gap_tx.send(GapCheck { series: i, from, to });
                }
            }
            sum
        }
    }))
    .await;
    if shutdown.is_set() {
        return;
    }
    let files: usize = results.iter().map(|f| f.files).sum();
    let refused: usize = results.iter().map(|f| f.refused).sum();
    let candles: usize = results.iter().map(|f| f.candles).sum();
    let secs = started.elapsed().as_secs_f64();
    info!(
        series = total,
        files,
        refused,
        candles,
        seconds = format!("{secs:.1}"),
        candles_per_sec = format!("{:.0}", candles as f64 / secs.max(1e-9)),
        "history: archive back-fill done (REST fills the rest)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2024-09-01"), Ok(1_725_148_800_000));
        assert_eq!(parse_date("2024-09"), Ok(1_725_148_800_000));
        assert_eq!(parse_date("2024-02-29"), Ok(1_709_164_800_000));
        for bad in [
            "2023-02-29",
            "2024-13",
            "2024-00-01",
            "24-01-01",
            "2024",
            "x",
            "2024-01-01-01",
            "1969-12-31",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        for z in [-1000i64, 0, 59, 60, 365, 10_957, 19_967, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn urls_and_plan() {
        let u = zip_url(
            "https://data.binance.vision/",
            "BTCUSDT",
            Interval::M1,
            Period::Month(2024, 9),
        );
        assert_eq!(u, "https://data.binance.vision/data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-09.zip");
        let u = zip_url("http://h", "ETHUSDT", Interval::H1, Period::Day(2025, 1, 2));
        assert_eq!(
            u,
            "http://h/data/spot/daily/klines/ETHUSDT/1h/ETHUSDT-1h-2025-01-02.zip"
        );
        let from = parse_date("2024-10-15").unwrap();
        let now = parse_date("2025-01-04").unwrap() + 3_600_000;
        assert_eq!(
            plan(from, now),
            vec![
                Period::Month(2024, 10),
                Period::Month(2024, 11),
                Period::Month(2024, 12),
                Period::Day(2025, 1, 1),
                Period::Day(2025, 1, 2),
                Period::Day(2025, 1, 3)
            ]
        );
        let p = plan(parse_date("2025-01-02").unwrap(), now);
        assert_eq!(p, vec![Period::Day(2025, 1, 2), Period::Day(2025, 1, 3)]);
        assert_eq!(Period::Month(2024, 2).days().len(), 29);
        let (a, b) = Period::Month(2024, 12).span();
        assert_eq!((b - a) / DAY, 31);
    }

    #[test]
    fn checksum() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let sum = format!(
            "{}  X-1m-2024-09.zip\n",
            sha256_hex(b"zip bytes").to_uppercase()
        );
        assert!(verify(b"zip bytes", &sum).is_ok());
        assert!(matches!(
            verify(b"zip bytez", &sum),
            Err(ArchiveError::Checksum { .. })
        ));
        assert!(matches!(
            verify(b"zip bytes", "<html>"),
            Err(ArchiveError::BadChecksumFile(_))
        ));
    }

    #[test]
    fn csv_ms_and_us() {
        let ms = "1725408000000,58001.03000000,58010.00000000,57990.00000000,58000.00000000,12.5,1725408059999,725000.1,321,6.2,360000.5,0\n";
        let us = "1725408000000000,58001.03000000,58010.00000000,57990.00000000,58000.00000000,12.5,1725408059999999,725000.1,321,6.2,360000.5,0\n";
        let a = csv_rows(ms, 0, i64::MAX).unwrap();
        let b = csv_rows(us, 0, i64::MAX).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a[0],
            r#"[1725408000000,"58001.03000000","58010.00000000","57990.00000000","58000.00000000","12.5",1725408059999,"725000.1",321,"6.2","360000.5","0"]"#
        );
        let k = candles_core::binance::parse_klines(format!("[{}]", a[0]).as_bytes()).unwrap();
        assert_eq!(k[0].candle.open_time, 1_725_408_000_000);
        let header = format!("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n{ms}");
        assert_eq!(csv_rows(&header, 0, i64::MAX).unwrap(), a);
        assert!(csv_rows(&format!("{ms}1,2,3\n"), 0, i64::MAX).is_err());
        assert!(csv_rows(&ms.replace("12.5", "1\"2"), 0, i64::MAX).is_err());
        assert!(csv_rows(ms, 1_725_408_000_001, i64::MAX)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn zips() {
        use std::io::Write;
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            let o = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            w.start_file("X-1m-2024-09.csv", o).unwrap();
            w.write_all(b"hello,csv\n").unwrap();
            w.finish().unwrap();
        }
        assert_eq!(unzip_csv(buf.get_ref()).unwrap(), "hello,csv\n");
        assert!(unzip_csv(b"PK not a zip").is_err());
    }
}
