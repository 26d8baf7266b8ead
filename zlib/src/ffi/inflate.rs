//! The inflate family. Our per-stream slot (from the caller's `zalloc`) sits in
//! `strm->state` and holds zlib-rs's own state (also from the caller's `zalloc`), which
//! is put back into `strm->state` for each zlib-rs call; a stream whose first call
//! qualifies runs on the device ([`crate::inflate`], DESIGN.md "Inflate") and moves to
//! zlib-rs, replayed exactly from its log, when it must.

#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::*;
use std::mem::{align_of, size_of};
use std::ptr;

use libz_rs_sys as z;
use libz_rs_sys::{
    z_stream, z_streamp, Z_BLOCK, Z_BUF_ERROR, Z_DATA_ERROR, Z_FINISH, Z_MEM_ERROR, Z_OK,
    Z_STREAM_END, Z_STREAM_ERROR, Z_TREES,
};

use super::guard;
use crate::deflate::Wrap;
use crate::inflate::{simple_header, DeviceInflate, HandOver};
use crate::outbuf::OutBuf;
use crate::stats::{self, Counter};

const MAGIC: u64 = u64::from_le_bytes(*b"wdzINFL1");

/// What `strm->state` points to for our inflate streams.
#[repr(C)]
struct Slot {
    magic: u64,
    owner: z_streamp,
    /// What `zalloc` returned (the slot is aligned inside it).
    base: *mut c_void,
    /// zlib-rs's state of this stream.
    inner: *mut z::internal_state,
    /// windowBits as last set (init or inflateReset2).
    wbits: c_int,
    /// Nothing happened since init or reset: the next call may go to the device.
    fresh: bool,
    /// A call since init or reset that the device path does not do (dictionary, header
    /// request, priming, validation switches): software until the next reset.
    soft_only: bool,
    device: Option<Box<DeviceInflate>>,
    /// After a hand-over: input the caller already gave (and was told was taken) that
    /// zlib-rs has not consumed yet; fed to it before the caller's next input.
    owed: Vec<u8>,
    owed_at: usize,
    /// After a hand-over: bytes at the start of the caller's next input that zlib-rs
    /// already consumed in the replay (a copy the device path kept): skipped, counted as
    /// consumed, on the next call.
    skip_in: usize,
    /// A hand-over found no memory for the replay: the stream can only end or reset
    /// (`Z_MEM_ERROR` meanwhile).
    broken: bool,
}

const SLOT_BYTES: usize = size_of::<Slot>() + align_of::<Slot>();

/// Our slot of `strm`, if `strm` is a live inflate stream of ours.
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
    // SAFETY: non-null and aligned; a foreign state is at least a word long, so reading
    // the magic stays inside it; only ours carries MAGIC and owner.
    let sl = unsafe { &mut *st };
    if sl.magic != MAGIC || sl.owner != strm {
        return None;
    }
    Some(sl)
}

/// Runs `f` on `strm` with zlib-rs's state in `strm->state`, then puts our slot back.
///
/// # Safety
/// `strm` is the live stream `sl` belongs to.
unsafe fn with_inner<R>(strm: z_streamp, sl: &mut Slot, f: impl FnOnce(z_streamp) -> R) -> R {
    // SAFETY: the caller's z_stream (contract); its state is ours and holds `inner`.
    let s = unsafe { &mut *strm };
    let ours = s.state;
    s.state = sl.inner;
    let r = f(strm);
    sl.inner = s.state;
    s.state = ours;
    r
}

/// The format a windowBits value asks for, if the device path can do it exactly.
fn wrap_of(wbits: c_int) -> Option<Wrap> {
    match wbits {
        15 => Some(Wrap::Zlib),
        31 => Some(Wrap::Gzip),
        -15 => Some(Wrap::Raw),
        _ => None,
    }
}

