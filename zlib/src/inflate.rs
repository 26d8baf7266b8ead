//! One inflate stream on the device (DESIGN.md, "Inflate"): the header parsed here, the
//! body (and usually the trailer) on the ZIP engine, the output held until the caller has
//! room for it, and every input byte taken kept in a log so that software can replay the
//! stream exactly when the device fails, the data is corrupt, or a call the device path
//! does not do arrives.
//!
//! Input accounting: a call takes input only as far as the device consumed it, plus, when
//! the device stopped because the input ran out, the unfinished block at its end (held
//! here and given again before the next input). Input after the end of the stream is never
//! taken: the device reports the exact end (zlib's `avail_in` after `Z_STREAM_END`).
//!
//! Parallel decoding (DESIGN.md, "Inflate"): libwdz's deflate starts an independent
//! segment (no back-reference before it) after [`INDEPENDENT_MARK`]. When the caller's
//! input from a block boundary holds such marks, consecutive segments are decoded at once:
//! the first on the stream's own device stream, the others each on a fresh raw-deflate
//! device stream on a thread of its own. A mark is only a hint: a segment decoded fresh is
//! taken only if its predecessor (the stream's true state, or a segment taken before it)
//! ended exactly where it starts, at a block boundary, and it decoded without error (a
//! back-reference before its start is an error on a fresh stream): its output is then
//! exactly what the stream's own decoder would give. Anything else is dropped and decoding
//! continues serially from the true state.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::ffi::c_int;

use hisi_zip::{BodyInflater, BodyStep, Format, Reason};
use libz_rs_sys::{Z_BUF_ERROR, Z_OK, Z_STREAM_END};

use crate::deflate::{Wrap, INDEPENDENT_MARK};
use crate::outbuf::OutBuf;
use crate::stats::{self, Counter};

/// Output one device call aims at (the device may overshoot by one 8 MiB request).
const DEVICE_STEP: usize = 4 << 20;
/// Input beyond the held bytes given with them in one device call.
const HELD_FEED: usize = 1 << 20;
/// Input from a block boundary below which segments are not decoded in parallel.
const PAR_MIN_INPUT: usize = 1 << 20;
/// How far past the position the input is searched for independent segments.
const PAR_SCAN: usize = 32 << 20;
/// Output limit of one segment of a parallel batch (the device overshoots it by one
/// request, 8 MiB at most): libwdz's segments are at most 8 MiB of input.
const PAR_SEG_OUT: usize = 9 << 20;
/// Output buffers a stream keeps for reuse.
const SPARE_BUFS: usize = 3;

/// Why a device stream must continue in software (replayed from the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOver {
    /// The device failed, or the data is corrupt (the device cannot tell them apart;
    /// software gives zlib's code and message at the exact place).
    Error,
    /// The log reached `WD_ZLIB_INFLATE_LOG`.
    LogFull,
}

/// The outcome of one device `inflate` call.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// Input bytes taken from the caller.
    pub consumed: usize,
    /// Output bytes written.
    pub produced: usize,
    /// zlib's return code, or the hand-over to do (what was taken and written stands).
    pub ret: Result<c_int, HandOver>,
}

/// The length of a header the device path takes, at the start of `input`: zlib's two bytes
/// without a preset dictionary, or gzip's ten bytes without optional fields (FLG 0); None
/// for anything else (software, with zlib's checks and messages).
pub fn simple_header(wrap: Wrap, input: &[u8]) -> Option<usize> {
    match wrap {
        Wrap::Raw => Some(0),
        Wrap::Zlib => {
            let (cmf, flg) = (*input.first()?, *input.get(1)?);
            let ok = cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
                && flg & 0x20 == 0;
            ok.then_some(2)
        }
        Wrap::Gzip => {
            let h = input.get(..10)?;
            (h[0] == 0x1f && h[1] == 0x8b && h[2] == 8 && h[3] == 0).then_some(10)
        }
    }
}

