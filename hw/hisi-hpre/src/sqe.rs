//! The 64-byte HPRE SQE (docs/hardware-interface.md §5.1), defined here independently of
//! the device model.
//!
//! | dw  | bits    | field                                         |
//! |-----|---------|-----------------------------------------------|
//! | 0   | `[4:0]`   | `alg`                                         |
//! | 0   | `[15:5]`  | `etype` (error type)                          |
//! | 0   | `[29:16]` | `etype1` (extended error)                     |
//! | 0   | `[31:30]` | `done`: 1 when submitted, 3 when finished     |
//! | 1   | `[7:0]`   | `task_len1` = operand bytes / 8 - 1           |
//! | 2–3 |         | `key`: u64 address of the key block           |
//! | 4–5 |         | `in`: u64 address of the input operand        |
//! | 6–7 |         | `out`: u64 address of the output buffer       |
//! | 8   | `[15:0]`  | `tag` (the kernel's `__le16 tag` at byte 32)  |

#![forbid(unsafe_code)]

use hisi_qm::words::{self, Field};

/// Bytes per HPRE SQE.
pub const SQE_SIZE: usize = 64;
/// 32-bit words per HPRE SQE.
pub const SQE_WORDS: usize = SQE_SIZE / 4;

/// `alg`: modular exponentiation (RSA public, and private in non-CRT form).
pub const ALG_NC_NCRT: u8 = 0x0;
/// `alg`: RSA private with CRT.
pub const ALG_NC_CRT: u8 = 0x1;

/// `done` as software submits it (`HPRE_HW_TASK_INIT`).
pub const DONE_INIT: u8 = 1;
/// `done` as the hardware leaves it after finishing (`HPRE_HW_TASK_DONE`).
pub const DONE_TASK: u8 = 3;

const ALG: Field = (0, 0, 5);
const ETYPE: Field = (0, 5, 11);
const ETYPE1: Field = (0, 16, 14);
const DONE: Field = (0, 30, 2);
const TASK_LEN1: Field = (1, 0, 8);
const TAG: Field = (8, 0, 16);
const KEY_DW: usize = 2;
const IN_DW: usize = 4;
const OUT_DW: usize = 6;

/// An HPRE SQE as 16 little-endian words (the ring copies words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HpreSqe(pub [u32; SQE_WORDS]);

impl HpreSqe {
    fn get(&self, f: Field) -> u32 {
        words::get(&self.0, f)
    }

    fn set(&mut self, f: Field, v: u32) {
        let (_, lo, width) = f;
        debug_assert!(
            v << lo & !words::mask(f) == 0,
            "{v:#x} wider than {width} bits"
        );
        words::set(&mut self.0, f, v)
    }

    fn get_u64(&self, dw: usize) -> u64 {
        words::get_u64(&self.0, dw)
    }

    fn set_u64(&mut self, dw: usize, v: u64) {
        words::set_u64(&mut self.0, dw, v)
    }

    /// Algorithm code, `dw0[4:0]`.
    pub fn alg(&self) -> u8 {
        self.get(ALG) as u8
    }
    /// Sets the algorithm code.
    pub fn set_alg(&mut self, v: u8) {
        self.set(ALG, v as u32)
    }
    /// Error type, `dw0[15:5]`.
    pub fn etype(&self) -> u16 {
        self.get(ETYPE) as u16
    }
    /// Sets the error type (0 when submitting).
    pub fn set_etype(&mut self, v: u16) {
        self.set(ETYPE, v as u32)
    }
    /// Extended error type, `dw0[29:16]`.
    pub fn etype1(&self) -> u16 {
        self.get(ETYPE1) as u16
    }
    /// Sets the extended error type.
    pub fn set_etype1(&mut self, v: u16) {
        self.set(ETYPE1, v as u32)
    }
    /// Task state, `dw0[31:30]`.
    pub fn done(&self) -> u8 {
        self.get(DONE) as u8
    }
    /// Sets the task state ([`DONE_INIT`] when submitting).
    pub fn set_done(&mut self, v: u8) {
        self.set(DONE, v as u32)
    }
    /// Operand length in 64-bit words minus one, `dw1[7:0]`.
    pub fn task_len1(&self) -> u8 {
        self.get(TASK_LEN1) as u8
    }
    /// Sets the operand length code.
    pub fn set_task_len1(&mut self, v: u8) {
        self.set(TASK_LEN1, v as u32)
    }
    /// Key block address, bytes 8..16.
    pub fn key(&self) -> u64 {
        self.get_u64(KEY_DW)
    }
    /// Sets the key block address.
    pub fn set_key(&mut self, v: u64) {
        self.set_u64(KEY_DW, v)
    }
    /// Input operand address, bytes 16..24.
    pub fn input(&self) -> u64 {
        self.get_u64(IN_DW)
    }
    /// Sets the input operand address.
    pub fn set_input(&mut self, v: u64) {
        self.set_u64(IN_DW, v)
    }
    /// Output buffer address, bytes 24..32.
    pub fn output(&self) -> u64 {
        self.get_u64(OUT_DW)
    }
    /// Sets the output buffer address.
    pub fn set_output(&mut self, v: u64) {
        self.set_u64(OUT_DW, v)
    }
    /// Request tag, u16 at byte 32.
    pub fn tag(&self) -> u16 {
        self.get(TAG) as u16
    }
    /// Sets the request tag.
    pub fn set_tag(&mut self, v: u16) {
        self.set(TAG, v as u32)
    }

