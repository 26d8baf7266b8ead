//! `std::io` adapters in the manner of flate2's `write::GzEncoder` and `read::GzDecoder`:
//! [`WdEncoder`] compresses what is written to it into an inner writer; [`WdDecoder`]
//! decompresses what it reads from an inner reader.

#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, Read, Write};

use crate::codec::{Compressor, Decompressor, Format, Offload};
use crate::header::GzHeader;

/// Compresses everything written to it into `W`. Call [`WdEncoder::finish`] to write the
/// trailer and get `W` back; dropping it finishes too, ignoring errors.
pub struct WdEncoder<W: Write> {
    inner: Option<W>,
    c: Compressor,
    buf: Vec<u8>,
}

impl<W: Write> fmt::Debug for WdEncoder<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WdEncoder")
            .field("compressor", &self.c)
            .finish()
    }
}

impl<W: Write> WdEncoder<W> {
    /// An encoder of `format` at `level` (0..=9) writing into `w`.
    pub fn new(w: W, format: Format, level: u32) -> io::Result<Self> {
        Ok(WdEncoder {
            inner: Some(w),
            c: Compressor::new(format, level)?,
            buf: Vec::new(),
        })
    }

    /// An encoder with an offload choice and gzip header fields.
    pub fn with_options(
        w: W,
        format: Format,
        level: u32,
        offload: Offload,
        gz: Option<GzHeader>,
    ) -> io::Result<Self> {
        Ok(WdEncoder {
            inner: Some(w),
            c: Compressor::with_options(format, level, offload, gz)?,
            buf: Vec::new(),
        })
    }

    /// The compressor (offload state, counters).
    pub fn compressor(&self) -> &Compressor {
        &self.c
    }

    /// The inner writer.
    pub fn get_ref(&self) -> Option<&W> {
        self.inner.as_ref()
    }

    fn dump(&mut self) -> io::Result<()> {
        if let Some(w) = self.inner.as_mut() {
            w.write_all(&self.buf)?;
        }
        self.buf.clear();
        Ok(())
    }

    /// Writes the rest and the trailer without giving up the writer.
    pub fn try_finish(&mut self) -> io::Result<()> {
        if self.inner.is_none() {
            return Ok(());
        }
        self.c.finish(&mut self.buf)?;
        self.dump()?;
        if let Some(w) = self.inner.as_mut() {
            w.flush()?;
        }
        Ok(())
    }

    /// Finishes the stream and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.try_finish()?;
        self.inner
            .take()
            .ok_or_else(|| io::Error::other("encoder already finished"))
    }
}

impl<W: Write> Write for WdEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.c.compress(data, &mut self.buf)?;
        self.dump()?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.c.flush(&mut self.buf)?;
        self.dump()?;
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for WdEncoder<W> {
    fn drop(&mut self) {
        if self.inner.is_some() && !std::thread::panicking() {
            let _ = self.try_finish();
        }
    }
}

/// Bytes read from the inner reader at a time.
const READ_CHUNK: usize = 1 << 20;

/// Decompresses what it reads from `R`. Reading to the end checks the whole stream: a
/// corrupt, truncated or trailing-garbage input is an error, never a short success.
pub struct WdDecoder<R: Read> {
    inner: R,
    d: Decompressor,
    chunk: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> fmt::Debug for WdDecoder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WdDecoder")
            .field("decompressor", &self.d)
            .finish()
    }
}

impl<R: Read> WdDecoder<R> {
    /// A decoder of `format` reading from `r`.
    pub fn new(r: R, format: Format) -> io::Result<Self> {
        Self::with_offload(r, format, Offload::Auto)
    }

    /// A decoder with an offload choice.
    pub fn with_offload(r: R, format: Format, offload: Offload) -> io::Result<Self> {
        Ok(WdDecoder {
            inner: r,
            d: Decompressor::with_offload(format, offload)?,
            chunk: vec![0; READ_CHUNK],
            out: Vec::new(),
            pos: 0,
            eof: false,
            done: false,
        })
    }

    /// The decompressor (offload state, gzip header).
    pub fn decompressor(&self) -> &Decompressor {
        &self.d
    }

    /// The decompressor, to set options such as
    /// [`Decompressor::ignore_trailing_garbage`] before reading.
    pub fn decompressor_mut(&mut self) -> &mut Decompressor {
        &mut self.d
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Gives back the inner reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for WdDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.pos);
                buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            self.out.clear();
            self.pos = 0;
            // Output comes in pieces of about OUT_BUDGET: what the last call left is taken
            // before more input is read, so memory stays bounded whatever the ratio.
            if self.d.output_pending() {
                if self.eof {
                    self.d.finish(&mut self.out)?;
                    self.done = !self.d.output_pending();
                } else {
                    self.d.decompress(&[], &mut self.out)?;
                }
                continue;
            }
            let n = match self.inner.read(&mut self.chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
                self.d.finish(&mut self.out)?;
                self.done = !self.d.output_pending();
            } else {
                self.d.decompress(&self.chunk[..n], &mut self.out)?;
            }
        }
    }
}