/// The first call of a fresh stream: the device if it qualifies (DESIGN.md).
fn try_device(sl: &mut Slot, input: &[u8], flush: c_int) {
    let cfg = crate::config::get();
    if cfg.offload != crate::config::Offload::Auto
        || cfg.inflate_log == 0
        || matches!(flush, Z_BLOCK | Z_TREES)
        || input.len() < cfg.min_input.max(16)
    {
        return;
    }
    let Some(wrap) = wrap_of(sl.wbits) else {
        return;
    };
    let Some(header) = simple_header(wrap, input) else {
        return;
    };
    match DeviceInflate::new(wrap, header, cfg.inflate_log, cfg.inflate_parallel) {
        Ok(d) => {
            stats::bump(Counter::InflateOffloaded);
            sl.device = Some(Box::new(d));
        }
        Err(r) => wd_core::wd_log!(Debug, "wdz: inflate in software ({r:?})"),
    }
}

/// Moves a device stream to zlib-rs: the log replayed from the start, the output already
/// delivered regenerated and dropped, the rest of the log owed to zlib-rs.
///
/// # Safety
/// `strm` is the live stream `sl` belongs to.
unsafe fn hand_over(strm: z_streamp, sl: &mut Slot, why: Counter) {
    let Some(d) = sl.device.take() else { return };
    stats::bump(why);
    let mut d = *d;
    let (bin, bout) = d.take_bytes();
    stats::add(Counter::InflateBytesIn, bin);
    stats::add(Counter::InflateBytesOut, bout);
    let Some((log, taken, delivered)) = d.replay() else {
        wd_core::wd_log!(
            Warn,
            "wdz: no memory to replay an inflate stream in software"
        );
        sl.broken = true;
        return;
    };
    // SAFETY: the caller's live z_stream.
    let s = unsafe { &mut *strm };
    let saved = (
        s.next_in,
        s.avail_in,
        s.next_out,
        s.avail_out,
        s.total_in,
        s.total_out,
        s.adler,
        s.data_type,
    );
    // SAFETY: zlib-rs's own state on its stream.
    let r = unsafe { with_inner(strm, sl, |p| z::inflateReset(p)) };
    let mut used = 0usize;
    if r == Z_OK {
        let mut scratch = vec![0u8; 64 << 10];
        let mut left = delivered;
        while left > 0 {
            let ask = (left as usize).min(scratch.len());
            s.next_in = log[used..].as_ptr();
            s.avail_in = (log.len() - used).min(c_uint::MAX as usize) as c_uint;
            s.next_out = scratch.as_mut_ptr();
            s.avail_out = ask as c_uint;
            let before_in = s.avail_in;
            // SAFETY: next_in/avail_in describe the log, next_out/avail_out `scratch`.
            let r = unsafe { with_inner(strm, sl, |p| z::inflate(p, z::Z_NO_FLUSH)) };
            used += (before_in - s.avail_in) as usize;
            let got = ask - s.avail_out as usize;
            left -= got as u64;
            if r != Z_OK || (got == 0 && before_in == s.avail_in) {
                if left > 0 {
                    wd_core::wd_log!(
                        Warn,
                        "wdz: software replay ended {left} bytes before the device's output (code {r})"
                    );
                }
                break;
            }
        }
    }
    (
        s.next_in,
        s.avail_in,
        s.next_out,
        s.avail_out,
        s.total_in,
        s.total_out,
        s.adler,
        s.data_type,
    ) = saved;
    if used >= taken {
        sl.skip_in = used - taken;
        sl.owed = Vec::new();
        sl.owed_at = 0;
    } else {
        let mut log = log;
        log.truncate(taken);
        sl.owed = log;
        sl.owed_at = used;
    }
}

/// Takes from the caller's input the bytes zlib-rs already consumed in a replay; true if
/// there were any.
fn apply_skip(s: &mut z_stream, sl: &mut Slot) -> bool {
    let k = sl.skip_in.min(s.avail_in as usize);
    if k == 0 {
        return false;
    }
    s.next_in = s.next_in.wrapping_add(k);
    s.avail_in -= k as c_uint;
    s.total_in = s.total_in.wrapping_add(k as _);
    sl.skip_in -= k;
    true
}

