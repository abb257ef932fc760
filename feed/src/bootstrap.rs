//! Bootstrap: before streaming, stores the last `--bootstrap` candles of every series, fetched by
//! REST (paged by 1000), with `CANDLE.OFFICIAL_ADD`, with a progress bar or log lines.

use crate::backoff::{Backoff, Shutdown};
use crate::config::{Args, Progress, Series};
use crate::rest::{Rest, RestError};
use crate::route;
use crate::sink::{Sink, SinkError};
use std::io::IsTerminal;
use std::time::Instant;
use tracing::{debug, error, info};

/// Stores the last `--bootstrap` candles of every series; returns the oldest open time stored
/// for each (None if nothing).
pub async fn bootstrap(
    args: &Args,
    series: &[Series],
    rest: &Rest,
    sink: &mut Sink,
    shutdown: &Shutdown,
) -> Vec<Option<i64>> {
    let mut first_known = vec![None; series.len()];
    if args.bootstrap == 0 {
        return first_known;
    }
    let bar_wanted = match args.progress {
        Progress::Bar => true,
        Progress::Log => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    let bar = if bar_wanted {
        let pb = indicatif::ProgressBar::new(series.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "bootstrap [{bar:30}] {pos}/{len} series {msg} ({elapsed})",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        Some(pb)
    } else {
        None
    };
    let started = Instant::now();
    let mut backoff = Backoff::new(args.backoff_min, args.backoff_max);
    let mut total = 0usize;
    for (i, s) in series.iter().enumerate() {
        if let Some(pb) = &bar {
            pb.set_message(format!("{} {}", s.symbol, s.interval));
        }
        let pages = match rest
            .last_klines(&s.symbol, s.interval, args.bootstrap)
            .await
        {
            Ok(p) => p,
            Err(RestError::Shutdown) => return first_known,
            Err(e) => {
                error!(symbol = %s.symbol, interval = %s.interval, error = %e, "bootstrap failed for this series (skipped)");
                continue;
            }
        };
        let mut n = 0;
        for p in &pages {
            let cmd = route::official_add(&s.key, s.interval, p.body.as_bytes());
            match sink
                .exec_retrying(std::slice::from_ref(&cmd), &mut backoff, shutdown)
                .await
            {
                Ok(_) => n += p.rows,
                Err(SinkError::Shutdown) => return first_known,
                Err(e) => {
                    error!(key = %s.key, error = %e, "bootstrap: CANDLE.OFFICIAL_ADD refused")
                }
            }
        }
        first_known[i] = pages.first().map(|p| p.first_open);
        total += n;
        let msg = format!(
            "bootstrap {}/{}: {} {} {} candles into {}",
            i + 1,
            series.len(),
            s.symbol,
            s.interval,
            n,
            s.key
        );
        match &bar {
            Some(pb) => {
                pb.inc(1);
                debug!("{msg}");
            }
            None => {
                info!(symbol = %s.symbol, interval = %s.interval, candles = n, key = %s.key, progress = format!("{}/{}", i + 1, series.len()), "bootstrap")
            }
        }
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    info!(
        series = series.len(),
        candles = total,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "bootstrap done"
    );
    first_known
}
