//! The feeder's wiring: validates the options, then either replays a recording or runs the
//! bootstrap, the WebSocket readers, the writer and the gap filler until shutdown.

use crate::backoff::{Backoff, Shutdown};
use crate::bootstrap::bootstrap;
use crate::config::{self, Args};
use crate::derive;
use crate::gapfill::gap_filler;
use crate::rest::{Rest, MAX_LIMIT};
use crate::route::{Router, RouterOptions};
use crate::sink::Sink;
use crate::stats;
use crate::stream::{stream_chunks, stream_url, ws_reader, CHANNEL_CAPACITY};
use crate::writer::{Writer, WriterOptions};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{error, info};

pub use crate::replay::{replay, ReplayStats};
pub use crate::stream::{Msg, Utf8Bytes};
pub use crate::writer::{GapCheck, Hooks, MAX_BATCH};

/// Installs rustls' crypto provider (ring) once; wss:// and https:// need it.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs the feeder until shutdown (live) or the end of the file (replay), logging its counters
/// every `--stats-interval` and once at exit.
pub async fn run(args: Args, shutdown: Shutdown, hooks: Hooks) -> anyhow::Result<()> {
    config::validate(&args)?;
    init_tls();
    let started = Instant::now();
    let reporter = tokio::spawn(stats::reporter(args.stats_interval, shutdown.clone()));
    let r = run_inner(args, shutdown, hooks).await;
    reporter.abort();
    stats::log_exit(started.elapsed());
    r
}

async fn run_inner(args: Args, shutdown: Shutdown, hooks: Hooks) -> anyhow::Result<()> {
    if let Some(file) = args.replay.clone() {
        let stats = replay(&args, &file, &shutdown).await?;
        let frames_per_sec = format!(
            "{:.0}",
            stats.frames as f64 / stats.elapsed.as_secs_f64().max(1e-9)
        );
        let seconds = format!("{:.3}", stats.elapsed.as_secs_f64());
        if stats.failed == 0 {
            info!(
                frames = stats.frames,
                not_understood = stats.invalid,
                commands = stats.commands,
                failed = 0,
                seconds,
                frames_per_sec,
                "replay done"
            );
        } else {
            for f in &stats.failures {
                error!(key = %f.key, error = %f.error, commands = f.commands, "replay: commands refused");
            }
            let named: u64 = stats.failures.iter().map(|f| f.commands).sum();
            if named < stats.failed {
                error!(
                    commands = stats.failed - named,
                    "replay: more commands refused (other keys or errors)"
                );
            }
            anyhow::bail!(
                "replay: redis refused {} of {} commands ({} frames, {} s)",
                stats.failed,
                stats.commands,
                stats.frames,
                seconds
            );
        }
        return Ok(());
    }
    let series = config::my_series(&args)?;
    if let Some(sh) = args.shard {
        let mut symbols: Vec<&str> = series.iter().map(|s| s.symbol.as_str()).collect();
        symbols.dedup();
        info!(shard = %sh, symbols = symbols.len(), list = %symbols.join(","), "this shard's symbols");
        if series.is_empty() {
            tracing::warn!(shard = %sh, "no symbol falls in this shard: nothing to feed");
        }
    }
    // --derive: only the smallest interval of each symbol comes from the exchange stream;
    // the others are derived inside Redis (created here, their older history from REST).
    let derived_args = args.clone();
    let mut args = args;
    let (series, derived) = if args.derive {
        let plan = derive::plan(&series)?;
        derive::create_links(&mut Sink::from_args(&args)?, &plan, &shutdown).await?;
        if args.bootstrap > 0 {
            let depth = plan
                .streamed
                .iter()
                .map(|s| derive::source_depth(&plan, s))
                .max()
                .unwrap_or(0);
            args.bootstrap = args.bootstrap.max(depth);
        }
        let derived: Vec<_> = plan.derived.into_iter().map(|l| l.series).collect();
        (plan.streamed, derived)
    } else {
        (series, Vec::new())
    };
    let rest = Arc::new(Rest::new(
        &args.rest_url,
        args.weight_limit,
        args.backoff_min,
        args.backoff_max,
        shutdown.clone(),
    )?);
    let sink = Sink::from_args(&args)?;
    info!(
        series = series.len(),
        redis = %args.redis,
        rest = %args.rest_url,
        ws = %args.ws_url,
        cluster = args.cluster,
        history_from = args.history_from.is_some(),
        ticks = args.ticks,
        live_tick = args.live_tick,
        "candles-feed starting"
    );
    let chunks = stream_chunks(
        &series,
        args.ticks || args.live_tick,
        args.streams_per_connection as usize,
    );
    let conn_series: Vec<Vec<usize>> = chunks
        .iter()
        .map(|names| {
            (0..series.len())
                .filter(|&i| names.contains(&series[i].stream_name()))
                .collect()
        })
        .collect();
    let (msg_tx, msg_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (gap_tx, gap_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(gap_filler(
        Sink::from_args(&args)?,
        rest.clone(),
        series.clone(),
        gap_rx,
        gap_tx.clone(),
        args.clone(),
        shutdown.clone(),
    )));
    for (c, names) in chunks.into_iter().enumerate() {
        let url = stream_url(&args.ws_url, &names);
        tasks.push(tokio::spawn(ws_reader(
            c,
            url,
            names.len(),
            args.clone(),
            msg_tx.clone(),
            shutdown.clone(),
        )));
    }
    // Every series bootstraps on its own schedule while the streams already run (see
    // bootstrap.rs): a series whose REST keeps failing delays no other. With --derive, the
    // derived series' history follows once their sources are stored (the module keeps to
    // the source what the source covers, so it must be known first); those notices have no
    // writer to tell (derived series are not streamed or gap-filled: their source is).
    let boot = bootstrap(
        args.clone(),
        series.clone(),
        rest.clone(),
        Sink::from_args(&args)?,
        msg_tx.clone(),
        shutdown.clone(),
    );
    let derived_boot = if derived.is_empty() {
        None
    } else {
        let (tx, mut rx) = mpsc::channel(16);
        tasks.push(tokio::spawn(
            async move { while rx.recv().await.is_some() {} },
        ));
        Some(bootstrap(
            derived_args,
            derived,
            rest.clone(),
            Sink::from_args(&args)?,
            tx,
            shutdown.clone(),
        ))
    };
    tasks.push(tokio::spawn(async move {
        boot.await;
        if let Some(b) = derived_boot {
            b.await;
        }
    }));
    drop(msg_tx);
    if args.history_from.is_some() {
        let sinks = (0..crate::bootstrap::CONCURRENCY)
            .map(|_| Sink::from_args(&args))
            .collect::<anyhow::Result<Vec<Sink>>>()?;
        tasks.push(tokio::spawn(crate::archive::backfill(
            args.clone(),
            series.clone(),
            sinks,
            gap_tx.clone(),
            shutdown.clone(),
        )));
    }
    let router = Router::new(series.clone(), RouterOptions::from_args(&args, false));
    let w = Writer::new(
        sink,
        router,
        vec![None; series.len()],
        conn_series,
        gap_tx,
        hooks,
        WriterOptions {
            lookback: args.bootstrap.max(MAX_LIMIT),
            backoff: Backoff::new(args.backoff_min, args.backoff_max),
        },
    );
    w.run(msg_rx, &shutdown).await;
    for t in tasks {
        t.abort();
    }
    info!("candles-feed stopped");
    Ok(())
}
