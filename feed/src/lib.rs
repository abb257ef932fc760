//! candles-feed: feeds redis-candles from Binance (REST bootstrap + gap fill, combined
//! WebSocket streams), or from a recording (`--replay`).

pub mod app;
pub mod archive;
pub mod backoff;
pub mod bootstrap;
pub mod cluster;
pub mod config;
pub mod derive;
pub mod errors;
pub mod gapfill;
pub mod quiet;
pub mod replay;
pub mod rest;
pub mod route;
pub mod shard;
pub mod sink;
pub mod stats;
pub mod stream;
pub mod writer;

pub use app::{run, Hooks};
pub use config::Args;

/// The runtime the binary runs on. `CANDLES_FEED_RUNTIME=multi` gives two worker threads;
/// the default is one thread (fewest cross-thread wake-ups between reading a frame and
/// writing it to Redis; the feeder needs a few µs of CPU per frame).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    if std::env::var("CANDLES_FEED_RUNTIME").is_ok_and(|v| v == "multi") {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}

/// Sets up `tracing` (text or JSON lines on stderr; `RUST_LOG` filters, default `info`). Write
/// errors are ignored: a closed stderr never stops the feeder.
pub fn init_logging(format: config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(quiet::QuietStderr)
        .log_internal_errors(false);
    let _ = match format {
        config::LogFormat::Text => b.try_init(),
        config::LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
}
