//! The feeder's own counters (process-wide, lock-free), logged every `--stats-interval` and once
//! at exit.

use crate::backoff::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tracing::info;

#[derive(Debug, Default)]
pub struct Stats {
    frames: AtomicU64,
    commands: AtomicU64,
    redis_errors: AtomicU64,
    rest_requests: AtomicU64,
    rest_errors: AtomicU64,
    ws_errors: AtomicU64,
    gap_fills: AtomicU64,
    gap_candles: AtomicU64,
    reconnects: AtomicU64,
}

/// The counters of the process.
pub static STATS: Stats = Stats::new();

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// WebSocket (or recorded) frames handed to the writer.
    pub frames: u64,
    /// Commands Redis ran (PINGs not counted).
    pub commands: u64,
    /// Redis errors: refused commands and failed connections / writes (each attempt).
    pub redis_errors: u64,
    pub rest_requests: u64,
    /// REST requests that failed (network, 5xx, 4xx, 429/418, bad body).
    pub rest_errors: u64,
    /// WebSocket connects that failed and connections lost (planned renewals not counted).
    pub ws_errors: u64,
    /// Gaps filled, and the candles they brought.
    pub gap_fills: u64,
    pub gap_candles: u64,
    /// WebSocket connections re-opened (renewals included).
    pub reconnects: u64,
}

impl Snapshot {
    /// Every error: Redis, REST and WebSocket.
    pub fn errors(&self) -> u64 {
        self.redis_errors + self.rest_errors + self.ws_errors
    }
}

impl Stats {
    pub const fn new() -> Stats {
        Stats {
            frames: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            redis_errors: AtomicU64::new(0),
            rest_requests: AtomicU64::new(0),
            rest_errors: AtomicU64::new(0),
            ws_errors: AtomicU64::new(0),
            gap_fills: AtomicU64::new(0),
            gap_candles: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        }
    }

    pub fn add_frames(&self, n: u64) {
        self.frames.fetch_add(n, Relaxed);
    }
    pub fn add_commands(&self, n: u64) {
        self.commands.fetch_add(n, Relaxed);
    }
    pub fn add_redis_errors(&self, n: u64) {
        self.redis_errors.fetch_add(n, Relaxed);
    }
    pub fn add_rest_request(&self, failed: bool) {
        self.rest_requests.fetch_add(1, Relaxed);
        if failed {
            self.rest_errors.fetch_add(1, Relaxed);
        }
    }
    pub fn add_ws_error(&self) {
        self.ws_errors.fetch_add(1, Relaxed);
    }
    pub fn add_gap_fill(&self, candles: u64) {
        self.gap_fills.fetch_add(1, Relaxed);
        self.gap_candles.fetch_add(candles, Relaxed);
    }
    pub fn add_reconnect(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            frames: self.frames.load(Relaxed),
            commands: self.commands.load(Relaxed),
            redis_errors: self.redis_errors.load(Relaxed),
            rest_requests: self.rest_requests.load(Relaxed),
            rest_errors: self.rest_errors.load(Relaxed),
            ws_errors: self.ws_errors.load(Relaxed),
            gap_fills: self.gap_fills.load(Relaxed),
            gap_candles: self.gap_candles.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
        }
    }
}

/// One log line with the counters (totals since start) and the frame rate since `prev`.
pub fn log_line(what: &'static str, s: &Snapshot, prev: &Snapshot, over: Duration) {
    let frames_per_sec = format!(
        "{:.1}",
        s.frames.saturating_sub(prev.frames) as f64 / over.as_secs_f64().max(1e-9)
    );
    info!(
        frames = s.frames,
        commands = s.commands,
        errors = s.errors(),
        redis_errors = s.redis_errors,
        rest_requests = s.rest_requests,
        rest_errors = s.rest_errors,
        ws_errors = s.ws_errors,
        gap_fills = s.gap_fills,
        gap_candles = s.gap_candles,
        reconnects = s.reconnects,
        frames_per_sec,
        "{what}"
    );
}

/// Logs the counters every `every` until shutdown (never if `every` is zero).
pub async fn reporter(every: Duration, shutdown: Shutdown) {
    if every.is_zero() {
        return;
    }
    let mut prev = STATS.snapshot();
    let mut at = Instant::now();
    while shutdown.sleep(every).await {
        let now = STATS.snapshot();
        log_line("stats", &now, &prev, at.elapsed());
        prev = now;
        at = Instant::now();
    }
}

/// The exit summary: totals, and the average frame rate over `uptime`.
pub fn log_exit(uptime: Duration) {
    let s = STATS.snapshot();
    log_line("stats at exit", &s, &Snapshot::default(), uptime);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let s = Stats::new();
        s.add_frames(3);
        s.add_commands(4);
        s.add_rest_request(false);
        s.add_rest_request(true);
        s.add_redis_errors(2);
        s.add_ws_error();
        s.add_gap_fill(7);
        s.add_reconnect();
        let n = s.snapshot();
        assert_eq!(
            n,
            Snapshot {
                frames: 3,
                commands: 4,
                redis_errors: 2,
                rest_requests: 2,
                rest_errors: 1,
                ws_errors: 1,
                gap_fills: 1,
                gap_candles: 7,
                reconnects: 1,
            }
        );
        assert_eq!(n.errors(), 4);
    }
}
