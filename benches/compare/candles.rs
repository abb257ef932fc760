//! Phases 1 + 2: official candles (bytes per candle, server cost of ingest), and the
//! informational 5m/15m bytes per candle.

use crate::data::{klines, rep_shift, shifted};
use crate::server::Server;
use crate::stats::{cmdstats, memory_usage, per_call, reset_stats, settled_memory};
use crate::table::{b, us, Table};
use crate::{N_REPS, R, SERIES_KEY, ZSET_KEY};
use redis::Connection;
use serde_json::Value as Json;

/// 1 + 2: 100 k official candles into the series and into the ZSET.
pub fn official_phases(
    srv: &Server,
    meter: &mut Connection,
    t: &mut Table,
    rows_1m: &[Json],
) -> R<()> {
    // Module: CANDLE.CREATE, then 100 OFFICIAL_ADD of 1000 real rows each.
    let batches: Vec<String> = (0..N_REPS)
        .map(|rep| {
            let shift = rep_shift(rep);
            Json::Array(rows_1m.iter().map(|r| shifted(r, shift)).collect()).to_string()
        })
        .collect();
    let mem0 = settled_memory(meter)?;
    reset_stats(meter)?;
    {
        let mut c = srv.conn()?;
        redis::cmd("CANDLE.CREATE")
            .arg(SERIES_KEY)
            .arg("INTERVAL")
            .arg("1m")
            .query::<()>(&mut c)?;
        for body in &batches {
            let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
                .arg(SERIES_KEY)
                .arg("JSON")
                .arg(body)
                .query(&mut c)?;
            if n != 1000 {
                return Err(format!("CANDLE.OFFICIAL_ADD inserted {n}, expected 1000").into());
            }
        }
    }
    let stats_mod = cmdstats(meter)?;
    let mem1 = settled_memory(meter)?;
    let mu_mod = memory_usage(meter, SERIES_KEY)?;
    let n = (N_REPS * 1000) as f64;

    // Baseline: one ZADD NX per candle, member = the JSON row, score = open time.
    reset_stats(meter)?;
    {
        let mut c = srv.conn()?;
        for rep in 0..N_REPS {
            let shift = rep_shift(rep);
            let mut p = redis::pipe();
            for r in rows_1m {
                zadd_nx(&mut p, ZSET_KEY, &shifted(r, shift));
            }
            p.query::<()>(&mut c)?;
        }
    }
    let stats_z = cmdstats(meter)?;
    let mem2 = settled_memory(meter)?;
    let mu_z = memory_usage(meter, ZSET_KEY)?;
    let zcard: i64 = redis::cmd("ZCARD").arg(ZSET_KEY).query(meter)?;
    if zcard != n as i64 {
        return Err(format!("ZCARD {zcard}, expected {n}").into());
    }

    for (measure, m, z) in [
        (
            "1. B/official candle, MEMORY USAGE (100k 1m)",
            mu_mod as f64 / n,
            mu_z as f64 / n,
        ),
        (
            "1. B/official candle, used_memory delta",
            (mem1 - mem0) as f64 / n,
            (mem2 - mem1) as f64 / n,
        ),
    ] {
        // Issue 17: at most 16 B by MEMORY USAGE, and 12x below the ZSET by used_memory.
        let (target, ok) = if measure.contains("MEMORY USAGE") {
            ("<= 16 B", m <= 16.0)
        } else {
            (">= 12x", z / m >= 12.0)
        };
        t.add(measure, b(m), b(z), z / m, target, Some(ok));
    }

    let (calls, add) = per_call(&stats_mod, "candle.official_add")?;
    let (zcalls, zadd) = per_call(&stats_z, "zadd")?;
    let m = add / 1000.0;
    t.add(
        "2. server usec/official candle ingested",
        us(m),
        us(zadd),
        zadd / m,
        ">= 5x",
        Some(zadd / m >= 5.0),
    );
    t.notes.push(format!(
        "2: OFFICIAL_ADD {calls} calls x 1000 rows at {add:.1} us/call (/1000 per candle); ZADD NX {zcalls} calls, one member each"
    ));
    Ok(())
}

/// Informational: the real 5m and 15m fixtures (1000 candles each), bytes per candle.
pub fn other_intervals(srv: &Server, meter: &mut Connection, t: &mut Table) -> R<()> {
    let mut c = srv.conn()?;
    for iv in ["5m", "15m"] {
        let rows = klines(iv)?;
        let key = format!("candles:BTCUSDT:{iv}");
        let zkey = format!("klines:BTCUSDT:{iv}");
        let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
            .arg(&key)
            .arg("INTERVAL")
            .arg(iv)
            .arg("JSON")
            .arg(Json::Array(rows.clone()).to_string())
            .query(&mut c)?;
        let mut p = redis::pipe();
        for r in &rows {
            zadd_nx(&mut p, &zkey, r);
        }
        p.query::<()>(&mut c)?;
        let (m, z) = (
            memory_usage(meter, &key)? as f64 / n as f64,
            memory_usage(meter, &zkey)? as f64 / rows.len() as f64,
        );
        t.add(
            &format!("   B/official candle, MEMORY USAGE (1000 {iv})"),
            b(m),
            b(z),
            z / m,
            "(info)",
            None,
        );
    }
    Ok(())
}

/// Adds one kline row to `key` as the original design did: ZADD NX, score = open time,
/// member = the JSON row.
fn zadd_nx(p: &mut redis::Pipeline, key: &str, row: &Json) {
    p.cmd("ZADD")
        .arg(key)
        .arg("NX")
        .arg(row[0].as_i64().unwrap_or(0))
        .arg(row.to_string())
        .ignore();
}
