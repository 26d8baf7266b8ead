//! Streams on the device: requests in stream mode over the per-thread queue of a pool,
//! with the 64 KiB context kept in DMA memory between requests.
//!
//! Each call runs on the calling thread's queue and waits for everything it sent, so a
//! queue is never left with a request in flight. Within a call two jobs alternate: while
//! the device works on one request the thread copies the previous request's output out
//! (and, compressing, the next request's input in). Requests are at most 8 MiB each way.
//!
//! Failures: a request the device fails is sent again (twice at most); a queue-level
//! failure (stall, stop words, protocol) drops the queue and the call continues on a new
//! one, the context copied across. What still fails is reported to the caller.

#![forbid(unsafe_code)]

use std::io;
use std::sync::Arc;

use wd_core::pool::{is_queue_fatal, QueuePool};
use wd_core::{DmaBuf, DriverQueue, Error, Result};

use crate::codec::{invalid, try_grow, InflateStep};
use crate::driver::{Zip, CTX_SIZE, MAX_REQUEST};
use crate::header::{gzip_trailer, zlib_trailer};
use crate::job::{JobParams, JobResult, ZipJob};
use crate::pool::Pools;
use crate::soft::initial_checksum;
use crate::sqe::{ctx_st, req, status};
use crate::stats;

/// Times one request is sent again after the device failed it. A failed request costs
/// little (it fails fast); a stream cannot move to software mid-way, so this bounds how
/// many transient failures in a row it survives: with 16, a device failing 10% of requests
/// loses a stream once in 10^17 requests (with 2, once in 1000: the soak found it).
const DEVICE_RETRIES: u32 = 16;
/// Times a call moves to a new queue after a queue-level failure.
const QUEUE_RETRIES: u32 = 2;

/// The stored block that ends a stream when the last call brings no input (what uadk
/// does in software instead of an empty request).
const EMPTY_FINAL_BLOCK: [u8; 5] = [0x01, 0x00, 0x00, 0xff, 0xff];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Compress,
    Decompress,
}

/// Device state of one stream.
#[derive(Debug)]
pub(crate) struct HwStream {
    dir: Dir,
    req: u8,
    pools: Arc<Pools>,
    ctx: Option<(DmaBuf, u64)>,
    words: [u32; 3],
    pub isize: u32,
    pub checksum: u32,
    started: bool,
    ended: bool,
    /// After [`HwStream::restart`]: the checksum and ISIZE of the input before it, and the
    /// input since (the device's running values start again with the new stream).
    base: Option<(u32, u32)>,
    since_restart: u64,
}

fn pool(pools: &Pools, dir: Dir) -> &QueuePool<Zip> {
    match dir {
        Dir::Compress => &pools.comp,
        Dir::Decompress => &pools.decomp,
    }
}

impl HwStream {
    /// A stream on the pools' queues; checks that the device can do `req` (raw deflate
    /// needs api ≥ v3).
    pub fn new(pools: Arc<Pools>, dir: Dir, req: u8) -> Result<HwStream> {
        let v3 = pool(&pools, dir).with(|q| Ok(q.driver().is_v3()))?;
        if req == req::DEFLATE && !v3 {
            return Err(Error::Unsupported(
                "raw deflate needs a hisi_qm_v3 device".into(),
            ));
        }
        Ok(HwStream {
            dir,
            req,
            pools,
            ctx: None,
            words: [0; 3],
            isize: 0,
            checksum: initial_checksum(req),
            started: false,
            ended: false,
            base: None,
            since_restart: 0,
        })
    }

    /// Starts the next member (decompression of multi-member gzip).
    pub fn reset(&mut self) {
        self.words = [0; 3];
        self.isize = 0;
        self.checksum = initial_checksum(self.req);
        self.started = false;
        self.ended = false;
        self.base = None;
        self.since_restart = 0;
    }

