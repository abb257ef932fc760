//! The feeder against a real 3-master Redis Cluster (every node with the module) and the Binance
//! stand-in: two `--shard`s split the symbols exactly and fill every series with zero missing
//! candles; a slot moved away under the feeder (resharding: ASK, then MOVED) loses nothing;
//! `--history-from` back-fills from the stand-in's kline archive (zips built from the recorded
//! fixtures, one corrupted: refused, its data still arrives through the daily files); a master
//! killed with `kill -9` fails over to its replica and the feeder follows.

mod common;

use candles_core::Interval;
use candles_feed::shard::Shard;
use candles_testkit::archive;
use candles_testkit::cluster::Cluster;
use candles_testkit::standin::SymbolFault;
use candles_testkit::standin::{open_time, real_now_ms, rows_of_body, Dataset, StandIn};
use common::*;
use redis::ConnectionLike;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const SYMBOLS: [&str; 12] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "DOTUSDT",
    "TRXUSDT", "LINKUSDT", "LTCUSDT", "AVAXUSDT",
];

fn rows_of(name: &str) -> Vec<Value> {
    rows_of_body(&fixture(name)).expect("fixture rows")
}

fn value_str(v: &redis::Value) -> String {
    match v {
        redis::Value::Int(i) => i.to_string(),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// `CANDLE.RANGE_MERGED key from to FULL` through the cluster client.
fn range_full_c(c: &mut impl ConnectionLike, key: &str, from: i64, to: i64) -> Vec<Vec<String>> {
    let v: redis::Value = redis::cmd("CANDLE.RANGE_MERGED")
        .arg(key)
        .arg(from)
        .arg(to)
        .arg("FULL")
        .query(c)
        .unwrap_or_else(|e| panic!("RANGE_MERGED {key}: {e}"));
    match v {
        redis::Value::Array(rows) => rows
            .iter()
            .map(|r| match r {
                redis::Value::Array(f) => f.iter().map(value_str).collect(),
                other => panic!("row {other:?}"),
            })
            .collect(),
        other => panic!("RANGE_MERGED reply {other:?}"),
    }
}

fn gaps_c(c: &mut impl ConnectionLike, key: &str, from: i64, to: i64) -> Option<Vec<(i64, i64)>> {
    let v: redis::Value = redis::cmd("CANDLE.GAPS")
        .arg(key)
        .arg(from)
        .arg(to)
        .query(c)
        .ok()?;
    candles_feed::sink::parse_gaps(&v).ok()
}

/// The expected `FULL` rows of `rows`: official, the last one `last_kind`.
fn expected(rows: &[Value], last_kind: &str) -> Vec<Vec<String>> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            expected_full(
                r,
                if i + 1 == rows.len() {
                    last_kind
                } else {
                    "official"
                },
            )
        })
        .collect()
}

/// Symbols of SYMBOLS in shard `k` of 2.
fn shard_size(k: u32) -> usize {
    SYMBOLS
        .iter()
        .filter(|s| Shard::owner_of(s, 2) == k)
        .count()
}