/// zlib-rs's `inflate` on a software stream, after what it is owed.
///
/// # Safety
/// `strm` is the live stream `sl` belongs to, with zlib's contract on its buffers.
unsafe fn soft_inflate(strm: z_streamp, sl: &mut Slot, flush: c_int) -> c_int {
    // SAFETY: the caller's live z_stream.
    let s = unsafe { &mut *strm };
    let mut progress = apply_skip(s, sl);
    if sl.owed_at < sl.owed.len() {
        let (cin, cav, tin) = (s.next_in, s.avail_in, s.total_in);
        let rest = sl.owed.len() - sl.owed_at;
        s.next_in = sl.owed[sl.owed_at..].as_ptr();
        s.avail_in = rest.min(c_uint::MAX as usize) as c_uint;
        let (av_in, av_out) = (s.avail_in, s.avail_out);
        let earlier = progress;
        let f = if matches!(flush, Z_BLOCK | Z_TREES) {
            flush
        } else {
            z::Z_NO_FLUSH
        };
        // SAFETY: next_in/avail_in describe the owed bytes; next_out the caller's.
        let r = unsafe { with_inner(strm, sl, |p| z::inflate(p, f)) };
        sl.owed_at += (av_in - s.avail_in) as usize;
        progress = earlier || av_in != s.avail_in || av_out != s.avail_out;
        (s.next_in, s.avail_in, s.total_in) = (cin, cav, tin);
        if sl.owed_at == sl.owed.len() {
            sl.owed = Vec::new();
            sl.owed_at = 0;
        }
        let more_owed = sl.owed_at < sl.owed.len();
        if more_owed || !matches!(r, Z_OK | Z_BUF_ERROR) || s.avail_out == 0 || f != z::Z_NO_FLUSH {
            return match r {
                Z_BUF_ERROR if progress && flush != Z_FINISH => Z_OK,
                Z_OK if flush == Z_FINISH => Z_BUF_ERROR,
                r => r,
            };
        }
    }
    // SAFETY: the caller's buffers, zlib's contract.
    let r = unsafe { with_inner(strm, sl, |p| z::inflate(p, flush)) };
    if r == Z_BUF_ERROR && progress && flush != Z_FINISH {
        return Z_OK;
    }
    r
}

/// Makes a device stream a software one (for a call the device path does not do) and
/// marks the stream software-only until its next reset.
///
/// # Safety
/// `strm` is null or a z_stream (zlib's contract).
unsafe fn to_soft<'a>(strm: z_streamp) -> Option<&'a mut Slot> {
    // SAFETY: zlib's contract on strm.
    let sl = unsafe { slot(strm) }?;
    // SAFETY: slot() checked strm.
    unsafe { hand_over(strm, sl, Counter::InflateReplayCall) };
    sl.soft_only = true;
    (!sl.broken).then_some(sl)
}

/// Forwards a call to zlib-rs on a software stream (a device stream moved first).
///
/// # Safety
/// `strm` is null or a z_stream (zlib's contract); `f` keeps zlib's contract.
unsafe fn forward(strm: z_streamp, f: impl FnOnce(z_streamp) -> c_int) -> c_int {
    // SAFETY: zlib's contract on strm.
    match unsafe { to_soft(strm) } {
        // SAFETY: to_soft checked strm.
        Some(sl) => unsafe { with_inner(strm, sl, f) },
        None => Z_STREAM_ERROR,
    }
}

