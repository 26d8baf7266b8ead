//! The ZIP engine (docs/hardware-interface.md §4): deflate, zlib and gzip compression and
//! decompression, stateless and in stream mode, computed with zlib-rs.
//!
//! What the engine does with a request (the choices where hardware-interface is silent are
//! in `hw/hisi-zip/DESIGN.md`, "Device model"):
//! - Headers are software's: input and output are the deflate payload plus, for zlib and
//!   gzip, the trailer. With flush = finish the engine appends the trailer (zlib: Adler-32
//!   big-endian; gzip: CRC32 then ISIZE, little-endian) computed from the running values in
//!   dw31/dw30, which it updates on every request.
//! - Compression consumes all input or nothing: if the output does not fit it reports
//!   0x0e (dest too small) and changes no state. A sync-flushed request ends on a byte
//!   boundary (`00 00 ff ff`), so requests concatenate into one deflate stream. Output
//!   larger than the input is reported as 0x0d (negative compression), output valid.
//! - The 64 KiB stream context holds the window (the last 32 KiB of input when
//!   compressing, of output when decompressing); `ctx_dw2[15:0]` is its length. Stream
//!   decompression stops only at deflate block boundaries as far as its context is
//!   concerned: when input or output runs out inside a block, `consumed` ends where the
//!   block began, `ctx_dw0[15:10]` says how many bits of the next input byte were already
//!   used, and `ctx_dw1` how many bytes of the block's output were already delivered
//!   (they are decoded again and not repeated). `ctx_dw0[3:0]` is ctx_st (0x2 no output
//!   space, 0x3 block not started: resend with more input, 0x4 stream ended without the
//!   trailer in the input), bit 7 set once the stream ended.
//! - A request with `dest_avail_out` < 200 is refused with 0x0e; input and output are
//!   capped at 8 MiB.
//! - Every address is checked by the queue's IOMMU before use; a stray one is status 0x02.

use std::cell::RefCell;

use libz_rs_sys as zs;
use wd_core::Region;
use zlib_rs::{Deflate, DeflateFlush, Status};

use crate::config::ApiVersion;
use crate::engine::{Engine, Failure, Job, Outcome};
use crate::layout::zip::*;

/// Default compression effort of the modelled engine (zlib-rs level).
pub const DEFAULT_LEVEL: u32 = 2;

const WINDOW: usize = 32 << 10;

/// The ZIP engine: 128-byte SQEs; compression on qc_type 0 queues, decompression on
/// qc_type 1 queues.
#[derive(Debug, Clone, Copy)]
pub struct ZipEngine {
    level: i32,
}

impl Default for ZipEngine {
    fn default() -> Self {
        ZipEngine::new(DEFAULT_LEVEL)
    }
}

impl ZipEngine {
    /// An engine compressing with zlib-rs level `level` (1..=9): the device's fixed effort.
    pub fn new(level: u32) -> ZipEngine {
        ZipEngine {
            level: level.clamp(1, 9) as i32,
        }
    }
}

/// A request refused before any work: its status.
struct Refused(u8);

/// Bytes of device memory as slices for the deflate library.
struct Buffers {
    src: Option<Region>,
    dst: Region,
    ctx: Option<Region>,
}

fn range(r: &Region) -> (usize, usize) {
    (r.as_ptr() as usize, r.as_ptr() as usize + r.len())
}

fn overlap(a: &Region, b: &Region) -> bool {
    let (a0, a1) = range(a);
    let (b0, b1) = range(b);
    a0 < b1 && b0 < a1
}

impl Buffers {
    fn check_disjoint(&self) -> bool {
        let mut rs: Vec<&Region> = vec![&self.dst];
        rs.extend(self.src.iter());
        rs.extend(self.ctx.iter());
        for i in 0..rs.len() {
            for j in i + 1..rs.len() {
                if overlap(rs[i], rs[j]) {
                    return false;
                }
            }
        }
        true
    }

