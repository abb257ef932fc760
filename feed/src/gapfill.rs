//! The gap filler: for each [`GapCheck`] of the writer, asks `CANDLE.GAPS` and fetches exactly
//! the missing ranges by REST (a series that vanished, e.g. Redis restarted empty, is missing
//! whole); ranges the exchange answers empty are not asked again.

use crate::backoff::{Backoff, Shutdown};
use crate::config::{Args, Series};
use crate::rest::{next_page_start, Rest, RestError, MAX_LIMIT};
use crate::route::{self, Command};
use crate::sink::{parse_gaps, Sink, SinkError};
use crate::stats::STATS;
use crate::writer::GapCheck;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

/// REST tries for one page of a gap before the gap is put aside (and asked again after
/// `--backoff-max`), so one symbol whose REST keeps failing does not hold the others' gaps.
pub const GAP_TRIES: u32 = 3;

/// `requeue`: where a gap whose REST kept failing is sent again later (the sender of `rx`).
pub async fn gap_filler(
    mut sink: Sink,
    rest: Arc<Rest>,
    series: Vec<Series>,
    mut rx: mpsc::UnboundedReceiver<GapCheck>,
    requeue: mpsc::UnboundedSender<GapCheck>,
    args: Args,
    shutdown: Shutdown,
) {
    let mut backoff = Backoff::new(args.backoff_min, args.backoff_max);
    // Ranges the exchange answered empty: do not ask again.
    let mut known_empty: HashMap<usize, Vec<(i64, i64)>> = HashMap::new();
    loop {
        let first = tokio::select! {
            _ = shutdown.wait() => return,
            c = rx.recv() => match c { Some(c) => c, None => return },
        };
        // Merge what queued up: one check per series.
        let mut pending: Vec<GapCheck> = vec![first];
        while let Ok(c) = rx.try_recv() {
            match pending.iter_mut().find(|p| p.series == c.series) {
                Some(p) => {
                    p.from = p.from.min(c.from);
                    p.to = p.to.max(c.to);
                }
                None => pending.push(c),
            }
        }
        for c in pending {
            let Some(s) = series.get(c.series) else {
                continue;
            };
            let reply = loop {
                match sink.query(&route::gaps(&s.key, c.from, c.to)).await {
                    Ok(v) => break Some(v),
                    Err(SinkError::Connection(e)) => {
                        let d = backoff.next_delay();
                        warn!(error = %e, retry_in_ms = d.as_millis() as u64, "gap check: redis unavailable, retrying");
                        if !shutdown.sleep(d).await {
                            return;
                        }
                    }
                    Err(e) => {
                        // A series that does not exist (redis restarted empty, key deleted):
                        // the whole range is missing.
                        let exists = sink
                            .query(&Command::new(["EXISTS".to_string(), s.key.clone()]))
                            .await;
                        if matches!(exists, Ok(redis::Value::Int(0))) {
                            break Some(redis::Value::Array(vec![redis::Value::Array(vec![
                                redis::Value::Int(c.from),
                                redis::Value::Int(c.to),
                            ])]));
                        }
                        error!(key = %s.key, error = %e, "CANDLE.GAPS failed");
                        break None;
                    }
                }
            };
            backoff.reset();
            let Some(reply) = reply else { continue };
            let gaps = match parse_gaps(&reply) {
                Ok(g) => g,
                Err(e) => {
                    error!(key = %s.key, error = %e, "unexpected CANDLE.GAPS reply");
                    continue;
                }
            };
            debug!(key = %s.key, from = c.from, to = c.to, gaps = gaps.len(), "gap check");
            for (from, to) in gaps {
                let empty = known_empty.entry(c.series).or_default();
                if empty.iter().any(|&(a, b)| a <= from && to <= b) {
                    continue;
                }
                match fill(&mut sink, &rest, s, from, to, &mut backoff, &shutdown).await {
                    Ok(0) => {
                        info!(key = %s.key, from, to, "gap: the exchange has no candles there");
                        empty.push((from, to));
                    }
                    Ok(n) => {
                        STATS.add_gap_fill(n as u64);
                        info!(key = %s.key, from, to, candles = n, "gap filled")
                    }
                    Err(FillError::Shutdown) => return,
                    Err(FillError::Other(e)) => {
                        error!(key = %s.key, from, to, error = %e, "gap fill failed")
                    }
                    Err(FillError::Later(e)) => {
                        let d = args.backoff_max;
                        error!(key = %s.key, from, to, error = %e, retry_in_ms = d.as_millis() as u64, "gap fill failed, will try again (the other series go on)");
                        let (tx, sh) = (requeue.clone(), shutdown.clone());
                        let again = GapCheck {
                            series: c.series,
                            from,
                            to,
                        };
                        tokio::spawn(async move {
                            if sh.sleep(d).await {
                                let _ = tx.send(again);
                            }
                        });
                    }
                }
            }
        }
    }
}

enum FillError {
    Shutdown,
    /// Will not get better by asking again (a 4xx, a refused write).
    Other(String),
    /// REST kept failing: ask again later.
    Later(String),
}

async fn fill(
    sink: &mut Sink,
    rest: &Rest,
    s: &Series,
    from: i64,
    to: i64,
    backoff: &mut Backoff,
    shutdown: &Shutdown,
) -> Result<usize, FillError> {
    let mut start = from;
    let mut total = 0;
    loop {
        let page = match rest
            .klines_tries(
                &s.symbol,
                s.interval,
                Some(start),
                Some(to),
                MAX_LIMIT,
                GAP_TRIES,
            )
            .await
        {
            Ok(p) => p,
            Err(RestError::Shutdown) => return Err(FillError::Shutdown),
            Err(e) if e.is_permanent() => return Err(FillError::Other(e.to_string())),
            Err(e) => return Err(FillError::Later(e.to_string())),
        };
        if page.rows > 0 {
            let cmd = route::official_add(&s.key, s.interval, page.body.as_bytes());
            match sink
                .exec_retrying(std::slice::from_ref(&cmd), backoff, shutdown)
                .await
            {
                Ok(_) => total += page.rows,
                Err(SinkError::Shutdown) => return Err(FillError::Shutdown),
                Err(e) => return Err(FillError::Other(e.to_string())),
            }
        }
        match next_page_start(&page, MAX_LIMIT, to, s.interval) {
            Some(n) => start = n,
            None => return Ok(total),
        }
    }
}
