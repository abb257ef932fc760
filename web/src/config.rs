//! Command-line options (each also an environment variable; the flag wins).

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// candles-web: a live chart of the candle series in a Redis with redis-candles.
#[derive(Clone, Debug, Parser)]
#[command(name = "candles-web", version, about)]
pub struct Args {
    /// Redis URL (`redis://[user:pass@]host:port[/db]`, `rediss://` for TLS, `unix://`). With
    /// `--cluster`, one or more seed URLs, comma-separated (or the flag repeated).
    #[arg(
        long,
        env = "CANDLES_WEB_REDIS",
        default_value = "redis://127.0.0.1:6379",
        value_delimiter = ','
    )]
    pub redis: Vec<String>,

    /// Serve a Redis Cluster: `--redis` are seed nodes; every master's keyspace events are
    /// subscribed.
    #[arg(long, env = "CANDLES_WEB_CLUSTER")]
    pub cluster: bool,

    /// Address to listen on. Loopback by default: put a reverse proxy in front to publish it.
    #[arg(long, env = "CANDLES_WEB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Serve only the candle series whose key matches this Redis glob pattern.
    #[arg(long, env = "CANDLES_WEB_KEYS", default_value = "*")]
    pub keys: String,

    /// Most WebSocket viewers at once (further ones get HTTP 503).
    #[arg(long, env = "CANDLES_WEB_MAX_VIEWERS", default_value_t = 1000)]
    pub max_viewers: usize,

    /// Messages queued per viewer; a viewer that falls this far behind is dropped.
    #[arg(long, env = "CANDLES_WEB_VIEWER_QUEUE", default_value_t = 64)]
    pub viewer_queue: usize,

    /// Candles in a WebSocket snapshot (and the window updates are computed on).
    #[arg(long, env = "CANDLES_WEB_SNAPSHOT", default_value_t = 720)]
    pub snapshot: usize,

    /// Largest `count` of `/api/candles`.
    #[arg(long, env = "CANDLES_WEB_MAX_COUNT", default_value_t = 10_000)]
    pub max_count: usize,

    /// Most series listed by `/api/series`.
    #[arg(long, env = "CANDLES_WEB_MAX_SERIES", default_value_t = 10_000)]
    pub max_series: usize,

    /// Log lines on stderr: text or json; `RUST_LOG` filters (default `info`).
    #[arg(
        long,
        env = "CANDLES_WEB_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

impl Args {
    /// Checks what clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.redis.is_empty() || self.redis.iter().any(|u| u.trim().is_empty()) {
            anyhow::bail!("--redis: give a URL");
        }
        if !self.cluster && self.redis.len() > 1 {
            anyhow::bail!("--redis: several URLs need --cluster");
        }
        for u in &self.redis {
            redis::parse_redis_url(u)
                .ok_or_else(|| anyhow::anyhow!("--redis: '{}' is not a Redis URL", redact(u)))?;
        }
        if self.keys.is_empty() || self.keys.len() > 512 {
            anyhow::bail!("--keys: a pattern of 1 to 512 bytes");
        }
        if self.max_viewers == 0 || self.viewer_queue == 0 {
            anyhow::bail!("--max-viewers and --viewer-queue must be at least 1");
        }
        if !(1..=10_000).contains(&self.snapshot) {
            anyhow::bail!("--snapshot must be between 1 and 10000");
        }
        if !(1..=10_000_000).contains(&self.max_count) {
            anyhow::bail!("--max-count must be between 1 and 10000000");
        }
        Ok(())
    }
}

/// A URL with its password replaced, for log lines.
pub fn redact(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
