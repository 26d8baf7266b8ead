//! Per-process counter files: the one mechanism behind the provider's `<pid>.stats` and
//! libwdz's `<pid>.zlib`, read by `wd stats` and the tests from other processes.
//!
//! A [`CounterSet`] counts in process memory, or, when it has a directory, in a shared
//! mapping of `<dir>/<pid>.<extension>` that other processes read live (nginx workers). A
//! forked child starts its own file on its first count.
//!
//! File layout (native endian, all u64): the set's magic, [`VERSION`], pid, counter count,
//! then the counters in name order. New counters are only ever appended: a reader takes the
//! counters a file has (its count), so old files read with zeros for the newer counters and
//! old readers ignore what they do not know; the version stays.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::fork::Epoch;

/// The file format's version (the same for every set).
pub const VERSION: u64 = 1;
const HEADER: usize = 4;

/// What a kind of counter file is.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// First word of the file.
    pub magic: u64,
    /// File name extension (`stats`, `zlib`).
    pub extension: &'static str,
    /// Counter names, in file order.
    pub names: &'static [&'static str],
    /// Slots reserved in the file (room to grow without a version change); at least
    /// `names.len()`.
    pub slots: usize,
}

impl Layout {
    fn file_len(&self) -> usize {
        (HEADER + self.slots) * 8
    }

    /// Formats counters as `name=value` separated by spaces.
    pub fn format(&self, values: &[u64]) -> String {
        self.names
            .iter()
            .zip(values)
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The value of counter `name` in `values`.
    pub fn get(&self, values: &[u64], name: &str) -> Option<u64> {
        self.names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| values.get(i).copied())
    }

    /// Reads one counter file: `(pid, values)`.
    pub fn read_file(&self, path: &Path) -> std::io::Result<(u32, Vec<u64>)> {
        let bytes = std::fs::read(path)?;
        let word = |i: usize| -> Option<u64> {
            bytes
                .get(i * 8..i * 8 + 8)
                .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        };
        let invalid = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a wd .{} counter file", self.extension),
            )
        };
        if word(0) != Some(self.magic) || word(1) != Some(VERSION) {
            return Err(invalid());
        }
        let pid = word(2).ok_or_else(invalid)? as u32;
        let count = (word(3).ok_or_else(invalid)? as usize).min(self.names.len());
        let mut values = vec![0; self.names.len()];
        for (i, v) in values.iter_mut().enumerate().take(count) {
            *v = word(HEADER + i).ok_or_else(invalid)?;
        }
        Ok((pid, values))
    }

    /// Sums every readable `<pid>.<extension>` file of `dir`: `(files, totals)`.
    pub fn read_dir(&self, dir: &Path) -> std::io::Result<(usize, Vec<u64>)> {
        let mut totals = vec![0u64; self.names.len()];
        let mut files = 0;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == self.extension) {
                if let Ok((_, v)) = self.read_file(&path) {
                    files += 1;
                    for (t, x) in totals.iter_mut().zip(v) {
                        *t += x;
                    }
                }
            }
        }
        Ok((files, totals))
    }

    /// Maps `<dir>/<pid>.<extension>`, writing its header.
    pub fn map_file(&self, dir: &Path) -> std::io::Result<&'static [AtomicU64]> {
        std::fs::create_dir_all(dir)?;
        let pid = std::process::id();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join(format!("{pid}.{}", self.extension)))?;
        let len = self.file_len();
        f.set_len(len as u64)?;
        // SAFETY: a shared read-write mapping of a regular file we just sized to `len`
        // bytes; it outlives the descriptor and is never unmapped (leaked for the process's
        // life).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the mapping is `len` = (HEADER + slots) * 8 bytes, page-aligned (so
        // 8-byte aligned), zero-filled by the truncation, lives for the rest of the process
        // and is only ever accessed through atomics.
        let words: &'static [AtomicU64] =
            unsafe { std::slice::from_raw_parts(p as *const AtomicU64, HEADER + self.slots) };
        words[1].store(VERSION, Ordering::Relaxed);
        words[2].store(u64::from(pid), Ordering::Relaxed);
        words[3].store(self.names.len() as u64, Ordering::Relaxed);
        words[0].store(self.magic, Ordering::Release);
        Ok(&words[HEADER..])
    }

    fn in_memory(&self) -> &'static [AtomicU64] {
        Box::leak((0..self.slots).map(|_| AtomicU64::new(0)).collect())
    }
}

