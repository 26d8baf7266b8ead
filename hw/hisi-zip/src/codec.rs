//! The format layer: [`Compressor`] and [`Decompressor`] write and parse zlib/gzip
//! headers, check trailers, walk multi-member gzip files, and drive either the device
//! ([`crate::hw`]) or software ([`crate::soft`]) for the deflate payload. One-shot
//! helpers [`compress`] and [`decompress`] redo the work in software if the device fails.

#![forbid(unsafe_code)]

use std::fmt;
use std::io;

use crate::driver::MAX_REQUEST;
use crate::header::{self, GzHeader};
use crate::hw::{Dir, HwStream};
use crate::soft::{SoftDeflate, SoftInflate};
use crate::sqe::req;
use crate::stats::{self, Reason};

/// Highest level the device does; above it the software's better effort is used.
pub const MAX_DEVICE_LEVEL: u32 = 6;
/// The default level (as zlib's).
pub const DEFAULT_LEVEL: u32 = 6;

/// The container around the deflate payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Raw deflate (RFC 1951); on the device only with api ≥ v3.
    Deflate,
    /// zlib (RFC 1950): 2-byte header, Adler-32 trailer.
    Zlib,
    /// gzip (RFC 1952): header, CRC32 and ISIZE trailer; several members on input.
    Gzip,
}

impl Format {
    pub(crate) fn req(self) -> u8 {
        match self {
            Format::Deflate => req::DEFLATE,
            Format::Zlib => req::ZLIB,
            Format::Gzip => req::GZIP,
        }
    }

    /// Bytes of the trailer after the deflate body (0 for raw deflate).
    pub fn trailer_len(self) -> usize {
        match self {
            Format::Deflate => 0,
            Format::Zlib => header::ZLIB_TRAILER,
            Format::Gzip => header::GZIP_TRAILER,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Deflate => "deflate",
            Format::Zlib => "zlib",
            Format::Gzip => "gzip",
        })
    }
}

/// Whether a stream may use the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Offload {
    /// The device when there is one (per `WD_DEVICES`), software otherwise.
    #[default]
    Auto,
    /// Software only.
    Never,
}

/// How much of the input to flush into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    None,
    Sync,
    /// A sync flush after which nothing refers to earlier input.
    Full,
    Finish,
}

/// What one inflate step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InflateStep {
    pub consumed: usize,
    pub produced: usize,
    pub ended: bool,
    /// The engine checked the trailer itself (and consumed it).
    pub trailer_checked: bool,
    /// How far into the input the device was given bytes (the end of its last request):
    /// output past `consumed` (a block begun) came from bytes before this.
    pub read: usize,
}

pub(crate) fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Room for `n` more bytes in `v`, or an [`io::ErrorKind::OutOfMemory`] error (never an
/// abort): every buffer whose size depends on the input grows through this.
pub(crate) fn try_grow(v: &mut Vec<u8>, n: usize) -> io::Result<()> {
    v.try_reserve(n).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "out of memory (growing a {} byte buffer by {n} bytes)",
                v.len()
            ),
        )
    })
}

/// Output one [`Decompressor`] call produces at most before it stops taking input (it
/// may overshoot by one engine step: one device request, at most 8 MiB, or one software
/// step of at most this much). Whatever the expansion ratio of the input, a caller that
/// drains the output between calls holds at most about twice this plus its input chunk.
pub const OUT_BUDGET: usize = 4 << 20;

fn check_level(level: u32) -> io::Result<()> {
    if level > 9 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("compression level {level} is not 0..=9"),
        ));
    }
    Ok(())
}

/// Where a stream's deflate work is done: in software or on a device queue.
enum Route<S, H> {
    Soft(S),
    Hw(H),
}

fn open_hw(dir: Dir, format: Format) -> Result<HwStream, Reason> {
    let pools = crate::pool::pools()?;
    HwStream::new(pools, dir, format.req()).map_err(|e| match e {
        wd_core::Error::Unsupported(_) => Reason::Unsupported,
        wd_core::Error::NoDevice(_) => Reason::NoDevice,
        _ => Reason::NoQueue,
    })
}

