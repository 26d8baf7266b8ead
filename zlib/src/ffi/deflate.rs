//! The deflate family. Our per-stream state lives in memory from the caller's `zalloc`
//! (zlib's default, calloc, when it is null), reached through `strm->state`, and carries
//! a magic word and a pointer back to its z_stream (zlib's `deflateStateCheck`).

#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::mem::{align_of, size_of};
use std::ptr;

use libz_rs_sys as z;
use libz_rs_sys::{
    z_stream, z_streamp, Z_MEM_ERROR, Z_OK, Z_STREAM_ERROR, Z_UNKNOWN, Z_VERSION_ERROR,
};

use super::guard;
use crate::deflate::{DeflateStream, Params, Wrap};
use crate::outbuf::OutBuf;
use crate::stats::Counter;

const MAGIC: u64 = u64::from_le_bytes(*b"wdzDEFL1");

/// What `strm->state` points to for our deflate streams.
#[repr(C)]
struct Slot {
    magic: u64,
    owner: *mut z_stream,
    /// What `zalloc` returned (the slot is aligned inside it).
    base: *mut c_void,
    stream: DeflateStream,
}

/// zlib's default allocator (zcalloc).
unsafe extern "C" fn default_alloc(
    _opaque: *mut c_void,
    items: c_uint,
    size: c_uint,
) -> *mut c_void {
    // SAFETY: calloc has no preconditions; it checks the product for overflow.
    unsafe { libc::calloc(items as usize, size as usize) }
}

/// zlib's default free (zcfree).
unsafe extern "C" fn default_free(_opaque: *mut c_void, p: *mut c_void) {
    // SAFETY: `p` came from default_alloc (calloc) or is null.
    unsafe { libc::free(p) }
}

const SLOT_BYTES: usize = size_of::<Slot>() + align_of::<Slot>();

/// The version check of zlib's `*Init_` functions.
fn version_ok(version: *const c_char, stream_size: c_int) -> bool {
    if version.is_null() || stream_size != size_of::<z_stream>() as c_int {
        return false;
    }
    // SAFETY: a non-null version string from zlib.h's ZLIB_VERSION: at least one byte.
    unsafe { *version == b'1' as c_char }
}

/// Our slot of `strm`, if `strm` is a live deflate stream of ours.
///
/// # Safety
/// `strm` is null or points to a z_stream the caller owns; its `state` is null or was set
/// by a zlib-compatible init.
unsafe fn slot<'a>(strm: z_streamp) -> Option<&'a mut Slot> {
    // SAFETY: per the contract, strm is null or a valid z_stream.
    let s = unsafe { strm.as_mut() }?;
    let st = s.state.cast::<Slot>();
    if st.is_null()
        || s.zalloc.is_none()
        || s.zfree.is_none()
        || !(st as usize).is_multiple_of(align_of::<Slot>())
    {
        return None;
    }
    // SAFETY: non-null and aligned; a foreign state (another library's) is at least a
    // word long, so reading the magic stays inside it; only ours carries MAGIC and owner.
    let sl = unsafe { &mut *st };
    if sl.magic != MAGIC || sl.owner != strm {
        return None;
    }
    Some(sl)
}

/// zlib's `deflateInit_`.
#[no_mangle]
pub unsafe extern "C" fn deflateInit_(
    strm: z_streamp,
    level: c_int,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    // SAFETY: forwarded under the same contract.
    unsafe { deflateInit2_(strm, level, 8, 15, 8, 0, version, stream_size) }
}

/// zlib's `deflateInit2_`: validates like zlib, allocates our slot with the caller's
/// `zalloc`, and routes the stream (DESIGN.md).
#[no_mangle]
pub unsafe extern "C" fn deflateInit2_(
    strm: z_streamp,
    level: c_int,
    method: c_int,
    windowBits: c_int,
    memLevel: c_int,
    strategy: c_int,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        crate::init_once();
        if !version_ok(version, stream_size) {
            return Z_VERSION_ERROR;
        }
        // SAFETY: the caller's z_stream (zlib's contract), or null.
        let Some(s) = (unsafe { strm.as_mut() }) else {
            return Z_STREAM_ERROR;
        };
        s.msg = ptr::null_mut();
        if s.zalloc.is_none() {
            s.zalloc = Some(default_alloc);
            s.opaque = ptr::null_mut();
        }
        if s.zfree.is_none() {
            s.zfree = Some(default_free);
        }
        let Some(params) = Params::check(level, method, windowBits, memLevel, strategy) else {
            return Z_STREAM_ERROR;
        };
        let stream = match DeflateStream::new(params) {
            Ok(d) => d,
            Err(e) => return e,
        };
        // SAFETY: s.zalloc is set (above); zlib's allocator contract: items*size bytes or null.
        let base = unsafe { (s.zalloc.expect("set above"))(s.opaque, 1, SLOT_BYTES as c_uint) };
        if base.is_null() {
            return Z_MEM_ERROR;
        }
        let at = (base as usize).next_multiple_of(align_of::<Slot>()) as *mut Slot;
        // SAFETY: `at` lies within the SLOT_BYTES block (alignment padding is at most
        // align_of::<Slot>() bytes), aligned, and uninitialised: written once here.
        unsafe {
            at.write(Slot {
                magic: MAGIC,
                owner: strm,
                base,
                stream,
            });
        }
        s.state = at.cast();
        s.total_in = 0;
        s.total_out = 0;
        s.data_type = Z_UNKNOWN;
        s.adler = match params.wrap() {
            Wrap::Gzip => 0,
            _ => 1,
        };
        Z_OK
    })
}

