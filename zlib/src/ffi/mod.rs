//! The C ABI: zlib's exported names, each a thin shim that checks pointers, runs the safe
//! core inside [`guard`] (no panic unwinds into C) and maps the outcome to zlib's codes.
//!
//! - [`deflate`]: the deflate family on our stream state (routing, the device).
//! - [`deflate`] also has `compress`/`compress2`, [`inflate`] `uncompress`/`uncompress2`
//!   (zlib's loops over our own stream functions, refilled by [`refill`]).
//! - [`inflate`]: the inflate family (our slot around zlib-rs's state, the device).
//! - [`util`]: checksums, bounds, `zError`, `zlibVersion`.
//! - [`gz`]: the gz* file API (zlib-rs), plus `csrc/gzprintf.c` for the variadic pair.

pub mod deflate;
pub mod gz;
pub mod inflate;
pub mod util;

use std::ffi::{c_uint, c_ulong};
use std::panic::{catch_unwind, AssertUnwindSafe};

use libz_rs_sys::z_stream;

/// The one-shot calls' refill: a `uInt`-sized piece of what is left of the destination
/// (`out_left`) and of the source (`in_left`) whenever the stream has used up its last one.
pub fn refill(s: &mut z_stream, out_left: &mut c_ulong, in_left: &mut c_ulong) {
    let max = c_ulong::from(c_uint::MAX);
    if s.avail_out == 0 {
        s.avail_out = (*out_left).min(max) as c_uint;
        *out_left -= c_ulong::from(s.avail_out);
    }
    if s.avail_in == 0 {
        s.avail_in = (*in_left).min(max) as c_uint;
        *in_left -= c_ulong::from(s.avail_in);
    }
}

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
