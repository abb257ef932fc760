//! Tick::from_json (TICKS.PUSH … JSON doc) and Tick::from_pairs on arbitrary bytes, then the
//! accepted ticks pushed into a book. Never a panic. A document that parses prints back
//! (to_json) as a document that parses to the same tick; the book encodes and decodes.
use candles_core::ticks::{Tick, TickBook};

const TIME_FIELDS: [&[u8]; 4] = [b"time", b"T", b"E", b"ft"];

/// The `tick_json` target: panics on a finding.
pub fn tick_json(data: &[u8]) {
    let Some((&sel, doc)) = data.split_first() else {
        return;
    };
    let tf = TIME_FIELDS[usize::from(sel) % TIME_FIELDS.len()];
    let mut book = TickBook::new();
    if let Ok(t) = Tick::from_json(doc, tf) {
        let printed = t.to_json(None);
        let back = Tick::from_json(printed.as_bytes(), tf).unwrap_or_else(|e| {
            panic!(
                "{printed} (printed from {:?}) does not parse: {e}",
                String::from_utf8_lossy(doc)
            )
        });
        assert_eq!(back, t, "JSON round trip changed the tick: {printed}");
        book.push(b"json", Some(usize::from(sel) % 7 + 1), 1000, &[t])
            .unwrap();
    }
    // The field/value form: the bytes split at 0xff into time, field, value, field, value ...
    let mut parts = doc.split(|&b| b == 0xff);
    if let Some(time) = parts
        .next()
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.parse::<i64>().ok())
    {
        let rest: Vec<&[u8]> = parts.collect();
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = rest
            .chunks_exact(2)
            .map(|p| (p[0].to_vec(), p[1].to_vec()))
            .collect();
        if let Ok(t) = Tick::from_pairs(time, pairs) {
            let _ = t.to_json(Some(b"pairs"));
            book.push(b"pairs", None, 3, &[t.clone(), t]).unwrap();
        }
    }
    if book.is_empty() {
        return;
    }
    let _ = book.merged(None, 100).unwrap();
    let enc = book.encode().expect("book encodes");
    let back =
        TickBook::decode(&enc).unwrap_or_else(|e| panic!("pushed book does not decode: {e}"));
    assert_eq!(back.encode().unwrap(), enc);
}