/// Writes the shim's view back into the z_stream after a call.
fn write_back(s: &mut z_stream, d: &DeflateStream, consumed: usize, produced: usize, ret: c_int) {
    // SAFETY (pointer arithmetic): consumed <= avail_in and produced <= avail_out, both
    // checked by the callers' slices and OutBuf.
    s.next_in = s.next_in.wrapping_add(consumed);
    s.avail_in -= consumed as c_uint;
    s.next_out = s.next_out.wrapping_add(produced);
    s.avail_out -= produced as c_uint;
    s.total_in = s.total_in.wrapping_add(consumed as _);
    s.total_out = s.total_out.wrapping_add(produced as _);
    s.adler = d.adler() as _;
    s.data_type = d.data_type();
    if ret < 0 {
        s.msg = d
            .msg()
            .filter(|m| !m.is_null())
            .unwrap_or_else(|| z::zError(ret).cast_mut());
    }
}

/// zlib's `deflate`.
#[no_mangle]
pub unsafe extern "C" fn deflate(strm: z_streamp, flush: c_int) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        // SAFETY: slot() checked strm is a valid z_stream.
        let s = unsafe { &mut *strm };
        if s.next_out.is_null() || (s.avail_in != 0 && s.next_in.is_null()) {
            s.msg = z::zError(Z_STREAM_ERROR).cast_mut();
            return Z_STREAM_ERROR;
        }
        let input: &[u8] = if s.avail_in == 0 {
            &[]
        } else {
            // SAFETY: zlib's contract: next_in holds avail_in readable bytes, not written
            // by us during the call.
            unsafe { std::slice::from_raw_parts(s.next_in, s.avail_in as usize) }
        };
        // SAFETY: zlib's contract: next_out has avail_out writable bytes.
        let mut out = unsafe { OutBuf::new(s.next_out, s.avail_out as usize) };
        let done = sl.stream.deflate(input, &mut out, flush);
        let produced = out.written();
        write_back(s, &sl.stream, done.consumed, produced, done.ret);
        done.ret
    })
}

/// zlib's `deflateEnd`.
#[no_mangle]
pub unsafe extern "C" fn deflateEnd(strm: z_streamp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        let code = sl.stream.end_code();
        let base = sl.base;
        // SAFETY: slot() checked strm.
        let s = unsafe { &mut *strm };
        // SAFETY: the slot was written by deflateInit2_/deflateCopy and is dropped once;
        // strm->state is cleared so no later call finds it.
        unsafe { ptr::drop_in_place(sl as *mut Slot) };
        s.state = ptr::null_mut();
        // SAFETY: `base` came from this stream's zalloc; zfree is set (slot() checked).
        unsafe { (s.zfree.expect("checked by slot()"))(s.opaque, base) };
        code
    })
}

/// zlib's `deflateReset`.
#[no_mangle]
pub unsafe extern "C" fn deflateReset(strm: z_streamp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        let r = sl.stream.reset();
        // SAFETY: slot() checked strm.
        let s = unsafe { &mut *strm };
        s.total_in = 0;
        s.total_out = 0;
        s.msg = ptr::null_mut();
        s.data_type = Z_UNKNOWN;
        s.adler = sl.stream.adler() as _;
        r
    })
}

/// zlib's `deflateResetKeep` (the same as a reset here: no statistics are kept apart).
#[export_name = "wdz_deflateResetKeep"]
pub unsafe extern "C" fn deflateResetKeep(strm: z_streamp) -> c_int {
    // SAFETY: forwarded under the same contract.
    unsafe { deflateReset(strm) }
}

