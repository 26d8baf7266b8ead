//! The QM mailbox: how a function's driver hands the hardware its queue contexts
//! (docs/hardware-interface.md §6.5). Facts from Linux `include/linux/hisi_acc_qm.h` and
//! `drivers/crypto/hisilicon/qm.c` (`qm_mb_pre_init`, `qm_mb_write`,
//! `hisi_qm_wait_mb_ready`, `qm_get_vft_v2`), the status field from OP-TEE's
//! `core/drivers/crypto/hisilicon/hisi_qm.c` (`qm_wait_mb_finish`).
//!
//! The mailbox is 128 bits at BAR2 + 0x300:
//!
//! | bytes | field | meaning |
//! |---|---|---|
//! | 0–1 | `w0` | `[7:0]` command, `[8]` event, `[12:9]` status (non-zero: failed), `[13]` busy, `[14]` op (1 = read) |
//! | 2–3 | `queue_num` | the function-relative queue the command is for |
//! | 4–7 | `base_l` | low half of the DMA address of the command's data (`QM_MB_CMD_DATA_ADDR_L` = 0x304) |
//! | 8–11 | `base_h` | high half (`QM_MB_CMD_DATA_ADDR_H` = 0x308) |
//! | 12–15 | `rsvd` | 0 |
//!
//! A command is sent by waiting for busy (bit 13 of the word at 0x300) to be clear, writing
//! all 128 bits in one store with busy set (the kernel: one arm64 `stp` — "128 bit should
//! be written to hardware at one time to trigger a mailbox"), and waiting for busy to clear
//! again. A read command (op 1) returns its 64-bit answer in the data address registers.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use wd_core::{Error, Region, Result};

/// `QM_MB_CMD_SEND_BASE`.
pub const MB_BASE: usize = 0x300;
/// `QM_MB_CMD_DATA_ADDR_L`.
pub const MB_DATA_L: usize = 0x304;
/// `QM_MB_CMD_DATA_ADDR_H`.
pub const MB_DATA_H: usize = 0x308;
/// `QM_MB_EVENT_SHIFT`.
pub const MB_EVENT_SHIFT: u32 = 8;
/// `QM_MB_STATUS_MASK` = GENMASK(12, 9), checked once busy clears (OP-TEE's
/// `qm_wait_mb_finish`; the Linux `qm.c` read for this does not check it).
pub const MB_STATUS_SHIFT: u32 = 9;
/// Width mask of the status field.
pub const MB_STATUS_MASK: u16 = 0xf;
/// `QM_MB_BUSY_SHIFT`.
pub const MB_BUSY_SHIFT: u32 = 13;
/// `QM_MB_OP_SHIFT`: 1 = read.
pub const MB_OP_SHIFT: u32 = 14;

/// Mailbox commands (`QM_MB_CMD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Command {
    /// Write one queue's SQ context.
    Sqc = 0x0,
    /// Write one queue's CQ context.
    Cqc = 0x1,
    /// The event queue context (interrupts; not used without them).
    Eqc = 0x2,
    /// The asynchronous event queue context (errors; not used without interrupts).
    Aeqc = 0x3,
    /// The base of the function's SQC table.
    SqcBt = 0x4,
    /// The base of the function's CQC table.
    CqcBt = 0x5,
    /// The function's queue range (a VF reads it: op 1).
    SqcVft = 0x6,
    /// Stop one queue (v3, `QM_SUPPORT_STOP_QP`).
    StopQp = 0x8,
}

impl Command {
    /// The kernel's name of the command (`QM_MB_CMD_<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Command::Sqc => "SQC",
            Command::Cqc => "CQC",
            Command::Eqc => "EQC",
            Command::Aeqc => "AEQC",
            Command::SqcBt => "SQC_BT",
            Command::CqcBt => "CQC_BT",
            Command::SqcVft => "SQC_VFT",
            Command::StopQp => "STOP_QP",
        }
    }
}

/// `QM_SQC_VFT_BASE_SHIFT_V2`, `QM_SQC_VFT_BASE_MASK_V2` = GENMASK(15, 0).
const VFT_BASE_SHIFT: u32 = 28;
const VFT_BASE_MASK: u64 = 0xffff;
/// `QM_SQC_VFT_NUM_SHIFT_V2`, `QM_SQC_VFT_NUM_MASK_v2` = GENMASK(9, 0); the field holds
/// the number minus one.
const VFT_NUM_SHIFT: u32 = 45;
const VFT_NUM_MASK: u64 = 0x3ff;

/// The first 64 bits (`w0`, `queue_num`, `base_l`) and last 64 bits (`base_h`, `rsvd`)
/// of a mailbox command, busy set.
pub fn encode(cmd: Command, queue: u16, base: u64, read: bool) -> (u64, u64) {
    let w0 = u64::from(cmd as u8) | (u64::from(read) << MB_OP_SHIFT) | (1u64 << MB_BUSY_SHIFT);
    let lo = w0 | (u64::from(queue) << 16) | ((base & 0xffff_ffff) << 32);
    let hi = base >> 32;
    (lo, hi)
}

