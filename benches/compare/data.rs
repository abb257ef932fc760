//! The data loaded: real Binance fixtures (REST klines, aggTrade capture), shifted 1m rows,
//! tick documents in the original design's shape.

use crate::bench::strs;
use crate::{MIN, R};
use serde_json::Value as Json;

pub fn fixture(name: &str) -> R<String> {
    let p = candles_testkit::fixtures::path(name);
    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()).into())
}

pub fn klines(interval: &str) -> R<Vec<Json>> {
    let rows: Vec<Json> = serde_json::from_str(&fixture(&format!(
        "rest_klines_BTCUSDT_{interval}_limit1000.json"
    ))?)?;
    if rows.len() != 1000 || rows.iter().any(|r| r.as_array().map(Vec::len) != Some(12)) {
        return Err(format!("{interval} fixture: expected 1000 rows of 12 fields").into());
    }
    Ok(rows)
}

/// The time shift of repetition `rep` of the 1000 real 1m rows: 1000 minutes per repetition.
pub fn rep_shift(rep: usize) -> i64 {
    rep as i64 * 1000 * MIN
}

/// A row with open and close times shifted by `shift` ms (prices untouched).
pub fn shifted(row: &Json, shift: i64) -> Json {
    let mut r = row.clone();
    for i in [0, 6] {
        let t = r[i].as_i64().unwrap_or(0);
        r[i] = Json::from(t + shift);
    }
    r
}

/// The row's `t o h l c v` as positional arguments.
pub fn positional(row: &Json) -> Vec<String> {
    (0..6)
        .map(|i| match &row[i] {
            Json::String(s) => s.clone(),
            v => v.to_string(),
        })
        .collect()
}

/// Ticks in the original design's shape, `n_streams` x `per_stream`, from the real aggTrade
/// capture: each stream follows one symbol's real trade prices and times (consecutive trades,
/// starting at a stream-specific offset; when a stream wraps past the symbol's last trade,
/// times continue shifted by the capture's span). `lp` = trade price, `pc` = % change from
/// the stream's first tick, `ft`/`ts` = trade time in s/ms, `rt` = its UTC wall time.
pub fn ticks(n_streams: usize, per_stream: usize) -> R<Vec<(String, Vec<TickDoc>)>> {
    let mut by_sym: Vec<(String, Vec<(i64, String)>)> = Vec::new();
    for line in fixture("ws_aggTrade_combined.jsonl")?
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let v: Json = serde_json::from_str(line)?;
        let d = &v["data"];
        let (Some(s), Some(p), Some(t)) = (d["s"].as_str(), d["p"].as_str(), d["T"].as_i64())
        else {
            continue;
        };
        match by_sym.iter_mut().find(|(n, _)| n == s) {
            Some((_, v)) => v.push((t, p.to_string())),
            None => by_sym.push((s.to_string(), vec![(t, p.to_string())])),
        }
    }
    by_sym.retain(|(_, v)| v.len() >= 90);
    by_sym.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    if by_sym.is_empty() {
        return Err("aggTrade capture: no symbol with enough trades".into());
    }
    let mut out = Vec::new();
    for s in 0..n_streams {
        let trades = &by_sym[s % by_sym.len()].1;
        let span = trades[trades.len() - 1].0 - trades[0].0 + 1000;
        let start = (s * 7919) % trades.len();
        let token = (26001 + s).to_string();
        let mut docs = Vec::with_capacity(per_stream);
        let mut p0 = None;
        for j in 0..per_stream {
            let (t, p) = &trades[(start + j) % trades.len()];
            let ts = t + ((start + j) / trades.len()) as i64 * span;
            let price: f64 = p.parse()?;
            let p0 = *p0.get_or_insert(price);
            docs.push(TickDoc {
                ts,
                token: token.clone(),
                lp: candles_testkit::fixtures::json_decimal(p),
                pc: format!("{:.2}", (price - p0) / p0 * 100.0),
            });
        }
        out.push((token, docs));
    }
    Ok(out)
}

pub struct TickDoc {
    ts: i64,
    pub token: String,
    lp: String,
    pc: String,
}

impl TickDoc {
    pub fn ft(&self) -> i64 {
        self.ts.div_euclid(1000)
    }
    fn rt(&self) -> String {
        let s = self.ft().rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
    /// The JSON text the original design stored (Python `json.dumps` spacing).
    pub fn json(&self) -> String {
        format!(
            "{{\"ft\": {}, \"token\": \"{}\", \"lp\": {}, \"pc\": {}, \"rt\": \"{}\", \"ts\": {}, \"data_type\": \"optiontick\"}}",
            self.ft(),
            self.token,
            self.lp,
            self.pc,
            self.rt(),
            self.ts
        )
    }
    /// Field/value pairs without `ft` (the time).
    pub fn pairs(&self) -> Vec<String> {
        strs(&[
            "token",
            &self.token,
            "lp",
            &self.lp,
            "pc",
            &self.pc,
            "rt",
            &self.rt(),
            "ts",
            &self.ts.to_string(),
            "data_type",
            "optiontick",
        ])
    }
}
