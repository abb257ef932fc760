//! INFO helpers: used_memory, commandstats (usec per call), MEMORY USAGE.

use crate::R;
use redis::Connection;
use std::collections::HashMap;
use std::time::Duration;

pub fn info(c: &mut Connection, section: &str) -> R<String> {
    Ok(redis::cmd("INFO").arg(section).query::<String>(c)?)
}

pub fn used_memory(c: &mut Connection) -> R<i64> {
    let s = info(c, "memory")?;
    s.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no used_memory in INFO memory".into())
}

/// `cmdstat_<name>` → (calls, usec), names lowercased (module commands appear as registered).
pub fn cmdstats(c: &mut Connection) -> R<HashMap<String, (u64, u64)>> {
    let s = info(c, "commandstats")?;
    let mut out = HashMap::new();
    for l in s.lines() {
        let Some((name, rest)) = l.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
            continue;
        };
        let field = |k: &str| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('=')?.parse::<u64>().ok())
        };
        if let (Some(calls), Some(usec)) = (field("calls"), field("usec")) {
            out.insert(name.to_ascii_lowercase(), (calls, usec));
        }
    }
    Ok(out)
}

/// usec per call of one command from a commandstats snapshot.
pub fn per_call(stats: &HashMap<String, (u64, u64)>, name: &str) -> R<(u64, f64)> {
    match stats.get(name) {
        Some(&(calls, usec)) if calls > 0 => Ok((calls, usec as f64 / calls as f64)),
        _ => Err(format!("no calls of '{name}' in INFO commandstats").into()),
    }
}

pub fn reset_stats(c: &mut Connection) -> R<()> {
    redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(c)?;
    Ok(())
}

pub fn memory_usage(c: &mut Connection, key: &str) -> R<i64> {
    Ok(redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query::<i64>(c)?)
}

/// used_memory after the writer connections are gone (their buffers freed).
pub fn settled_memory(c: &mut Connection) -> R<i64> {
    std::thread::sleep(Duration::from_millis(300));
    used_memory(c)
}
