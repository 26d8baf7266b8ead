//! The model's own reading of the QM mailbox and queue contexts as a VF's register BAR
//! presents them (docs/hardware-interface.md §6.5). Written from the same public facts as
//! the driver (Linux `hisi_acc_qm.h`/`qm.c`, OP-TEE `hisi_qm.c`) but shares no code with
//! it: a test pins every number here.

#![forbid(unsafe_code)]

/// The mailbox's first byte in BAR2 (128 bits wide).
pub const MB_OFFSET: usize = 0x300;
/// Where a read command's 64-bit answer appears (low, high u32).
pub const MB_DATA_LO: usize = 0x304;
/// High half of the answer.
pub const MB_DATA_HI: usize = 0x308;
/// The v2 doorbell in BAR2 (all queues of the function; qn in the word).
pub const DOORBELL: usize = 0x1000;
/// Bytes of the model's VF BAR2 (mailbox, interrupt masks, doorbell page).
pub const BAR_SIZE: usize = 0x4000;
/// The VF's event-queue interrupt mask register.
pub const EQ_INT_MASK: usize = 0xc;
/// The VF's async-event-queue interrupt mask register.
pub const AEQ_INT_MASK: usize = 0x4;

/// Bits of the mailbox's first 16-bit word.
pub mod w0 {
    /// Command, `[7:0]`.
    pub const CMD_MASK: u64 = 0xff;
    /// Status, `[12:9]`: non-zero when the command failed.
    pub const STATUS_SHIFT: u32 = 9;
    /// Busy, bit 13: set by the writer, cleared by the device when done.
    pub const BUSY: u64 = 1 << 13;
    /// Op, bit 14: 1 = read.
    pub const READ: u64 = 1 << 14;
}

/// Command codes.
pub mod cmd {
    /// SQ context of one queue.
    pub const SQC: u8 = 0;
    /// CQ context of one queue.
    pub const CQC: u8 = 1;
    /// Event queue context.
    pub const EQC: u8 = 2;
    /// Async event queue context.
    pub const AEQC: u8 = 3;
    /// SQC table base.
    pub const SQC_BT: u8 = 4;
    /// CQC table base.
    pub const CQC_BT: u8 = 5;
    /// The function's queue range (read).
    pub const SQC_VFT: u8 = 6;
    /// Stop one queue (v3).
    pub const STOP_QP: u8 = 8;
}

/// Failure codes the model writes into the status field (the hardware's values are not
/// public; any non-zero value means failure).
pub mod status {
    /// A context or table the model cannot use (bad size, depth, type, CQ number).
    pub const BAD_CONTEXT: u16 = 0x1;
    /// A DMA address outside the function's IOMMU mappings (or pinned memory).
    pub const DMA_FAULT: u16 = 0x2;
    /// A command the model does not implement (EQC, AEQC, unknown codes).
    pub const UNSUPPORTED: u16 = 0x3;
    /// A queue context before its table base was given.
    pub const NO_TABLE: u16 = 0x4;
}

/// Bytes of a queue context.
pub const QC_SIZE: usize = 32;

/// A decoded 128-bit mailbox store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbCommand {
    /// Command code.
    pub cmd: u8,
    /// Read (op 1).
    pub read: bool,
    /// Busy bit as written.
    pub busy: bool,
    /// Queue number.
    pub queue: u16,
    /// Data address.
    pub base: u64,
}

impl MbCommand {
    /// Reads the store's two 64-bit halves (low address first).
    pub fn decode(lo: u64, hi: u64) -> MbCommand {
        MbCommand {
            cmd: (lo & w0::CMD_MASK) as u8,
            read: lo & w0::READ != 0,
            busy: lo & w0::BUSY != 0,
            queue: (lo >> 16) as u16,
            base: (lo >> 32) | ((hi & 0xffff_ffff) << 32),
        }
    }
}

/// The function's queue range as the SQC VFT read answers it: first queue at bit 28,
/// number − 1 at bit 45, valid bit 44.
pub fn vft_word(base: u16, num: u16) -> u64 {
    (u64::from(base) << 28) | (1 << 44) | (u64::from(num.max(1) - 1) << 45)
}

