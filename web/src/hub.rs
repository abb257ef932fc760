//! The fan-out: one keyspace-event subscription per Redis master (shared by every viewer), one
//! worker per watched series that turns events into `update` messages, and a bounded queue per
//! viewer.
//!
//! Why nothing is lost or reordered: the subscriptions exist before any snapshot is read (and
//! each (re)subscription marks every series for a full re-read, covering events lost while it
//! was down); a series' worker is the only one reading it, and it both takes the snapshot for a
//! joining viewer and computes every update, one after the other, from a read made *after* the
//! event it answers. Updates carry whole candles (not deltas), so an update that repeats what a
//! snapshot already showed is harmless.

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

use crate::backend::{Backend, Bound};

/// A message queued for one viewer.
pub type Outgoing = Utf8Bytes;

/// Why a viewer's queue closed.
pub struct Viewer {
    pub id: u64,
    pub rx: mpsc::Receiver<Outgoing>,
}

pub struct Hub {
    backend: Backend,
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    window: usize,
    queue: usize,
    next_id: AtomicU64,
    /// Counters for the log and the benchmark.
    pub stats: Stats,
}

#[derive(Default)]
pub struct Stats {
    pub events: AtomicU64,
    pub updates: AtomicU64,
    pub dropped_slow: AtomicU64,
}

struct Topic {
    key: String,
    /// An official candle may have changed anywhere: re-read the whole window.
    dirty_full: AtomicBool,
    /// Live candles changed: re-read from the newest official on.
    dirty_tail: AtomicBool,
    wake: Notify,
    members: Mutex<Members>,
}

#[derive(Default)]
struct Members {
    viewers: Vec<(u64, mpsc::Sender<Outgoing>)>,
    joining: Vec<(u64, mpsc::Sender<Outgoing>)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    pub fn new(backend: Backend, window: usize, queue: usize) -> Arc<Hub> {
        Arc::new(Hub {
            backend,
            topics: Mutex::new(HashMap::new()),
            window,
            queue,
            next_id: AtomicU64::new(1),
            stats: Stats::default(),
        })
    }

