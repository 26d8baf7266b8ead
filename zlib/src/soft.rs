//! The software engine: one zlib-rs deflate stream (through `libz-rs-sys`'s Rust functions,
//! never through exported symbols) owned by our stream state. This module is the only
//! place our logic meets zlib-rs's raw z_stream: the pointers it hands over are always
//! this call's slices and the caller's output window.

use std::ffi::{c_char, c_int, c_uint};

use libz_rs_sys as z;

use crate::outbuf::OutBuf;

/// Result of one engine call.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Input bytes taken.
    pub consumed: usize,
    /// zlib return code.
    pub ret: c_int,
}

/// A zlib-rs deflate stream with its state allocated by zlib-rs's default allocator (see
/// DESIGN.md, "memory": its state is larger than zlib's, so it never comes from a caller's
/// `zalloc`, which may be an arena sized for zlib).
pub struct SoftDeflate {
    strm: Box<z::z_stream>,
    ended: bool,
}

impl std::fmt::Debug for SoftDeflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftDeflate")
            .field("total_in", &self.strm.total_in)
            .finish()
    }
}

/// zlib's version string, as `deflateInit_` wants it.
fn version() -> *const c_char {
    z::zlibVersion()
}

const STREAM_SIZE: c_int = std::mem::size_of::<z::z_stream>() as c_int;

impl SoftDeflate {
    /// `deflateInit2` with zlib's parameter meaning (`window_bits` 9..15, +16 gzip,
    /// negative raw).
    pub fn new(
        level: c_int,
        window_bits: c_int,
        mem_level: c_int,
        strategy: c_int,
    ) -> Result<SoftDeflate, c_int> {
        let mut strm = Box::new(z::z_stream::default());
        // SAFETY: `strm` is a fresh, zeroed z_stream at a stable (boxed) address; zlib-rs
        // fills in its allocator and state.
        let r = unsafe {
            z::deflateInit2_(
                &mut *strm,
                level,
                z::Z_DEFLATED,
                window_bits,
                mem_level,
                strategy,
                version(),
                STREAM_SIZE,
            )
        };
        if r != z::Z_OK {
            return Err(r);
        }
        Ok(SoftDeflate { strm, ended: false })
    }

    /// One `deflate` call on `input` into `out`.
    pub fn deflate(&mut self, input: &[u8], out: &mut OutBuf, flush: c_int) -> Step {
        let (p, room) = out.tail();
        let avail_in = input.len().min(c_uint::MAX as usize);
        let avail_out = room.min(c_uint::MAX as usize);
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = avail_in as c_uint;
        self.strm.next_out = p;
        self.strm.avail_out = avail_out as c_uint;
        // SAFETY: next_in/avail_in describe `input` (borrowed for this call), next_out/
        // avail_out the unwritten tail of the caller's window; the state is ours.
        let ret = unsafe { z::deflate(&mut *self.strm, flush) };
        let consumed = avail_in - self.strm.avail_in as usize;
        out.advance(avail_out - self.strm.avail_out as usize);
        self.strm.next_in = std::ptr::null();
        self.strm.next_out = std::ptr::null_mut();
        Step { consumed, ret }
    }

    /// Deflates all of `input` with `flush`, appending the output to `out` (grown
    /// fallibly, by at most about the input's size plus zlib's bound slack).
    pub fn deflate_into(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        flush: c_int,
    ) -> Result<(), c_int> {
        let mut done = 0;
        loop {
            let step_room = 64 * 1024;
            out.try_reserve(step_room).map_err(|_| z::Z_MEM_ERROR)?;
            let len = out.len();
            let spare = out.spare_capacity_mut();
            // SAFETY: the spare capacity is `spare.len()` writable bytes owned by `out`,
            // not otherwise accessed while `w` lives.
            let mut w = unsafe { OutBuf::new(spare.as_mut_ptr().cast::<u8>(), spare.len()) };
            let s = self.deflate(&input[done..], &mut w, flush);
            let wrote = w.written();
            // SAFETY: zlib-rs initialised exactly `wrote` bytes of the spare capacity.
            unsafe { out.set_len(len + wrote) };
            done += s.consumed;
            match s.ret {
                z::Z_STREAM_END => return Ok(()),
                z::Z_OK | z::Z_BUF_ERROR => {}
                e => return Err(e),
            }
            if done == input.len() && self.strm.avail_out != 0 {
                return Ok(());
            }
        }
    }

    /// `strm->adler` (the running checksum of the input taken).
    pub fn adler(&self) -> u64 {
        self.strm.adler
    }

    /// `strm->data_type`.
    pub fn data_type(&self) -> c_int {
        self.strm.data_type
    }

    /// `strm->msg` (a static string or null).
    pub fn msg(&self) -> *mut c_char {
        self.strm.msg
    }

