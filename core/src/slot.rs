//! Redis Cluster's hash slot of a key (CRC16/XMODEM of the key, or of its `{hash tag}`,
//! modulo 16384): derived series must share their source's slot. Redis 7.0 has no module
//! API for it (`RM_ClusterKeySlot` came in 7.4).

/// The part of `key` that is hashed: the first non-empty `{...}`, else the whole key.
fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let after = key.get(open + 1..).unwrap_or(&[]);
        if let Some(len) = after.iter().position(|&b| b == b'}') {
            if len > 0 {
                return after.get(..len).unwrap_or(key);
            }
        }
    }
    key
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hashed_part(key)) & 16_383
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_cluster_keyslot() {
        // CLUSTER KEYSLOT answers, as documented by Redis.
        assert_eq!(key_slot(b"123456789"), 12_739);
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(
            key_slot(b"candle:{BTCUSDT}:1m"),
            key_slot(b"candle:{BTCUSDT}:1h")
        );
    }
}