/// An SQ context as the device reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sqc {
    /// Ring base (device address).
    pub base: u64,
    /// Entries (dw3 `[11:0]` + 1).
    pub depth: usize,
    /// Bytes per SQE (1 << dw3 `[15:12]`).
    pub sqe_size: usize,
    /// The CQ it completes to.
    pub cq_num: u16,
    /// Algorithm type (w13 `[11:8]`): the queue's qc_type.
    pub alg_type: u16,
    /// PASID enable (w11 bit 7).
    pub pasid_enable: bool,
}

impl Sqc {
    /// Decodes 32 context bytes.
    pub fn decode(b: &[u8; QC_SIZE]) -> Sqc {
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let dw3 = u32_at(12);
        Sqc {
            base: u64::from(u32_at(4)) | (u64::from(u32_at(8)) << 32),
            depth: (dw3 & 0xfff) as usize + 1,
            sqe_size: 1usize << ((dw3 >> 12) & 0xf),
            cq_num: u16_at(24),
            alg_type: (u16_at(26) >> 8) & 0xf,
            pasid_enable: u16_at(22) & (1 << 7) != 0,
        }
    }
}

/// A CQ context as the device reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cqc {
    /// Ring base.
    pub base: u64,
    /// Entries.
    pub depth: usize,
    /// log2 of the CQE size (4: 16 bytes).
    pub cqe_size_code: u32,
    /// Initial phase (dw6 bit 0).
    pub phase: bool,
    /// Completion events wanted (dw6 bit 1).
    pub events: bool,
}

impl Cqc {
    /// Decodes 32 context bytes.
    pub fn decode(b: &[u8; QC_SIZE]) -> Cqc {
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let dw3 = u32_at(12);
        let dw6 = u32_at(24);
        Cqc {
            base: u64::from(u32_at(4)) | (u64::from(u32_at(8)) << 32),
            depth: (dw3 & 0xfff) as usize + 1,
            cqe_size_code: (dw3 >> 12) & 0xf,
            phase: dw6 & 1 != 0,
            events: dw6 & 2 != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_and_context_fields_at_their_public_offsets() {
        assert_eq!(
            (MB_OFFSET, MB_DATA_LO, MB_DATA_HI, DOORBELL),
            (0x300, 0x304, 0x308, 0x1000)
        );
        assert_eq!(
            (w0::BUSY, w0::READ, w0::STATUS_SHIFT),
            (1 << 13, 1 << 14, 9)
        );
        assert_eq!(
            (cmd::SQC_BT, cmd::CQC_BT, cmd::SQC_VFT, cmd::STOP_QP),
            (4, 5, 6, 8)
        );
        // cmd 1 (CQC), busy, queue 7, base 0x1_2345_6789.
        let c = MbCommand::decode(1 | 1 << 13 | 7 << 16 | 0x2345_6789 << 32, 0x1);
        assert_eq!(
            c,
            MbCommand {
                cmd: 1,
                read: false,
                busy: true,
                queue: 7,
                base: 0x1_2345_6789
            }
        );
        assert_eq!(vft_word(0, 2) >> 45, 1);
        let mut b = [0u8; 32];
        b[4..8].copy_from_slice(&0x1000u32.to_le_bytes());
        b[8..12].copy_from_slice(&0x10u32.to_le_bytes());
        b[12..16].copy_from_slice(&(0x3ffu32 | 6 << 12).to_le_bytes());
        b[24..26].copy_from_slice(&3u16.to_le_bytes());
        b[26..28].copy_from_slice(&(0x10u16 | 1 << 8).to_le_bytes());
        let s = Sqc::decode(&b);
        assert_eq!(
            (s.base, s.depth, s.sqe_size, s.cq_num, s.alg_type),
            (0x10_0000_1000, 1024, 64, 3, 1)
        );
        b[24..28].copy_from_slice(&3u32.to_le_bytes());
        b[12..16].copy_from_slice(&(0x3ffu32 | 4 << 12).to_le_bytes());
        let c = Cqc::decode(&b);
        assert_eq!(
            (c.depth, c.cqe_size_code, c.phase, c.events),
            (1024, 4, true, true)
        );
    }
}
