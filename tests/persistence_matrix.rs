//! The CI persistence matrix (`CANDLES_TEST_PERSISTENCE`, see `tests/common/mod.rs`): every
//! test server really runs in the mode asked for, and a write survives a restart in it.

use candles_testkit::fixtures;
use candles_testkit::server::*;

fn config(c: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
    v.get(1).cloned().unwrap_or_default()
}

#[test]
fn servers_run_in_the_requested_persistence_mode() {
    let mode = std::env::var("CANDLES_TEST_PERSISTENCE")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut server = Server::start();
    let mut c = server.conn();
    let (appendonly, save) = (config(&mut c, "appendonly"), config(&mut c, "save"));
    match mode.as_str() {
        "" | "none" => assert_eq!((appendonly.as_str(), save.as_str()), ("no", "")),
        "aof" => assert_eq!((appendonly.as_str(), save.as_str()), ("yes", "")),
        "rdb" => assert_eq!((appendonly.as_str(), save.as_str()), ("no", "1 1")),
        other => panic!("unknown mode {other}"),
    }
    let key = "candle:{BTCUSDT}:1m";
    let n: i64 = redis::cmd("CANDLE.OFFICIAL_ADD")
        .arg(key)
        .arg("INTERVAL")
        .arg("1m")
        .arg("JSON")
        .arg(fixtures::bytes("rest_klines_BTCUSDT_1m_limit1000.json"))
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1000);
    // rdb: the snapshot carries the data; aof: NOSAVE, so only the AOF can; none: nothing does.
    let how = if mode == "rdb" { "SAVE" } else { "NOSAVE" };
    server.restart(how);
    let mut c = server.conn();
    let count = int(&mut c, &["EXISTS", key]);
    assert_eq!(
        count,
        i64::from(mode == "rdb" || mode == "aof"),
        "mode {mode:?}"
    );
    if mode == "aof" {
        assert!(
            server.log().contains("append only file"),
            "{}",
            server.log()
        );
    }
}
