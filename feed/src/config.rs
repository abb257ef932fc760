//! Command-line options (clap derive, every option also readable from a `CANDLES_FEED_*`
//! environment variable), series naming and small parsers.

use anyhow::{bail, Context, Result};
use candles_core::Interval;
use clap::{Parser, ValueEnum};
use std::time::Duration;

/// Feeds redis-candles from Binance spot market data: REST bootstrap, one combined
/// WebSocket per 1024 streams, gap fill after every reconnect.
#[derive(Parser, Debug, Clone)]
#[command(name = "candles-feed", version, about, long_about = None)]
pub struct Args {
    /// Redis URL of the server that has the redis-candles module loaded; with --cluster, the
    /// seed nodes of a Redis Cluster, comma-separated (redis://h1:7000,redis://h2:7000).
    #[arg(
        long,
        env = "CANDLES_FEED_REDIS",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis: String,

    /// Symbols, comma-separated (BTCUSDT,ETHUSDT). Case does not matter. Required unless --replay.
    #[arg(long, env = "CANDLES_FEED_SYMBOLS", value_delimiter = ',')]
    pub symbols: Vec<String>,

    /// Intervals, comma-separated, Binance spelling (1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M).
    #[arg(
        long,
        env = "CANDLES_FEED_INTERVALS",
        value_delimiter = ',',
        default_value = "1m"
    )]
    pub intervals: Vec<String>,

    /// Candles fetched by REST for each series at start (paged by 1000). 0 skips the bootstrap.
    #[arg(long, env = "CANDLES_FEED_BOOTSTRAP", default_value_t = 1000)]
    pub bootstrap: usize,

    /// Stream and back-fill only the smallest of --intervals per symbol; create the others as
    /// series derived from it inside Redis (CANDLE.CREATE ... SOURCE), each kept current by
    /// the module from the one below it. Their older history still comes from REST.
    #[arg(long, env = "CANDLES_FEED_DERIVE")]
    pub derive: bool,

    /// Also subscribe to `<symbol>@aggTrade` and push every trade with TICKS.PUSH.
    #[arg(long, env = "CANDLES_FEED_TICKS")]
    pub ticks: bool,

    /// Also apply every trade to the live candle of each series of its symbol (CANDLE.LIVE_TICK).
    #[arg(long, env = "CANDLES_FEED_LIVE_TICK")]
    pub live_tick: bool,

    /// Key template of a series: the words SYMBOL and INTERVAL are replaced (BTCUSDT, 1m);
    /// everything else is literal, so the braces of the default are a Redis Cluster hash tag.
    #[arg(
        long,
        env = "CANDLES_FEED_CANDLE_KEY",
        default_value = "candle:{SYMBOL}:INTERVAL"
    )]
    pub candle_key: String,

    /// Key of the tick book that receives the trades (--ticks).
    #[arg(
        long,
        env = "CANDLES_FEED_TICKS_KEY",
        default_value = "ticks:{binance}"
    )]
    pub ticks_key: String,

    /// MAXLEN given to TICKS.PUSH (per stream), if set.
    #[arg(long, env = "CANDLES_FEED_TICKS_MAXLEN")]
    pub ticks_maxlen: Option<u64>,

    /// Binance REST base URL. Alternatives: https://data-api.binance.vision (market data only),
    /// https://testnet.binance.vision (spot testnet).
    #[arg(
        long,
        env = "CANDLES_FEED_REST_URL",
        default_value = "https://api.binance.com"
    )]
    pub rest_url: String,

    /// Binance WebSocket base URL. Alternatives: wss://data-stream.binance.vision (market data
    /// only), wss://stream.testnet.binance.vision (spot testnet).
    #[arg(
        long,
        env = "CANDLES_FEED_WS_URL",
        default_value = "wss://stream.binance.com:9443"
    )]
    pub ws_url: String,

    /// Replay recorded frames from FILE (one per line: a combined-stream frame, or
    /// `{"recv_ts":…,"frame":<frame>}`) instead of connecting to Binance, then exit.
    #[arg(long, env = "CANDLES_FEED_REPLAY", value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,

    /// Log format.
    #[arg(long, env = "CANDLES_FEED_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// REST request weight allowed per minute (Binance's X-MBX-USED-WEIGHT-1M limit); the feeder
    /// slows down when it gets near it.
    #[arg(long, env = "CANDLES_FEED_WEIGHT_LIMIT", default_value_t = 1200)]
    pub weight_limit: u32,

    /// Renew each WebSocket connection after this long (Binance cuts them at 24 h).
    #[arg(long, env = "CANDLES_FEED_WS_MAX_AGE", default_value = "23h50m", value_parser = parse_duration)]
    pub ws_max_age: Duration,

    /// Reconnect when no frame arrived for this long.
    #[arg(long, env = "CANDLES_FEED_WS_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub ws_idle_timeout: Duration,

    /// Streams per WebSocket connection (Binance allows 1024).
    #[arg(long, env = "CANDLES_FEED_STREAMS_PER_CONNECTION", default_value_t = 1024,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub streams_per_connection: u16,

    /// First retry delay after a failure (doubles up to --backoff-max, with jitter).
    #[arg(long, env = "CANDLES_FEED_BACKOFF_MIN", default_value = "500ms", value_parser = parse_duration)]
    pub backoff_min: Duration,

    /// Longest retry delay.
    #[arg(long, env = "CANDLES_FEED_BACKOFF_MAX", default_value = "30s", value_parser = parse_duration)]
    pub backoff_max: Duration,

    /// Bootstrap progress display: auto (a bar on a terminal, log lines otherwise), bar, log.
    #[arg(long, env = "CANDLES_FEED_PROGRESS", value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,

    /// Log the feeder's counters (frames, commands, errors, gap fills, reconnects, REST
    /// requests) this often; 0 = never. They are logged once more at exit either way.
    #[arg(long, env = "CANDLES_FEED_STATS_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub stats_interval: Duration,

    /// Feed a Redis Cluster: --redis lists seed nodes; commands follow MOVED/ASK and are sent
    /// as one pipeline per node.
    #[arg(long, env = "CANDLES_FEED_CLUSTER")]
    pub cluster: bool,

    /// Feed only the symbols of shard k of n (1-based): n feeders split the symbols with no
    /// overlap and no gap (FNV-1a 64 of the upper-case symbol, mod n, equals k-1).
    #[arg(long, env = "CANDLES_FEED_SHARD", value_name = "K/N", value_parser = crate::shard::Shard::parse)]
    pub shard: Option<crate::shard::Shard>,

    /// Back-fill every series from this date (YYYY-MM-DD or YYYY-MM, UTC) out of Binance's
    /// public archive (monthly, then daily zips, SHA-256 checked), then REST for the rest.
    #[arg(long, env = "CANDLES_FEED_HISTORY_FROM", value_name = "DATE", value_parser = crate::archive::parse_date)]
    pub history_from: Option<i64>,

    /// Base URL of the kline archive (--history-from).
    #[arg(
        long,
        env = "CANDLES_FEED_ARCHIVE_URL",
        default_value = "https://data.binance.vision"
    )]
    pub archive_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    Auto,
    Bar,
    Log,
}

