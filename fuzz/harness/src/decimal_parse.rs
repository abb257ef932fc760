//! Dec::parse_bytes on arbitrary bytes must never panic; whatever it accepts must print and
//! parse back to the same value (parse(display(x)) == x), and the text is canonical.
use candles_core::Dec;

/// The `decimal_parse` target: panics on a finding.
pub fn decimal_parse(data: &[u8]) {
    let Ok(d) = Dec::parse_bytes(data) else {
        return;
    };
    let text = d.to_string();
    let back = Dec::parse(&text).unwrap_or_else(|e| {
        panic!("{data:?} -> {d:?} prints as {text:?}, which does not parse: {e}")
    });
    assert_eq!(back, d, "{data:?} prints as {text:?}");
    assert_eq!(back.to_string(), text);
    assert_eq!(back.cmp(&d), std::cmp::Ordering::Equal);
    // Arithmetic never panics: an exact result or an error.
    if let Ok(s) = d.checked_add(d) {
        assert!(
            (s >= d) != d.is_negative() || d == Dec::ZERO,
            "{d} + {d} = {s}"
        );
        // A sum may have one digit more than parse accepts (MAX_DIGITS); within it, it re-parses.
        let text = s.to_string();
        let digits = text
            .trim_start_matches('-')
            .trim_start_matches(['0', '.'])
            .bytes()
            .filter(u8::is_ascii_digit)
            .count();
        if digits <= candles_core::decimal::MAX_DIGITS {
            assert_eq!(Dec::parse(&text).unwrap(), s);
        }
    }
    let _ = d.checked_add(Dec::from_int(-1));
    let _ = (d.max(Dec::ZERO), d.min(Dec::ZERO));
}