/// A streaming compressor: feed input, take output; the header comes first, the
/// trailer at [`Compressor::finish`].
pub struct Compressor {
    format: Format,
    level: u32,
    route: Route<SoftDeflate, HwStream>,
    header: Option<Vec<u8>>,
    pending: Vec<u8>,
    finished: bool,
    reason: Option<Reason>,
    total_in: u64,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("format", &self.format)
            .field("level", &self.level)
            .field("offloaded", &self.is_offloaded())
            .field("total_in", &self.total_in)
            .finish()
    }
}

impl Compressor {
    /// A compressor for `format` at `level` (0..=9), on the device when possible.
    pub fn new(format: Format, level: u32) -> io::Result<Compressor> {
        Compressor::with_options(format, level, Offload::Auto, None)
    }

    /// A compressor with an offload choice and, for gzip, the header's optional fields.
    pub fn with_options(
        format: Format,
        level: u32,
        offload: Offload,
        gz: Option<GzHeader>,
    ) -> io::Result<Compressor> {
        check_level(level)?;
        let hw = match offload {
            Offload::Never => Err(Reason::Disabled),
            Offload::Auto if level == 0 => Err(Reason::Unsupported),
            Offload::Auto if level > MAX_DEVICE_LEVEL => Err(Reason::Level),
            Offload::Auto => open_hw(Dir::Compress, format),
        };
        let (route, reason) = match hw {
            Ok(h) => {
                stats::offloaded();
                (Route::Hw(h), None)
            }
            Err(r) => {
                stats::fallback(r);
                (Route::Soft(SoftDeflate::new(format.req(), level)), Some(r))
            }
        };
        let header = match format {
            Format::Deflate => Vec::new(),
            Format::Zlib => header::ZLIB_HEADER.to_vec(),
            Format::Gzip => match gz {
                Some(h) => h.to_bytes(),
                None => header::GZIP_HEADER.to_vec(),
            },
        };
        Ok(Compressor {
            format,
            level,
            route,
            header: Some(header),
            pending: Vec::new(),
            finished: false,
            reason,
            total_in: 0,
        })
    }

    /// True if the device does the work.
    pub fn is_offloaded(&self) -> bool {
        matches!(self.route, Route::Hw(_))
    }

    /// Why the work is done in software, if it is.
    pub fn fallback_reason(&self) -> Option<Reason> {
        self.reason
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Input bytes taken so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    fn check_open(&self) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other("compressor already finished"));
        }
        Ok(())
    }

    fn emit_header(&mut self, out: &mut Vec<u8>) {
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
    }

    /// Compresses `input`, appending whatever output is ready to `out`. The device path
    /// gathers input into 8 MiB requests; software output comes as zlib produces it.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.check_open()?;
        self.emit_header(out);
        self.total_in += input.len() as u64;
        match &mut self.route {
            Route::Soft(s) => s.deflate(input, Flush::None, out),
            Route::Hw(h) => {
                if self.pending.is_empty() && input.len() >= MAX_REQUEST {
                    let n = input.len() / MAX_REQUEST * MAX_REQUEST;
                    h.deflate(&input[..n], false, out)?;
                    self.pending.extend_from_slice(&input[n..]);
                    return Ok(());
                }
                self.pending.extend_from_slice(input);
                if self.pending.len() >= MAX_REQUEST {
                    let n = self.pending.len() / MAX_REQUEST * MAX_REQUEST;
                    h.deflate(&self.pending[..n], false, out)?;
                    self.pending.drain(..n);
                }
                Ok(())
            }
        }
    }

    /// Flushes everything given so far to a byte boundary (a sync flush): the output so
    /// far decompresses to all the input so far.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.flush_with(out, false)
    }

    /// Ends an independent segment: flushes everything given so far (as
    /// [`Compressor::flush`]), and what follows refers to nothing before this point (the
    /// device starts a new stream context: its window is empty; software does zlib's full
    /// flush). The stream goes on: no new header, and the trailer still covers all input.
    /// A decoder may then start decoding at this byte boundary without the earlier output.
    pub fn restart_window(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.flush_with(out, true)
    }

    fn flush_with(&mut self, out: &mut Vec<u8>, restart: bool) -> io::Result<()> {
        self.check_open()?;
        self.emit_header(out);
        match &mut self.route {
            Route::Soft(s) => s.deflate(&[], if restart { Flush::Full } else { Flush::Sync }, out),
            Route::Hw(h) => {
                if !self.pending.is_empty() {
                    h.deflate(&self.pending, false, out)?;
                    self.pending.clear();
                }
                if restart {
                    h.restart();
                }
                Ok(())
            }
        }
    }

    /// Ends the stream: the rest of the output and the trailer.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.check_open()?;
        self.emit_header(out);
        match &mut self.route {
            Route::Soft(s) => {
                s.deflate(&[], Flush::Finish, out)?;
                match self.format {
                    Format::Zlib => out.extend_from_slice(&header::zlib_trailer(s.checksum)),
                    Format::Gzip => {
                        out.extend_from_slice(&header::gzip_trailer(s.checksum, s.isize))
                    }
                    Format::Deflate => {}
                }
            }
            Route::Hw(h) => {
                h.deflate(&self.pending, true, out)?;
                self.pending.clear();
            }
        }
        self.finished = true;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DState {
    Header,
    Body,
    Trailer,
    MemberEnd,
    /// Zero bytes after the last gzip member (tape and block-device padding).
    Padding,
    /// Trailing garbage being ignored (see [`Decompressor::ignore_trailing_garbage`]).
    Garbage,
}

