//! Module configuration as users set it: `--loadmodule ... name value` arguments get the same
//! names and ranges as `CONFIG SET candles.<name>` (a bad one stops the module from loading,
//! naming the argument), and the configs work from a config file and with `CONFIG REWRITE`.

use candles_testkit::server::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the server binary with the module and `module_args`; returns its exit status and log
/// if it stops within 10 s (None: it is serving, and has been killed).
fn start_expecting_exit(module_args: &[&str]) -> (Option<std::process::ExitStatus>, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut child = Command::new(server_binary())
        .args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--dir",
            dir.path().to_str().unwrap(),
            "--logfile",
            "server.log",
        ])
        .arg("--loadmodule")
        .arg(module_path())
        .args(module_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    (status, log)
}

#[test]
fn bad_load_time_arguments_stop_the_module_naming_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&["live_max", "0"], "live_max 0"),
        (&["tick_cap", "0"], "tick_cap 0"),
        (&["retention", "-3"], "retention -3"),
        (&["json_cache", "-1"], "json_cache -1"),
        (&["json_cache_memory", "-1"], "json_cache_memory -1"),
        (&["live_ttl", "999999999999"], "live_ttl 999999999999"),
        (&["bogus", "1"], "unknown load-time argument 'bogus'"),
        (&["retention"], "'retention' has no value"),
        (
            &["retention", "5", "retention", "6"],
            "'retention' given more than once",
        ),
        (
            // Checked by redis-module before our own check runs; its message names the value.
            &["duplicate_policy", "sometimes"],
            "Enum 'sometimes' not exists",
        ),
    ];
    for (args, said) in cases {
        let (status, log) = start_expecting_exit(args);
        let status = status.unwrap_or_else(|| panic!("{args:?} loaded; log:\n{log}"));
        assert!(!status.success(), "{args:?}");
        assert!(
            log.contains(said),
            "{args:?}: the log should say '{said}':\n{log}"
        );
    }
}

#[test]
fn good_load_time_arguments_set_the_configs() {
    let srv = Server::start_with(
        &[],
        &[
            "retention",
            "500",
            "live_ttl",
            "3600",
            "live_max",
            "10",
            "duplicate_policy",
            "keep",
            "tick_cap",
            "2000",
            "json_cache",
            "0",
            "json_cache_memory",
            "1048576",
        ],
    );
    let mut c = srv.conn();
    let got: Vec<String> = q(&mut c, &["CONFIG", "GET", "candles.*"]).unwrap();
    let pairs: std::collections::BTreeMap<String, String> = got
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    for (k, v) in [
        ("candles.retention", "500"),
        ("candles.live_ttl", "3600"),
        ("candles.live_max", "10"),
        ("candles.duplicate_policy", "keep"),
        ("candles.tick_cap", "2000"),
        ("candles.json_cache", "0"),
        ("candles.json_cache_memory", "1048576"),
    ] {
        assert_eq!(pairs.get(k).map(String::as_str), Some(v), "{k}");
    }
    // The chart cache took its budget at load.
    assert_eq!(
        info_field(&mut c, "candles", "candles_json_cache_budget").as_deref(),
        Some("1048576")
    );
    // A new series takes them.
    let _: () = q(&mut c, &["CANDLE.CREATE", "s", "INTERVAL", "1m"]).unwrap();
    let info = val(&mut c, &["CANDLE.INFO", "s"]);
    let text = format!("{info:?}");
    assert!(text.contains("500") && text.contains("3600"), "{text}");
    // The same ranges at run time.
    for (name, bad) in [
        ("candles.live_max", "0"),
        ("candles.tick_cap", "0"),
        ("candles.retention", "-3"),
        ("candles.live_ttl", "999999999999"),
        ("candles.json_cache_memory", "-1"),
    ] {
        assert!(
            q::<()>(&mut c, &["CONFIG", "SET", name, bad]).is_err(),
            "CONFIG SET {name} {bad}"
        );
    }
}

#[test]
fn configs_work_from_a_config_file_and_config_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("redis.conf");
    let port = free_port();
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nlogfile server.log\n\
             loadmodule {}\ncandles.live_max 7\ncandles.duplicate_policy block\n",
            dir.path().display(),
            module_path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(server_binary())
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = None;
    eventually("server from a config file", || {
        c = client.get_connection().ok();
        c.is_some()
    });
    let mut c = c.unwrap();
    let got: Vec<String> = q(&mut c, &["CONFIG", "GET", "candles.live_max"]).unwrap();
    assert_eq!(got, vec!["candles.live_max", "7"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "candles.live_max", "9"]).unwrap();
    let _: () = q(&mut c, &["CONFIG", "REWRITE"]).unwrap();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("candles.live_max 9"), "{text}");
    assert!(text.contains("candles.duplicate_policy block"), "{text}");
    let _ = child.kill();
    let _ = child.wait();
}
