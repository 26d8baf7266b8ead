//! Counters: offloaded operations, fallbacks by reason, device errors, fault-guard trips.
//!
//! Each process keeps its counters in process memory, or, when a stats directory is
//! configured (`stats_dir` / `WD_STATS_DIR`), in a shared mapping of `<dir>/<pid>.stats` so
//! that other processes (the `wd-stats` tool, tests checking nginx workers) can read them
//! live. A forked child starts its own file on its first count.
//!
//! File layout (native endian, all u64): magic, version, pid, counter count, then the
//! counters in [`Counter`] order. New counters are only ever appended: a reader takes the
//! counters a file has (its count), so old files read with zeros for the newer counters and
//! old readers ignore what they do not know; the version stays.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use wd_core::fork::Epoch;

/// Every counter, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Private-key operations done by the device (after the fault guard passed).
    OffloadPrivate,
    /// Public-key operations done by the device.
    OffloadPublic,
    /// Software: no device configured or found.
    FallbackNoDevice,
    /// Software: every queue of the pool busy or the device refused a queue.
    FallbackNoQueue,
    /// Software: key size outside the device's or the configured range.
    FallbackKeySize,
    /// Software: the device failed the request (error completion, timeout, fault guard).
    FallbackDeviceError,
    /// Software by configuration, not a fallback (offload_public = off).
    SoftwarePolicy,
    /// Software: a padding mode done wholly by the default provider (TLS RSA key exchange).
    FallbackPadding,
    /// Requests the device failed (any kind).
    DeviceErrors,
    /// Of those, requests that timed out.
    Timeouts,
    /// Device results rejected by the fault-attack guard.
    FaultGuardTrips,
    /// Requests refused because fallback is off.
    Refused,
    /// CPU time of the calling threads inside offloaded operations, in nanoseconds
    /// (estimated from every 8th operation of each thread).
    OffloadCpuNs,
    /// Requests sent to the device from inside an OpenSSL ASYNC job without waiting.
    AsyncSubmitted,
    /// Times such a job paused (`ASYNC_pause_job`) waiting for its completion or a slot.
    AsyncPauses,
    /// Submissions inside a job that found the ring full and paused to retry.
    AsyncRingFull,
    /// Private-key requests kept in software because the key's CRT parameters are
    /// inconsistent (dp, dq or qinv wrong): a key error, not a device one.
    KeyErrors,
}

/// Counter names, in file order.
pub const NAMES: &[&str] = &[
    "offload_private",
    "offload_public",
    "fallback_no_device",
    "fallback_no_queue",
    "fallback_key_size",
    "fallback_device_error",
    "software_policy",
    "fallback_padding",
    "device_errors",
    "timeouts",
    "fault_guard_trips",
    "refused",
    "offload_cpu_ns",
    "async_submitted",
    "async_pauses",
    "async_ring_full",
    "key_errors",
];

/// Slots reserved in the file (room to grow without a version change).
pub const SLOTS: usize = 32;
const MAGIC: u64 = u64::from_le_bytes(*b"WDSTATS\x01");
const VERSION: u64 = 1;
const HEADER: usize = 4;
const FILE_LEN: usize = (HEADER + SLOTS) * 8;

/// A set of counters (in memory or in a shared file mapping).
type Slots = [AtomicU64; SLOTS];

struct Sink {
    epoch: Epoch,
    slots: &'static Slots,
}

static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Sets the stats directory for this process (the first configuration wins).
pub fn configure(dir: Option<PathBuf>) {
    let _ = DIR.set(dir);
}

fn in_memory() -> &'static Slots {
    Box::leak(Box::new(std::array::from_fn(|_| AtomicU64::new(0))))
}

/// Maps `<dir>/<pid>.stats`, writing its header.
fn map_file(dir: &Path) -> std::io::Result<&'static Slots> {
    std::fs::create_dir_all(dir)?;
    let pid = std::process::id();
    let path = dir.join(format!("{pid}.stats"));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    f.set_len(FILE_LEN as u64)?;
    // SAFETY: mapping a regular file we just sized to FILE_LEN bytes, shared, read-write;
    // the mapping outlives the fd and is never unmapped (leaked for the process's life).
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
    // SAFETY: the mapping is FILE_LEN bytes, page-aligned (so 8-byte aligned), zero-filled
    // by the truncation, lives forever, and is only ever accessed through atomics.
    let words: &'static [AtomicU64; HEADER + SLOTS] =
        unsafe { &*(p as *const [AtomicU64; HEADER + SLOTS]) };
    words[1].store(VERSION, Ordering::Relaxed);
    words[2].store(u64::from(pid), Ordering::Relaxed);
    words[3].store(NAMES.len() as u64, Ordering::Relaxed);
    words[0].store(MAGIC, Ordering::Release);
    let slots: &'static Slots = {
        let tail = &words[HEADER..];
        // A slice of exactly SLOTS elements: the conversion cannot fail.
        tail.try_into().expect("SLOTS counters after the header")
    };
    Ok(slots)
}