/// A streaming decompressor: feed compressed input, take output.
///
/// Output is bounded: one call produces about [`OUT_BUDGET`] bytes at most and keeps the
/// rest of its input; while [`Decompressor::output_pending`] is true, call
/// [`Decompressor::decompress`] with empty input (or [`Decompressor::finish`] again) to
/// get more. Buffers that grow with the input are allocated fallibly: running out of
/// memory is an [`io::ErrorKind::OutOfMemory`] error.
///
/// gzip input may hold several members. What follows the last member follows gzip(1)'s
/// rules: zero bytes (padding) are accepted and ignored ([`Decompressor::trailing_zeros`]);
/// other bytes are an error (as Python's `gzip` module does; a checking library should
/// not call a file with unknown content good) unless
/// [`Decompressor::ignore_trailing_garbage`] asks for gzip(1)'s "decompression OK,
/// trailing garbage ignored" ([`Decompressor::trailing_garbage`] then counts them).
/// zlib and raw deflate streams take nothing after their end.
pub struct Decompressor {
    format: Format,
    route: Route<SoftInflate, HwStream>,
    inbuf: Vec<u8>,
    start: usize,
    state: DState,
    members: u64,
    reason: Option<Reason>,
    header: Option<GzHeader>,
    more: bool,
    ignore_garbage: bool,
    zeros: u64,
    garbage: u64,
}

impl fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressor")
            .field("format", &self.format)
            .field("offloaded", &matches!(self.route, Route::Hw(_)))
            .field("state", &self.state)
            .finish()
    }
}

impl Decompressor {
    /// A decompressor for `format`, on the device when possible.
    pub fn new(format: Format) -> io::Result<Decompressor> {
        Decompressor::with_offload(format, Offload::Auto)
    }

    /// A decompressor with an offload choice.
    pub fn with_offload(format: Format, offload: Offload) -> io::Result<Decompressor> {
        let hw = match offload {
            Offload::Never => Err(Reason::Disabled),
            Offload::Auto => open_hw(Dir::Decompress, format),
        };
        let (route, reason) = match hw {
            Ok(h) => {
                stats::offloaded();
                (Route::Hw(h), None)
            }
            Err(r) => {
                stats::fallback(r);
                (Route::Soft(SoftInflate::new(format.req())), Some(r))
            }
        };
        Ok(Decompressor {
            format,
            route,
            inbuf: Vec::new(),
            start: 0,
            state: if format == Format::Deflate {
                DState::Body
            } else {
                DState::Header
            },
            members: 0,
            reason,
            header: None,
            more: false,
            ignore_garbage: false,
            zeros: 0,
            garbage: 0,
        })
    }