/// zlib's `deflateParams`: a change mid-stream moves the rest of a device stream to
/// software (after flushing what it holds).
#[no_mangle]
pub unsafe extern "C" fn deflateParams(strm: z_streamp, level: c_int, strategy: c_int) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        // SAFETY: slot() checked strm.
        let s = unsafe { &mut *strm };
        let room = if s.next_out.is_null() {
            0
        } else {
            s.avail_out as usize
        };
        // SAFETY: zlib's contract: next_out (if set) has avail_out writable bytes.
        let mut out = unsafe { OutBuf::new(s.next_out, room) };
        let r = sl.stream.params(level, strategy, &mut out);
        let produced = out.written();
        write_back(s, &sl.stream, 0, produced, r);
        r
    })
}

/// Runs `f` on the stream's software engine (moving the stream there first, counted as
/// `why`), or Z_STREAM_ERROR when a started device stream cannot move.
unsafe fn on_soft(
    strm: z_streamp,
    why: Counter,
    mid_stream_ok: bool,
    f: impl FnOnce(&mut crate::soft::SoftDeflate) -> c_int,
) -> c_int {
    // SAFETY: zlib's contract on strm (the caller's).
    let Some(sl) = (unsafe { slot(strm) }) else {
        return Z_STREAM_ERROR;
    };
    let r = match sl.stream.soft_for(why, mid_stream_ok) {
        Some(sd) => f(sd),
        None => Z_STREAM_ERROR,
    };
    // SAFETY: slot() checked strm.
    let s = unsafe { &mut *strm };
    s.adler = sl.stream.adler() as _;
    r
}

/// zlib's `deflateSetDictionary` (software: the device has no preset dictionary).
#[no_mangle]
pub unsafe extern "C" fn deflateSetDictionary(
    strm: z_streamp,
    dictionary: *const u8,
    dictLength: c_uint,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        if dictionary.is_null() {
            return Z_STREAM_ERROR;
        }
        // SAFETY: zlib's contract: dictionary holds dictLength bytes.
        let d = unsafe { std::slice::from_raw_parts(dictionary, dictLength as usize) };
        // SAFETY: zlib's contract on strm.
        unsafe {
            on_soft(strm, Counter::FallbackParams, false, |sd| {
                sd.set_dictionary(d)
            })
        }
    })
}

/// zlib's `deflateGetDictionary`.
#[export_name = "wdz_deflateGetDictionary"]
pub unsafe extern "C" fn deflateGetDictionary(
    strm: z_streamp,
    dictionary: *mut u8,
    dictLength: *mut c_uint,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm, dictionary and dictLength, forwarded.
        unsafe {
            on_soft(strm, Counter::FallbackMidStream, true, |sd| {
                sd.get_dictionary(dictionary, dictLength)
            })
        }
    })
}

/// zlib's `deflatePrime`.
#[export_name = "wdz_deflatePrime"]
pub unsafe extern "C" fn deflatePrime(strm: z_streamp, bits: c_int, value: c_int) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        unsafe {
            on_soft(strm, Counter::FallbackParams, true, |sd| {
                sd.prime(bits, value)
            })
        }
    })
}

/// zlib's `deflateTune`.
#[export_name = "wdz_deflateTune"]
pub unsafe extern "C" fn deflateTune(
    strm: z_streamp,
    good_length: c_int,
    max_lazy: c_int,
    nice_length: c_int,
    max_chain: c_int,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        unsafe {
            on_soft(strm, Counter::FallbackParams, true, |sd| {
                sd.tune(good_length, max_lazy, nice_length, max_chain)
            })
        }
    })
}

/// zlib's `deflateSetHeader` (gzip streams; software: the header's fields are zlib-rs's).
#[export_name = "wdz_deflateSetHeader"]
pub unsafe extern "C" fn deflateSetHeader(strm: z_streamp, head: z::gz_headerp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        if sl.stream.wrap() != Wrap::Gzip {
            return Z_STREAM_ERROR;
        }
        // SAFETY: zlib's contract on strm and head (valid until the header is written).
        unsafe {
            on_soft(strm, Counter::FallbackParams, false, |sd| {
                sd.set_header(head)
            })
        }
    })
}

/// zlib's `deflatePending`.
#[export_name = "wdz_deflatePending"]
pub unsafe extern "C" fn deflatePending(
    strm: z_streamp,
    pending: *mut c_uint,
    bits: *mut c_int,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        let (r, p, b) = sl.stream.pending();
        // SAFETY: zlib's contract: each out pointer is null or writable.
        unsafe {
            if let Some(x) = pending.as_mut() {
                *x = p;
            }
            if let Some(x) = bits.as_mut() {
                *x = b;
            }
        }
        r
    })
}

