//! Counters of this process's zlib streams: which went to the device, how many bytes,
//! which stayed in software and why.
//!
//! Kept in memory, or, when a stats directory is configured (`WD_ZLIB_STATS_DIR` or
//! `WD_STATS_DIR`), in a shared mapping of `<dir>/<pid>.zlib` so that `wd stats` and tests
//! read them live from other processes (nginx workers). A forked child starts its own file
//! on its first count. The file is wd-core's [`wd_core::counters`] format with magic
//! `WDZLIB\0\x01`, the counters in [`NAMES`] order.

use wd_core::counters::CounterSet;

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
    /// Inflate streams.
    InflateStreams,
    /// Inflate streams whose first call went to the device.
    InflateOffloaded,
    /// Compressed bytes the device consumed for them.
    InflateBytesIn,
    /// Output bytes delivered from the device.
    InflateBytesOut,
    /// Device inflate streams replayed into software: device failure or corrupt data.
    InflateReplayError,
    /// ... the replay log reached `WD_ZLIB_INFLATE_LOG`.
    InflateReplayLogFull,
    /// ... a call the device path does not do (`Z_BLOCK`, dictionary, copy, sync, mark).
    InflateReplayCall,
    /// Segments of inflate streams decoded on a fresh device stream alongside the
    /// stream's own (independent segments, several engines at once) and accepted.
    InflateParallelSegments,
    /// ... decoded that way and dropped (not exactly where the stream's decoding reached:
    /// a false marker, or a predecessor that did not end there; redone serially).
    InflateParallelDropped,
}

/// libwdz's counter files, `<pid>.zlib`.
pub use wd_core::counters::zlib::LAYOUT;
/// Counter names, in file order (their one owner is wd-core, which `wd stats` shares).
pub use wd_core::counters::zlib::NAMES;

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

#[cfg(test)]
mod tests {
    #[test]
    fn every_counter_has_its_name() {
        assert_eq!(
            super::Counter::InflateParallelDropped as usize + 1,
            super::NAMES.len()
        );
        assert_eq!(
            super::NAMES[super::Counter::InflateStreams as usize],
            "inflate_streams"
        );
        assert!(super::NAMES.len() <= super::LAYOUT.slots);
    }
}
