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
//! segment (no back-reference before it) after [`INDEPENDENT_MARK`]. Segments that start
//! at marks ahead of the position are decoded in advance, each on a fresh raw-deflate
//! device stream on a thread of its own that outlives the call (so the engines work
//! while the caller handles its output), from a copy of the caller's input. A mark is
//! only a hint: such a segment is taken only when the stream's true decoding stands
//! exactly at its start at a block boundary (a device step given input up to there used
//! all of it), its input is the caller's input there (compared), and it decoded without
//! error (a back-reference before its start is an error on a fresh stream): its output is
//! then exactly what the stream's own decoder would give, and its device stream, which
//! holds the right window, continues the stream. Anything else is dropped and the stream
//! goes on from its true state.

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::ffi::c_int;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use hisi_zip::{BodyInflater, BodyStep, Format, Reason};
use libz_rs_sys::{Z_BUF_ERROR, Z_OK, Z_STREAM_END};

use crate::deflate::{Wrap, INDEPENDENT_MARK};
use crate::outbuf::OutBuf;
use crate::stats::{self, Counter};

/// Output one device call aims at (the device may overshoot by one 8 MiB request).
const DEVICE_STEP: usize = 4 << 20;
/// Input beyond the held bytes given with them in one device call.
const HELD_FEED: usize = 1 << 20;
/// Input from the position below which no segment is decoded ahead.
const PAR_MIN_INPUT: usize = 1 << 20;
/// How far past the position the input is searched for marks.
const PAR_SCAN: usize = 32 << 20;
/// Longest segment (compressed) decoded ahead.
const PAR_SEG_IN: usize = 12 << 20;
/// Output limit of a segment decoded ahead, and of a step of the stream's own device
/// stream up to one (the device overshoots it by one request, 8 MiB at most): libwdz's
/// segments are at most 8 MiB of input.
const PAR_SEG_OUT: usize = 9 << 20;
/// Output buffers a stream keeps for reuse beyond its segments decoded ahead (one waiting
/// for the caller, one for the stream's own step).
const SPARE_BUFS: usize = 2;

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
    /// Most spare buffers kept.
    spare_max: usize,
    wrap: Wrap,
    /// zlib's `strm->adler`: the check of the output delivered (0 for raw streams).
    check: u32,
    delivered: u64,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// An empty buffer (a reused one when there is one).
    fn buf(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    fn recycle(&mut self, mut b: Vec<u8>) {
        if self.spare.len() < self.spare_max {
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
    /// No device stream to be had (every queue taken): this stream decodes no more ahead.
    NoQueue,
    /// The device failed, the data is corrupt, or refers to output before the segment.
    Failed,
    Done(Box<BodyInflater>, BodyStep),
}

fn decode_fresh(seg: &[u8], out: &mut Vec<u8>) -> Fresh {
    let mut d = match BodyInflater::new(Format::Deflate) {
        Ok(d) => d,
        Err(Reason::Unsupported) => return Fresh::Unsupported,
        Err(_) => return Fresh::NoQueue,
    };
    // Room for a whole segment at once (pages are touched only as written).
    let _ = out.try_reserve(PAR_SEG_OUT.min(seg.len().saturating_mul(16)));
    match d.inflate(seg, out, PAR_SEG_OUT) {
        Ok(st) => Fresh::Done(Box::new(d), st),
        Err(_) => Fresh::Failed,
    }
}

/// The end of the first [`INDEPENDENT_MARK`] in `hay`.
fn find_mark(hay: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, &INDEPENDENT_MARK).map(|i| i + INDEPENDENT_MARK.len())
}

/// Whether the device has raw-deflate streams (v3; a v2 device has not: nothing is
/// decoded ahead): 0 not known yet, 1 yes, 2 no.
static RAW: AtomicU8 = AtomicU8::new(0);

fn raw_streams() -> bool {
    match RAW.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = !matches!(BodyInflater::new(Format::Deflate), Err(Reason::Unsupported));
            RAW.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// One thread decoding ahead, counted while it lives (even when dropped: the device
/// work goes on until it ends).
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(n: &Arc<AtomicUsize>) -> Running {
        n.fetch_add(1, Ordering::AcqRel);
        Running(n.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A segment decoded ahead: what its thread gives back.
type Ahead = (Fresh, Vec<u8>, Vec<u8>);

/// A segment being decoded ahead, on a thread of its own.
struct Job {
    /// Stream position of its first byte (where a mark ends).
    start: u64,
    /// Its compressed length (the copy its thread decodes).
    len: usize,
    /// It ends at a mark (not where the caller's input ended): the next segment starts
    /// there.
    to_mark: bool,
    /// Gives the result, the output and the copy of the input.
    handle: std::thread::JoinHandle<Ahead>,
    /// The process that started it (a forked child has not the thread).
    pid: u32,
}

/// Every input byte taken since the stream began: pieces copied in, and the copies
/// segments decoded ahead were made from (kept, not copied again).
#[derive(Default)]
struct Log {
    chunks: Vec<Vec<u8>>,
    tail: Vec<u8>,
    len: usize,
}

impl Log {
    fn push(&mut self, b: &[u8]) -> Result<(), HandOver> {
        self.tail
            .try_reserve(b.len())
            .map_err(|_| HandOver::LogFull)?;
        self.tail.extend_from_slice(b);
        self.len += b.len();
        Ok(())
    }

    fn push_owned(&mut self, v: Vec<u8>) -> Result<(), HandOver> {
        if !self.tail.is_empty() {
            self.chunks.try_reserve(2).map_err(|_| HandOver::LogFull)?;
            self.chunks.push(std::mem::take(&mut self.tail));
        }
        self.len += v.len();
        self.chunks.push(v);
        Ok(())
    }

    /// All of it in one buffer, followed by `extra` (best effort: `extra` is left out if
    /// memory runs out); None if there is no memory for the log itself.
    fn into_vec(self, extra: &[u8]) -> Option<Vec<u8>> {
        let mut parts = self.chunks.into_iter();
        let mut v = parts.next().unwrap_or_default();
        let more = self.len - v.len();
        if v.try_reserve(more + extra.len()).is_err() {
            v.try_reserve(more).ok()?;
        }
        for c in parts {
            v.extend_from_slice(&c);
        }
        v.extend_from_slice(&self.tail);
        if v.try_reserve(extra.len()).is_ok() {
            v.extend_from_slice(extra);
        }
        Some(v)
    }
}

/// A stream whose body runs on the device.
pub struct DeviceInflate {
    wrap: Wrap,
    dev: Box<BodyInflater>,
    /// `dev` is a raw-deflate stream (a segment decoded ahead was taken): it does not
    /// check the trailer, we do.
    dev_raw: bool,
    /// Header bytes still to take (the first call takes them).
    header: usize,
    /// Taken, not yet consumed by the device (an unfinished block).
    held: Vec<u8>,
    /// Decoded, not yet delivered.
    q: Staged,
    log: Log,
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
    /// Most segments decoded ahead at once (0: none).
    par: usize,
    /// Stream positions (input bytes from the stream's start) where an
    /// [`INDEPENDENT_MARK`] ends, found ahead of the position and not yet reached.
    marks: VecDeque<u64>,
    /// Where the search for marks goes on.
    scan_from: u64,
    /// Segments being decoded ahead, in stream order, each starting where the one
    /// before ends.
    jobs: VecDeque<Job>,
    /// The position, if the stream's device stream is known to stand exactly there at a
    /// byte-aligned block boundary (a step used all the input it was given).
    aligned: Option<u64>,
    /// No segment is decoded ahead from before this position (one from there was
    /// dropped: it is not tried again).
    retry_from: u64,
    /// Threads decoding ahead still running, dropped ones included (at most `par`).
    running: Arc<AtomicUsize>,
}

impl std::fmt::Debug for DeviceInflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceInflate")
            .field("delivered", &self.q.delivered)
            .field("log", &self.log.len)
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

/// The trailer of a `wrap` stream whose output has check `check` and length `len`
/// (modulo 2^32).
fn trailer_of(wrap: Wrap, check: u32, len: u32) -> Vec<u8> {
    match wrap {
        Wrap::Raw => Vec::new(),
        Wrap::Zlib => hisi_zip::header::zlib_trailer(check).to_vec(),
        Wrap::Gzip => hisi_zip::header::gzip_trailer(check, len).to_vec(),
    }
}

/// A device step that failed: the device or the data (it cannot tell them apart);
/// software replays the stream and says which.
fn device_stopped(e: std::io::Error) -> HandOver {
    wd_core::wd_log!(Debug, "wdz: device inflate stopped ({e}); software replays");
    HandOver::Error
}

impl DeviceInflate {
    /// A device stream for a stream whose header (`header` bytes, see [`simple_header`])
    /// starts the first call's input; Err if no device stream is available. `par`: most
    /// segments decoded ahead at once (`WD_ZLIB_INFLATE_PARALLEL`).
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
                spare_max: par + SPARE_BUFS,
                wrap,
                check: match wrap {
                    Wrap::Zlib => 1,
                    _ => 0,
                },
                delivered: 0,
            },
            log: Log::default(),
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
            jobs: VecDeque::new(),
            // The body starts at a block boundary right after the header.
            aligned: Some(header as u64),
            retry_from: 0,
            running: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// What software replays: the input taken so far followed by the copy of the
    /// caller's next input bytes the device read; how many of those bytes were taken; and
    /// the output delivered. None if there is no memory to put the log in one buffer.
    pub fn replay(mut self) -> Option<(Vec<u8>, usize, u64)> {
        self.drop_jobs();
        let taken = self.log.len;
        let delivered = self.q.delivered;
        let ahead = std::mem::take(&mut self.ahead);
        let log = std::mem::take(&mut self.log).into_vec(&ahead)?;
        Some((log, taken, delivered))
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

    fn pos(&self) -> u64 {
        self.log.len as u64
    }

    fn trailer_ok(&self) -> bool {
        self.trailer == trailer_of(self.wrap, self.q.check, self.q.delivered as u32)
    }

    /// One `inflate` call: `input` is the caller's `next_in`, `finish` its `Z_FINISH`.
    pub fn inflate(&mut self, input: &[u8], out: &mut OutBuf, finish: bool) -> Call {
        let mut call = Call {
            consumed: 0,
            produced: 0,
            ret: Ok(Z_OK),
        };
        let r = self.run(input, out, &mut call);
        if r.is_ok() {
            // The engines go on with the segments ahead while the caller is away.
            self.launch(input, call.consumed);
        }
        call.ret = match r {
            Err(h) => Err(h),
            Ok(true) => Ok(Z_STREAM_END),
            Ok(false) if call.consumed == 0 && call.produced == 0 => Ok(Z_BUF_ERROR),
            Ok(false) if finish => Ok(Z_BUF_ERROR),
            Ok(false) => Ok(Z_OK),
        };
        call
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
            self.log.push(&input[..self.header])?;
            call.consumed = self.header;
            self.header = 0;
        }
        loop {
            if !self.q.is_empty() {
                call.produced += self.q.deliver(out);
                if !self.q.is_empty() {
                    return Ok(false);
                }
            }
            if self.body_ended {
                self.drop_jobs();
                let want = format_of(self.wrap).trailer_len() - self.trailer.len();
                if want > 0 {
                    let from_held = want.min(self.held.len());
                    let t: Vec<u8> = self.held.drain(..from_held).collect();
                    self.trailer.extend_from_slice(&t);
                    let k = (want - from_held).min(input.len() - call.consumed);
                    let b = &input[call.consumed..call.consumed + k];
                    self.trailer.extend_from_slice(b);
                    self.log.push(b)?;
                    call.consumed += k;
                    if self.trailer.len() < format_of(self.wrap).trailer_len() {
                        return Ok(false);
                    }
                }
                if !self.trailer_ok() {
                    return Err(HandOver::Error);
                }
                self.done = true;
                return Ok(true);
            }
            if self.log.len > self.log_cap {
                return Err(HandOver::LogFull);
            }
            let rest = &input[call.consumed..];
            if (self.held.is_empty() && rest.is_empty()) || out.room() == 0 {
                return Ok(false);
            }
            self.launch(input, call.consumed);
            if self.held.is_empty() && self.ahead_step(input, call)? {
                continue;
            }
            let held_before = self.held.len();
            let given;
            let mut buf = self.q.buf();
            let step = if held_before == 0 {
                given = rest.len();
                self.dev.inflate(rest, &mut buf, DEVICE_STEP)
            } else {
                // Not past the next segment decoded ahead: a step that uses all it is
                // given stands exactly at its start.
                let pos = self.pos();
                let to_job = self
                    .jobs
                    .front()
                    .filter(|j| j.start > pos)
                    .map_or(usize::MAX, |j| (j.start - pos) as usize);
                given = rest.len().min(HELD_FEED).min(to_job);
                self.held
                    .try_reserve(given)
                    .map_err(|_| HandOver::LogFull)?;
                self.held.extend_from_slice(&rest[..given]);
                self.dev.inflate(&self.held, &mut buf, DEVICE_STEP)
            };
            let step = step.map_err(device_stopped)?;
            let taken = self.account(
                input,
                call,
                given,
                held_before,
                step,
                buf,
                DEVICE_STEP,
                None,
            )?;
            if !step.ended && step.consumed == 0 && step.produced == 0 && taken == 0 {
                return Ok(false);
            }
        }
    }

    /// With segments decoded ahead: takes the first one if the stream stands at its start
    /// (see the module doc), or decodes up to exactly its start on the stream's own
    /// device stream; drops those the stream went past. False if there was nothing to
    /// do this way (the caller does a plain step).
    fn ahead_step(&mut self, input: &[u8], call: &mut Call) -> Result<bool, HandOver> {
        let pos = self.pos();
        while let Some(j) = self.jobs.front() {
            if j.start > pos || (j.start == pos && self.aligned == Some(pos)) {
                break;
            }
            if let Some(j) = self.jobs.pop_front() {
                self.retry_from = self.retry_from.max(j.start + 1);
            }
            stats::bump(Counter::InflateParallelDropped);
        }
        let Some(j) = self.jobs.front() else {
            return Ok(false);
        };
        let rest = &input[call.consumed..];
        if j.start > pos {
            let n = (j.start - pos) as usize;
            if n > rest.len() {
                return Ok(false);
            }
            // The stream's own device stream up to the segment's start exactly.
            let mut buf = self.q.buf();
            let step = self
                .dev
                .inflate(&rest[..n], &mut buf, PAR_SEG_OUT)
                .map_err(device_stopped)?;
            self.account(input, call, n, 0, step, buf, PAR_SEG_OUT, None)?;
            return Ok(true);
        }
        let Some(j) = self.jobs.pop_front() else {
            return Ok(false);
        };
        let len = j.len;
        let joined = if j.pid == std::process::id() {
            j.handle.join().ok()
        } else {
            // Started before a fork: the thread is the parent's.
            std::mem::forget(j.handle);
            None
        };
        let (fresh, out, copy) = joined.unwrap_or((Fresh::Failed, Vec::new(), Vec::new()));
        match fresh {
            Fresh::Done(d, st) if rest.get(..len) == Some(&copy[..]) => {
                // Exact: it starts where the true decoding stands, on the same input, and
                // refers to nothing before it (that would have been an error). Its device
                // stream holds the right window from here on.
                self.dev = d;
                self.dev_raw = true;
                self.account(input, call, len, 0, st, out, PAR_SEG_OUT, Some(copy))?;
                stats::bump(Counter::InflateParallelSegments);
            }
            Fresh::Unsupported => {
                // A v2 device: no segment is decoded ahead in this process.
                RAW.store(2, Ordering::Relaxed);
                self.par = 0;
                self.jobs.clear();
                self.q.recycle(out);
            }
            other => {
                if matches!(other, Fresh::NoQueue) {
                    self.par = 0;
                    self.drop_jobs();
                }
                stats::bump(Counter::InflateParallelDropped);
                self.retry_from = self.retry_from.max(pos + 1);
                self.q.recycle(out);
            }
        }
        Ok(true)
    }

    /// Segments ahead no longer wanted: their threads finish on their own (a detached
    /// thread drops its device stream and output).
    fn drop_jobs(&mut self) {
        if let Some(j) = self.jobs.back() {
            self.retry_from = self.retry_from.max(j.start + 1);
        }
        let n = self.jobs.len() as u64;
        self.jobs.clear();
        stats::add(Counter::InflateParallelDropped, n);
    }

    /// Starts decoding ahead the segments after the next marks in `input[at..]` (the
    /// caller's input at the position), up to `par` at once.
    fn launch(&mut self, input: &[u8], at: usize) {
        if self.par == 0
            || self.body_ended
            || self.header > 0
            || self.log.len > self.log_cap
            || !raw_streams()
        {
            return;
        }
        let rest = &input[at.min(input.len())..];
        let pos = self.pos();
        // Until the stream has output, one segment ahead: the stream's own first step is
        // what the caller waits for, and it shares the engines with the segments ahead.
        let most = if self.q.delivered == 0 && self.q.is_empty() {
            self.par.min(1)
        } else {
            self.par
        };
        while self.jobs.len() < most && self.running.load(Ordering::Acquire) < most {
            let from = match self.jobs.back() {
                Some(j) if j.to_mark => j.start + j.len as u64,
                // The last one ends where the caller's input ended, within a segment.
                Some(_) => return,
                None => {
                    // The first mark ahead (at the position itself only if the stream
                    // stands there at a block boundary).
                    while self
                        .marks
                        .front()
                        .is_some_and(|&m| m < pos || (m == pos && self.aligned != Some(pos)))
                    {
                        self.marks.pop_front();
                    }
                    if rest.len() < PAR_MIN_INPUT && self.marks.is_empty() {
                        return;
                    }
                    match self.next_mark(rest, pos, pos.max(self.retry_from)) {
                        Some(m) => m,
                        None => return,
                    }
                }
            };
            if from < pos.max(self.retry_from) {
                // The stream went past the segments ahead (they are dropped when it
                // next looks at them); nothing new from behind it.
                return;
            }
            // The segment ends at the next mark, or where the input ends if that is the
            // last of it (the stream's last segment, with its end).
            let (to, to_mark) = match self.next_mark(rest, pos, from + 1) {
                Some(m) => (m, true),
                None if rest.len() <= PAR_SCAN => (pos + rest.len() as u64, false),
                None => return,
            };
            let (a, b) = ((from - pos) as usize, (to - pos) as usize);
            if b <= a || b > rest.len() || b - a > PAR_SEG_IN {
                return;
            }
            let mut copy = Vec::new();
            if copy.try_reserve_exact(b - a).is_err() {
                return;
            }
            copy.extend_from_slice(&rest[a..b]);
            let mut buf = self.q.buf();
            let running = Running::start(&self.running);
            let spawned = std::thread::Builder::new()
                .name("wdz-inflate".into())
                .spawn(move || {
                    let _running = running;
                    let f = decode_fresh(&copy, &mut buf);
                    (f, buf, copy)
                });
            match spawned {
                Ok(handle) => self.jobs.push_back(Job {
                    start: from,
                    len: b - a,
                    to_mark,
                    handle,
                    pid: std::process::id(),
                }),
                Err(_) => {
                    self.par = 0;
                    return;
                }
            }
        }
    }

    /// The first mark ending at or after `from` within `rest` (the input at `pos`),
    /// searching further as needed (up to [`PAR_SCAN`] past the position).
    fn next_mark(&mut self, rest: &[u8], pos: u64, from: u64) -> Option<u64> {
        loop {
            if let Some(&m) = self.marks.iter().find(|&&m| m >= from) {
                return (m <= pos + rest.len() as u64).then_some(m);
            }
            let scan_to = pos + rest.len().min(PAR_SCAN) as u64;
            self.scan_from = self.scan_from.max(pos);
            if self.scan_from >= scan_to {
                return None;
            }
            let (a, b) = ((self.scan_from - pos) as usize, (scan_to - pos) as usize);
            match find_mark(&rest[a..b]) {
                Some(e) => {
                    let m = pos + (a + e) as u64;
                    self.marks.push_back(m);
                    self.scan_from = m;
                }
                None => {
                    // A mark may begin in the last 8 bytes and end past them.
                    let back = INDEPENDENT_MARK.len() as u64 - 1;
                    self.scan_from = scan_to.saturating_sub(back).max(self.scan_from);
                    return None;
                }
            }
        }
    }

    /// Books a device step that was given `given` bytes of the caller's input at
    /// `call.consumed` (after `held_before` held bytes: the step ran over `held`, which
    /// holds them and the given bytes), with output limit `limit`: takes the
    /// input as far as the device used it (plus, when it ran out of input inside a block,
    /// that block, held), stages the output `buf`. `copy`: the given bytes as a segment
    /// decoded ahead copied them (the log keeps it). Returns the bytes taken.
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
        copy: Option<Vec<u8>>,
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
        match copy {
            Some(mut c) if c.len() >= taken => {
                c.truncate(taken);
                self.log.push_owned(c)?;
            }
            _ => self.log.push(&rest[..taken])?,
        }
        call.consumed += taken;
        // Everything given was used: the device stands at a byte-aligned block boundary.
        self.aligned = (!step.ended && step.consumed == held_before + given).then_some(self.pos());
        if step.ended {
            self.body_ended = true;
            // A raw device stream checked no trailer: the trailer code takes it.
            if step.trailer_checked && !self.dev_raw {
                let (c, n) = self.dev.checksum();
                self.trailer = trailer_of(self.wrap, c, n);
            }
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_found_where_they_end() {
        let m = INDEPENDENT_MARK;
        assert_eq!(find_mark(&m), Some(9));
        let mut hay = vec![0xffu8; 20];
        hay.extend_from_slice(&m);
        hay.extend_from_slice(&[0, 0, 0xff]);
        assert_eq!(find_mark(&hay), Some(29));
        // Every offset, after runs of bytes that begin a partial match (0, 0xff) or none.
        for pre in 0..40 {
            for fill in [0u8, 0xff, 7] {
                let mut h = vec![fill; pre];
                h.extend_from_slice(&m);
                assert_eq!(find_mark(&h), Some(pre + 9), "{pre} {fill}");
            }
        }
        assert_eq!(find_mark(&m[..8]), None);
        assert_eq!(find_mark(&[0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn log_pieces_join_in_order() {
        let mut l = Log::default();
        l.push(b"ab").unwrap();
        l.push_owned(b"cd".to_vec()).unwrap();
        l.push(b"e").unwrap();
        l.push_owned(b"fg".to_vec()).unwrap();
        assert_eq!(l.len, 7);
        assert_eq!(l.into_vec(b"XY").unwrap(), b"abcdefgXY");
        assert_eq!(Log::default().into_vec(b"z").unwrap(), b"z");
    }
}
