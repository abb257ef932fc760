//! The Redis Cluster side of the sink (`--cluster`): the slot map read with `CLUSTER SLOTS`
//! from the seed nodes, one multiplexed connection per master, each batch split into one
//! pipeline per node (sent to all nodes at once), `MOVED` (slot map refreshed, command sent
//! to the new owner), `ASK` (`ASKING` + the command on the target), `TRYAGAIN`/`CLUSTERDOWN`
//! (retried after a pause) followed per command, and every command's own reply kept.
//!
//! Why not redis-rs' `cluster-async` client: its pipelines must stay in one slot (a batch of
//! the feeder spans many symbols, so many slots) and it turns a pipeline into one error as soon
//! as any command of it is refused, while the feeder needs each command's reply; routing by
//! hand keeps the single-node path's semantics (`exec_each`) on a cluster.
//!
//! Every feeder command names its key as its first argument (`CANDLE.* key …`,
//! `TICKS.PUSH key …`, `EXISTS key`); a command without a key (`PING`) goes to every master.

use crate::backoff::{Backoff, Shutdown};
use crate::errors::chain;
use crate::route::Command;
use crate::sink::SinkError;
use crate::stats::STATS;
use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::Value;
use std::collections::HashMap;
use std::time::Duration;
use tracing::{info, warn};

/// Redirection rounds inside one attempt before it gives up (the caller retries with backoff).
const ROUNDS: u32 = 6;

/// Where a command goes: the owner of its key's slot, or (no key) every master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Slot(u16),
    AllMasters,
}

fn target(cmd: &Command) -> Target {
    match cmd.args.get(1) {
        Some(key) if cmd.name() != "PING" => Target::Slot(redis::cluster_routing::get_slot(key)),
        _ => Target::AllMasters,
    }
}

/// One reply as the sink reports it.
type Reply = Result<Value, String>;

pub struct ClusterSink {
    seeds: Vec<String>,
    /// `scheme://[userinfo@]` of the first seed, for the nodes' URLs.
    prefix: String,
    /// (first slot, last slot, "host:port" of the master), sorted.
    slots: Vec<(u16, u16, String)>,
    conns: HashMap<String, MultiplexedConnection>,
    /// 1 after the first slot map; +1 after every re-established node connection.
    pub generation: u64,
    lost: bool,
}

fn url_prefix(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let user = rest
        .split('/')
        .next()
        .and_then(|hp| hp.rsplit_once('@'))
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}")
}

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let hp = rest.split('/').next().unwrap_or(rest);
    hp.rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(hp)
        .to_string()
}

fn is_conn_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// Parses a `CLUSTER SLOTS` reply; `default_host` replaces an empty or `?` host.
pub fn parse_slots(v: &Value, default_host: &str) -> Result<Vec<(u16, u16, String)>, String> {
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let Value::Array(ranges) = v else {
        return Err(format!("CLUSTER SLOTS: expected an array, got {v:?}"));
    };
    let mut out = Vec::new();
    for r in ranges {
        let Value::Array(r) = r else {
            return Err(format!("CLUSTER SLOTS: bad range {r:?}"));
        };
        let (Some(lo), Some(hi), Some(Value::Array(master))) =
            (r.first().and_then(int), r.get(1).and_then(int), r.get(2))
        else {
            return Err(format!("CLUSTER SLOTS: bad range {r:?}"));
        };
        let host = master.first().and_then(text).unwrap_or_default();
        let host = if host.is_empty() || host == "?" {
            default_host.to_string()
        } else {
            host
        };
        let port = master
            .get(1)
            .and_then(int)
            .ok_or_else(|| format!("CLUSTER SLOTS: bad node {master:?}"))?;
        let (Ok(lo), Ok(hi)) = (u16::try_from(lo), u16::try_from(hi)) else {
            return Err(format!("CLUSTER SLOTS: bad slots {lo}-{hi}"));
        };
        out.push((lo, hi, format!("{host}:{port}")));
    }
    out.sort();
    if out.is_empty() {
        return Err("CLUSTER SLOTS: no slot is served".into());
    }
    Ok(out)
}

