//! Phases 5 + 6: the server cost of a tick push, tick push throughput, and bytes per tick
//! (when the module has TICKS.*).

use crate::bench::{k, strs, Bench, Throughput};
use crate::data::{ticks, TickDoc};
use crate::server::Server;
use crate::stats::{cmdstats, memory_usage, per_call, reset_stats, settled_memory};
use crate::table::{b, us, Table};
use crate::R;
use redis::{Connection, Value};

/// Streams of the server-cost rows, the cap their lists and streams are held at, and the
/// ticks per stream measured (after `COST_CAP` unmeasured ones that fill them).
const COST_STREAMS: usize = 20;
const COST_CAP: usize = 1000;
const COST_TICKS_1: usize = 2000;
const COST_TICKS_100: usize = 10_000;
/// Commands per pipelined round trip.
const PIPE: usize = 1000;

/// Server microseconds per tick (INFO commandstats), the module's and the baseline's.
struct Cost {
    push: f64,
    lpush: f64,
    ltrim: f64,
}

impl Cost {
    fn pair(&self) -> f64 {
        self.lpush + self.ltrim
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Sends `cmds` in pipelines of [`PIPE`] commands (replies ignored; an error reply fails).
fn send(c: &mut Connection, cmds: &[Vec<String>]) -> R<()> {
    for part in cmds.chunks(PIPE) {
        let mut p = redis::pipe();
        for cmd in part {
            let mut r = redis::cmd(&cmd[0]);
            for a in &cmd[1..] {
                r.arg(a);
            }
            p.add_command(r).ignore();
        }
        p.query::<()>(c)?;
    }
    Ok(())
}

/// The commands that push `docs` of stream `tok`, `per` documents a command: TICKS.PUSH
/// (JSON, time field `ft`) into `book`, or LPUSH + LTRIM (the list held at [`COST_CAP`]).
fn push_cmds(book: &str, tok: &str, docs: &[TickDoc], per: usize) -> Vec<Vec<String>> {
    docs.chunks(per)
        .map(|ch| {
            let mut c = strs(&["TICKS.PUSH", book, tok, "TIMEFIELD", "ft", "JSON"]);
            c.extend(ch.iter().map(TickDoc::json));
            c
        })
        .collect()
}

fn list_cmds(list: &str, docs: &[TickDoc], per: usize) -> Vec<Vec<String>> {
    let cap = (COST_CAP - 1).to_string();
    docs.chunks(per)
        .flat_map(|ch| {
            let mut lpush = strs(&["LPUSH", list]);
            lpush.extend(ch.iter().map(TickDoc::json));
            [lpush, strs(&["LTRIM", list, "0", &cap])]
        })
        .collect()
}

/// Commands of every stream interleaved, one command (pair) of each in turn, as a live feed
/// of many tokens sends them.
fn interleave(per_stream: Vec<Vec<Vec<String>>>, step: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let longest = per_stream.iter().map(Vec::len).max().unwrap_or(0);
    let mut i = 0;
    while i < longest {
        for s in &per_stream {
            out.extend(s.iter().skip(i).take(step).cloned());
        }
        i += step;
    }
    out
}

/// Server cost per tick of `per` documents a command, from INFO commandstats: the streams are
/// filled to their cap first (unmeasured), then `n` more ticks a stream are pushed, in
/// `BENCH_REPEATS` rounds that alternate which side goes first on fresh keys; medians.
fn push_cost(srv: &Server, meter: &mut Connection, bench: &Bench, per: usize, n: usize) -> R<Cost> {
    let streams = ticks(COST_STREAMS, COST_CAP + n)?;
    let mut c = srv.conn()?;
    let (mut push, mut lpush, mut ltrim) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..bench.repeats {
        let book = format!("ticks:cost:{per}:{round}");
        let list = |tok: &str| format!("ticks:cost:{per}:{round}:list:{tok}");
        let fill_book: Vec<_> = streams
            .iter()
            .map(|(tok, d)| push_cmds(&book, tok, &d[..COST_CAP], 100))
            .collect();
        let fill_list: Vec<_> = streams
            .iter()
            .map(|(tok, d)| list_cmds(&list(tok), &d[..COST_CAP], 100))
            .collect();
        send(&mut c, &interleave(fill_book, 1))?;
        send(&mut c, &interleave(fill_list, 2))?;
        let book_cmds = interleave(
            streams
                .iter()
                .map(|(tok, d)| push_cmds(&book, tok, &d[COST_CAP..], per))
                .collect(),
            1,
        );
        let list_cmds = interleave(
            streams
                .iter()
                .map(|(tok, d)| list_cmds(&list(tok), &d[COST_CAP..], per))
                .collect(),
            2,
        );
        let mut measure = |cmds: &[Vec<String>]| -> R<_> {
            reset_stats(meter)?;
            send(&mut c, cmds)?;
            cmdstats(meter)
        };
        let (sb, sl) = if round % 2 == 0 {
            let sb = measure(&book_cmds)?;
            (sb, measure(&list_cmds)?)
        } else {
            let sl = measure(&list_cmds)?;
            (measure(&book_cmds)?, sl)
        };
        let per_tick = |(_, us): (u64, f64)| us / per as f64;
        push.push(per_tick(per_call(&sb, "ticks.push")?));
        lpush.push(per_tick(per_call(&sl, "lpush")?));
        ltrim.push(per_tick(per_call(&sl, "ltrim")?));
        let mut del = redis::cmd("DEL");
        del.arg(&book);
        for (tok, _) in &streams {
            del.arg(list(tok));
        }
        del.query::<()>(&mut c)?;
    }
    Ok(Cost {
        push: median(push),
        lpush: median(lpush),
        ltrim: median(ltrim),
    })
}

/// 5: server cost per tick, one document a command and 100, against LPUSH + LTRIM.
fn cost_rows(srv: &Server, meter: &mut Connection, bench: &Bench, t: &mut Table) -> R<()> {
    let one = push_cost(srv, meter, bench, 1, COST_TICKS_1)?;
    let hundred = push_cost(srv, meter, bench, 100, COST_TICKS_100)?;
    let base = |c: &Cost, what: &str| {
        format!(
            "{} ({what} {:.3} + LTRIM {:.3})",
            us(c.pair()),
            c.lpush,
            c.ltrim
        )
    };
    t.add(
        "5. server usec/tick, TICKS.PUSH 1 JSON doc vs LPUSH+LTRIM",
        us(one.push),
        base(&one, "LPUSH"),
        one.pair() / one.push,
        ">= 1.0x",
        Some(one.pair() >= one.push),
    );
    t.add(
        "5. server usec/tick, TICKS.PUSH 100 docs vs LPUSH 100+LTRIM",
        us(hundred.push),
        base(&hundred, "LPUSH"),
        hundred.pair() / hundred.push,
        ">= 0.5x",
        Some(hundred.pair() >= 0.5 * hundred.push),
    );
    t.notes.push(format!(
        "5: server usec from INFO commandstats, per tick: {COST_STREAMS} streams of real aggTrade ticks (data.rs::ticks), filled to {COST_CAP} first (unmeasured), \
         then {COST_TICKS_1} (1 a command) / {COST_TICKS_100} (100 a command) more per stream, the streams interleaved, pipelined {PIPE} commands a round trip; \
         TICKS.PUSH key token TIMEFIELD ft JSON doc [doc ...] against LPUSH list doc [doc ...] + LTRIM list 0 {} (both commands' usec added, \
         divided by the documents per command); median of {} rounds alternating which goes first",
        COST_CAP - 1,
        bench.repeats
    ));
    Ok(())
}

/// Whether the loaded module has TICKS.PUSH.
pub fn has_ticks(c: &mut Connection) -> R<bool> {
    let v: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("TICKS.PUSH")
        .query(c)?;
    Ok(matches!(v, Value::Array(ref a) if a.first().is_some_and(|e| !matches!(e, Value::Nil))))
}

/// 5: server cost per tick and tick push throughput; 6: bytes per tick.
pub fn tick_phases(
    srv: &Server,
    meter: &mut Connection,
    bench: &Bench,
    t: &mut Table,
    built: bool,
) -> R<()> {
    if built {
        cost_rows(srv, meter, bench, t)?;
    } else {
        t.not_built(
            "5. server usec/tick, TICKS.PUSH 1 JSON doc vs LPUSH+LTRIM",
            "-".into(),
            ">= 1.0x",
        );
        t.not_built(
            "5. server usec/tick, TICKS.PUSH 100 docs vs LPUSH 100+LTRIM",
            "-".into(),
            ">= 0.5x",
        );
    }
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
            "   TICKS.PUSH JSON rps vs LPUSH+LTRIM pair (P32)",
            k(pj),
            base,
            pj / pair,
            "(info)",
            None,
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
        t.not_built(
            "   TICKS.PUSH JSON rps vs LPUSH+LTRIM pair (P32)",
            base,
            "(info)",
        );
        t.not_built("   same, unpipelined (-P 1)", base1, "(info)");
        t.not_built("   TICKS.PUSH JSON rps vs XADD", xbase, "(info)");
    }
    t.notes.push(
        "5 (rps rows): one document repeated by redis-benchmark; pair rate = 1/(1/LPUSH + 1/LTRIM), each benchmarked alone \
         (LTRIM runs hit a full list and trim nothing: an upper bound for the original design). \
         Pipelined, per-command cost decides; unpipelined (-P 1), round trips decide and one TICKS.PUSH replaces two"
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