    /// Compression: the next request starts a new device stream (an empty window: nothing
    /// after refers to input before), while the stream's checksum and length go on. The
    /// new stream's request carries the initial checksum, so a device that restarts its
    /// running values on a new stream and one that continues from the SQE agree; the
    /// stream's values are combined in software ([`HwStream::stream_check`]).
    pub fn restart(&mut self) {
        self.base = Some(self.stream_check());
        self.since_restart = 0;
        self.words = [0; 3];
        self.checksum = initial_checksum(self.req);
        self.isize = 0;
        self.started = false;
    }

    /// The stream's checksum and ISIZE over all input so far (across restarts).
    pub fn stream_check(&self) -> (u32, u32) {
        let Some((c, n)) = self.base else {
            return (self.checksum, self.isize);
        };
        let c = match self.req {
            req::ZLIB => zlib_rs::adler32::adler32_combine(c, self.checksum, self.since_restart),
            req::GZIP => zlib_rs::crc32::crc32_combine(c, self.checksum, self.since_restart),
            _ => c,
        };
        (c, n.wrapping_add(self.isize))
    }

    /// The context block on `zip`'s queue, moved there (content copied) if the stream
    /// last ran on another queue.
    fn ctx_on(&mut self, zip: &Zip) -> Result<wd_core::Iova> {
        match &self.ctx {
            Some((b, owner)) if *owner == zip.id() => return Ok(b.iova()),
            _ => {}
        }
        let mut fresh = zip.alloc_ctx()?;
        if let Some((old, _)) = self.ctx.take() {
            let mut bytes = vec![0u8; CTX_SIZE];
            old.read(0, &mut bytes);
            fresh.write(0, &bytes);
        }
        let iova = fresh.iova();
        self.ctx = Some((fresh, zip.id()));
        Ok(iova)
    }

    fn params(&self, input_len: usize, finish: bool) -> JobParams {
        JobParams {
            req: self.req,
            input_len,
            dest_len: MAX_REQUEST,
            finish,
            stateful: true,
            new_stream: !self.started,
            ctx_words: self.words,
            isize: self.isize,
            checksum: self.checksum,
        }
    }

    fn accept(&mut self, r: &JobResult) {
        stats::request(r.consumed, r.produced);
        self.words = r.ctx_words;
        self.isize = r.isize;
        self.checksum = r.checksum;
        self.started = true;
        if self.dir == Dir::Compress {
            self.since_restart += r.consumed as u64;
        }
    }

