//! The counters libwdz.so (zlib/, issue 11) keeps per process in `<dir>/<pid>.zlib`:
//! magic `WDZLIB\0\x01`, version, pid, counter count, then the counters in the order of
//! `zlib/src/stats.rs`'s `NAMES` (read here without linking the library, whose exported
//! zlib symbols must not enter this binary).

use std::path::Path;

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

const MAGIC: u64 = u64::from_le_bytes(*b"WDZLIB\0\x01");

/// Processes with a readable `.zlib` file in `dir`, and the counters summed over them.
pub fn read_dir(dir: &Path) -> std::io::Result<(usize, Vec<u64>)> {
    let mut totals = vec![0u64; NAMES.len()];
    let mut files = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "zlib") {
            continue;
        }
        let Ok(b) = std::fs::read(&path) else {
            continue;
        };
        let w: Vec<u64> = b
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
            .collect();
        if w.len() < 4 || w[0] != MAGIC {
            continue;
        }
        files += 1;
        let n = (w[3] as usize).min(NAMES.len()).min(w.len() - 4);
        for (t, x) in totals.iter_mut().zip(&w[4..4 + n]) {
            *t += x;
        }
    }
    Ok((files, totals))
}
