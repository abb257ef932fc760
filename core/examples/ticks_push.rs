//! The core work of `TICKS.PUSH book 26001 TIMEFIELD ft JSON <doc>` and of the field/value
//! form `TICKS.PUSH book 26001p <ft> token .. lp .. pc .. rt .. ts .. data_type optiontick`,
//! without Redis: the same calls as the module (`TickBook::push_json_lane`, or else
//! `TickBatch::push_json` / `push_pairs`, then `TickBook::push_batch`, with the default cap 1000). Documents follow the module bench: one
//! symbol's real trades from the aggTrade capture (`lp` price, `pc` % change from the first
//! trade, `ft`/`ts` trade time in s/ms, `rt` its UTC wall time). Prints the digest of the
//! book's snapshot (unchanged digest = unchanged stored bytes), its `mem_usage` and the time per push.
//!
//! Deterministic figures: count instructions in the measured functions only, e.g.
//! `valgrind --tool=callgrind --toggle-collect='*push_json_all*' target/release/examples/ticks_push`
//! (`*push_pairs_all*` for the field/value form, `*push_json_batch_all*` for JSON pushes of
//! 100 documents each, into a book of their own). Divide by the number of measured pushes
//! (after `CAP` unmeasured ones that create and fill the streams).
//!
//! `cargo run --release -p candles-core --example ticks_push [-- PUSHES [same]]`
//! (`same`: push the first document every time, as the module bench's redis-benchmark does).

use candles_core::ticks::{TickBatch, TickBook};
use serde_json::Value;
use std::time::Instant;

const STREAM: &[u8] = b"26001";
const PAIRS_STREAM: &[u8] = b"26001p";
const CAP: usize = 1000;
/// Documents per command of the batched JSON form (the bench's row 5b).
const BATCH: usize = 100;

struct Doc {
    ft: i64,
    json: Vec<u8>,
    pairs: Vec<Vec<u8>>,
}

impl std::ops::Deref for Doc {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.json
    }
}

