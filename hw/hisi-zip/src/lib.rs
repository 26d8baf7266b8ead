//! HiSilicon ZIP user driver and streaming compression (docs/hardware-interface.md §4).
//!
//! Layers, bottom up:
//! - [`sqe`]: the 128-byte ZIP SQE, pinned by tests to hardware-interface's offsets (the
//!   device model reads it with its own definition).
//! - [`driver::Zip`]: the [`wd_core::UserDriver`] on a QM ring: compress queues
//!   (qc_type 0), decompress queues (qc_type 1), jobs ([`job::ZipJob`]) matched by tag.
//! - [`header`]: zlib and gzip headers written and parsed in software (full RFC 1952 on
//!   input), trailers.
//! - `hw` / `soft`: the deflate payload on the device (stream mode, 64 KiB context in DMA
//!   memory, 8 MiB requests, retries) or in software (zlib-rs).
//! - [`codec`]: [`Compressor`], [`Decompressor`], one-shot [`compress`]/[`decompress`];
//!   [`io`]: [`WdEncoder`]/[`WdDecoder`] in the manner of flate2; [`parallel`]: gzip
//!   members with several requests in flight (the `wd zip` fast path).
//! - [`pool`]: `WD_DEVICES` (`auto`, `uacce`, `model`, `none`) and the per-process queue
//!   pools; [`stats`]: what was offloaded, what fell back and why.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use hisi_zip::{Format, WdDecoder, WdEncoder};
//! let mut e = WdEncoder::new(Vec::new(), Format::Gzip, 6)?;
//! e.write_all(b"hello hello hello")?;
//! let gz = e.finish()?;
//! let mut s = String::new();
//! WdDecoder::new(&gz[..], Format::Gzip)?.read_to_string(&mut s)?;
//! assert_eq!(s, "hello hello hello");
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod codec;
pub mod driver;
pub mod header;
mod hw;
pub mod io;
pub mod job;
pub mod parallel;
pub mod pool;
mod soft;
pub mod sqe;
pub mod stats;

pub use codec::{
    compress, compress_with, decompress, decompress_with, BodyInflater, BodyStep, Compressor,
    Decompressor, Format, Offload, DEFAULT_LEVEL, MAX_DEVICE_LEVEL, OUT_BUDGET,
};
pub use driver::{Zip, MAX_REQUEST, QC_COMPRESS, QC_DECOMPRESS};
pub use header::GzHeader;
pub use io::{WdDecoder, WdEncoder};
pub use pool::DRIVER;
pub use stats::{stats, Reason, ZipStats};
