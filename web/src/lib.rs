//! candles-web: the chart gateway of redis-candles (SPEC §7). A chart page, a JSON API over
//! `CANDLE.RANGE_MERGED … FORMAT JSON`, and WebSocket viewers fed from the module's keyspace
//! events through one subscription per Redis master. Read-only.
//!
//! * [`config`]: the options;
//! * [`backend`]: every Redis read, series listing, the masters of a cluster;
//! * [`hub`]: the keyspace subscription and the per-series fan-out;
//! * [`http`]: the page, the API and the WebSocket endpoint.

pub mod backend;
pub mod config;
pub mod http;
pub mod hub;

pub use config::Args;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub fn init_logging(format: config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        config::LogFormat::Text => b.try_init(),
        config::LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
}

/// Serves until `shutdown` turns true.
pub async fn run(args: Args, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    // Bind first: a taken port is reported at once, before waiting for Redis.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr()?;
    let stop = shutdown.clone();
    let backend =
        match backend::Backend::connect(&args.redis, args.cluster, &args.keys, || *stop.borrow())
            .await
        {
            Ok(b) => b,
            Err(e) if *stop.borrow() => {
                tracing::info!("stopped before Redis answered ({e:#})");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
    tracing::info!(
        redis = %args.redis.iter().map(|u| config::redact(u)).collect::<Vec<_>>().join(","),
        cluster = args.cluster,
        keys = %args.keys,
        "connected to Redis"
    );
    backend.check_notifications().await;
    let hub = hub::Hub::new(backend.clone(), args.snapshot, args.viewer_queue);
    tokio::spawn(hub::subscribe(hub.clone(), shutdown.clone()));
    let state = Arc::new(http::AppState {
        backend,
        hub: hub.clone(),
        viewers: AtomicUsize::new(0),
        max_viewers: args.max_viewers,
        max_count: args.max_count,
        max_series: args.max_series,
        snapshot: args.snapshot,
        shutdown: shutdown.clone(),
    });
    if !local.ip().is_loopback() {
        tracing::warn!(listen = %local, "listening beyond loopback: anyone who can reach it sees every served series");
    }
    tracing::info!(url = %format!("http://{local}/"), "candles-web listening");
    let stats_state = state.clone();
    let mut stats_stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stats_stop.changed() => return,
            }
            let s = &stats_state.hub.stats;
            tracing::info!(
                viewers = stats_state.viewers.load(Ordering::Relaxed),
                series_watched = stats_state.hub.watched(),
                events = s.events.load(Ordering::Relaxed),
                updates = s.updates.load(Ordering::Relaxed),
                dropped_slow = s.dropped_slow.load(Ordering::Relaxed),
                "stats"
            );
        }
    });
    let mut stop = shutdown.clone();
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|v| *v).await;
        })
        .await?;
    Ok(())
}
