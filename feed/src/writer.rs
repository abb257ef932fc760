//! The writer: takes the frames of every WebSocket reader, routes them to commands, writes them
//! to Redis in pipelines of up to [`MAX_BATCH`] frames, and tells the gap filler which ranges
//! to check (after a reconnect, a jump ahead, a missed close, a Redis restart).

use crate::backoff::{Backoff, Shutdown};
use crate::route::{Command, Router, Seen};
use crate::sink::{Sink, SinkError};
use crate::stats::STATS;
use crate::stream::{Msg, Utf8Bytes};
use candles_core::Interval;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Most frames written in one pipeline.
pub const MAX_BATCH: usize = 1024;

/// Callbacks for measurements (the benchmark); all optional.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Called after every pipeline the server acknowledged, with the frames it carried.
    #[allow(clippy::type_complexity)]
    pub on_written: Option<Arc<dyn Fn(&[Utf8Bytes]) + Send + Sync>>,
}

#[derive(Clone, Debug, Default)]
struct SeriesState {
    /// Oldest open time this feeder stored (bootstrap) or saw: gap checks start there.
    first_known: Option<i64>,
    /// Newest open time seen on the stream, and whether its `x=true` frame came.
    last_open: Option<i64>,
    last_closed: bool,
    /// The connection carrying this series was (re)opened: check for gaps on its next kline.
    need_check: bool,
}

/// A request to the gap filler: make `from..=to` (open times) complete in `series`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapCheck {
    pub series: usize,
    pub from: i64,
    pub to: i64,
}

pub struct Writer {
    sink: Sink,
    router: Router,
    states: Vec<SeriesState>,
    conn_series: Vec<Vec<usize>>,
    gap_tx: mpsc::UnboundedSender<GapCheck>,
    hooks: Hooks,
    lookback: usize,
    backoff: Backoff,
}

/// `n` buckets before `t`.
fn back(interval: Interval, t: i64, n: usize) -> i64 {
    match interval.fixed_ms() {
        Some(len) => t.saturating_sub(len.saturating_mul(n as i64)).max(0),
        None => {
            let mut x = t;
            for _ in 0..n.min(100_000) {
                if x <= 0 {
                    break;
                }
                x = interval.prev(x);
            }
            x.max(0)
        }
    }
}

/// What the writer needs from the options.
pub struct WriterOptions {
    /// Gap checks look back at most this many candles.
    pub lookback: usize,
    pub backoff: Backoff,
}