/// One process's counters of one [`Layout`], in the file of the directory `dir` gives
/// (asked on the first count of each process), else in memory.
#[derive(Debug)]
pub struct CounterSet {
    layout: Layout,
    dir: fn() -> Option<PathBuf>,
    sink: Mutex<Option<(Epoch, &'static [AtomicU64])>>,
}

impl CounterSet {
    /// A set of `layout`'s counters, kept in the directory `dir` names.
    pub const fn new(layout: Layout, dir: fn() -> Option<PathBuf>) -> CounterSet {
        CounterSet {
            layout,
            dir,
            sink: Mutex::new(None),
        }
    }

    /// The set's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn slots(&self) -> &'static [AtomicU64] {
        let mut g = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        match *g {
            Some((epoch, slots)) if epoch.is_current() => slots,
            _ => {
                // A forked child forgets the parent's mapping (left mapped: never unmapped)
                // and starts its own file.
                let slots = match (self.dir)() {
                    Some(dir) => self.layout.map_file(&dir).unwrap_or_else(|e| {
                        crate::wd_log!(
                            Warn,
                            "counter file in {}: {e}; counting in memory",
                            dir.display()
                        );
                        self.layout.in_memory()
                    }),
                    None => self.layout.in_memory(),
                };
                *g = Some((Epoch::current(), slots));
                slots
            }
        }
    }

    /// Adds `n` to counter `index` (in name order).
    pub fn add(&self, index: usize, n: u64) {
        self.slots()[index].fetch_add(n, Ordering::Relaxed);
    }

    /// This process's counters now, in name order.
    pub fn snapshot(&self) -> Vec<u64> {
        let s = self.slots();
        (0..self.layout.names.len())
            .map(|i| s[i].load(Ordering::Relaxed))
            .collect()
    }
}

/// libwdz.so's counter files, `<pid>.zlib`: the one list of their names (libwdz counts
/// them in `zlib/src/stats.rs`, `wd stats` reads them; `wd` cannot link the library, whose
/// exported zlib symbols must not enter it).
pub mod zlib {
    use super::Layout;

    /// Counter names, in file order (append only).
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
        "inflate_offloaded",
        "inflate_bytes_in",
        "inflate_bytes_out",
        "inflate_replay_error",
        "inflate_replay_log_full",
        "inflate_replay_call",
        "inflate_parallel_segments",
        "inflate_parallel_dropped",
    ];

    /// The file format: magic `WDZLIB\0\x01`, 32 slots.
    pub const LAYOUT: Layout = Layout {
        magic: u64::from_le_bytes(*b"WDZLIB\0\x01"),
        extension: "zlib",
        names: NAMES,
        slots: 32,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        magic: u64::from_le_bytes(*b"WDTEST\0\x01"),
        extension: "test",
        names: &["a", "b", "c"],
        slots: 8,
    };

    #[test]
    fn file_round_trip_and_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let slots = LAYOUT.map_file(dir.path()).unwrap();
        slots[0].fetch_add(3, Ordering::Relaxed);
        slots[2].fetch_add(2, Ordering::Relaxed);
        // Another kind of file in the same directory is not counted.
        std::fs::write(dir.path().join("1.other"), [0u8; 64]).unwrap();
        let (files, v) = LAYOUT.read_dir(dir.path()).unwrap();
        assert_eq!((files, v.clone()), (1, vec![3, 0, 2]));
        assert_eq!(LAYOUT.get(&v, "c"), Some(2));
        assert_eq!(LAYOUT.get(&v, "d"), None);
        assert_eq!(LAYOUT.format(&v), "a=3 b=0 c=2");

        // A file written when only two counters existed reads with zero for the third.
        let mut words = vec![LAYOUT.magic, VERSION, 42, 2, 5, 6];
        words.resize(HEADER + LAYOUT.slots, 0);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let old = dir.path().join("42.test");
        std::fs::write(&old, bytes).unwrap();
        assert_eq!(LAYOUT.read_file(&old).unwrap(), (42, vec![5, 6, 0]));
        // A wrong magic or a short file is refused.
        std::fs::write(&old, [1u8; 16]).unwrap();
        assert!(LAYOUT.read_file(&old).is_err());
    }

    #[test]
    fn a_set_counts_in_memory_without_a_directory() {
        static SET: CounterSet = CounterSet::new(LAYOUT, || None);
        SET.add(1, 4);
        SET.add(1, 1);
        assert_eq!(SET.snapshot(), vec![0, 5, 0]);
    }
}
