//! Counters: offloaded operations, fallbacks by reason, device errors, fault-guard trips.
//!
//! Each process keeps its counters in process memory, or, when a stats directory is
//! configured (`stats_dir` / `WD_STATS_DIR`), in a shared mapping of `<dir>/<pid>.stats` so
//! that other processes (`wd stats`, tests checking nginx workers) can read them
//! live. A forked child starts its own file on its first count.
//!
//! The file and its rules (header, append-only counters) are wd-core's
//! [`wd_core::counters`]; the counters are in [`Counter`] order.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wd_core::counters::{CounterSet, Layout};

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
    /// Waits of the job watching the device for its thread (ASYNC) that were for a batch
    /// of completions, woken by the timer rather than at each completion.
    AsyncCoalescedWaits,
    /// Times a thread found that holding completions back in batches slowed its device
    /// (coalesce.rs) and stopped doing so for a while.
    AsyncBatchesGivenUp,
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
    "async_coalesced_waits",
    "async_batches_given_up",
];

/// Slots reserved in the file (room to grow without a version change).
pub const SLOTS: usize = 32;

/// The provider's counter files, `<pid>.stats`.
pub const LAYOUT: Layout = Layout {
    magic: u64::from_le_bytes(*b"WDSTATS\x01"),
    extension: "stats",
    names: NAMES,
    slots: SLOTS,
};

static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
static SET: CounterSet = CounterSet::new(LAYOUT, || DIR.get().cloned().flatten());

/// Sets the stats directory for this process (the first configuration wins).
pub fn configure(dir: Option<PathBuf>) {
    let _ = DIR.set(dir);
}

/// Adds `n` to a counter.
pub fn add(c: Counter, n: u64) {
    SET.add(c as usize, n);
}

/// Adds one to a counter.
pub fn bump(c: Counter) {
    add(c, 1);
}

/// This process's counters now.
pub fn snapshot() -> Vec<u64> {
    SET.snapshot()
}

/// Formats counters as `name=value` separated by spaces.
pub fn format(values: &[u64]) -> String {
    LAYOUT.format(values)
}

/// Reads one counters file: `(pid, values)`.
pub fn read_file(path: &Path) -> std::io::Result<(u32, Vec<u64>)> {
    LAYOUT.read_file(path)
}

/// Sums every `<pid>.stats` file of `dir`: `(files, totals)`.
pub fn read_dir(dir: &Path) -> std::io::Result<(usize, Vec<u64>)> {
    LAYOUT.read_dir(dir)
}

/// The value of counter `name` in `values`.
pub fn get(values: &[u64], name: &str) -> Option<u64> {
    LAYOUT.get(values, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn names_match_counters() {
        assert_eq!(NAMES.len(), Counter::AsyncBatchesGivenUp as usize + 1);
        assert!(NAMES.len() <= SLOTS);
    }

    #[test]
    fn file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let slots = LAYOUT.map_file(dir.path()).unwrap();
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
        let mut words = vec![LAYOUT.magic, wd_core::counters::VERSION, 42, 16];
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
