//! The software engine: raw deflate and inflate through zlib-rs, with the checksums the
//! hardware would keep. Same formats as the device path: headers and trailers are written
//! and checked by the format layer ([`crate::codec`]).

#![forbid(unsafe_code)]

use std::fmt;
use std::io;

use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status};

use crate::codec::{invalid, try_grow, Flush, InflateStep};
use crate::sqe::req;

/// Running checksum of `req` over `data`.
pub(crate) fn update_checksum(req: u8, running: u32, data: &[u8]) -> u32 {
    match req {
        req::ZLIB => zlib_rs::adler32::adler32(running, data),
        req::GZIP => zlib_rs::crc32::crc32(running, data),
        _ => running,
    }
}

/// Initial checksum of `req` (Adler-32 starts at 1, CRC32 at 0).
pub(crate) fn initial_checksum(req: u8) -> u32 {
    if req == req::ZLIB {
        1
    } else {
        0
    }
}

/// Software raw deflate with running checksum and size.
pub(crate) struct SoftDeflate {
    d: Deflate,
    req: u8,
    pub checksum: u32,
    pub isize: u32,
}

impl fmt::Debug for SoftDeflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftDeflate")
            .field("req", &self.req)
            .finish()
    }
}

impl SoftDeflate {
    pub fn new(req: u8, level: u32) -> SoftDeflate {
        SoftDeflate {
            d: Deflate::new(level.min(9) as i32, false, 15),
            req,
            checksum: initial_checksum(req),
            isize: 0,
        }
    }

    /// Compresses all of `input` into `out` (raw deflate, no trailer).
    pub fn deflate(&mut self, input: &[u8], flush: Flush, out: &mut Vec<u8>) -> io::Result<()> {
        self.checksum = update_checksum(self.req, self.checksum, input);
        self.isize = self.isize.wrapping_add(input.len() as u32);
        let zf = match flush {
            Flush::None => DeflateFlush::NoFlush,
            Flush::Sync => DeflateFlush::SyncFlush,
            Flush::Full => DeflateFlush::FullFlush,
            Flush::Finish => DeflateFlush::Finish,
        };
        let mut pos = 0;
        loop {
            let room = zlib_rs::compress_bound(input.len() - pos).max(64 << 10);
            let base = out.len();
            out.resize(base + room, 0);
            let before_in = self.d.total_in();
            let before_out = self.d.total_out();
            let r = self.d.compress(&input[pos..], &mut out[base..], zf);
            let wrote = (self.d.total_out() - before_out) as usize;
            out.truncate(base + wrote);
            pos += (self.d.total_in() - before_in) as usize;
            let r = r.map_err(|e| io::Error::other(format!("deflate: {}", e.as_str())))?;
            let done = match zf {
                DeflateFlush::Finish => r == Status::StreamEnd,
                _ => pos == input.len() && wrote < room,
            };
            if done {
                return Ok(());
            }
        }
    }
}

/// Software raw inflate with running checksum and size.
pub(crate) struct SoftInflate {
    i: Inflate,
    req: u8,
    pub checksum: u32,
    pub isize: u32,
}

impl fmt::Debug for SoftInflate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftInflate")
            .field("req", &self.req)
            .finish()
    }
}

impl SoftInflate {
    pub fn new(req: u8) -> SoftInflate {
        SoftInflate {
            i: Inflate::new(false, 15),
            req,
            checksum: initial_checksum(req),
            isize: 0,
        }
    }

    /// Starts a new member.
    pub fn reset(&mut self) {
        self.i.reset(false);
        self.checksum = initial_checksum(self.req);
        self.isize = 0;
    }

    /// Decodes as much of `input` as the stream takes, appending output to `out`; stops
    /// once `limit` bytes are out (overshooting by at most `limit`, and 64 KiB at least).
    /// Input it stops before is left for the next call; zlib-rs keeps its own state.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> io::Result<InflateStep> {
        let mut pos = 0;
        let start_out = out.len();
        let mut step = InflateStep::default();
        let max_room = limit.clamp(64 << 10, 16 << 20);
        loop {
            if out.len() - start_out >= limit {
                break;
            }
            let room = ((input.len() - pos) * 4).clamp(64 << 10, max_room);
            let base = out.len();
            try_grow(out, room)?;
            out.resize(base + room, 0);
            let before_in = self.i.total_in();
            let before_out = self.i.total_out();
            let r = self
                .i
                .decompress(&input[pos..], &mut out[base..], InflateFlush::NoFlush);
            let wrote = (self.i.total_out() - before_out) as usize;
            let read = (self.i.total_in() - before_in) as usize;
            out.truncate(base + wrote);
            pos += read;
            match r {
                Ok(Status::StreamEnd) => {
                    step.ended = true;
                    break;
                }
                Ok(_) => {
                    if (read == 0 && wrote == 0) || (pos == input.len() && wrote < room) {
                        break;
                    }
                }
                Err(e) => {
                    let why = self.i.error_message().unwrap_or(e.as_str());
                    return Err(invalid(format!("corrupt deflate data: {why}")));
                }
            }
        }
        self.checksum = update_checksum(self.req, self.checksum, &out[start_out..]);
        self.isize = self.isize.wrapping_add((out.len() - start_out) as u32);
        step.consumed = pos;
        step.produced = out.len() - start_out;
        Ok(step)
    }
}
