//! The HPRE SQE (64 bytes, docs/hardware-interface.md §5.1) as the device reads and writes
//! it.

#![forbid(unsafe_code)]

/// Bytes per HPRE SQE.
pub const SQE_SIZE: usize = 64;
/// 32-bit words per HPRE SQE.
pub const SQE_WORDS: usize = SQE_SIZE / 4;

/// dw0 [4:0]: algorithm code.
pub const ALG_SHIFT: u32 = 0;
/// Mask of `alg` after shifting.
pub const ALG_MASK: u32 = 0x1f;
/// dw0 [15:5]: error type.
pub const ETYPE_SHIFT: u32 = 5;
/// Mask of `etype` after shifting.
pub const ETYPE_MASK: u32 = 0x7ff;
/// dw0 [29:16]: extended error type.
pub const ETYPE1_SHIFT: u32 = 16;
/// Mask of `etype1` after shifting.
pub const ETYPE1_MASK: u32 = 0x3fff;
/// dw0 [31:30]: done.
pub const DONE_SHIFT: u32 = 30;
/// Mask of `done` after shifting.
pub const DONE_MASK: u32 = 0x3;
/// dw1 [7:0]: `task_len1` = key bytes / 8 - 1.
pub const TASK_LEN1_MASK: u32 = 0xff;

/// Byte offset of the key block address (u64).
pub const KEY_OFFSET: usize = 8;
/// Byte offset of the input operand address (u64).
pub const IN_OFFSET: usize = 16;
/// Byte offset of the output buffer address (u64).
pub const OUT_OFFSET: usize = 24;
/// Byte offset of the tag (dw8/dw9), preserved by the device.
pub const TAG_OFFSET: usize = 32;

/// `done` as software submits it (`HPRE_HW_TASK_INIT`).
pub const DONE_INIT: u32 = 1;
/// `done` as the device leaves it (`HPRE_HW_TASK_DONE`).
pub const DONE_DONE: u32 = 3;

/// `HPRE_ALG_NC_NCRT`: modular exponentiation with `e‖n` or `d‖n`.
pub const ALG_NC_NCRT: u8 = 0;
/// `HPRE_ALG_NC_CRT`: RSA private with `dq‖dp‖q‖p‖qinv`.
pub const ALG_NC_CRT: u8 = 1;

/// Model's `etype` for a parameter error: bad `done`, unknown algorithm, unsupported key
/// size, input not below the modulus, wrong queue type. (hardware-interface lists no HPRE
/// etype values; any nonzero value fails the kernel's and uadk's checks.)
pub const ETYPE_PARAM: u16 = 0x1;
/// Model's `etype` for a DMA address fault (paired with [`ETYPE1_ADDR`]).
pub const ETYPE_ADDR: u16 = 0x2;
/// Model's `etype` for an injected hardware error.
pub const ETYPE_HW: u16 = 0x4;
/// `etype1` bit 5: uadk's SVA prefetch (address) error.
pub const ETYPE1_ADDR: u16 = 1 << 5;

/// The fields of an HPRE SQE the device uses, read from its 16 words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpreSqe {
    /// Algorithm code.
    pub alg: u8,
    /// Error type as submitted (software sets 0).
    pub etype: u16,
    /// Extended error type as submitted.
    pub etype1: u16,
    /// Done field as submitted (software sets 1).
    pub done: u8,
    /// Operand length in 64-bit words minus one.
    pub task_len1: u8,
    /// Key block device address.
    pub key: u64,
    /// Input operand device address.
    pub input: u64,
    /// Output buffer device address.
    pub out: u64,
}

fn u64_at(words: &[u32], byte: usize) -> u64 {
    let i = byte / 4;
    u64::from(words[i]) | (u64::from(words[i + 1]) << 32)
}

impl HpreSqe {
    /// Reads the fields out of the SQE words (`words.len() >= 16`).
    pub fn decode(words: &[u32; SQE_WORDS]) -> HpreSqe {
        let dw0 = words[0];
        HpreSqe {
            alg: ((dw0 >> ALG_SHIFT) & ALG_MASK) as u8,
            etype: ((dw0 >> ETYPE_SHIFT) & ETYPE_MASK) as u16,
            etype1: ((dw0 >> ETYPE1_SHIFT) & ETYPE1_MASK) as u16,
            done: ((dw0 >> DONE_SHIFT) & DONE_MASK) as u8,
            task_len1: (words[1] & TASK_LEN1_MASK) as u8,
            key: u64_at(words, KEY_OFFSET),
            input: u64_at(words, IN_OFFSET),
            out: u64_at(words, OUT_OFFSET),
        }
    }

