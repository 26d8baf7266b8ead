//! Counters of this process's compression work: what went to the device, what fell back
//! to software and why.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a stream (or a one-shot call) ran in software.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// `WD_DEVICES=none` (or offload turned off by the caller).
    Disabled,
    /// No ZIP device found.
    NoDevice,
    /// Every queue is in use.
    NoQueue,
    /// The device cannot do it (raw deflate on a v2 device, level 0).
    Unsupported,
    /// A compression level above what the device does (7..=9: the device's effort is fixed).
    Level,
    /// The device failed and the work was redone in software.
    DeviceError,
}

impl Reason {
    /// Every reason, in counter order.
    pub const ALL: [Reason; 6] = [
        Reason::Disabled,
        Reason::NoDevice,
        Reason::NoQueue,
        Reason::Unsupported,
        Reason::Level,
        Reason::DeviceError,
    ];

    /// Short name (`no_device`...).
    pub fn name(self) -> &'static str {
        match self {
            Reason::Disabled => "disabled",
            Reason::NoDevice => "no_device",
            Reason::NoQueue => "no_queue",
            Reason::Unsupported => "unsupported",
            Reason::Level => "level",
            Reason::DeviceError => "device_error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZipStats {
    /// Streams (and one-shot calls) that used the device.
    pub offloaded: u64,
    /// Requests completed by the device.
    pub requests: u64,
    /// Bytes the device consumed.
    pub bytes_in: u64,
    /// Bytes the device produced.
    pub bytes_out: u64,
    /// Requests the device failed (then retried or redone in software).
    pub device_errors: u64,
    /// Requests sent again after a failure or a full output buffer.
    pub retries: u64,
    /// Streams in software, by [`Reason::ALL`] order.
    pub fallback: [u64; 6],
}

impl ZipStats {
    /// Streams in software for `r`.
    pub fn fallback(&self, r: Reason) -> u64 {
        self.fallback[Reason::ALL.iter().position(|x| *x == r).unwrap_or(0)]
    }

    /// All streams in software.
    pub fn fallback_total(&self) -> u64 {
        self.fallback.iter().sum()
    }
}

struct Counters {
    offloaded: AtomicU64,
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    device_errors: AtomicU64,
    retries: AtomicU64,
    fallback: [AtomicU64; 6],
}

static C: Counters = Counters {
    offloaded: AtomicU64::new(0),
    requests: AtomicU64::new(0),
    bytes_in: AtomicU64::new(0),
    bytes_out: AtomicU64::new(0),
    device_errors: AtomicU64::new(0),
    retries: AtomicU64::new(0),
    fallback: [
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    ],
};

/// The counters of this process now.
pub fn stats() -> ZipStats {
    let mut s = ZipStats {
        offloaded: C.offloaded.load(Relaxed),
        requests: C.requests.load(Relaxed),
        bytes_in: C.bytes_in.load(Relaxed),
        bytes_out: C.bytes_out.load(Relaxed),
        device_errors: C.device_errors.load(Relaxed),
        retries: C.retries.load(Relaxed),
        fallback: [0; 6],
    };
    for (i, c) in C.fallback.iter().enumerate() {
        s.fallback[i] = c.load(Relaxed);
    }
    s
}

pub(crate) fn offloaded() {
    C.offloaded.fetch_add(1, Relaxed);
}

pub(crate) fn request(consumed: usize, produced: usize) {
    C.requests.fetch_add(1, Relaxed);
    C.bytes_in.fetch_add(consumed as u64, Relaxed);
    C.bytes_out.fetch_add(produced as u64, Relaxed);
}

pub(crate) fn device_error() {
    C.device_errors.fetch_add(1, Relaxed);
}

pub(crate) fn retry() {
    C.retries.fetch_add(1, Relaxed);
}

pub(crate) fn fallback(r: Reason) {
    if let Some(i) = Reason::ALL.iter().position(|x| *x == r) {
        C.fallback[i].fetch_add(1, Relaxed);
    }
    wd_core::wd_log!(Debug, "hisi_zip: software path ({r})");
}