impl ClusterSink {
    pub fn new(seeds: &[String]) -> anyhow::Result<ClusterSink> {
        let first = seeds
            .first()
            .ok_or_else(|| anyhow::anyhow!("--cluster needs at least one seed node in --redis"))?;
        for s in seeds {
            // Checks the URL's syntax now rather than at the first write.
            redis::Client::open(s.as_str())?;
        }
        Ok(ClusterSink {
            seeds: seeds.to_vec(),
            prefix: url_prefix(first),
            slots: Vec::new(),
            conns: HashMap::new(),
            generation: 0,
            lost: false,
        })
    }

    pub fn is_connected(&self) -> bool {
        !self.slots.is_empty() && !self.conns.is_empty()
    }

    fn masters(&self) -> Vec<String> {
        let mut m: Vec<String> = self.slots.iter().map(|(_, _, a)| a.clone()).collect();
        m.sort();
        m.dedup();
        m
    }

    fn owner(&self, slot: u16) -> Option<&str> {
        self.slots
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .map(|(_, _, a)| a.as_str())
    }

    async fn connect(&mut self, addr: &str) -> Result<MultiplexedConnection, SinkError> {
        if let Some(c) = self.conns.get(addr) {
            return Ok(c.clone());
        }
        let url = format!("{}{addr}", self.prefix);
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(3))
            .set_response_timeout(Duration::from_secs(10));
        let client = redis::Client::open(url.as_str())
            .map_err(|e| SinkError::Connection(format!("{url}: {}", chain(&e))))?;
        let c = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(|e| {
                STATS.add_redis_errors(1);
                SinkError::Connection(format!("{url}: {}", chain(&e)))
            })?;
        if self.lost {
            self.lost = false;
            self.generation += 1;
            info!(node = addr, "reconnected to a redis cluster node");
        }
        self.conns.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    fn drop_conn(&mut self, addr: &str) {
        if self.conns.remove(addr).is_some() {
            self.lost = true;
        }
    }

