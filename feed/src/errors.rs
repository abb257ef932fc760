//! Error text with its whole cause chain: `reqwest` and friends print only the outermost
//! message ("error sending request for url (…)"); the reason ("Connection refused") is in
//! `source()`.

use std::error::Error;

/// `e` and every `source()` below it, joined by ": " (a cause whose text is already in the
/// line is left out, as some errors repeat their source in their own message).
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !s.is_empty() && !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error sending request")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn walks_the_sources() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ));
        assert_eq!(
            chain(&e),
            "error sending request: Connection refused (os error 111)"
        );
        let plain = std::io::Error::other("x");
        assert_eq!(chain(&plain), "x");
    }
}