    /// Key size in bytes named by `task_len1`.
    pub fn key_bytes(&self) -> usize {
        (usize::from(self.task_len1) + 1) * 8
    }
}

/// dw0 as the device writes it back: `alg` kept, `done` = 3, the given error types.
pub fn completed_dw0(dw0: u32, etype: u16, etype1: u16) -> u32 {
    (dw0 & (ALG_MASK << ALG_SHIFT))
        | ((u32::from(etype) & ETYPE_MASK) << ETYPE_SHIFT)
        | ((u32::from(etype1) & ETYPE1_MASK) << ETYPE1_SHIFT)
        | (DONE_DONE << DONE_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_from_bytes(b: &[u8; 64]) -> [u32; 16] {
        let mut w = [0u32; 16];
        for (i, c) in b.chunks_exact(4).enumerate() {
            w[i] = u32::from_le_bytes(c.try_into().unwrap());
        }
        w
    }

    #[test]
    fn dw0_bit_positions() {
        // alg [4:0], etype [15:5], etype1 [29:16], done [31:30].
        let w = |dw0: u32| {
            let mut a = [0u32; 16];
            a[0] = dw0;
            HpreSqe::decode(&a)
        };
        assert_eq!(w(0x1f).alg, 0x1f);
        assert_eq!(w(0x20).alg, 0);
        assert_eq!(w(0x20).etype, 1);
        assert_eq!(w(0xffe0).etype, 0x7ff);
        assert_eq!(w(0x1_0000).etype, 0);
        assert_eq!(w(0x1_0000).etype1, 1);
        assert_eq!(w(0x3fff_0000).etype1, 0x3fff);
        assert_eq!(w(0x4000_0000).done, 1);
        assert_eq!(w(0x4000_0000).etype1, 0);
        assert_eq!(w(0xc000_0000).done, 3);
    }

    #[test]
    fn byte_offsets_of_addresses_and_task_len() {
        let mut b = [0u8; 64];
        b[4] = 31; // dw1 [7:0] task_len1
        b[5] = 0xaa; // task_len2: not part of task_len1
        b[8..16].copy_from_slice(&0x1111_2222_3333_4444u64.to_le_bytes());
        b[16..24].copy_from_slice(&0x5555_6666_7777_8888u64.to_le_bytes());
        b[24..32].copy_from_slice(&0x9999_aaaa_bbbb_ccccu64.to_le_bytes());
        let s = HpreSqe::decode(&words_from_bytes(&b));
        assert_eq!(s.task_len1, 31);
        assert_eq!(s.key_bytes(), 256);
        assert_eq!(s.key, 0x1111_2222_3333_4444);
        assert_eq!(s.input, 0x5555_6666_7777_8888);
        assert_eq!(s.out, 0x9999_aaaa_bbbb_cccc);
        assert_eq!(
            (KEY_OFFSET, IN_OFFSET, OUT_OFFSET, TAG_OFFSET),
            (8, 16, 24, 32)
        );
    }

    #[test]
    fn task_len1_key_sizes() {
        for (len1, bits) in [(15u8, 1024usize), (31, 2048), (47, 3072), (63, 4096)] {
            let mut a = [0u32; 16];
            a[1] = u32::from(len1);
            assert_eq!(HpreSqe::decode(&a).key_bytes() * 8, bits);
        }
    }

    #[test]
    fn completion_word() {
        // alg kept, done = 3, errors in place, the submitted etype cleared.
        let dw0 = (1 << 30) | (0x7ff << 5) | 1;
        assert_eq!(completed_dw0(dw0, 0, 0), 0xc000_0001);
        assert_eq!(
            completed_dw0(0x4000_0000, ETYPE_ADDR, ETYPE1_ADDR),
            0xc000_0000 | (2 << 5) | (1 << (16 + 5))
        );
    }
}