/// One (symbol, interval) series and its Redis key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    /// Upper case, as Binance writes `s`.
    pub symbol: String,
    pub interval: Interval,
    pub key: String,
}

impl Series {
    pub fn new(symbol: &str, interval: Interval, template: &str) -> Series {
        let symbol = symbol.to_ascii_uppercase();
        let key = candle_key(template, &symbol, interval);
        Series {
            symbol,
            interval,
            key,
        }
    }

    /// `btcusdt@kline_1m`
    pub fn stream_name(&self) -> String {
        format!(
            "{}@kline_{}",
            self.symbol.to_ascii_lowercase(),
            self.interval.as_str()
        )
    }
}

/// Expands a key template: `SYMBOL` → the upper-case symbol, `INTERVAL` → the interval as Binance
/// spells it. Everything else (including `{}`) is literal.
pub fn candle_key(template: &str, symbol: &str, interval: Interval) -> String {
    template
        .replace("SYMBOL", symbol)
        .replace("INTERVAL", interval.as_str())
}

/// `<symbol>@aggTrade`
pub fn trade_stream_name(symbol: &str) -> String {
    format!("{}@aggTrade", symbol.to_ascii_lowercase())
}

/// Parses `1500`, `1500ms`, `30s`, `5m`, `23h50m`, `1h30m15s`, `250ms` (bare number = seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration '{s}' (examples: 500ms, 30s, 5m, 23h50m)"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid number in duration '{s}'"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            _ => {
                return Err(format!(
                    "invalid unit '{unit}' in duration '{s}' (ms, s, m, h, d)"
                ))
            }
        };
        total += d;
    }
    Ok(total)
}

