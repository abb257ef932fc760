//! candles-web with `--cluster`: series on three masters are listed, read and pushed live,
//! every master's keyspace events subscribed.

mod common;

use candles_testkit::cluster::Cluster;
use candles_testkit::web::{encode, Web};
use common::*;
use serde_json::Value;

fn range(c: &mut redis::cluster::ClusterConnection, key: &str, count: usize) -> String {
    redis::cmd("CANDLE.RANGE_MERGED")
        .arg(key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .arg("FORMAT")
        .arg("JSON")
        .query(c)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_a_cluster_from_two_seeds() {
    let cluster = Cluster::start_with(&["--notify-keyspace-events", "Kd"]);
    let mut c = cluster.client();
    let body = candles_testkit::fixtures::text("rest_klines_BTCUSDT_1m_limit1000.json");
    let rows: Value = serde_json::from_str(&body).unwrap();
    let last = rows.as_array().unwrap().last().unwrap()[0]
        .as_i64()
        .unwrap();
    // Hash tags spread over the three masters (slots 0-5460, 5461-10922, 10923-16383).
    let keys = ["candle:{a}:1m", "candle:{b}:1m", "candle:{c}:1m"];
    let mut slots = Vec::new();
    for k in keys {
        let _: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
            .arg(k)
            .arg("INTERVAL")
            .arg("1m")
            .arg("JSON")
            .arg(&body)
            .query(&mut c)
            .unwrap();
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(k)
            .query(&mut c)
            .unwrap();
        slots.push(slot / 5462);
    }
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), 3, "the keys should live on three masters");
    let urls = cluster.urls();
    let seeds = format!("{},{}", urls[0], urls[1]);
    let w = Web::spawn(BIN, &seeds, &["--cluster"]);
    let list = parse(&w.get("/api/series").body);
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, keys);
    for k in keys {
        let r = w.get(&format!("/api/candles?key={}&count=720", encode(k)));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, range(&mut c, k, 720));
    }
    // A viewer per key, each pushed by its own master's events.
    let mut viewers = Vec::new();
    for k in keys {
        let mut ws = connect(&w, k).await;
        assert_eq!(next_msg(&mut ws).await["type"], "snapshot");
        viewers.push(ws);
    }
    let t = (last + M).to_string();
    for (k, ws) in keys.iter().zip(viewers.iter_mut()) {
        let n: i64 = redis::cmd("CANDLE.LIVE_UPDATE")
            .arg(*k)
            .arg(&t)
            .arg("1")
            .arg("3")
            .arg("1")
            .arg("2")
            .arg("5")
            .query(&mut c)
            .unwrap();
        assert_eq!(n, 1);
        let u = next_msg(ws).await;
        assert_eq!(u["type"], "update");
        assert_eq!(u["key"], *k);
        assert_eq!(u["candles"][0]["open_time"].as_i64(), Some(last + M));
        assert_eq!(u["candles"][0]["status"], "live");
    }
}