    /// The buffers as slices, valid while `self` (which holds the mappings) is borrowed.
    ///
    /// Every `unsafe` here rests on the same facts: each region was translated by the
    /// queue's IOMMU, so it lies wholly inside memory the driver shared with this queue,
    /// mapped while the Region (which holds its owner) lives; `check_disjoint` proved the
    /// three do not overlap, so the shared and mutable slices never alias each other; and
    /// while a request is in flight its buffers belong to the device (the ring protocol:
    /// the driver does not touch them until the CQE), the contract of hardware DMA.
    fn slices(&mut self) -> (&[u8], &mut [u8], Option<&mut [u8]>) {
        let src: &[u8] = match &self.src {
            // SAFETY: see above.
            Some(r) => unsafe { std::slice::from_raw_parts(r.as_ptr(), r.len()) },
            None => &[],
        };
        // SAFETY: as above.
        let dst = unsafe { std::slice::from_raw_parts_mut(self.dst.as_ptr(), self.dst.len()) };
        let ctx = self
            .ctx
            .as_ref()
            // SAFETY: as above.
            .map(|r| unsafe { std::slice::from_raw_parts_mut(r.as_ptr(), r.len()) });
        (src, dst, ctx)
    }
}

fn check_adler_or_crc(req: u8, running: u32, data: &[u8]) -> u32 {
    match req {
        REQ_ZLIB => zlib_rs::adler32::adler32(running, data),
        REQ_GZIP => zlib_rs::crc32::crc32(running, data),
        _ => running,
    }
}

fn initial_checksum(req: u8) -> u32 {
    if req == REQ_ZLIB {
        1
    } else {
        0
    }
}

fn trailer(req: u8, checksum: u32, isize: u32) -> Vec<u8> {
    match req {
        REQ_ZLIB => checksum.to_be_bytes().to_vec(),
        REQ_GZIP => {
            let mut t = checksum.to_le_bytes().to_vec();
            t.extend_from_slice(&isize.to_le_bytes());
            t
        }
        _ => Vec::new(),
    }
}

/// The last `cap` bytes of `a ‖ b ‖ c`, written to the front of `ctx`; returns the length.
fn store_window(ctx: &mut [u8], parts: [&[u8]; 3], cap: usize) -> usize {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let keep = total.min(cap);
    let mut skip = total - keep;
    let mut tmp = Vec::with_capacity(keep);
    for p in parts {
        if skip >= p.len() {
            skip -= p.len();
            continue;
        }
        tmp.extend_from_slice(&p[skip..]);
        skip = 0;
    }
    ctx[..keep].copy_from_slice(&tmp);
    keep
}

thread_local! {
    static DEFLATE: RefCell<Option<(i32, u8, Deflate)>> = const { RefCell::new(None) };
    static INFLATE: RefCell<Option<Inflater>> = const { RefCell::new(None) };
}

/// A raw inflate stream of libz-rs-sys at a stable address (zlib's state points back to it).
struct Inflater {
    z: Box<zs::z_stream>,
    scratch: Vec<u8>,
}

impl Inflater {
    fn new() -> Option<Inflater> {
        let mut z = Box::<zs::z_stream>::default();
        // SAFETY: `z` is a zeroed z_stream with default allocators; the version string and
        // struct size are the library's own.
        let rc = unsafe {
            zs::inflateInit2_(
                &mut *z,
                -15,
                zs::zlibVersion(),
                std::mem::size_of::<zs::z_stream>() as i32,
            )
        };
        (rc == zs::Z_OK).then_some(Inflater {
            z,
            scratch: Vec::new(),
        })
    }

    fn reset(&mut self, window: &[u8], bits_used: u32, first: Option<u8>) -> bool {
        let z = &mut *self.z;
        // SAFETY: `z` was initialised by inflateInit2_ and stays at this address.
        if unsafe { zs::inflateReset(z) } != zs::Z_OK {
            return false;
        }
        if !window.is_empty() {
            // SAFETY: pointer and length describe `window`, which outlives the call.
            let rc = unsafe { zs::inflateSetDictionary(z, window.as_ptr(), window.len() as u32) };
            if rc != zs::Z_OK {
                return false;
            }
        }
        if let Some(b) = first {
            let n = 8 - bits_used as i32;
            // SAFETY: plain call on an initialised stream.
            if unsafe { zs::inflatePrime(z, n, i32::from(b >> bits_used)) } != zs::Z_OK {
                return false;
            }
        }
        true
    }

