//! Streaming compression for C (`include/wd/comp.h`): `struct wd_stream` with explicit
//! input and output buffers, `wd_deflate_*` / `wd_inflate_*`, formats deflate, zlib and
//! gzip, on the ZIP device when there is one (hisi_zip's per-thread queue pool,
//! `WD_DEVICES`) and in software otherwise. Names never clash with zlib's.

use std::io;

use hisi_zip::{Compressor, Decompressor, Format, Offload};

use crate::guard;

/// Return value: progress made, more to do.
pub const WD_OK: i32 = 0;
/// Return value: the stream is complete and all its output delivered.
pub const WD_STREAM_END: i32 = 1;

/// Flush: none (the library may hold input back).
pub const WD_NO_FLUSH: i32 = 0;
/// Flush: everything so far to a byte boundary.
pub const WD_SYNC_FLUSH: i32 = 2;
/// Flush: no more input follows.
pub const WD_FINISH: i32 = 4;

/// `struct wd_stream` (see comp.h).
#[repr(C)]
#[derive(Debug)]
pub struct WdStream {
    /// Next input byte.
    pub next_in: *const u8,
    /// Input bytes available at `next_in`.
    pub avail_in: usize,
    /// Input bytes taken so far.
    pub total_in: u64,
    /// Where the next output byte goes.
    pub next_out: *mut u8,
    /// Room at `next_out`.
    pub avail_out: usize,
    /// Output bytes delivered so far.
    pub total_out: u64,
    /// Private state (NULL before init and after end).
    pub state: *mut std::ffi::c_void,
}

enum Kind {
    Comp(Compressor),
    Decomp(Decompressor),
}

struct State {
    kind: Kind,
    format: Format,
    out: Vec<u8>,
    pos: usize,
    finished: bool,
    /// Decompression: the end of the input was declared (finish called).
    finished_input: bool,
}

fn format_of(f: i32) -> Option<Format> {
    match f {
        0 => Some(Format::Deflate),
        1 => Some(Format::Zlib),
        2 => Some(Format::Gzip),
        _ => None,
    }
}

fn errno_of(e: &io::Error) -> i32 {
    match e.kind() {
        io::ErrorKind::InvalidData => -libc::EBADMSG,
        io::ErrorKind::UnexpectedEof => -libc::ENODATA,
        io::ErrorKind::InvalidInput => -libc::EINVAL,
        io::ErrorKind::OutOfMemory => -libc::ENOMEM,
        _ => -libc::EIO,
    }
}

/// The stream's state, checked.
///
/// # Safety
/// `s` must be NULL or point to a `struct wd_stream` the caller owns.
unsafe fn state<'a>(s: *mut WdStream) -> Option<(&'a mut WdStream, &'a mut State)> {
    // SAFETY: the caller passes NULL or a valid, exclusively owned stream.
    let s = unsafe { s.as_mut() }?;
    let st = s.state.cast::<State>();
    // SAFETY: a non-NULL state was made by Box::into_raw in init and is freed only by end,
    // which sets it to NULL.
    let st = unsafe { st.as_mut() }?;
    Some((s, st))
}

fn init(s: *mut WdStream, kind: io::Result<Kind>, format: Format) -> i32 {
    // SAFETY: the caller passes NULL or a valid stream it owns.
    let Some(strm) = (unsafe { s.as_mut() }) else {
        return -libc::EINVAL;
    };
    match kind {
        Ok(kind) => {
            let st = Box::new(State {
                kind,
                format,
                out: Vec::new(),
                pos: 0,
                finished: false,
                finished_input: false,
            });
            strm.total_in = 0;
            strm.total_out = 0;
            strm.state = Box::into_raw(st).cast();
            0
        }
        Err(e) => errno_of(&e),
    }
}

/// Starts a compression stream of `format` (0 deflate, 1 zlib, 2 gzip) at `level` (0..9,
/// -1 = default 6).
///
/// # Safety
/// `s` must be NULL or point to a writable `struct wd_stream`.
#[no_mangle]
pub unsafe extern "C" fn wd_deflate_init(s: *mut WdStream, format: i32, level: i32) -> i32 {
    guard(|| {
        let Some(f) = format_of(format) else {
            return -libc::EINVAL;
        };
        let level = match level {
            -1 => hisi_zip::DEFAULT_LEVEL,
            0..=9 => level as u32,
            _ => return -libc::EINVAL,
        };
        crate::plug_devices();
        init(
            s,
            Compressor::with_options(f, level, Offload::Auto, None).map(Kind::Comp),
            f,
        )
    })
}

