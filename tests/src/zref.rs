//! The software reference for the compression tests: zlib-rs (the zlib algorithm and
//! stream format, independent of hisi-zip's own software path), one-shot and with a
//! caller's chunk and flush pattern.

use hisi_zip::Format;
use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status};

fn bits(format: Format) -> (bool, u8) {
    match format {
        Format::Deflate => (false, 15),
        Format::Zlib => (true, 15),
        // zlib's windowBits 16 + 15: gzip.
        Format::Gzip => (true, 31),
    }
}

/// A step of a compression pattern: feed this many bytes, then optionally flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// No flush after the chunk.
    None,
    /// `Z_SYNC_FLUSH`.
    Sync,
    /// `Z_FULL_FLUSH`.
    Full,
}

/// `data` compressed by zlib-rs at `level`, fed in `chunks` (lengths, the rest in one
/// more), each followed by its flush.
pub fn deflate_chunked(
    format: Format,
    level: i32,
    data: &[u8],
    chunks: &[(usize, Flush)],
) -> Vec<u8> {
    let (hdr, wb) = bits(format);
    let mut d = Deflate::new(level, hdr, wb);
    let mut out = Vec::with_capacity(zlib_rs::compress_bound(data.len()) + 64);
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = 0;
    let mut run = |d: &mut Deflate, input: &[u8], flush: DeflateFlush, out: &mut Vec<u8>| {
        let mut off = 0;
        loop {
            let (in0, out0) = (d.total_in(), d.total_out());
            let st = d
                .compress(&input[off..], &mut buf, flush)
                .expect("zlib-rs deflate");
            off += (d.total_in() - in0) as usize;
            let n = (d.total_out() - out0) as usize;
            out.extend_from_slice(&buf[..n]);
            let done = match flush {
                DeflateFlush::Finish => st == Status::StreamEnd,
                _ => off == input.len() && n < buf.len(),
            };
            if done {
                break;
            }
        }
    };
    for &(len, f) in chunks {
        let end = (pos + len).min(data.len());
        let flush = match f {
            Flush::None => DeflateFlush::NoFlush,
            Flush::Sync => DeflateFlush::SyncFlush,
            Flush::Full => DeflateFlush::FullFlush,
        };
        run(&mut d, &data[pos..end], flush, &mut out);
        pos = end;
    }
    run(&mut d, &data[pos..], DeflateFlush::Finish, &mut out);
    out
}

/// `data` compressed by zlib-rs at `level` in one call.
pub fn deflate(format: Format, level: i32, data: &[u8]) -> Vec<u8> {
    deflate_chunked(format, level, data, &[])
}

/// `z` decompressed by zlib-rs: one stream (one gzip member), which must end; bytes after
/// it are an error. `limit` bounds the output (an error past it).
pub fn inflate(format: Format, z: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let (hdr, wb) = bits(format);
    let mut i = Inflate::new(hdr, wb);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut off = 0;
    loop {
        let (in0, out0) = (i.total_in(), i.total_out());
        let st = i
            .decompress(&z[off..], &mut buf, InflateFlush::NoFlush)
            .map_err(|e| format!("zlib-rs inflate: {e:?}"))?;
        off += (i.total_in() - in0) as usize;
        let n = (i.total_out() - out0) as usize;
        out.extend_from_slice(&buf[..n]);
        if out.len() > limit {
            return Err("output past the limit".into());
        }
        if st == Status::StreamEnd {
            break;
        }
        if n == 0 && (i.total_in() - in0) == 0 {
            return Err("truncated stream".into());
        }
    }
    if off != z.len() {
        return Err(format!("{} bytes after the stream", z.len() - off));
    }
    Ok(out)
}
