//! Bit fields in SQE words: the accessors engine drivers build their own SQE layouts on.
//! This module knows no layout; each driver names its fields as `(dword, lowest bit,
//! width)` in its own `sqe.rs`.

#![forbid(unsafe_code)]

/// `(dword, lowest bit, width)` of a field of at most 32 bits within one dword.
pub type Field = (usize, u32, u32);

/// The bits of `field` within its dword.
pub fn mask((_, lo, width): Field) -> u32 {
    if width == 32 {
        u32::MAX
    } else {
        ((1u32 << width) - 1) << lo
    }
}

/// Reads `field`.
pub fn get(words: &[u32], field: Field) -> u32 {
    (words[field.0] & mask(field)) >> field.1
}

/// Writes `field` with the low bits of `v`, leaving the rest of its dword.
pub fn set(words: &mut [u32], field: Field, v: u32) {
    let (dw, lo, _) = field;
    let mask = mask(field);
    words[dw] = (words[dw] & !mask) | ((v << lo) & mask);
}

/// The u64 kept in dwords `dw` (low half) and `dw + 1` (high half).
pub fn get_u64(words: &[u32], dw: usize) -> u64 {
    u64::from(words[dw]) | (u64::from(words[dw + 1]) << 32)
}

/// Writes a u64 into dwords `dw` (low half) and `dw + 1` (high half).
pub fn set_u64(words: &mut [u32], dw: usize, v: u64) {
    words[dw] = v as u32;
    words[dw + 1] = (v >> 32) as u32;
}

/// The words as the device sees them in memory (little-endian), `B` = 4 × their number.
pub fn to_le_bytes<const B: usize>(words: &[u32]) -> [u8; B] {
    assert_eq!(
        B,
        4 * words.len(),
        "{} words are not {B} bytes",
        words.len()
    );
    let mut b = [0u8; B];
    for (out, w) in b.chunks_exact_mut(4).zip(words) {
        out.copy_from_slice(&w.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_sit_at_their_bits_and_leave_neighbours() {
        let mut w = [0u32; 2];
        set(&mut w, (0, 5, 11), 0x7ff);
        assert_eq!(w, [0x0000_ffe0, 0]);
        set(&mut w, (0, 30, 2), 3);
        set(&mut w, (1, 0, 32), 0xdead_beef);
        assert_eq!(w, [0xc000_ffe0, 0xdead_beef]);
        assert_eq!(get(&w, (0, 5, 11)), 0x7ff);
        assert_eq!(get(&w, (0, 30, 2)), 3);
        assert_eq!(get(&w, (1, 0, 32)), 0xdead_beef);
        // Too-wide values are cut to the field.
        set(&mut w, (0, 5, 11), 0);
        set(&mut w, (0, 0, 4), 0x1f);
        assert_eq!(w[0], 0xc000_000f);
        assert_eq!((mask((0, 12, 4)), mask((3, 0, 32))), (0xf000, u32::MAX));
    }

    #[test]
    fn u64_is_low_then_high_and_bytes_little_endian() {
        let mut w = [0u32; 3];
        set_u64(&mut w, 1, 0x8877_6655_4433_2211);
        assert_eq!(w, [0, 0x4433_2211, 0x8877_6655]);
        assert_eq!(get_u64(&w, 1), 0x8877_6655_4433_2211);
        let b: [u8; 12] = to_le_bytes(&w);
        assert_eq!(&b[4..], &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        assert_eq!(&b[..4], &[0; 4]);
    }
}
