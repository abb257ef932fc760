//! Errors of the pure core. Each one becomes an `ERR <message>` reply in the module.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A value that does not parse or is out of range; the message names it.
    Invalid(String),
    /// A well-formed request the series' rules refuse (BLOCK policy, interval mismatch).
    Rejected(String),
    /// A stored encoding (RDB, DUMP payload, replication blob) that does not decode.
    Corrupt(String),
}

impl CoreError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        CoreError::Invalid(msg.into())
    }
    pub fn rejected(msg: impl Into<String>) -> Self {
        CoreError::Rejected(msg.into())
    }
    pub fn corrupt(msg: impl Into<String>) -> Self {
        CoreError::Corrupt(msg.into())
    }
    pub fn message(&self) -> &str {
        match self {
            CoreError::Invalid(m) | CoreError::Rejected(m) | CoreError::Corrupt(m) => m,
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CoreError {}

pub type CoreResult<T> = Result<T, CoreError>;
