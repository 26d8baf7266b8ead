//! Tests of the ZIP engine driven through SQE words and an IOMMU, with the model's own
//! encoders (no driver code).

use flate2_check::*;

use crate::config::ApiVersion;
use crate::engine::{Engine, Job, Outcome};
use crate::iommu::{Iommu, IovaAllocator};
use crate::layout::zip::*;
use crate::zip::ZipEngine;
use wd_core::Region;

/// Reference codecs (zlib-rs directly) for checking the engine's output.
mod flate2_check {
    use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush, Status};

    pub fn inflate_raw(data: &[u8], max: usize) -> Option<Vec<u8>> {
        let mut i = Inflate::new(false, 15);
        let mut out = vec![0u8; max];
        match i.decompress(data, &mut out, InflateFlush::Finish) {
            Ok(Status::StreamEnd) => {
                out.truncate(i.total_out() as usize);
                Some(out)
            }
            _ => None,
        }
    }

    pub fn deflate_raw(data: &[u8], level: i32) -> Vec<u8> {
        let mut d = Deflate::new(level, false, 15);
        let mut out = vec![0u8; data.len() + data.len() / 8 + 1024];
        let r = d.compress(data, &mut out, DeflateFlush::Finish).unwrap();
        assert_eq!(r, Status::StreamEnd);
        out.truncate(d.total_out() as usize);
        out
    }
}

struct Dev {
    alloc: IovaAllocator,
    mmu: Iommu,
    src: Region,
    dst: Region,
    _ctx: Region,
    src_iova: u64,
    dst_iova: u64,
    ctx_iova: u64,
    api: ApiVersion,
}

fn text(n: usize, seed: u64) -> Vec<u8> {
    let words = [
        "accelerator ",
        "queue ",
        "deflate ",
        "zlib ",
        "gzip ",
        "window ",
        "kunpeng ",
        "hisilicon ",
        "doorbell ",
        "ring ",
        "\n",
        "0123 ",
        "stream ",
    ];
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 16);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        if x.is_multiple_of(7) {
            v.push((x >> 32) as u8);
        }
    }
    v.truncate(n);
    v
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl Dev {
    fn new(api: ApiVersion, size: usize) -> Dev {
        let alloc = IovaAllocator::default();
        let mmu = Iommu::default();
        let src = Region::anonymous(size.max(4096)).unwrap();
        let dst = Region::anonymous(size.max(4096)).unwrap();
        let ctx = Region::anonymous(CTX_SIZE).unwrap();
        let src_iova = mmu.map(&alloc, &src).unwrap().0;
        let dst_iova = mmu.map(&alloc, &dst).unwrap().0;
        let ctx_iova = mmu.map(&alloc, &ctx).unwrap().0;
        Dev {
            alloc,
            mmu,
            src,
            dst,
            _ctx: ctx,
            src_iova,
            dst_iova,
            ctx_iova,
            api,
        }
    }

    fn sqe(&self, req: u8, input_len: usize, dest: usize, flags: u32) -> [u32; SQE_WORDS] {
        let mut w = [0u32; SQE_WORDS];
        w[DW_INPUT_LEN] = input_len as u32;
        let t = if self.api == ApiVersion::V3 { 3 } else { 0 };
        w[DW_FLAGS] = flags | (t << SQE_TYPE_SHIFT);
        w[DW_TYPE] = u32::from(req) | (4 << WINDOW_SHIFT);
        w[DW_DEST_AVAIL] = dest as u32;
        w[DW_SRC] = self.src_iova as u32;
        w[DW_SRC + 1] = (self.src_iova >> 32) as u32;
        w[DW_DST] = self.dst_iova as u32;
        w[DW_DST + 1] = (self.dst_iova >> 32) as u32;
        w[DW_CTX_ADDR] = self.ctx_iova as u32;
        w[DW_CTX_ADDR + 1] = (self.ctx_iova >> 32) as u32;
        w[DW_TAG_V2] = 0x1234;
        w[DW_TAG_V3] = 0x5678;
        w
    }

    fn run(&self, qc: u16, w: &mut [u32; SQE_WORDS]) -> Outcome {
        let job = Job {
            qc_type: qc,
            api: self.api,
            dma: &self.mmu,
        };
        ZipEngine::new(2).process(&job, w)
    }

    fn out(&self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.dst.read_bytes(0, &mut v);
        v
    }
}

fn status(w: &[u32]) -> u8 {
    (w[DW_STATUS] & STATUS_MASK) as u8
}