/// Decoded output not yet delivered, in order; and the check of what was delivered.
struct Staged {
    bufs: VecDeque<Vec<u8>>,
    /// Bytes of the first buffer already delivered.
    at: usize,
    spare: Vec<Vec<u8>>,
    wrap: Wrap,
    /// zlib's `strm->adler`: the check of the output delivered (0 for raw streams).
    check: u32,
    delivered: u64,
}

impl Staged {
    fn len(&self) -> usize {
        self.bufs.iter().map(Vec::len).sum::<usize>() - self.at
    }

    fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// An empty buffer (a reused one when there is one).
    fn buf(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    fn recycle(&mut self, mut b: Vec<u8>) {
        if self.spare.len() < SPARE_BUFS {
            b.clear();
            self.spare.push(b);
        }
    }

    fn push(&mut self, b: Vec<u8>) {
        if b.is_empty() {
            self.recycle(b);
        } else {
            self.bufs.push_back(b);
        }
    }

    /// Writes what fits into `out`; the bytes written.
    fn deliver(&mut self, out: &mut OutBuf) -> usize {
        let mut total = 0;
        while let Some(front) = self.bufs.front() {
            let n = out.write(&front[self.at..]);
            let b = &front[self.at..self.at + n];
            self.check = match self.wrap {
                Wrap::Raw => 0,
                Wrap::Zlib => zlib_rs::adler32::adler32(self.check, b),
                Wrap::Gzip => zlib_rs::crc32::crc32(self.check, b),
            };
            self.delivered += n as u64;
            self.at += n;
            total += n;
            if self.at < front.len() {
                break;
            }
            self.at = 0;
            if let Some(b) = self.bufs.pop_front() {
                self.recycle(b);
            }
        }
        total
    }
}

/// A segment decoded on a fresh device stream.
enum Fresh {
    /// No raw-deflate device stream (a v2 device): the stream stays serial.
    Unsupported,
    /// The device failed, the data is corrupt, or refers to output before the segment.
    Failed,
    Done(Box<BodyInflater>, BodyStep),
}

fn decode_fresh(seg: &[u8], out: &mut Vec<u8>) -> Fresh {
    let mut d = match BodyInflater::new(Format::Deflate) {
        Ok(d) => d,
        Err(Reason::Unsupported) => return Fresh::Unsupported,
        Err(_) => return Fresh::Failed,
    };
    match d.inflate(seg, out, PAR_SEG_OUT) {
        Ok(st) => Fresh::Done(Box::new(d), st),
        Err(_) => Fresh::Failed,
    }
}

/// The end of the first [`INDEPENDENT_MARK`] in `hay` (Boyer-Moore-Horspool: compressed
/// data is searched at about one probe per 9 bytes).
fn find_mark(hay: &[u8]) -> Option<usize> {
    let m = INDEPENDENT_MARK.len();
    let mut i = 0;
    while i + m <= hay.len() {
        let last = hay[i + m - 1];
        if last == 0xff && hay[i..i + m] == INDEPENDENT_MARK {
            return Some(i + m);
        }
        i += match last {
            0xff => 1,
            0 => 2,
            _ => m,
        };
    }
    None
}

/// A stream whose body runs on the device.
pub struct DeviceInflate {
    wrap: Wrap,
    dev: Box<BodyInflater>,
    /// `dev` is a raw-deflate stream (a segment decoded fresh was taken): it does not
    /// check the trailer, we do.
    dev_raw: bool,
    /// Header bytes still to take (the first call takes them).
    header: usize,
    /// Taken, not yet consumed by the device (an unfinished block).
    held: Vec<u8>,
    /// Decoded, not yet delivered.
    q: Staged,
    /// Every input byte taken since the stream began.
    log: Vec<u8>,
    /// A copy of the caller's input after the last taken byte that the device was given
    /// in its last request (not taken: the caller gives it again): output delivered past
    /// the device's block boundary came from it, so a replay needs it.
    ahead: Vec<u8>,
    log_cap: usize,
    body_ended: bool,
    /// Trailer bytes taken by us when the device ended without them in its input.
    trailer: Vec<u8>,
    done: bool,
    bytes_in: u64,
    counted_out: u64,
    /// Segments decoded at once (1: serial).
    par: usize,
    /// Stream positions (input bytes from the stream's start) where an
    /// [`INDEPENDENT_MARK`] ends, found ahead of the position and not yet reached.
    marks: VecDeque<u64>,
    /// Where the search for marks goes on.
    scan_from: u64,
    /// No parallel batch before this position (a segment was dropped there).
    par_hold: u64,
}

impl std::fmt::Debug for DeviceInflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceInflate")
            .field("delivered", &self.q.delivered)
            .field("log", &self.log.len())
            .finish_non_exhaustive()
    }
}

