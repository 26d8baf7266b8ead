//! Counters of this process's zlib streams: which went to the device, how many bytes,
//! which stayed in software and why.
//!
//! Kept in memory, or, when a stats directory is configured (`WD_ZLIB_STATS_DIR` or
//! `WD_STATS_DIR`), in a shared mapping of `<dir>/<pid>.zlib` so that `wd stats` and tests
//! read them live from other processes (nginx workers). A forked child starts its own file
//! on its first count. The file is wd-core's [`wd_core::counters`] format with magic
//! `WDZLIB\0\x01`, the counters in [`NAMES`] order.

use wd_core::counters::{CounterSet, Layout};

/// Every counter, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Deflate streams that used the device.
    DeflateOffloaded,
    /// Input bytes compressed by the device.
    DeflateBytesIn,
    /// Output bytes the device produced for them.
    DeflateBytesOut,
    /// Deflate streams in software: offload off or no device.
    FallbackNoDevice,
    /// ... every queue busy (or the device refused one).
    FallbackNoQueue,
    /// ... parameters the device cannot do exactly (window, level 0, strategy, dictionary,
    /// gzip header fields, priming, tuning).
    FallbackParams,
    /// ... input smaller than `WD_ZLIB_MIN_INPUT` before its first flush.
    FallbackSmall,
    /// ... the device failed mid-stream; the rest of the stream ran in software.
    FallbackDeviceError,
    /// ... `deflateParams` (or `deflateCopy`) mid-stream moved the rest to software.
    FallbackMidStream,
    /// Inflate streams (all in software: see DESIGN.md).
    InflateStreams,
}

/// Counter names, in file order.
pub const NAMES: &[&str] = &[
    "deflate_offloaded",
    "deflate_bytes_in",
    "deflate_bytes_out",
    "fallback_no_device",
    "fallback_no_queue",
    "fallback_params",
    "fallback_small",
    "fallback_device_error",
    "fallback_mid_stream",
    "inflate_streams",
];

/// Slots in the file (room to grow without a version change).
pub const SLOTS: usize = 16;

/// libwdz's counter files, `<pid>.zlib`.
pub const LAYOUT: Layout = Layout {
    magic: u64::from_le_bytes(*b"WDZLIB\0\x01"),
    extension: "zlib",
    names: NAMES,
    slots: SLOTS,
};

static SET: CounterSet = CounterSet::new(LAYOUT, || crate::config::get().stats_dir.clone());

/// Adds `n` to a counter.
pub fn add(c: Counter, n: u64) {
    SET.add(c as usize, n);
}

/// Adds one to a counter.
pub fn bump(c: Counter) {
    add(c, 1);
}

/// This process's counters now, in [`NAMES`] order.
pub fn snapshot() -> Vec<u64> {
    SET.snapshot()
}
