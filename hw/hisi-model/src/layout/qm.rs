//! QM queue layout: DUS region geometry (docs/hardware-interface.md §3.3), doorbell words
//! (§3.4) and the CQE (§3.5).

#![forbid(unsafe_code)]

/// Bytes per completion queue entry (`struct qm_cqe`).
pub const CQE_SIZE: usize = 16;
/// Byte offset of `sq_head` (u16): the SQ slot the completion is for.
pub const CQE_SQ_HEAD: usize = 8;
/// Byte offset of `sq_num` (u16): the queue number.
pub const CQE_SQ_NUM: usize = 10;
/// Byte offset of `w7` (u16), whose bit 0 is the phase.
pub const CQE_W7: usize = 14;
/// The phase bit within `w7`.
pub const CQE_PHASE: u16 = 1;

/// Doorbell offset inside the MMIO region on v1 (`QM_DOORBELL_BASE_V1`).
pub const DOORBELL_OFFSET_V1: usize = 0x340;
/// Doorbell offset inside the MMIO region on v2/v3 (`QM_DOORBELL_SQ_CQ_BASE_V2`).
pub const DOORBELL_OFFSET_V2: usize = 0x1000;

/// Doorbell command: new SQ tail.
pub const CMD_SQ: u16 = 0;
/// Doorbell command: new CQ head (priority 1 arms the completion event).
pub const CMD_CQ: u16 = 1;

/// `QM_MAX_QC_TYPE`: the kernel rejects larger `qc_type` values in SET_QP_CTX.
pub const MAX_QC_TYPE: u16 = 2;

/// Which doorbell word format a hardware version uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorbellFormat {
    /// `qm_db_v1`: qn [15:0], cmd [31:16], index [47:32], priority [63:48].
    V1,
    /// `qm_db_v2` (v2 and v3): qn [11:0], cmd [15:12], rand [31:16], index [47:32],
    /// priority [63:48].
    V2,
}

impl DoorbellFormat {
    /// Byte offset of the doorbell register inside the queue's MMIO region.
    pub fn offset(self) -> usize {
        match self {
            DoorbellFormat::V1 => DOORBELL_OFFSET_V1,
            DoorbellFormat::V2 => DOORBELL_OFFSET_V2,
        }
    }

    /// `region_mmio_size` for this version without doorbell isolation.
    pub fn mmio_size(self, page: usize) -> usize {
        match self {
            DoorbellFormat::V1 => page,
            DoorbellFormat::V2 => (1 + 0x1000 / page) * page,
        }
    }
}

/// One decoded 64-bit doorbell store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doorbell {
    /// Queue number.
    pub qn: u16,
    /// Command ([`CMD_SQ`], [`CMD_CQ`], or a kernel-only one).
    pub cmd: u16,
    /// New SQ tail or new CQ head.
    pub index: u16,
    /// 0, or 1 on a CQ doorbell to arm the completion event.
    pub priority: u16,
}

impl Doorbell {
    /// Reads a doorbell word as the device does.
    pub fn decode(format: DoorbellFormat, value: u64) -> Doorbell {
        let index = (value >> 32) as u16;
        let priority = (value >> 48) as u16;
        match format {
            DoorbellFormat::V1 => Doorbell {
                qn: value as u16,
                cmd: (value >> 16) as u16,
                index,
                priority,
            },
            DoorbellFormat::V2 => Doorbell {
                qn: (value & 0xfff) as u16,
                cmd: ((value >> 12) & 0xf) as u16,
                index,
                priority,
            },
        }
    }
}

/// Geometry of a queue's DUS region: SQ, CQ right after it, status page last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DusLayout {
    /// Bytes per SQE.
    pub sqe_size: usize,
    /// SQ entries.
    pub sq_depth: usize,
    /// CQ entries.
    pub cq_depth: usize,
    /// The kernel's page size.
    pub page: usize,
}

impl DusLayout {
    /// `PAGE_ALIGN(sqe_size*sq_depth + 16*cq_depth) + PAGE_SIZE` (= `region_dus_size`).
    pub fn size(&self) -> usize {
        let rings = self.sqe_size * self.sq_depth + CQE_SIZE * self.cq_depth;
        rings.div_ceil(self.page) * self.page + self.page
    }

    /// Byte offset of SQ slot `i`.
    pub fn sqe(&self, i: usize) -> usize {
        i * self.sqe_size
    }

    /// Byte offset of the CQ (right after the SQ; not page-aligned in general).
    pub fn cq(&self) -> usize {
        self.sqe_size * self.sq_depth
    }