    /// True if the device does the work.
    pub fn is_offloaded(&self) -> bool {
        matches!(self.route, Route::Hw(_))
    }

    /// Why the work is done in software, if it is.
    pub fn fallback_reason(&self) -> Option<Reason> {
        self.reason
    }

    /// gzip: bytes after the last member that are neither a member nor zero padding are
    /// ignored (counted by [`Decompressor::trailing_garbage`]) instead of an error, as
    /// gzip(1) does.
    pub fn ignore_trailing_garbage(&mut self, yes: bool) {
        self.ignore_garbage = yes;
    }

    /// gzip: zero bytes seen after the last member (ignored).
    pub fn trailing_zeros(&self) -> u64 {
        self.zeros
    }

    /// gzip: bytes of trailing garbage ignored (with [`Decompressor::ignore_trailing_garbage`]).
    pub fn trailing_garbage(&self) -> u64 {
        self.garbage
    }

    /// True when the last call stopped at the output budget with input left: call
    /// [`Decompressor::decompress`] with empty input (or [`Decompressor::finish`] again,
    /// after the end of the input) for more output.
    pub fn output_pending(&self) -> bool {
        self.more
    }

    /// The header of the (last) gzip member read.
    pub fn gzip_header(&self) -> Option<&GzHeader> {
        self.header.as_ref()
    }

    /// Complete members (streams) decoded so far.
    pub fn members(&self) -> u64 {
        self.members
    }

    /// True when the input so far ends exactly after a complete stream (or member, or
    /// the zero padding or ignored garbage after the last member).
    pub fn is_complete(&self) -> bool {
        matches!(
            self.state,
            DState::MemberEnd | DState::Padding | DState::Garbage
        ) && self.start == self.inbuf.len()
            && !self.more
    }