/// zlib's `inflate`: the device for a stream whose first call qualifies, else zlib-rs.
#[no_mangle]
pub unsafe extern "C" fn inflate(strm: z_streamp, flush: c_int) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        if sl.broken {
            return Z_MEM_ERROR;
        }
        // SAFETY: slot() checked strm.
        let s = unsafe { &mut *strm };
        if s.next_out.is_null()
            || (s.avail_in != 0 && s.next_in.is_null())
            || !(0..=Z_TREES).contains(&flush)
        {
            // SAFETY: as above.
            return unsafe { with_inner(strm, sl, |p| z::inflate(p, flush)) };
        }
        let input: &[u8] = if s.avail_in == 0 {
            &[]
        } else {
            // SAFETY: zlib's contract: next_in holds avail_in readable bytes.
            unsafe { std::slice::from_raw_parts(s.next_in, s.avail_in as usize) }
        };
        if sl.fresh && !input.is_empty() {
            sl.fresh = false;
            if !sl.soft_only {
                try_device(sl, input, flush);
            }
        }
        if let Some(d) = sl.device.as_mut() {
            if matches!(flush, Z_BLOCK | Z_TREES) {
                // SAFETY: slot() checked strm.
                unsafe { hand_over(strm, sl, Counter::InflateReplayCall) };
                if sl.broken {
                    return Z_MEM_ERROR;
                }
                // SAFETY: as above.
                return unsafe { soft_inflate(strm, sl, flush) };
            }
            // SAFETY: zlib's contract: next_out has avail_out writable bytes.
            let mut out = unsafe { OutBuf::new(s.next_out, s.avail_out as usize) };
            let c = d.inflate(input, &mut out, flush == Z_FINISH);
            s.next_in = s.next_in.wrapping_add(c.consumed);
            s.avail_in -= c.consumed as c_uint;
            s.next_out = s.next_out.wrapping_add(c.produced);
            s.avail_out -= c.produced as c_uint;
            s.total_in = s.total_in.wrapping_add(c.consumed as _);
            s.total_out = s.total_out.wrapping_add(c.produced as _);
            s.adler = d.adler() as _;
            let progress = c.consumed > 0 || c.produced > 0;
            match c.ret {
                Ok(r) => {
                    if r == Z_STREAM_END {
                        s.data_type = 64;
                        let (bin, bout) = d.take_bytes();
                        stats::add(Counter::InflateBytesIn, bin);
                        stats::add(Counter::InflateBytesOut, bout);
                    }
                    return r;
                }
                Err(h) => {
                    let why = match h {
                        HandOver::Error => Counter::InflateReplayError,
                        HandOver::LogFull => Counter::InflateReplayLogFull,
                    };
                    // SAFETY: slot() checked strm.
                    unsafe { hand_over(strm, sl, why) };
                    if sl.broken {
                        return Z_MEM_ERROR;
                    }
                    // SAFETY: as above.
                    let r = unsafe { soft_inflate(strm, sl, flush) };
                    return if r == Z_BUF_ERROR && progress && flush != Z_FINISH {
                        Z_OK
                    } else {
                        r
                    };
                }
            }
        }
        // SAFETY: slot() checked strm.
        unsafe { soft_inflate(strm, sl, flush) }
    })
}

/// zlib's `inflateEnd`.
#[no_mangle]
pub unsafe extern "C" fn inflateEnd(strm: z_streamp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        if let Some(d) = sl.device.as_mut() {
            let (bin, bout) = d.take_bytes();
            stats::add(Counter::InflateBytesIn, bin);
            stats::add(Counter::InflateBytesOut, bout);
        }
        // SAFETY: zlib-rs's state on its stream.
        let r = unsafe { with_inner(strm, sl, |p| z::inflateEnd(p)) };
        let base = sl.base;
        // SAFETY: slot() checked strm.
        let s = unsafe { &mut *strm };
        // SAFETY: the slot was written by an init or inflateCopy and is dropped once;
        // strm->state is cleared so no later call finds it.
        unsafe { ptr::drop_in_place(sl as *mut Slot) };
        s.state = ptr::null_mut();
        // SAFETY: `base` came from this stream's zalloc; zfree is set (slot() checked).
        unsafe { (s.zfree.expect("checked by slot()"))(s.opaque, base) };
        r
    })
}

/// A reset of any kind: the device stream and anything owed dropped, fresh again.
fn reset_slot(sl: &mut Slot) {
    sl.device = None;
    sl.owed = Vec::new();
    sl.owed_at = 0;
    sl.skip_in = 0;
    sl.fresh = true;
    sl.soft_only = false;
    sl.broken = false;
}

/// A reset that keeps the stream's windowBits (`inflateReset`, `inflateResetKeep`): the
/// slot forgets its device stream, then zlib-rs's state is reset by `reset`.
///
/// # Safety
/// zlib's contract on `strm`.
unsafe fn reset_keeping_window_bits(
    strm: z_streamp,
    reset: unsafe extern "C" fn(z_streamp) -> c_int,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm (the caller's).
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        reset_slot(sl);
        // SAFETY: zlib-rs's state on its stream; `reset` is zlib-rs's own function.
        let r = unsafe { with_inner(strm, sl, |p| reset(p)) };
        if r == Z_OK {
            raw_adler(strm, sl.wbits);
        }
        r
    })
}

