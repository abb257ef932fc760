//! Phase 7: derived series (R8). Server cost of ingesting 1m candles into a series that feeds
//! a 5m → 1h → 1d chain against the same ingest with no chain (the whole cascade runs inside
//! the OFFICIAL_ADD, so INFO commandstats counts it), the same for live updates, the cost of
//! a chart read of a derived series against a plain series of the same candles, and memory
//! per derived candle.

use crate::data::{positional, rep_shift, shifted};
use crate::server::Server;
use crate::stats::{cmdstats, memory_usage, per_call, reset_stats};
use crate::table::{b, us, Table};
use crate::{CHART, MIN, N_REPS, R};
use redis::Connection;
use serde_json::Value as Json;

const PLAIN: &str = "plain:{BTCUSDT}:1m";
const SRC: &str = "candle:{BTCUSDT}:1m";
const CHAIN: [(&str, &str, &str); 3] = [
    ("candle:{BTCUSDT}:5m", "5m", SRC),
    ("candle:{BTCUSDT}:1h", "1h", "candle:{BTCUSDT}:5m"),
    ("candle:{BTCUSDT}:1d", "1d", "candle:{BTCUSDT}:1h"),
];
/// Bodies per paired round of the ingest comparison (100 bodies: a warm-up round, then 19).
const ROUND: usize = 5;
/// Live updates measured per series.
const LIVE_UPDATES: usize = 20_000;

