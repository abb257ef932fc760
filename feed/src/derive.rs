//! `--derive` (SPEC §6 item 8): one exchange interval per symbol. The smallest interval asked
//! for is streamed and back-filled; every other one is created as a series derived inside
//! Redis (`CANDLE.CREATE dst INTERVAL i SOURCE src`), each from the longest interval before
//! it that its buckets nest in, so `1m,5m,1h,1d` becomes the chain 1m → 5m → 1h → 1d.
//! Exchange history older than the source's still comes from REST into the derived series
//! (the module keeps what the source covers to itself).

use crate::backoff::{Backoff, Shutdown};
use crate::config::Series;
use crate::route::Command;
use crate::sink::{Sink, SinkError};
use anyhow::{bail, Result};
use candles_core::align::Buckets;
use candles_core::Interval;
use redis::Value;
use tracing::{info, warn};

/// A derived series and the key it is derived from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub series: Series,
    pub source: Series,
}

/// The plan: the series streamed (the smallest interval of each symbol) and the links of the
/// others, sources before the series derived from them.
#[derive(Debug, Default)]
pub struct Plan {
    pub streamed: Vec<Series>,
    pub derived: Vec<Link>,
}

fn nominal_ms(i: Interval) -> i64 {
    i.fixed_ms().unwrap_or(28 * 86_400_000)
}

pub fn plan(series: &[Series]) -> Result<Plan> {
    let mut out = Plan::default();
    let mut symbols: Vec<&str> = Vec::new();
    for s in series {
        if !symbols.contains(&s.symbol.as_str()) {
            symbols.push(&s.symbol);
        }
    }
    for sym in symbols {
        let mut mine: Vec<&Series> = series.iter().filter(|s| s.symbol == sym).collect();
        mine.sort_by_key(|s| nominal_ms(s.interval));
        let Some((first, rest)) = mine.split_first() else {
            continue;
        };
        out.streamed.push((*first).clone());
        let mut done: Vec<&Series> = vec![first];
        for s in rest {
            let dst = Buckets::from(s.interval);
            let Some(src) = done
                .iter()
                .rev()
                .find(|d| Buckets::from(d.interval).check_nests_in(dst).is_ok())
            else {
                bail!(
                    "--derive: {} cannot be derived from {} (its buckets do not nest); add an interval that divides it, or drop --derive",
                    s.interval,
                    first.interval
                );
            };
            out.derived.push(Link {
                series: (*s).clone(),
                source: (*src).clone(),
            });
            done.push(s);
        }
    }
    Ok(out)
}

/// Candles of the streamed interval that cover one whole bucket of its longest derived
/// interval (at most a week of them): a bootstrap this deep gives the derived series their
/// current bucket from the source, not only from REST.
pub fn source_depth(plan: &Plan, source: &Series) -> usize {
    const WEEK: i64 = 7 * 86_400_000;
    let Some(len) = source.interval.fixed_ms() else {
        return 0;
    };
    plan.derived
        .iter()
        .filter(|l| l.series.symbol == source.symbol)
        .map(|l| (nominal_ms(l.series.interval).min(WEEK) / len) as usize + 1)
        .max()
        .unwrap_or(0)
}

fn is_exists(e: &SinkError) -> bool {
    matches!(e, SinkError::Reply(m) if m.contains("already exists"))
}

/// Creates the sources and the derived series (an existing series is kept as it is: a
/// derived one of the same source is what a restart finds; anything else is logged).
pub async fn create_links(sink: &mut Sink, plan: &Plan, shutdown: &Shutdown) -> Result<()> {
    let mut backoff = Backoff::new(
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(5),
    );
    for s in &plan.streamed {
        let create = Command::new(["CANDLE.CREATE", &s.key, "INTERVAL", s.interval.as_str()]);
        match sink
            .exec_retrying(std::slice::from_ref(&create), &mut backoff, shutdown)
            .await
        {
            Ok(_) => {}
            Err(e) if is_exists(&e) => {}
            Err(e) => bail!("--derive: cannot create {}: {e}", s.key),
        }
    }
    for l in &plan.derived {
        let create = Command::new([
            "CANDLE.CREATE",
            &l.series.key,
            "INTERVAL",
            l.series.interval.as_str(),
            "SOURCE",
            &l.source.key,
        ]);
        match sink
            .exec_retrying(std::slice::from_ref(&create), &mut backoff, shutdown)
            .await
        {
            Ok(_) => info!(key = %l.series.key, source = %l.source.key, "derived series created"),
            Err(e) if is_exists(&e) => {
                let info = sink
                    .query(&Command::new(["CANDLE.INFO", &l.series.key]))
                    .await
                    .map_err(|e| anyhow::anyhow!("CANDLE.INFO {}: {e}", l.series.key))?;
                if source_field(&info).as_deref() != Some(l.source.key.as_str()) {
                    warn!(key = %l.series.key, source = %l.source.key, "--derive: the series exists and is not derived from its source; left as it is (DEL it to derive it)");
                }
            }
            Err(SinkError::Shutdown) => return Ok(()),
            Err(e) => bail!("--derive: cannot create {}: {e}", l.series.key),
        }
    }
    Ok(())
}

/// The `source` field of a `CANDLE.INFO` reply (field names come as status strings in RESP2).
fn source_field(v: &Value) -> Option<String> {
    let Value::Array(items) = v else {
        return None;
    };
    items.chunks(2).find_map(|p| match p {
        [k, v] if redis::from_redis_value::<String>(k).is_ok_and(|k| k == "source") => {
            redis::from_redis_value::<String>(v).ok()
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(sym: &str, i: &str) -> Series {
        Series::new(sym, Interval::parse(i).unwrap(), "candle:{SYMBOL}:INTERVAL")
    }

    #[test]
    fn chains_each_interval_onto_the_longest_one_it_nests_in() {
        let p = plan(&[
            s("BTCUSDT", "1h"),
            s("BTCUSDT", "1m"),
            s("BTCUSDT", "5m"),
            s("BTCUSDT", "1d"),
            s("BTCUSDT", "1w"),
            s("BTCUSDT", "1M"),
            s("ETHUSDT", "15m"),
        ])
        .unwrap();
        assert_eq!(p.streamed, vec![s("BTCUSDT", "1m"), s("ETHUSDT", "15m")]);
        let pairs: Vec<(&str, &str)> = p
            .derived
            .iter()
            .map(|l| (l.series.interval.as_str(), l.source.interval.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("5m", "1m"),
                ("1h", "5m"),
                ("1d", "1h"),
                ("1w", "1d"),
                ("1M", "1d")
            ]
        );
        assert_eq!(source_depth(&p, &s("BTCUSDT", "1m")), 10_081);
        assert!(plan(&[s("BTCUSDT", "3m"), s("BTCUSDT", "5m")]).is_err());
    }
}
