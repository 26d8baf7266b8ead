//! hisi-zip's compression API on the device model (in this process) and in software.

use std::io::{Read, Write};

use zlib_rs::{Inflate, InflateFlush, Status};

use hisi_zip::*;
use wd_core::select::{self, Devices};
use wd_tests::corpus::{random, text};

fn model() {
    hisi_model::plug();
    select::set_process(Devices::Model);
    select::activate_process().expect("device model");
}

/// zlib-rs's own decoder with the wrapper of `format` (reference).
fn reference_decode(format: Format, data: &[u8], max: usize) -> Vec<u8> {
    let (hdr, bits) = match format {
        Format::Deflate => (false, 15),
        Format::Zlib => (true, 15),
        Format::Gzip => (true, 31),
    };
    let mut i = Inflate::new(hdr, bits);
    let mut out = vec![0u8; max + 1];
    let r = i.decompress(data, &mut out, InflateFlush::Finish);
    assert_eq!(r, Ok(Status::StreamEnd), "{format}: reference decoder");
    assert_eq!(
        i.total_in() as usize,
        data.len(),
        "{format}: bytes after the stream"
    );
    out.truncate(i.total_out() as usize);
    out
}

#[test]
fn one_shot_round_trips_on_the_model_match_the_reference() {
    model();
    let before = stats();
    for format in [Format::Zlib, Format::Gzip] {
        for n in [0usize, 1, 199, 200, 65535, 65536, 65537, 300_000] {
            for data in [text(n, n as u64 + 1), random(n, 3)] {
                let z = compress(format, 6, &data).unwrap();
                assert_eq!(reference_decode(format, &z, n), data, "{format} {n}");
                assert_eq!(decompress(format, &z).unwrap(), data, "{format} {n}");
            }
        }
    }
    let after = stats();
    assert!(after.offloaded > before.offloaded, "{after:?}");
    assert!(after.requests > before.requests);
}

#[test]
fn software_fallback_gives_the_same_content_and_counts_its_reason() {
    let data = text(100_000, 9);
    for format in [Format::Deflate, Format::Zlib, Format::Gzip] {
        let before = stats().fallback(Reason::Disabled);
        let z = compress_with(format, 6, &data, Offload::Never).unwrap();
        assert!(stats().fallback(Reason::Disabled) > before);
        assert_eq!(reference_decode(format, &z, data.len()), data);
        assert_eq!(decompress_with(format, &z, Offload::Never).unwrap(), data);
    }
    // Levels above the device's go to software, counted.
    model();
    let before = stats().fallback(Reason::Level);
    let c = Compressor::new(Format::Gzip, 9).unwrap();
    assert!(!c.is_offloaded());
    assert_eq!(c.fallback_reason(), Some(Reason::Level));
    assert!(stats().fallback(Reason::Level) > before);
}

#[test]
fn streaming_with_tiny_writes_and_reads() {
    model();
    let data = text(200_000, 17);
    for format in [Format::Zlib, Format::Gzip] {
        let mut e = WdEncoder::new(Vec::new(), format, 6).unwrap();
        assert!(e.compressor().is_offloaded());
        for c in data.chunks(777) {
            e.write_all(c).unwrap();
        }
        e.flush().unwrap();
        let z = e.finish().unwrap();
        assert_eq!(reference_decode(format, &z, data.len()), data);
        // Read back one byte at a time from a reader that hands out 3 bytes at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                let n = b.len().min(3).min(self.0.len());
                b[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut d = WdDecoder::new(Trickle(&z), format).unwrap();
        assert!(d.decompressor().is_offloaded());
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        loop {
            match d.read(&mut b).unwrap() {
                0 => break,
                _ => out.push(b[0]),
            }
        }
        assert!(out == data, "{format}");
    }
}

#[test]
fn gzip_headers_with_every_field_and_several_members() {
    model();
    let a = text(50_000, 1);
    let b = random(3000, 2);
    let h = GzHeader {
        mtime: 1_700_000_000,
        name: Some(b"a.txt".to_vec()),
        comment: Some(b"first".to_vec()),
        extra: Some(vec![b'W', b'D', 1, 0, 7]),
        os: 3,
        ..GzHeader::default()
    };
    let mut e =
        WdEncoder::with_options(Vec::new(), Format::Gzip, 6, Offload::Auto, Some(h.clone()))
            .unwrap();
    e.write_all(&a).unwrap();
    let mut z = e.finish().unwrap();
    // Second member with FHCRC set by hand.
    let m2 = compress(Format::Gzip, 6, &b).unwrap();
    let mut hdr = m2[..10].to_vec();
    hdr[3] |= 0x02;
    let crc = zlib_rs::crc32::crc32(0, &hdr) as u16;
    hdr.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&hdr);
    z.extend_from_slice(&m2[10..]);
    let mut d = Decompressor::new(Format::Gzip).unwrap();
    let mut out = Vec::new();
    d.decompress(&z, &mut out).unwrap();
    d.finish(&mut out).unwrap();
    assert_eq!(d.members(), 2);
    let mut want = a.clone();
    want.extend_from_slice(&b);
    assert!(out == want);
    // The first header's fields were read (the decompressor keeps the last member's).
    let (n, got) = header::parse_gzip(&z).unwrap().unwrap();
    assert_eq!(got, h);
    assert!(n > 10);
}