fn format_of(wrap: Wrap) -> Format {
    match wrap {
        Wrap::Raw => Format::Deflate,
        Wrap::Zlib => Format::Zlib,
        Wrap::Gzip => Format::Gzip,
    }
}

fn trailer_len(wrap: Wrap) -> usize {
    match wrap {
        Wrap::Raw => 0,
        Wrap::Zlib => 4,
        Wrap::Gzip => 8,
    }
}

impl DeviceInflate {
    /// A device stream for a stream whose header (`header` bytes, see [`simple_header`])
    /// starts the first call's input; Err if no device stream is available. `par`:
    /// segments decoded at once (`WD_ZLIB_INFLATE_PARALLEL`).
    pub fn new(
        wrap: Wrap,
        header: usize,
        log_cap: usize,
        par: usize,
    ) -> Result<DeviceInflate, hisi_zip::Reason> {
        let dev = Box::new(BodyInflater::new(format_of(wrap))?);
        Ok(DeviceInflate {
            wrap,
            dev,
            dev_raw: wrap == Wrap::Raw,
            header,
            held: Vec::new(),
            q: Staged {
                bufs: VecDeque::new(),
                at: 0,
                spare: Vec::new(),
                wrap,
                check: match wrap {
                    Wrap::Zlib => 1,
                    _ => 0,
                },
                delivered: 0,
            },
            log: Vec::new(),
            ahead: Vec::new(),
            log_cap,
            body_ended: false,
            trailer: Vec::new(),
            done: false,
            bytes_in: 0,
            counted_out: 0,
            par,
            marks: VecDeque::new(),
            scan_from: 0,
            par_hold: 0,
        })
    }

    /// What software replays: the input taken so far followed by the copy of the
    /// caller's next input bytes the device read; how many of those bytes were taken; and
    /// the output delivered.
    pub fn replay(self) -> (Vec<u8>, usize, u64) {
        let (mut log, ahead) = (self.log, self.ahead);
        let taken = log.len();
        if log.try_reserve(ahead.len()).is_ok() {
            log.extend_from_slice(&ahead);
        }
        (log, taken, self.q.delivered)
    }

    /// zlib's `strm->adler` now.
    pub fn adler(&self) -> u32 {
        self.q.check
    }

    /// Bytes the device consumed and delivered since the last time (for the counters).
    pub fn take_bytes(&mut self) -> (u64, u64) {
        let r = (self.bytes_in, self.q.delivered - self.counted_out);
        self.bytes_in = 0;
        self.counted_out = self.q.delivered;
        r
    }

    fn take(&mut self, b: &[u8]) -> Result<(), HandOver> {
        self.log
            .try_reserve(b.len())
            .map_err(|_| HandOver::LogFull)?;
        self.log.extend_from_slice(b);
        Ok(())
    }

    fn trailer_ok(&self) -> bool {
        match self.wrap {
            Wrap::Raw => true,
            Wrap::Zlib => self.trailer[..] == self.q.check.to_be_bytes(),
            Wrap::Gzip => {
                let mut t = self.q.check.to_le_bytes().to_vec();
                t.extend_from_slice(&(self.q.delivered as u32).to_le_bytes());
                self.trailer == t
            }
        }
    }

    /// One `inflate` call: `input` is the caller's `next_in`, `finish` its `Z_FINISH`.
    pub fn inflate(&mut self, input: &[u8], out: &mut OutBuf, finish: bool) -> Call {
        let mut call = Call {
            consumed: 0,
            produced: 0,
            ret: Ok(Z_OK),
        };
        let r = self.run(input, out, &mut call);
        call.ret = match r {
            Err(h) => Err(h),
            Ok(true) => Ok(Z_STREAM_END),
            Ok(false) if call.consumed == 0 && call.produced == 0 => Ok(Z_BUF_ERROR),
            Ok(false) if finish => Ok(Z_BUF_ERROR),
            Ok(false) => Ok(Z_OK),
        };
        call
    }

