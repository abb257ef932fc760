//! Bootstrap: stores the last `--bootstrap` candles of every series, fetched by REST (paged by
//! 1000), with `CANDLE.OFFICIAL_ADD`, with a progress bar or log lines.
//!
//! Every series bootstraps on its own: its own retries and backoff, at most
//! [`CONCURRENCY`] series asking REST at once (a series waiting out its backoff holds no
//! slot), so a series whose REST keeps failing never delays the others. It runs beside the
//! streams: the frames of a series still bootstrapping are written as they come, and once its
//! history is stored the writer is told ([`Msg::Bootstrapped`]) and gap-checks the range
//! between the two.

use crate::backoff::{Backoff, Shutdown};
use crate::config::{Args, Progress, Series};
use crate::rest::{Rest, RestError};
use crate::route;
use crate::sink::{Sink, SinkError};
use crate::stream::Msg;
use futures_util::future::join_all;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Mutex, Semaphore};
use tracing::{debug, error, info, warn};

/// Series asking REST at the same time during the bootstrap.
pub const CONCURRENCY: usize = 4;

struct Ctx<'a> {
    args: &'a Args,
    rest: &'a Rest,
    sink: Mutex<Sink>,
    slots: Semaphore,
    tx: &'a mpsc::Sender<Msg>,
    shutdown: &'a Shutdown,
    bar: Option<indicatif::ProgressBar>,
    done: AtomicUsize,
    total: usize,
}

/// Stores the last `--bootstrap` candles of every series, each on its own schedule; tells the
/// writer through `tx` as each one is stored. Returns once every series is stored or skipped
/// (a permanent 4xx such as an unknown symbol), or at shutdown.
pub async fn bootstrap(
    args: Args,
    series: Vec<Series>,
    rest: Arc<Rest>,
    sink: Sink,
    tx: mpsc::Sender<Msg>,
    shutdown: Shutdown,
) {
    if args.bootstrap == 0 || series.is_empty() {
        return;
    }
    let bar_wanted = match args.progress {
        Progress::Bar => true,
        Progress::Log => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    let bar = if bar_wanted {
        let pb = indicatif::ProgressBar::new(series.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "bootstrap [{bar:30}] {pos}/{len} series ({elapsed})",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        Some(pb)
    } else {
        None
    };
    let started = Instant::now();
    let ctx = Ctx {
        args: &args,
        rest: &rest,
        sink: Mutex::new(sink),
        slots: Semaphore::new(CONCURRENCY),
        tx: &tx,
        shutdown: &shutdown,
        bar,
        done: AtomicUsize::new(0),
        total: series.len(),
    };
    let stored: Vec<Option<usize>> =
        join_all(series.iter().enumerate().map(|(i, s)| one(&ctx, i, s))).await;
    if let Some(pb) = &ctx.bar {
        pb.finish_and_clear();
    }
    if shutdown.is_set() {
        return;
    }
    let ok = stored.iter().filter(|n| n.is_some()).count();
    info!(
        series = series.len(),
        stored = ok,
        skipped = series.len() - ok,
        candles = stored.iter().flatten().sum::<usize>(),
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "bootstrap done"
    );
}

/// One series: retried with its own backoff until REST answers; `Some(candles)` once stored,
/// None if skipped or at shutdown.
async fn one(ctx: &Ctx<'_>, i: usize, s: &Series) -> Option<usize> {
    let mut backoff = Backoff::new(ctx.args.backoff_min, ctx.args.backoff_max);
    let pages = loop {
        let r = {
            let _slot = tokio::select! {
                _ = ctx.shutdown.wait() => return None,
                p = ctx.slots.acquire() => p.ok()?,
            };
            ctx.rest
                .last_klines_tries(&s.symbol, s.interval, ctx.args.bootstrap, 1)
                .await
        };
        let err = match r {
            Ok(p) => break p,
            Err(RestError::Shutdown) => return None,
            Err(e) if e.is_permanent() => {
                error!(symbol = %s.symbol, interval = %s.interval, error = %e, "bootstrap failed for this series (skipped)");
                finished(ctx, s, 0, false);
                return None;
            }
            Err(e) => e,
        };
        let wait = match &err {
            RestError::RateLimited { after, .. } => *after,
            _ => backoff.next_delay(),
        };
        warn!(symbol = %s.symbol, interval = %s.interval, error = %err, retry_in_ms = wait.as_millis() as u64, attempt = backoff.attempts(), "REST klines request failed, retrying (bootstrap of this series; the others go on)");
        if !ctx.shutdown.sleep(wait).await {
            return None;
        }
    };
    let mut n = 0;
    let mut first_open = None;
    {
        let mut sink = ctx.sink.lock().await;
        let mut backoff = Backoff::new(ctx.args.backoff_min, ctx.args.backoff_max);
        for p in &pages {
            let cmd = route::official_add(&s.key, s.interval, p.body.as_bytes());
            match sink
                .exec_retrying(std::slice::from_ref(&cmd), &mut backoff, ctx.shutdown)
                .await
            {
                Ok(_) => {
                    n += p.rows;
                    first_open = first_open.or(Some(p.first_open));
                }
                Err(SinkError::Shutdown) => return None,
                Err(e) => {
                    error!(key = %s.key, error = %e, "bootstrap: CANDLE.OFFICIAL_ADD refused")
                }
            }
        }
    }
    if ctx
        .tx
        .send(Msg::Bootstrapped {
            series: i,
            first_open,
        })
        .await
        .is_err()
    {
        return None;
    }
    finished(ctx, s, n, true);
    Some(n)
}

fn finished(ctx: &Ctx<'_>, s: &Series, n: usize, stored: bool) {
    let done = ctx.done.fetch_add(1, Ordering::Relaxed) + 1;
    let progress = format!("{done}/{}", ctx.total);
    match &ctx.bar {
        Some(pb) => {
            pb.inc(1);
            debug!(symbol = %s.symbol, interval = %s.interval, candles = n, key = %s.key, progress, stored, "bootstrap");
        }
        None if stored => {
            info!(symbol = %s.symbol, interval = %s.interval, candles = n, key = %s.key, progress, "bootstrap")
        }
        None => {}
    }
}
