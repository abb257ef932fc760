//! A cursor over a command's arguments, so commands parse by name (`next_key`, `take_kw`,
//! `value_of`, ...) instead of by index. Every parse error is the text the commands always
//! gave: a missing positional is a wrong-arity error, a missing option value is
//! `<OPTION> needs a value`, a bad number is `<what> must be ...`, an option given twice is
//! `<OPTION> given more than once` (every command takes its options with [`Args::take_option`],
//! which keeps track of the options taken; `TICKS.PUSH`, on a hot path, words the same errors
//! itself).

use redis_module::{RedisError, RedisString};

use crate::util::{err, is_kw, parse_bound, parse_range};

/// Most distinct options one command takes (`CANDLE.CREATE`: five).
const MAX_OPTIONS: usize = 8;

pub struct Args<'a> {
    rest: &'a [RedisString],
    /// The options taken so far, by [`Args::take_option`] (the first `n_seen`).
    seen: [&'static str; MAX_OPTIONS],
    n_seen: usize,
}

impl<'a> Args<'a> {
    /// The arguments of a command after its name (`argv[0]`).
    pub fn new(argv: &'a [RedisString]) -> Args<'a> {
        Args {
            rest: argv.get(1..).unwrap_or_default(),
            seen: [""; MAX_OPTIONS],
            n_seen: 0,
        }
    }

    /// The next argument, if any (not consumed).
    pub fn peek(&self) -> Option<&'a RedisString> {
        self.rest.first()
    }

    /// Whether the next argument is the keyword `kw` (any case); not consumed.
    pub fn peek_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|a| is_kw(a, kw))
    }

    /// Consumes the next argument if it is the keyword `kw` (any case).
    pub fn take_kw(&mut self, kw: &str) -> bool {
        let hit = self.peek_kw(kw);
        if hit {
            self.advance();
        }
        hit
    }

    /// Consumes the next argument if it is one of the option keywords `names` (any case) and
    /// returns that name as spelled in `names`; `None` (nothing consumed) if it is not one.
    /// An option taken before by this cursor is an error, `<NAME> given more than once`, the
    /// same for every option of every command. `names` holds at most [`MAX_OPTIONS`] names.
    pub fn take_option(
        &mut self,
        names: &[&'static str],
    ) -> Result<Option<&'static str>, RedisError> {
        let Some(a) = self.peek() else {
            return Ok(None);
        };
        let Some(&name) = names.iter().find(|n| is_kw(a, n)) else {
            return Ok(None);
        };
        let seen = self.seen.get(..self.n_seen).unwrap_or_default();
        if seen.contains(&name) {
            return Err(err(format!("{name} given more than once")));
        }
        // Each name is recorded once and a command's names fit: the slot always exists.
        if let Some(slot) = self.seen.get_mut(self.n_seen) {
            *slot = name;
            self.n_seen += 1;
        }
        self.advance();
        Ok(Some(name))
    }

    /// The next argument, if any, consumed.
    pub fn next_opt(&mut self) -> Option<&'a RedisString> {
        let a = self.peek()?;
        self.advance();
        Some(a)
    }

    /// The next positional argument; a wrong-arity error if there is none.
    pub fn next_arg(&mut self) -> Result<&'a RedisString, RedisError> {
        self.next_opt().ok_or(RedisError::WrongArity)
    }

    /// The key name (a positional argument).
    pub fn next_key(&mut self) -> Result<&'a RedisString, RedisError> {
        self.next_arg()
    }

    /// The next positional argument as a timestamp bound: an integer, `-` or `+`.
    pub fn next_bound(&mut self, what: &str) -> Result<i64, RedisError> {
        parse_bound(self.next_arg()?, what)
    }

    /// The value of option `name`, whose keyword was just consumed: `<name> needs a value`
    /// if the arguments end there.
    pub fn value_of(&mut self, name: &str) -> Result<&'a RedisString, RedisError> {
        self.next_opt()
            .ok_or_else(|| err(format!("{name} needs a value")))
    }

    /// The value of option `name` as an integer in `min..=max`
    /// (`<name> must be between <min> and <max>`).
    pub fn value_in(&mut self, name: &str, min: u64, max: u64) -> Result<u64, RedisError> {
        parse_range(self.value_of(name)?, name, min, max)
    }

    /// The arguments not consumed yet, all consumed.
    pub fn rest(&mut self) -> &'a [RedisString] {
        std::mem::take(&mut self.rest)
    }

    /// The arguments not consumed yet, not consumed.
    pub fn remaining(&self) -> &'a [RedisString] {
        self.rest
    }

    /// Succeeds only when every argument was consumed (else a wrong-arity error).
    pub fn done(&self) -> Result<(), RedisError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(RedisError::WrongArity)
        }
    }

    fn advance(&mut self) {
        self.rest = self.rest.get(1..).unwrap_or_default();
    }
}