    /// Decompresses `input`, appending output to `out` (about [`OUT_BUDGET`] bytes at
    /// most; see [`Decompressor::output_pending`]).
    pub fn decompress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if !input.is_empty() {
            if self.start > 0 {
                self.inbuf.drain(..self.start);
                self.start = 0;
            }
            try_grow(&mut self.inbuf, input.len())?;
            self.inbuf.extend_from_slice(input);
        }
        self.run(out, false)
    }

    /// Declares the end of the input: fails if the stream is incomplete. Bounded like
    /// [`Decompressor::decompress`]: while [`Decompressor::output_pending`], call it again.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.run(out, true)?;
        if self.more {
            return Ok(());
        }
        match self.state {
            DState::MemberEnd | DState::Padding | DState::Garbage => Ok(()),
            DState::Header if self.members > 0 && self.start == self.inbuf.len() => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("truncated {} stream: input ended inside it", self.format),
            )),
        }
    }

    fn avail(&self) -> &[u8] {
        &self.inbuf[self.start..]
    }

    fn checksum(&self) -> (u32, u32) {
        match &self.route {
            Route::Soft(s) => (s.checksum, s.isize),
            Route::Hw(h) => (h.checksum, h.isize),
        }
    }

    /// gzip: `n` bytes after the last member are garbage.
    fn trailing(&mut self) -> io::Result<()> {
        let n = self.avail().len();
        if self.ignore_garbage {
            self.garbage += n as u64;
            self.start += n;
            self.state = DState::Garbage;
            return Ok(());
        }
        Err(invalid(format!(
            "trailing garbage after the {} stream ({n} bytes)",
            self.format
        )))
    }

    fn run(&mut self, out: &mut Vec<u8>, eof: bool) -> io::Result<()> {
        self.more = false;
        let base = out.len();
        loop {
            let produced = out.len() - base;
            if produced >= OUT_BUDGET {
                self.more = true;
                return Ok(());
            }
            match self.state {
                DState::Header => {
                    if self.avail().is_empty() && (self.members > 0 || !eof) {
                        return Ok(());
                    }
                    let n = match self.format {
                        Format::Gzip => header::parse_gzip(self.avail())
                            .map_err(|e| invalid(e.0))?
                            .map(|(n, h)| {
                                self.header = Some(h);
                                n
                            }),
                        Format::Zlib => {
                            header::parse_zlib(self.avail()).map_err(|e| invalid(e.0))?
                        }
                        Format::Deflate => Some(0),
                    };
                    match n {
                        Some(n) => {
                            self.start += n;
                            self.state = DState::Body;
                            match &mut self.route {
                                Route::Soft(s) => s.reset(),
                                Route::Hw(h) => h.reset(),
                            }
                        }
                        None if eof => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("truncated {} header", self.format),
                            ))
                        }
                        None => return Ok(()),
                    }
                }
                DState::Body => {
                    let step = {
                        let input = &self.inbuf[self.start..];
                        let limit = OUT_BUDGET - produced;
                        match &mut self.route {
                            Route::Soft(s) => s.inflate(input, out, limit)?,
                            Route::Hw(h) => h.inflate(input, out, limit)?,
                        }
                    };
                    self.start += step.consumed;
                    if step.ended {
                        self.state = if step.trailer_checked || self.format == Format::Deflate {
                            self.start += if step.trailer_checked {
                                0
                            } else {
                                self.format.trailer_len()
                            };
                            self.members += 1;
                            DState::MemberEnd
                        } else {
                            DState::Trailer
                        };
                    } else if step.consumed == 0 && step.produced == 0 {
                        return Ok(());
                    }
                }
                DState::Trailer => {
                    let t = self.format.trailer_len();
                    if self.avail().len() < t {
                        return Ok(());
                    }
                    let (sum, isize) = self.checksum();
                    let want: Vec<u8> = match self.format {
                        Format::Zlib => header::zlib_trailer(sum).to_vec(),
                        _ => header::gzip_trailer(sum, isize).to_vec(),
                    };
                    if self.avail()[..t] != want[..] {
                        return Err(invalid(format!(
                            "{} trailer mismatch: the data is corrupt (checksum or length differ)",
                            self.format
                        )));
                    }
                    self.start += t;
                    self.members += 1;
                    self.state = DState::MemberEnd;
                }
                DState::MemberEnd => {
                    // gzip(1)'s rules for what follows a member: its magic starts another
                    // member; zeros to the end are padding; anything else is garbage.
                    let a = self.avail();
                    if a.is_empty() {
                        return Ok(());
                    }
                    if self.format != Format::Gzip {
                        return Err(invalid(format!(
                            "trailing garbage after the {} stream ({} bytes)",
                            self.format,
                            a.len()
                        )));
                    }
                    match a {
                        [0x1f] if !eof => return Ok(()),
                        // A lone 0x1f at the end: a truncated member (gzip says so too).
                        [0x1f] => self.state = DState::Header,
                        [0x1f, 0x8b, ..] => self.state = DState::Header,
                        [0, ..] => self.state = DState::Padding,
                        _ => self.trailing()?,
                    }
                }
                DState::Padding => {
                    let a = self.avail();
                    let z = a.iter().position(|&b| b != 0).unwrap_or(a.len());
                    self.zeros += z as u64;
                    self.start += z;
                    if self.avail().is_empty() {
                        return Ok(());
                    }
                    // Zeros, then something else: all of it is garbage to gzip, even a
                    // member's magic.
                    self.trailing()?;
                }
                DState::Garbage => {
                    self.garbage += self.avail().len() as u64;
                    self.start = self.inbuf.len();
                    return Ok(());
                }
            }
        }
    }
}

/// Compresses `data` into a complete `format` stream at `level`, on the device when
/// possible; if the device fails, the whole job is redone in software.
pub fn compress(format: Format, level: u32, data: &[u8]) -> io::Result<Vec<u8>> {
    compress_with(format, level, data, Offload::Auto)
}

