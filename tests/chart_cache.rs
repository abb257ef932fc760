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