/// zlib's `inflateReset`.
#[no_mangle]
pub unsafe extern "C" fn inflateReset(strm: z_streamp) -> c_int {
    // SAFETY: zlib's contract on strm, passed on.
    unsafe { reset_keeping_window_bits(strm, z::inflateReset) }
}

/// zlib's `inflateResetKeep`.
#[export_name = "wdz_inflateResetKeep"]
pub unsafe extern "C" fn inflateResetKeep(strm: z_streamp) -> c_int {
    // SAFETY: zlib's contract on strm, passed on.
    unsafe { reset_keeping_window_bits(strm, z::inflateResetKeep) }
}

/// zlib's `inflateReset2`.
#[export_name = "wdz_inflateReset2"]
pub unsafe extern "C" fn inflateReset2(strm: z_streamp, windowBits: c_int) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { slot(strm) }) else {
            return Z_STREAM_ERROR;
        };
        // SAFETY: zlib-rs's state on its stream.
        let r = unsafe { with_inner(strm, sl, |p| z::inflateReset2(p, windowBits)) };
        if r == Z_OK {
            reset_slot(sl);
            sl.wbits = windowBits;
            raw_adler(strm, windowBits);
        }
        r
    })
}

/// zlib's `inflateCopy`: a device source moves to software first; the copy gets its own
/// slot (from its `zalloc`) around zlib-rs's copy of the state.
#[export_name = "wdz_inflateCopy"]
pub unsafe extern "C" fn inflateCopy(dest: z_streamp, source: z_streamp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        if dest.is_null() {
            return Z_STREAM_ERROR;
        }
        // SAFETY: zlib's contract on source.
        let Some(sl) = (unsafe { to_soft(source) }) else {
            return Z_STREAM_ERROR;
        };
        sl.soft_only = sl.soft_only || !sl.fresh;
        // SAFETY: zlib's contract: dest is writable; source is live (checked).
        let r = unsafe { with_inner(source, sl, |p| z::inflateCopy(dest, p)) };
        if r != Z_OK {
            return r;
        }
        // SAFETY: zlib-rs wrote a complete z_stream into dest.
        let d = unsafe { &mut *dest };
        let inner = d.state;
        let mut owed = Vec::new();
        if owed.try_reserve(sl.owed.len() - sl.owed_at).is_err() {
            // SAFETY: dest holds zlib-rs's fresh copy.
            unsafe { z::inflateEnd(dest) };
            return Z_MEM_ERROR;
        }
        owed.extend_from_slice(&sl.owed[sl.owed_at..]);
        let fields = (sl.wbits, sl.fresh, sl.soft_only, sl.skip_in);
        // SAFETY: dest's zalloc/zfree are source's (copied), set at init.
        match unsafe { new_slot(dest, inner, fields.0) } {
            Some(nsl) => {
                nsl.fresh = fields.1;
                nsl.soft_only = fields.2;
                nsl.owed = owed;
                nsl.skip_in = fields.3;
                Z_OK
            }
            None => {
                d.state = inner;
                // SAFETY: dest holds zlib-rs's fresh copy.
                unsafe { z::inflateEnd(dest) };
                Z_MEM_ERROR
            }
        }
    })
}