    /// Registers a viewer of `key`: its first message is the snapshot, then updates.
    pub fn join(self: &Arc<Self>, key: &str) -> Viewer {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue);
        let mut topics = lock(&self.topics);
        let topic = match topics.get(key) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(Topic {
                    key: key.to_string(),
                    dirty_full: AtomicBool::new(true),
                    dirty_tail: AtomicBool::new(false),
                    wake: Notify::new(),
                    members: Mutex::new(Members::default()),
                });
                topics.insert(key.to_string(), t.clone());
                tokio::spawn(self.clone().work(t.clone()));
                t
            }
        };
        lock(&topic.members).joining.push((id, tx));
        topic.wake.notify_one();
        Viewer { id, rx }
    }

    /// A viewer left (its socket closed).
    pub fn leave(&self, key: &str, id: u64) {
        let topic = lock(&self.topics).get(key).cloned();
        if let Some(t) = topic {
            let mut m = lock(&t.members);
            m.viewers.retain(|(i, _)| *i != id);
            m.joining.retain(|(i, _)| *i != id);
            drop(m);
            t.wake.notify_one();
        }
    }

    /// Number of series with viewers.
    pub fn watched(&self) -> usize {
        lock(&self.topics).len()
    }

    /// A keyspace event: `event` happened to `key`.
    pub fn on_event(&self, key: &str, event: &str) {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        let full = match event {
            "candle.official" | "candle.create" => true,
            "candle.live" => false,
            // Anything else (del, rename, expired … when those classes are on): start over.
            _ => true,
        };
        let topic = lock(&self.topics).get(key).cloned();
        if let Some(t) = topic {
            if full {
                t.dirty_full.store(true, Ordering::Release);
            } else {
                t.dirty_tail.store(true, Ordering::Release);
            }
            t.wake.notify_one();
        }
    }

    /// Every watched series is re-read in full (after a (re)subscription: events may be lost).
    pub fn resync_all(&self) {
        for t in lock(&self.topics).values() {
            t.dirty_full.store(true, Ordering::Release);
            t.wake.notify_one();
        }
    }

    /// The worker of one series: reads, diffs against the window it last sent, fans out.
    async fn work(self: Arc<Self>, topic: Arc<Topic>) {
        let key = topic.key.clone();
        tracing::debug!(%key, "watching");
        let mut window: BTreeMap<i64, Candle> = BTreeMap::new();
        let mut loaded = false;
        let mut failures = 0u32;
        loop {
            topic.wake.notified().await;
            // Retire when nobody watches (under the map's lock, so a join cannot slip in).
            {
                let mut topics = lock(&self.topics);
                let m = lock(&topic.members);
                if m.viewers.is_empty() && m.joining.is_empty() {
                    topics.remove(&key);
                    tracing::debug!(%key, "no viewer left");
                    return;
                }
            }
            let has_joins = !lock(&topic.members).joining.is_empty();
            let full = topic.dirty_full.swap(false, Ordering::AcqRel) || !loaded;
            let tail = topic.dirty_tail.swap(false, Ordering::AcqRel);
            if !full && !tail && !has_joins {
                continue;
            }
            let read = if full || has_joins {
                self.backend
                    .range_json(&key, Bound::Min, Bound::Max, Some(self.window))
                    .await
                    .map(|t| (t, None))
            } else {
                let from = frontier(&window);
                self.backend
                    .range_json(&key, from.map_or(Bound::Min, Bound::At), Bound::Max, None)
                    .await
                    .map(|t| (t, from))
            };
            let (text, from) = match read {
                Ok(r) => r,
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(%key, failures, "reading the series failed, retrying: {e}");
                    }
                    // Read again (in full) shortly.
                    topic.dirty_full.store(true, Ordering::Release);
                    let t = topic.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        t.wake.notify_one();
                    });
                    continue;
                }
            };
            failures = 0;
            let candles = match parse_candles(&text) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(%key, "unexpected reply from CANDLE.RANGE_MERGED: {e}");
                    continue;
                }
            };
            // Diff: candles new or different from what the viewers were last sent.
            let mut changed: Vec<&Candle> = Vec::new();
            let fresh: BTreeMap<i64, Candle> =
                candles.into_iter().map(|c| (c.open_time, c)).collect();
            for c in fresh.values() {
                if window.get(&c.open_time).map(|o| o.raw.get()) != Some(c.raw.get()) {
                    changed.push(c);
                }
            }
            let update = if loaded && !changed.is_empty() {
                Some(message("update", &key, changed.iter().copied()))
            } else {
                None
            };
            // The new window: a full read replaces it, a tail read replaces its tail.
            let floor = match (full || has_joins, from) {
                (true, _) => i64::MIN,
                (false, Some(f)) => f,
                (false, None) => i64::MIN,
            };
            if floor == i64::MIN {
                window = fresh;
            } else {
                let _ = window.split_off(&floor);
                window.extend(fresh);
            }
            while window.len() > self.window {
                window.pop_first();
            }
            loaded = true;
            let mut m = lock(&topic.members);
            if let Some(u) = update {
                self.stats.updates.fetch_add(1, Ordering::Relaxed);
                let before = m.viewers.len();
                m.viewers.retain(|(id, tx)| match tx.try_send(u.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(%key, viewer = id, "viewer too slow (queue full): dropped");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
                let gone = (before - m.viewers.len()) as u64;
                if gone > 0 {
                    self.stats.dropped_slow.fetch_add(gone, Ordering::Relaxed);
                }
            }
            if !m.joining.is_empty() {
                let snap = message("snapshot", &key, window.values());
                for (id, tx) in std::mem::take(&mut m.joining) {
                    if tx.try_send(snap.clone()).is_ok() {
                        m.viewers.push((id, tx));
                    }
                }
            }
            let empty = m.viewers.is_empty() && m.joining.is_empty();
            drop(m);
            if empty {
                topic.wake.notify_one();
            }
        }
    }
}

/// One candle of a `FORMAT JSON` reply: its open time, status and exact text.
struct Candle {
    open_time: i64,
    official: bool,
    raw: Box<RawValue>,
}

#[derive(Deserialize)]
struct Head<'a> {
    open_time: i64,
    #[serde(borrow, default)]
    status: Option<&'a str>,
}

