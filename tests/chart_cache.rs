//! The chart cache under one memory budget (`candles.json_cache_memory`), with a real server:
//! many charted series stay within it, the least recently read are evicted (MEMORY USAGE
//! falls back to their data), replies never change, and freed series give their bytes back.

use candles_testkit::fixtures;
use candles_testkit::server::*;

const ROWS: &str = "rest_klines_BTCUSDT_1m_limit1000.json";

fn cache_info(c: &mut redis::Connection, field: &str) -> i64 {
    info_field(c, "candles", &format!("candles_json_cache_{field}"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO candles_json_cache_{field}"))
}

fn series_cache(c: &mut redis::Connection, key: &str) -> i64 {
    let info: std::collections::HashMap<String, redis::Value> =
        q(c, &["CANDLE.INFO", key]).unwrap();
    redis::from_redis_value(&info["json_cache_bytes"]).unwrap()
}

fn chart(c: &mut redis::Connection, key: &str, full: bool) -> String {
    let mut words = vec!["CANDLE.RANGE_MERGED", key, "-", "+", "COUNT", "720"];
    if full {
        words.push("FULL");
    }
    words.extend(["FORMAT", "JSON"]);
    q(c, &words).unwrap()
}

fn mem(c: &mut redis::Connection, key: &str) -> i64 {
    q(c, &["MEMORY", "USAGE", key]).unwrap()
}

fn load(c: &mut redis::Connection, key: &str) {
    let body = fixtures::bytes(ROWS);
    let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
        .arg(key)
        .arg("INTERVAL")
        .arg("1m")
        .arg("JSON")
        .arg(body)
        .query(c)
        .unwrap();
    assert_eq!(n, 1000);
}

/// With the default budget, one series read in both shapes: what the cache costs, on INFO,
/// CANDLE.INFO and MEMORY USAGE alike.
#[test]
fn default_budget_caches_a_chart_and_counts_it() {
    let srv = Server::start();
    let mut c = srv.conn();
    assert_eq!(cache_info(&mut c, "budget"), 64 << 20);
    load(&mut c, "s");
    let data = mem(&mut c, "s");
    chart(&mut c, "s", false);
    let plain = cache_info(&mut c, "bytes");
    chart(&mut c, "s", true);
    let both = cache_info(&mut c, "bytes");
    let with_cache = mem(&mut c, "s");
    eprintln!(
        "data {data} B; cache plain {plain} B, plain+FULL {both} B; MEMORY USAGE {with_cache} B"
    );
    assert!(plain > 100 * 1000 && both > plain, "{plain} {both}");
    assert_eq!(series_cache(&mut c, "s"), both);
    assert_eq!(with_cache, data + both);
    assert_eq!(cache_info(&mut c, "series"), 1);
    assert_eq!(cache_info(&mut c, "evictions"), 0);
}

#[test]
fn many_series_share_one_budget_least_recently_read_out_first() {
    let srv = Server::start();
    let mut c = srv.conn();
    let keys: Vec<String> = (0..6).map(|i| format!("chart:{i}")).collect();
    for k in &keys {
        load(&mut c, k);
    }
    let data: Vec<i64> = keys.iter().map(|k| mem(&mut c, k)).collect();
    // The reference: every reply with the cache off.
    q::<()>(&mut c, &["CONFIG", "SET", "candles.json_cache", "0"]).unwrap();
    let want: Vec<(String, String)> = keys
        .iter()
        .map(|k| (chart(&mut c, k, false), chart(&mut c, k, true)))
        .collect();
    assert_eq!(cache_info(&mut c, "bytes"), 0);
    q::<()>(&mut c, &["CONFIG", "SET", "candles.json_cache", "1024"]).unwrap();
    // Room for about one series read in both shapes (~150 KB plain, ~300 KB FULL).
    let budget = 600_000;
    q::<()>(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "candles.json_cache_memory",
            &budget.to_string(),
        ],
    )
    .unwrap();
    assert_eq!(cache_info(&mut c, "budget"), budget);
    for round in 0..3 {
        for (k, (plain, full)) in keys.iter().zip(&want) {
            assert_eq!(&chart(&mut c, k, false), plain, "{k} round {round}");
            assert!(cache_info(&mut c, "bytes") <= budget);
            assert_eq!(&chart(&mut c, k, true), full, "{k} round {round}");
            let bytes = cache_info(&mut c, "bytes");
            assert!(bytes <= budget, "{bytes} > {budget}");
            // The series just read keeps its cache.
            assert!(series_cache(&mut c, k) > 0, "{k}");
            let sum: i64 = keys.iter().map(|k| series_cache(&mut c, k)).sum();
            assert_eq!(sum, bytes);
        }
    }
    assert!(cache_info(&mut c, "evictions") > 0);
    assert!(cache_info(&mut c, "series") < keys.len() as i64);
    // The first series was read least recently: evicted, MEMORY USAGE is its data again.
    assert_eq!(series_cache(&mut c, &keys[0]), 0);
    assert_eq!(mem(&mut c, &keys[0]), data[0]);
    // The last one is cached, and MEMORY USAGE shows it.
    let last = keys.len() - 1;
    let held = series_cache(&mut c, &keys[last]);
    assert!(held > 0);
    assert_eq!(mem(&mut c, &keys[last]), data[last] + held);
    // UNLINK (freed on the lazy-free thread, or at once when small) returns its bytes.
    let before = cache_info(&mut c, "bytes");
    let series_before = cache_info(&mut c, "series");
    q::<()>(&mut c, &["UNLINK", &keys[last]]).unwrap();
    eventually("UNLINK returns the cache bytes", || {
        cache_info(&mut c, "bytes") == before - held
    });
    assert_eq!(cache_info(&mut c, "series"), series_before - 1);
    // Lowering the budget evicts at once; 0 turns the cache off, replies unchanged.
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "candles.json_cache_memory", "200000"],
    )
    .unwrap();
    assert!(cache_info(&mut c, "bytes") <= 200_000);
    q::<()>(&mut c, &["CONFIG", "SET", "candles.json_cache_memory", "0"]).unwrap();
    assert_eq!(cache_info(&mut c, "bytes"), 0);
    for (k, (plain, full)) in keys[..last].iter().zip(&want) {
        assert_eq!(&chart(&mut c, k, false), plain);
        assert_eq!(&chart(&mut c, k, true), full);
    }
    assert_eq!(cache_info(&mut c, "bytes"), 0);
    assert_eq!(cache_info(&mut c, "series"), 0);
    // A budget under one window: served uncached, nothing kept.
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "candles.json_cache_memory", "1000"],
    )
    .unwrap();
    assert_eq!(&chart(&mut c, &keys[1], false), &want[1].0);
    assert_eq!(cache_info(&mut c, "bytes"), 0);
}

