//! TickBook::decode (the tick book's RDB/DUMP payload and TICKS.APPLY snapshot) on arbitrary
//! bytes. Never a panic, never an allocation the input can't justify. A book that decodes
//! reads consistently, and its encoding is canonical: encode → decode → encode gives the same
//! bytes.
use candles_core::ticks::TickBook;

/// The `ticks_decode` target: panics on a finding.
pub fn ticks_decode(data: &[u8]) {
    let Ok(book) = TickBook::decode(data) else {
        return;
    };
    let info = book.info();
    assert_eq!(info.ticks, book.tick_count());
    let streams = book.streams(None).expect("streams of a decoded book");
    assert_eq!(streams.len(), book.stream_count());
    let mut total = 0;
    for s in &streams {
        total += s.len;
        let latest = book.latest(&s.name, 5).unwrap();
        assert_eq!(latest.len(), s.len.min(5));
        let all = book.range(&s.name, i64::MIN, i64::MAX, None).unwrap();
        assert_eq!(all.len(), s.len);
        assert!(
            all.windows(2)
                .all(|w| (w[0].time, w[0].seq) <= (w[1].time, w[1].seq)),
            "range not ordered"
        );
        for t in all.iter().take(3) {
            let _ = t.to_json(Some(&s.name));
        }
    }
    assert_eq!(total, book.tick_count());
    let _ = book.merged(None, 10).unwrap();
    let enc = book.encode().expect("a decoded book encodes");
    let again =
        TickBook::decode(&enc).unwrap_or_else(|e| panic!("re-encoded book does not decode: {e}"));
    assert_eq!(
        again.encode().unwrap(),
        enc,
        "tick book encoding is not canonical"
    );
}
