//! The gz* file API: zlib-rs's (software; files are not routed to the device).
//! `gzprintf`/`gzvprintf` are in `csrc/gzprintf.c` (variadic).

#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::*;

use libz_rs_sys as z;

use super::guard;
#[allow(unused_imports)]
use libz_rs_sys::{Z_ERRNO, Z_STREAM_ERROR};

/// zlib's `gzopen64` (zlib-rs).
#[export_name = "wdz_gzopen64"]
pub unsafe extern "C" fn gzopen64(path: *const c_char, mode: *const c_char) -> z::gzFile {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller keeps zlib's contract for `gzopen64`; zlib-rs checks what zlib checks.
        unsafe { z::gzopen64(path, mode) }
    })
}

/// zlib's `gzopen` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzopen(path: *const c_char, mode: *const c_char) -> z::gzFile {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller keeps zlib's contract for `gzopen`; zlib-rs checks what zlib checks.
        unsafe { z::gzopen(path, mode) }
    })
}

/// zlib's `gzdopen` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzdopen(fd: c_int, mode: *const c_char) -> z::gzFile {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller keeps zlib's contract for `gzdopen`; zlib-rs checks what zlib checks.
        unsafe { z::gzdopen(fd, mode) }
    })
}

/// zlib's `gzclose` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzclose(file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzclose`; zlib-rs checks what zlib checks.
        unsafe { z::gzclose(file) }
    })
}

/// zlib's `gzclose_r` (zlib-rs).
#[export_name = "wdz_gzclose_r"]
pub unsafe extern "C" fn gzclose_r(file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzclose_r`; zlib-rs checks what zlib checks.
        unsafe { z::gzclose_r(file) }
    })
}

/// zlib's `gzclose_w` (zlib-rs).
#[export_name = "wdz_gzclose_w"]
pub unsafe extern "C" fn gzclose_w(file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzclose_w`; zlib-rs checks what zlib checks.
        unsafe { z::gzclose_w(file) }
    })
}

/// zlib's `gzbuffer` (zlib-rs).
#[export_name = "wdz_gzbuffer"]
pub unsafe extern "C" fn gzbuffer(file: z::gzFile, size: c_uint) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzbuffer`; zlib-rs checks what zlib checks.
        unsafe { z::gzbuffer(file, size) }
    })
}

/// zlib's `gzerror` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzerror(file: z::gzFile, errnum: *mut c_int) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: the caller keeps zlib's contract for `gzerror`; zlib-rs checks what zlib checks.
        unsafe { z::gzerror(file, errnum) }
    })
}

/// zlib's `gzclearerr` (zlib-rs).
#[export_name = "wdz_gzclearerr"]
pub unsafe extern "C" fn gzclearerr(file: z::gzFile) {
    guard((), || {
        // SAFETY: the caller keeps zlib's contract for `gzclearerr`; zlib-rs checks what zlib checks.
        unsafe { z::gzclearerr(file) }
    })
}

/// zlib's `gzeof` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzeof(file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzeof`; zlib-rs checks what zlib checks.
        unsafe { z::gzeof(file) }
    })
}

/// zlib's `gzdirect` (zlib-rs).
#[export_name = "wdz_gzdirect"]
pub unsafe extern "C" fn gzdirect(file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzdirect`; zlib-rs checks what zlib checks.
        unsafe { z::gzdirect(file) }
    })
}

/// zlib's `gzread` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzread(file: z::gzFile, buf: *mut c_void, len: c_uint) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzread`; zlib-rs checks what zlib checks.
        unsafe { z::gzread(file, buf, len) }
    })
}

/// zlib's `gzfread` (zlib-rs).
#[export_name = "wdz_gzfread"]
pub unsafe extern "C" fn gzfread(
    buf: *mut c_void,
    size: z::size_t,
    nitems: z::size_t,
    file: z::gzFile,
) -> z::size_t {
    guard(0, || {
        // SAFETY: the caller keeps zlib's contract for `gzfread`; zlib-rs checks what zlib checks.
        unsafe { z::gzfread(buf, size, nitems, file) }
    })
}

/// zlib's `gzwrite` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzwrite(file: z::gzFile, buf: *const c_void, len: c_uint) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzwrite`; zlib-rs checks what zlib checks.
        unsafe { z::gzwrite(file, buf, len) }
    })
}

/// zlib's `gzfwrite` (zlib-rs).
#[export_name = "wdz_gzfwrite"]
pub unsafe extern "C" fn gzfwrite(
    buf: *const c_void,
    size: z::size_t,
    nitems: z::size_t,
    file: z::gzFile,
) -> z::size_t {
    guard(0, || {
        // SAFETY: the caller keeps zlib's contract for `gzfwrite`; zlib-rs checks what zlib checks.
        unsafe { z::gzfwrite(buf, size, nitems, file) }
    })
}

