//! Checksums, one-shot decompression, bounds, error strings and version: zlib-rs.

#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::*;

use libz_rs_sys as z;

use super::guard;
#[allow(unused_imports)]
use libz_rs_sys::{Z_ERRNO, Z_STREAM_ERROR};

/// zlib's `crc32_z` (zlib-rs).
#[export_name = "wdz_crc32_z"]
pub unsafe extern "C" fn crc32_z(crc: c_ulong, buf: *const z::Bytef, len: z::size_t) -> c_ulong {
    guard(0, || {
        // SAFETY: the caller keeps zlib's contract for `crc32_z`; zlib-rs checks what zlib checks.
        unsafe { z::crc32_z(crc, buf, len) }
    })
}

/// zlib's `crc32` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn crc32(crc: c_ulong, buf: *const z::Bytef, len: z::uInt) -> c_ulong {
    guard(0, || {
        // SAFETY: the caller keeps zlib's contract for `crc32`; zlib-rs checks what zlib checks.
        unsafe { z::crc32(crc, buf, len) }
    })
}

/// zlib's `crc32_combine` (zlib-rs).
#[export_name = "wdz_crc32_combine"]
pub extern "C" fn crc32_combine(crc1: c_ulong, crc2: c_ulong, len2: z::z_off_t) -> c_ulong {
    guard(0, || z::crc32_combine(crc1, crc2, len2))
}

/// zlib's `crc32_combine64` (zlib-rs).
#[export_name = "wdz_crc32_combine64"]
pub extern "C" fn crc32_combine64(crc1: c_ulong, crc2: c_ulong, len2: z::z_off64_t) -> c_ulong {
    guard(0, || z::crc32_combine64(crc1, crc2, len2))
}

/// zlib's `get_crc_table` (zlib-rs).
#[no_mangle]
pub extern "C" fn get_crc_table() -> *const [u32; 256] {
    guard(std::ptr::null(), || z::get_crc_table())
}

/// zlib's `crc32_combine_gen64` (zlib-rs).
#[export_name = "wdz_crc32_combine_gen64"]
pub extern "C" fn crc32_combine_gen64(len2: z::z_off64_t) -> c_ulong {
    guard(0, || z::crc32_combine_gen64(len2))
}

/// zlib's `crc32_combine_gen` (zlib-rs).
#[export_name = "wdz_crc32_combine_gen"]
pub extern "C" fn crc32_combine_gen(len2: z::z_off_t) -> c_ulong {
    guard(0, || z::crc32_combine_gen(len2))
}

/// zlib's `crc32_combine_op` (zlib-rs).
#[export_name = "wdz_crc32_combine_op"]
pub extern "C" fn crc32_combine_op(crc1: c_ulong, crc2: c_ulong, op: c_ulong) -> c_ulong {
    guard(0, || z::crc32_combine_op(crc1, crc2, op))
}

/// zlib's `adler32_z` (zlib-rs).
#[export_name = "wdz_adler32_z"]
pub unsafe extern "C" fn adler32_z(
    adler: c_ulong,
    buf: *const z::Bytef,
    len: z::size_t,
) -> c_ulong {
    guard(0, || {
        // SAFETY: the caller keeps zlib's contract for `adler32_z`; zlib-rs checks what zlib checks.
        unsafe { z::adler32_z(adler, buf, len) }
    })
}

/// zlib's `adler32` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn adler32(adler: c_ulong, buf: *const z::Bytef, len: z::uInt) -> c_ulong {
    guard(0, || {
        // SAFETY: the caller keeps zlib's contract for `adler32`; zlib-rs checks what zlib checks.
        unsafe { z::adler32(adler, buf, len) }
    })
}

/// zlib's `adler32_combine` (zlib-rs).
#[export_name = "wdz_adler32_combine"]
pub extern "C" fn adler32_combine(adler1: c_ulong, adler2: c_ulong, len2: z::z_off_t) -> c_ulong {
    guard(0, || z::adler32_combine(adler1, adler2, len2))
}

/// zlib's `adler32_combine64` (zlib-rs).
#[export_name = "wdz_adler32_combine64"]
pub extern "C" fn adler32_combine64(
    adler1: c_ulong,
    adler2: c_ulong,
    len2: z::z_off64_t,
) -> c_ulong {
    guard(0, || z::adler32_combine64(adler1, adler2, len2))
}

/// zlib's `compressBound`: zlib 1.2.13's formula, which callers size buffers with (both
/// engines stay within it: zlib-rs falls back to stored blocks, and so do our segments).
#[export_name = "wdz_compressBound"]
pub extern "C" fn compressBound(sourceLen: c_ulong) -> c_ulong {
    guard(0, || {
        let n = sourceLen;
        n + (n >> 12) + (n >> 14) + (n >> 25) + 13
    })
}

/// zlib's `zError` (zlib-rs).
#[no_mangle]
pub extern "C" fn zError(err: c_int) -> *const c_char {
    guard(std::ptr::null(), || z::zError(err))
}

/// zlib's `zlibVersion` (zlib-rs).
#[no_mangle]
pub extern "C" fn zlibVersion() -> *const c_char {
    guard(std::ptr::null(), || z::zlibVersion())
}

/// zlib's `zlibCompileFlags` (zlib-rs).
#[export_name = "wdz_zlibCompileFlags"]
pub extern "C" fn zlibCompileFlags() -> c_ulong {
    guard(0, || z::zlibCompileFlags())
}
