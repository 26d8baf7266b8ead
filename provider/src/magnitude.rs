//! Big-endian magnitudes, as keys and RSA inputs come: comparison and normal form.

#![forbid(unsafe_code)]

use std::cmp::Ordering;

/// Compares two big-endian magnitudes (leading zeros ignored).
pub fn be_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `b` without its leading zeros.
pub fn strip(b: &[u8]) -> &[u8] {
    &b[b.iter().take_while(|x| **x == 0).count()..]
}

/// Whether the magnitude is odd.
pub fn is_odd(b: &[u8]) -> bool {
    b.last().is_some_and(|x| x & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn be_cmp_ignores_leading_zeros() {
        assert!(be_cmp(&[0, 0, 5], &[5]).is_eq());
        assert!(be_cmp(&[1, 0], &[0xff]).is_gt());
        assert!(be_cmp(&[], &[0]).is_eq());
    }

    #[test]
    fn strip_and_parity() {
        assert_eq!(strip(&[0, 0, 1, 0]), [1, 0]);
        assert!(strip(&[0, 0]).is_empty());
        assert!(is_odd(&[0, 3]) && !is_odd(&[3, 0]) && !is_odd(&[]));
    }
}