/// [`compress`] with an offload choice.
pub fn compress_with(
    format: Format,
    level: u32,
    data: &[u8],
    offload: Offload,
) -> io::Result<Vec<u8>> {
    let mut c = Compressor::with_options(format, level, offload, None)?;
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let r = c.compress(data, &mut out).and_then(|()| c.finish(&mut out));
    match r {
        Ok(()) => Ok(out),
        Err(e) if c.is_offloaded() => {
            wd_core::wd_log!(
                Warn,
                "hisi_zip: device failed ({e}); compressing in software"
            );
            stats::fallback(Reason::DeviceError);
            compress_with(format, level, data, Offload::Never)
        }
        Err(e) => Err(e),
    }
}

/// Decompresses a complete `format` input (gzip: one or more members), on the device
/// when possible; a device failure is redone in software. Corrupt, truncated or trailing
/// input is an error and no output is returned.
pub fn decompress(format: Format, data: &[u8]) -> io::Result<Vec<u8>> {
    decompress_with(format, data, Offload::Auto)
}

/// [`decompress`] with an offload choice.
pub fn decompress_with(format: Format, data: &[u8], offload: Offload) -> io::Result<Vec<u8>> {
    let mut d = Decompressor::with_offload(format, offload)?;
    let mut out = Vec::new();
    // A hint only: the output grows fallibly as it comes.
    let _ = out.try_reserve(data.len().saturating_mul(3).min(64 << 20));
    let r = (|| -> io::Result<()> {
        d.decompress(data, &mut out)?;
        while d.output_pending() {
            d.decompress(&[], &mut out)?;
        }
        d.finish(&mut out)?;
        while d.output_pending() {
            d.finish(&mut out)?;
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(out),
        Err(e)
            if d.is_offloaded()
                && !matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::OutOfMemory
                ) =>
        {
            // The device may have failed rather than the data: software decides.
            wd_core::wd_log!(
                Debug,
                "hisi_zip: device path failed ({e}); software retries"
            );
            stats::fallback(Reason::DeviceError);
            decompress_with(format, data, Offload::Never)
        }
        Err(e) => Err(e),
    }
}

/// What one [`BodyInflater::inflate`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyStep {
    /// Input bytes the device consumed (at a deflate block boundary unless `ended`).
    pub consumed: usize,
    /// Output bytes appended.
    pub produced: usize,
    /// The deflate data ended (the final block is complete).
    pub ended: bool,
    /// With `ended`: the device also checked and consumed the trailer (always for raw
    /// deflate, which has none); otherwise the trailer follows `consumed` and is the
    /// caller's to check against [`BodyInflater::checksum`].
    pub trailer_checked: bool,
    /// How far into `input` the device was given bytes: output beyond what `consumed`
    /// accounts for (a block begun, delivered, and decoded again by the next request)
    /// came from input before this offset.
    pub read: usize,
}

/// The body of one stream on the device: the deflate data and, for zlib and gzip, the
/// trailer, for callers that parse headers themselves and need the exact end of the
/// stream (libwdz's `inflate`). Input the device did not consume (it stops at block
/// boundaries) must be given again, followed by more.
pub struct BodyInflater {
    hw: HwStream,
}

impl fmt::Debug for BodyInflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyInflater").finish_non_exhaustive()
    }
}

impl BodyInflater {
    /// A device stream for the body of a `format` stream, or why there is none.
    pub fn new(format: Format) -> Result<BodyInflater, Reason> {
        let hw = open_hw(Dir::Decompress, format)?;
        stats::offloaded();
        Ok(BodyInflater { hw })
    }

    /// Decompresses from `input`, appending to `out`, until the input is used as far as
    /// the device can go, the data ends, or about `limit` bytes are out (overshooting by
    /// one request's output, 8 MiB at most). Corrupt data, a failed trailer check and a
    /// device failure are errors (the device cannot tell them apart).
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> io::Result<BodyStep> {
        let s = self.hw.inflate(input, out, limit)?;
        Ok(BodyStep {
            consumed: s.consumed,
            produced: s.produced,
            ended: s.ended,
            trailer_checked: s.trailer_checked,
            read: s.read,
        })
    }

    /// The device's running check of the output (Adler-32 for zlib, CRC-32 for gzip) and
    /// its length modulo 2^32.
    pub fn checksum(&self) -> (u32, u32) {
        (self.hw.checksum, self.hw.isize)
    }
}
