//! The counters libwdz.so (zlib/, issue 11) keeps per process in `<dir>/<pid>.zlib`, read
//! here through wd-core's one description of them ([`wd_core::counters::zlib`]) without
//! linking the library, whose exported zlib symbols must not enter this binary.

use std::path::Path;

pub use wd_core::counters::zlib::NAMES;

/// Processes with a readable `.zlib` file in `dir`, and the counters summed over them.
pub fn read_dir(dir: &Path) -> std::io::Result<(usize, Vec<u64>)> {
    wd_core::counters::zlib::LAYOUT.read_dir(dir)
}
