//! Phases 5 + 6: tick push throughput and bytes per tick (when the module has TICKS.*).

use crate::bench::{k, strs, Bench, Throughput};
use crate::data::{ticks, TickDoc};
use crate::server::Server;
use crate::stats::{memory_usage, settled_memory};
use crate::table::{b, Table};
use crate::R;
use redis::{Connection, Value};

/// Whether the loaded module has TICKS.PUSH.
pub fn has_ticks(c: &mut Connection) -> R<bool> {
    let v: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("TICKS.PUSH")
        .query(c)?;
    Ok(matches!(v, Value::Array(ref a) if a.first().is_some_and(|e| !matches!(e, Value::Nil))))
}

/// 5: tick push throughput; 6: bytes per tick.
pub fn tick_phases(
    srv: &Server,
    meter: &mut Connection,
    bench: &Bench,
    t: &mut Table,
    built: bool,
) -> R<()> {
    let streams = ticks(100, 1000)?;
    let tick = &streams[0].1[0];
    let doc = tick.json();
    let tok = &tick.token;
    let (lkey, xkey, bkey) = (
        format!("ticks:list:{tok}"),
        format!("ticks:x:{tok}"),
        "ticks:book:bench".to_string(),
    );
    let lpush = strs(&["LPUSH", &lkey, &doc]);
    let ltrim = strs(&["LTRIM", &lkey, "0", "999"]);
    let mut xadd = strs(&[
        "XADD",
        &xkey,
        "MAXLEN",
        "~",
        "1000",
        "*",
        "ft",
        &tick.ft().to_string(),
    ]);
    xadd.extend(tick.pairs());
    let push_json = strs(&["TICKS.PUSH", &bkey, tok, "TIMEFIELD", "ft", "JSON", &doc]);
    let mut push_pairs = strs(&[
        "TICKS.PUSH",
        &bkey,
        &format!("{tok}p"),
        &tick.ft().to_string(),
    ]);
    push_pairs.extend(tick.pairs());

    let mut c = srv.conn()?;
    // Prime the list to its cap so LTRIM runs against a full list (each LTRIM run then trims
    // nothing: cheaper than the real pair's one-element trim, i.e. favours the baseline).
    let mut p = redis::pipe();
    for _ in 0..1000 {
        p.cmd("LPUSH").arg(&lkey).arg(&doc).ignore();
    }
    p.query::<()>(&mut c)?;

    let mut cmds: Vec<&[String]> = vec![&lpush, &ltrim, &xadd];
    if built {
        cmds.push(&push_json);
        cmds.push(&push_pairs);
    }
    // LPUSH runs grow the list (capped at 2M pushes a run, ~300 MB): trim it back to 1000
    // after each, outside the measured runs, so every LTRIM run starts on a full list.
    let max_n = [Some(2_000_000)];
    let mut trim = |i: usize| -> R<()> {
        if i == 0 {
            redis::cmd("LTRIM")
                .arg(&lkey)
                .arg(0)
                .arg(999)
                .query::<()>(&mut c)?;
        }
        Ok(())
    };
    let r = bench.medians_with(&cmds, 32, &max_n, &mut trim)?;
    // The pair without pipelining (-P 1, shorter runs): every request pays a loopback round
    // trip, as a client sending LPUSH then LTRIM per tick would.
    let mut cmds1: Vec<&[String]> = vec![&lpush, &ltrim];
    if built {
        cmds1.push(&push_json);
    }
    let bench1 = Bench {
        secs: bench.secs / 2.0,
        ..*bench
    };
    let r1 = bench1.medians_with(&cmds1, 1, &[], &mut trim)?;
    let (pair1, base1) = pair_rate(&r1);
    let (pair, base) = pair_rate(&r);
    let xbase = format!("{} XADD MAXLEN ~ 1000", k(r[2].median));
    if built {
        let (pj, pp) = (r[3].median, r[4].median);
        t.add(
            "5. TICKS.PUSH JSON rps vs LPUSH+LTRIM pair",
            k(pj),
            base,
            pj / pair,
            ">= 2x",
            Some(pj / pair >= 2.0),
        );
        t.add(
            "   same, unpipelined (-P 1)",
            k(r1[2].median),
            base1.clone(),
            r1[2].median / pair1,
            "(info)",
            None,
        );
        t.add(
            "   TICKS.PUSH JSON rps vs XADD",
            k(pj),
            xbase.clone(),
            pj / r[2].median,
            "(info)",
            None,
        );
        t.add(
            "   TICKS.PUSH field/value rps vs XADD",
            k(pp),
            xbase,
            pp / r[2].median,
            "(info)",
            None,
        );
        t.notes.push(format!(
            "5: spreads: TICKS.PUSH JSON {}, field/value {}, LPUSH {}, LTRIM {}, XADD {}",
            r[3].spread(),
            r[4].spread(),
            r[0].spread(),
            r[1].spread(),
            r[2].spread()
        ));
    } else {
        t.not_built("5. TICKS.PUSH JSON rps vs LPUSH+LTRIM pair", base, ">= 2x");
        t.not_built("   same, unpipelined (-P 1)", base1, "(info)");
        t.not_built("   TICKS.PUSH JSON rps vs XADD", xbase, "(info)");
    }
    t.notes.push(
        "5: pair rate = 1/(1/LPUSH + 1/LTRIM), each benchmarked alone (redis-benchmark runs one command; \
         LTRIM runs hit a full list and trim nothing: an upper bound for the original design). \
         Pipelined, per-command server cost decides (2x the pair = faster than LPUSH alone); \
         unpipelined (-P 1), round trips decide and one TICKS.PUSH replaces two"
            .into(),
    );

    // 6: 100 streams x 1000 ticks.
    let n = streams.iter().map(|(_, d)| d.len()).sum::<usize>() as f64;
    let mem0 = settled_memory(meter)?;
    {
        let mut c = srv.conn()?;
        let mut p = redis::pipe();
        for (tok, docs) in &streams {
            for ch in docs.chunks(100) {
                p.cmd("LPUSH")
                    .arg(format!("ticklist:{tok}"))
                    .arg(ch.iter().map(TickDoc::json).collect::<Vec<_>>())
                    .ignore();
            }
        }
        p.query::<()>(&mut c)?;
    }
    let mem1 = settled_memory(meter)?;
    let mut mu_lists = 0;
    for (tok, _) in &streams {
        mu_lists += memory_usage(meter, &format!("ticklist:{tok}"))?;
    }
    let list_bytes = (mu_lists as f64 / n, (mem1 - mem0) as f64 / n);
    if !built {
        t.not_built(
            "6. B/tick, MEMORY USAGE (100 x 1000)",
            b(list_bytes.0),
            "<= 1/4 (>= 4x)",
        );
        return Ok(());
    }
    let book = "ticks:book:BTC-options";
    {
        let mut c = srv.conn()?;
        let mut p = redis::pipe();
        for (tok, docs) in &streams {
            for ch in docs.chunks(100) {
                p.cmd("TICKS.PUSH")
                    .arg(book)
                    .arg(tok)
                    .arg("TIMEFIELD")
                    .arg("ft")
                    .arg("JSON")
                    .arg(ch.iter().map(TickDoc::json).collect::<Vec<_>>())
                    .ignore();
            }
        }
        p.query::<()>(&mut c)?;
    }
    let mem2 = settled_memory(meter)?;
    let mu_book = memory_usage(meter, book)? as f64 / n;
    let d_book = (mem2 - mem1) as f64 / n;
    for (measure, m, l) in [
        (
            "6. B/tick, MEMORY USAGE (100 x 1000)",
            mu_book,
            list_bytes.0,
        ),
        ("   B/tick, used_memory delta", d_book, list_bytes.1),
    ] {
        t.add(
            measure,
            b(m),
            b(l),
            l / m,
            "<= 1/4 (>= 4x)",
            Some(l / m >= 4.0),
        );
    }
    Ok(())
}

/// The LPUSH+LTRIM pair's rate, 1/(1/LPUSH + 1/LTRIM), from `r[0]` (LPUSH) and `r[1]` (LTRIM),
/// and its baseline cell.
fn pair_rate(r: &[Throughput]) -> (f64, String) {
    let pair = 1.0 / (1.0 / r[0].median + 1.0 / r[1].median);
    let base = format!(
        "{} pair (LPUSH {} + LTRIM {})",
        k(pair),
        k(r[0].median),
        k(r[1].median)
    );
    (pair, base)
}
