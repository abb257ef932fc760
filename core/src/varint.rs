//! LEB128 varints and zig-zag: the one copy every byte encoding of the crate uses (RDB and
//! effect records, tick books, chunk tails). Decoding never panics: it reports truncated or
//! over-long input, and the caller names what was corrupt.

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the varint.
    Truncated,
    /// More bits than the target type holds.
    Overflow,
}

impl VarintError {
    pub fn as_str(self) -> &'static str {
        match self {
            VarintError::Truncated => "truncated varint",
            VarintError::Overflow => "varint overflows",
        }
    }
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

#[inline]
pub fn zigzag128(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

#[inline]
pub fn unzigzag128(u: u128) -> i128 {
    ((u >> 1) as i128) ^ -((u & 1) as i128)
}

#[inline]
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag(v));
}

pub fn put_u128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_i128(out: &mut Vec<u8>, v: i128) {
    put_u128(out, zigzag128(v));
}

/// Bytes `put_u64` writes for `v`.
#[inline]
pub fn len_u64(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A length prefix, then the bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads a varint of at most `bits` (64 or 128) bits at `*pos`, advancing `*pos` past it.
#[inline]
fn get(b: &[u8], pos: &mut usize, bits: u32) -> Result<u128, VarintError> {
    // Nine bytes or fewer (under 2^63, nearly every value: times, counts, mantissas) are
    // gathered in 64 bits, where they cannot overflow either width.
    let start = *pos;
    let mut v = 0u64;
    for i in 0..9 {
        let Some(&byte) = b.get(start + i) else {
            return Err(VarintError::Truncated);
        };
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *pos = start + i + 1;
            return Ok(u128::from(v));
        }
    }
    get_wide(b, pos, bits)
}

/// [`get`] of any length, a byte at a time in 128 bits.
#[cold]
#[inline(never)]
fn get_wide(b: &[u8], pos: &mut usize, bits: u32) -> Result<u128, VarintError> {
    let mut v = 0u128;
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*pos).ok_or(VarintError::Truncated)?;
        *pos += 1;
        let low = u128::from(byte & 0x7f);
        if shift >= bits || (shift + 7 > bits && (low >> (bits - shift)) != 0) {
            return Err(VarintError::Overflow);
        }
        v |= low << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
}

pub fn get_u64(b: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    // At most 64 bits by the check in `get`.
    get(b, pos, 64).map(|v| v as u64)
}

pub fn get_i64(b: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    get_u64(b, pos).map(unzigzag)
}

pub fn get_u128(b: &[u8], pos: &mut usize) -> Result<u128, VarintError> {
    get(b, pos, 128)
}

pub fn get_i128(b: &[u8], pos: &mut usize) -> Result<i128, VarintError> {
    get_u128(b, pos).map(unzigzag128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_lengths() {
        let vals = [
            0u64,
            1,
            127,
            128,
            300,
            1 << 35,
            (1 << 56) - 1,
            1 << 56,
            u64::MAX - 1,
            u64::MAX,
        ];
        for v in vals {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            assert_eq!(out.len(), len_u64(v), "{v}");
            let mut pos = 0;
            assert_eq!(get_u64(&out, &mut pos), Ok(v));
            assert_eq!(pos, out.len());
            let mut pos = 0;
            assert_eq!(get_u128(&out, &mut pos), Ok(u128::from(v)));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -300] {
            assert_eq!(unzigzag(zigzag(v)), v);
            let mut out = Vec::new();
            put_i64(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_i64(&out, &mut pos), Ok(v));
        }
        for v in [0i128, -1, i128::MIN, i128::MAX, 10i128.pow(30)] {
            assert_eq!(unzigzag128(zigzag128(v)), v);
            let mut out = Vec::new();
            put_i128(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_i128(&out, &mut pos), Ok(v));
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn refuses_truncated_and_overflowing_input() {
        let mut pos = 0;
        assert_eq!(get_u64(&[0x80], &mut pos), Err(VarintError::Truncated));
        let mut pos = 0;
        assert_eq!(get_u64(&[], &mut pos), Err(VarintError::Truncated));
        // u64::MAX is 9 bytes of 0xff and a final 0x01; a final 0x02 is bit 64.
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        let mut pos = 0;
        assert_eq!(get_u64(&too_big, &mut pos), Err(VarintError::Overflow));
        let mut pos = 0;
        assert!(get_u128(&too_big, &mut pos).is_ok());
        let mut pos = 0;
        assert_eq!(get_u128(&[0xff; 40], &mut pos), Err(VarintError::Overflow));
    }
}