    /// One `inflate(Z_BLOCK)` call over `input` into `out`: (return code, bytes read,
    /// bytes written, data_type).
    fn step(&mut self, input: &[u8], out: &mut [u8]) -> (i32, usize, usize, i32) {
        let z = &mut *self.z;
        z.next_in = input.as_ptr();
        z.avail_in = input.len() as u32;
        z.next_out = out.as_mut_ptr();
        z.avail_out = out.len() as u32;
        // SAFETY: next_in/avail_in and next_out/avail_out describe live, non-overlapping
        // buffers for the duration of the call; the stream is initialised.
        let rc = unsafe { zs::inflate(z, zs::Z_BLOCK) };
        let read = input.len() - z.avail_in as usize;
        let written = out.len() - z.avail_out as usize;
        z.next_in = std::ptr::null();
        z.next_out = std::ptr::null_mut();
        z.avail_in = 0;
        z.avail_out = 0;
        (rc, read, written, z.data_type)
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised and is ended once.
        unsafe { zs::inflateEnd(&mut *self.z) };
    }
}

/// Where decoding stood at a block boundary.
#[derive(Debug, Clone, Copy)]
struct Boundary {
    /// Absolute bit position in the request's input.
    in_bits: usize,
    /// Output bytes of this request written before it.
    out: usize,
}

impl ZipEngine {
    fn check(&self, job: &Job<'_>, s: &ZipSqe) -> Result<(), Refused> {
        let want_type = match job.api {
            ApiVersion::V3 => SQE_TYPE_V3,
            _ => SQE_TYPE_V2,
        };
        if s.sqe_type != want_type {
            return Err(Refused(ST_PARAM));
        }
        match s.req_type {
            REQ_ZLIB | REQ_GZIP => {}
            REQ_DEFLATE if job.api == ApiVersion::V3 => {}
            _ => return Err(Refused(ST_PARAM)),
        }
        if s.buf_type != BUF_FLAT || window_bytes(s.window).is_none() {
            return Err(Refused(ST_PARAM));
        }
        if job.qc_type > 1 || s.input_len > MAX_LEN {
            return Err(Refused(ST_PARAM));
        }
        if s.dest_avail < MIN_DEST {
            return Err(Refused(ST_DEST_SMALL));
        }
        Ok(())
    }

    fn buffers(&self, job: &Job<'_>, s: &ZipSqe) -> Result<Buffers, Refused> {
        let addr =
            |iova: u64, len: usize| job.dma.translate(iova, len).map_err(|_| Refused(ST_ADDR));
        let src = if s.input_len > 0 {
            Some(addr(s.src, s.input_len as usize)?)
        } else {
            None
        };
        let dst = addr(s.dst, s.dest_avail.min(MAX_LEN) as usize)?;
        let ctx = if s.stateful {
            Some(addr(s.ctx_addr, CTX_SIZE)?)
        } else {
            None
        };
        let b = Buffers { src, dst, ctx };
        if !b.check_disjoint() {
            return Err(Refused(ST_PARAM));
        }
        Ok(b)
    }

