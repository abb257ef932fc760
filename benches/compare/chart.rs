//! Phases 3 + 4: the 720-candle chart load, and LIVE_UPDATE vs SET ... EX.

use crate::bench::{k, strs, Bench};
use crate::data::{fixture, positional, rep_shift, shifted};
use crate::server::Server;
use crate::stats::{cmdstats, per_call, reset_stats};
use crate::table::{us, Table};
use crate::{CHART, LIVE_KEY, MIN, N_REPS, R, SERIES_KEY, ZSET_KEY};
use redis::{Connection, FromRedisValue, Value};
use serde_json::Value as Json;

/// 3: chart load, and the live row used by 4.
pub fn chart_phase(
    srv: &Server,
    meter: &mut Connection,
    bench: &Bench,
    t: &mut Table,
    rows_1m: &[Json],
) -> R<()> {
    let last = rep_shift(N_REPS - 1) + rows_1m[999][0].as_i64().unwrap_or(0);
    let live_row = shifted(
        &rows_1m[999],
        last + MIN - rows_1m[999][0].as_i64().unwrap_or(0),
    );
    // The live row in positional form (measured again in 4).
    let mut lu_pos = strs(&["CANDLE.LIVE_UPDATE", SERIES_KEY]);
    lu_pos.extend(positional(&live_row));
    let mut c = srv.conn()?;
    live_update(
        &mut c,
        &lu_pos,
        "CANDLE.LIVE_UPDATE of the live row did not change the series",
    )?;
    redis::cmd("SET")
        .arg(LIVE_KEY)
        .arg(live_row.to_string())
        .arg("EX")
        .arg(86_400)
        .query::<()>(&mut c)?;

    let min = last - (CHART as i64 - 1) * MIN;
    let merged = strs(&[
        "CANDLE.RANGE_MERGED",
        SERIES_KEY,
        "-",
        "+",
        "COUNT",
        &CHART.to_string(),
    ]);
    let zrange = strs(&[
        "ZRANGEBYSCORE",
        ZSET_KEY,
        &min.to_string(),
        &last.to_string(),
    ]);
    let get = strs(&["GET", LIVE_KEY]);
    // Sanity: the replies hold what the chart needs.
    let Value::Array(rows) = query::<Value>(&mut c, &merged)? else {
        return Err("RANGE_MERGED: not an array".into());
    };
    let kinds: Vec<bool> = rows
        .iter()
        .map(|r| {
            matches!(r, Value::Array(f) if f.get(6).and_then(|v| redis::from_redis_value::<String>(v).ok()).as_deref() == Some("live"))
        })
        .collect();
    if rows.len() != CHART || !kinds[CHART - 1] || kinds[..CHART - 1].iter().any(|&l| l) {
        return Err(format!(
            "RANGE_MERGED COUNT {CHART}: got {} rows, expected {} official + 1 live",
            rows.len(),
            CHART - 1
        )
        .into());
    }
    let mut merged_json = merged.clone();
    merged_json.extend(strs(&["FORMAT", "JSON"]));
    let text: String = query(&mut c, &merged_json)?;
    let parsed: Vec<Json> = serde_json::from_str(&text)?;
    if parsed.len() != CHART || parsed[CHART - 1]["status"] != "live" {
        return Err(format!("RANGE_MERGED FORMAT JSON: {} rows", parsed.len()).into());
    }
    let zn: Vec<String> = query(&mut c, &zrange)?;
    if zn.len() != CHART {
        return Err(format!(
            "ZRANGEBYSCORE returned {} members, expected {CHART}",
            zn.len()
        )
        .into());
    }

    // commandstats keeps one entry per command, so each form of RANGE_MERGED is measured
    // in its own window; the baseline once.
    let mut rps = Vec::new();
    let mut usec = Vec::new();
    for (cmd, stat) in [
        (&merged_json, "candle.range_merged"),
        (&merged, "candle.range_merged"),
        (&zrange, "zrangebyscore"),
        (&get, "get"),
    ] {
        let n = if cmd[0] == "GET" { 200_000 } else { 5_000 };
        let (r, u) = server_cost(meter, bench, n, cmd, stat)?;
        rps.push(r);
        usec.push(u);
    }
    // The same loads with the cache off: every call decodes the chunks and formats each
    // decimal (for RESP arrays, the only path before the cache served them too).
    set_json_cache(meter, 0)?;
    let (_, cold) = server_cost(meter, bench, 2_000, &merged_json, "candle.range_merged")?;
    let (_, cold_resp) = server_cost(meter, bench, 2_000, &merged, "candle.range_merged")?;
    set_json_cache(meter, 1024)?;
    let (mj, mr, z, g) = (usec[0], usec[1], usec[2], usec[3]);
    let base = format!("{} (Z {z:.1} + GET {g:.2})", us(z + g));
    t.add(
        "3. server usec/720-candle chart load (JSON)",
        us(mj),
        base.clone(),
        (z + g) / mj,
        ">= 3x",
        Some((z + g) / mj >= 3.0),
    );
    t.add(
        "   same, JSON, cache off (json_cache 0)",
        us(cold),
        base.clone(),
        (z + g) / cold,
        "(info)",
        None,
    );
    t.add(
        "   same, RESP arrays",
        us(mr),
        base,
        (z + g) / mr,
        "(info)",
        None,
    );
    t.add(
        "   RESP arrays: cached text vs decoding (json_cache 0)",
        us(mr),
        us(cold_resp),
        cold_resp / mr,
        ">= 1.5x",
        Some(cold_resp / mr >= 1.5),
    );
    t.notes.push(format!(
        "3: RANGE_MERGED {SERIES_KEY} - + COUNT {CHART} [FORMAT JSON] = {} official + 1 live (100k officials); baseline ZRANGEBYSCORE {CHART} members + GET {LIVE_KEY}, \
         both hand JSON text to the chart server. JSON: the newest official candles' text is cached per series (candles.json_cache, default 1024), \
         the live candle rendered per call; RESP arrays read the officials' fields back from that text (no chunk decoding, no decimal formatting). Client-side rates JSON {}, RESP {}, baseline Z {}",
        CHART - 1,
        k(rps[0]),
        k(rps[1]),
        k(rps[2])
    ));

    // 4: LIVE_UPDATE vs SET ... EX of the same JSON text: the live row as the original
    // design stores it (one key, same open time). The module parses and validates it into
    // the live region; SET stores the bytes. Then the positional form of the same candle.
    let row_text = live_row.to_string();
    let lu = strs(&["CANDLE.LIVE_UPDATE", SERIES_KEY, "JSON", &row_text]);
    let set = strs(&["SET", LIVE_KEY, &row_text, "EX", "86400"]);
    reset_stats(meter)?;
    let r = bench.medians(&[&lu, &set], 32)?;
    let st = cmdstats(meter)?;
    let (_, ulu) = per_call(&st, "candle.live_update")?;
    let (_, uset) = per_call(&st, "set")?;
    t.rates(
        "4. LIVE_UPDATE JSON <row> vs SET <row> EX rps (P32)",
        &r,
        Some(1.0),
    );
    t.add(
        "   server usec/call, LIVE_UPDATE JSON vs SET EX",
        us(ulu),
        us(uset),
        uset / ulu,
        "(info)",
        None,
    );
    let rp = bench.medians(&[&lu_pos, &set], 32)?;
    t.rates("   LIVE_UPDATE t o h l c v vs SET EX rps (P32)", &rp, None);
    t.notes.push(format!(
        "4: both commands carry the same {}-byte JSON kline row; spreads LIVE_UPDATE JSON {}, SET {}; positional (8 arguments) {}, SET {}",
        row_text.len(),
        r[0].spread(),
        r[1].spread(),
        rp[0].spread(),
        rp[1].spread()
    ));

    // 4 (info): what the feeder sends per WebSocket kline update, a real `x=false` frame,
    // against storing that frame's text with SET ... EX.
    let frame = fixture("ws_kline_1m_combined.jsonl")?
        .lines()
        .find(|l| l.contains("\"x\":false"))
        .ok_or("no x=false kline frame in ws_kline_1m_combined.jsonl")?
        .to_string();
    let ws_key = "candles:ETHUSDT:1m:ws";
    let lu_json = strs(&[
        "CANDLE.LIVE_UPDATE",
        ws_key,
        "INTERVAL",
        "1m",
        "JSON",
        &frame,
    ]);
    live_update(
        &mut c,
        &lu_json,
        "CANDLE.LIVE_UPDATE of the WebSocket frame did not change its series",
    )?;
    let set_frame = strs(&["SET", "live_candle:ETHUSDT:1m", &frame, "EX", "86400"]);
    let r = bench.medians(&[&lu_json, &set_frame], 32)?;
    t.rates("   LIVE_UPDATE JSON <WS kline frame> vs SET EX", &r, None);
    Ok(())
}

