//! Everything candles-web asks Redis: reads through one multiplexed connection (or a cluster
//! connection routing by key), series listing by `SCAN … TYPE rc-series` on every master, and
//! the masters' addresses for the keyspace-event subscriptions. Read-only: no command here
//! writes.

use anyhow::{anyhow, Context as _};
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, FromRedisValue, RedisResult, Value};
use serde::Serialize;
use std::time::Duration;

use crate::config::redact;

/// The Redis data type name of a candle series (`TYPE key`).
pub const SERIES_TYPE: &str = "rc-series";

/// How reads reach Redis.
#[derive(Clone)]
enum Reader {
    Single(Box<ConnectionManager>),
    Cluster(ClusterConnection),
}

#[derive(Clone)]
pub struct Backend {
    reader: Reader,
    /// The URLs given (one, or the cluster's seeds).
    seeds: Vec<String>,
    cluster: bool,
    /// The database of keyspace events to follow (always 0 in a cluster).
    pub db: i64,
    /// Glob pattern narrowing the served keys.
    pub keys: String,
}

/// One row of `/api/series`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SeriesInfo {
    pub key: String,
    pub interval: Option<String>,
    /// The source series of a derived series; null for an ordinary one.
    pub source: Option<String>,
}

/// `CANDLE.RANGE_MERGED` bounds: an open time, or `-` / `+`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Min,
    Max,
    At(i64),
}

impl Bound {
    pub fn parse(s: &str) -> Option<Bound> {
        match s {
            "-" => Some(Bound::Min),
            "+" => Some(Bound::Max),
            _ => s.parse::<i64>().ok().map(Bound::At),
        }
    }
    fn arg(self) -> String {
        match self {
            Bound::Min => "-".into(),
            Bound::Max => "+".into(),
            Bound::At(t) => t.to_string(),
        }
    }
}