    fn compress(
        &self,
        s: &ZipSqe,
        input: &[u8],
        out: &mut [u8],
        ctx: Option<&mut [u8]>,
    ) -> Result<ZipResult, Refused> {
        let wsize = window_bytes(s.window).unwrap_or(WINDOW);
        let wbits: u8 = match wsize {
            4096 => 12,
            8192 => 13,
            16384 => 14,
            _ => 15,
        };
        let fresh = !s.stateful || s.new_stream;
        let mut wlen = if fresh {
            0
        } else {
            (s.ctx[2] & 0xffff) as usize
        };
        if wlen > WINDOW {
            return Err(Refused(ST_DATA));
        }
        wlen = wlen.min(wsize);
        let (mut checksum, mut isize) = if fresh {
            (initial_checksum(s.req_type), 0)
        } else {
            (s.checksum, s.isize)
        };
        let level = self.level;
        let produced = DEFLATE.with(|cell| -> Result<usize, Refused> {
            let mut slot = cell.borrow_mut();
            if !matches!(&*slot, Some((l, w, _)) if *l == level && *w == wbits) {
                *slot = Some((level, wbits, Deflate::new(level, false, wbits)));
            }
            let Some((_, _, d)) = slot.as_mut() else {
                return Err(Refused(ST_HW));
            };
            d.reset();
            if wlen > 0 {
                if let Some(c) = ctx.as_deref() {
                    let w = (s.ctx[2] & 0xffff) as usize;
                    d.set_dictionary(&c[w - wlen..w])
                        .map_err(|_| Refused(ST_HW))?;
                }
            }
            let flush = if s.finish {
                DeflateFlush::Finish
            } else {
                DeflateFlush::SyncFlush
            };
            let r = d.compress(input, out, flush).map_err(|_| Refused(ST_HW))?;
            let n = d.total_out() as usize;
            let complete = d.total_in() as usize == input.len()
                && match flush {
                    DeflateFlush::Finish => r == Status::StreamEnd,
                    _ => n < out.len(),
                };
            if !complete {
                return Err(Refused(ST_DEST_SMALL));
            }
            Ok(n)
        })?;
        checksum = check_adler_or_crc(s.req_type, checksum, input);
        isize = isize.wrapping_add(input.len() as u32);
        let mut produced = produced;
        if s.finish {
            let t = trailer(s.req_type, checksum, isize);
            if produced + t.len() > out.len() {
                return Err(Refused(ST_DEST_SMALL));
            }
            out[produced..produced + t.len()].copy_from_slice(&t);
            produced += t.len();
        }
        let mut ctx2 = 0;
        if let Some(c) = ctx {
            let old = (s.ctx[2] & 0xffff) as usize;
            let old = if fresh { 0 } else { old.min(WINDOW) };
            let prev = c[..old].to_vec();
            ctx2 = store_window(c, [&prev, input, &[]], wsize) as u32;
        }
        Ok(ZipResult {
            consumed: input.len() as u32,
            produced: produced as u32,
            status: if produced > input.len() {
                ST_NEGATIVE
            } else {
                ST_OK
            },
            last_block: false,
            dest_avail: (out.len() - produced) as u32,
            ctx: [0, 0, ctx2],
            isize,
            checksum,
        })
    }