/// Starts a decompression stream of `format`.
///
/// # Safety
/// `s` must be NULL or point to a writable `struct wd_stream`.
#[no_mangle]
pub unsafe extern "C" fn wd_inflate_init(s: *mut WdStream, format: i32) -> i32 {
    guard(|| {
        let Some(f) = format_of(format) else {
            return -libc::EINVAL;
        };
        crate::plug_devices();
        init(s, Decompressor::new(f).map(Kind::Decomp), f)
    })
}

/// Moves buffered output into the caller's buffer.
fn drain(s: &mut WdStream, st: &mut State) {
    let n = s.avail_out.min(st.out.len() - st.pos);
    if n > 0 {
        // SAFETY: the caller promised `avail_out` writable bytes at `next_out` (checked
        // non-NULL by the callers of drain when avail_out > 0); the source is our buffer.
        unsafe { std::ptr::copy_nonoverlapping(st.out.as_ptr().add(st.pos), s.next_out, n) };
        // SAFETY: n ≤ avail_out, so the pointer stays within the caller's buffer.
        s.next_out = unsafe { s.next_out.add(n) };
        s.avail_out -= n;
        s.total_out += n as u64;
        st.pos += n;
    }
    if st.pos == st.out.len() {
        st.out.clear();
        st.pos = 0;
    }
}

/// Takes up to `max` bytes of the available input.
///
/// # Safety
/// `next_in` must hold `avail_in` readable bytes.
unsafe fn take_input<'a>(s: &mut WdStream, max: usize) -> Option<&'a [u8]> {
    if s.avail_in == 0 {
        return Some(&[]);
    }
    if s.next_in.is_null() {
        return None;
    }
    let n = s.avail_in.min(max);
    // SAFETY: the caller promised `avail_in` readable bytes at `next_in`; n ≤ avail_in.
    let input = unsafe { std::slice::from_raw_parts(s.next_in, n) };
    // SAFETY: advancing by n ≤ avail_in stays within (or one past) the buffer.
    s.next_in = unsafe { s.next_in.add(n) };
    s.total_in += n as u64;
    s.avail_in -= n;
    Some(input)
}

/// Input a decompression step takes at a time: with the decompressor's output budget
/// this bounds the stream's memory whatever the input's expansion ratio.
const INFLATE_FEED: usize = 1 << 20;

/// One `wd_inflate` call: input is taken a piece at a time, and only while no output is
/// waiting, so what the stream holds is bounded (about `OUT_BUDGET` plus one piece of
/// input) however much the input expands.
fn inflate_step(s: &mut WdStream, st: &mut State, flush: i32) -> io::Result<()> {
    loop {
        drain(s, st);
        if !st.out.is_empty() {
            return Ok(());
        }
        let Kind::Decomp(d) = &mut st.kind else {
            return Ok(());
        };
        if d.output_pending() {
            if st.finished_input {
                d.finish(&mut st.out)?;
                st.finished = !d.output_pending();
            } else {
                d.decompress(&[], &mut st.out)?;
            }
            continue;
        }
        if s.avail_in > 0 {
            // SAFETY: the caller promised `avail_in` readable bytes at `next_in`.
            let Some(input) = (unsafe { take_input(s, INFLATE_FEED) }) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "next_in is NULL",
                ));
            };
            d.decompress(input, &mut st.out)?;
            continue;
        }
        if flush == WD_FINISH && !st.finished && !st.finished_input {
            st.finished_input = true;
            d.finish(&mut st.out)?;
            st.finished = !d.output_pending();
            continue;
        }
        return Ok(());
    }
}

