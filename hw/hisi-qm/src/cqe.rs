//! The 16-byte completion entry (`struct qm_cqe`, docs/hardware-interface.md §3.5).
//!
//! | byte | field                                   |
//! |------|-----------------------------------------|
//! | 0    | rsvd0: u32                              |
//! | 4    | cmd_id: u16 (unused)                    |
//! | 8    | sq_head: u16, the completed SQE's slot  |
//! | 10   | sq_num: u16, the queue number           |
//! | 14   | w7: u16, bit 0 = phase                  |

#![forbid(unsafe_code)]

use wd_core::Region;

/// Bytes per CQE.
pub const CQE_SIZE: usize = 16;
/// Byte offset of `sq_head`.
pub const CQE_SQ_HEAD: usize = 8;
/// Byte offset of `sq_num`.
pub const CQE_SQ_NUM: usize = 10;
/// Byte offset of `w7`, whose bit 0 is the phase.
pub const CQE_W7: usize = 14;
/// The phase bit in `w7`.
pub const CQE_PHASE_BIT: u16 = 1;

/// The fields of a CQE the driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cqe {
    /// Slot of the completed SQE.
    pub sq_head: u16,
    /// Queue number the device put in.
    pub sq_num: u16,
    /// Phase bit.
    pub phase: bool,
}

/// Phase bit of the CQE at byte `off` of `mem` (one 16-bit load).
pub fn read_phase(mem: &Region, off: usize) -> bool {
    mem.read_u16(off + CQE_W7) & CQE_PHASE_BIT != 0
}

/// Reads the CQE at byte `off` of `mem`. Read the phase first, then a read barrier, then this.
pub fn read(mem: &Region, off: usize) -> Cqe {
    Cqe {
        sq_head: mem.read_u16(off + CQE_SQ_HEAD),
        sq_num: mem.read_u16(off + CQE_SQ_NUM),
        phase: read_phase(mem, off),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_sit_at_the_spec_offsets() {
        let r = Region::anonymous(4096).unwrap();
        // A CQE written byte by byte as the hardware would lay it out, at entry 3.
        let off = 3 * CQE_SIZE;
        let mut raw = [0u8; 16];
        raw[8..10].copy_from_slice(&0x0123u16.to_le_bytes());
        raw[10..12].copy_from_slice(&0x0045u16.to_le_bytes());
        raw[14..16].copy_from_slice(&0xfffeu16.to_le_bytes()); // status bits set, phase 0
        r.write_bytes(off, &raw);
        assert_eq!(
            read(&r, off),
            Cqe {
                sq_head: 0x123,
                sq_num: 0x45,
                phase: false
            }
        );
        r.write_bytes(off + 14, &[0x01, 0x00]);
        assert!(read_phase(&r, off));
        // Bit 16 of 32-bit word 3 is the same bit (RFC18's reading).
        assert_eq!(r.read_u32(off + 12) >> 16 & 1, 1);
    }
}