    /// Reads the slot map from the known masters, then the seeds; the first answer wins.
    pub async fn refresh(&mut self) -> Result<(), SinkError> {
        let mut candidates = self.masters();
        candidates.extend(self.seeds.iter().map(|s| host_port(s)));
        candidates.dedup();
        let mut last = String::from("no node to ask");
        for addr in candidates {
            let mut c = match self.connect(&addr).await {
                Ok(c) => c,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let r = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async::<Value>(&mut c)
                .await;
            let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
            match r.map_err(|e| chain(&e)).and_then(|v| parse_slots(&v, host)) {
                Ok(slots) => {
                    let covered: u32 = slots.iter().map(|(lo, hi, _)| u32::from(hi - lo) + 1).sum();
                    if covered < 16384 {
                        last = format!("{addr}: only {covered} of 16384 slots are served");
                        continue;
                    }
                    if self.slots != slots && !self.slots.is_empty() {
                        info!(masters = ?dedup_addrs(&slots), "redis cluster slot map changed");
                    }
                    self.slots = slots;
                    if self.generation == 0 {
                        self.generation = 1;
                        info!(masters = ?self.masters(), "connected to the redis cluster");
                    }
                    // Connections to nodes that are no master any more are not needed.
                    let masters = self.masters();
                    self.conns.retain(|a, _| masters.contains(a));
                    return Ok(());
                }
                Err(e) => {
                    self.drop_conn(&addr);
                    last = format!("{addr}: {e}");
                }
            }
        }
        STATS.add_redis_errors(1);
        Err(SinkError::Connection(format!("redis cluster: {last}")))
    }

    /// One attempt at the commands still without a reply in `out` (redirections followed up to
    /// [`ROUNDS`] times). Connection trouble with a node leaves its commands without a reply
    /// and is returned after the other nodes were served.
    async fn attempt(
        &mut self,
        cmds: &[Command],
        out: &mut [Option<Reply>],
    ) -> Result<(), SinkError> {
        if self.slots.is_empty() {
            self.refresh().await?;
        }
        // Commands still to send, with the node an ASK sent them to.
        let mut ask: HashMap<usize, String> = HashMap::new();
        let mut conn_err: Option<SinkError> = None;
        for round in 0..ROUNDS {
            let todo: Vec<usize> = (0..cmds.len()).filter(|&i| out[i].is_none()).collect();
            if todo.is_empty() {
                return Ok(());
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(50 * u64::from(round))).await;
            }
            // node → [(command index, asking)]
            let mut groups: HashMap<String, Vec<(usize, bool)>> = HashMap::new();
            let masters = self.masters();
            for &i in &todo {
                if let Some(a) = ask.remove(&i) {
                    groups.entry(a).or_default().push((i, true));
                    continue;
                }
                match target(&cmds[i]) {
                    Target::Slot(s) => {
                        let Some(a) = self.owner(s).map(str::to_owned) else {
                            out[i] = Some(Err(format!("CLUSTERDOWN slot {s} is not served")));
                            continue;
                        };
                        groups.entry(a).or_default().push((i, false));
                    }
                    Target::AllMasters => {
                        for a in &masters {
                            groups.entry(a.clone()).or_default().push((i, false));
                        }
                    }
                }
            }
            let mut sends = Vec::new();
            for (addr, items) in groups {
                match self.connect(&addr).await {
                    Ok(c) => sends.push((addr, items, c)),
                    Err(e) => conn_err = Some(e),
                }
            }
            let results = join_all(sends.into_iter().map(|(addr, items, mut c)| async move {
                let mut pipe = redis::pipe();
                for (i, asking) in &items {
                    if *asking {
                        pipe.add_command(redis::cmd("ASKING"));
                    }
                    pipe.add_command(cmds[*i].to_redis());
                }
                let n = items.iter().map(|(_, a)| 1 + usize::from(*a)).sum();
                let r = c.send_packed_commands(&pipe, 0, n).await;
                (addr, items, r)
            }))
            .await;
            let mut refresh = false;
            // A keyless command's replies from every master: the first error wins.
            let mut all_masters: HashMap<usize, Reply> = HashMap::new();
            for (addr, items, r) in results {
                let values = match r {
                    Ok(v) => v,
                    Err(e) => {
                        STATS.add_redis_errors(1);
                        if is_conn_error(&e) {
                            warn!(node = %addr, error = %chain(&e), "redis cluster node unavailable");
                            self.drop_conn(&addr);
                            refresh = true;
                            conn_err =
                                Some(SinkError::Connection(format!("{addr}: {}", chain(&e))));
                        } else {
                            for (i, _) in &items {
                                out[*i] = Some(Err(chain(&e)));
                            }
                        }
                        continue;
                    }
                };
                let mut it = values.into_iter();
                for (i, asking) in items {
                    if asking {
                        let _ = it.next(); // ASKING's OK
                    }
                    let Some(v) = it.next() else {
                        conn_err = Some(SinkError::Connection(format!(
                            "{addr}: short pipeline reply"
                        )));
                        break;
                    };
                    let reply: Option<Reply> = match v {
                        Value::ServerError(e) => match e.code() {
                            "MOVED" => {
                                refresh = true;
                                None
                            }
                            "ASK" => {
                                match e.details().and_then(|d| d.split_whitespace().nth(1)) {
                                    Some(a) => {
                                        ask.insert(i, a.to_string());
                                    }
                                    None => refresh = true,
                                }
                                None
                            }
                            "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" => {
                                refresh = true;
                                None
                            }
                            code => Some(Err(match e.details() {
                                Some(d) => format!("{code}: {d}"),
                                None => code.to_string(),
                            })),
                        },
                        v => Some(Ok(v)),
                    };
                    if matches!(target(&cmds[i]), Target::AllMasters) {
                        if let Some(r) = reply {
                            let e = all_masters.entry(i).or_insert(Ok(Value::Nil));
                            if e.is_ok() {
                                *e = r;
                            }
                        }
                    } else if reply.is_some() {
                        out[i] = reply;
                    }
                }
            }
            for (i, r) in all_masters {
                out[i] = Some(r);
            }
            if let Some(e) = conn_err.take() {
                // Let the caller back off; what went through is kept in `out`.
                let _ = self.refresh().await;
                return Err(e);
            }
            if refresh {
                let _ = self.refresh().await;
            }
        }
        if out.iter().all(Option::is_some) {
            Ok(())
        } else {
            Err(SinkError::Connection(
                "redis cluster: still redirected after several rounds".into(),
            ))
        }
    }

