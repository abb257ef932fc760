//! The redis-benchmark runner: calibrated, interleaved, repeated runs and their medians.

use crate::R;
use std::process::{Command, Stdio};

#[derive(Clone, Copy)]
pub struct Bench {
    pub port: u16,
    pub secs: f64,
    pub repeats: usize,
}

impl Bench {
    /// One redis-benchmark run; requests per second.
    pub fn run(&self, n: u64, pipeline: u32, clients: u32, cmd: &[String]) -> R<f64> {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-n",
                &n.to_string(),
                "-P",
                &pipeline.to_string(),
                "-c",
                &clients.to_string(),
                "--csv",
            ])
            .args(cmd)
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "redis-benchmark failed: {}{}",
                text,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        // Last CSV row: "<test>","rps","avg",... (the test name may itself contain commas).
        let row = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or("redis-benchmark printed nothing")?;
        let fields: Vec<&str> = row.rsplitn(8, ',').collect();
        let rps = fields
            .get(6)
            .and_then(|f| f.trim_matches('"').parse::<f64>().ok())
            .ok_or_else(|| format!("cannot parse redis-benchmark output: {row}"))?;
        Ok(rps)
    }

    /// Requests count that runs about `secs` seconds, from a short probe.
    pub fn calibrate(&self, cmd: &[String], pipeline: u32) -> R<u64> {
        let probe_n = if pipeline > 1 { 50_000 } else { 5_000 };
        let probe = self.run(probe_n, pipeline, 4, cmd)?;
        Ok(((probe * self.secs) as u64).clamp(probe_n, 20_000_000))
    }

    /// Runs every command `repeats` times (pipeline depth `pipeline`, 4 clients),
    /// interleaved (A B C, A B C, ...) so slow drift of a shared machine hits all alike;
    /// returns the median rps of each and its spread.
    pub fn medians(&self, cmds: &[&[String]], pipeline: u32) -> R<Vec<Throughput>> {
        self.medians_with(cmds, pipeline, &[], |_| Ok(()))
    }

    /// `medians`, with at most `max_n[i]` requests per run of command `i` (when given) and
    /// `after(i)` called after each of its runs (outside the measured run).
    pub fn medians_with(
        &self,
        cmds: &[&[String]],
        pipeline: u32,
        max_n: &[Option<u64>],
        mut after: impl FnMut(usize) -> R<()>,
    ) -> R<Vec<Throughput>> {
        let mut ns = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            let n = self.calibrate(c, pipeline)?;
            after(i)?;
            ns.push(max_n.get(i).copied().flatten().map_or(n, |m| n.min(m)));
        }
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); cmds.len()];
        for _ in 0..self.repeats {
            for (i, cmd) in cmds.iter().enumerate() {
                runs[i].push(self.run(ns[i], pipeline, 4, cmd)?);
                after(i)?;
            }
        }
        Ok(runs
            .into_iter()
            .map(|mut v| {
                v.sort_by(|a, b| a.total_cmp(b));
                Throughput {
                    median: v[v.len() / 2],
                    min: v[0],
                    max: v[v.len() - 1],
                }
            })
            .collect())
    }
}

#[derive(Clone, Copy)]
pub struct Throughput {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Throughput {
    pub fn spread(&self) -> String {
        format!("{} .. {}", k(self.min), k(self.max))
    }
}

pub fn k(rps: f64) -> String {
    format!("{:.0}k/s", rps / 1000.0)
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