/// Wraps zlib-rs's state `inner` of `strm` in a new slot from `strm`'s zalloc.
///
/// # Safety
/// `strm` is a z_stream with zalloc/zfree set and `inner` its zlib-rs state.
unsafe fn new_slot<'a>(
    strm: z_streamp,
    inner: *mut z::internal_state,
    wbits: c_int,
) -> Option<&'a mut Slot> {
    // SAFETY: per the contract.
    let s = unsafe { &mut *strm };
    let alloc = s.zalloc?;
    // SAFETY: zlib's allocator contract: items*size bytes or null.
    let base = unsafe { alloc(s.opaque, 1, SLOT_BYTES as c_uint) };
    if base.is_null() {
        return None;
    }
    let at = (base as usize).next_multiple_of(align_of::<Slot>()) as *mut Slot;
    // SAFETY: `at` lies within the SLOT_BYTES block (alignment padding is at most
    // align_of::<Slot>() bytes), aligned, and uninitialised: written once here.
    unsafe {
        at.write(Slot {
            magic: MAGIC,
            owner: strm,
            base,
            inner,
            wbits,
            fresh: true,
            soft_only: false,
            device: None,
            owed: Vec::new(),
            owed_at: 0,
            skip_in: 0,
            broken: false,
        });
    }
    s.state = at.cast();
    // SAFETY: just written.
    Some(unsafe { &mut *at })
}

/// zlib's `inflateMark`.
#[export_name = "wdz_inflateMark"]
pub unsafe extern "C" fn inflateMark(strm: *const z_stream) -> c_long {
    guard(-(1 << 16), || {
        let strm = strm.cast_mut();
        // SAFETY: zlib's contract on strm.
        match unsafe { to_soft(strm) } {
            // SAFETY: checked by to_soft.
            Some(sl) => unsafe { with_inner(strm, sl, |p| z::inflateMark(p)) },
            None => -(1 << 16),
        }
    })
}

/// zlib's `inflateCodesUsed`.
#[export_name = "wdz_inflateCodesUsed"]
pub unsafe extern "C" fn inflateCodesUsed(strm: z_streamp) -> c_ulong {
    guard(c_ulong::MAX, || {
        // SAFETY: zlib's contract on strm.
        match unsafe { to_soft(strm) } {
            // SAFETY: checked by to_soft.
            Some(sl) => unsafe { with_inner(strm, sl, |p| z::inflateCodesUsed(p)) },
            None => c_ulong::MAX,
        }
    })
}

/// zlib's `inflateSync`: what is owed is searched before the caller's input.
#[no_mangle]
pub unsafe extern "C" fn inflateSync(strm: z_streamp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: zlib's contract on strm.
        let Some(sl) = (unsafe { to_soft(strm) }) else {
            return Z_STREAM_ERROR;
        };
        // SAFETY: checked by to_soft.
        apply_skip(unsafe { &mut *strm }, sl);
        if sl.owed_at < sl.owed.len() {
            // SAFETY: checked by to_soft.
            let s = unsafe { &mut *strm };
            let (cin, cav, tin) = (s.next_in, s.avail_in, s.total_in);
            let rest = sl.owed.len() - sl.owed_at;
            s.next_in = sl.owed[sl.owed_at..].as_ptr();
            s.avail_in = rest.min(c_uint::MAX as usize) as c_uint;
            let av = s.avail_in;
            // SAFETY: next_in/avail_in describe the owed bytes.
            let r = unsafe { with_inner(strm, sl, |p| z::inflateSync(p)) };
            sl.owed_at += (av - s.avail_in) as usize;
            (s.next_in, s.avail_in, s.total_in) = (cin, cav, tin);
            if r != Z_DATA_ERROR || sl.owed_at < sl.owed.len() {
                return r;
            }
            sl.owed = Vec::new();
            sl.owed_at = 0;
        }
        // SAFETY: checked by to_soft.
        unsafe { with_inner(strm, sl, |p| z::inflateSync(p)) }
    })
}

/// zlib's `inflateSyncPoint`.
#[no_mangle]
pub unsafe extern "C" fn inflateSyncPoint(strm: z_streamp) -> c_int {
    // SAFETY: zlib's contract on strm.
    guard(Z_STREAM_ERROR, || unsafe {
        forward(strm, |p| z::inflateSyncPoint(p))
    })
}

/// zlib's `inflatePrime`.
#[export_name = "wdz_inflatePrime"]
pub unsafe extern "C" fn inflatePrime(strm: z_streamp, bits: c_int, value: c_int) -> c_int {
    // SAFETY: zlib's contract on strm.
    guard(Z_STREAM_ERROR, || unsafe {
        forward(strm, |p| z::inflatePrime(p, bits, value))
    })
}

