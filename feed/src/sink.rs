//! The Redis side: one multiplexed connection, re-opened after any connection error, pipelines;
//! or, with `--cluster`, a Redis Cluster behind the same calls (see cluster.rs).

use crate::backoff::{Backoff, Shutdown};
use crate::cluster::ClusterSink;
use crate::config::{redis_urls, Args};
use crate::errors::chain;
use crate::route::Command;
use crate::stats::STATS;
use redis::aio::MultiplexedConnection;
use redis::{RedisError, Value};
use std::time::Duration;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Connection-level trouble: the commands may not have run; retry after reconnecting.
    #[error("redis connection: {0}")]
    Connection(String),
    /// The server answered with an error (the commands ran; nothing to retry).
    #[error("redis replied: {0}")]
    Reply(String),
    #[error("shutting down")]
    Shutdown,
}

pub struct Sink {
    client: redis::Client,
    conn: Option<MultiplexedConnection>,
    /// Counts successful (re)connections: 1 after the first, 2 after a reconnect, …
    pub generation: u64,
    url: String,
    /// `--cluster`: every call goes there instead.
    cluster: Option<ClusterSink>,
}

fn classify(e: RedisError) -> SinkError {
    if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        // A restarted server still loading its AOF/RDB ran nothing: retry, as for a restart.
        || e.kind() == redis::ErrorKind::BusyLoadingError
    {
        SinkError::Connection(chain(&e))
    } else {
        SinkError::Reply(chain(&e))
    }
}

/// Commands counted in the stats: all but PING.
fn counted(cmds: &[Command]) -> u64 {
    cmds.iter().filter(|c| c.name() != "PING").count() as u64
}

impl Sink {
    pub fn new(url: &str) -> anyhow::Result<Sink> {
        let client = redis::Client::open(url)?;
        Ok(Sink {
            client,
            conn: None,
            generation: 0,
            url: url.to_string(),
            cluster: None,
        })
    }

    /// The sink of the options: a Redis Cluster reached through the seed nodes of `--redis`
    /// with `--cluster`, else the one server of `--redis`.
    pub fn from_args(args: &Args) -> anyhow::Result<Sink> {
        if !args.cluster {
            return Sink::new(&args.redis);
        }
        let seeds = redis_urls(args);
        let cluster = ClusterSink::new(&seeds)?;
        let first = seeds.first().cloned().unwrap_or_default();
        Ok(Sink {
            client: redis::Client::open(first.as_str())?,
            conn: None,
            generation: 0,
            url: args.redis.clone(),
            cluster: Some(cluster),
        })
    }

    pub fn is_connected(&self) -> bool {
        match &self.cluster {
            Some(c) => c.is_connected(),
            None => self.conn.is_some(),
        }
    }

