//! One deflate stream: where it runs (undecided, software, device) and zlib's semantics
//! of `deflate` on top of either engine. The C shim (`ffi::deflate`) turns the caller's
//! z_stream into slices and an [`OutBuf`] and writes back what [`DeflateStream`] reports.
//!
//! Routing (DESIGN.md): a stream with zlib's default strategy, a 32 KiB window
//! (`windowBits` 15, 31, -15) and level 1..9 starts *pending*: it buffers input (Z_NO_FLUSH
//! may) until `WD_ZLIB_MIN_INPUT` bytes, then opens the device; a flush before that, or no
//! device, replays the buffer into zlib-rs with the caller's parameters, exactly as if
//! the stream had been software from the start. Everything else is software from init.
//!
//! On the device, input goes in *segments* of at most `WD_ZLIB_CHUNK` bytes; each segment
//! is one device call whose output ends on a byte boundary after complete non-final
//! blocks (the last one with the final block). Headers, trailers and checksums are ours.
//! A segment the device fails is redone in software: a fresh raw zlib-rs stream takes
//! over at that byte boundary, with the stream's level and strategy, and the rest of the
//! stream stays there (its output is a valid continuation: blocks do not depend on the
//! encoder that wrote the previous ones, and the decoder's window holds all earlier
//! output). `deflateParams`, `deflatePrime`, `deflateTune` and `deflateCopy` mid-stream use
//! the same hand-over.

#![forbid(unsafe_code)]

use std::ffi::c_int;

use hisi_zip::{Compressor, Format, Offload as HwOffload, Reason};
use libz_rs_sys::{
    Z_BINARY, Z_BLOCK, Z_BUF_ERROR, Z_DATA_ERROR, Z_DEFAULT_STRATEGY, Z_FINISH, Z_FULL_FLUSH,
    Z_MEM_ERROR, Z_NO_FLUSH, Z_OK, Z_STREAM_END, Z_STREAM_ERROR, Z_SYNC_FLUSH, Z_TEXT, Z_UNKNOWN,
};

use crate::config::{self, Offload};
use crate::outbuf::OutBuf;
use crate::soft::{self, SoftDeflate};
use crate::stats::{self, Counter};

/// The container, from `windowBits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    Raw,
    Zlib,
    Gzip,
}

/// What `deflateInit2` was given (validated).
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// 0..=9 (Z_DEFAULT_COMPRESSION already mapped to 6).
    pub level: c_int,
    /// As given (9..=15, 25..=31, -15..=-8; 8 is zlib's 9).
    pub window_bits: c_int,
    pub mem_level: c_int,
    pub strategy: c_int,
}

impl Params {
    /// zlib's parameter checks; `None` is Z_STREAM_ERROR.
    pub fn check(
        level: c_int,
        method: c_int,
        window_bits: c_int,
        mem_level: c_int,
        strategy: c_int,
    ) -> Option<Params> {
        let level = if level == -1 { 6 } else { level };
        let bits = match window_bits {
            -15..=-8 => -window_bits,
            8..=15 => window_bits,
            24..=31 => window_bits - 16,
            _ => return None,
        };
        if method != 8
            || !(0..=9).contains(&level)
            || !(1..=9).contains(&mem_level)
            || !(0..=4).contains(&strategy)
            || (bits == 8 && window_bits != 8)
        {
            return None;
        }
        Some(Params {
            level,
            window_bits,
            mem_level,
            strategy,
        })
    }

    /// The container.
    pub fn wrap(&self) -> Wrap {
        match self.window_bits {
            w if w < 0 => Wrap::Raw,
            w if w > 15 => Wrap::Gzip,
            _ => Wrap::Zlib,
        }
    }

    /// True if the device can do this stream exactly.
    fn device_exact(&self) -> bool {
        matches!(self.window_bits, 15 | 31 | -15)
            && (1..=9).contains(&self.level)
            && self.strategy == Z_DEFAULT_STRATEGY
    }

    fn soft(&self) -> Result<SoftDeflate, c_int> {
        SoftDeflate::new(self.level, self.window_bits, self.mem_level, self.strategy)
    }
}

/// What one `deflate` call did, for the shim to write back.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    pub consumed: usize,
    pub ret: c_int,
}

/// A zlib-compatible deflate stream.
#[derive(Debug)]
pub struct DeflateStream {
    params: Params,
    mode: Mode,
    /// zlib's `last_flush` (-1: output was pending at the end of the last call).
    last_flush: c_int,
    /// Input taken (for `adler` while pending and for the trailer).
    total_in: u64,
}

#[derive(Debug)]
enum Mode {
    /// Input buffered until the routing decision.
    Pending { buf: Vec<u8>, check: u32 },
    /// zlib-rs with the caller's parameters; `replay` is input buffered while pending that
    /// zlib-rs has not taken yet.
    Soft {
        s: SoftDeflate,
        replay: Vec<u8>,
        at: usize,
    },
    /// Device segments (or, after a hand-over, a raw zlib-rs continuation).
    Wd(Box<Offloaded>),
}

