//! libwdz.so: the zlib 1.2.x ABI on the HiSilicon ZIP engine, for programs that do not
//! know wd (`LD_PRELOAD=libwdz.so`, or installed in place of `libz.so.1`).
//!
//! - [`ffi`]: the exported C functions (zlib's names), thin shims over the safe core.
//! - [`deflate`]: one deflate stream: routing (device or software), zlib's flush and
//!   return-code semantics, device segments and the hand-over to software.
//! - [`inflate`]: one inflate stream on the device (header, body, replay log).
//! - [`soft`]: the zlib-rs engine (`libz-rs-sys`'s Rust functions, never its symbols).
//! - [`outbuf`]: the caller's output window.
//! - [`config`]: `WD_ZLIB_*` settings; [`stats`]: per-process counter files for `wd stats`.
//!
//! Inflate streams whose first call qualifies run on the device; the gz* file API,
//! checksums and the one-shot decompressors are zlib-rs's; see `zlib/DESIGN.md`.

pub mod config;
pub mod deflate;
pub mod ffi;
pub mod inflate;
pub mod outbuf;
pub mod soft;
pub mod stats;

/// Process-wide set-up before the first stream: the HiSilicon QM bring-up for
/// VFIO-bound functions (`WD_DEVICES=vfio`), and the device model in builds that carry it
/// (feature `model`; `WD_DEVICES=model`), are plugged into wd's device selection.
pub(crate) fn init_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        hisi_qm::vfio_bringup::plug();
        #[cfg(feature = "model")]
        hisi_model::plug();
    });
}