fn step(s: *mut WdStream, flush: i32, want_comp: bool) -> i32 {
    if !matches!(flush, WD_NO_FLUSH | WD_SYNC_FLUSH | WD_FINISH) {
        return -libc::EINVAL;
    }
    // SAFETY: NULL or a stream the caller owns; state checked inside.
    let Some((s, st)) = (unsafe { state(s) }) else {
        return -libc::EINVAL;
    };
    if s.avail_out > 0 && s.next_out.is_null() {
        return -libc::EINVAL;
    }
    if matches!(st.kind, Kind::Comp(_)) != want_comp {
        return -libc::EINVAL;
    }
    if s.avail_in > 0 && s.next_in.is_null() {
        return -libc::EINVAL;
    }
    if !want_comp {
        if let Err(e) = inflate_step(s, st, flush) {
            return errno_of(&e);
        }
        return match &st.kind {
            Kind::Decomp(d)
                if st.out.is_empty()
                    && s.avail_in == 0
                    && d.is_complete()
                    && (st.finished || st.format != Format::Gzip) =>
            {
                WD_STREAM_END
            }
            _ => WD_OK,
        };
    }
    // Deliver what is pending first; take no input while output is waiting.
    drain(s, st);
    if !st.out.is_empty() {
        return WD_OK;
    }
    // SAFETY: the caller promised `avail_in` readable bytes at `next_in`.
    let Some(input) = (unsafe { take_input(s, usize::MAX) }) else {
        return -libc::EINVAL;
    };
    let r = match &mut st.kind {
        Kind::Comp(c) => {
            if st.finished {
                if input.is_empty() {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "input after WD_FINISH",
                    ))
                }
            } else {
                let mut r = c.compress(input, &mut st.out);
                if r.is_ok() && flush == WD_SYNC_FLUSH {
                    r = c.flush(&mut st.out);
                }
                if r.is_ok() && flush == WD_FINISH {
                    r = c.finish(&mut st.out);
                    st.finished = r.is_ok();
                }
                r
            }
        }
        Kind::Decomp(_) => Ok(()),
    };
    if let Err(e) = r {
        return errno_of(&e);
    }
    drain(s, st);
    if st.finished && st.out.is_empty() {
        WD_STREAM_END
    } else {
        WD_OK
    }
}

/// Compresses: takes all of `avail_in`, writes as much output as fits.
///
/// # Safety
/// `s` must be a stream started with `wd_deflate_init`; its buffers as described in comp.h.
#[no_mangle]
pub unsafe extern "C" fn wd_deflate(s: *mut WdStream, flush: i32) -> i32 {
    guard(|| step(s, flush, true))
}

/// Decompresses: takes all of `avail_in`, writes as much output as fits.
///
/// # Safety
/// `s` must be a stream started with `wd_inflate_init`; its buffers as described in comp.h.
#[no_mangle]
pub unsafe extern "C" fn wd_inflate(s: *mut WdStream, flush: i32) -> i32 {
    guard(|| step(s, flush, false))
}

fn end(s: *mut WdStream) -> i32 {
    // SAFETY: NULL or a stream the caller owns.
    let Some(strm) = (unsafe { s.as_mut() }) else {
        return -libc::EINVAL;
    };
    if strm.state.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: made by Box::into_raw in init; set to NULL right after, so freed once.
    drop(unsafe { Box::from_raw(strm.state.cast::<State>()) });
    strm.state = std::ptr::null_mut();
    0
}

/// Frees a compression stream.
///
/// # Safety
/// `s` must be NULL or a stream started with `wd_deflate_init`.
#[no_mangle]
pub unsafe extern "C" fn wd_deflate_end(s: *mut WdStream) -> i32 {
    guard(|| end(s))
}

/// Frees a decompression stream.
///
/// # Safety
/// `s` must be NULL or a stream started with `wd_inflate_init`.
#[no_mangle]
pub unsafe extern "C" fn wd_inflate_end(s: *mut WdStream) -> i32 {
    guard(|| end(s))
}

/// 1 if the stream runs on the accelerator, 0 if in software, negative errno if invalid.
///
/// # Safety
/// `s` must be NULL or a started stream.
#[no_mangle]
pub unsafe extern "C" fn wd_stream_offloaded(s: *mut WdStream) -> i32 {
    guard(|| {
        // SAFETY: NULL or a started stream.
        let Some((_, st)) = (unsafe { state(s) }) else {
            return -libc::EINVAL;
        };
        i32::from(match &st.kind {
            Kind::Comp(c) => c.is_offloaded(),
            Kind::Decomp(d) => d.is_offloaded(),
        })
    })
}
