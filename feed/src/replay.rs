//! Replay: sends the commands of every frame of a recording (`--replay FILE`) with the live
//! routing, batch by batch, then exits.

use crate::app::router_options;
use crate::backoff::{Backoff, Shutdown};
use crate::config::Args;
use crate::route::{self, Command, Router, Seen};
use crate::sink::{Sink, SinkError};
use crate::writer::truncate;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayStats {
    pub frames: u64,
    pub commands: u64,
    pub reply_errors: u64,
    pub elapsed: Duration,
}

/// Sends the commands of every recorded frame (same routing as live), batch by batch.
pub async fn replay(
    args: &Args,
    file: &std::path::Path,
    shutdown: &Shutdown,
) -> anyhow::Result<ReplayStats> {
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| anyhow::anyhow!("--replay {}: {e}", file.display()))?;
    let mut router = Router::new(Vec::new(), router_options(args, true));
    let mut sink = Sink::new(&args.redis)?;
    let mut backoff = Backoff::new(args.backoff_min, args.backoff_max);
    let started = Instant::now();
    let mut stats = ReplayStats::default();
    let mut invalid = 0u64;
    info!(file = %file.display(), redis = %args.redis, "replay starting");
    // Parsing here and writing in a task overlap: while redis runs one pipeline, the next is
    // being built. The channel keeps the order.
    let (tx, mut rx) = mpsc::channel::<Vec<Command>>(2);
    let wshutdown = shutdown.clone();
    let writer = tokio::spawn(async move {
        let mut reply_errors = 0u64;
        while let Some(cmds) = rx.recv().await {
            match sink.exec_retrying(&cmds, &mut backoff, &wshutdown).await {
                Ok(_) => {}
                Err(SinkError::Shutdown) => break,
                Err(e) => {
                    reply_errors += 1;
                    if reply_errors <= 5 {
                        warn!(error = %e, "replay: redis refused a command of the batch");
                    }
                }
            }
        }
        reply_errors
    });
    let mut cmds = Vec::with_capacity(2048);
    let mut lines = text.lines().peekable();
    while lines.peek().is_some() {
        if shutdown.is_set() {
            break;
        }
        for line in lines.by_ref() {
            let Some(frame) = route::unwrap_recorded(line) else {
                continue;
            };
            stats.frames += 1;
            if let Seen::Invalid(e) = router.route(frame, &mut cmds) {
                invalid += 1;
                if invalid <= 5 {
                    warn!(error = %e, line = %truncate(line, 160), "replay: line not understood (skipped)");
                }
            }
            if cmds.len() >= 1024 {
                break;
            }
        }
        if !cmds.is_empty() {
            stats.commands += cmds.len() as u64;
            let batch = std::mem::replace(&mut cmds, Vec::with_capacity(1024));
            if tx.send(batch).await.is_err() {
                break;
            }
        }
    }
    drop(tx);
    stats.reply_errors = writer.await.unwrap_or(0);
    stats.elapsed = started.elapsed();
    Ok(stats)
}