/// zlib's `inflateSetDictionary`.
#[no_mangle]
pub unsafe extern "C" fn inflateSetDictionary(
    strm: z_streamp,
    dictionary: *const u8,
    dictLength: c_uint,
) -> c_int {
    // SAFETY: zlib's contract on strm and the dictionary.
    guard(Z_STREAM_ERROR, || unsafe {
        forward(strm, |p| z::inflateSetDictionary(p, dictionary, dictLength))
    })
}

/// zlib's `inflateGetDictionary`.
#[export_name = "wdz_inflateGetDictionary"]
pub unsafe extern "C" fn inflateGetDictionary(
    strm: *const z_stream,
    dictionary: *mut c_uchar,
    dictLength: *mut c_uint,
) -> c_int {
    let strm = strm.cast_mut();
    // SAFETY: zlib's contract on strm and the output pointers.
    guard(Z_STREAM_ERROR, || unsafe {
        forward(strm, |p| z::inflateGetDictionary(p, dictionary, dictLength))
    })
}

/// zlib's `inflateGetHeader`.
#[export_name = "wdz_inflateGetHeader"]
pub unsafe extern "C" fn inflateGetHeader(strm: z_streamp, head: z::gz_headerp) -> c_int {
    // SAFETY: zlib's contract on strm and head.
    guard(Z_STREAM_ERROR, || unsafe {
        forward(strm, |p| z::inflateGetHeader(p, head))
    })
}

/// zlib's `inflateUndermine`.
#[export_name = "wdz_inflateUndermine"]
pub unsafe extern "C" fn inflateUndermine(strm: z_streamp, subvert: c_int) -> c_int {
    // SAFETY: zlib's contract on strm.
    guard(Z_STREAM_ERROR, || unsafe {
        forward(strm, |p| z::inflateUndermine(p, subvert))
    })
}

/// zlib's `inflateValidate`.
#[export_name = "wdz_inflateValidate"]
pub unsafe extern "C" fn inflateValidate(strm: z_streamp, check: c_int) -> c_int {
    // SAFETY: zlib's contract on strm.
    guard(Z_STREAM_ERROR, || unsafe {
        forward(strm, |p| z::inflateValidate(p, check))
    })
}

/// zlib's `inflateInit_`.
#[no_mangle]
pub unsafe extern "C" fn inflateInit_(
    strm: z_streamp,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    // SAFETY: as inflateInit2_ with zlib's default window.
    unsafe { inflateInit2_(strm, 15, version, stream_size) }
}

/// zlib's `inflateInit2_`: zlib-rs's state (from the caller's `zalloc`), wrapped in our
/// slot (also from it), counted.
#[no_mangle]
pub unsafe extern "C" fn inflateInit2_(
    strm: z_streamp,
    windowBits: c_int,
    version: *const c_char,
    stream_size: c_int,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        crate::init_once();
        // SAFETY: the caller keeps zlib's contract for `inflateInit2_` (strm writable, its
        // zalloc/zfree/opaque set or null); zlib-rs checks what zlib checks.
        let r = unsafe { z::inflateInit2_(strm, windowBits, version, stream_size) };
        if r != Z_OK {
            return r;
        }
        // SAFETY: zlib-rs initialised strm (zalloc/zfree set, state its own).
        let inner = unsafe { (*strm).state };
        // SAFETY: as above.
        if unsafe { new_slot(strm, inner, windowBits) }.is_none() {
            // SAFETY: zlib-rs's state is still in strm->state.
            unsafe { z::inflateEnd(strm) };
            return Z_MEM_ERROR;
        }
        stats::bump(Counter::InflateStreams);
        raw_adler(strm, windowBits);
        Z_OK
    })
}

/// zlib leaves `adler` 0 on a raw inflate stream (its `wrap & 1`); zlib-rs sets 1.
fn raw_adler(strm: z_streamp, window_bits: c_int) {
    if window_bits < 0 {
        // SAFETY: called after a successful init/reset of `strm`, a valid z_stream.
        if let Some(s) = unsafe { strm.as_mut() } {
            s.adler = 0;
        }
    }
}