/// Compresses `data` in stream mode in pieces of `piece`, returning the stream.
fn compress_stream(dev: &Dev, req: u8, data: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ctx = [0u32; 3];
    let (mut isize, mut sum) = (0, 0);
    let pieces: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(piece).collect()
    };
    for (i, p) in pieces.iter().enumerate() {
        dev.src.write_bytes(0, p);
        let mut flags = STREAM_MODE;
        if i == 0 {
            flags |= NEW_STREAM;
        }
        if i + 1 == pieces.len() {
            flags |= FLUSH_FINISH;
        }
        let mut w = dev.sqe(req, p.len(), dev.dst.len(), flags);
        w[DW_CTX0] = ctx[0];
        w[DW_CTX1] = ctx[1];
        w[DW_CTX2] = ctx[2];
        w[DW_ISIZE] = isize;
        w[DW_CHECKSUM] = sum;
        assert_eq!(
            dev.run(0, &mut w),
            Outcome::Ok,
            "piece {i}: status {:#x}",
            status(&w)
        );
        assert_eq!(w[DW_CONSUMED] as usize, p.len());
        assert_eq!(w[DW_TAG_V2], 0x1234, "tag words untouched");
        assert_eq!(w[DW_TAG_V3], 0x5678);
        out.extend(dev.out(w[DW_PRODUCED] as usize));
        ctx = [w[DW_CTX0], w[DW_CTX1], w[DW_CTX2]];
        isize = w[DW_ISIZE];
        sum = w[DW_CHECKSUM];
    }
    out
}

/// Decompresses `stream` in stream mode, feeding input `feed` bytes at a time and giving
/// the engine `dest` bytes of output room; returns the output and the final status.
fn decompress_stream(
    dev: &Dev,
    req: u8,
    stream: &[u8],
    feed: usize,
    dest: usize,
) -> (Vec<u8>, u8, usize) {
    let mut out = Vec::new();
    let mut ctx = [0u32; 3];
    let (mut isize, mut sum) = (0, 0);
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut first = true;
    for _round in 0..100_000 {
        if fed < stream.len() {
            let n = feed.min(stream.len() - fed);
            pending.extend_from_slice(&stream[fed..fed + n]);
            fed += n;
        }
        dev.src.write_bytes(0, &pending);
        let mut flags = STREAM_MODE;
        if first {
            flags |= NEW_STREAM;
        }
        let mut w = dev.sqe(req, pending.len(), dest, flags);
        w[DW_CTX0] = ctx[0];
        w[DW_CTX1] = ctx[1];
        w[DW_CTX2] = ctx[2];
        w[DW_ISIZE] = isize;
        w[DW_CHECKSUM] = sum;
        dev.run(1, &mut w);
        let st = status(&w);
        if st != ST_OK && st != ST_DECOMP_END {
            return (out, st, fed - pending.len());
        }
        first = false;
        let consumed = w[DW_CONSUMED] as usize;
        let produced = w[DW_PRODUCED] as usize;
        out.extend(dev.out(produced));
        pending.drain(..consumed);
        ctx = [w[DW_CTX0], w[DW_CTX1], w[DW_CTX2]];
        isize = w[DW_ISIZE];
        sum = w[DW_CHECKSUM];
        if st == ST_DECOMP_END {
            assert!(w[DW_STATUS] & LAST_BLOCK != 0);
            let mut at = fed - pending.len();
            if w[DW_CTX0] & 0xf == CTX_ST_NO_CRC {
                // The trailer was not in the input: software checks it.
                let t: Vec<u8> = match req {
                    REQ_ZLIB => sum.to_be_bytes().to_vec(),
                    _ => [sum.to_le_bytes(), isize.to_le_bytes()].concat(),
                };
                assert_eq!(&stream[at..at + t.len()], &t[..], "software trailer check");
                at += t.len();
            }
            return (out, st, at);
        }
        if consumed == 0 && produced == 0 && fed == stream.len() {
            return (out, 0xff, fed - pending.len());
        }
    }
    panic!("no progress");
}