#[test]
fn bad_input_is_an_error_with_no_output_claimed() {
    model();
    let data = text(100_000, 5);
    for offload in [Offload::Auto, Offload::Never] {
        for format in [Format::Zlib, Format::Gzip] {
            let z = compress(format, 6, &data).unwrap();
            // Truncated anywhere.
            for cut in [1, 5, z.len() / 2, z.len() - 3, z.len() - 1] {
                let Err(e) = decompress_with(format, &z[..cut], offload) else {
                    panic!("{format}: truncated at {cut} accepted");
                };
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
                    ),
                    "{format} cut {cut}: {e}"
                );
            }
            // Trailing garbage.
            let mut t = z.clone();
            t.extend_from_slice(b"xyz");
            match decompress_with(format, &t, offload) {
                Err(e) => assert!(e.to_string().contains("trailing garbage"), "{e}"),
                Ok(_) => panic!("{format}: trailing garbage accepted"),
            }
            // Corrupt trailer.
            let mut c = z.clone();
            let n = c.len();
            c[n - 1] ^= 0x40;
            match decompress_with(format, &c, offload) {
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}"),
                Ok(_) => panic!("{format}: corrupt trailer accepted"),
            }
            // Corrupt body.
            let mut c = z.clone();
            for i in (20..c.len() - 10).step_by(97) {
                c[i] ^= 0xa5;
            }
            assert!(decompress_with(format, &c, offload).is_err());
            // Not the format at all.
            assert!(decompress_with(format, b"hello world, plain text", offload).is_err());
        }
    }
    // Empty input is a truncated stream, not an empty success.
    assert!(decompress(Format::Gzip, b"").is_err());
    assert!(decompress(Format::Zlib, b"").is_err());
}

#[test]
fn raw_deflate_needs_v3_on_the_device() {
    model();
    let data = text(10_000, 8);
    // The process's model presents the api of WD_MODEL_API (v2 by default): raw deflate
    // goes to software there, counted as unsupported; the output is valid either way.
    let c = Compressor::new(Format::Deflate, 6).unwrap();
    if select::process().unwrap() == Devices::Model && !c.is_offloaded() {
        assert_eq!(c.fallback_reason(), Some(Reason::Unsupported));
    }
    let z = compress(Format::Deflate, 6, &data).unwrap();
    assert_eq!(reference_decode(Format::Deflate, &z, data.len()), data);
    assert_eq!(decompress(Format::Deflate, &z).unwrap(), data);
}

#[test]
fn parallel_members_decode_as_one_file() {
    model();
    let data = text(20 << 20, 3);
    let mut out = Vec::new();
    let mut seen = 0;
    let rep =
        parallel::compress_members(&data[..], &mut out, 6, &GzHeader::default(), |n| seen = n)
            .unwrap();
    assert!(rep.offloaded);
    assert_eq!(rep.members, 3);
    assert_eq!(seen, data.len() as u64);
    assert_eq!(rep.bytes_out, out.len() as u64);
    let back = decompress(Format::Gzip, &out).unwrap();
    assert!(back == data);
}
