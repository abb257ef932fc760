//! The feeder: bootstrap, streams, writer, gap filler, replay.

use crate::backoff::{Backoff, Shutdown};
use crate::config::{self, Args, Progress, Series};
use crate::rest::{next_page_start, Rest, RestError, MAX_LIMIT};
use crate::route::{self, Command, Router, RouterOptions, Seen};
use crate::sink::{parse_gaps, Sink, SinkError};
use candles_core::Interval;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;
use tracing::{debug, error, info, warn};

/// Frames in flight between the WebSocket readers and the writer; beyond it frames are dropped
/// (and the official candles among them come back by gap fill).
pub const CHANNEL_CAPACITY: usize = 1 << 16;
/// Most frames written in one pipeline.
pub const MAX_BATCH: usize = 1024;

/// Callbacks for measurements (the benchmark); all optional.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Called after every pipeline the server acknowledged, with the frames it carried.
    #[allow(clippy::type_complexity)]
    pub on_written: Option<Arc<dyn Fn(&[Utf8Bytes]) + Send + Sync>>,
}

#[derive(Debug)]
pub enum Msg {
    /// Connection `conn` (index into the stream chunks) was (re)opened.
    Connected {
        conn: usize,
    },
    Frame(Utf8Bytes),
}

/// Installs rustls' crypto provider (ring) once; wss:// and https:// need it.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs the feeder until shutdown (live) or the end of the file (replay).
pub async fn run(args: Args, shutdown: Shutdown, hooks: Hooks) -> anyhow::Result<()> {
    config::validate(&args)?;
    init_tls();
    if let Some(file) = args.replay.clone() {
        let stats = replay(&args, &file, &shutdown).await?;
        info!(
            frames = stats.frames,
            commands = stats.commands,
            reply_errors = stats.reply_errors,
            seconds = format!("{:.3}", stats.elapsed.as_secs_f64()),
            frames_per_sec = format!(
                "{:.0}",
                stats.frames as f64 / stats.elapsed.as_secs_f64().max(1e-9)
            ),
            "replay done"
        );
        return Ok(());
    }
    let series = config::series_of(&args)?;
    let rest = Arc::new(Rest::new(
        &args.rest_url,
        args.weight_limit,
        args.backoff_min,
        args.backoff_max,
        shutdown.clone(),
    )?);
    let mut sink = Sink::new(&args.redis)?;
    info!(
        series = series.len(),
        redis = %args.redis,
        rest = %args.rest_url,
        ws = %args.ws_url,
        ticks = args.ticks,
        live_tick = args.live_tick,
        "candles-feed starting"
    );
    let first_known = bootstrap(&args, &series, &rest, &mut sink, &shutdown).await;
    if shutdown.is_set() {
        return Ok(());
    }

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
        Sink::new(&args.redis)?,
        rest.clone(),
        series.clone(),
        gap_rx,
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
    drop(msg_tx);
    let router = Router::new(series.clone(), router_options(&args, false));
    let lookback = args.bootstrap.max(MAX_LIMIT);
    let states = first_known
        .into_iter()
        .map(|f| SeriesState {
            first_known: f,
            ..Default::default()
        })
        .collect();
    let w = Writer {
        sink,
        router,
        states,
        conn_series,
        gap_tx,
        hooks,
        lookback,
        backoff: Backoff::new(args.backoff_min, args.backoff_max),
    };
    w.run(msg_rx, &shutdown).await;
    for t in tasks {
        t.abort();
    }
    info!("candles-feed stopped");
    Ok(())
}

pub fn router_options(args: &Args, open: bool) -> RouterOptions {
    RouterOptions {
        key_template: args.candle_key.clone(),
        ticks: args.ticks,
        live_tick: args.live_tick,
        ticks_key: args.ticks_key.clone(),
        ticks_maxlen: args.ticks_maxlen,
        open,
        symbol_filter: args
            .symbols
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect(),
    }
}

/// Stream names (klines of every series, then aggTrade per symbol if asked) cut into
/// connections of at most `per_conn` streams.
pub fn stream_chunks(series: &[Series], trades: bool, per_conn: usize) -> Vec<Vec<String>> {
    let mut names: Vec<String> = series.iter().map(Series::stream_name).collect();
    if trades {
        let mut seen = Vec::new();
        for s in series {
            if !seen.contains(&s.symbol) {
                seen.push(s.symbol.clone());
                names.push(config::trade_stream_name(&s.symbol));
            }
        }
    }
    names.chunks(per_conn.max(1)).map(|c| c.to_vec()).collect()
}

/// `<ws-url>/stream?streams=a/b/c`
pub fn stream_url(ws_url: &str, names: &[String]) -> String {
    format!(
        "{}/stream?streams={}",
        ws_url.trim_end_matches('/'),
        names.join("/")
    )
}

// ---------------------------------------------------------------------------------------------
// Bootstrap