    /// The SQE as the device sees it in memory.
    pub fn to_bytes(&self) -> [u8; SQE_SIZE] {
        words::to_le_bytes(&self.0)
    }
}

/// `task_len1` for an operand of `key_bytes` bytes: its length in 64-bit words minus one.
pub const fn task_len1(key_bytes: usize) -> u8 {
    (key_bytes / 8 - 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets one field to all ones in a zeroed SQE and returns the bytes that changed.
    fn only(f: impl FnOnce(&mut HpreSqe)) -> Vec<(usize, u8)> {
        let mut s = HpreSqe::default();
        f(&mut s);
        s.to_bytes()
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .map(|(i, b)| (i, *b))
            .collect()
    }

    #[test]
    fn dw0_fields_sit_at_their_bits() {
        // alg [4:0]
        assert_eq!(only(|s| s.set_alg(0x1f)), vec![(0, 0x1f)]);
        // etype [15:5]: 0x0000ffe0
        assert_eq!(only(|s| s.set_etype(0x7ff)), vec![(0, 0xe0), (1, 0xff)]);
        // etype1 [29:16]: 0x3fff0000
        assert_eq!(only(|s| s.set_etype1(0x3fff)), vec![(2, 0xff), (3, 0x3f)]);
        // done [31:30]: 0xc0000000
        assert_eq!(only(|s| s.set_done(3)), vec![(3, 0xc0)]);
        assert_eq!(only(|s| s.set_done(DONE_INIT)), vec![(3, 0x40)]);
    }

    #[test]
    fn dw1_and_addresses_and_tag_sit_at_their_bytes() {
        assert_eq!(only(|s| s.set_task_len1(0xff)), vec![(4, 0xff)]);
        let addr = 0x8877_6655_4433_2211u64;
        let at = |base: usize| -> Vec<(usize, u8)> {
            (0..8).map(|i| (base + i, 0x11 * (i as u8 + 1))).collect()
        };
        assert_eq!(only(|s| s.set_key(addr)), at(8));
        assert_eq!(only(|s| s.set_input(addr)), at(16));
        assert_eq!(only(|s| s.set_output(addr)), at(24));
        assert_eq!(only(|s| s.set_tag(0xa55a)), vec![(32, 0x5a), (33, 0xa5)]);
    }

    #[test]
    fn fields_read_back_and_do_not_overlap() {
        let mut s = HpreSqe::default();
        s.set_alg(ALG_NC_CRT);
        s.set_etype(0x5a5);
        s.set_etype1(0x2a5a);
        s.set_done(DONE_TASK);
        s.set_task_len1(63);
        s.set_key(1);
        s.set_input(2);
        s.set_output(3);
        s.set_tag(1023);
        assert_eq!(
            (s.alg(), s.etype(), s.etype1(), s.done(), s.task_len1()),
            (1, 0x5a5, 0x2a5a, 3, 63)
        );
        assert_eq!((s.key(), s.input(), s.output(), s.tag()), (1, 2, 3, 1023));
        assert_eq!(s.0[0], 1 | 0x5a5 << 5 | 0x2a5a << 16 | 3 << 30);
        // Clearing one field leaves its neighbours.
        s.set_etype(0);
        assert_eq!((s.alg(), s.etype1(), s.done()), (1, 0x2a5a, 3));
        assert_eq!(s.to_bytes().len(), 64);
    }

    #[test]
    fn task_len1_by_key_size() {
        assert_eq!(task_len1(128), 15);
        assert_eq!(task_len1(256), 31);
        assert_eq!(task_len1(384), 47);
        assert_eq!(task_len1(512), 63);
    }
}