fn docs(n: usize) -> Vec<Doc> {
    let text = candles_testkit::fixtures::text("ws_aggTrade_combined.jsonl");
    let mut by_sym: Vec<(String, Vec<(i64, String)>)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("fixture line is JSON");
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
    by_sym.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let trades = &by_sym.first().expect("trades").1;
    let span = trades[trades.len() - 1].0 - trades[0].0 + 1000;
    let p0: f64 = trades[0].1.parse().expect("price");
    (0..n)
        .map(|j| {
            let (t, p) = &trades[j % trades.len()];
            let ts = t + (j / trades.len()) as i64 * span;
            let price: f64 = p.parse().expect("price");
            let ft = ts.div_euclid(1000);
            let s = ft.rem_euclid(86_400);
            let rt = format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
            let lp = candles_testkit::fixtures::json_decimal(p);
            let pc = format!("{:.2}", (price - p0) / p0 * 100.0);
            let json = format!(
                "{{\"ft\": {ft}, \"token\": \"26001\", \"lp\": {lp}, \"pc\": {pc}, \"rt\": \"{rt}\", \"ts\": {ts}, \"data_type\": \"optiontick\"}}"
            );
            let pairs = [
                "token",
                "26001",
                "lp",
                &lp,
                "pc",
                &pc,
                "rt",
                &rt,
                "ts",
                &ts.to_string(),
                "data_type",
                "optiontick",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
            Doc {
                ft,
                json: json.into_bytes(),
                pairs,
            }
        })
        .collect()
}

/// What the module does per JSON push: the lane, or else the batch.
#[inline(always)]
fn json_push(book: &mut TickBook, batch: &mut TickBatch, docs: &[Doc]) -> usize {
    batch.clear();
    if let Some(o) = book.push_json_lane(STREAM, None, CAP, b"ft", docs, batch) {
        batch.clear();
        return o.len;
    }
    for d in docs {
        batch.push_json(&d.json, b"ft").expect("valid document");
    }
    let len = book
        .push_batch(STREAM, None, CAP, batch)
        .expect("pushes")
        .len;
    batch.clear();
    len
}

/// One document per command, the batch reused.
#[inline(always)]
fn json_pushes(book: &mut TickBook, batch: &mut TickBatch, docs: &[Doc]) -> usize {
    let mut len = 0;
    for d in docs {
        len = json_push(book, batch, std::slice::from_ref(d));
    }
    len
}

/// `BATCH` documents per command.
#[inline(always)]
fn json_batches(book: &mut TickBook, batch: &mut TickBatch, docs: &[Doc]) -> usize {
    let mut len = 0;
    for group in docs.chunks(BATCH) {
        len = json_push(book, batch, group);
    }
    len
}

/// What the module does per field/value push.
#[inline(always)]
fn pairs_pushes(book: &mut TickBook, batch: &mut TickBatch, docs: &[Doc]) -> usize {
    let mut len = 0;
    for d in docs {
        batch.clear();
        let kv = d.pairs.chunks_exact(2).filter_map(|c| match c {
            [f, v] => Some((&f[..], &v[..])),
            _ => None,
        });
        batch.push_pairs(d.ft, kv).expect("valid pairs");
        len = book
            .push_batch(PAIRS_STREAM, None, CAP, batch)
            .expect("pushes")
            .len;
        batch.clear();
    }
    len
}

/// The measured pushes (the stream exists and is full: the steady state).
#[inline(never)]
fn push_json_all(book: &mut TickBook, batch: &mut TickBatch, docs: &[Doc]) -> usize {
    json_pushes(book, batch, docs)
}

#[inline(never)]
fn push_json_batch_all(book: &mut TickBook, batch: &mut TickBatch, docs: &[Doc]) -> usize {
    json_batches(book, batch, docs)
}

#[inline(never)]
fn push_pairs_all(book: &mut TickBook, batch: &mut TickBatch, docs: &[Doc]) -> usize {
    pairs_pushes(book, batch, docs)
}

/// The first `CAP` pushes of each form, under names `--toggle-collect` does not match.
#[inline(never)]
fn warm_up(book: &mut TickBook, batch: &mut TickBatch, docs: &[Doc]) {
    json_pushes(book, batch, docs);
    pairs_pushes(book, batch, docs);
}

fn fnv(b: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn main() {
    let n: usize = candles_testkit::arg(1, 20_000);
    let same = std::env::args().nth(2).as_deref() == Some("same");
    let mut docs = docs(n + CAP);
    if same {
        let first = docs.swap_remove(0);
        docs = (0..n + CAP)
            .map(|_| Doc {
                ft: first.ft,
                json: first.json.clone(),
                pairs: first.pairs.clone(),
            })
            .collect();
    }
    let mut book = TickBook::new();
    let mut batch = TickBatch::new();
    let (warm, docs) = docs.split_at(CAP);
    warm_up(&mut book, &mut batch, warm);
    let t0 = Instant::now();
    let a = push_json_all(&mut book, &mut batch, docs);
    let t_json = t0.elapsed().as_secs_f64();
    // The batched form fills a book of its own, so the digest below stays the one-document
    // pushes' (comparable across versions of this example).
    let mut batch_book = TickBook::new();
    json_batches(&mut batch_book, &mut batch, warm);
    let t0 = Instant::now();
    let c = push_json_batch_all(&mut batch_book, &mut batch, docs);
    let t_batch = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let b = push_pairs_all(&mut book, &mut batch, docs);
    let t_pairs = t0.elapsed().as_secs_f64();
    let snap = book.encode().expect("encodes");
    println!(
        "{CAP} + {n} measured pushes{} per form (lens {a}, {c}, {b}): JSON {:.1} ns/push, JSON x{BATCH} {:.1} ns/tick, field/value {:.1} ns/push; mem_usage {} B; snapshot {} B digest {:016x} (x{BATCH}: {:016x})",
        if same { " of one document" } else { "" },
        t_json * 1e9 / n as f64,
        t_batch * 1e9 / n as f64,
        t_pairs * 1e9 / n as f64,
        book.mem_usage(),
        snap.len(),
        fnv(&snap),
        fnv(&batch_book.encode().expect("encodes")),
    );
}