    async fn conn(&mut self) -> Result<&mut MultiplexedConnection, SinkError> {
        if self.conn.is_none() {
            let cfg = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Duration::from_secs(3))
                .set_response_timeout(Duration::from_secs(10));
            let c = self
                .client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map_err(|e| {
                    STATS.add_redis_errors(1);
                    SinkError::Connection(format!("{}: {}", self.url, chain(&e)))
                })?;
            self.generation += 1;
            if self.generation > 1 {
                info!(redis = %self.url, "reconnected to redis");
            }
            self.conn = Some(c);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| SinkError::Connection("not connected".into()))
    }

    fn on_error(&mut self, e: SinkError) -> SinkError {
        STATS.add_redis_errors(1);
        if matches!(e, SinkError::Connection(_)) {
            self.conn = None;
        }
        e
    }

    /// Runs the commands as one pipeline. A reply error of one command does not stop the
    /// others (the server ran them all); it is reported after.
    pub async fn exec(&mut self, cmds: &[Command]) -> Result<Vec<Value>, SinkError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        if self.cluster.is_some() {
            return self
                .exec_each(cmds)
                .await?
                .into_iter()
                .map(|r| r.map_err(SinkError::Reply))
                .collect();
        }
        let mut pipe = redis::pipe();
        for c in cmds {
            pipe.add_command(c.to_redis());
        }
        let r = {
            let conn = self.conn().await?;
            pipe.query_async::<Vec<Value>>(conn).await
        };
        let values = r.map_err(|e| {
            let e = classify(e);
            if matches!(e, SinkError::Reply(_)) {
                // the server ran them (and refused at least one)
                STATS.add_commands(counted(cmds));
            }
            self.on_error(e)
        })?;
        STATS.add_commands(counted(cmds));
        Ok(values)
    }

    /// Runs the commands as one pipeline and returns each command's own reply: `Err` with the
    /// server's error text for a command the server refused. Only connection trouble fails the
    /// whole call.
    pub async fn exec_each(
        &mut self,
        cmds: &[Command],
    ) -> Result<Vec<Result<Value, String>>, SinkError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let replies: Vec<Result<Value, String>> = if let Some(c) = self.cluster.as_mut() {
            let r = c.exec_each(cmds).await;
            self.generation = c.generation;
            r?
        } else {
            let mut pipe = redis::pipe();
            for c in cmds {
                pipe.add_command(c.to_redis());
            }
            let r = {
                let conn = self.conn().await?;
                conn.send_packed_commands(&pipe, 0, cmds.len()).await
            };
            let values = r.map_err(|e| self.on_error(classify(e)))?;
            // A server loading its AOF/RDB after a restart refuses every command with LOADING
            // (none ran): the whole call is retried after a backoff, on the same connection.
            if values
                .iter()
                .any(|v| matches!(v, Value::ServerError(e) if e.code() == "LOADING"))
            {
                STATS.add_redis_errors(1);
                return Err(SinkError::Connection(format!(
                    "{}: the server is loading its dataset",
                    self.url
                )));
            }
            values
                .into_iter()
                .map(|v| match v.extract_error() {
                    Ok(v) => Ok(v),
                    Err(e) => Err(e.to_string()),
                })
                .collect()
        };
        STATS.add_commands(counted(cmds));
        STATS.add_redis_errors(replies.iter().filter(|r| r.is_err()).count() as u64);
        Ok(replies)
    }

    /// [`Sink::exec_each`], retrying connection failures with backoff until it goes through
    /// (or shutdown).
    pub async fn exec_each_retrying(
        &mut self,
        cmds: &[Command],
        backoff: &mut Backoff,
        shutdown: &Shutdown,
    ) -> Result<Vec<Result<Value, String>>, SinkError> {
        if let Some(c) = self.cluster.as_mut() {
            let r = c.exec_each_retrying(cmds, backoff, shutdown).await;
            self.generation = c.generation;
            let replies = r?;
            STATS.add_commands(counted(cmds));
            STATS.add_redis_errors(replies.iter().filter(|r| r.is_err()).count() as u64);
            return Ok(replies);
        }
        loop {
            match self.exec_each(cmds).await {
                Err(SinkError::Connection(e)) => {
                    let d = backoff.next_delay();
                    warn!(error = %e, retry_in_ms = d.as_millis() as u64, attempt = backoff.attempts(), "redis unavailable, retrying");
                    if !shutdown.sleep(d).await {
                        return Err(SinkError::Shutdown);
                    }
                }
                other => {
                    if other.is_ok() {
                        backoff.reset();
                    }
                    return other;
                }
            }
        }
    }

    /// One command.
    pub async fn query(&mut self, cmd: &Command) -> Result<Value, SinkError> {
        if self.cluster.is_some() {
            return match self.exec_each(std::slice::from_ref(cmd)).await?.pop() {
                Some(Ok(v)) => Ok(v),
                Some(Err(e)) => Err(SinkError::Reply(e)),
                None => Err(SinkError::Connection("no reply".into())),
            };
        }
        let r = {
            let conn = self.conn().await?;
            cmd.to_redis().query_async::<Value>(conn).await
        };
        r.map_err(|e| self.on_error(classify(e)))
    }

    pub async fn ping(&mut self) -> Result<(), SinkError> {
        self.query(&Command::new(["PING"])).await.map(|_| ())
    }

    /// Runs the pipeline, retrying connection failures with backoff until it goes through
    /// (or shutdown). A refused command is returned as the call's error (the first one; the
    /// server ran them all), not retried.
    pub async fn exec_retrying(
        &mut self,
        cmds: &[Command],
        backoff: &mut Backoff,
        shutdown: &Shutdown,
    ) -> Result<Vec<Value>, SinkError> {
        self.exec_each_retrying(cmds, backoff, shutdown)
            .await?
            .into_iter()
            .map(|r| r.map_err(SinkError::Reply))
            .collect()
    }
}

/// Parses a `CANDLE.GAPS` reply: `[[start, end], …]` (integers or integer strings).
pub fn parse_gaps(v: &Value) -> Result<Vec<(i64, i64)>, String> {
    let int = |v: &Value| -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::SimpleString(s) => s.parse().ok(),
            _ => None,
        }
    };
    let Value::Array(items) = v else {
        return Err(format!("CANDLE.GAPS: expected an array, got {v:?}"));
    };
    items
        .iter()
        .map(|p| match p {
            Value::Array(pair) if pair.len() == 2 => match (int(&pair[0]), int(&pair[1])) {
                (Some(a), Some(b)) => Ok((a, b)),
                _ => Err(format!("CANDLE.GAPS: bad pair {p:?}")),
            },
            _ => Err(format!("CANDLE.GAPS: bad pair {p:?}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_reply() {
        let v = Value::Array(vec![
            Value::Array(vec![Value::Int(60_000), Value::Int(120_000)]),
            Value::Array(vec![
                Value::BulkString(b"300000".to_vec()),
                Value::Int(300_000),
            ]),
        ]);
        assert_eq!(
            parse_gaps(&v).unwrap(),
            vec![(60_000, 120_000), (300_000, 300_000)]
        );
        assert!(parse_gaps(&Value::Array(vec![])).unwrap().is_empty());
        assert!(parse_gaps(&Value::Int(1)).is_err());
        assert!(parse_gaps(&Value::Array(vec![Value::Array(vec![Value::Int(1)])])).is_err());
    }
}