fn parse_candles(text: &str) -> serde_json::Result<Vec<Candle>> {
    let raws: Vec<Box<RawValue>> = serde_json::from_str(text)?;
    raws.into_iter()
        .map(|raw| {
            let h: Head = serde_json::from_str(raw.get())?;
            Ok(Candle {
                open_time: h.open_time,
                official: h.status == Some("official"),
                raw,
            })
        })
        .collect()
}

/// Where a tail read starts: the newest official candle (live ones are all newer, rule R2),
/// or the oldest candle when none is official.
fn frontier(window: &BTreeMap<i64, Candle>) -> Option<i64> {
    window
        .values()
        .rev()
        .find(|c| c.official)
        .or_else(|| window.values().next())
        .map(|c| c.open_time)
}

/// `{"type":…,"key":…,"candles":[…]}` built from the candles' own text.
fn message<'a>(kind: &str, key: &str, candles: impl Iterator<Item = &'a Candle>) -> Outgoing {
    let mut s = String::with_capacity(64 + key.len());
    s.push_str("{\"type\":\"");
    s.push_str(kind);
    s.push_str("\",\"key\":");
    s.push_str(&serde_json::Value::String(key.to_string()).to_string());
    s.push_str(",\"candles\":[");
    for (i, c) in candles.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(c.raw.get());
    }
    s.push_str("]}");
    Utf8Bytes::from(s)
}

/// Keeps one keyspace subscription per master alive until shutdown; every (re)subscription
/// marks all watched series for a full re-read.
pub async fn subscribe(hub: Arc<Hub>, mut shutdown: watch::Receiver<bool>) {
    let pattern = format!("__keyspace@{}__:{}", hub.backend.db, hub.backend.keys);
    let mut backoff = Duration::from_millis(200);
    loop {
        let masters = tokio::select! {
            m = hub.backend.masters() => m,
            _ = shutdown.changed() => return,
        };
        let masters = match masters {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cannot list the Redis masters to subscribe to: {e:#}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut streams = Vec::new();
        let mut ok = true;
        for (name, client) in &masters {
            match client.get_async_pubsub().await {
                Ok(mut ps) => match ps.psubscribe(&pattern).await {
                    Ok(()) => {
                        tracing::info!(node = %name, %pattern, "subscribed to keyspace events");
                        let name = name.clone();
                        streams.push(ps.into_on_message().map(move |m| (name.clone(), m)));
                    }
                    Err(e) => {
                        tracing::warn!(node = %name, "PSUBSCRIBE failed: {e}");
                        ok = false;
                    }
                },
                Err(e) => {
                    tracing::warn!(node = %name, "keyspace subscription: cannot connect: {e}");
                    ok = false;
                }
            }
        }
        if ok {
            backoff = Duration::from_millis(200);
            hub.resync_all();
            let prefix = format!("__keyspace@{}__:", hub.backend.db);
            let mut all = futures_util::stream::select_all(streams);
            loop {
                tokio::select! {
                    m = all.next() => match m {
                        Some((_, msg)) => {
                            let channel = msg.get_channel_name();
                            let Some(key) = channel.strip_prefix(prefix.as_str()) else { continue };
                            let event: String = msg.get_payload().unwrap_or_default();
                            hub.on_event(key, &event);
                        }
                        None => break,
                    },
                    _ = shutdown.changed() => return,
                }
            }
            tracing::warn!(
                "a keyspace subscription closed (Redis restarted or unreachable?); resubscribing"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_frontier() {
        let text = r#"[{"open_time":60000,"open":"1","high":"1","low":"1","close":"1","volume":"0","status":"official"},{"open_time":120000,"open":"1","high":"2","low":"1","close":"2","volume":"3","status":"live"}]"#;
        let c = parse_candles(text).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].official && !c[1].official);
        let w: BTreeMap<i64, Candle> = c.into_iter().map(|c| (c.open_time, c)).collect();
        assert_eq!(frontier(&w), Some(60000));
        let m = message("update", "k\"1", w.values());
        let v: serde_json::Value = serde_json::from_str(m.as_str()).unwrap();
        assert_eq!(v["key"], "k\"1");
        assert_eq!(v["candles"][1]["status"], "live");
        assert_eq!(frontier(&BTreeMap::new()), None);
    }
}
