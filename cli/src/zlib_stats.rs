//! The counters libwdz.so (zlib/, issue 11) keeps per process in `<dir>/<pid>.zlib`:
//! magic `WDZLIB\0\x01`, version, pid, counter count, then the counters in the order of
//! `zlib/src/stats.rs`'s `NAMES` (read here without linking the library, whose exported
//! zlib symbols must not enter this binary).

use std::path::Path;

use wd_core::counters::Layout;

/// Counter names, in file order (zlib/src/stats.rs).
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

/// The file format (wd-core's counter files; magic and slots as zlib/src/stats.rs).
const LAYOUT: Layout = Layout {
    magic: u64::from_le_bytes(*b"WDZLIB\0\x01"),
    extension: "zlib",
    names: NAMES,
    slots: 16,
};

/// Processes with a readable `.zlib` file in `dir`, and the counters summed over them.
pub fn read_dir(dir: &Path) -> std::io::Result<(usize, Vec<u64>)> {
    LAYOUT.read_dir(dir)
}