/// zlib's `inflateBackInit_` (zlib-rs).
#[export_name = "wdz_inflateBackInit_"]
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
#[export_name = "wdz_inflateBack"]
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
#[export_name = "wdz_inflateBackEnd"]
pub unsafe extern "C" fn inflateBackEnd(strm: z::z_streamp) -> c_int {
    guard(Z_STREAM_ERROR, || {
        // SAFETY: the caller keeps zlib's contract for `inflateBackEnd`; zlib-rs checks what zlib checks.
        unsafe { z::inflateBackEnd(strm) }
    })
}

/// zlib's `uncompress2`, through our inflate (so a whole stream may be decoded on the
/// device): zlib's loop over `uInt`-sized pieces, its codes (`Z_DATA_ERROR` for a stream
/// that needs a dictionary or ends early, `Z_BUF_ERROR` for a full `dest`) and its
/// reports (`*destLen` the bytes written, `*sourceLen` the bytes consumed). A call that
/// fails is done again by zlib-rs: the device reads ahead of what fits in `dest`, so only
/// software gives zlib's consumed count for a `dest` too small (and errors are rare).
#[export_name = "wdz_uncompress2"]
pub unsafe extern "C" fn uncompress2(
    dest: *mut u8,
    destLen: *mut c_ulong,
    source: *const u8,
    sourceLen: *mut c_ulong,
) -> c_int {
    guard(Z_STREAM_ERROR, || {
        if destLen.is_null() || sourceLen.is_null() {
            return Z_STREAM_ERROR;
        }
        // SAFETY: both non-null and, by zlib's contract, readable and writable.
        let (mut dest_left, mut src_left) = unsafe { (*destLen, *sourceLen) };
        let (dest_len0, source_len0) = (dest_left, src_left);
        if (dest.is_null() && dest_left != 0) || (source.is_null() && src_left != 0) {
            return Z_STREAM_ERROR;
        }
        // A zero-length destination still tells a complete empty stream from more data:
        // zlib decodes into one byte of its own then.
        let mut one = [0u8; 1];
        let (out, own) = if dest_left == 0 {
            dest_left = 1;
            (one.as_mut_ptr(), true)
        } else {
            (dest, false)
        };
        let mut s = z_stream::default();
        // SAFETY: a fresh local z_stream; our inflateInit_ sets the default allocator.
        let r = unsafe { inflateInit_(&mut s, z::zlibVersion(), size_of::<z_stream>() as c_int) };
        if r != Z_OK {
            return r;
        }
        s.next_in = source;
        s.next_out = out;
        let mut err;
        loop {
            super::refill(&mut s, &mut dest_left, &mut src_left);
            // SAFETY: our initialised stream over the caller's buffers (zlib's contract:
            // dest has *destLen bytes, source *sourceLen) or over `one`, alive here.
            err = unsafe { inflate(&mut s, z::Z_NO_FLUSH) };
            if err != Z_OK {
                break;
            }
        }
        if err != Z_STREAM_END {
            // SAFETY: our stream, ended once.
            unsafe { inflateEnd(&mut s) };
            // SAFETY: both non-null; the caller's buffers and lengths as given, under
            // zlib's contract, which zlib-rs checks as zlib does.
            return unsafe {
                *destLen = dest_len0;
                *sourceLen = source_len0;
                z::uncompress2(dest, destLen, source, sourceLen)
            };
        }
        let unused = src_left + c_ulong::from(s.avail_in);
        // SAFETY: both non-null (checked above).
        unsafe {
            *sourceLen -= unused;
            if !own {
                *destLen = s.total_out as c_ulong;
            }
        }
        // SAFETY: our stream, ended once.
        unsafe { inflateEnd(&mut s) };
        Z_OK
    })
}

/// zlib's `uncompress`: `uncompress2` without the consumed count.
#[no_mangle]
pub unsafe extern "C" fn uncompress(
    dest: *mut u8,
    destLen: *mut c_ulong,
    source: *const u8,
    sourceLen: c_ulong,
) -> c_int {
    let mut len = sourceLen;
    // SAFETY: forwarded under the same contract; `len` is a live local.
    unsafe { uncompress2(dest, destLen, source, &mut len) }
}