impl Backend {
    /// Connects (retrying every second until `give_up` says stop); the first reply proves the
    /// URL, credentials and TLS settings.
    pub async fn connect(
        seeds: &[String],
        cluster: bool,
        keys: &str,
        mut give_up: impl FnMut() -> bool,
    ) -> anyhow::Result<Backend> {
        let mut logged = false;
        loop {
            match Self::try_connect(seeds, cluster, keys).await {
                Ok(b) => return Ok(b),
                Err(e) => {
                    if give_up() {
                        return Err(e);
                    }
                    if !logged {
                        tracing::warn!("Redis not reachable yet, retrying every second: {e:#}");
                        logged = true;
                    } else {
                        tracing::debug!("Redis still not reachable: {e:#}");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn try_connect(seeds: &[String], cluster: bool, keys: &str) -> anyhow::Result<Backend> {
        let shown = seeds
            .iter()
            .map(|s| redact(s))
            .collect::<Vec<_>>()
            .join(",");
        let (reader, db) = if cluster {
            let c = redis::cluster::ClusterClientBuilder::new(seeds.to_vec())
                .connection_timeout(Duration::from_secs(5))
                .response_timeout(Duration::from_secs(10))
                .build()
                .with_context(|| format!("cluster {shown}"))?;
            let conn = c
                .get_async_connection()
                .await
                .with_context(|| format!("cluster {shown}"))?;
            (Reader::Cluster(conn), 0)
        } else {
            let client = Client::open(seeds[0].as_str()).with_context(|| shown.clone())?;
            let db = client.get_connection_info().redis.db;
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_secs(5))
                .set_response_timeout(Duration::from_secs(10))
                .set_number_of_retries(1);
            let mut conn = tokio::time::timeout(
                Duration::from_secs(6),
                ConnectionManager::new_with_config(client, cfg),
            )
            .await
            .map_err(|_| anyhow!("{shown}: connection timed out"))?
            .with_context(|| shown.clone())?;
            let _: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .with_context(|| shown.clone())?;
            (Reader::Single(Box::new(conn)), db)
        };
        Ok(Backend {
            reader,
            seeds: seeds.to_vec(),
            cluster,
            db,
            keys: keys.to_string(),
        })
    }

    /// Runs a read routed by its key; once more if the connection had dropped (Redis
    /// restarted: the first command on the old connection fails, the retry reconnects).
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        match self.query_once(cmd).await {
            Err(e) if e.is_connection_dropped() || e.is_io_error() => self.query_once(cmd).await,
            r => r,
        }
    }

    async fn query_once<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        match &self.reader {
            Reader::Single(c) => cmd.query_async(&mut (**c).clone()).await,
            Reader::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }

    /// `CANDLE.RANGE_MERGED key from to [COUNT n] FORMAT JSON`: the JSON text as Redis sent it.
    pub async fn range_json(
        &self,
        key: &str,
        from: Bound,
        to: Bound,
        count: Option<usize>,
    ) -> RedisResult<String> {
        let mut cmd = redis::cmd("CANDLE.RANGE_MERGED");
        cmd.arg(key).arg(from.arg()).arg(to.arg());
        if let Some(n) = count {
            cmd.arg("COUNT").arg(n);
        }
        cmd.arg("FORMAT").arg("JSON");
        self.query(&cmd).await
    }

    /// `TYPE key`.
    pub async fn key_type(&self, key: &str) -> RedisResult<String> {
        self.query(redis::cmd("TYPE").arg(key)).await
    }

    /// A client per master: the URL itself, or in a cluster every master of `CLUSTER SLOTS`
    /// reached with a seed's scheme, credentials and TLS settings.
    pub async fn masters(&self) -> anyhow::Result<Vec<(String, Client)>> {
        if !self.cluster {
            let client = Client::open(self.seeds[0].as_str())?;
            return Ok(vec![(redact(&self.seeds[0]), client)]);
        }
        let mut last = anyhow!("no seed");
        for seed in &self.seeds {
            match masters_of(seed).await {
                Ok(m) if !m.is_empty() => return Ok(m),
                Ok(_) => last = anyhow!("{}: CLUSTER SLOTS lists no master", redact(seed)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The candle series matching the key pattern, with interval and source, sorted by key.
    pub async fn list_series(&self, max: usize) -> anyhow::Result<Vec<SeriesInfo>> {
        let mut keys = Vec::new();
        for (name, client) in self.masters().await? {
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .with_context(|| name.clone())?;
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&self.keys)
                    .arg("COUNT")
                    .arg(1000)
                    .arg("TYPE")
                    .arg(SERIES_TYPE)
                    .query_async(&mut conn)
                    .await
                    .with_context(|| format!("{name}: SCAN"))?;
                keys.extend(batch);
                cursor = next;
                if cursor == 0 || keys.len() >= max {
                    break;
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys.truncate(max);
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(256) {
            let infos = futures_util::future::join_all(chunk.iter().map(|k| async move {
                let v: RedisResult<Value> = self.query(redis::cmd("CANDLE.INFO").arg(k)).await;
                (k.clone(), v)
            }))
            .await;
            for (key, v) in infos {
                // A key deleted since the SCAN is left out.
                if let Ok(v) = v {
                    out.push(SeriesInfo {
                        interval: info_field(&v, "interval"),
                        source: info_field(&v, "source"),
                        key,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Warns when a master's `notify-keyspace-events` does not deliver the module's events.
    pub async fn check_notifications(&self) {
        let masters = match self.masters().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(
                    "cannot list the Redis nodes to check notify-keyspace-events: {e:#}"
                );
                return;
            }
        };
        for (name, client) in masters {
            let flags: RedisResult<Vec<String>> = async {
                let mut c = client.get_multiplexed_async_connection().await?;
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("notify-keyspace-events")
                    .query_async(&mut c)
                    .await
            }
            .await;
            match flags {
                Ok(v) => {
                    let f = v.get(1).cloned().unwrap_or_default();
                    if notifications_ok(&f) {
                        tracing::info!(node = %name, notify_keyspace_events = %f, "keyspace events on");
                    } else {
                        tracing::error!(
                            node = %name,
                            notify_keyspace_events = %f,
                            "Redis does not publish the module's keyspace events: charts will not \
                             update live. Set `notify-keyspace-events Kd` (or KEA) in its config \
                             (candles-web is read-only and does not change it)"
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    node = %name,
                    "cannot read notify-keyspace-events ({e}); make sure it includes K and d (or KA)"
                ),
            }
        }
    }
}

/// `notify-keyspace-events` flags that publish module events on keyspace channels.
pub fn notifications_ok(flags: &str) -> bool {
    flags.contains('K') && (flags.contains('d') || flags.contains('A'))
}

async fn masters_of(seed: &str) -> anyhow::Result<Vec<(String, Client)>> {
    let client = Client::open(seed)?;
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| redact(seed))?;
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut c)
        .await
        .with_context(|| format!("{}: CLUSTER SLOTS", redact(seed)))?;
    let base = redis::parse_redis_url(seed).ok_or_else(|| anyhow!("not a URL"))?;
    let mut out: Vec<(String, Client)> = Vec::new();
    let Value::Array(ranges) = slots else {
        return Ok(out);
    };
    for r in ranges {
        let Value::Array(parts) = r else { continue };
        let Some(Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let host = match master.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => continue,
        };
        let Some(Value::Int(port)) = master.get(1) else {
            continue;
        };
        let host = if host.is_empty() {
            base.host_str().unwrap_or("127.0.0.1").to_string()
        } else {
            host
        };
        let mut u = base.clone();
        if u.set_host(Some(&host)).is_err() || u.set_port(Some(*port as u16)).is_err() {
            continue;
        }
        let url = u.to_string();
        let name = redact(&url);
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        out.push((name, Client::open(url.as_str())?));
    }
    Ok(out)
}

/// A field of `CANDLE.INFO` (a flat field/value array, or a RESP3 map); None when absent or nil.
pub fn info_field(v: &Value, name: &str) -> Option<String> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    };
    match v {
        Value::Array(items) => items
            .chunks(2)
            .find(|p| p.len() == 2 && text(&p[0]).as_deref() == Some(name))
            .and_then(|p| text(&p[1])),
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).as_deref() == Some(name))
            .and_then(|(_, v)| text(v)),
        _ => None,
    }
}

/// Redis' glob matching (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`), as `SCAN MATCH` and
/// `PSUBSCRIBE` use it.
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    // Backtracking point for the last '*': (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pattern, p, s[i]) {
                        if matched {
                            p = next;
                            i += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == s[i] {
                        p += 2;
                        i += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[i] {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[p] == '['`: (matched, index after `]`).
fn class_match(pattern: &[u8], p: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    while j < pattern.len() && pattern[j] != b']' {
        if pattern[j] == b'\\' && j + 1 < pattern.len() {
            matched |= pattern[j + 1] == c;
            j += 2;
        } else if j + 2 < pattern.len() && pattern[j + 1] == b'-' && pattern[j + 2] != b']' {
            let (a, b) = (
                pattern[j].min(pattern[j + 2]),
                pattern[j].max(pattern[j + 2]),
            );
            matched |= (a..=b).contains(&c);
            j += 3;
        } else {
            matched |= pattern[j] == c;
            j += 1;
        }
    }
    if j >= pattern.len() {
        return None;
    }
    Some((matched != negate, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"candle:{BTCUSDT}:1m"));
        assert!(glob_match(b"candle:*", b"candle:{BTCUSDT}:1m"));
        assert!(!glob_match(b"candle:*", b"ticks:x"));
        assert!(glob_match(b"candle:\\{BTC*", b"candle:{BTCUSDT}:1m"));
        assert!(glob_match(b"c?ndle:*:1[mh]", b"candle:x:1h"));
        assert!(!glob_match(b"c?ndle:*:1[^mh]", b"candle:x:1h"));
        assert!(glob_match(b"*:[0-9]m", b"a:5m"));
        assert!(!glob_match(b"a", b"ab"));
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
    }

    #[test]
    fn notification_flags() {
        assert!(notifications_ok("Kd"));
        assert!(notifications_ok("AKE"));
        assert!(!notifications_ok(""));
        assert!(!notifications_ok("Ed"));
    }

    #[test]
    fn info_fields() {
        let v = Value::Array(vec![
            Value::BulkString(b"interval".to_vec()),
            Value::BulkString(b"1m".to_vec()),
            Value::BulkString(b"source".to_vec()),
            Value::Nil,
        ]);
        assert_eq!(info_field(&v, "interval").as_deref(), Some("1m"));
        assert_eq!(info_field(&v, "source"), None);
        assert_eq!(info_field(&v, "feeds"), None);
    }
}
