//! The inflate family: zlib-rs on the caller's own z_stream (its state allocated through the
//! caller's `zalloc`); decompression stays in software (DESIGN.md, "inflate").

#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::*;

use libz_rs_sys as z;

use super::guard;
#[allow(unused_imports)]
use libz_rs_sys::{Z_ERRNO, Z_STREAM_ERROR};

/// zlib's `inflate` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflate(strm: *mut z::z_stream, flush: i32) -> i32 {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflate`; zlib-rs checks what zlib checks.
        unsafe { z::inflate(strm, flush) }
    })
}

/// zlib's `inflateEnd` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateEnd(strm: *mut z::z_stream) -> i32 {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateEnd`; zlib-rs checks what zlib checks.
        unsafe { z::inflateEnd(strm) }
    })
}

/// zlib's `inflateBackInit_` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateBackInit_(
    strm: z::z_streamp,
    windowBits: c_int,
    window: *mut c_uchar,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateBackInit_`; zlib-rs checks what zlib checks.
        unsafe { z::inflateBackInit_(strm, windowBits, window, version, stream_size) }
    })
}

/// zlib's `inflateBack` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateBack(
    strm: z::z_streamp,
    in_: Option<z::in_func>,
    in_desc: *mut c_void,
    out: Option<z::out_func>,
    out_desc: *mut c_void,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateBack`; zlib-rs checks what zlib checks.
        unsafe { z::inflateBack(strm, in_, in_desc, out, out_desc) }
    })
}

/// zlib's `inflateBackEnd` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateBackEnd(strm: z::z_streamp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateBackEnd`; zlib-rs checks what zlib checks.
        unsafe { z::inflateBackEnd(strm) }
    })
}

/// zlib's `inflateCopy` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateCopy(dest: *mut z::z_stream, source: *const z::z_stream) -> i32 {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateCopy`; zlib-rs checks what zlib checks.
        unsafe { z::inflateCopy(dest, source) }
    })
}

/// zlib's `inflateMark` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateMark(strm: *const z::z_stream) -> c_long {
    guard(-(1 << 16), || {
        // SAFETY: the caller keeps zlib's contract for `inflateMark`; zlib-rs checks what zlib checks.
        unsafe { z::inflateMark(strm) }
    })
}

/// zlib's `inflateSync` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateSync(strm: *mut z::z_stream) -> i32 {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateSync`; zlib-rs checks what zlib checks.
        unsafe { z::inflateSync(strm) }
    })
}

/// zlib's `inflateSyncPoint` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateSyncPoint(strm: *mut z::z_stream) -> i32 {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateSyncPoint`; zlib-rs checks what zlib checks.
        unsafe { z::inflateSyncPoint(strm) }
    })
}

/// zlib's `inflatePrime` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflatePrime(strm: *mut z::z_stream, bits: i32, value: i32) -> i32 {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflatePrime`; zlib-rs checks what zlib checks.
        unsafe { z::inflatePrime(strm, bits, value) }
    })
}

/// zlib's `inflateReset` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateReset(strm: *mut z::z_stream) -> i32 {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateReset`; zlib-rs checks what zlib checks.
        unsafe { z::inflateReset(strm) }
    })
}

/// zlib's `inflateReset2` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateReset2(strm: *mut z::z_stream, windowBits: c_int) -> i32 {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateReset2`; zlib-rs checks what zlib checks.
        let r = unsafe { z::inflateReset2(strm, windowBits) };
        if r == z::Z_OK {
            raw_adler(strm, windowBits);
        }
        r
    })
}

/// zlib's `inflateSetDictionary` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateSetDictionary(
    strm: *mut z::z_stream,
    dictionary: *const u8,
    dictLength: c_uint,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateSetDictionary`; zlib-rs checks what zlib checks.
        unsafe { z::inflateSetDictionary(strm, dictionary, dictLength) }
    })
}

/// zlib's `inflateGetHeader` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateGetHeader(strm: z::z_streamp, head: z::gz_headerp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateGetHeader`; zlib-rs checks what zlib checks.
        unsafe { z::inflateGetHeader(strm, head) }
    })
}

/// zlib's `inflateUndermine` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateUndermine(strm: *mut z::z_stream, subvert: i32) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateUndermine`; zlib-rs checks what zlib checks.
        unsafe { z::inflateUndermine(strm, subvert) }
    })
}

/// zlib's `inflateValidate` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateValidate(strm: *mut z::z_stream, check: i32) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateValidate`; zlib-rs checks what zlib checks.
        unsafe { z::inflateValidate(strm, check) }
    })
}

/// zlib's `inflateResetKeep` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateResetKeep(strm: *mut z::z_stream) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateResetKeep`; zlib-rs checks what zlib checks.
        unsafe { z::inflateResetKeep(strm) }
    })
}

/// zlib's `inflateCodesUsed` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateCodesUsed(strm: *mut z::z_stream) -> c_ulong {
    guard(0, || {
        // SAFETY: the caller keeps zlib's contract for `inflateCodesUsed`; zlib-rs checks what zlib checks.
        unsafe { z::inflateCodesUsed(strm) }
    })
}

/// zlib's `inflateGetDictionary` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn inflateGetDictionary(
    strm: *const z::z_stream,
    dictionary: *mut c_uchar,
    dictLength: *mut c_uint,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateGetDictionary`; zlib-rs checks what zlib checks.
        unsafe { z::inflateGetDictionary(strm, dictionary, dictLength) }
    })
}

/// zlib's `inflateInit_` (zlib-rs), counted.
#[no_mangle]
pub unsafe extern "C" fn inflateInit_(
    strm: z::z_streamp,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    // SAFETY: as inflateInit2_ with zlib's default window.
    unsafe { inflateInit2_(strm, 15, version, stream_size) }
}

/// zlib's `inflateInit2_` (zlib-rs), counted.
#[no_mangle]
pub unsafe extern "C" fn inflateInit2_(
    strm: z::z_streamp,
    windowBits: c_int,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        crate::init_once();
        // SAFETY: the caller keeps zlib's contract for `inflateInit2_` (strm writable, its
        // zalloc/zfree/opaque set or null); zlib-rs checks what zlib checks.
        let r = unsafe { z::inflateInit2_(strm, windowBits, version, stream_size) };
        if r == z::Z_OK {
            crate::stats::bump(crate::stats::Counter::InflateStreams);
            raw_adler(strm, windowBits);
        }
        r
    })
}

/// zlib leaves `adler` 0 on a raw inflate stream (its `wrap & 1`); zlib-rs sets 1.
fn raw_adler(strm: z::z_streamp, window_bits: c_int) {
    if window_bits < 0 {
        // SAFETY: called after a successful init/reset of `strm`, a valid z_stream.
        if let Some(s) = unsafe { strm.as_mut() } {
            s.adler = 0;
        }
    }
}