    /// Each command's reply; connection trouble fails the call (as on one node).
    pub async fn exec_each(&mut self, cmds: &[Command]) -> Result<Vec<Reply>, SinkError> {
        let mut out = vec![None; cmds.len()];
        self.attempt(cmds, &mut out).await?;
        Ok(finish(out))
    }

    /// [`ClusterSink::exec_each`], retrying with backoff until every command has a reply: a
    /// command that got its reply is not sent again.
    pub async fn exec_each_retrying(
        &mut self,
        cmds: &[Command],
        backoff: &mut Backoff,
        shutdown: &Shutdown,
    ) -> Result<Vec<Reply>, SinkError> {
        let mut out = vec![None; cmds.len()];
        loop {
            match self.attempt(cmds, &mut out).await {
                Ok(()) => {
                    backoff.reset();
                    return Ok(finish(out));
                }
                Err(SinkError::Connection(e)) => {
                    let d = backoff.next_delay();
                    warn!(error = %e, retry_in_ms = d.as_millis() as u64, attempt = backoff.attempts(), "redis cluster unavailable, retrying");
                    if !shutdown.sleep(d).await {
                        return Err(SinkError::Shutdown);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn dedup_addrs(slots: &[(u16, u16, String)]) -> Vec<String> {
    let mut m: Vec<String> = slots.iter().map(|(_, _, a)| a.clone()).collect();
    m.sort();
    m.dedup();
    m
}

fn finish(out: Vec<Option<Reply>>) -> Vec<Reply> {
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err("no reply".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_targets() {
        assert_eq!(url_prefix("redis://u:p@h:1/0"), "redis://u:p@");
        assert_eq!(url_prefix("rediss://h:1"), "rediss://");
        assert_eq!(host_port("redis://u:p@h:1/0"), "h:1");
        assert_eq!(host_port("redis://127.0.0.1:7000"), "127.0.0.1:7000");
        assert_eq!(target(&Command::new(["PING"])), Target::AllMasters);
        // the hash tag: every interval of a symbol in one slot
        let a = target(&Command::new([
            "CANDLE.GAPS",
            "candle:{BTCUSDT}:1m",
            "0",
            "1",
        ]));
        let b = target(&Command::new([
            "CANDLE.GAPS",
            "candle:{BTCUSDT}:1h",
            "0",
            "1",
        ]));
        assert_eq!(a, b);
        assert_eq!(
            a,
            Target::Slot(redis::cluster_routing::get_slot(b"BTCUSDT"))
        );
    }

    #[test]
    fn slots_reply() {
        let node = |h: &str, p| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let v = Value::Array(vec![
            Value::Array(vec![Value::Int(8192), Value::Int(16383), node("", 7001)]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8191),
                node("10.0.0.1", 7000),
            ]),
        ]);
        let s = parse_slots(&v, "127.0.0.1").unwrap();
        assert_eq!(
            s,
            vec![
                (0, 8191, "10.0.0.1:7000".to_string()),
                (8192, 16383, "127.0.0.1:7001".to_string())
            ]
        );
        assert!(parse_slots(&Value::Array(vec![]), "h").is_err());
        assert!(parse_slots(&Value::Int(1), "h").is_err());
    }
}
