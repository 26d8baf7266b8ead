//! libwd.so: the C face of wd.
//!
//! - [`queue`]: the WarpDrive user API of the 2018 RFC (`wd_request_queue`, `wd_send`,
//!   `wd_recv`, `wd_recv_sync`, `wd_mem_share`, ...), header `include/wd/queue.h`.
//! - [`comp`]: streaming deflate/zlib/gzip compression with a stream struct of our own
//!   (`wd_` names, never clashing with zlib's), header `include/wd/comp.h`.
//!
//! `include/wd.h` includes both. Every exported function checks its pointers, runs the safe
//! core inside [`guard`], and reports failure as a negative errno; no panic unwinds into C.

pub mod comp;
pub mod queue;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Plugs what the device selection needs from above wd-core, before anything selects
/// devices: the HiSilicon QM bring-up for VFIO-bound functions (`WD_DEVICES=vfio`), and
/// the device model in builds that carry it (feature `model`); in production builds,
/// `WD_DEVICES=model` and `fake-uacce:` are refused with a clear error instead.
/// Once per process: later calls (one per queue or stream opened) do nothing.
pub(crate) fn plug_devices() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        hisi_qm::vfio_bringup::plug();
        #[cfg(feature = "model")]
        hisi_model::plug();
    });
}

/// Runs `f`, turning a panic into `-EFAULT`-style failure (`-libc::EIO`), so nothing unwinds
/// across the C boundary. `f` returns a C status (0 or a positive count on success, a
/// negative errno on failure).
pub fn guard(f: impl FnOnce() -> i32) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            wd_core::wd_log!(Error, "internal error (panic) caught at the C boundary");
            -libc::EIO
        }
    }
}

/// The negative errno a C caller sees for `e`.
pub fn status(e: &wd_core::Error) -> i32 {
    -e.errno()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_code() {
        assert_eq!(guard(|| panic!("boom")), -libc::EIO);
        assert_eq!(guard(|| 7), 7);
        assert_eq!(status(&wd_core::Error::RingFull), -libc::EAGAIN);
    }
}