/// The queue range of a function from its SQC VFT word: (first queue, number of queues).
pub fn decode_vft(vft: u64) -> (u16, u16) {
    let base = ((vft >> VFT_BASE_SHIFT) & VFT_BASE_MASK) as u16;
    let num = ((vft >> VFT_NUM_SHIFT) & VFT_NUM_MASK) as u16 + 1;
    (base, num)
}

/// How long to wait for the busy bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Before sending: a command still running (the kernel: 1 ms, polled every 10 µs).
    pub ready: Duration,
    /// After sending: the command's own time (OP-TEE waits up to 4.2 s; wd 1 s).
    pub finish: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            ready: Duration::from_millis(1),
            finish: Duration::from_secs(1),
        }
    }
}

/// The mailbox of one function's register BAR. Not synchronised: its owner serialises
/// commands (one at a time, as the kernel's `mailbox_lock`).
#[derive(Debug, Clone)]
pub struct Mailbox {
    bar: Region,
    timeouts: Timeouts,
}

fn busy(w0: u32) -> bool {
    (w0 >> MB_BUSY_SHIFT) & 1 == 1
}

impl Mailbox {
    /// The mailbox at `MB_BASE` of `bar`.
    pub fn new(bar: Region, timeouts: Timeouts) -> Result<Mailbox> {
        if bar.len() < MB_BASE + 16 {
            return Err(Error::Unsupported(format!(
                "QM register BAR of {:#x} bytes has no mailbox at {MB_BASE:#x}",
                bar.len()
            )));
        }
        Ok(Mailbox { bar, timeouts })
    }

    fn wait_idle(&self, limit: Duration, what: &str) -> Result<u32> {
        let start = Instant::now();
        loop {
            let w0 = self.bar.read_u32(MB_BASE);
            if !busy(w0) {
                return Ok(w0);
            }
            if start.elapsed() >= limit {
                return Err(Error::Device(format!(
                    "QM mailbox {what}: busy bit still set after {limit:?} (timed out)"
                )));
            }
            std::thread::sleep(Duration::from_micros(10));
        }
    }

    /// Sends `cmd` for `queue` with data address `base` and waits for it; a read command
    /// returns the data address registers' 64 bits.
    pub fn send(&self, cmd: Command, queue: u16, base: u64, read: bool) -> Result<u64> {
        let what = format!("{} for queue {queue}", cmd.name());
        self.wait_idle(self.timeouts.ready, &format!("{what}: before sending"))?;
        let (lo, hi) = encode(cmd, queue, base, read);
        self.bar.write_u128(MB_BASE, lo, hi)?;
        let w0 = self.wait_idle(self.timeouts.finish, &format!("{what}: command"))?;
        let status = (w0 >> MB_STATUS_SHIFT) as u16 & MB_STATUS_MASK;
        if status != 0 {
            return Err(Error::Device(format!(
                "QM mailbox {what} failed: status {status:#x} (w0 {:#06x})",
                w0 & 0xffff
            )));
        }
        Ok(if read {
            u64::from(self.bar.read_u32(MB_DATA_L)) | u64::from(self.bar.read_u32(MB_DATA_H)) << 32
        } else {
            0
        })
    }

    /// The function's queue range (`SQC_VFT` read): (first queue, number).
    pub fn read_vft(&self) -> Result<(u16, u16)> {
        self.send(Command::SqcVft, 0, 0, true).map(decode_vft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_follow_struct_qm_mailbox() {
        // w0 = cmd | op << 14 | busy << 13; queue_num at bits 16..32; base_l 32..64.
        let (lo, hi) = encode(Command::Sqc, 3, 0x1234_5678_9abc_def0, false);
        assert_eq!(lo & 0xffff, 1 << 13);
        assert_eq!((lo >> 16) & 0xffff, 3);
        assert_eq!(lo >> 32, 0x9abc_def0);
        assert_eq!(hi, 0x1234_5678);
        let (lo, hi) = encode(Command::SqcVft, 0, 0, true);
        assert_eq!(lo, 6 | 1 << 14 | 1 << 13);
        assert_eq!(hi, 0);
        assert_eq!(Command::CqcBt as u8, 5);
        assert_eq!(Command::StopQp as u8, 8);
    }

    #[test]
    fn vft_word_gives_the_queue_range() {
        // PF view (qm_vft_data_cfg, v2): base << 28 | valid (bit 44) | (number - 1) << 45.
        let vft = (64u64 << 28) | (1 << 44) | (15u64 << 45);
        assert_eq!(decode_vft(vft), (64, 16));
        assert_eq!(decode_vft(0), (0, 1));
    }

    #[test]
    fn a_bar_without_a_mailbox_is_refused() {
        let r = Region::anonymous(0x100).unwrap();
        assert!(Mailbox::new(r, Timeouts::default()).is_err());
    }
}