/// Sends one command given as its words (`cmd[0]` the name; the form redis-benchmark is given).
fn query<T: FromRedisValue>(c: &mut Connection, cmd: &[String]) -> R<T> {
    Ok(redis::cmd(&cmd[0]).arg(&cmd[1..]).query(c)?)
}

/// One CANDLE.LIVE_UPDATE; `err` when it did not change its series.
fn live_update(c: &mut Connection, cmd: &[String], err: &str) -> R<()> {
    let changed: i64 = query(c, cmd)?;
    if changed != 1 {
        return Err(err.into());
    }
    Ok(())
}

/// One redis-benchmark run of `cmd` (`n` requests, -P 4, 2 clients) in its own commandstats
/// window: (client-side rps, server usec per call of `stat`).
fn server_cost(
    meter: &mut Connection,
    bench: &Bench,
    n: u64,
    cmd: &[String],
    stat: &str,
) -> R<(f64, f64)> {
    reset_stats(meter)?;
    let rps = bench.run(n, 4, 2, cmd)?;
    Ok((rps, per_call(&cmdstats(meter)?, stat)?.1))
}

fn set_json_cache(meter: &mut Connection, entries: i64) -> R<()> {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("candles.json_cache")
        .arg(entries)
        .query::<()>(meter)?;
    Ok(())
}
