//! Memory barriers between the CPU and a DMA-capable device.
//!
//! On aarch64 these are the barriers the kernel and uadk use (`dsb sy` before a doorbell,
//! `dsb ld` after seeing a completion). On other architectures (the device model runs on
//! x86_64 hosts) a sequentially consistent fence orders the CPU against the model's threads.

use std::sync::atomic::{fence, Ordering};

/// Full barrier: all prior memory writes are visible to the device before what follows
/// (the SQE before the doorbell).
#[inline(always)]
pub fn mb() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `dsb sy` only orders memory accesses; it has no other effect.
    unsafe {
        std::arch::asm!("dsb sy", options(nostack, preserves_flags));
    }
    fence(Ordering::SeqCst);
}

/// Read barrier: reads after it see data the device wrote before the completion we read.
#[inline(always)]
pub fn rmb() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `dsb ld` only orders memory loads; it has no other effect.
    unsafe {
        std::arch::asm!("dsb ld", options(nostack, preserves_flags));
    }
    fence(Ordering::Acquire);
}