/// Stores the last `--bootstrap` candles of every series; returns the oldest open time stored
/// for each (None if nothing).
async fn bootstrap(
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

// ---------------------------------------------------------------------------------------------
// WebSocket readers

async fn ws_reader(
    conn: usize,
    url: String,
    n_streams: usize,
    args: Args,
    tx: mpsc::Sender<Msg>,
    shutdown: Shutdown,
) {
    let mut backoff = Backoff::new(args.backoff_min, args.backoff_max);
    let mut dropped: u64 = 0;
    loop {
        if shutdown.is_set() {
            return;
        }
        let connect = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true);
        let ws = tokio::select! {
            _ = shutdown.wait() => return,
            r = tokio::time::timeout(Duration::from_secs(10), connect) => r,
        };
        let mut ws = match ws {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => {
                let d = backoff.next_delay();
                warn!(conn, url = %short_url(&url), error = %e, retry_in_ms = d.as_millis() as u64, attempt = backoff.attempts(), "websocket connect failed, retrying");
                if !shutdown.sleep(d).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                let d = backoff.next_delay();
                warn!(conn, url = %short_url(&url), retry_in_ms = d.as_millis() as u64, "websocket connect timed out, retrying");
                if !shutdown.sleep(d).await {
                    return;
                }
                continue;
            }
        };
        info!(conn, streams = n_streams, url = %short_url(&url), "websocket connected");
        if tx.send(Msg::Connected { conn }).await.is_err() {
            return;
        }
        let opened = Instant::now();
        let renew_at = tokio::time::Instant::now() + args.ws_max_age;
        let mut frames: u64 = 0;
        // Why the connection ended, and whether to reconnect at once (planned) or after backoff.
        let (reason, planned): (String, bool) = loop {
            let next = tokio::select! {
                _ = shutdown.wait() => {
                    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
                    return;
                }
                _ = tokio::time::sleep_until(renew_at) => break ("connection age limit reached, renewing".into(), true),
                r = tokio::time::timeout(args.ws_idle_timeout, ws.next()) => r,
            };
            match next {
                Err(_) => break (format!("no frame for {:?}", args.ws_idle_timeout), false),
                Ok(None) => break ("closed by the server".into(), false),
                Ok(Some(Err(e))) => break (format!("read error: {e}"), false),
                Ok(Some(Ok(Message::Text(t)))) => {
                    frames += 1;
                    if t.len() < 200 && t.contains("serverShutdown") {
                        break ("serverShutdown event".into(), true);
                    }
                    match tx.try_send(Msg::Frame(t)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            dropped += 1;
                            if dropped % 1000 == 1 {
                                warn!(conn, dropped, "writer is behind (redis down?), dropping frames; gap fill will restore official candles");
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
                Ok(Some(Ok(Message::Ping(_)))) => {
                    // tungstenite queued the pong; flush it now rather than on the next read.
                    if let Err(e) = ws.flush().await {
                        break (format!("sending pong: {e}"), false);
                    }
                }
                Ok(Some(Ok(Message::Close(f)))) => break (format!("close frame {f:?}"), false),
                Ok(Some(Ok(_))) => {}
            }
        };
        if planned {
            info!(conn, reason = %reason, "websocket reconnecting");
            let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
            backoff.reset();
            continue;
        }
        if frames > 0 && opened.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        let d = backoff.next_delay();
        warn!(conn, reason = %reason, frames, retry_in_ms = d.as_millis() as u64, "websocket disconnected, reconnecting");
        if !shutdown.sleep(d).await {
            return;
        }
    }
}

fn short_url(url: &str) -> String {
    if url.len() > 160 {
        format!(
            "{}…",
            &url[..url
                .char_indices()
                .nth(157)
                .map(|(i, _)| i)
                .unwrap_or(url.len())]
        )
    } else {
        url.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

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

struct Writer {
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

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>, shutdown: &Shutdown) {
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
            Msg::Frame(f) => {
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

fn truncate(s: &str, n: usize) -> String {
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

// ---------------------------------------------------------------------------------------------
// Gap filler

async fn gap_filler(
    mut sink: Sink,
    rest: Arc<Rest>,
    series: Vec<Series>,
    mut rx: mpsc::UnboundedReceiver<GapCheck>,
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
                    Ok(n) => info!(key = %s.key, from, to, candles = n, "gap filled"),
                    Err(FillError::Shutdown) => return,
                    Err(FillError::Other(e)) => {
                        error!(key = %s.key, from, to, error = %e, "gap fill failed")
                    }
                }
            }
        }
    }
}

enum FillError {
    Shutdown,
    Other(String),
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
            .klines(&s.symbol, s.interval, Some(start), Some(to), MAX_LIMIT)
            .await
        {
            Ok(p) => p,
            Err(RestError::Shutdown) => return Err(FillError::Shutdown),
            Err(e) => return Err(FillError::Other(e.to_string())),
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

// ---------------------------------------------------------------------------------------------
// Replay

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_and_urls() {
        let t = "candle:{SYMBOL}:INTERVAL";
        let series: Vec<Series> = ["BTCUSDT", "ETHUSDT"]
            .iter()
            .flat_map(|s| [Interval::M1, Interval::H1].map(|i| Series::new(s, i, t)))
            .collect();
        let c = stream_chunks(&series, true, 1024);
        assert_eq!(c.len(), 1);
        assert_eq!(
            stream_url("wss://stream.binance.com:9443/", &c[0]),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@kline_1m/btcusdt@kline_1h/ethusdt@kline_1m/ethusdt@kline_1h/btcusdt@aggTrade/ethusdt@aggTrade"
        );
        let c = stream_chunks(&series, false, 3);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), [3, 1]);
        let many: Vec<Series> = (0..1100)
            .map(|i| Series::new(&format!("S{i}"), Interval::M1, t))
            .collect();
        let c = stream_chunks(&many, false, 1024);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), [1024, 76]);
    }

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
    fn no_bootstrap_starts_at_the_first_frame() {
        let (mut w, _rx) = writer(None);
        let mut checks = vec![];
        w.on_kline(0, 600_000, false, &mut checks);
        assert!(checks.is_empty());
        assert_eq!(w.states[0].first_known, Some(600_000));
    }
}