fn with_slots<R>(f: impl FnOnce(&'static Slots) -> R) -> R {
    let mut g = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let stale = g.as_ref().is_none_or(|s| !s.epoch.is_current());
    if stale {
        // A forked child forgets the parent's mapping (left mapped: never unmapped) and
        // starts its own file.
        let slots = match DIR.get().cloned().flatten() {
            Some(dir) => map_file(&dir).unwrap_or_else(|e| {
                wd_core::wd_log!(
                    Warn,
                    "stats file in {}: {e}; counting in memory",
                    dir.display()
                );
                in_memory()
            }),
            None => in_memory(),
        };
        *g = Some(Sink {
            epoch: Epoch::current(),
            slots,
        });
    }
    let slots = g.as_ref().map(|s| s.slots).expect("sink set above");
    drop(g);
    f(slots)
}

/// Adds `n` to a counter.
pub fn add(c: Counter, n: u64) {
    with_slots(|s| s[c as usize].fetch_add(n, Ordering::Relaxed));
}

/// Adds one to a counter.
pub fn bump(c: Counter) {
    add(c, 1);
}

/// This process's counters now.
pub fn snapshot() -> Vec<u64> {
    with_slots(|s| {
        NAMES
            .iter()
            .enumerate()
            .map(|(i, _)| s[i].load(Ordering::Relaxed))
            .collect()
    })
}

/// Formats counters as `name=value` separated by spaces.
pub fn format(values: &[u64]) -> String {
    NAMES
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads one counters file: `(pid, values)`.
pub fn read_file(path: &Path) -> std::io::Result<(u32, Vec<u64>)> {
    let bytes = std::fs::read(path)?;
    let word = |i: usize| -> Option<u64> {
        bytes
            .get(i * 8..i * 8 + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    };
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a wd stats file");
    if word(0) != Some(MAGIC) || word(1) != Some(VERSION) {
        return Err(invalid());
    }
    let pid = word(2).ok_or_else(invalid)? as u32;
    let count = (word(3).ok_or_else(invalid)? as usize).min(NAMES.len());
    let mut values = vec![0; NAMES.len()];
    for (i, v) in values.iter_mut().enumerate().take(count) {
        *v = word(HEADER + i).ok_or_else(invalid)?;
    }
    Ok((pid, values))
}

/// Sums every `<pid>.stats` file of `dir`: `(files, totals)`.
pub fn read_dir(dir: &Path) -> std::io::Result<(usize, Vec<u64>)> {
    let mut totals = vec![0u64; NAMES.len()];
    let mut files = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "stats") {
            if let Ok((_, v)) = read_file(&path) {
                files += 1;
                for (t, x) in totals.iter_mut().zip(v) {
                    *t += x;
                }
            }
        }
    }
    Ok((files, totals))
}

/// The value of counter `name` in `values`.
pub fn get(values: &[u64], name: &str) -> Option<u64> {
    NAMES.iter().position(|n| *n == name).map(|i| values[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_counters() {
        assert_eq!(NAMES.len(), Counter::KeyErrors as usize + 1);
        assert!(NAMES.len() <= SLOTS);
    }

    #[test]
    fn file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let slots = map_file(dir.path()).unwrap();
        slots[Counter::OffloadPrivate as usize].fetch_add(3, Ordering::Relaxed);
        slots[Counter::FallbackKeySize as usize].fetch_add(2, Ordering::Relaxed);
        let (files, v) = read_dir(dir.path()).unwrap();
        assert_eq!(files, 1);
        assert_eq!(get(&v, "offload_private"), Some(3));
        assert_eq!(get(&v, "fallback_key_size"), Some(2));
        assert!(format(&v).contains("offload_private=3"));
    }

    /// A file written before `key_errors` existed (a count of 16) reads, with zero for it.
    #[test]
    fn a_file_with_fewer_counters_reads_with_zeros_for_the_newer() {
        let dir = tempfile::tempdir().unwrap();
        let mut words = vec![MAGIC, VERSION, 42, 16];
        words.extend((1..=16u64).chain(std::iter::repeat_n(0, SLOTS - 16)));
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let path = dir.path().join("42.stats");
        std::fs::write(&path, bytes).unwrap();
        let (pid, v) = read_file(&path).unwrap();
        assert_eq!(pid, 42);
        assert_eq!(get(&v, "async_ring_full"), Some(16));
        assert_eq!(get(&v, "key_errors"), Some(0));
    }
}