#[test]
fn stateless_compress_makes_valid_streams_with_trailers() {
    for api in [ApiVersion::V2, ApiVersion::V3] {
        let dev = Dev::new(api, 1 << 20);
        let data = text(100_000, 7);
        dev.src.write_bytes(0, &data);
        for req in [REQ_ZLIB, REQ_GZIP] {
            let mut w = dev.sqe(req, data.len(), dev.dst.len(), FLUSH_FINISH);
            assert_eq!(dev.run(0, &mut w), Outcome::Ok);
            assert_eq!(status(&w), ST_OK);
            let out = dev.out(w[DW_PRODUCED] as usize);
            let t = if req == REQ_ZLIB { 4 } else { 8 };
            let body = &out[..out.len() - t];
            assert_eq!(inflate_raw(body, 200_000).unwrap(), data);
            if req == REQ_ZLIB {
                let a = zlib_rs::adler32::adler32(1, &data);
                assert_eq!(&out[out.len() - 4..], &a.to_be_bytes());
            } else {
                let c = zlib_rs::crc32::crc32(0, &data);
                assert_eq!(&out[out.len() - 8..out.len() - 4], &c.to_le_bytes());
                assert_eq!(&out[out.len() - 4..], &(data.len() as u32).to_le_bytes());
            }
        }
    }
}

#[test]
fn raw_deflate_only_on_v3_and_sqe_type_must_match() {
    let dev = Dev::new(ApiVersion::V2, 4096);
    let mut w = dev.sqe(REQ_DEFLATE, 10, 4096, FLUSH_FINISH);
    assert_eq!(dev.run(0, &mut w), Outcome::Error);
    assert_eq!(status(&w), ST_PARAM);
    let mut w = dev.sqe(REQ_ZLIB, 10, 4096, FLUSH_FINISH);
    w[DW_FLAGS] |= 3 << SQE_TYPE_SHIFT;
    assert_eq!(dev.run(0, &mut w), Outcome::Error);
    let dev = Dev::new(ApiVersion::V3, 4096);
    let mut w = dev.sqe(REQ_DEFLATE, 10, 4096, FLUSH_FINISH);
    assert_eq!(dev.run(0, &mut w), Outcome::Ok);
    let mut w = dev.sqe(REQ_ZLIB, 10, 4096, FLUSH_FINISH);
    w[DW_FLAGS] &= !(0xf << SQE_TYPE_SHIFT);
    assert_eq!(
        status(&{
            dev.run(0, &mut w);
            w
        }),
        ST_PARAM
    );
    for bad in [0x04u32, 0x40, 0] {
        let mut w = dev.sqe(REQ_ZLIB, 10, 4096, FLUSH_FINISH);
        w[DW_TYPE] = (w[DW_TYPE] & !0xff) | bad;
        dev.run(0, &mut w);
        assert_eq!(status(&w), ST_PARAM, "req type {bad:#x}");
    }
    let mut w = dev.sqe(REQ_ZLIB, 10, 4096, FLUSH_FINISH);
    w[DW_TYPE] |= 1 << BUF_TYPE_SHIFT;
    dev.run(0, &mut w);
    assert_eq!(status(&w), ST_PARAM, "SGL not modelled");
}

#[test]
fn queue_class_decides_the_direction() {
    let dev = Dev::new(ApiVersion::V2, 4096);
    let z = deflate_raw(b"hello hello hello", 6);
    dev.src.write_bytes(0, &z);
    // Raw deflate data given to a compress queue is simply compressed; a decompress
    // queue decodes. qc_type 2 refuses.
    let mut w = dev.sqe(REQ_GZIP, z.len(), 4096, STREAM_MODE | NEW_STREAM);
    dev.run(1, &mut w);
    assert_eq!(status(&w), ST_DECOMP_END);
    assert_eq!(dev.out(w[DW_PRODUCED] as usize), b"hello hello hello");
    let mut w = dev.sqe(REQ_GZIP, z.len(), 4096, FLUSH_FINISH);
    dev.run(2, &mut w);
    assert_eq!(status(&w), ST_PARAM);
}

#[test]
fn stream_compression_across_requests_is_one_stream() {
    let dev = Dev::new(ApiVersion::V3, 1 << 20);
    let data = text(300_000, 3);
    for (req, piece) in [(REQ_GZIP, 1000), (REQ_ZLIB, 70_000), (REQ_DEFLATE, 33)] {
        let s = compress_stream(
            &dev,
            req,
            &data[..if piece == 33 { 5000 } else { data.len() }],
            piece,
        );
        let t = match req {
            REQ_ZLIB => 4,
            REQ_GZIP => 8,
            _ => 0,
        };
        let want = &data[..if piece == 33 { 5000 } else { data.len() }];
        assert_eq!(inflate_raw(&s[..s.len() - t], 400_000).unwrap(), want);
        if req == REQ_GZIP {
            let c = zlib_rs::crc32::crc32(0, want);
            assert_eq!(&s[s.len() - 8..s.len() - 4], &c.to_le_bytes());
        }
        // Back through the engine in awkward pieces.
        for (feed, dest) in [(s.len(), 1 << 20), (1000, 4096), (97, 200), (5, 1 << 20)] {
            let (out, st, consumed) = decompress_stream(&dev, req, &s, feed, dest);
            assert_eq!(st, ST_DECOMP_END, "req {req} feed {feed} dest {dest}");
            assert_eq!(consumed, s.len());
            assert_eq!(out, want, "req {req} feed {feed} dest {dest}");
        }
    }
}