    /// `deflateParams`.
    pub fn params(&mut self, level: c_int, strategy: c_int, out: &mut OutBuf) -> c_int {
        let (p, room) = out.tail();
        let avail_out = room.min(c_uint::MAX as usize);
        self.strm.next_out = p;
        self.strm.avail_out = avail_out as c_uint;
        self.strm.avail_in = 0;
        // SAFETY: next_out/avail_out describe the caller's unwritten window; no input.
        let r = unsafe { z::deflateParams(&mut *self.strm, level, strategy) };
        out.advance(avail_out - self.strm.avail_out as usize);
        self.strm.next_out = std::ptr::null_mut();
        r
    }

    /// `deflateSetDictionary`.
    pub fn set_dictionary(&mut self, dict: &[u8]) -> c_int {
        let Ok(n) = c_uint::try_from(dict.len()) else {
            return z::Z_STREAM_ERROR;
        };
        // SAFETY: `dict` is a live slice of `n` bytes.
        unsafe { z::deflateSetDictionary(&mut *self.strm, dict.as_ptr(), n) }
    }

    /// `deflateGetDictionary`.
    ///
    /// # Safety
    /// As zlib's: `dict` null or writable for 32 KiB, `len` null or writable.
    pub unsafe fn get_dictionary(&self, dict: *mut u8, len: *mut c_uint) -> c_int {
        // SAFETY: forwarded under the caller's contract.
        unsafe { z::deflateGetDictionary(&*self.strm, dict, len) }
    }

    /// `deflatePrime`.
    pub fn prime(&mut self, bits: c_int, value: c_int) -> c_int {
        // SAFETY: our initialised stream.
        unsafe { z::deflatePrime(&mut *self.strm, bits, value) }
    }

    /// `deflateTune`.
    pub fn tune(&mut self, a: c_int, b: c_int, c: c_int, d: c_int) -> c_int {
        // SAFETY: our initialised stream.
        unsafe { z::deflateTune(&mut *self.strm, a, b, c, d) }
    }

    /// `deflatePending`.
    pub fn pending(&mut self) -> (c_int, c_uint, c_int) {
        let (mut p, mut b) = (0 as c_uint, 0 as c_int);
        // SAFETY: our stream; both out pointers are locals.
        let r = unsafe { z::deflatePending(&mut *self.strm, &mut p, &mut b) };
        (r, p, b)
    }

    /// `deflateSetHeader`.
    ///
    /// # Safety
    /// `head` as zlib's contract: null, or a gz_header that stays valid until the header
    /// is written.
    pub unsafe fn set_header(&mut self, head: *mut z::gz_header) -> c_int {
        // SAFETY: forwarded under the caller's contract.
        unsafe { z::deflateSetHeader(&mut *self.strm, head) }
    }

    /// `deflateBound` for this stream's parameters.
    pub fn bound(&mut self, len: u64) -> u64 {
        // SAFETY: our initialised stream.
        unsafe { z::deflateBound(&mut *self.strm, len as _) as u64 }
    }

    /// `deflateReset`.
    pub fn reset(&mut self) -> c_int {
        // SAFETY: our initialised stream.
        unsafe { z::deflateReset(&mut *self.strm) }
    }

    /// `deflateCopy`: an independent stream in the same state.
    pub fn try_clone(&self) -> Result<SoftDeflate, c_int> {
        let mut strm = Box::new(z::z_stream::default());
        // SAFETY: `strm` is a fresh z_stream; the source is our initialised stream, not
        // mutated by the copy.
        let r =
            unsafe { z::deflateCopy(&mut *strm, (&*self.strm as *const z::z_stream).cast_mut()) };
        if r != z::Z_OK {
            return Err(r);
        }
        Ok(SoftDeflate { strm, ended: false })
    }
}

impl SoftDeflate {
    /// `deflateEnd`'s code (Z_DATA_ERROR if the stream was ended early); the stream is
    /// released here, not again on drop.
    pub fn end(&mut self) -> c_int {
        if self.ended {
            return z::Z_STREAM_ERROR;
        }
        self.ended = true;
        // SAFETY: our initialised stream, ended once (the flag).
        unsafe { z::deflateEnd(&mut *self.strm) }
    }
}

impl Drop for SoftDeflate {
    fn drop(&mut self) {
        if !self.ended {
            self.end();
        }
    }
}

/// zlib's running checksums (zlib-rs's SIMD versions).
pub fn adler32(start: u32, b: &[u8]) -> u32 {
    zlib_rs::adler32::adler32(start, b)
}

/// CRC-32 (gzip's).
pub fn crc32(start: u32, b: &[u8]) -> u32 {
    zlib_rs::crc32::crc32(start, b)
}