/// zlib's `deflateBound`: an upper bound for either engine.
#[export_name = "wdz_deflateBound"]
pub unsafe extern "C" fn deflateBound(strm: z_streamp, sourceLen: c_ulong) -> c_ulong {
    guard(0, || {
        // SAFETY: zlib's contract on strm (null allowed: the conservative bound).
        match unsafe { slot(strm) } {
            Some(sl) => sl.stream.bound(sourceLen) as c_ulong,
            None => {
                // zlib 1.2.13's conservative bound for an unknown stream, or zlib-rs's.
                let n = sourceLen;
                let fixed = n + (n >> 3) + (n >> 8) + (n >> 9) + 4;
                let stored = n + (n >> 5) + (n >> 7) + (n >> 11) + 7;
                let zlib = fixed.max(stored) + 6;
                // SAFETY: a null stream asks zlib-rs for its conservative bound.
                zlib.max(unsafe { z::deflateBound(ptr::null_mut(), n) })
            }
        }
    })
}

/// zlib's `deflateCopy`: `dest` gets the source's fields and a copy of its state (a
/// device stream moves to software first).
#[no_mangle]
pub unsafe extern "C" fn deflateCopy(dest: z_streamp, source: z_streamp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        if dest.is_null() {
            return Z_STREAM_ERROR;
        }
        // SAFETY: zlib's contract on source.
        let Some(sl) = (unsafe { slot(source) }) else {
            return Z_STREAM_ERROR;
        };
        let copy = match sl.stream.try_clone() {
            Ok(c) => c,
            Err(e) => return e,
        };
        // SAFETY: dest is a writable z_stream (zlib's contract) distinct from source;
        // zlib copies the whole struct first, as we do.
        unsafe { ptr::copy_nonoverlapping(source, dest, 1) };
        // SAFETY: dest now holds source's fields.
        let d = unsafe { &mut *dest };
        // SAFETY: zfree/zalloc were set at init (slot() checked them on source).
        let base = unsafe { (d.zalloc.expect("checked"))(d.opaque, 1, SLOT_BYTES as c_uint) };
        if base.is_null() {
            d.state = ptr::null_mut();
            return Z_MEM_ERROR;
        }
        let at = (base as usize).next_multiple_of(align_of::<Slot>()) as *mut Slot;
        // SAFETY: as in deflateInit2_: inside the block, aligned, written once.
        unsafe {
            at.write(Slot {
                magic: MAGIC,
                owner: dest,
                base,
                stream: copy,
            })
        };
        d.state = at.cast();
        Z_OK
    })
}

/// zlib's `compress2`, through our deflate (so it may use the device).
#[no_mangle]
pub unsafe extern "C" fn compress2(
    dest: *mut u8,
    destLen: *mut c_ulong,
    source: *const u8,
    sourceLen: c_ulong,
    level: c_int,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        if destLen.is_null() || (source.is_null() && sourceLen != 0) {
            return Z_STREAM_ERROR;
        }
        // SAFETY: destLen is non-null and, by zlib's contract, readable and writable.
        let mut left = unsafe { *destLen };
        if dest.is_null() && left != 0 {
            return Z_STREAM_ERROR;
        }
        let mut s = z_stream::default();
        let ver = z::zlibVersion();
        // SAFETY: a fresh local z_stream; our deflateInit_ sets the default allocator.
        let r = unsafe { deflateInit_(&mut s, level, ver, size_of::<z_stream>() as c_int) };
        if r != Z_OK {
            return r;
        }
        let mut src_left = sourceLen;
        s.next_out = dest;
        s.next_in = source;
        let mut err;
        loop {
            super::refill(&mut s, &mut left, &mut src_left);
            let flush = if src_left != 0 {
                z::Z_NO_FLUSH
            } else {
                z::Z_FINISH
            };
            // SAFETY: s is our initialised stream over the caller's buffers (zlib's
            // contract for compress2: dest has *destLen bytes, source sourceLen).
            err = unsafe { deflate(&mut s, flush) };
            if err != Z_OK {
                break;
            }
        }
        let total = s.total_out as c_ulong;
        // SAFETY: destLen checked non-null above.
        unsafe { *destLen = total };
        // SAFETY: our stream, ended once.
        unsafe { deflateEnd(&mut s) };
        if err == z::Z_STREAM_END {
            Z_OK
        } else {
            err
        }
    })
}

/// zlib's `compress`.
#[no_mangle]
pub unsafe extern "C" fn compress(
    dest: *mut u8,
    destLen: *mut c_ulong,
    source: *const u8,
    sourceLen: c_ulong,
) -> c_int {
    // SAFETY: forwarded under the same contract.
    unsafe { compress2(dest, destLen, source, sourceLen, -1) }
}