    /// Runs `f` on this thread's queue, moving to a new queue after a queue-level failure.
    fn on_queue<T>(
        &mut self,
        mut f: impl FnMut(&mut Self, &mut DriverQueue<Zip>) -> Result<io::Result<T>>,
    ) -> io::Result<T> {
        let pools = self.pools.clone();
        let mut tries = 0;
        loop {
            match pool(&pools, self.dir).with(|q| f(self, q)) {
                Ok(r) => return r,
                Err(e) if is_queue_fatal(&e) && tries < QUEUE_RETRIES => {
                    tries += 1;
                    stats::retry();
                    wd_core::wd_log!(Warn, "hisi_zip: queue failed ({e}); moving the stream");
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }

    /// Compresses `input` in requests of at most 8 MiB; `finish` ends the stream (the
    /// device appends the trailer). Output is appended to `out`.
    pub fn deflate(&mut self, input: &[u8], finish: bool, out: &mut Vec<u8>) -> io::Result<()> {
        if self.ended {
            return Err(io::Error::other("compression stream already finished"));
        }
        if input.is_empty() {
            if finish {
                self.finish_empty(out);
            }
            return Ok(());
        }
        let mut done = 0;
        self.on_queue(|s, q| s.deflate_on(q, input, finish, &mut done, out))?;
        if finish {
            self.fix_trailer(out);
            self.ended = true;
        }
        Ok(())
    }

    fn finish_empty(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&EMPTY_FINAL_BLOCK);
        self.push_trailer(out);
        self.ended = true;
    }

    fn push_trailer(&self, out: &mut Vec<u8>) {
        let (c, n) = self.stream_check();
        match self.req {
            req::ZLIB => out.extend_from_slice(&zlib_trailer(c)),
            req::GZIP => out.extend_from_slice(&gzip_trailer(c, n)),
            _ => {}
        }
    }

    /// After a restart the trailer the device appended covers only the input since:
    /// replaced by the stream's.
    fn fix_trailer(&self, out: &mut Vec<u8>) {
        let t = match self.req {
            req::ZLIB => 4,
            req::GZIP => 8,
            _ => 0,
        };
        if self.base.is_some() && t > 0 && out.len() >= t {
            out.truncate(out.len() - t);
            self.push_trailer(out);
        }
    }

    fn deflate_on(
        &mut self,
        q: &mut DriverQueue<Zip>,
        input: &[u8],
        finish: bool,
        done: &mut usize,
        out: &mut Vec<u8>,
    ) -> Result<io::Result<()>> {
        if *done == input.len() {
            return Ok(Ok(()));
        }
        let ctx = self.ctx_on(q.driver())?;
        let mut cur = ZipJob::new(q.driver())?;
        let mut spare: Option<ZipJob> = None;
        let mut to_copy = 0usize;
        let mut len = (input.len() - *done).min(MAX_REQUEST);
        cur.write_input(0, &input[*done..*done + len])?;
        let mut failures = 0;
        loop {
            let last = *done + len == input.len();
            cur.prepare(self.params(len, finish && last), Some(ctx))?;
            q.send(cur).map_err(|e| e.error)?;
            // Out of memory is reported once the request in flight is back.
            let mut copied = Ok(());
            if to_copy > 0 {
                copied = copy_output(spare.as_ref(), to_copy, out);
                to_copy = 0;
            }
            let (noff, nlen) = (*done + len, (input.len() - *done - len).min(MAX_REQUEST));
            if nlen > 0 {
                if spare.is_none() {
                    spare = Some(ZipJob::new(q.driver())?);
                }
                if let Some(s) = spare.as_mut() {
                    s.write_input(0, &input[noff..noff + nlen])?;
                }
            }
            cur = q.recv_sync()?;
            if let Err(e) = copied {
                return Ok(Err(e));
            }
            let r = *cur
                .result()
                .ok_or_else(|| Error::Protocol("no result".into()))?;
            if r.is_ok() {
                self.accept(&r);
                *done += len;
                if nlen == 0 {
                    return Ok(copy_output(Some(&cur), r.produced, out));
                }
                let Some(s) = spare.as_mut() else {
                    return Err(Error::Protocol("spare job missing".into()));
                };
                std::mem::swap(&mut cur, s);
                to_copy = r.produced;
                len = nlen;
                failures = 0;
            } else if r.status == status::DEST_TOO_SMALL && len > 1 {
                // Incompressible input expands past the 8 MiB output cap: the request's
                // input is halved (the context did not move) and the rest follows.
                stats::retry();
                len /= 2;
            } else {
                stats::device_error();
                failures += 1;
                if failures > DEVICE_RETRIES {
                    return Err(Error::Device(format!(
                        "ZIP compression failed with status {:#04x}",
                        r.status
                    )));
                }
                stats::retry();
            }
        }
    }

    /// Decompresses from `input` (deflate payload, then the trailer for zlib/gzip) until
    /// the input is used up as far as the device can go, the stream ends, it needs more
    /// input, or `limit` output bytes are out (overshooting by one request's output, 8 MiB
    /// at most). Output is appended to `out`. What the device has not consumed is left for
    /// the next call, which resumes from the stream context in DMA memory.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> io::Result<InflateStep> {
        let mut step = InflateStep::default();
        if self.ended || input.is_empty() {
            return Ok(step);
        }
        self.on_queue(|s, q| s.inflate_on(q, input, &mut step, out, limit))?;
        Ok(step)
    }

    fn inflate_on(
        &mut self,
        q: &mut DriverQueue<Zip>,
        input: &[u8],
        step: &mut InflateStep,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<io::Result<()>> {
        let ctx = self.ctx_on(q.driver())?;
        let mut cur = ZipJob::new(q.driver())?;
        let mut spare: Option<ZipJob> = None;
        let mut to_copy = 0usize;
        let mut failures = 0;
        // Input per request: the device consumes only what fills its output, and whatever it
        // leaves is copied again next time, so start small and grow only when the device
        // could make no progress with what it was given.
        let mut cap = INFLATE_CHUNK;
        loop {
            let pos = step.consumed;
            let len = (input.len() - pos).min(cap);
            if len == 0 {
                return Ok(copy_output(spare.as_ref(), to_copy, out));
            }
            cur.write_input(0, &input[pos..pos + len])?;
            step.read = step.read.max(pos + len);
            cur.prepare(self.params(len, false), Some(ctx))?;
            q.send(cur).map_err(|e| e.error)?;
            // Out of memory is reported once the request in flight is back.
            let mut copied = Ok(());
            if to_copy > 0 {
                copied = copy_output(spare.as_ref(), to_copy, out);
                to_copy = 0;
            }
            cur = q.recv_sync()?;
            if let Err(e) = copied {
                return Ok(Err(e));
            }
            let r = *cur
                .result()
                .ok_or_else(|| Error::Protocol("no result".into()))?;
            if r.is_ok() {
                failures = 0;
                self.accept(&r);
                step.consumed += r.consumed;
                step.produced += r.produced;
                if r.status == status::DECOMP_END || r.last_block {
                    self.ended = true;
                    step.ended = true;
                    step.trailer_checked =
                        self.req == req::DEFLATE || r.ctx_words[0] & 0xf != ctx_st::NO_CRC;
                    return Ok(copy_output(Some(&cur), r.produced, out));
                }
                if r.consumed == 0 && r.produced == 0 {
                    if len < (input.len() - pos).min(MAX_REQUEST) {
                        // A block longer than this request's input: give it more.
                        cap = (cap * 2).min(MAX_REQUEST);
                        continue;
                    }
                    if len == MAX_REQUEST {
                        return Ok(Err(invalid(
                            "a deflate block needs more than the device's 8 MiB request limit",
                        )));
                    }
                    // Needs more input than there is.
                    return Ok(Ok(()));
                }
                if spare.is_none() {
                    spare = Some(ZipJob::new(q.driver())?);
                }
                let Some(s) = spare.as_mut() else {
                    return Err(Error::Protocol("spare job missing".into()));
                };
                std::mem::swap(&mut cur, s);
                to_copy = r.produced;
                if step.produced >= limit {
                    // The output budget is full: the rest of the input waits for the next
                    // call, which resumes from the context (words and DMA block).
                    return Ok(copy_output(spare.as_ref(), to_copy, out));
                }
            } else if r.status == status::CRC_ERROR {
                return Ok(Err(invalid(
                    "checksum mismatch: the data is corrupt (device reported a CRC error)",
                )));
            } else {
                stats::device_error();
                failures += 1;
                if failures > DEVICE_RETRIES {
                    return Ok(Err(if r.status == status::DEST_TOO_SMALL {
                        io::Error::other("ZIP device refused the output buffer")
                    } else {
                        invalid(format!(
                            "corrupt deflate data (device status {:#04x})",
                            r.status
                        ))
                    }));
                }
                stats::retry();
            }
        }
    }
}

/// Input bytes of a decompression request before it has to grow (see `inflate_on`).
const INFLATE_CHUNK: usize = 1 << 20;

/// Appends `n` output bytes of `job` to `out`, growing it fallibly.
fn copy_output(job: Option<&ZipJob>, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let Some(job) = job else { return Ok(()) };
    if n == 0 {
        return Ok(());
    }
    try_grow(out, n)?;
    job.append_output(n, out);
    Ok(())
}