    /// True if the next step may be a parallel batch (the input is then searched).
    fn may_batch(&self) -> bool {
        self.par > 1
            && self.header == 0
            && !self.body_ended
            && self.held.is_empty()
            && self.log.len() <= self.log_cap
            && self.log.len() as u64 >= self.par_hold
    }

    /// The work of a call; Ok(true) at the end of the stream.
    fn run(&mut self, input: &[u8], out: &mut OutBuf, call: &mut Call) -> Result<bool, HandOver> {
        if self.done {
            return Ok(true);
        }
        if self.header > 0 {
            if input.len() < self.header {
                return Err(HandOver::Error);
            }
            self.take(&input[..self.header])?;
            call.consumed = self.header;
            self.header = 0;
        }
        loop {
            if !self.q.is_empty() {
                // The caller wants more than is decoded: the next batch decodes while this
                // output is delivered.
                if out.room() > self.q.len()
                    && self.may_batch()
                    && self.parallel(input, Some(out), call)?
                {
                    continue;
                }
                call.produced += self.q.deliver(out);
                if !self.q.is_empty() {
                    return Ok(false);
                }
            }
            if self.body_ended {
                let want = trailer_len(self.wrap) - self.trailer.len();
                if want > 0 {
                    let from_held = want.min(self.held.len());
                    let t: Vec<u8> = self.held.drain(..from_held).collect();
                    self.trailer.extend_from_slice(&t);
                    let k = (want - from_held).min(input.len() - call.consumed);
                    let b = &input[call.consumed..call.consumed + k];
                    self.trailer.extend_from_slice(b);
                    self.take(b)?;
                    call.consumed += k;
                    if self.trailer.len() < trailer_len(self.wrap) {
                        return Ok(false);
                    }
                }
                if !self.trailer_ok() {
                    return Err(HandOver::Error);
                }
                self.done = true;
                return Ok(true);
            }
            if self.log.len() > self.log_cap {
                return Err(HandOver::LogFull);
            }
            let rest = &input[call.consumed..];
            if (self.held.is_empty() && rest.is_empty()) || out.room() == 0 {
                return Ok(false);
            }
            if self.may_batch() && self.parallel(input, None, call)? {
                continue;
            }
            let held_before = self.held.len();
            let given;
            let mut buf = self.q.buf();
            let step = if held_before == 0 {
                given = rest.len();
                self.dev.inflate(rest, &mut buf, DEVICE_STEP)
            } else {
                given = rest.len().min(HELD_FEED);
                self.held
                    .try_reserve(given)
                    .map_err(|_| HandOver::LogFull)?;
                self.held.extend_from_slice(&rest[..given]);
                self.dev.inflate(&self.held, &mut buf, DEVICE_STEP)
            };
            let step = step.map_err(|e| {
                wd_core::wd_log!(Debug, "wdz: device inflate stopped ({e}); software replays");
                HandOver::Error
            })?;
            let taken = self.account(input, call, given, held_before, step, buf, DEVICE_STEP)?;
            if !step.ended && step.consumed == 0 && step.produced == 0 && taken == 0 {
                return Ok(false);
            }
        }
    }

