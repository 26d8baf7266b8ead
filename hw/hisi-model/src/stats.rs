//! Counters of what the model's devices did, readable by tests and benchmarks.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a backend's counters (all devices, this process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelStats {
    /// Requests completed with a success status.
    pub completed_ok: u64,
    /// Requests completed with an error status (address faults included).
    pub completed_error: u64,
    /// Requests failed because a DMA address was not mapped (subset of `completed_error`).
    pub address_faults: u64,
    /// Doorbells accepted (right offset, queue number and command).
    pub doorbells: u64,
    /// Doorbell stores ignored: wrong offset, queue number, command or index.
    pub bad_doorbells: u64,
    /// SQ doorbells dropped by fault injection.
    pub lost_doorbells: u64,
    /// CQEs written (corrupted ones included).
    pub cqes_written: u64,
    /// CQEs written with a corrupted `sq_head` by fault injection.
    pub corrupted_cqes: u64,
    /// Requests taken and never completed (stall knob).
    pub stalled: u64,
    /// Times a queue stopped because its CQ had no free slot (RX-stop set).
    pub cq_overflows: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub completed_ok: AtomicU64,
    pub completed_error: AtomicU64,
    pub address_faults: AtomicU64,
    pub doorbells: AtomicU64,
    pub bad_doorbells: AtomicU64,
    pub lost_doorbells: AtomicU64,
    pub cqes_written: AtomicU64,
    pub corrupted_cqes: AtomicU64,
    pub stalled: AtomicU64,
    pub cq_overflows: AtomicU64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> ModelStats {
        ModelStats {
            completed_ok: self.completed_ok.load(Relaxed),
            completed_error: self.completed_error.load(Relaxed),
            address_faults: self.address_faults.load(Relaxed),
            doorbells: self.doorbells.load(Relaxed),
            bad_doorbells: self.bad_doorbells.load(Relaxed),
            lost_doorbells: self.lost_doorbells.load(Relaxed),
            cqes_written: self.cqes_written.load(Relaxed),
            corrupted_cqes: self.corrupted_cqes.load(Relaxed),
            stalled: self.stalled.load(Relaxed),
            cq_overflows: self.cq_overflows.load(Relaxed),
        }
    }
}