    fn decompress(
        &self,
        s: &ZipSqe,
        input: &[u8],
        out: &mut [u8],
        ctx: Option<&mut [u8]>,
    ) -> Result<ZipResult, Refused> {
        let fresh = !s.stateful || s.new_stream;
        let (mut bits_used, mut skip, mut wlen, mut ended) = (0u32, 0usize, 0usize, false);
        if !fresh {
            bits_used = (s.ctx[0] >> CTX_BITS_SHIFT) & CTX_BITS_MASK;
            skip = s.ctx[1] as usize;
            wlen = (s.ctx[2] & 0xffff) as usize;
            ended = s.ctx[0] & CTX_BFINAL != 0;
            if bits_used > 7 || wlen > WINDOW {
                return Err(Refused(ST_DATA));
            }
        }
        let (mut checksum, mut isize) = if fresh {
            (initial_checksum(s.req_type), 0)
        } else {
            (s.checksum, s.isize)
        };
        let unchanged = ZipResult {
            consumed: 0,
            produced: 0,
            status: ST_OK,
            last_block: false,
            dest_avail: out.len() as u32,
            ctx: s.ctx,
            isize,
            checksum,
        };
        if ended {
            return Ok(ZipResult {
                status: ST_DECOMP_END,
                last_block: true,
                ..unchanged
            });
        }
        let first = if bits_used > 0 {
            match input.first() {
                Some(&b) => Some(b),
                None => {
                    return Ok(ZipResult {
                        ctx: [
                            (s.ctx[0] & !0xf) | CTX_ST_BLOCK_NOT_STARTED,
                            s.ctx[1],
                            s.ctx[2],
                        ],
                        ..unchanged
                    })
                }
            }
        } else {
            None
        };
        let offset = usize::from(first.is_some());
        let mut ctx = ctx;
        let window: Vec<u8> = match ctx.as_deref() {
            Some(c) if !fresh => c[..wlen].to_vec(),
            _ => Vec::new(),
        };
        INFLATE.with(|cell| -> Result<ZipResult, Refused> {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Inflater::new();
            }
            let Some(inf) = slot.as_mut() else {
                return Err(Refused(ST_HW));
            };
            if !inf.reset(&window, bits_used, first) {
                return Err(Refused(ST_HW));
            }
            let mut pos = offset;
            let bits_at = |pos: usize, dt: i32| (8 * pos).saturating_sub((dt & 63) as usize);
            // Output of the block already delivered: decode it again, not repeated.
            let mut scratch = std::mem::take(&mut inf.scratch);
            scratch.clear();
            scratch.resize(skip, 0);
            let mut done_skip = 0;
            while done_skip < skip {
                let (rc, r, w, _) = inf.step(&input[pos..], &mut scratch[done_skip..]);
                pos += r;
                done_skip += w;
                if rc != zs::Z_OK || (r == 0 && w == 0) {
                    break;
                }
            }
            if done_skip < skip {
                // Less input than the first time round, or different input.
                inf.scratch = scratch;
                return if pos >= input.len() {
                    Ok(ZipResult {
                        ctx: [
                            (s.ctx[0] & !0xf) | CTX_ST_BLOCK_NOT_STARTED,
                            s.ctx[1],
                            s.ctx[2],
                        ],
                        ..unchanged
                    })
                } else {
                    Err(Refused(ST_DATA))
                };
            }
            let mut last: Option<Boundary> = None;
            let mut written = 0usize;
            let mut stream_end: Option<usize> = None;
            let mut prev_bits = usize::MAX;
            // The checksum runs block by block, over output still in cache.
            let mut running = checksum;
            loop {
                let (rc, r, w, dt) = inf.step(&input[pos..], &mut out[written..]);
                pos += r;
                running = check_adler_or_crc(s.req_type, running, &out[written..written + w]);
                written += w;
                let now_bits = bits_at(pos, dt);
                let progressed = r > 0 || w > 0 || now_bits != prev_bits;
                prev_bits = now_bits;
                match rc {
                    zs::Z_STREAM_END => {
                        stream_end = Some(bits_at(pos, dt));
                        break;
                    }
                    zs::Z_OK | zs::Z_BUF_ERROR => {}
                    _ => {
                        inf.scratch = scratch;
                        return Err(Refused(ST_DATA));
                    }
                }
                if dt & 128 != 0 && dt & 64 != 0 {
                    // At the boundary after the last block (Z_BLOCK stops there before
                    // the end of the stream is noted): the deflate data is complete.
                    stream_end = Some(now_bits);
                    break;
                }
                if dt & 128 != 0 {
                    last = Some(Boundary {
                        in_bits: now_bits,
                        out: written,
                    });
                }
                if written >= out.len() || !progressed {
                    break;
                }
            }
            let out_full = written >= out.len();
            let result = if let Some(end_bits) = stream_end {
                let end = end_bits.div_ceil(8);
                checksum = running;
                isize = isize.wrapping_add(written as u32);
                let t = trailer(s.req_type, checksum, isize);
                let (consumed, status, ctx_st) = if t.is_empty() {
                    (end, ST_DECOMP_END, CTX_ST_NONE)
                } else if input.len() >= end + t.len() {
                    let ok = input[end..end + t.len()] == t[..];
                    (
                        end + t.len(),
                        if ok { ST_DECOMP_END } else { ST_CRC },
                        CTX_ST_NONE,
                    )
                } else {
                    (end, ST_DECOMP_END, CTX_ST_NO_CRC)
                };
                if !s.stateful && ctx_st == CTX_ST_NO_CRC {
                    inf.scratch = scratch;
                    return Err(Refused(ST_DATA));
                }
                let wl = match ctx.as_deref_mut() {
                    Some(c) => store_window(c, [&window, &scratch, &out[..written]], WINDOW) as u32,
                    None => 0,
                };
                ZipResult {
                    consumed: consumed as u32,
                    produced: written as u32,
                    status,
                    last_block: true,
                    dest_avail: (out.len() - written) as u32,
                    ctx: [ctx_st | CTX_BFINAL, 0, wl],
                    isize,
                    checksum,
                }
            } else if !s.stateful {
                inf.scratch = scratch;
                return Err(Refused(if out_full { ST_DEST_SMALL } else { ST_DATA }));
            } else {
                // Stopped inside a block (or exactly at one): rewind to the last boundary.
                let b = last.unwrap_or(Boundary {
                    in_bits: bits_used as usize,
                    out: 0,
                });
                let crossed = last.is_some();
                let consumed = b.in_bits / 8;
                let bits = (b.in_bits % 8) as u32;
                let new_skip = if crossed {
                    written - b.out
                } else {
                    skip + written
                };
                let wl = match ctx {
                    Some(c) if crossed => {
                        store_window(c, [&window, &scratch, &out[..b.out]], WINDOW) as u32
                    }
                    _ => wlen as u32,
                };
                checksum = running;
                isize = isize.wrapping_add(written as u32);
                let ctx_st = if new_skip == 0 {
                    CTX_ST_NONE
                } else if out_full {
                    CTX_ST_NO_SPACE
                } else {
                    CTX_ST_BLOCK_NOT_STARTED
                };
                ZipResult {
                    consumed: consumed as u32,
                    produced: written as u32,
                    status: ST_OK,
                    last_block: false,
                    dest_avail: (out.len() - written) as u32,
                    ctx: [ctx_st | (bits << CTX_BITS_SHIFT), new_skip as u32, wl],
                    isize,
                    checksum,
                }
            };
            inf.scratch = scratch;
            Ok(result)
        })
    }

    fn run(&self, job: &Job<'_>, s: &ZipSqe) -> Result<ZipResult, Refused> {
        self.check(job, s)?;
        let mut b = self.buffers(job, s)?;
        let (input, out, ctx) = b.slices();
        if job.qc_type == 0 {
            self.compress(s, input, out, ctx)
        } else {
            self.decompress(s, input, out, ctx)
        }
    }
}

