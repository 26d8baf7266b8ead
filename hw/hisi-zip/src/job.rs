//! `ZipJob`: one ZIP request: its input and output blocks in a queue's DMA memory, the
//! stream context it runs with, and after completion the device's results.

#![forbid(unsafe_code)]

use wd_core::{DmaBuf, Error, Iova, Result};

use crate::driver::{Zip, MAX_REQUEST, MIN_DEST};
use crate::sqe::{status, ZipSqe, WINDOW_32K};

/// What a request asks of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobParams {
    /// Request type ([`crate::sqe::req`]).
    pub req: u8,
    /// Input bytes in the input block.
    pub input_len: usize,
    /// Output room to offer (at most the block size).
    pub dest_len: usize,
    /// Flush = finish (compression: end the stream and append the trailer).
    pub finish: bool,
    /// Stream (stateful) mode: the job carries a stream context.
    pub stateful: bool,
    /// First request of a stream.
    pub new_stream: bool,
    /// `ctx_dw0/1/2` from the previous completed request of the stream.
    pub ctx_words: [u32; 3],
    /// Running ISIZE.
    pub isize: u32,
    /// Running checksum.
    pub checksum: u32,
}

/// The device's answer, read back from the SQE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobResult {
    /// Status code (dw3 [7:0]).
    pub status: u8,
    /// Last-block flag (dw3 bit 8).
    pub last_block: bool,
    /// Input bytes consumed.
    pub consumed: usize,
    /// Output bytes produced.
    pub produced: usize,
    /// `ctx_dw0/1/2` to carry into the next request of the stream.
    pub ctx_words: [u32; 3],
    /// Running ISIZE.
    pub isize: u32,
    /// Running checksum.
    pub checksum: u32,
}

impl JobResult {
    /// True for the statuses after which the output is valid: success, negative
    /// compression (output larger than input) and end of stream.
    pub fn is_ok(&self) -> bool {
        matches!(
            self.status,
            status::OK | status::NEGATIVE_COMPRESSION | status::DECOMP_END
        )
    }
}

/// One ZIP request with its DMA blocks (input, output, and the stream context while it is
/// in flight). Built for one queue: its blocks are shared with that queue only.
#[derive(Debug)]
pub struct ZipJob {
    input: DmaBuf,
    output: DmaBuf,
    ctx: Option<Iova>,
    owner: u64,
    params: JobParams,
    result: Option<JobResult>,
    user_data: u64,
}

impl ZipJob {
    /// A job with fresh input and output blocks from `zip`'s pool.
    pub fn new(zip: &Zip) -> Result<ZipJob> {
        Ok(ZipJob {
            input: zip.io_pool().alloc()?,
            output: zip.io_pool().alloc()?,
            ctx: None,
            owner: zip.id(),
            params: JobParams::default(),
            result: None,
            user_data: 0,
        })
    }

    /// Bytes the input (and output) block holds: the 8 MiB request limit.
    pub fn capacity(&self) -> usize {
        self.input.len().min(MAX_REQUEST)
    }

    /// The queue (driver instance) whose memory the job's blocks are.
    pub fn owner(&self) -> u64 {
        self.owner
    }

    /// Copies `data` into the input block at `off`.
    pub fn write_input(&mut self, off: usize, data: &[u8]) -> Result<()> {
        if off + data.len() > self.capacity() {
            return Err(Error::InvalidArgument(format!(
                "{} input bytes at {off} exceed the {}-byte request limit",
                data.len(),
                self.capacity()
            )));
        }
        self.input.write(off, data);
        Ok(())
    }

    /// Sets what the next send asks for; `ctx` is the device address of the stream
    /// context (a block of the same queue's pool) for stateful jobs.
    pub fn prepare(&mut self, params: JobParams, ctx: Option<Iova>) -> Result<()> {
        if params.input_len > self.capacity() {
            return Err(Error::InvalidArgument(format!(
                "request of {} input bytes over the {MAX_REQUEST}-byte limit",
                params.input_len
            )));
        }
        if params.dest_len < MIN_DEST as usize {
            return Err(Error::InvalidArgument(format!(
                "output room of {} bytes below the engine's {MIN_DEST}-byte minimum",
                params.dest_len
            )));
        }
        if params.stateful && ctx.is_none() {
            return Err(Error::InvalidArgument(
                "stream-mode request without a context".into(),
            ));
        }
        self.params = JobParams {
            dest_len: params.dest_len.min(self.output.len()).min(MAX_REQUEST),
            ..params
        };
        self.ctx = ctx;
        self.result = None;
        Ok(())
    }

    /// Attaches a caller value (to match a completion to its request).
    pub fn set_user_data(&mut self, v: u64) {
        self.user_data = v;
    }

    /// The caller value.
    pub fn user_data(&self) -> u64 {
        self.user_data
    }

    /// The request parameters.
    pub fn params(&self) -> &JobParams {
        &self.params
    }

    /// The device's answer, once completed.
    pub fn result(&self) -> Option<&JobResult> {
        self.result.as_ref()
    }

    /// Copies `out.len()` bytes of output from offset `off`.
    pub fn read_output(&self, off: usize, out: &mut [u8]) {
        self.output.read(off, out)
    }

    /// Appends the first `n` output bytes to `out`.
    pub fn append_output(&self, n: usize, out: &mut Vec<u8>) {
        self.output.append_to(0, n, out)
    }

    /// Copies bytes of the input block back (trailer checks, resends).
    pub fn read_input(&self, off: usize, out: &mut [u8]) {
        self.input.read(off, out)
    }

    /// The SQE for this job: sqe_type and tag placement by hardware version.
    pub(crate) fn sqe(&self, tag: u16, sqe_type: u8) -> ZipSqe {
        let p = &self.params;
        let mut s = ZipSqe::default();
        s.set_sqe_type(sqe_type);
        s.set_tag(u32::from(tag));
        s.set_req_type(p.req);
        s.set_buf_type(0);
        s.set_window(WINDOW_32K);
        s.set_input_len(p.input_len as u32);
        s.set_dest_avail(p.dest_len as u32);
        s.set_finish(p.finish);
        s.set_stream_mode(p.stateful);
        s.set_new_stream(p.new_stream);
        s.set_source(self.input.iova().0);
        s.set_dest(self.output.iova().0);
        if let Some(c) = self.ctx {
            s.set_ctx_addr(c.0);
        }
        s.set_ctx_words(p.ctx_words);
        s.set_isize(p.isize);
        s.set_checksum(p.checksum);
        s
    }

    /// True if the SQE read back still names this job's blocks.
    pub(crate) fn matches(&self, s: &ZipSqe) -> bool {
        s.source() == self.input.iova().0
            && s.dest() == self.output.iova().0
            && s.req_type() == self.params.req
            && self.ctx.is_none_or(|c| s.ctx_addr() == c.0)
    }

    /// Records the device's answer; consumed/produced beyond what was offered are a
    /// protocol error.
    pub(crate) fn finish(&mut self, s: &ZipSqe) -> Result<()> {
        let r = JobResult {
            status: s.status(),
            last_block: s.last_block(),
            consumed: s.consumed() as usize,
            produced: s.produced() as usize,
            ctx_words: s.ctx_words(),
            isize: s.isize(),
            checksum: s.checksum(),
        };
        if r.is_ok() && (r.consumed > self.params.input_len || r.produced > self.params.dest_len) {
            return Err(Error::Protocol(format!(
                "ZIP reported {} consumed of {} and {} produced into {}",
                r.consumed, self.params.input_len, r.produced, self.params.dest_len
            )));
        }
        self.result = Some(r);
        Ok(())
    }
}
