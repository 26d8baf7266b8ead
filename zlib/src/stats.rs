//! Counters of this process's zlib streams: which went to the device, how many bytes,
//! which stayed in software and why.
//!
//! Kept in memory, or, when a stats directory is configured (`WD_ZLIB_STATS_DIR` or
//! `WD_STATS_DIR`), in a shared mapping of `<dir>/<pid>.zlib` so that `wd stats` and tests
//! read them live from other processes (nginx workers). A forked child starts its own file
//! on its first count. File layout (native endian, all u64): magic `WDZLIB\0\x01`, version,
//! pid, counter count, then the counters in [`NAMES`] order.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use wd_core::fork::Epoch;

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
/// File magic.
pub const MAGIC: u64 = u64::from_le_bytes(*b"WDZLIB\0\x01");
const VERSION: u64 = 1;
const HEADER: usize = 4;
const FILE_LEN: usize = (HEADER + SLOTS) * 8;

type Slots = [AtomicU64; SLOTS];

struct Sink {
    epoch: Epoch,
    slots: &'static Slots,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

fn in_memory() -> &'static Slots {
    Box::leak(Box::new(std::array::from_fn(|_| AtomicU64::new(0))))
}

fn map_file(dir: &Path) -> std::io::Result<&'static Slots> {
    std::fs::create_dir_all(dir)?;
    let pid = std::process::id();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join(format!("{pid}.zlib")))?;
    f.set_len(FILE_LEN as u64)?;
    // SAFETY: a shared read-write mapping of a regular file we just sized to FILE_LEN
    // bytes; it outlives the descriptor and is never unmapped.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            FILE_LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the mapping is FILE_LEN bytes, page-aligned, zero-filled by the truncation,
    // lives for the rest of the process and is only accessed through atomics.
    let words: &'static [AtomicU64; HEADER + SLOTS] =
        unsafe { &*(p as *const [AtomicU64; HEADER + SLOTS]) };
    words[1].store(VERSION, Ordering::Relaxed);
    words[2].store(u64::from(pid), Ordering::Relaxed);
    words[3].store(NAMES.len() as u64, Ordering::Relaxed);
    words[0].store(MAGIC, Ordering::Release);
    let (_, tail) = words.split_at(HEADER);
    // Exactly SLOTS elements follow the header.
    Ok(tail.try_into().expect("SLOTS counters after the header"))
}

fn slots() -> &'static Slots {
    let mut g = SINK.lock().unwrap_or_else(|e| e.into_inner());
    if g.as_ref().is_none_or(|s| !s.epoch.is_current()) {
        let slots = match &crate::config::get().stats_dir {
            Some(dir) => map_file(dir).unwrap_or_else(|e| {
                wd_core::wd_log!(Warn, "wdz: stats file in {}: {e}", dir.display());
                in_memory()
            }),
            None => in_memory(),
        };
        *g = Some(Sink {
            epoch: Epoch::current(),
            slots,
        });
    }
    g.as_ref().map(|s| s.slots).expect("sink set above")
}

/// Adds `n` to a counter.
pub fn add(c: Counter, n: u64) {
    slots()[c as usize].fetch_add(n, Ordering::Relaxed);
}

/// Adds one to a counter.
pub fn bump(c: Counter) {
    add(c, 1);
}

/// This process's counters now, in [`NAMES`] order.
pub fn snapshot() -> Vec<u64> {
    let s = slots();
    (0..NAMES.len())
        .map(|i| s[i].load(Ordering::Relaxed))
        .collect()
}
