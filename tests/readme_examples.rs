//! The README's Python examples are files under examples/python/, and this suite keeps them
//! honest: every ```python block of README.md is exactly one of those files (in order), and
//! each file runs with `python3` against a real redis-server with the module and prints what
//! it should. redis-py comes from the repository's set-up (scripts/install-deps.sh installs a
//! pinned version into .deps/python).

use candles_testkit::server::*;
use std::path::PathBuf;
use std::process::Command;

/// The examples in README order, each with lines its output must contain (a line ending in a
/// space is a prefix: the rest depends on the clock).
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "candles.py",
        &[
            "official candles added: 1000",
            "kline frames: [(('CANDLE.LIVE_UPDATE', 0), 43), (('CANDLE.LIVE_UPDATE', 1), 109), \
             (('CANDLE.OFFICIAL_ADD', 1), 5)]",
            "ETHUSDT: [(1617566580000, '2065', 'official'), (1617566640000, '2066.02', 'live')]",
            "chart: 720 candles, newest 1725476760000 official",
            "missing official candles from 1725476820000 to ",
        ],
    ),
    (
        "derived.py",
        &[
            "binance 5m: 57684.01000000 54.65256000",
            "derived 5m: ('57684.01', '54.65256', 'official')",
            "1h: [(1725472800000, '57684.01', '805.58545', 'official'), (1725476400000, \
             '57771.01', '121.51722', 'live')]",
            "1h after a live minute: [(1725476400000, '57790.5', '124.76722', 'live')]",
            "1h source: candle:{BTCUSDT}:5m",
        ],
    ),
    (
        "ticks.py",
        &[
            "latest: {'ft': 1752810305, 'token': '26001', 'lp': Decimal('125.5'), \
             'pc': Decimal('0.35'), 'rt': '12:05:05', 'ts': 1752810305123, \
             'data_type': 'optiontick'}",
            "indextick: 1752810306 {b'lp': b'24950.10'}",
            "merged: optiontick:26001 1752810305 125.5",
        ],
    ),
    (
        "trades_pipeline.py",
        &[
            "commands: 6408 live candles changed: 3204",
            "last BTCUSDT trade of 2021-04-04: [{\"e\":\"aggTrade\",\"E\":1617566682150,\
             \"s\":\"BTCUSDT\",\"a\":665077986,\"p\":\"58005.11000000\",\"q\":\"0.01912900\",\
             \"f\":745524267,\"l\":745524267,\"T\":1617566682149,\"m\":true,\"M\":true}]",
            "live BTCUSDT candle: [1617566580000, '58001.03', '58018.03', '57974.41', \
             '57999.99', '16.888713', 'live']",
            "live BTCUSDT candle: [1617566640000, '57996.66', '58010', '57983.14', \
             '58005.11', '9.499405', 'live']",
        ],
    ),
];

fn example_dir() -> PathBuf {
    workspace_root().join("examples/python")
}

/// The ```python blocks of README.md, in order, each as its text between the fences.
fn readme_python_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in readme.split_inclusive('\n') {
        let fence = line.trim_end();
        match open.as_mut() {
            None if fence == "```python" => open = Some(String::new()),
            None => {}
            Some(_) if fence == "```" => blocks.extend(open.take()),
            Some(text) => text.push_str(line),
        }
    }
    assert!(open.is_none(), "README.md: a ```python block is not closed");
    blocks
}

#[test]
fn readme_python_blocks_are_the_example_files() {
    let blocks = readme_python_blocks();
    let names: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        blocks.len(),
        names.len(),
        "README.md has {} ```python blocks; this suite knows {names:?} (one block per file, in \
         that order)",
        blocks.len()
    );
    for (block, name) in blocks.iter().zip(&names) {
        let path = example_dir().join(name);
        let file =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if *block != file {
            let line = block
                .lines()
                .zip(file.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| block.lines().count().min(file.lines().count()));
            panic!(
                "README.md's ```python block for {name} differs from {} at line {}: copy the \
                 file into the block (README: {:?}, file: {:?})",
                path.display(),
                line + 1,
                block.lines().nth(line),
                file.lines().nth(line)
            );
        }
    }
    // Every example file is in the README (and so run below).
    let mut on_disk: Vec<String> = std::fs::read_dir(example_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".py"))
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    known.sort();
    assert_eq!(
        on_disk, known,
        "examples/python/*.py and the README's blocks"
    );
}

/// Where scripts/install-deps.sh puts redis-py; a missing one is a failure, not a skip.
fn python_path() -> PathBuf {
    let deps = workspace_root().join(".deps/python");
    assert!(
        deps.join("redis").join("__init__.py").exists(),
        "{} has no redis-py: run scripts/install-deps.sh (make test does)",
        deps.display()
    );
    deps
}

/// Runs one example against a fresh server with the module and checks its output.
fn run_example(name: &str) {
    let expected = EXAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, lines)| *lines)
        .unwrap();
    let deps = python_path();
    let server = Server::start();
    let out = Command::new("python3")
        .arg(example_dir().join(name))
        .env("REDIS_PORT", server.port.to_string())
        .env("PYTHONPATH", &deps)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("python3: {e} (run scripts/install-deps.sh)"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "examples/python/{name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for want in expected {
        let found = stdout.lines().any(|l| {
            if want.ends_with(' ') {
                l.starts_with(want) && l.len() > want.len()
            } else {
                l == *want
            }
        });
        assert!(
            found,
            "examples/python/{name}: no line {want:?} in its output:\n{stdout}"
        );
    }
}

#[test]
fn candles_py_runs() {
    run_example("candles.py");
}

#[test]
fn ticks_py_runs() {
    run_example("ticks.py");
}

#[test]
fn trades_pipeline_py_runs() {
    run_example("trades_pipeline.py");
}
