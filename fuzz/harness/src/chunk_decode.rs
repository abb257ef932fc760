//! ChunkedStore::decode (the official region inside the RDB payload) on arbitrary bytes.
//! Never a panic; what decodes reads consistently and round-trips.
use candles_core::chunk::ChunkedStore;

/// The `chunk_decode` target: panics on a finding.
pub fn chunk_decode(data: &[u8]) {
    let Ok(s) = ChunkedStore::decode(data) else {
        return;
    };
    let all: Vec<_> = s.iter().collect();
    assert_eq!(all.len(), s.len());
    assert!(
        all.windows(2).all(|w| w[0].open_time < w[1].open_time),
        "decoded store out of order"
    );
    assert_eq!(all.first().map(|c| c.open_time), s.first_time());
    assert_eq!(all.last().map(|c| c.open_time), s.last_time());
    if let Some(c) = all.get(all.len() / 2) {
        assert_eq!(s.get(c.open_time).as_ref(), Some(c));
        assert_eq!(s.range(c.open_time, i64::MAX, Some(1)).len(), 1);
    }
    let mut buf = Vec::new();
    s.encode(&mut buf);
    let back = ChunkedStore::decode(&buf)
        .unwrap_or_else(|e| panic!("re-encoded store does not decode: {e}"));
    assert_eq!(back, s);
    // Mutating a decoded store keeps it consistent.
    let mut m = back;
    if let Some(c) = all.first() {
        m.put(*c);
        m.remove_oldest(1);
        assert_eq!(m.len(), s.len() - 1);
    }
}
