//! `--shard k/n`: n feeder processes split the symbols between them, no overlap and no gap.
//!
//! A symbol belongs to shard `k` (1-based) of `n` when `fnv1a64(SYMBOL) % n == k - 1`, where
//! `SYMBOL` is the upper-case symbol's bytes and FNV-1a is the 64-bit variant (offset basis
//! 0xcbf29ce484222325, prime 0x100000001b3). The hash is fixed by this definition, not by the
//! process (std's hasher is randomly seeded), so every feeder of a fleet, whatever its version
//! or machine, agrees on who owns what; all intervals of a symbol go to the same shard (they
//! also share one Redis Cluster slot through the `{SYMBOL}` hash tag).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index of this shard.
    pub k: u32,
    /// Shards in the fleet.
    pub n: u32,
}

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Shard {
    /// Parses `k/n` with 1 ≤ k ≤ n.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard '{s}': expected k/n with 1 <= k <= n (e.g. 2/3)");
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }

    /// The 1-based shard that owns `symbol` among `n`.
    pub fn owner_of(symbol: &str, n: u32) -> u32 {
        let h = fnv1a64(symbol.to_ascii_uppercase().as_bytes());
        (h % u64::from(n.max(1))) as u32 + 1
    }

    pub fn owns(&self, symbol: &str) -> bool {
        Shard::owner_of(symbol, self.n) == self.k
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn parse_and_split() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { k: 2, n: 3 }));
        assert_eq!(Shard::parse(" 1/1 "), Ok(Shard { k: 1, n: 1 }));
        for bad in ["0/3", "4/3", "1/0", "1", "a/b", "1/2/3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let syms: Vec<String> = (0..1000).map(|i| format!("SYM{i}USDT")).collect();
        for n in 1..=7u32 {
            let mut counts = vec![0usize; n as usize];
            for s in &syms {
                let owners: Vec<u32> = (1..=n).filter(|&k| Shard { k, n }.owns(s)).collect();
                assert_eq!(owners.len(), 1, "{s} in exactly one of {n} shards");
                counts[owners[0] as usize - 1] += 1;
            }
            // roughly even
            for c in counts {
                assert!(c * (n as usize) > 1000 / 2, "{n}: {c}");
            }
        }
        // case does not matter
        assert_eq!(Shard::owner_of("btcusdt", 5), Shard::owner_of("BTCUSDT", 5));
    }
}