/// RESP-array reads that reach the newest official are served from the cached text: the
/// same replies (element for element, types included) as decoding the chunks, in both shapes,
/// for windows the cache covers and ranges it does not, with a live candle, after appends
/// extend the window and after a correction of an older candle drops it.
#[test]
fn resp_arrays_from_the_cache_equal_decoded_ones() {
    let srv = Server::start();
    let mut c = srv.conn();
    load(&mut c, "s");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&fixtures::bytes(ROWS)).unwrap();
    let first = rows[0][0].as_i64().unwrap();
    let last = rows[999][0].as_i64().unwrap();
    let reads: Vec<Vec<String>> = [
        vec!["-", "+", "COUNT", "720"],
        vec!["-", "+"],
        vec!["-", "+", "COUNT", "1"],
        vec!["-", "+", "COUNT", "5000"],
        vec![&*(last - 100 * 60_000).to_string(), "+"],
        vec![
            &*(first + 60_000).to_string(),
            &*(last + 600_000).to_string(),
        ],
        vec![&*first.to_string(), &*(last - 60_000).to_string()],
    ]
    .iter()
    .map(|r| r.iter().map(|s| s.to_string()).collect())
    .collect();
    let read_all = |c: &mut redis::Connection| -> Vec<redis::Value> {
        let mut out = Vec::new();
        for r in &reads {
            for full in [false, true] {
                let mut words = vec!["CANDLE.RANGE_MERGED", "s"];
                words.extend(r.iter().map(String::as_str));
                if full {
                    words.push("FULL");
                }
                out.push(q(c, &words).unwrap());
            }
        }
        out
    };
    let compare = |c: &mut redis::Connection, what: &str| {
        q::<()>(c, &["CONFIG", "SET", "candles.json_cache", "0"]).unwrap();
        let want = read_all(c);
        q::<()>(c, &["CONFIG", "SET", "candles.json_cache", "1024"]).unwrap();
        // Twice: the first read fills the window, the second is served from it.
        assert_eq!(read_all(c), want, "{what}: filling");
        assert!(series_cache(c, "s") > 0, "{what}: nothing cached");
        assert_eq!(read_all(c), want, "{what}: cached");
    };
    compare(&mut c, "officials");
    // A live candle after the newest official.
    let mut live = rows[999].clone();
    live[0] = (last + 60_000).into();
    live[6] = (last + 119_999).into();
    let n: i64 = q(
        &mut c,
        &["CANDLE.LIVE_UPDATE", "s", "JSON", &live.to_string()],
    )
    .unwrap();
    assert_eq!(n, 1);
    compare(&mut c, "with a live candle");
    // Appends extend the cached window (read between them, so it is kept, not rebuilt).
    q::<()>(&mut c, &["CONFIG", "SET", "candles.json_cache", "1024"]).unwrap();
    read_all(&mut c);
    for i in 1..=3 {
        let mut row = rows[990 + i].clone();
        row[0] = (last + i as i64 * 60_000).into();
        row[6] = (last + i as i64 * 60_000 + 59_999).into();
        let body = serde_json::Value::Array(vec![row]).to_string();
        let n: i64 = q(&mut c, &["CANDLE.OFFICIAL_ADD", "s", "JSON", &body]).unwrap();
        assert_eq!(n, 1);
        read_all(&mut c);
    }
    compare(&mut c, "after appends");
    // A correction of an older candle (DUPLICATE_POLICY REPLACE, the default).
    let mut fix = rows[500].clone();
    fix[5] = "123.45678".into();
    let body = serde_json::Value::Array(vec![fix]).to_string();
    let n: i64 = q(&mut c, &["CANDLE.OFFICIAL_ADD", "s", "JSON", &body]).unwrap();
    assert_eq!(n, 1);
    compare(&mut c, "after a correction");
}
