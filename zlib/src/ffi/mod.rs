//! The C ABI: zlib's exported names, each a thin shim that checks pointers, runs the safe
//! core inside [`guard`] (no panic unwinds into C) and maps the outcome to zlib's codes.
//!
//! - [`deflate`]: the deflate family on our stream state (routing, the device).
//! - [`inflate`]: the inflate family (zlib-rs on the caller's z_stream).
//! - [`util`]: checksums, one-shot calls, bounds, `zError`, `zlibVersion`.
//! - [`gz`]: the gz* file API (zlib-rs), plus `csrc/gzprintf.c` for the variadic pair.

pub mod deflate;
pub mod gz;
pub mod inflate;
pub mod util;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic becomes `on_panic` (logged), never an unwind across the C boundary.
pub fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            wd_core::wd_log!(
                Error,
                "wdz: internal error (panic) caught at the C boundary"
            );
            on_panic
        }
    }
}
