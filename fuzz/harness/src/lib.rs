//! The bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/`, one module per target. They
//! live apart from libFuzzer so that `make test` runs every committed seed of
//! `fuzz/corpus/<target>/` through its harness with plain `cargo test` (tests/corpus.rs): a
//! harness that fails on its own seeds cannot land.

mod candle_args;
pub use candle_args::candle_args;
mod chunk_decode;
pub use chunk_decode::chunk_decode;
mod decimal_parse;
pub use decimal_parse::decimal_parse;
mod klines_json;
pub use klines_json::klines_json;
mod series_decode;
pub use series_decode::series_decode;
mod tick_json;
pub use tick_json::tick_json;
mod ticks_decode;
pub use ticks_decode::ticks_decode;

/// A target's body: panics on a finding.
pub type Harness = fn(&[u8]);

/// Every target, by the name of its corpus folder.
pub const TARGETS: &[(&str, Harness)] = &[
    ("candle_args", candle_args),
    ("chunk_decode", chunk_decode),
    ("decimal_parse", decimal_parse),
    ("klines_json", klines_json),
    ("series_decode", series_decode),
    ("tick_json", tick_json),
    ("ticks_decode", ticks_decode),
];