impl Engine for ZipEngine {
    fn driver(&self) -> &'static str {
        "hisi_zip"
    }

    fn sqe_size(&self) -> usize {
        SQE_SIZE
    }

    fn algorithms(&self, api: ApiVersion) -> Vec<String> {
        let mut v = vec!["zlib".to_string(), "gzip".to_string()];
        if api == ApiVersion::V3 {
            v.push("deflate".to_string());
        }
        v
    }

    fn process(&self, job: &Job<'_>, sqe: &mut [u32]) -> Outcome {
        let Some(words) = sqe
            .get(..SQE_WORDS)
            .and_then(|w| <&[u32; SQE_WORDS]>::try_from(w).ok())
        else {
            return Outcome::Error;
        };
        let s = ZipSqe::decode(words);
        match self.run(job, &s) {
            Ok(r) => {
                r.encode(sqe);
                match r.status {
                    ST_OK | ST_NEGATIVE | ST_DECOMP_END => Outcome::Ok,
                    _ => Outcome::Error,
                }
            }
            Err(Refused(status)) => {
                encode_error(sqe, status);
                if status == ST_ADDR {
                    Outcome::AddressFault
                } else {
                    Outcome::Error
                }
            }
        }
    }

    fn fail(&self, sqe: &mut [u32], why: Failure) {
        match why {
            Failure::Injected | Failure::Internal => {
                if sqe.len() >= SQE_WORDS {
                    encode_error(sqe, ST_HW);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "zip_tests.rs"]
mod tests;
