//! Binance's public kline archive (data.binance.vision) rebuilt from recorded REST rows: one zip
//! per month and per day, each holding `{SYMBOL}-{interval}-{period}.csv` (the 12 kline columns,
//! no header), and its `.CHECKSUM` (`<sha256 hex>  <zip name>`). Nothing is invented: the CSV
//! rows are the rows given, only re-encoded (times optionally in microseconds, as Binance's
//! spot files are since 2025).

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;

const DAY: i64 = 86_400_000;

/// (year, month, day) of a time in ms (UTC).
pub fn civil(ms: i64) -> (i64, u32, u32) {
    let z = ms.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn field(row: &Value, i: usize) -> String {
    match row.get(i) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "0".into(),
    }
}

/// One CSV line of a REST row; times ×1000 if `micros`.
pub fn csv_line(row: &Value, micros: bool) -> String {
    let t = |i: usize| {
        let v = row.get(i).and_then(Value::as_i64).unwrap_or(0);
        if micros {
            (v * 1000).to_string()
        } else {
            v.to_string()
        }
    };
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{}",
        t(0),
        field(row, 1),
        field(row, 2),
        field(row, 3),
        field(row, 4),
        field(row, 5),
        t(6),
        field(row, 7),
        field(row, 8),
        field(row, 9),
        field(row, 10),
        field(row, 11)
    )
}

/// A zip holding one deflated file.
pub fn zip_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file(name, o).expect("zip entry");
        w.write_all(content).expect("zip write");
        w.finish().expect("zip finish");
    }
    buf.into_inner()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The archive files of one series, path (as on data.binance.vision, from `/data/…`) → bytes:
/// the monthly and daily zips of every month and day that has rows, with their `.CHECKSUM`.
pub fn files(
    symbol: &str,
    interval: &str,
    rows: &[Value],
    micros: bool,
) -> BTreeMap<String, Vec<u8>> {
    let mut months: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut days: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        let (y, m, d) = civil(r.get(0).and_then(Value::as_i64).unwrap_or(0));
        let line = csv_line(r, micros);
        months
            .entry(format!("{y:04}-{m:02}"))
            .or_default()
            .push(line.clone());
        days.entry(format!("{y:04}-{m:02}-{d:02}"))
            .or_default()
            .push(line);
    }
    let mut out = BTreeMap::new();
    for (kind, map) in [("monthly", months), ("daily", days)] {
        for (label, lines) in map {
            let base = format!("{symbol}-{interval}-{label}");
            let csv = format!("{}\n", lines.join("\n"));
            let zip = zip_of(&format!("{base}.csv"), csv.as_bytes());
            let path = format!("/data/spot/{kind}/klines/{symbol}/{interval}/{base}.zip");
            out.insert(
                format!("{path}.CHECKSUM"),
                format!("{}  {base}.zip\n", sha256_hex(&zip)).into_bytes(),
            );
            out.insert(path, zip);
        }
    }
    out
}

/// The path of the zip of `symbol`/`interval` for `label` (`YYYY-MM` monthly, `YYYY-MM-DD`
/// daily).
pub fn zip_path(symbol: &str, interval: &str, label: &str) -> String {
    let kind = if label.len() == 7 { "monthly" } else { "daily" };
    format!("/data/spot/{kind}/klines/{symbol}/{interval}/{symbol}-{interval}-{label}.zip")
}