/// zlib's `gzflush` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzflush(file: z::gzFile, flush: c_int) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzflush`; zlib-rs checks what zlib checks.
        unsafe { z::gzflush(file, flush) }
    })
}

/// zlib's `gztell64` (zlib-rs).
#[export_name = "wdz_gztell64"]
pub unsafe extern "C" fn gztell64(file: z::gzFile) -> z::z_off64_t {
    guard(-1, || {
        // SAFETY: the caller keeps zlib's contract for `gztell64`; zlib-rs checks what zlib checks.
        unsafe { z::gztell64(file) }
    })
}

/// zlib's `gztell` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gztell(file: z::gzFile) -> z::z_off_t {
    guard(-1, || {
        // SAFETY: the caller keeps zlib's contract for `gztell`; zlib-rs checks what zlib checks.
        unsafe { z::gztell(file) }
    })
}

/// zlib's `gzoffset64` (zlib-rs).
#[export_name = "wdz_gzoffset64"]
pub unsafe extern "C" fn gzoffset64(file: z::gzFile) -> z::z_off64_t {
    guard(-1, || {
        // SAFETY: the caller keeps zlib's contract for `gzoffset64`; zlib-rs checks what zlib checks.
        unsafe { z::gzoffset64(file) }
    })
}

/// zlib's `gzoffset` (zlib-rs).
#[export_name = "wdz_gzoffset"]
pub unsafe extern "C" fn gzoffset(file: z::gzFile) -> z::z_off_t {
    guard(-1, || {
        // SAFETY: the caller keeps zlib's contract for `gzoffset`; zlib-rs checks what zlib checks.
        unsafe { z::gzoffset(file) }
    })
}

/// zlib's `gzputc` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzputc(file: z::gzFile, c: c_int) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzputc`; zlib-rs checks what zlib checks.
        unsafe { z::gzputc(file, c) }
    })
}

/// zlib's `gzputs` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzputs(file: z::gzFile, s: *const c_char) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzputs`; zlib-rs checks what zlib checks.
        unsafe { z::gzputs(file, s) }
    })
}

/// zlib's `gzgetc` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzgetc(file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzgetc`; zlib-rs checks what zlib checks.
        unsafe { z::gzgetc(file) }
    })
}

/// zlib's `gzgetc_` (zlib-rs).
#[export_name = "wdz_gzgetc_"]
pub unsafe extern "C" fn gzgetc_(file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzgetc_`; zlib-rs checks what zlib checks.
        unsafe { z::gzgetc_(file) }
    })
}

/// zlib's `gzungetc` (zlib-rs).
#[export_name = "wdz_gzungetc"]
pub unsafe extern "C" fn gzungetc(c: c_int, file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzungetc`; zlib-rs checks what zlib checks.
        unsafe { z::gzungetc(c, file) }
    })
}

/// zlib's `gzgets` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzgets(file: z::gzFile, buf: *mut c_char, len: c_int) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller keeps zlib's contract for `gzgets`; zlib-rs checks what zlib checks.
        unsafe { z::gzgets(file, buf, len) }
    })
}

/// zlib's `gzsetparams` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzsetparams(file: z::gzFile, level: c_int, strategy: c_int) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzsetparams`; zlib-rs checks what zlib checks.
        unsafe { z::gzsetparams(file, level, strategy) }
    })
}

/// zlib's `gzseek64` (zlib-rs).
#[export_name = "wdz_gzseek64"]
pub unsafe extern "C" fn gzseek64(
    file: z::gzFile,
    offset: z::z_off64_t,
    whence: c_int,
) -> z::z_off64_t {
    guard(-1, || {
        // SAFETY: the caller keeps zlib's contract for `gzseek64`; zlib-rs checks what zlib checks.
        unsafe { z::gzseek64(file, offset, whence) }
    })
}

/// zlib's `gzseek` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzseek(file: z::gzFile, offset: z::z_off_t, whence: c_int) -> z::z_off_t {
    guard(-1, || {
        // SAFETY: the caller keeps zlib's contract for `gzseek`; zlib-rs checks what zlib checks.
        unsafe { z::gzseek(file, offset, whence) }
    })
}

/// zlib's `gzrewind` (zlib-rs).
#[no_mangle]
pub unsafe extern "C" fn gzrewind(file: z::gzFile) -> c_int {
    guard(Z_ERRNO, || {
        // SAFETY: the caller keeps zlib's contract for `gzrewind`; zlib-rs checks what zlib checks.
        unsafe { z::gzrewind(file) }
    })
}

extern "C" {
    /// `csrc/gzprintf.c`: formats with vsnprintf and writes with our `gzwrite`.
    fn gzprintf(file: z::gzFile, format: *const c_char, ...) -> c_int;
}

/// Keeps the C `gzprintf`/`gzvprintf` object in the link (it is exported by
/// `csrc/gzprintf.map`).
#[used]
static KEEP_GZPRINTF: unsafe extern "C" fn(z::gzFile, *const c_char, ...) -> c_int = gzprintf;