/// Which of zlib's flushes a segment ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg {
    /// A full chunk: no flush asked (the device still ends it on a byte boundary).
    Chunk,
    Flush(c_int),
    Finish,
}

#[derive(Debug)]
enum Engine {
    Hw { c: Box<Compressor>, strip: usize },
    Soft(SoftDeflate),
}

#[derive(Debug)]
struct Offloaded {
    wrap: Wrap,
    level: c_int,
    mem_level: c_int,
    strategy: c_int,
    chunk: usize,
    engine: Engine,
    inbuf: Vec<u8>,
    /// Output not yet given to the caller.
    out: Vec<u8>,
    out_at: usize,
    check: u32,
    /// Input since the last sync marker.
    dirty: bool,
    /// Input compressed on the device since the last independent segment began.
    since_indep: usize,
    /// The output so far ends with an empty stored block (`00 00 ff ff`).
    synced: bool,
    ended: bool,
    data_type: c_int,
}

fn rank(f: c_int) -> c_int {
    // zlib's RANK(): Z_BLOCK sits between Z_NO_FLUSH and Z_PARTIAL_FLUSH.
    f * 2 - if f > 4 { 9 } else { 0 }
}

fn initial_check(w: Wrap) -> u32 {
    match w {
        Wrap::Gzip => 0,
        _ => 1,
    }
}

fn update_check(w: Wrap, c: u32, b: &[u8]) -> u32 {
    match w {
        Wrap::Gzip => soft::crc32(c, b),
        Wrap::Zlib => soft::adler32(c, b),
        Wrap::Raw => c,
    }
}

/// zlib's `detect_data_type` on the bytes of a block.
fn data_type_of(b: &[u8]) -> c_int {
    let mut seen = [false; 256];
    for &x in b.iter().take(1 << 16) {
        seen[x as usize] = true;
    }
    let black = (0..=6).chain(14..=25).chain(28..=31);
    if black.into_iter().any(|i| seen[i]) {
        return Z_BINARY;
    }
    if seen[9] || seen[10] || seen[13] || seen[32..].iter().any(|&s| s) {
        return Z_TEXT;
    }
    Z_BINARY
}

/// The zlib header zlib writes for `level` (32 KiB window, no dictionary).
fn zlib_header(level: c_int) -> [u8; 2] {
    let flevel = match level {
        0 | 1 => 0,
        2..=5 => 1,
        6 => 2,
        _ => 3,
    };
    let h: u16 = (0x78 << 8) | (flevel << 6);
    let h = h + 31 - h % 31;
    h.to_be_bytes()
}

/// The gzip header zlib writes without `deflateSetHeader`.
fn gzip_header(level: c_int, strategy: c_int) -> [u8; 10] {
    let xfl = if level == 9 {
        2
    } else if strategy >= 2 || level < 2 {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]
}

/// Device input after which the next device segment starts an independent one (a fresh
/// device window, announced by [`INDEPENDENT_MARK`]): a decoder can decode from there
/// without the earlier output, so segments of one stream decode on several engines at
/// once (`src/inflate.rs`).
pub const INDEPENDENT_EVERY: usize = 4 << 20;

/// What precedes an independent segment: zlib's sync marker (the empty stored block of a
/// sync flush) and a second empty stored block. zlib's deflate writes two in a row only
/// for a flush stronger than the previous one without input between (a sync flush then a
/// full flush), so in zlib's output it is rare; a decoder never trusts it, it checks
/// (`src/inflate.rs`).
pub const INDEPENDENT_MARK: [u8; 9] = [0, 0, 0xff, 0xff, 0, 0, 0, 0xff, 0xff];

/// Size of `n` bytes as stored blocks.
fn stored_len(n: usize) -> usize {
    n + 5 * n.div_ceil(65535).max(1)
}