/// The series of the options, symbols × intervals, in that order.
pub fn series_of(args: &Args) -> Result<Vec<Series>> {
    let intervals = intervals_of(args)?;
    let mut out = Vec::new();
    for sym in args
        .symbols
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        if !sym.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("invalid symbol '{sym}' (letters and digits only, e.g. BTCUSDT)");
        }
        for &i in &intervals {
            let s = Series::new(sym, i, &args.candle_key);
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

pub fn intervals_of(args: &Args) -> Result<Vec<Interval>> {
    let mut out = Vec::new();
    for i in args
        .intervals
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let iv = Interval::parse(i)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("--intervals")?;
        if !out.contains(&iv) {
            out.push(iv);
        }
    }
    Ok(out)
}

/// The Redis URLs of `--redis` (comma-separated with --cluster), trimmed, empty ones dropped.
pub fn redis_urls(args: &Args) -> Vec<String> {
    args.redis
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The series of this feeder: [`series_of`] restricted to the symbols of `--shard`.
pub fn my_series(args: &Args) -> Result<Vec<Series>> {
    let all = series_of(args)?;
    Ok(match args.shard {
        Some(sh) => all.into_iter().filter(|s| sh.owns(&s.symbol)).collect(),
        None => all,
    })
}

/// Checks the options that clap cannot check alone.
pub fn validate(args: &Args) -> Result<()> {
    if args.replay.is_none() {
        if series_of(args)?.is_empty() {
            bail!("--symbols (or CANDLES_FEED_SYMBOLS) and --intervals are required unless --replay is given");
        }
        for (name, url, schemes) in [
            ("--rest-url", &args.rest_url, &["http://", "https://"][..]),
            ("--ws-url", &args.ws_url, &["ws://", "wss://"][..]),
        ] {
            if !schemes.iter().any(|s| url.starts_with(s)) {
                bail!("{name} '{url}' must start with {}", schemes.join(" or "));
            }
        }
    } else {
        intervals_of(args)?;
    }
    let urls = redis_urls(args);
    if urls.is_empty() {
        bail!("--redis is empty");
    }
    for url in &urls {
        if !url.starts_with("redis://")
            && !url.starts_with("rediss://")
            && !url.starts_with("unix://")
        {
            bail!("--redis '{url}' must be a redis://, rediss:// or unix:// URL");
        }
    }
    if urls.len() > 1 && !args.cluster {
        bail!(
            "--redis lists {} URLs: several seed nodes need --cluster",
            urls.len()
        );
    }
    if args.cluster && args.replay.is_some() {
        bail!("--replay writes to one Redis server: it does not take --cluster");
    }
    if args.history_from.is_some()
        && !(args.archive_url.starts_with("http://") || args.archive_url.starts_with("https://"))
    {
        bail!(
            "--archive-url '{}' must start with http:// or https://",
            args.archive_url
        );
    }
    if args.backoff_min.is_zero() || args.backoff_min > args.backoff_max {
        bail!("--backoff-min must be > 0 and <= --backoff-max");
    }
    if args.ws_idle_timeout.is_zero() || args.ws_max_age.is_zero() {
        bail!("--ws-idle-timeout and --ws-max-age must be > 0");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes the tests that read or set the environment.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn args(v: &[&str]) -> Args {
        let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = vec!["candles-feed"];
        all.extend_from_slice(v);
        Args::try_parse_from(all).unwrap()
    }

    #[test]
    fn default_key_is_cluster_tagged() {
        let s = Series::new("btcusdt", Interval::M1, "candle:{SYMBOL}:INTERVAL");
        assert_eq!(s.key, "candle:{BTCUSDT}:1m");
        assert_eq!(s.stream_name(), "btcusdt@kline_1m");
        assert_eq!(
            candle_key("c/SYMBOL/INTERVAL", "ETHUSDT", Interval::Mo1),
            "c/ETHUSDT/1M"
        );
        let a = args(&["--symbols", "BTCUSDT"]);
        assert_eq!(series_of(&a).unwrap()[0].key, "candle:{BTCUSDT}:1m");
        assert_eq!(a.ticks_key, "ticks:{binance}");
    }

    #[test]
    fn symbols_times_intervals() {
        let a = args(&["--symbols", "btcusdt, ETHUSDT", "--intervals", "1m,1h,1m"]);
        let s = series_of(&a).unwrap();
        let keys: Vec<_> = s.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "candle:{BTCUSDT}:1m",
                "candle:{BTCUSDT}:1h",
                "candle:{ETHUSDT}:1m",
                "candle:{ETHUSDT}:1h"
            ]
        );
        assert!(validate(&a).is_ok());
        assert!(validate(&args(&["--symbols", "BTC-USDT"])).is_err());
        assert!(validate(&args(&["--symbols", "BTCUSDT", "--intervals", "2m"])).is_err());
        assert!(validate(&args(&[])).is_err(), "symbols required");
        assert!(validate(&args(&["--replay", "x.jsonl"])).is_ok());
        assert!(validate(&args(&["--symbols", "BTCUSDT", "--ws-url", "http://x"])).is_err());
    }

    #[test]
    fn env_vars_are_read() {
        let a = {
            let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
            std::env::set_var("CANDLES_FEED_SYMBOLS", "DOTUSDT,ETHUSDT");
            std::env::set_var("CANDLES_FEED_TICKS", "true");
            let a = Args::try_parse_from(["candles-feed"]).unwrap();
            std::env::remove_var("CANDLES_FEED_SYMBOLS");
            std::env::remove_var("CANDLES_FEED_TICKS");
            a
        };
        assert_eq!(a.symbols, ["DOTUSDT", "ETHUSDT"]);
        assert!(a.ticks);
        let a = {
            let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
            std::env::set_var("CANDLES_FEED_REDIS", "redis://h1:7000,redis://h2:7000");
            std::env::set_var("CANDLES_FEED_CLUSTER", "true");
            std::env::set_var("CANDLES_FEED_SHARD", "2/4");
            let a = Args::try_parse_from(["candles-feed", "--symbols", "X"]).unwrap();
            for v in [
                "CANDLES_FEED_REDIS",
                "CANDLES_FEED_CLUSTER",
                "CANDLES_FEED_SHARD",
            ] {
                std::env::remove_var(v);
            }
            a
        };
        assert!(a.cluster && validate(&a).is_ok());
        assert_eq!(redis_urls(&a), ["redis://h1:7000", "redis://h2:7000"]);
        assert_eq!(a.shard, Some(crate::shard::Shard { k: 2, n: 4 }));
    }

    #[test]
    fn cluster_shard_history_options() {
        let a = args(&["--symbols", "X", "--redis", "redis://a:1,redis://b:2"]);
        assert!(validate(&a).is_err(), "several URLs need --cluster");
        let a = args(&[
            "--symbols",
            "X",
            "--cluster",
            "--redis",
            "redis://a:1, redis://b:2,",
        ]);
        assert!(validate(&a).is_ok());
        assert_eq!(redis_urls(&a), ["redis://a:1", "redis://b:2"]);
        let a = args(&[
            "--symbols",
            "X",
            "--cluster",
            "--redis",
            "redis://a:1,http://b",
        ]);
        assert!(validate(&a).is_err());
        let a = args(&[
            "--symbols",
            "A,B,C,D,E,F",
            "--intervals",
            "1m,1h",
            "--shard",
            "2/3",
        ]);
        let mine = my_series(&a).unwrap();
        assert!(mine
            .iter()
            .all(|s| crate::shard::Shard::owner_of(&s.symbol, 3) == 2));
        let mut union = Vec::new();
        for k in 1..=3 {
            let a = args(&[
                "--symbols",
                "A,B,C,D,E,F",
                "--intervals",
                "1m,1h",
                "--shard",
                &format!("{k}/3"),
            ]);
            union.extend(my_series(&a).unwrap().into_iter().map(|s| s.key));
        }
        union.sort();
        let mut all: Vec<String> = series_of(&a).unwrap().into_iter().map(|s| s.key).collect();
        all.sort();
        assert_eq!(union, all, "the shards cover every series once");
        let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
        assert!(Args::try_parse_from(["candles-feed", "--shard", "4/3"]).is_err());
        assert!(Args::try_parse_from(["candles-feed", "--history-from", "2024-13-01"]).is_err());
        let a = Args::try_parse_from(["candles-feed", "--history-from", "2024-09"]).unwrap();
        assert_eq!(a.history_from, Some(1_725_148_800_000));
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("23h50m").unwrap(),
            Duration::from_secs(23 * 3600 + 50 * 60)
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        for bad in ["", "x", "5y", "m5", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let a = args(&["--symbols", "X"]);
        assert_eq!(a.ws_max_age, Duration::from_secs(85_800));
        assert_eq!(a.stats_interval, Duration::from_secs(60));
        let a = args(&["--symbols", "X", "--stats-interval", "0"]);
        assert_eq!(a.stats_interval, Duration::ZERO);
    }
}