    /// Books a device step of the stream's device stream that was given `given` bytes of
    /// the caller's input at `call.consumed` (after `held_before` held bytes: the step
    /// ran over `held`, which holds them and the given bytes), with output limit `limit`:
    /// takes the input as far as the device used it (plus, when it ran out of input
    /// inside a block, that block, held), stages the output `buf`. Returns the bytes taken.
    #[allow(clippy::too_many_arguments)]
    fn account(
        &mut self,
        input: &[u8],
        call: &mut Call,
        given: usize,
        held_before: usize,
        step: BodyStep,
        buf: Vec<u8>,
        limit: usize,
    ) -> Result<usize, HandOver> {
        let rest = &input[call.consumed..];
        self.bytes_in += step.consumed as u64;
        self.q.push(buf);
        let input_limited = !step.ended && step.produced < limit;
        // Bytes of `rest` taken: all that was given when the device ran out of input
        // (the unfinished block is held), else exactly what it consumed.
        let taken = if input_limited {
            given
        } else {
            step.consumed.saturating_sub(held_before).min(given)
        };
        if held_before == 0 {
            if input_limited {
                let tail = &rest[step.consumed.min(given)..given];
                self.held
                    .try_reserve(tail.len())
                    .map_err(|_| HandOver::LogFull)?;
                self.held.extend_from_slice(tail);
            }
        } else {
            // `held` is the old held bytes plus `given` new ones: keep what the device
            // left, minus new bytes not taken.
            let keep_to = if input_limited {
                self.held.len()
            } else {
                held_before.max(step.consumed)
            };
            self.held.truncate(keep_to);
            self.held.drain(..step.consumed.min(keep_to));
        }
        self.ahead.clear();
        if !step.ended && !input_limited {
            let to = step.read.saturating_sub(held_before).clamp(taken, given);
            let a = &rest[taken..to];
            self.ahead
                .try_reserve(a.len())
                .map_err(|_| HandOver::LogFull)?;
            self.ahead.extend_from_slice(a);
        }
        let b = &input[call.consumed..call.consumed + taken];
        self.take(b)?;
        call.consumed += taken;
        if step.ended {
            self.body_ended = true;
            // A raw device stream checked no trailer: the trailer code takes it.
            if step.trailer_checked && !self.dev_raw {
                self.trailer = match self.wrap {
                    Wrap::Raw => Vec::new(),
                    Wrap::Zlib => {
                        let (c, _) = self.dev.checksum();
                        c.to_be_bytes().to_vec()
                    }
                    Wrap::Gzip => {
                        let (c, n) = self.dev.checksum();
                        let mut t = c.to_le_bytes().to_vec();
                        t.extend_from_slice(&n.to_le_bytes());
                        t
                    }
                };
            }
        }
        Ok(taken)
    }

    /// Where the segments of a batch end in `rest` (which starts at the position, a block
    /// boundary with nothing held): at the next [`INDEPENDENT_MARK`]s, the last possibly
    /// at the end of `rest` (a segment that may end the stream). None if fewer than two.
    fn plan(&mut self, rest: &[u8]) -> Option<Vec<usize>> {
        if rest.len() < PAR_MIN_INPUT {
            return None;
        }
        let pos = self.log.len() as u64;
        while self.marks.front().is_some_and(|&m| m <= pos) {
            self.marks.pop_front();
        }
        let scan_to = pos + rest.len().min(PAR_SCAN) as u64;
        self.scan_from = self.scan_from.max(pos);
        while self.marks.len() < self.par && self.scan_from < scan_to {
            let from = (self.scan_from - pos) as usize;
            let to = (scan_to - pos) as usize;
            match find_mark(&rest[from..to]) {
                Some(e) => {
                    let m = pos + (from + e) as u64;
                    self.marks.push_back(m);
                    self.scan_from = m;
                }
                None => {
                    // A mark may begin in the last 8 bytes and end past them.
                    let back = INDEPENDENT_MARK.len() as u64 - 1;
                    self.scan_from = scan_to.saturating_sub(back).max(self.scan_from);
                    break;
                }
            }
        }
        let mut ends: Vec<usize> = self
            .marks
            .iter()
            .take(self.par)
            .map(|&m| (m - pos) as usize)
            .filter(|&e| e <= rest.len())
            .collect();
        if ends.len() < self.par
            && rest.len() <= PAR_SCAN
            && ends.last().is_some_and(|&e| e < rest.len())
        {
            ends.push(rest.len());
        }
        (ends.len() >= 2).then_some(ends)
    }