#[test]
fn output_room_exactly_the_stream_size() {
    let dev = Dev::new(ApiVersion::V2, 1 << 20);
    let data = text(300_000, 21);
    let s = compress_stream(&dev, REQ_GZIP, &data, 300_000);
    for dest in [data.len(), data.len() - 1, data.len() + 1, data.len() / 2] {
        let (out, st, consumed) = decompress_stream(&dev, REQ_GZIP, &s, s.len(), dest);
        assert_eq!(st, ST_DECOMP_END, "dest {dest}");
        assert_eq!(consumed, s.len(), "dest {dest}");
        assert!(out == data, "dest {dest}");
    }
}

#[test]
fn back_references_reach_into_earlier_requests() {
    // The same 20 KiB twice, split between requests: the second copy compresses to almost
    // nothing only if the window carried over.
    let dev = Dev::new(ApiVersion::V2, 1 << 20);
    let half = random(20_000, 9);
    let mut data = half.clone();
    data.extend_from_slice(&half);
    let s = compress_stream(&dev, REQ_ZLIB, &data, 20_000);
    assert!(s.len() < 21_000, "{} bytes: window lost", s.len());
}

#[test]
fn big_blocks_and_tiny_output_room_are_continued_not_truncated() {
    let dev = Dev::new(ApiVersion::V2, 4 << 20);
    let zeros = vec![0u8; 3 << 20];
    // zlib's own large blocks: ~4 MiB of output per block at most.
    let z = deflate_raw(&zeros, 9);
    let mut g = z.clone();
    g.extend_from_slice(&zlib_rs::crc32::crc32(0, &zeros).to_le_bytes());
    g.extend_from_slice(&(zeros.len() as u32).to_le_bytes());
    let (out, st, _) = decompress_stream(&dev, REQ_GZIP, &g, g.len(), 300_000);
    assert_eq!(st, ST_DECOMP_END);
    assert_eq!(out.len(), zeros.len());
    assert!(out == zeros);
}

#[test]
fn trailer_mismatch_is_crc_error_and_split_trailer_is_left_to_software() {
    let dev = Dev::new(ApiVersion::V2, 1 << 20);
    let data = text(10_000, 5);
    let s = compress_stream(&dev, REQ_GZIP, &data, 10_000);
    let mut bad = s.clone();
    let n = bad.len();
    bad[n - 6] ^= 1;
    let (_, st, _) = decompress_stream(&dev, REQ_GZIP, &bad, bad.len(), 1 << 20);
    assert_eq!(st, ST_CRC);
    // Deflate data without its trailer: ends, ctx_st says "no CRC", consumed stops there.
    dev.src.write_bytes(0, &s[..n - 8]);
    let mut w = dev.sqe(REQ_GZIP, n - 8, 1 << 20, STREAM_MODE | NEW_STREAM);
    dev.run(1, &mut w);
    assert_eq!(status(&w), ST_DECOMP_END);
    assert_eq!(w[DW_CTX0] & 0xf, CTX_ST_NO_CRC);
    assert_eq!(w[DW_CONSUMED] as usize, n - 8);
    assert_eq!(w[DW_CHECKSUM], zlib_rs::crc32::crc32(0, &data));
    assert_eq!(w[DW_ISIZE], data.len() as u32);
    // Trailing bytes after the trailer are not consumed.
    let mut more = s.clone();
    more.extend_from_slice(b"garbage");
    dev.src.write_bytes(0, &more);
    let mut w = dev.sqe(REQ_GZIP, more.len(), 1 << 20, STREAM_MODE | NEW_STREAM);
    dev.run(1, &mut w);
    assert_eq!(status(&w), ST_DECOMP_END);
    assert_eq!(w[DW_CONSUMED] as usize, s.len());
}