fn cluster_feeder(si: &StandIn, cluster: &Cluster, extra: &[&str]) -> Feeder {
    let mut a: Vec<String> = vec![
        "--cluster".into(),
        "--redis".into(),
        cluster.seeds(),
        "--rest-url".into(),
        si.rest_url.clone(),
        "--ws-url".into(),
        si.ws_url.clone(),
        "--backoff-min".into(),
        "50ms".into(),
        "--backoff-max".into(),
        "500ms".into(),
        "--progress".into(),
        "log".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    spawn_feeder(&a)
}

async fn wait_log(f: &Feeder, what: &str, d: Duration) {
    assert!(
        eventually(d, || f.log().contains(what)).await,
        "no '{what}' in the log:\n{}",
        f.log()
    );
}

/// Leaves at least `margin` before the end of the current minute.
async fn away_from_minute_end(margin: Duration) {
    let into = real_now_ms().rem_euclid(M);
    if M - into < margin.as_millis() as i64 {
        tokio::time::sleep(Duration::from_millis((M - into + 200) as u64)).await;
    }
}

/// The symbols a feeder's log says its shard owns.
fn shard_symbols(f: &Feeder) -> BTreeSet<String> {
    let log = f.log();
    let line = log
        .lines()
        .find(|l| l.contains("this shard's symbols"))
        .unwrap_or_else(|| panic!("no shard line:\n{log}"));
    let list = line
        .split("list=")
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_fill_every_series_across_the_cluster_and_survive_a_slot_move() {
    let cluster = Cluster::start();
    let si = StandIn::start().await.unwrap();
    let mut ds1 = Dataset::new(rows_1m());
    ds1.shift_to_now = true;
    let mut ds5 = Dataset::new(rows_of("rest_klines_BTCUSDT_5m_limit1000.json"));
    ds5.shift_to_now = true;
    si.set_fallback(Interval::M1, ds1.clone());
    si.set_fallback(Interval::M5, ds5.clone());
    away_from_minute_end(Duration::from_secs(25)).await;
    let symbols = SYMBOLS.join(",");
    let shard = |k: &str| {
        cluster_feeder(
            &si,
            &cluster,
            &["--symbols", &symbols, "--intervals", "1m,5m", "--shard", k],
        )
    };
    // Resharding under the feeder: BTCUSDT's REST hangs until its slot has moved to another
    // master; its bootstrap then writes with a stale slot map and must follow MOVED.
    si.fault_symbol("BTCUSDT", SymbolFault::Hang);
    let (f1, f2) = (shard("1/2"), shard("2/2"));
    let f_btc = if Shard::owner_of("BTCUSDT", 2) == 1 {
        &f1
    } else {
        &f2
    };
    let n_btc = shard_size(Shard::owner_of("BTCUSDT", 2));
    wait_log(
        f_btc,
        &format!("progress=\"{}/{}\"", n_btc * 2 - 2, n_btc * 2),
        Duration::from_secs(60),
    )
    .await;
    let slot = cluster.keyslot("candle:{BTCUSDT}:1m");
    let to = (cluster.owner(slot) + 1) % 3;
    cluster.move_slot(slot, to);
    assert_eq!(cluster.owner(slot), to);
    si.heal_symbol("BTCUSDT");
    for f in [&f1, &f2] {
        wait_log(f, "bootstrap done", Duration::from_secs(60)).await;
    }
    let (want1, want5) = (ds1.visible(Interval::M1), ds5.visible(Interval::M5));

    // The two shards split the symbols exactly: no overlap, no gap.
    let (s1, s2) = (shard_symbols(&f1), shard_symbols(&f2));
    assert!(s1.is_disjoint(&s2), "{s1:?} {s2:?}");
    let all: BTreeSet<String> = SYMBOLS.iter().map(|s| s.to_string()).collect();
    assert_eq!(s1.union(&s2).cloned().collect::<BTreeSet<_>>(), all);
    assert!(!s1.is_empty() && !s2.is_empty(), "{s1:?} {s2:?}");
    for s in &s1 {
        assert!(candles_feed::shard::Shard { k: 1, n: 2 }.owns(s));
    }
    // Every symbol asked by REST once per interval: by its own shard only.
    for s in SYMBOLS {
        assert_eq!(si.klines_requests_for(s), 2, "{s}");
    }

    // Every series, on whichever master owns it, has every candle, exactly.
    let mut c = cluster.client();
    let mut owners = BTreeSet::new();
    for s in SYMBOLS {
        for (iv, step, want) in [("1m", M, &want1), ("5m", 5 * M, &want5)] {
            let key = format!("candle:{{{s}}}:{iv}");
            owners.insert(cluster.owner(cluster.keyslot(&key)));
            let (a, b) = (open_time(&want[0]), open_time(&want[want.len() - 1]));
            // every official candle before the forming one (live)
            assert_eq!(gaps_c(&mut c, &key, a, b - step), Some(vec![]), "{key}");
            assert_eq!(
                range_full_c(&mut c, &key, a, b),
                expected(want, "live"),
                "{key}"
            );
        }
    }
    assert_eq!(
        owners.len(),
        3,
        "the series are spread over the three masters"
    );

    assert!(
        f_btc.log().contains("slot map changed"),
        "the feeder followed MOVED:\n{}",
        f_btc.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_from_the_archive_with_a_corrupted_zip_refused_and_filled_from_daily_files() {
    let cluster = Cluster::start();
    let si = StandIn::start().await.unwrap();
    let r15 = rows_of("rest_klines_BTCUSDT_15m_limit1000.json");
    let r5 = rows_of("rest_klines_BTCUSDT_5m_limit1000.json");
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
    for s in symbols {
        // REST knows every row; the archive all but the last (recorded while it was forming):
        // REST is asked only for what the archive lacks.
        si.set_dataset(s, Interval::M15, Dataset::new(r15.clone()));
        si.set_dataset(s, Interval::M5, Dataset::new(r5.clone()));
        si.add_archive(archive::files(s, "15m", &r15[..r15.len() - 1], false));
        // The 5m files with microsecond times, as Binance's spot files since 2025.
        si.add_archive(archive::files(s, "5m", &r5[..r5.len() - 1], true));
    }
    let bad = archive::zip_path("BTCUSDT", "15m", "2024-08");
    assert!(si.corrupt_archive(&bad));
    let f = cluster_feeder(
        &si,
        &cluster,
        &[
            "--symbols",
            &symbols.join(","),
            "--intervals",
            "15m,5m",
            "--bootstrap",
            "0",
            "--history-from",
            "2024-08-22",
            "--archive-url",
            &si.rest_url,
        ],
    );
    wait_log(&f, "archive back-fill done", Duration::from_secs(60)).await;
    let mut c = cluster.client();
    for s in symbols {
        for (iv, rows) in [("15m", &r15), ("5m", &r5)] {
            let key = format!("candle:{{{s}}}:{iv}");
            let (a, b) = (open_time(&rows[0]), open_time(&rows[rows.len() - 1]));
            let ok = eventually(Duration::from_secs(30), || {
                gaps_c(&mut c, &key, a, b) == Some(vec![])
            })
            .await;
            assert!(ok, "{key} still has gaps; log:\n{}", f.log());
            assert_eq!(
                range_full_c(&mut c, &key, a, b),
                expected(rows, "official"),
                "{key}"
            );
            // nothing before the first row: the exchange has nothing there either
            assert!(range_full_c(&mut c, &key, 0, a - 1).is_empty());
        }
    }
    let log = f.log();
    // The corrupted zip was refused (checksum), logged, and its month came from daily files.
    assert!(
        log.lines().any(|l| l.contains("archive file refused")
            && l.contains("BTCUSDT-15m-2024-08.zip")
            && l.contains("checksum mismatch")),
        "{log}"
    );
    let reqs = si.archive_requests();
    assert!(
        reqs.contains(&archive::zip_path("BTCUSDT", "15m", "2024-08-25")),
        "{reqs:?}"
    );
    assert!(
        !reqs.contains(&archive::zip_path("ETHUSDT", "15m", "2024-08-25")),
        "{reqs:?}"
    );
    // REST was asked only around the archive's data (the last row, the empty ends): a few
    // requests per series, not the 1000-row pages a REST-only back-fill would need.
    for s in symbols {
        let n = si.klines_requests_for(s);
        assert!(n <= 8, "{s}: {n} klines requests");
    }
    assert!(log.contains("history: series back-filled"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_bootstrap_fails_over_and_nothing_is_lost() {
    let mut cluster = Cluster::start();
    let si = StandIn::start().await.unwrap();
    let mut ds = Dataset::new(rows_1m());
    ds.shift_to_now = true;
    si.set_fallback(Interval::M1, ds.clone());
    let key = "candle:{BTCUSDT}:1m";
    let slot = cluster.keyslot(key);
    let master = cluster.owner(slot);
    let replica = cluster.add_replica(master);
    away_from_minute_end(Duration::from_secs(45)).await;
    // BTCUSDT's REST hangs until its master was killed and its replica took over.
    si.fault_symbol("BTCUSDT", SymbolFault::Hang);
    let symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"];
    let f = cluster_feeder(
        &si,
        &cluster,
        &["--symbols", &symbols.join(","), "--intervals", "1m"],
    );
    wait_log(&f, "progress=\"3/4\"", Duration::from_secs(60)).await;
    // what the other symbols' bootstrap got (before a minute could pass)
    let want_others = ds.visible(Interval::M1);
    cluster.nodes[master].kill9();
    // failure detection (cluster-node-timeout 5 s), then the replica's election
    let promoted = eventually(Duration::from_secs(40), || cluster.owner(slot) == replica).await;
    assert!(promoted, "the replica took the slot over");
    cluster.wait_ok();
    si.heal_symbol("BTCUSDT");
    wait_log(&f, "bootstrap done", Duration::from_secs(60)).await;
    let want = ds.visible(Interval::M1);
    let mut c = cluster.client();
    let (a, b) = (open_time(&want[0]), open_time(&want[want.len() - 1]));
    assert_eq!(gaps_c(&mut c, key, a, b - M), Some(vec![]));
    assert_eq!(range_full_c(&mut c, key, a, b), expected(&want, "live"));
    // the series of the other masters are untouched
    for s in ["SOLUSDT", "XRPUSDT", "ETHUSDT"] {
        let k = format!("candle:{{{s}}}:1m");
        if cluster.owner(cluster.keyslot(&k)) != replica {
            let w = &want_others;
            let (a, b) = (open_time(&w[0]), open_time(&w[w.len() - 1]));
            assert_eq!(range_full_c(&mut c, &k, a, b), expected(w, "live"), "{k}");
        }
    }
    assert!(f.log().contains("slot map changed"), "{}", f.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_slot_migration_follow_ask() {
    let cluster = Cluster::start();
    let si = StandIn::start().await.unwrap();
    let mut ds = Dataset::new(rows_1m());
    ds.shift_to_now = true;
    si.set_fallback(Interval::M1, ds.clone());
    si.set_fallback(Interval::M5, {
        let mut d = Dataset::new(rows_of("rest_klines_BTCUSDT_5m_limit1000.json"));
        d.shift_to_now = true;
        d
    });
    away_from_minute_end(Duration::from_secs(25)).await;
    // BTCUSDT's REST hangs while its slot is half-moved (MIGRATING/IMPORTING, its keys not
    // yet anywhere): its bootstrap writes get ASK from the owner and must go to the target
    // with ASKING.
    si.fault_symbol("BTCUSDT", SymbolFault::Hang);
    let f = cluster_feeder(
        &si,
        &cluster,
        &[
            "--symbols",
            "BTCUSDT,ETHUSDT,SOLUSDT",
            "--intervals",
            "1m,5m",
        ],
    );
    wait_log(&f, "progress=\"4/6\"", Duration::from_secs(60)).await;
    let key = "candle:{BTCUSDT}:1m";
    let slot = cluster.keyslot(key);
    let from = cluster.owner(slot);
    let to = (from + 1) % 3;
    cluster.begin_move(slot, to);
    si.heal_symbol("BTCUSDT");
    wait_log(&f, "bootstrap done", Duration::from_secs(60)).await;
    // Both series were written on the target during the migration.
    let mut target = cluster.nodes[to].conn();
    for k in [key, "candle:{BTCUSDT}:5m"] {
        let n: i64 = redis::cmd("ASKING")
            .query::<()>(&mut target)
            .and_then(|_| redis::cmd("EXISTS").arg(k).query(&mut target))
            .unwrap_or(0);
        assert_eq!(n, 1, "{k} on the importing node; log:\n{}", f.log());
    }
    cluster.finish_move(slot, from, to);
    let mut c = cluster.client();
    for (k, iv) in [(key, Interval::M1), ("candle:{BTCUSDT}:5m", Interval::M5)] {
        let want = ds_visible(&si, iv);
        let (a, b) = (open_time(&want[0]), open_time(&want[want.len() - 1]));
        assert_eq!(
            range_full_c(&mut c, k, a, b),
            expected(&want, "live"),
            "{k}"
        );
    }
}

/// What the stand-in serves now for a symbol without its own dataset.
fn ds_visible(si: &StandIn, iv: Interval) -> Vec<Value> {
    let ds = si
        .state()
        .fallback
        .get(iv.as_str())
        .cloned()
        .expect("fallback");
    ds.visible(iv)
}