impl Writer {
    /// `first_known`: per series, the oldest open time the bootstrap stored; `conn_series`: per
    /// connection, the series it carries; `gap_tx`: where the gap checks go.
    pub fn new(
        sink: Sink,
        router: Router,
        first_known: Vec<Option<i64>>,
        conn_series: Vec<Vec<usize>>,
        gap_tx: mpsc::UnboundedSender<GapCheck>,
        hooks: Hooks,
        opts: WriterOptions,
    ) -> Writer {
        let states = first_known
            .into_iter()
            .map(|f| SeriesState {
                first_known: f,
                ..Default::default()
            })
            .collect();
        Writer {
            sink,
            router,
            states,
            conn_series,
            gap_tx,
            hooks,
            lookback: opts.lookback,
            backoff: opts.backoff,
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>, shutdown: &Shutdown) {
        let mut cmds: Vec<Command> = Vec::new();
        let mut frames: Vec<Utf8Bytes> = Vec::new();
        let mut checks: Vec<GapCheck> = Vec::new();
        let mut reply_errors: u64 = 0;
        let mut last_gen = 0u64;
        loop {
            let first = tokio::select! {
                _ = shutdown.wait() => None,
                m = tokio::time::timeout(Duration::from_secs(1), rx.recv()) => match m {
                    Ok(Some(m)) => Some(m),
                    Ok(None) => return,
                    Err(_) => {
                        // Idle: make sure redis is still there (and notice a restart).
                        match self.sink.exec_retrying(&[Command::new(["PING"])], &mut self.backoff, shutdown).await {
                            Err(SinkError::Shutdown) => return,
                            _ => self.after_write(&mut last_gen, &mut checks),
                        }
                        self.send_checks(&mut checks);
                        continue;
                    }
                },
            };
            let stopping = first.is_none();
            if let Some(m) = first {
                self.take(m, &mut cmds, &mut frames, &mut checks);
            }
            while frames.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => self.take(m, &mut cmds, &mut frames, &mut checks),
                    Err(_) => break,
                }
            }
            if stopping {
                // Last flush of what already arrived, bounded so shutdown stays under a second.
                if !cmds.is_empty() {
                    let _ = tokio::time::timeout(Duration::from_millis(300), self.sink.exec(&cmds))
                        .await;
                }
                return;
            }
            if !cmds.is_empty() {
                match self
                    .sink
                    .exec_retrying(&cmds, &mut self.backoff, shutdown)
                    .await
                {
                    Ok(_) => {}
                    Err(SinkError::Shutdown) => return,
                    Err(e) => {
                        reply_errors += 1;
                        if reply_errors <= 10 || reply_errors.is_multiple_of(1000) {
                            warn!(error = %e, reply_errors, first_command = %truncate(&cmds[0].to_string(), 200), "redis refused a command of the batch");
                        }
                    }
                }
                self.after_write(&mut last_gen, &mut checks);
                if let Some(h) = &self.hooks.on_written {
                    h(&frames);
                }
            }
            cmds.clear();
            frames.clear();
            self.send_checks(&mut checks);
        }
    }

    fn send_checks(&mut self, checks: &mut Vec<GapCheck>) {
        for c in checks.drain(..) {
            let _ = self.gap_tx.send(c);
        }
    }

    /// After a write went through: if it took a new connection (redis restarted), the data
    /// may be gone, so check every series.
    fn after_write(&mut self, last_gen: &mut u64, checks: &mut Vec<GapCheck>) {
        let gen = self.sink.generation;
        if *last_gen != 0 && gen != *last_gen {
            info!("redis connection was re-established: checking every series for gaps");
            for i in 0..self.states.len() {
                if let Some(t) = self.states[i].last_open {
                    self.push_check(i, t, checks);
                }
            }
        }
        *last_gen = gen;
    }

    fn push_check(&self, si: usize, t: i64, checks: &mut Vec<GapCheck>) {
        let iv = self.router.series()[si].interval;
        let st = &self.states[si];
        let from = st.first_known.unwrap_or(t).max(back(iv, t, self.lookback));
        let to = iv.prev(t);
        if from <= to {
            checks.push(GapCheck {
                series: si,
                from,
                to,
            });
        }
    }

    fn take(
        &mut self,
        m: Msg,
        cmds: &mut Vec<Command>,
        frames: &mut Vec<Utf8Bytes>,
        checks: &mut Vec<GapCheck>,
    ) {
        match m {
            Msg::Connected { conn } => {
                for &si in self
                    .conn_series
                    .get(conn)
                    .map(|v| v.as_slice())
                    .unwrap_or(&[])
                {
                    if let Some(st) = self.states.get_mut(si) {
                        st.need_check = true;
                    }
                }
            }
            Msg::Bootstrapped { series, first_open } => {
                let Some(st) = self.states.get_mut(series) else {
                    return;
                };
                if let Some(f) = first_open {
                    st.first_known = Some(st.first_known.map_or(f, |k| k.min(f)));
                }
                // Frames of this series were written while its bootstrap was retrying: make the
                // range between the history and the stream complete.
                if let Some(t) = st.last_open {
                    self.push_check(series, t, checks);
                }
            }
            Msg::Frame(f) => {
                STATS.add_frames(1);
                match self.router.route(&f, cmds) {
                    Seen::Kline {
                        series,
                        open_time,
                        closed,
                    } => self.on_kline(series, open_time, closed, checks),
                    Seen::Invalid(e) => {
                        debug!(error = %e, frame = %truncate(&f, 200), "frame not understood")
                    }
                    _ => {}
                }
                frames.push(f);
            }
        }
    }

    fn on_kline(&mut self, si: usize, t: i64, closed: bool, checks: &mut Vec<GapCheck>) {
        let Some(st) = self.states.get_mut(si) else {
            return;
        };
        if st.first_known.is_none() {
            st.first_known = Some(t);
        }
        let iv = self.router.series()[si].interval;
        let check = match st.last_open {
            None => st.need_check,
            Some(l) if t > l => {
                // A new candle: check if this is the first on a new connection, if the stream
                // skipped candles, or if the previous one's closing frame never came.
                st.need_check || t > iv.next(l) || !st.last_closed
            }
            Some(l) if t == l => st.need_check,
            Some(_) => false, // an older candle: ignore for gap purposes
        };
        if st.last_open.is_none_or(|l| t > l) {
            st.last_open = Some(t);
            st.last_closed = closed;
        } else if st.last_open == Some(t) && closed {
            st.last_closed = true;
        }
        if check {
            st.need_check = false;
            self.push_check(si, t, checks);
        }
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let cut = s
            .char_indices()
            .take_while(|(i, _)| *i < n)
            .last()
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        format!("{}…", &s[..cut])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Series;
    use crate::route::RouterOptions;

    #[test]
    fn lookback() {
        assert_eq!(back(Interval::M1, 600_000, 3), 420_000);
        assert_eq!(back(Interval::M1, 60_000, 3), 0);
        // 1M: 2024-03-01 back 2 months = 2024-01-01
        assert_eq!(back(Interval::Mo1, 1_709_251_200_000, 2), 1_704_067_200_000);
    }

    fn writer(first_known: Option<i64>) -> (Writer, mpsc::UnboundedReceiver<GapCheck>) {
        let (gap_tx, gap_rx) = mpsc::unbounded_channel();
        let s = Series::new("BTCUSDT", Interval::M1, "k:SYMBOL:INTERVAL");
        let router = Router::new(
            vec![s],
            RouterOptions {
                key_template: "k".into(),
                ticks: false,
                live_tick: false,
                ticks_key: "t".into(),
                ticks_maxlen: None,
                open: false,
                symbol_filter: vec![],
            },
        );
        let w = Writer {
            sink: Sink::new("redis://127.0.0.1:1").unwrap(),
            router,
            states: vec![SeriesState {
                first_known,
                ..Default::default()
            }],
            conn_series: vec![vec![0]],
            gap_tx,
            hooks: Hooks::default(),
            lookback: 1000,
            backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(2)),
        };
        (w, gap_rx)
    }

    #[test]
    fn gap_checks_on_connect_jump_and_missed_close() {
        const M: i64 = 60_000;
        let (mut w, _rx) = writer(Some(10 * M));
        let mut checks = vec![];
        let (mut cmds, mut frames) = (vec![], vec![]);
        w.take(
            Msg::Connected { conn: 0 },
            &mut cmds,
            &mut frames,
            &mut checks,
        );
        // first kline after connect: check from first_known to the previous candle
        w.on_kline(0, 20 * M, false, &mut checks);
        assert_eq!(
            checks,
            [GapCheck {
                series: 0,
                from: 10 * M,
                to: 19 * M
            }]
        );
        checks.clear();
        // normal flow: updates, close, next candle → nothing
        w.on_kline(0, 20 * M, false, &mut checks);
        w.on_kline(0, 20 * M, true, &mut checks);
        w.on_kline(0, 21 * M, false, &mut checks);
        assert!(checks.is_empty());
        // next candle without the close of the previous one → check
        w.on_kline(0, 22 * M, false, &mut checks);
        assert_eq!(
            checks,
            [GapCheck {
                series: 0,
                from: 10 * M,
                to: 21 * M
            }]
        );
        checks.clear();
        // jump ahead → check
        w.on_kline(0, 22 * M, true, &mut checks);
        w.on_kline(0, 25 * M, false, &mut checks);
        assert_eq!(
            checks,
            [GapCheck {
                series: 0,
                from: 10 * M,
                to: 24 * M
            }]
        );
        checks.clear();
        // reconnect within the same candle → check on its next frame
        w.take(
            Msg::Connected { conn: 0 },
            &mut cmds,
            &mut frames,
            &mut checks,
        );
        w.on_kline(0, 25 * M, false, &mut checks);
        assert_eq!(checks.len(), 1);
        // an old frame is ignored
        checks.clear();
        w.on_kline(0, 3 * M, true, &mut checks);
        assert!(checks.is_empty());
    }

    #[test]
    fn a_late_bootstrap_lowers_first_known_and_checks_up_to_the_stream() {
        const M: i64 = 60_000;
        let (mut w, _rx) = writer(None);
        let mut checks = vec![];
        let (mut cmds, mut frames) = (vec![], vec![]);
        // streamed before its bootstrap succeeded
        w.on_kline(0, 20 * M, true, &mut checks);
        w.on_kline(0, 21 * M, false, &mut checks);
        assert!(checks.is_empty());
        w.take(
            Msg::Bootstrapped {
                series: 0,
                first_open: Some(5 * M),
            },
            &mut cmds,
            &mut frames,
            &mut checks,
        );
        assert_eq!(w.states[0].first_known, Some(5 * M));
        assert_eq!(
            checks,
            [GapCheck {
                series: 0,
                from: 5 * M,
                to: 20 * M
            }]
        );
        // a bootstrap before any frame: no check, first_known set
        let (mut w, _rx) = writer(None);
        checks.clear();
        w.take(
            Msg::Bootstrapped {
                series: 0,
                first_open: Some(5 * M),
            },
            &mut cmds,
            &mut frames,
            &mut checks,
        );
        assert!(checks.is_empty());
        assert_eq!(w.states[0].first_known, Some(5 * M));
    }

    #[test]
    fn no_bootstrap_starts_at_the_first_frame() {
        let (mut w, _rx) = writer(None);
        let mut checks = vec![];
        w.on_kline(0, 600_000, false, &mut checks);
        assert!(checks.is_empty());
        assert_eq!(w.states[0].first_known, Some(600_000));
    }
}