    /// Byte offset of CQ slot `i`.
    pub fn cqe(&self, i: usize) -> usize {
        self.cq() + i * CQE_SIZE
    }

    /// Byte offset of the TX-stop word (u32).
    pub fn tx_stop(&self) -> usize {
        self.size() - 4
    }

    /// Byte offset of the RX-stop word (u32).
    pub fn rx_stop(&self) -> usize {
        self.size() - 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cqe_fields_sit_at_hw_spec_offsets() {
        assert_eq!(CQE_SIZE, 16);
        assert_eq!(CQE_SQ_HEAD, 8);
        assert_eq!(CQE_SQ_NUM, 10);
        assert_eq!(CQE_W7, 14);
        assert_eq!(CQE_PHASE, 1 << 0);
    }

    #[test]
    fn doorbell_offsets_and_mmio_sizes() {
        assert_eq!(DoorbellFormat::V1.offset(), 0x340);
        assert_eq!(DoorbellFormat::V2.offset(), 0x1000);
        assert_eq!(DoorbellFormat::V1.mmio_size(4096), 4096);
        assert_eq!(DoorbellFormat::V2.mmio_size(4096), 8192);
        assert_eq!(DoorbellFormat::V1.mmio_size(65536), 65536);
        assert_eq!(DoorbellFormat::V2.mmio_size(65536), 65536);
        assert_eq!((CMD_SQ, CMD_CQ), (0, 1));
    }

    #[test]
    fn v1_doorbell_bits() {
        // qn [15:0] = 0xabcd, cmd [31:16] = 1, index [47:32] = 0x1234, priority [63:48] = 1.
        let v = 0x0001_1234_0001_abcd_u64;
        assert_eq!(
            Doorbell::decode(DoorbellFormat::V1, v),
            Doorbell {
                qn: 0xabcd,
                cmd: 1,
                index: 0x1234,
                priority: 1
            }
        );
    }

    #[test]
    fn v2_doorbell_bits() {
        // qn [11:0] = 0x3ff, cmd [15:12] = 1, rand [31:16] = 0xbeef (ignored),
        // index [47:32] = 0x03ff, priority [63:48] = 1.
        let v = 0x0001_03ff_beef_13ff_u64;
        assert_eq!(
            Doorbell::decode(DoorbellFormat::V2, v),
            Doorbell {
                qn: 0x3ff,
                cmd: 1,
                index: 0x3ff,
                priority: 1
            }
        );
        // Single bits land in their fields only.
        let d = Doorbell::decode(DoorbellFormat::V2, 1 << 11);
        assert_eq!((d.qn, d.cmd), (0x800, 0));
        let d = Doorbell::decode(DoorbellFormat::V2, 1 << 12);
        assert_eq!((d.qn, d.cmd), (0, 1));
        let d = Doorbell::decode(DoorbellFormat::V2, 1 << 32);
        assert_eq!((d.index, d.priority), (1, 0));
        let d = Doorbell::decode(DoorbellFormat::V2, 1 << 48);
        assert_eq!((d.index, d.priority), (0, 1));
    }

    #[test]
    fn dus_worked_sizes_from_hw_spec() {
        // HPRE, 4 KiB pages: SQ 0..0x10000, CQ 0x10000..0x14000, status 0x14000, size 0x15000.
        let l = DusLayout {
            sqe_size: 64,
            sq_depth: 1024,
            cq_depth: 1024,
            page: 4096,
        };
        assert_eq!(l.cq(), 0x10000);
        assert_eq!(l.cqe(1023) + CQE_SIZE, 0x14000);
        assert_eq!(l.size(), 0x15000);
        assert_eq!(l.tx_stop(), 0x15000 - 4);
        assert_eq!(l.rx_stop(), 0x15000 - 8);
        // HPRE, 64 KiB pages: size 0x30000.
        assert_eq!(DusLayout { page: 65536, ..l }.size(), 0x30000);
        // ZIP, 4 KiB and 64 KiB pages: 0x25000 and 0x40000, CQ at 0x20000.
        let z = DusLayout { sqe_size: 128, ..l };
        assert_eq!(z.cq(), 0x20000);
        assert_eq!(z.size(), 0x25000);
        assert_eq!(DusLayout { page: 65536, ..z }.size(), 0x40000);
        // The CQ is not page-aligned in general.
        let odd = DusLayout {
            sqe_size: 64,
            sq_depth: 3,
            cq_depth: 3,
            page: 4096,
        };
        assert_eq!(odd.cq(), 192);
        assert_eq!(odd.sqe(2), 128);
        assert_eq!(odd.size(), 8192);
    }
}
