//! Replay: sends the commands of every frame of a recording (`--replay FILE`) with the live
//! routing, batch by batch, then exits.

use crate::backoff::{Backoff, Shutdown};
use crate::config::Args;
use crate::route::{self, Command, Router, RouterOptions, Seen};
use crate::sink::{Sink, SinkError};
use crate::stats::STATS;
use crate::writer::truncate;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Distinct (key, error) pairs kept for the summary; the commands beyond them are still counted.
pub const MAX_FAILURE_KINDS: usize = 20;

/// Commands the server refused with the same error on the same key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub key: String,
    pub error: String,
    pub commands: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ReplayStats {
    /// Recorded frames read (lines that hold a frame).
    pub frames: u64,
    /// Frames that were not understood (skipped).
    pub invalid: u64,
    /// Commands sent.
    pub commands: u64,
    /// Commands the server refused, each counted (not batches).
    pub failed: u64,
    /// Who failed and why: the first [`MAX_FAILURE_KINDS`] distinct (key, error) pairs.
    pub failures: Vec<Failure>,
    pub elapsed: Duration,
}

impl ReplayStats {
    fn record_failure(&mut self, key: &str, error: &str) {
        self.failed += 1;
        if let Some(f) = self
            .failures
            .iter_mut()
            .find(|f| f.key == key && f.error == error)
        {
            f.commands += 1;
        } else if self.failures.len() < MAX_FAILURE_KINDS {
            self.failures.push(Failure {
                key: key.to_string(),
                error: error.to_string(),
                commands: 1,
            });
        }
    }
}

/// Sends the commands of every recorded frame (same routing as live), batch by batch.
/// A file that cannot be read, or that yields no command (nothing recognised, or everything
/// filtered out by `--symbols`), is an error. Commands the server refuses are counted in the
/// stats, not an error here.
pub async fn replay(
    args: &Args,
    file: &std::path::Path,
    shutdown: &Shutdown,
) -> anyhow::Result<ReplayStats> {
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| anyhow::anyhow!("--replay {}: {e}", file.display()))?;
    let mut router = Router::new(Vec::new(), RouterOptions::from_args(args, true));
    let mut sink = Sink::new(&args.redis)?;
    let mut backoff = Backoff::new(args.backoff_min, args.backoff_max);
    let started = Instant::now();
    let mut stats = ReplayStats::default();
    info!(file = %file.display(), redis = %args.redis, "replay starting");
    // Parsing here and writing in a task overlap: while redis runs one pipeline, the next is
    // being built. The channel keeps the order.
    let (tx, mut rx) = mpsc::channel::<Vec<Command>>(2);
    let wshutdown = shutdown.clone();
    let writer = tokio::spawn(async move {
        let mut out = ReplayStats::default();
        while let Some(cmds) = rx.recv().await {
            match sink
                .exec_each_retrying(&cmds, &mut backoff, &wshutdown)
                .await
            {
                Ok(replies) => {
                    for (c, r) in cmds.iter().zip(&replies) {
                        if let Err(e) = r {
                            if out.failed < 5 {
                                warn!(key = %c.arg_str(1), command = %c.name(), error = %e, "replay: redis refused a command");
                            }
                            out.record_failure(c.arg_str(1), e);
                        }
                    }
                }
                Err(SinkError::Shutdown) => break,
                Err(e) => {
                    // The pipeline as a whole failed: none of its commands is known to have run.
                    let e = e.to_string();
                    warn!(error = %e, commands = cmds.len(), "replay: a batch failed");
                    for c in &cmds {
                        out.record_failure(c.arg_str(1), &e);
                    }
                }
            }
        }
        out
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
            STATS.add_frames(1);
            if let Seen::Invalid(e) = router.route(frame, &mut cmds) {
                stats.invalid += 1;
                if stats.invalid <= 5 {
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
    let written = writer
        .await
        .map_err(|e| anyhow::anyhow!("replay: the writer task failed: {e}"))?;
    stats.failed = written.failed;
    stats.failures = written.failures;
    stats.elapsed = started.elapsed();
    if stats.commands == 0 && !shutdown.is_set() {
        let filter = if args.symbols.iter().any(|s| !s.trim().is_empty()) {
            format!(" for --symbols {}", args.symbols.join(","))
        } else {
            String::new()
        };
        anyhow::bail!(
            "--replay {}: no commands{filter} in the file ({} lines, {} recorded frames, {} not understood)",
            file.display(),
            text.lines().count(),
            stats.frames,
            stats.invalid
        );
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_per_command_and_grouped() {
        let mut s = ReplayStats::default();
        s.record_failure("a", "WRONGTYPE x");
        s.record_failure("a", "WRONGTYPE x");
        s.record_failure("b", "ERR y");
        for i in 0..100 {
            s.record_failure(&format!("k{i}"), "ERR z");
        }
        assert_eq!(s.failed, 103);
        assert_eq!(s.failures.len(), MAX_FAILURE_KINDS);
        assert_eq!(
            s.failures[0],
            Failure {
                key: "a".into(),
                error: "WRONGTYPE x".into(),
                commands: 2
            }
        );
        assert_eq!(s.failures[1].commands, 1);
    }
}