/// The median of `v` (the upper one of an even count).
fn median(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// µs per OFFICIAL_ADD candle (1000-row bodies) into `key`, from a fresh commandstats.
fn ingest(c: &mut Connection, meter: &mut Connection, key: &str, batches: &[String]) -> R<f64> {
    reset_stats(meter)?;
    for body in batches {
        let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
            .arg(key)
            .arg("JSON")
            .arg(body)
            .query(c)?;
        if n != 1000 {
            return Err(format!("OFFICIAL_ADD {key}: {n} of 1000").into());
        }
    }
    Ok(per_call(&cmdstats(meter)?, "candle.official_add")?.1 / 1000.0)
}

/// µs per LIVE_UPDATE call: the forming minute after the last official, updated with the
/// real rows' prices in turn (pipelined).
fn live(c: &mut Connection, meter: &mut Connection, key: &str, rows: &[Json], t: i64) -> R<f64> {
    reset_stats(meter)?;
    let mut p = redis::pipe();
    for (i, r) in rows.iter().cycle().take(LIVE_UPDATES).enumerate() {
        let mut args = positional(r);
        args[0] = t.to_string();
        p.cmd("CANDLE.LIVE_UPDATE").arg(key).arg(&args).ignore();
        if i % 1000 == 999 {
            p.query::<()>(c)?;
            p = redis::pipe();
        }
    }
    p.query::<()>(c)?;
    Ok(per_call(&cmdstats(meter)?, "candle.live_update")?.1)
}

/// µs per `RANGE_MERGED key - + COUNT 720 FORMAT JSON` (cache warm, as a chart server reads).
fn chart(c: &mut Connection, meter: &mut Connection, key: &str) -> R<f64> {
    let read = |c: &mut Connection| -> R<String> {
        Ok(redis::cmd("CANDLE.RANGE_MERGED")
            .arg(key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(CHART)
            .arg("FORMAT")
            .arg("JSON")
            .query(c)?)
    };
    read(c)?;
    reset_stats(meter)?;
    for _ in 0..2000 {
        read(c)?;
    }
    Ok(per_call(&cmdstats(meter)?, "candle.range_merged")?.1)
}

pub fn derived_phase(
    srv: &Server,
    meter: &mut Connection,
    t: &mut Table,
    rows_1m: &[Json],
) -> R<()> {
    let mut c = srv.conn()?;
    let batches: Vec<String> = (0..N_REPS)
        .map(|rep| {
            let shift = rep_shift(rep);
            Json::Array(rows_1m.iter().map(|r| shifted(r, shift)).collect()).to_string()
        })
        .collect();
    for key in [PLAIN, SRC] {
        redis::cmd("CANDLE.CREATE")
            .arg(key)
            .arg("INTERVAL")
            .arg("1m")
            .query::<()>(&mut c)?;
    }
    for (key, iv, src) in CHAIN {
        redis::cmd("CANDLE.CREATE")
            .arg(key)
            .arg("INTERVAL")
            .arg(iv)
            .arg("SOURCE")
            .arg(src)
            .query::<()>(&mut c)?;
    }
    // Paired rounds of ROUND bodies each, plain and chained in turn (which goes first
    // alternates), each round's ratio from its own commandstats: on shared cores the
    // machine's speed drifts by tens of percent within a run, and two long halves compared
    // once carried that drift into the ratio. The row gives the medians over the rounds; the
    // ratio of the totals follows as information.
    let mut rounds: Vec<(f64, f64)> = Vec::new();
    for (i, part) in batches.chunks(ROUND).enumerate() {
        let (p, ch) = if i % 2 == 0 {
            let p = ingest(&mut c, meter, PLAIN, part)?;
            (p, ingest(&mut c, meter, SRC, part)?)
        } else {
            let ch = ingest(&mut c, meter, SRC, part)?;
            (ingest(&mut c, meter, PLAIN, part)?, ch)
        };
        // The first round warms the server up (its first allocations cost either side up to
        // 3x, and the side going first took most of it): run, not counted.
        if i > 0 {
            rounds.push((p, ch));
        }
    }
    let plain = median(rounds.iter().map(|r| r.0));
    let chained = median(rounds.iter().map(|r| r.1));
    let ratio = median(rounds.iter().map(|r| r.1 / r.0));
    t.add(
        "7. server usec/1m candle ingested, 5m/1h/1d chain vs none",
        us(chained),
        us(plain),
        ratio,
        "<= 1.3x (cost)",
        Some(ratio <= 1.3),
    );
    let total = |f: fn(&(f64, f64)) -> f64| rounds.iter().map(f).sum::<f64>();
    t.add(
        &format!("   the same, totals of the {} rounds", rounds.len()),
        us(total(|r| r.1) / rounds.len() as f64),
        us(total(|r| r.0) / rounds.len() as f64),
        total(|r| r.1) / total(|r| r.0),
        "(info)",
        None,
    );
    // A plain 5m series holding exactly the derived candles: the same read, two origins.
    let derived_json: String = redis::cmd("CANDLE.RANGE_MERGED")
        .arg(CHAIN[0].0)
        .arg("-")
        .arg("+")
        .arg("FULL")
        .arg("FORMAT")
        .arg("JSON")
        .query(&mut c)?;
    let derived: Vec<Json> = serde_json::from_str(&derived_json)?;
    let plain5: Vec<Json> = derived
        .iter()
        .filter(|k| k["status"] == "official")
        .map(|k| {
            Json::Array(
                [
                    "open_time",
                    "open",
                    "high",
                    "low",
                    "close",
                    "volume",
                    "close_time",
                    "quote_volume",
                    "trades",
                    "taker_buy_base",
                    "taker_buy_quote",
                ]
                .iter()
                .map(|f| k[*f].clone())
                .collect(),
            )
        })
        .collect();
    for chunk in plain5.chunks(1000) {
        redis::cmd("CANDLE.OFFICIAL_ADD")
            .arg("plain:{BTCUSDT}:5m")
            .arg("INTERVAL")
            .arg("5m")
            .arg("JSON")
            .arg(Json::Array(chunk.to_vec()).to_string())
            .query::<i64>(&mut c)?;
    }
    let (rd, rp) = (
        chart(&mut c, meter, CHAIN[0].0)?,
        chart(&mut c, meter, "plain:{BTCUSDT}:5m")?,
    );
    t.add(
        "   server usec/720-candle JSON read, derived 5m vs plain 5m",
        us(rd),
        us(rp),
        rd / rp,
        "(info)",
        None,
    );
    // Data only: MEMORY USAGE less the chart cache the reads above filled.
    let data_bytes = |c: &mut Connection, key: &str| -> R<f64> {
        let info: Vec<redis::Value> = redis::cmd("CANDLE.INFO").arg(key).query(c)?;
        let cache = info
            .chunks(2)
            .find(|p| {
                redis::from_redis_value::<String>(&p[0]).is_ok_and(|k| k == "json_cache_bytes")
            })
            .and_then(|p| redis::from_redis_value::<i64>(&p[1]).ok())
            .unwrap_or(0);
        Ok((memory_usage(c, key)? - cache) as f64)
    };
    let n5 = plain5.len() as f64;
    let (md, mp) = (
        data_bytes(meter, CHAIN[0].0)? / n5,
        data_bytes(meter, "plain:{BTCUSDT}:5m")? / n5,
    );
    t.add(
        &format!("   B/derived candle, MEMORY USAGE ({} 5m)", plain5.len()),
        b(md),
        b(mp),
        mp / md,
        "(info)",
        None,
    );
    // The stream: one closed kline per command, as the feeder writes x=true frames.
    let mut last = rep_shift(N_REPS - 1) + rows_1m.last().and_then(|r| r[0].as_i64()).unwrap_or(0);
    let (mut sp, mut sc) = (0.0, 0.0);
    for round in 0..2 {
        for (key, out) in [(PLAIN, &mut sp), (SRC, &mut sc)] {
            reset_stats(meter)?;
            let mut p = redis::pipe();
            for (i, r) in rows_1m.iter().enumerate() {
                let mut args = positional(r);
                args[0] = (last + (i as i64 + 1) * MIN).to_string();
                p.cmd("CANDLE.OFFICIAL_ADD").arg(key).arg(&args).ignore();
            }
            p.query::<()>(&mut c)?;
            *out += per_call(&cmdstats(meter)?, "candle.official_add")?.1 / 2.0;
            let _ = round;
        }
        last += rows_1m.len() as i64 * MIN;
    }
    t.add(
        "   server usec/closed kline, one per command, chain vs none",
        us(sc),
        us(sp),
        sc / sp,
        "(info)",
        None,
    );
    let (lp, lc) = (
        live(&mut c, meter, PLAIN, rows_1m, last + MIN)?,
        live(&mut c, meter, SRC, rows_1m, last + MIN)?,
    );
    t.add(
        "   server usec/LIVE_UPDATE, 5m/1h/1d chain vs none",
        us(lc),
        us(lp),
        lc / lp,
        "(info)",
        None,
    );
    t.notes.push(format!(
        "7: {N_REPS} x 1000-row OFFICIAL_ADD into a 1m series feeding 5m -> 1h -> 1d (the cascade inside each command) vs a 1m series feeding nothing, in paired rounds of {ROUND} bodies (which side goes first alternates; the first round warms the server up and is not counted), medians over the rounds; a RedisTimeSeries compaction rule costs 1.42x its source's ingest on this project's machine (issue 15). Reads and memory: the derived 5m vs a plain 5m series holding the same candles"
    ));
    Ok(())
}