fn push_stored(out: &mut Vec<u8>, data: &[u8], last: bool) {
    let mut chunks = data.chunks(65535).peekable();
    if data.is_empty() {
        out.extend_from_slice(&[u8::from(last), 0, 0, 0xff, 0xff]);
        return;
    }
    while let Some(c) = chunks.next() {
        let fin = last && chunks.peek().is_none();
        let n = c.len() as u16;
        out.push(u8::from(fin));
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
}

fn reason_counter(r: Option<Reason>) -> Counter {
    match r {
        Some(Reason::NoQueue) => Counter::FallbackNoQueue,
        Some(Reason::Unsupported) | Some(Reason::Level) => Counter::FallbackParams,
        Some(Reason::DeviceError) => Counter::FallbackDeviceError,
        _ => Counter::FallbackNoDevice,
    }
}

fn open_device(level: c_int) -> Result<Compressor, Counter> {
    let lvl = level.clamp(1, hisi_zip::MAX_DEVICE_LEVEL as c_int) as u32;
    match Compressor::with_options(Format::Zlib, lvl, HwOffload::Auto, None) {
        Ok(c) if c.is_offloaded() => Ok(c),
        Ok(c) => Err(reason_counter(c.fallback_reason())),
        Err(_) => Err(Counter::FallbackParams),
    }
}

/// One independent device segment (its own device stream), non-final, without the
/// device's zlib header; `None` if the device cannot do it.
fn device_segment(seg: &[u8], level: c_int) -> Option<Vec<u8>> {
    let mut c = open_device(level).ok()?;
    let mut out = Vec::new();
    out.try_reserve(seg.len() / 2 + 64).ok()?;
    c.compress(seg, &mut out).ok()?;
    c.flush(&mut out).ok()?;
    if out.len() < 2 {
        return None;
    }
    out.drain(..2);
    Some(out)
}

impl Offloaded {
    fn deliver(&mut self, out: &mut OutBuf) {
        let n = out.write(&self.out[self.out_at..]);
        self.out_at += n;
        if self.out_at == self.out.len() {
            self.out.clear();
            self.out_at = 0;
        }
    }

    /// Writes [`INDEPENDENT_MARK`] (the output is at a byte boundary; when `synced` it
    /// already ends with the first empty stored block) and starts counting the input of
    /// the independent segment it announces.
    fn push_mark(&mut self) -> Result<(), c_int> {
        self.out.try_reserve(10).map_err(|_| Z_MEM_ERROR)?;
        if !self.synced {
            push_stored(&mut self.out, &[], false);
        }
        push_stored(&mut self.out, &[], false);
        self.synced = true;
        self.since_indep = 0;
        Ok(())
    }

    /// After a segment whose output began at `before`: whether the output now ends with
    /// an empty stored block of that segment (zlib's sync marker).
    fn note_synced(&mut self, before: usize) {
        self.synced = self.out.len() >= before + 4 && self.out.ends_with(&[0, 0, 0xff, 0xff]);
    }

    fn staged(&self) -> usize {
        self.out.len() - self.out_at
    }

    /// Moves the rest of the stream to a raw zlib-rs continuation (at a byte boundary:
    /// every segment ends on one).
    fn hand_over(&mut self, level: c_int, strategy: c_int) -> Result<(), c_int> {
        let s = SoftDeflate::new(level, -15, self.mem_level, strategy)?;
        self.engine = Engine::Soft(s);
        self.level = level;
        self.strategy = strategy;
        Ok(())
    }

    /// Compresses one segment into `self.out` (which holds only undelivered output).
    fn segment(&mut self, input: &[u8], seg: Seg) -> Result<(), c_int> {
        if self.data_type == Z_UNKNOWN && !input.is_empty() {
            self.data_type = data_type_of(input);
        }
        if self.since_indep >= INDEPENDENT_EVERY
            && !input.is_empty()
            && matches!(self.engine, Engine::Hw { .. })
        {
            // An independent segment: the marker, then a fresh device window.
            self.push_mark()?;
            if let Engine::Hw { c, .. } = &mut self.engine {
                if let Err(e) = c.restart_window(&mut self.out) {
                    wd_core::wd_log!(
                        Warn,
                        "wdz: device failed mid-stream ({e}); continuing in software"
                    );
                    stats::bump(Counter::FallbackDeviceError);
                    self.hand_over(self.level, self.strategy)?;
                }
            }
        }
        let before = self.out.len();
        if let Engine::Hw { c, strip } = &mut self.engine {
            self.out
                .try_reserve(input.len() / 2 + 64)
                .map_err(|_| Z_MEM_ERROR)?;
            let r = c.compress(input, &mut self.out).and_then(|()| match seg {
                Seg::Finish => c.finish(&mut self.out),
                _ => c.flush(&mut self.out),
            });
            match r {
                Ok(()) => {
                    let k = (*strip).min(self.out.len() - before);
                    self.out.drain(before..before + k);
                    *strip -= k;
                    if seg == Seg::Finish {
                        // The device's zlib trailer: ours is written from our checksum
                        // (the same value; the wrapper may be gzip or raw).
                        let t = self.out.len().saturating_sub(4).max(before);
                        self.out.truncate(t);
                    }
                    let produced = self.out.len() - before;
                    stats::add(Counter::DeflateBytesIn, input.len() as u64);
                    stats::add(Counter::DeflateBytesOut, produced as u64);
                    if produced > stored_len(input.len()) {
                        // Incompressible: stored blocks keep us within deflateBound.
                        self.out.truncate(before);
                        push_stored(&mut self.out, input, seg == Seg::Finish);
                    }
                    if matches!(seg, Seg::Flush(Z_SYNC_FLUSH) | Seg::Flush(Z_FULL_FLUSH))
                        && !self.out.ends_with(&[0, 0, 0xff, 0xff])
                    {
                        // zlib's sync marker: an empty stored block after the aligned blocks.
                        push_stored(&mut self.out, &[], false);
                    }
                    self.since_indep += input.len();
                    self.note_synced(before);
                    if seg == Seg::Flush(Z_FULL_FLUSH) {
                        // No reference across a full flush: a fresh device stream.
                        match open_device(self.level) {
                            Ok(c) => {
                                self.engine = Engine::Hw {
                                    c: Box::new(c),
                                    strip: 2,
                                }
                            }
                            Err(why) => {
                                stats::bump(why);
                                self.hand_over(self.level, self.strategy)?;
                            }
                        }
                    }
                    return Ok(());
                }
                Err(e) => {
                    wd_core::wd_log!(
                        Warn,
                        "wdz: device failed mid-stream ({e}); continuing in software"
                    );
                    self.out.truncate(before);
                    stats::bump(Counter::FallbackDeviceError);
                    self.hand_over(self.level, self.strategy)?;
                }
            }
        }
        let Engine::Soft(s) = &mut self.engine else {
            unreachable!("the device branch returned or handed over");
        };
        let flush = match seg {
            Seg::Chunk => Z_NO_FLUSH,
            Seg::Flush(f) => f,
            Seg::Finish => Z_FINISH,
        };
        s.deflate_into(input, &mut self.out, flush)
    }

    /// Compresses `batch` (whole chunks) as independent segments, one device stream and
    /// thread each, appending their outputs in order. A segment the device fails is done
    /// in software (a fresh raw stream, sync-flushed: it refers to nothing before it
    /// either). The stream goes on with a fresh device context: the old one's window does
    /// not match what the decoder saw last.
    fn parallel_batch(&mut self, batch: &[u8]) -> Result<(), c_int> {
        if self.data_type == Z_UNKNOWN {
            self.data_type = data_type_of(batch);
        }
        let level = self.level;
        let results: Vec<Option<Vec<u8>>> = std::thread::scope(|sc| {
            let hs: Vec<_> = batch
                .chunks(self.chunk)
                .map(|seg| sc.spawn(move || device_segment(seg, level)))
                .collect();
            hs.into_iter().map(|h| h.join().ok().flatten()).collect()
        });
        for (seg, r) in batch.chunks(self.chunk).zip(results) {
            // Every segment of a batch is independent: marked once 4 MiB went by.
            if self.since_indep >= INDEPENDENT_EVERY {
                self.push_mark()?;
            }
            let before = self.out.len();
            match r {
                Some(o) => {
                    stats::add(Counter::DeflateBytesIn, seg.len() as u64);
                    stats::add(Counter::DeflateBytesOut, o.len() as u64);
                    if o.len() > stored_len(seg.len()) {
                        push_stored(&mut self.out, seg, false);
                    } else {
                        self.out.try_reserve(o.len()).map_err(|_| Z_MEM_ERROR)?;
                        self.out.extend_from_slice(&o);
                    }
                }
                None => {
                    stats::bump(Counter::FallbackDeviceError);
                    let mut s = SoftDeflate::new(self.level, -15, self.mem_level, self.strategy)?;
                    self.out.truncate(before);
                    s.deflate_into(seg, &mut self.out, Z_SYNC_FLUSH)?;
                }
            }
            self.since_indep += seg.len();
            self.note_synced(before);
        }
        match open_device(self.level) {
            Ok(c) => {
                self.engine = Engine::Hw {
                    c: Box::new(c),
                    strip: 2,
                }
            }
            Err(why) => {
                stats::bump(why);
                self.hand_over(self.level, self.strategy)?;
            }
        }
        Ok(())
    }

    fn trailer(&mut self, total_in: u64) {
        match self.wrap {
            Wrap::Zlib => self.out.extend_from_slice(&self.check.to_be_bytes()),
            Wrap::Gzip => {
                self.out.extend_from_slice(&self.check.to_le_bytes());
                self.out.extend_from_slice(&(total_in as u32).to_le_bytes());
            }
            Wrap::Raw => {}
        }
    }

    fn deflate(
        &mut self,
        input: &[u8],
        out: &mut OutBuf,
        flush: c_int,
        total_in: &mut u64,
    ) -> Result<usize, c_int> {
        let mut consumed = 0;
        self.deliver(out);
        loop {
            if self.staged() > 0 || self.ended {
                break;
            }
            let rest = &input[consumed..];
            if !rest.is_empty() {
                self.dirty = true;
                let par = config::get().parallel;
                if self.inbuf.is_empty()
                    && par > 1
                    && rest.len() >= 2 * self.chunk
                    && matches!(self.engine, Engine::Hw { .. })
                {
                    // Several whole chunks at once: independent segments on as many
                    // engines, in order.
                    let k = (rest.len() / self.chunk).min(par);
                    let batch = &rest[..k * self.chunk];
                    self.parallel_batch(batch)?;
                    self.check = update_check(self.wrap, self.check, batch);
                    consumed += batch.len();
                    *total_in += batch.len() as u64;
                } else if self.inbuf.is_empty() && rest.len() >= self.chunk {
                    // Whole chunks straight from the caller's memory (still there if the
                    // device fails and software redoes it), as many as fit one device
                    // request: a call bringing a large buffer pays the per-segment costs
                    // once per 8 MiB, and nothing of it is buffered here.
                    let most = (hisi_zip::MAX_REQUEST / self.chunk).max(1) * self.chunk;
                    let n = (rest.len() / self.chunk * self.chunk).min(most);
                    let seg = &rest[..n];
                    self.segment(seg, Seg::Chunk)?;
                    self.check = update_check(self.wrap, self.check, seg);
                    consumed += seg.len();
                    *total_in += seg.len() as u64;
                } else {
                    let n = rest.len().min(self.chunk - self.inbuf.len());
                    self.inbuf.extend_from_slice(&rest[..n]);
                    self.check = update_check(self.wrap, self.check, &rest[..n]);
                    consumed += n;
                    *total_in += n as u64;
                    if self.inbuf.len() == self.chunk {
                        let buf = std::mem::take(&mut self.inbuf);
                        let r = self.segment(&buf, Seg::Chunk);
                        self.inbuf = buf;
                        self.inbuf.clear();
                        r?;
                    }
                }
                self.deliver(out);
                continue;
            }
            match flush {
                Z_NO_FLUSH => {}
                Z_FINISH => {
                    let buf = std::mem::take(&mut self.inbuf);
                    let r = self.segment(&buf, Seg::Finish);
                    self.inbuf = buf;
                    self.inbuf.clear();
                    r?;
                    self.trailer(*total_in);
                    self.ended = true;
                    self.deliver(out);
                }
                f if self.dirty || !self.inbuf.is_empty() => {
                    let buf = std::mem::take(&mut self.inbuf);
                    let r = self.segment(&buf, Seg::Flush(f));
                    self.inbuf = buf;
                    self.inbuf.clear();
                    r?;
                    self.dirty = false;
                    self.deliver(out);
                }
                _ => {}
            }
            break;
        }
        Ok(consumed)
    }
}

impl DeflateStream {
    /// A new stream (zlib's `deflateInit2` after parameter checks).
    pub fn new(params: Params) -> Result<DeflateStream, c_int> {
        let mut d = DeflateStream {
            params,
            mode: Mode::Pending {
                buf: Vec::new(),
                check: 0,
            },
            last_flush: -2,
            total_in: 0,
        };
        d.mode = d.initial_mode()?;
        Ok(d)
    }

    fn initial_mode(&self) -> Result<Mode, c_int> {
        let cfg = config::get();
        let why = if cfg.offload == Offload::Off {
            Some(Counter::FallbackNoDevice)
        } else if !self.params.device_exact() {
            Some(Counter::FallbackParams)
        } else {
            None
        };
        match why {
            Some(c) => {
                stats::bump(c);
                Ok(Mode::Soft {
                    s: self.params.soft()?,
                    replay: Vec::new(),
                    at: 0,
                })
            }
            None => Ok(Mode::Pending {
                buf: Vec::new(),
                check: initial_check(self.params.wrap()),
            }),
        }
    }

    /// The container.
    pub fn wrap(&self) -> Wrap {
        self.params.wrap()
    }

    /// True if the device does (or did) this stream's work.
    pub fn is_offloaded(&self) -> bool {
        matches!(&self.mode, Mode::Wd(w) if matches!(w.engine, Engine::Hw { .. }))
    }

    /// Leaves the pending state for software, replaying the buffered input.
    fn pending_to_soft(&mut self, why: Counter) -> Result<(), c_int> {
        if let Mode::Pending { buf, .. } = &mut self.mode {
            let replay = std::mem::take(buf);
            stats::bump(why);
            self.mode = Mode::Soft {
                s: self.params.soft()?,
                replay,
                at: 0,
            };
        }
        Ok(())
    }

    /// Leaves the pending state for the device (or software when it has none).
    fn decide(&mut self) -> Result<(), c_int> {
        let Mode::Pending { buf, check } = &mut self.mode else {
            return Ok(());
        };
        let p = self.params;
        match open_device(p.level) {
            Ok(c) => {
                let chunk = config::get().chunk;
                let mut inbuf = Vec::new();
                inbuf.try_reserve_exact(chunk).map_err(|_| Z_MEM_ERROR)?;
                inbuf.extend_from_slice(buf);
                let mut out = Vec::new();
                out.try_reserve(64 * 1024).map_err(|_| Z_MEM_ERROR)?;
                match p.wrap() {
                    Wrap::Zlib => out.extend_from_slice(&zlib_header(p.level)),
                    Wrap::Gzip => out.extend_from_slice(&gzip_header(p.level, p.strategy)),
                    Wrap::Raw => {}
                }
                stats::bump(Counter::DeflateOffloaded);
                let dirty = !inbuf.is_empty();
                self.mode = Mode::Wd(Box::new(Offloaded {
                    wrap: p.wrap(),
                    level: p.level,
                    mem_level: p.mem_level,
                    strategy: p.strategy,
                    chunk,
                    engine: Engine::Hw {
                        c: Box::new(c),
                        strip: 2,
                    },
                    inbuf,
                    out,
                    out_at: 0,
                    check: *check,
                    dirty,
                    since_indep: 0,
                    synced: false,
                    ended: false,
                    data_type: Z_UNKNOWN,
                }));
                Ok(())
            }
            Err(why) => self.pending_to_soft(why),
        }
    }

    /// zlib's `deflate`.
    pub fn deflate(&mut self, input: &[u8], out: &mut OutBuf, flush: c_int) -> Done {
        if !(0..=Z_BLOCK).contains(&flush) {
            return Done {
                consumed: 0,
                ret: Z_STREAM_ERROR,
            };
        }
        if out.room() == 0 {
            return Done {
                consumed: 0,
                ret: Z_BUF_ERROR,
            };
        }
        if let Mode::Pending { buf, check } = &mut self.mode {
            let min = config::get().min_input;
            if buf.len() + input.len() < min {
                if flush == Z_NO_FLUSH {
                    if input.is_empty() {
                        let ret = if rank(flush) <= rank(self.last_flush) {
                            Z_BUF_ERROR
                        } else {
                            Z_OK
                        };
                        self.last_flush = flush;
                        return Done { consumed: 0, ret };
                    }
                    if buf.try_reserve(input.len()).is_err() {
                        return Done {
                            consumed: 0,
                            ret: Z_MEM_ERROR,
                        };
                    }
                    buf.extend_from_slice(input);
                    *check = update_check(self.params.wrap(), *check, input);
                    self.total_in += input.len() as u64;
                    self.last_flush = flush;
                    return Done {
                        consumed: input.len(),
                        ret: Z_OK,
                    };
                }
                if let Err(e) = self.pending_to_soft(Counter::FallbackSmall) {
                    return Done {
                        consumed: 0,
                        ret: e,
                    };
                }
            } else if let Err(e) = self.decide() {
                return Done {
                    consumed: 0,
                    ret: e,
                };
            }
        }
        let last = self.last_flush;
        match &mut self.mode {
            Mode::Pending { .. } => Done {
                consumed: 0,
                ret: Z_STREAM_ERROR,
            },
            Mode::Soft { s, replay, at } => {
                let mut consumed = 0;
                let ret;
                if *at < replay.len() {
                    let f = if input.is_empty() { flush } else { Z_NO_FLUSH };
                    let st = s.deflate(&replay[*at..], out, f);
                    *at += st.consumed;
                    let mut r = st.ret;
                    if *at == replay.len() {
                        *replay = Vec::new();
                        *at = 0;
                        if !input.is_empty() && out.room() > 0 {
                            let st = s.deflate(input, out, flush);
                            consumed = st.consumed;
                            r = st.ret;
                        }
                    }
                    ret = r;
                } else {
                    let st = s.deflate(input, out, flush);
                    consumed = st.consumed;
                    ret = st.ret;
                }
                self.total_in += consumed as u64;
                Done { consumed, ret }
            }
            Mode::Wd(w) => {
                let start = out.written();
                let had_staged = w.staged() > 0;
                if w.ended && !had_staged {
                    let ret = if flush != Z_FINISH {
                        Z_STREAM_ERROR
                    } else if !input.is_empty() {
                        Z_BUF_ERROR
                    } else {
                        Z_STREAM_END
                    };
                    return Done { consumed: 0, ret };
                }
                if !had_staged && input.is_empty() && flush != Z_FINISH && rank(flush) <= rank(last)
                {
                    return Done {
                        consumed: 0,
                        ret: Z_BUF_ERROR,
                    };
                }
                match w.deflate(input, out, flush, &mut self.total_in) {
                    Err(e) => Done {
                        consumed: 0,
                        ret: e,
                    },
                    Ok(consumed) => {
                        let ret = if w.ended && w.staged() == 0 {
                            Z_STREAM_END
                        } else if consumed == 0 && out.written() == start && !had_staged {
                            Z_BUF_ERROR
                        } else {
                            Z_OK
                        };
                        self.last_flush = if w.staged() > 0 { -1 } else { flush };
                        Done { consumed, ret }
                    }
                }
            }
        }
    }

    /// `strm->adler` now.
    pub fn adler(&self) -> u64 {
        match &self.mode {
            Mode::Pending { check, .. } => u64::from(*check),
            Mode::Soft { s, .. } => s.adler(),
            Mode::Wd(w) => u64::from(if w.wrap == Wrap::Raw { 1 } else { w.check }),
        }
    }

    /// `strm->data_type` now.
    pub fn data_type(&self) -> c_int {
        match &self.mode {
            Mode::Pending { .. } => Z_UNKNOWN,
            Mode::Soft { s, .. } => s.data_type(),
            Mode::Wd(w) => w.data_type,
        }
    }

    /// `strm->msg` from the software engine (our own messages are set by the shim).
    pub fn msg(&self) -> Option<*mut std::ffi::c_char> {
        match &self.mode {
            Mode::Soft { s, .. } => Some(s.msg()),
            _ => None,
        }
    }

    /// `deflateEnd`'s code: Z_DATA_ERROR if the stream was ended early (zlib-rs's own
    /// answer for a software stream).
    pub fn end_code(&mut self) -> c_int {
        match &mut self.mode {
            Mode::Pending { buf, .. } if buf.is_empty() && self.total_in == 0 => Z_OK,
            Mode::Soft { s, .. } => s.end(),
            Mode::Wd(w) if w.ended && w.staged() == 0 => Z_OK,
            _ => Z_DATA_ERROR,
        }
    }

    /// Software for whatever comes next: pending input is replayed, a device stream hands
    /// over after flushing its buffered input as a segment. `why` is counted.
    fn move_to_software(&mut self, why: Counter) -> Result<(), c_int> {
        match &mut self.mode {
            Mode::Pending { .. } => self.pending_to_soft(why),
            Mode::Soft { .. } => Ok(()),
            Mode::Wd(w) => {
                if matches!(w.engine, Engine::Hw { .. }) {
                    stats::bump(why);
                    let buf = std::mem::take(&mut w.inbuf);
                    if !buf.is_empty() {
                        w.segment(&buf, Seg::Flush(Z_BLOCK))?;
                    }
                    let (l, s) = (w.level, w.strategy);
                    w.hand_over(l, s)?;
                }
                Ok(())
            }
        }
    }

    /// `deflateParams`.
    pub fn params(&mut self, level: c_int, strategy: c_int, out: &mut OutBuf) -> c_int {
        let level = if level == -1 { 6 } else { level };
        if !(0..=9).contains(&level) || !(0..=4).contains(&strategy) {
            return Z_STREAM_ERROR;
        }
        let same = level == self.params.level && strategy == self.params.strategy;
        match &mut self.mode {
            Mode::Pending { buf, .. } if buf.is_empty() => {
                self.params.level = level;
                self.params.strategy = strategy;
                match self.initial_mode() {
                    Ok(m) => {
                        self.mode = m;
                        Z_OK
                    }
                    Err(e) => e,
                }
            }
            Mode::Wd(_) if same => Z_OK,
            Mode::Pending { .. } | Mode::Wd(_) => {
                if let Err(e) = self.move_to_software(Counter::FallbackMidStream) {
                    return e;
                }
                self.params.level = level;
                self.params.strategy = strategy;
                match &mut self.mode {
                    Mode::Soft { s, replay, at } => {
                        if *at < replay.len() {
                            // zlib would have taken the input already: let it now.
                            let st = s.deflate(&replay[*at..], out, Z_NO_FLUSH);
                            *at += st.consumed;
                            if *at < replay.len() {
                                return Z_BUF_ERROR;
                            }
                        }
                        s.params(level, strategy, out)
                    }
                    Mode::Wd(w) => match &mut w.engine {
                        Engine::Soft(_) => match w.hand_over(level, strategy) {
                            Ok(()) => Z_OK,
                            Err(e) => e,
                        },
                        Engine::Hw { .. } => Z_STREAM_ERROR,
                    },
                    Mode::Pending { .. } => Z_STREAM_ERROR,
                }
            }
            Mode::Soft { s, .. } => {
                self.params.level = level;
                self.params.strategy = strategy;
                s.params(level, strategy, out)
            }
        }
    }

    /// The software stream for an operation only zlib-rs does (dictionary, header,
    /// priming, tuning), moving the stream there first; `None` for a device stream that
    /// already started (the operation then is Z_STREAM_ERROR, as zlib's is mid-stream for
    /// most of them).
    pub fn soft_for(&mut self, why: Counter, mid_stream_ok: bool) -> Option<&mut SoftDeflate> {
        let move_ok = match &self.mode {
            Mode::Pending { buf, .. } => buf.is_empty() || mid_stream_ok,
            Mode::Soft { .. } => true,
            Mode::Wd(_) => mid_stream_ok,
        };
        if !move_ok || self.move_to_software(why).is_err() {
            return None;
        }
        match &mut self.mode {
            Mode::Soft { s, .. } => Some(s),
            Mode::Wd(w) => match &mut w.engine {
                Engine::Soft(s) => Some(s),
                Engine::Hw { .. } => None,
            },
            Mode::Pending { .. } => None,
        }
    }

    /// `deflatePending`: bytes and bits of output not yet given out.
    pub fn pending(&mut self) -> (c_int, u32, c_int) {
        match &mut self.mode {
            Mode::Pending { .. } => (Z_OK, 0, 0),
            Mode::Soft { s, .. } => s.pending(),
            Mode::Wd(w) => {
                let staged = w.staged() as u32;
                match &mut w.engine {
                    Engine::Soft(s) => {
                        let (r, p, b) = s.pending();
                        (r, p + staged, b)
                    }
                    Engine::Hw { .. } => (Z_OK, staged, 0),
                }
            }
        }
    }

    /// `deflateBound`.
    pub fn bound(&mut self, n: u64) -> u64 {
        let wraplen = match self.params.wrap() {
            Wrap::Raw => 0,
            Wrap::Zlib => 6,
            Wrap::Gzip => 18,
        };
        let zlib = n + (n >> 12) + (n >> 14) + (n >> 25) + 7 + wraplen;
        match &mut self.mode {
            Mode::Soft { s, .. } => s.bound(n),
            // Segments are at most their stored size: 5 bytes per 64 KiB plus a marker, and
            // 10 bytes before each independent segment.
            _ => zlib.max(
                n + 5 * n.div_ceil(65535).max(1)
                    + 5
                    + 10 * (n / INDEPENDENT_EVERY as u64)
                    + wraplen,
            ),
        }
    }

    /// `deflateReset`: a fresh stream with the same parameters.
    pub fn reset(&mut self) -> c_int {
        if let Mode::Soft { s, replay, .. } = &mut self.mode {
            if replay.is_empty() && !self.params.device_exact()
                || config::get().offload == Offload::Off
            {
                *replay = Vec::new();
                self.total_in = 0;
                self.last_flush = -2;
                return s.reset();
            }
        }
        match DeflateStream::new(self.params) {
            Ok(d) => {
                *self = d;
                Z_OK
            }
            Err(e) => e,
        }
    }

    /// `deflateCopy`: a device stream hands over to software first (the copy cannot
    /// share a device context).
    pub fn try_clone(&mut self) -> Result<DeflateStream, c_int> {
        if matches!(&self.mode, Mode::Wd(w) if matches!(w.engine, Engine::Hw { .. })) {
            self.move_to_software(Counter::FallbackMidStream)?;
        }
        let mode = match &self.mode {
            Mode::Pending { buf, check } => {
                let mut b = Vec::new();
                b.try_reserve_exact(buf.len()).map_err(|_| Z_MEM_ERROR)?;
                b.extend_from_slice(buf);
                Mode::Pending {
                    buf: b,
                    check: *check,
                }
            }
            Mode::Soft { s, replay, at } => Mode::Soft {
                s: s.try_clone()?,
                replay: replay.clone(),
                at: *at,
            },
            Mode::Wd(w) => {
                let Engine::Soft(s) = &w.engine else {
                    return Err(Z_STREAM_ERROR);
                };
                Mode::Wd(Box::new(Offloaded {
                    wrap: w.wrap,
                    level: w.level,
                    mem_level: w.mem_level,
                    strategy: w.strategy,
                    chunk: w.chunk,
                    engine: Engine::Soft(s.try_clone()?),
                    inbuf: w.inbuf.clone(),
                    out: w.out[w.out_at..].to_vec(),
                    out_at: 0,
                    check: w.check,
                    dirty: w.dirty,
                    since_indep: w.since_indep,
                    synced: w.synced,
                    ended: w.ended,
                    data_type: w.data_type,
                }))
            }
        };
        Ok(DeflateStream {
            params: self.params,
            mode,
            last_flush: self.last_flush,
            total_in: self.total_in,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libz_rs_sys::Z_PARTIAL_FLUSH;

    #[test]
    fn headers_match_zlib() {
        assert_eq!(zlib_header(6), [0x78, 0x9c]);
        assert_eq!(zlib_header(1), [0x78, 0x01]);
        assert_eq!(zlib_header(9), [0x78, 0xda]);
        assert_eq!(zlib_header(3), [0x78, 0x5e]);
        assert_eq!(gzip_header(6, 0)[8], 0);
        assert_eq!(gzip_header(9, 0)[8], 2);
        assert_eq!(gzip_header(1, 0)[8], 4);
    }

    #[test]
    fn ranks_are_zlibs() {
        let order = [
            Z_NO_FLUSH,
            Z_BLOCK,
            Z_PARTIAL_FLUSH,
            Z_SYNC_FLUSH,
            Z_FULL_FLUSH,
            Z_FINISH,
        ];
        for w in order.windows(2) {
            assert!(rank(w[0]) < rank(w[1]), "{w:?}");
        }
    }

    #[test]
    fn stored_blocks_decode() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut out = Vec::new();
        push_stored(&mut out, &data, true);
        assert_eq!(out.len(), stored_len(data.len()));
        let mut back = vec![0u8; data.len()];
        let cfg = zlib_rs::inflate::InflateConfig { window_bits: -15 };
        let (got, r) = zlib_rs::inflate::decompress_slice(&mut back, &out, cfg);
        assert_eq!(r, zlib_rs::ReturnCode::Ok);
        assert_eq!(got, &data[..]);
    }

    #[test]
    fn data_type_rules() {
        assert_eq!(data_type_of(b"hello\n"), Z_TEXT);
        assert_eq!(data_type_of(&[0, 1, 2]), Z_BINARY);
        assert_eq!(data_type_of(&[7, 8]), Z_BINARY);
    }
}
