//! Output that can never stop the feeder: stderr writes whose errors are dropped (a closed pipe,
//! `candles-feed … 2>&1 | head -1`, must not panic or abort, as `eprintln!` would).

use std::io::{self, Write};
use tracing_subscriber::fmt::MakeWriter;

/// stderr for `tracing`'s fmt layer; every write reports success, whatever happened.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QuietStderr {
    type Writer = QuietStderr;

    fn make_writer(&'a self) -> Self::Writer {
        QuietStderr
    }
}

/// One line on stderr, like `eprintln!` but ignoring write errors.
pub fn eprint_line(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{args}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_report_success() {
        let mut w = QuietStderr.make_writer();
        assert_eq!(w.write(b"").unwrap(), 0);
        assert!(w.flush().is_ok());
    }
}
