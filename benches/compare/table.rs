//! The result table: rows (measure | module | baseline | ratio | target | result), notes,
//! value formatting and the printout.

use crate::bench::{k, Throughput};
use std::fmt::Write as _;

enum Verdict {
    Pass,
    Fail,
    Info,
    NotBuilt,
}

struct Row {
    measure: String,
    module: String,
    baseline: String,
    ratio: String,
    target: String,
    verdict: Verdict,
}

#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn add(
        &mut self,
        measure: &str,
        module: String,
        baseline: String,
        ratio: f64,
        target: &str,
        pass: Option<bool>,
    ) {
        let verdict = match pass {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Fail,
            None => Verdict::Info,
        };
        self.rows.push(Row {
            measure: measure.into(),
            module,
            baseline,
            ratio: format!("{ratio:.2}x"),
            target: target.into(),
            verdict,
        });
    }

    /// A throughput row, module (`r[0]`) against baseline (`r[1]`) from one `medians` run;
    /// `min` is the ratio it must reach, or `None` for an info row.
    pub fn rates(&mut self, measure: &str, r: &[Throughput], min: Option<f64>) {
        let (m, b) = match r {
            [m, b, ..] => (m.median, b.median),
            _ => (0.0, 0.0),
        };
        let target = min.map_or("(info)".to_string(), |x| format!(">= {x:.1}x"));
        self.add(measure, k(m), k(b), m / b, &target, min.map(|x| m >= x * b));
    }

    pub fn not_built(&mut self, measure: &str, baseline: String, target: &str) {
        self.rows.push(Row {
            measure: measure.into(),
            module: "n/a (TICKS.* not built)".into(),
            baseline,
            ratio: "n/a".into(),
            target: target.into(),
            verdict: Verdict::NotBuilt,
        });
    }

    pub fn failed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Fail))
            .count()
    }

    pub fn print(&self) {
        let head = ["measure", "module", "baseline", "ratio", "target", "result"];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                let v = match r.verdict {
                    Verdict::Pass => "PASS",
                    Verdict::Fail => "FAIL",
                    Verdict::Info => "info",
                    Verdict::NotBuilt => "n/a",
                };
                [
                    r.measure.clone(),
                    r.module.clone(),
                    r.baseline.clone(),
                    r.ratio.clone(),
                    r.target.clone(),
                    v.into(),
                ]
            })
            .collect();
        let mut w = head.map(|h| h.chars().count());
        for c in &cells {
            for i in 0..6 {
                w[i] = w[i].max(c[i].chars().count());
            }
        }
        let line = |c: &[String]| {
            let mut s = String::new();
            for i in 0..6 {
                let pad = w[i] - c[i].chars().count();
                let _ = write!(
                    s,
                    "{}{}{}",
                    if i == 0 { "| " } else { " | " },
                    c[i],
                    " ".repeat(pad)
                );
            }
            s + " |"
        };
        let sep = {
            let mut s = String::new();
            for wi in w {
                let _ = write!(s, "|{}", "-".repeat(wi + 2));
            }
            s + "|"
        };
        println!("{}", line(&head.map(String::from)));
        println!("{sep}");
        for c in &cells {
            println!("{}", line(c));
        }
        for n in &self.notes {
            println!("  * {n}");
        }
    }
}

pub fn b(v: f64) -> String {
    format!("{v:.1} B")
}

pub fn us(v: f64) -> String {
    format!("{v:.3} us")
}
