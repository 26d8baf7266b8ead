//! Doorbell words: one 64-bit store into the MMIO page (docs/hardware-interface.md §3.4).
//!
//! | bits    | v1 (`+0x340`) | v2/v3 (`+0x1000`)                 |
//! |---------|---------------|-----------------------------------|
//! | `[15:0]`  | qn            | `[11:0]` qn, `[15:12]` cmd            |
//! | `[31:16]` | cmd           | rand_data, always 0               |
//! | `[47:32]` | index         | index                             |
//! | `[63:48]` | priority      | priority                          |

#![forbid(unsafe_code)]

/// The doorbell command: which ring the index belongs to. EQ (2) and AEQ (3) exist but are
/// the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DoorbellCmd {
    /// New SQ tail: work submitted.
    Sq = 0,
    /// New CQ head: completions consumed.
    Cq = 1,
}

/// Layout and place of the doorbell word, chosen by the api version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorbellFormat {
    /// `hisi_qm_v1`: at MMIO `+0x340`, 16-bit qn and cmd.
    V1,
    /// `hisi_qm_v2` and later: at MMIO `+0x1000`, 12-bit qn, 4-bit cmd.
    V2,
}

/// Doorbell offset in the MMIO region for v1 (`QM_DOORBELL_BASE_V1`).
pub const DOORBELL_OFFSET_V1: usize = 0x340;
/// Doorbell offset in the MMIO region for v2 and later (`QM_DOORBELL_SQ_CQ_BASE_V2`).
pub const DOORBELL_OFFSET_V2: usize = 0x1000;

const V1_CMD_SHIFT: u32 = 16;
const V2_QN_MASK: u16 = 0xfff;
const V2_CMD_SHIFT: u32 = 12;
const V2_RAND_SHIFT: u32 = 16;
const INDEX_SHIFT: u32 = 32;
const PRIORITY_SHIFT: u32 = 48;

impl DoorbellFormat {
    /// Byte offset of the doorbell in the MMIO region.
    pub const fn offset(self) -> usize {
        match self {
            DoorbellFormat::V1 => DOORBELL_OFFSET_V1,
            DoorbellFormat::V2 => DOORBELL_OFFSET_V2,
        }
    }

    /// The largest queue number the format can carry.
    pub const fn max_qn(self) -> u16 {
        match self {
            DoorbellFormat::V1 => u16::MAX,
            DoorbellFormat::V2 => V2_QN_MASK,
        }
    }

    /// The 64-bit doorbell word. `qn` must be at most [`DoorbellFormat::max_qn`] (the ring
    /// checks it once when it is built); wider bits are masked off here.
    pub const fn encode(self, qn: u16, cmd: DoorbellCmd, index: u16, priority: u16) -> u64 {
        let tail = ((index as u64) << INDEX_SHIFT) | ((priority as u64) << PRIORITY_SHIFT);
        match self {
            DoorbellFormat::V1 => qn as u64 | ((cmd as u64) << V1_CMD_SHIFT) | tail,
            DoorbellFormat::V2 => {
                let rand_data = 0u64;
                (qn & V2_QN_MASK) as u64
                    | ((cmd as u64 & 0xf) << V2_CMD_SHIFT)
                    | (rand_data << V2_RAND_SHIFT)
                    | tail
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_word_fields() {
        let f = DoorbellFormat::V1;
        assert_eq!(f.encode(0, DoorbellCmd::Sq, 0, 0), 0);
        assert_eq!(f.encode(0xbeef, DoorbellCmd::Sq, 0, 0), 0xbeef);
        assert_eq!(f.encode(0, DoorbellCmd::Cq, 0, 0), 1 << 16);
        assert_eq!(f.encode(0, DoorbellCmd::Sq, 0x3ff, 0), 0x3ff << 32);
        assert_eq!(f.encode(0, DoorbellCmd::Cq, 0, 1), (1 << 48) | (1 << 16));
        assert_eq!(
            f.encode(0x0123, DoorbellCmd::Cq, 0x4567, 0x89ab),
            0x89ab_4567_0001_0123
        );
    }

    #[test]
    fn v2_word_fields() {
        let f = DoorbellFormat::V2;
        assert_eq!(f.encode(0xabc, DoorbellCmd::Sq, 0, 0), 0xabc);
        assert_eq!(f.encode(0, DoorbellCmd::Cq, 0, 0), 1 << 12);
        assert_eq!(
            f.encode(5, DoorbellCmd::Cq, 7, 0),
            (7 << 32) | (1 << 12) | 5
        );
        assert_eq!(
            f.encode(0x123, DoorbellCmd::Cq, 0x4567, 0x89ab),
            0x89ab_4567_0000_1123
        );
        // qn never spills into cmd, and rand_data [31:16] stays zero.
        let w = f.encode(u16::MAX, DoorbellCmd::Sq, u16::MAX, u16::MAX);
        assert_eq!(w & 0xffff, 0x0fff);
        assert_eq!((w >> 16) & 0xffff, 0);
        assert_eq!(f.max_qn(), 0xfff);
    }
}
