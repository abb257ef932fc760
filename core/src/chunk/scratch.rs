//! The column buffers one chunk encode or decode works in, kept between calls. Shared by the
//! codec (core/src/chunk/codec.rs) and the column models (model.rs), so it lives apart from
//! both and neither imports the other's internals.

use super::series::SeriesScratch;

/// Column buffers of the encoder and decoder.
pub(super) struct Scratch {
    pub(super) vals: Vec<i128>,
    pub(super) us: SeriesScratch,
    pub(super) aux: Vec<i128>,
    pub(super) hints: Vec<u32>,
    /// Price rows.
    pub(super) rows: Vec<[i128; 4]>,
    /// The 64-bit encoding path's column values and price rows.
    pub(super) vals64: Vec<i64>,
    pub(super) rows64: Vec<[i64; 4]>,
    /// Encode every column by the 128-bit reference path (differential tests).
    #[cfg(test)]
    pub(super) reference: bool,
    /// Decoding only: presence flags.
    pub(super) has: [Vec<bool>; 5],
    pub(super) all: Vec<bool>,
}

impl Scratch {
    pub(super) fn new(n: usize) -> Self {
        Scratch {
            vals: Vec::with_capacity(n),
            us: SeriesScratch::default(),
            aux: Vec::with_capacity(n),
            hints: Vec::with_capacity(n),
            rows: Vec::new(),
            vals64: Vec::new(),
            rows64: Vec::new(),
            #[cfg(test)]
            reference: false,
            has: Default::default(),
            all: Vec::new(),
        }
    }

    /// Whether the 64-bit paths may be tried.
    #[inline]
    pub(super) fn fast(&self) -> bool {
        #[cfg(test)]
        if self.reference {
            return false;
        }
        true
    }
}
