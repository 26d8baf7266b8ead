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

#![forbid(unsafe_code)]

use std::ffi::c_int;

use hisi_zip::{BodyInflater, Format};
use libz_rs_sys::{Z_BUF_ERROR, Z_OK, Z_STREAM_END};

use crate::deflate::Wrap;
use crate::outbuf::OutBuf;

/// Output one device call aims at (the device may overshoot by one 8 MiB request).
const DEVICE_STEP: usize = 4 << 20;
/// Input beyond the held bytes given with them in one device call.
const HELD_FEED: usize = 1 << 20;

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

/// A stream whose body runs on the device.
pub struct DeviceInflate {
    wrap: Wrap,
    dev: BodyInflater,
    /// Header bytes still to take (the first call takes them).
    header: usize,
    /// Taken, not yet consumed by the device (an unfinished block).
    held: Vec<u8>,
    /// Decoded, not yet delivered.
    pending: Vec<u8>,
    pending_at: usize,
    /// Every input byte taken since the stream began.
    log: Vec<u8>,
    /// A copy of the caller's input after the last taken byte that the device was given
    /// in its last request (not taken: the caller gives it again): output delivered past
    /// the device's block boundary came from it, so a replay needs it.
    ahead: Vec<u8>,
    log_cap: usize,
    delivered: u64,
    /// zlib's `strm->adler`: the check of the output delivered (0 for raw streams).
    check: u32,
    body_ended: bool,
    /// Trailer bytes taken by us when the device ended without them in its input.
    trailer: Vec<u8>,
    done: bool,
    bytes_in: u64,
    counted_out: u64,
}

impl std::fmt::Debug for DeviceInflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceInflate")
            .field("delivered", &self.delivered)
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
    /// starts the first call's input; Err if no device stream is available.
    pub fn new(
        wrap: Wrap,
        header: usize,
        log_cap: usize,
    ) -> Result<DeviceInflate, hisi_zip::Reason> {
        let dev = BodyInflater::new(format_of(wrap))?;
        Ok(DeviceInflate {
            wrap,
            dev,
            header,
            held: Vec::new(),
            pending: Vec::new(),
            pending_at: 0,
            log: Vec::new(),
            ahead: Vec::new(),
            log_cap,
            delivered: 0,
            check: match wrap {
                Wrap::Zlib => 1,
                _ => 0,
            },
            body_ended: false,
            trailer: Vec::new(),
            done: false,
            bytes_in: 0,
            counted_out: 0,
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
        (log, taken, self.delivered)
    }

    /// zlib's `strm->adler` now.
    pub fn adler(&self) -> u32 {
        self.check
    }

    /// Bytes the device consumed and delivered since the last time (for the counters).
    pub fn take_bytes(&mut self) -> (u64, u64) {
        let r = (self.bytes_in, self.delivered - self.counted_out);
        self.bytes_in = 0;
        self.counted_out = self.delivered;
        r
    }

    fn take(&mut self, b: &[u8]) -> Result<(), HandOver> {
        self.log
            .try_reserve(b.len())
            .map_err(|_| HandOver::LogFull)?;
        self.log.extend_from_slice(b);
        Ok(())
    }

    fn deliver(&mut self, out: &mut OutBuf) -> usize {
        let from = self.pending_at;
        let n = out.write(&self.pending[from..]);
        let b = &self.pending[from..from + n];
        self.check = match self.wrap {
            Wrap::Raw => 0,
            Wrap::Zlib => zlib_rs::adler32::adler32(self.check, b),
            Wrap::Gzip => zlib_rs::crc32::crc32(self.check, b),
        };
        self.delivered += n as u64;
        self.pending_at += n;
        if self.pending_at == self.pending.len() {
            self.pending.clear();
            self.pending_at = 0;
        }
        n
    }

    fn trailer_ok(&self) -> bool {
        match self.wrap {
            Wrap::Raw => true,
            Wrap::Zlib => self.trailer[..] == self.check.to_be_bytes(),
            Wrap::Gzip => {
                let mut t = self.check.to_le_bytes().to_vec();
                t.extend_from_slice(&(self.delivered as u32).to_le_bytes());
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
            if self.pending_at < self.pending.len() {
                call.produced += self.deliver(out);
                if !self.pending.is_empty() {
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
            let held_before = self.held.len();
            let given;
            let step = if held_before == 0 {
                given = rest.len();
                self.dev.inflate(rest, &mut self.pending, DEVICE_STEP)
            } else {
                given = rest.len().min(HELD_FEED);
                self.held
                    .try_reserve(given)
                    .map_err(|_| HandOver::LogFull)?;
                self.held.extend_from_slice(&rest[..given]);
                self.dev.inflate(&self.held, &mut self.pending, DEVICE_STEP)
            };
            let step = step.map_err(|e| {
                wd_core::wd_log!(Debug, "wdz: device inflate stopped ({e}); software replays");
                HandOver::Error
            })?;
            self.bytes_in += step.consumed as u64;
            let input_limited = !step.ended && step.produced < DEVICE_STEP;
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
                if step.trailer_checked {
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
            } else if step.consumed == 0 && step.produced == 0 && taken == 0 {
                return Ok(false);
            }
        }
    }
}