    /// One parallel batch from the position (`input[call.consumed..]`, a block boundary
    /// with nothing held): the first segment on the stream's device stream, the others
    /// fresh, each on a thread; `out` (when given) gets the staged output meanwhile.
    /// Takes the exact prefix (see the module doc); Ok(false) if there was no batch to do.
    fn parallel(
        &mut self,
        input: &[u8],
        out: Option<&mut OutBuf>,
        call: &mut Call,
    ) -> Result<bool, HandOver> {
        let base = call.consumed;
        let Some(ends) = self.plan(&input[base..]) else {
            return Ok(false);
        };
        let rest = &input[base..];
        let starts: Vec<usize> = std::iter::once(0)
            .chain(ends.iter().copied())
            .take(ends.len())
            .collect();
        let segs: Vec<&[u8]> = starts
            .iter()
            .zip(&ends)
            .map(|(&a, &b)| &rest[a..b])
            .collect();
        let abs_base = self.log.len() as u64;
        let mut bufs: Vec<Vec<u8>> = (0..segs.len()).map(|_| self.q.buf()).collect();
        let mut first_buf = bufs.remove(0);
        let dev = &mut self.dev;
        let q = &mut self.q;
        let produced = &mut call.produced;
        let seg0 = segs[0];
        let (first, fresh) = std::thread::scope(|sc| {
            let h0 = std::thread::Builder::new()
                .name("wdz-inflate".into())
                .spawn_scoped(sc, move || {
                    let r = dev.inflate(seg0, &mut first_buf, PAR_SEG_OUT);
                    (r, first_buf)
                });
            let hs: Vec<_> = segs[1..]
                .iter()
                .zip(bufs)
                .map(|(&seg, mut b)| {
                    std::thread::Builder::new()
                        .name("wdz-inflate".into())
                        .spawn_scoped(sc, move || (decode_fresh(seg, &mut b), b))
                        .ok()
                })
                .collect();
            if let Some(out) = out {
                *produced += q.deliver(out);
            }
            // None: the thread did not start (nothing ran); Some(None): it panicked.
            let first = h0.ok().map(|h| h.join().ok());
            let fresh: Vec<Option<(Fresh, Vec<u8>)>> = hs
                .into_iter()
                .map(|h| h.and_then(|h| h.join().ok()))
                .collect();
            (first, fresh)
        });
        let (r0, b0) = match first {
            None => {
                // No thread for the stream's own segment: nothing of it ran; serial.
                self.par = 1;
                let n = fresh.iter().filter(|f| f.is_some()).count();
                stats::add(Counter::InflateParallelDropped, n as u64);
                return Ok(false);
            }
            Some(None) => return Err(HandOver::Error),
            Some(Some(x)) => x,
        };
        let step0 = r0.map_err(|e| {
            wd_core::wd_log!(Debug, "wdz: device inflate stopped ({e}); software replays");
            HandOver::Error
        })?;
        self.account(input, call, seg0.len(), 0, step0, b0, PAR_SEG_OUT)?;
        // The next segment starts at a block boundary of the true decoding.
        let mut chain = !step0.ended && step0.consumed == seg0.len();
        let (mut accepted, mut dropped) = (0u64, 0u64);
        for (i, r) in fresh.into_iter().enumerate() {
            let i = i + 1;
            let start = base + starts[i];
            match r {
                Some((Fresh::Done(d, st), b)) if chain && call.consumed == start => {
                    // Exact: it starts where the true decoding stands, and refers to
                    // nothing before (that would have been an error). Its device stream
                    // holds the right window from here on.
                    self.dev = d;
                    self.dev_raw = true;
                    self.account(input, call, segs[i].len(), 0, st, b, PAR_SEG_OUT)?;
                    accepted += 1;
                    chain = !st.ended && st.consumed == segs[i].len();
                }
                Some((Fresh::Unsupported, b)) => {
                    self.par = 1;
                    self.q.recycle(b);
                    chain = false;
                }
                other => {
                    if let Some((_, b)) = other {
                        self.q.recycle(b);
                    }
                    if dropped == 0 && !self.body_ended {
                        self.par_hold = abs_base + starts[i] as u64;
                    }
                    dropped += 1;
                    chain = false;
                }
            }
        }
        stats::add(Counter::InflateParallelSegments, accepted);
        stats::add(Counter::InflateParallelDropped, dropped);
        Ok(true)
    }
}