#[test]
fn corrupt_and_truncated_input() {
    let dev = Dev::new(ApiVersion::V2, 1 << 20);
    let data = text(50_000, 11);
    let s = compress_stream(&dev, REQ_ZLIB, &data, 50_000);
    let mut bad = s.clone();
    bad[0] = 0xff; // reserved block type 3
    let (_, st, _) = decompress_stream(&dev, REQ_ZLIB, &bad, bad.len(), 1 << 20);
    assert_eq!(st, ST_DATA);
    // Truncated: no end, no progress at the end of input.
    let (out, st, _) = decompress_stream(&dev, REQ_ZLIB, &s[..s.len() / 2], 1 << 20, 1 << 20);
    assert_eq!(st, 0xff);
    assert!(out.len() < data.len());
    // Stateless: truncated input is a data error, too little room is 0x0e.
    dev.src.write_bytes(0, &s[..s.len() / 2]);
    let mut w = dev.sqe(REQ_ZLIB, s.len() / 2, 1 << 20, 0);
    dev.run(1, &mut w);
    assert_eq!(status(&w), ST_DATA);
    dev.src.write_bytes(0, &s);
    let mut w = dev.sqe(REQ_ZLIB, s.len(), 1000, 0);
    dev.run(1, &mut w);
    assert_eq!(status(&w), ST_DEST_SMALL);
}

#[test]
fn output_rules() {
    let dev = Dev::new(ApiVersion::V2, 1 << 20);
    let data = random(100_000, 1);
    dev.src.write_bytes(0, &data);
    // Below 200 bytes of room: refused.
    let mut w = dev.sqe(REQ_GZIP, 10, 199, FLUSH_FINISH);
    dev.run(0, &mut w);
    assert_eq!(status(&w), ST_DEST_SMALL);
    // Random data: negative compression, output valid.
    let mut w = dev.sqe(REQ_GZIP, data.len(), 1 << 20, FLUSH_FINISH);
    assert_eq!(dev.run(0, &mut w), Outcome::Ok);
    assert_eq!(status(&w), ST_NEGATIVE);
    let n = w[DW_PRODUCED] as usize;
    assert!(n > data.len());
    assert_eq!(inflate_raw(&dev.out(n)[..n - 8], 200_000).unwrap(), data);
    // Not enough room: 0x0e, nothing consumed.
    let mut w = dev.sqe(
        REQ_GZIP,
        data.len(),
        50_000,
        STREAM_MODE | NEW_STREAM | FLUSH_FINISH,
    );
    dev.run(0, &mut w);
    assert_eq!(status(&w), ST_DEST_SMALL);
    assert_eq!((w[DW_CONSUMED], w[DW_PRODUCED]), (0, 0));
    // Over 8 MiB of input: refused.
    let mut w = dev.sqe(REQ_GZIP, (8 << 20) + 1, 1 << 20, FLUSH_FINISH);
    dev.run(0, &mut w);
    assert_eq!(status(&w), ST_PARAM);
    // Empty final request: a valid empty stream.
    let mut w = dev.sqe(REQ_ZLIB, 0, 4096, FLUSH_FINISH);
    assert_eq!(dev.run(0, &mut w), Outcome::Ok);
    let n = w[DW_PRODUCED] as usize;
    assert_eq!(inflate_raw(&dev.out(n)[..n - 4], 10).unwrap(), b"");
    assert_eq!(&dev.out(n)[n - 4..], &[0, 0, 0, 1]);
}

#[test]
fn stray_and_overlapping_addresses_fault() {
    let dev = Dev::new(ApiVersion::V2, 4096);
    let mut w = dev.sqe(REQ_GZIP, 100, 4096, FLUSH_FINISH);
    w[DW_SRC] = w[DW_SRC].wrapping_add(4090);
    assert_eq!(dev.run(0, &mut w), Outcome::AddressFault);
    assert_eq!(status(&w), ST_ADDR);
    let mut w = dev.sqe(REQ_GZIP, 100, 8192, FLUSH_FINISH);
    assert_eq!(
        dev.run(0, &mut w),
        Outcome::AddressFault,
        "dest beyond its mapping"
    );
    let mut w = dev.sqe(REQ_GZIP, 100, 4096, STREAM_MODE | FLUSH_FINISH);
    w[DW_CTX_ADDR] = 0;
    w[DW_CTX_ADDR + 1] = 0;
    assert_eq!(dev.run(0, &mut w), Outcome::AddressFault, "ctx unmapped");
    let mut w = dev.sqe(REQ_GZIP, 100, 4096, FLUSH_FINISH);
    w[DW_DST] = w[DW_SRC];
    w[DW_DST + 1] = w[DW_SRC + 1];
    assert_eq!(dev.run(0, &mut w), Outcome::Error);
    assert_eq!(status(&w), ST_PARAM, "source and destination overlap");
    let _ = &dev.alloc;
}
