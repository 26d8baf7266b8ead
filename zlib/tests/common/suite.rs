#![allow(clippy::manual_c_str_literals)]
//! The differential checks, run by `software.rs` (no device) and `device.rs` (the model).

use std::ffi::{c_int, c_uint, c_ulong, CString};

use crate::common::*;

pub const FORMATS: [c_int; 3] = [15, 31, -15];

/// Every wbits/level/strategy: our output inflates (system zlib) to the input, with the
/// same total_in and adler as the system zlib's own deflate of it.
pub fn round_trips_all_parameters(sizes: &[usize]) {
    let (sys, wdz) = libs();
    for (i, &n) in sizes.iter().enumerate() {
        let data = corpus(n, i as u64);
        for wbits in [15, 31, -15, 9, 25, -9, 12] {
            for level in [-1, 0, 1, 2, 6, 9] {
                for strategy in [0, 1, 2, 3, 4] {
                    if strategy != 0 && level != 6 {
                        continue;
                    }
                    let p = (level, wbits, 8, strategy);
                    let (ours, _, a1) =
                        deflate_with(wdz, &data, p, &[n.max(1)], 1 << 16, &[Z_NO_FLUSH]);
                    let (theirs, _, a2) =
                        deflate_with(sys, &data, p, &[n.max(1)], 1 << 16, &[Z_NO_FLUSH]);
                    assert_eq!(a1, a2, "adler {p:?} n={n}");
                    assert_eq!(sys_inflate(&ours, wbits), data, "{p:?} n={n}");
                    // And the other direction through our inflate.
                    let (back, _, r) = inflate_with(wdz, &theirs, wbits, 1 << 20, 1 << 16);
                    assert_eq!((r, back.len()), (Z_STREAM_END, data.len()), "{p:?}");
                    assert!(back == data);
                }
            }
        }
    }
}

/// Random chunkings, random flush modes, tiny output windows: the stream inflates to the
/// input, and after every sync/full flush the output so far inflates to the input so far.
pub fn flush_patterns_and_chunking(n: usize, seeds: u64) {
    let (_, wdz) = libs();
    for seed in 0..seeds {
        let mut r = fastrand::Rng::with_seed(seed);
        let data = corpus(n, 100 + seed);
        let wbits = FORMATS[seed as usize % 3];
        let in_sizes: Vec<usize> = (0..7)
            .map(|_| [1, 3, 100, 4096, 20000, 70000][r.usize(..6)])
            .collect();
        let flushes: Vec<c_int> = (0..5)
            .map(|_| {
                [
                    Z_NO_FLUSH,
                    Z_NO_FLUSH,
                    Z_SYNC_FLUSH,
                    Z_FULL_FLUSH,
                    Z_PARTIAL_FLUSH,
                    Z_BLOCK,
                ][r.usize(..6)]
            })
            .collect();
        // zlib's advice: more than 6 bytes of room when flushing, or every call that ends
        // with a full window emits another marker (zlib does so too).
        let out_size = [7, 512, 65536][r.usize(..3)];
        let (out, marks, adler) =
            deflate_with(wdz, &data, (6, wbits, 8, 0), &in_sizes, out_size, &flushes);
        assert_eq!(sys_inflate(&out, wbits), data, "seed {seed}");
        if wbits == 15 {
            assert_eq!(adler, libs().0.adler(&data));
        }
        // 1-byte windows without flushes.
        let (one, _, _) = deflate_with(
            wdz,
            &data[..20_000],
            (6, wbits, 8, 0),
            &in_sizes,
            1,
            &[Z_NO_FLUSH],
        );
        assert_eq!(sys_inflate(&one, wbits), data[..20_000]);
        for (i, o) in marks.iter().take(6) {
            assert!(
                out[..*o].ends_with(&[0, 0, 0xff, 0xff]),
                "sync marker at {o} (seed {seed})"
            );
            let got = sys_inflate_prefix(&out[..*o], wbits);
            assert!(
                got == data[..*i],
                "seed {seed}: flushed prefix {i}/{o} inflates to {} bytes",
                got.len()
            );
        }
    }
}

impl Lib {
    pub fn adler(&self, d: &[u8]) -> c_ulong {
        // SAFETY: zlib's prototype over a live slice.
        unsafe { (self.adler32)(1, d.as_ptr(), d.len() as c_uint) }
    }
}

/// Inflate, call by call, agrees with the system zlib's: codes, avail counts, totals,
/// adler; over 1-byte and larger windows, and on corrupt and truncated input.
pub fn inflate_matches_call_by_call() {
    let (sys, wdz) = libs();
    let data = corpus(300_000, 7);
    for wbits in [15, 31, -15] {
        let (z, _, _) = deflate_with(
            sys,
            &data,
            (6, wbits, 8, 0),
            &[1 << 20],
            1 << 16,
            &[Z_NO_FLUSH],
        );
        for (ins, outs) in [(1usize, 1usize), (13, 4096), (65536, 1), (1 << 20, 1 << 20)] {
            if ins * outs == 1 && data.len() > 50_000 {
                // byte by byte both ways: a prefix is enough
                let cut = &z[..4000];
                let a = inflate_with(sys, cut, wbits, 1, 1);
                let b = inflate_with(wdz, cut, wbits, 1, 1);
                assert_eq!(a.0, b.0);
                assert_eq!(a.2, b.2);
                continue;
            }
            let a = inflate_with(sys, &z, wbits, ins, outs);
            let b = inflate_with(wdz, &z, wbits, ins, outs);
            assert!(a.0 == b.0, "output wbits {wbits} {ins}/{outs}");
            assert_eq!(a.2, b.2, "final code");
            let (mut la, mut lb) = (a.1.last().copied(), b.1.last().copied());
            if wbits < 0 {
                // zlib-rs reports adler 1 on a raw stream, zlib 0 (no checksum either way).
                la.iter_mut().chain(lb.iter_mut()).for_each(|c| c.adler = 0);
            }
            assert_eq!(la, lb, "final observables");
        }
        // Corrupt: flip bytes in the middle; both say Z_DATA_ERROR (with a msg).
        let mut bad = z.clone();
        let m = bad.len() / 2;
        for b in &mut bad[m..m + 8] {
            *b ^= 0x5a;
        }
        let a = inflate_with(sys, &bad, wbits, 1 << 20, 1 << 20);
        let b = inflate_with(wdz, &bad, wbits, 1 << 20, 1 << 20);
        assert_eq!(a.2, b.2, "corrupt: same code");
        // Truncated: Z_BUF_ERROR at the end of the input, as zlib.
        let a = inflate_with(sys, &z[..z.len() - 3], wbits, 1 << 20, 1 << 20);
        let b = inflate_with(wdz, &z[..z.len() - 3], wbits, 1 << 20, 1 << 20);
        assert_eq!((a.0.len(), a.2), (b.0.len(), b.2));
    }
}

/// Checksums, bounds, strings and flags: identical to the system zlib's.
pub fn utilities_identical() {
    let (sys, wdz) = libs();
    let d = corpus(100_000, 3);
    // SAFETY: zlib's prototypes over live slices.
    unsafe {
        for lib in [sys, wdz] {
            let _ = lib;
        }
        for n in [0usize, 1, 5, 100, 65536, 99_999] {
            let p = d.as_ptr();
            assert_eq!(
                (sys.crc32)(0, p, n as c_uint),
                (wdz.crc32)(0, p, n as c_uint)
            );
            assert_eq!(
                (sys.crc32)(0x1234, p, n as c_uint),
                (wdz.crc32)(0x1234, p, n as c_uint)
            );
            assert_eq!((sys.crc32_z)(7, p, n), (wdz.crc32_z)(7, p, n));
            assert_eq!(
                (sys.adler32)(1, p, n as c_uint),
                (wdz.adler32)(1, p, n as c_uint)
            );
            assert_eq!((sys.adler32_z)(99, p, n), (wdz.adler32_z)(99, p, n));
            assert_eq!(
                (sys.compressBound)(n as c_ulong),
                (wdz.compressBound)(n as c_ulong)
            );
            for len2 in [0i64, 1, 1000, 1 << 33] {
                assert_eq!(
                    (sys.crc32_combine)(0xdead, 0xbeef, len2),
                    (wdz.crc32_combine)(0xdead, 0xbeef, len2)
                );
                assert_eq!(
                    (sys.adler32_combine)(0xdead, 0xbeef, len2),
                    (wdz.adler32_combine)(0xdead, 0xbeef, len2)
                );
                let (o1, o2) = ((sys.crc32_combine_gen)(len2), (wdz.crc32_combine_gen)(len2));
                assert_eq!(o1, o2);
                assert_eq!(
                    (sys.crc32_combine_op)(1, 2, o1),
                    (wdz.crc32_combine_op)(1, 2, o2)
                );
            }
        }
        assert_eq!(
            std::slice::from_raw_parts((sys.get_crc_table)(), 256),
            std::slice::from_raw_parts((wdz.get_crc_table)(), 256)
        );
        for e in -6..=2 {
            assert_eq!(cstr((sys.zError)(e)), cstr((wdz.zError)(e)), "zError({e})");
        }
        assert_eq!(
            (sys.zlibCompileFlags)() & 0xff,
            (wdz.zlibCompileFlags)() & 0xff,
            "type sizes"
        );
        assert!(cstr((wdz.zlibVersion)()).starts_with('1'));
        // A null stream's deflateBound is the conservative one; ours is never smaller.
        for n in [0, 100, 1 << 20] {
            assert!(
                (wdz.deflateBound)(std::ptr::null_mut(), n)
                    >= (sys.deflateBound)(std::ptr::null_mut(), n)
            );
        }
    }
}

/// compress/compress2/uncompress/uncompress2 across both libraries, buffer-too-small
/// codes, and deflateBound holding for incompressible input.
pub fn one_shot_and_bounds() {
    let (sys, wdz) = libs();
    for (i, n) in [0usize, 10, 5000, 200_000, 3 << 20].into_iter().enumerate() {
        let mut data = corpus(n, 50 + i as u64);
        let mut rnd = fastrand::Rng::with_seed(i as u64);
        if i % 2 == 1 {
            data.iter_mut().for_each(|b| *b = rnd.u8(..));
        }
        // SAFETY: zlib's prototypes; dest buffers sized by compressBound.
        unsafe {
            for (a, b) in [(wdz, sys), (sys, wdz)] {
                let mut dl = (a.compressBound)(n as c_ulong);
                let mut z = vec![0u8; dl as usize];
                assert_eq!(
                    (a.compress2)(z.as_mut_ptr(), &mut dl, data.as_ptr(), n as c_ulong, 6),
                    Z_OK,
                    "{} compress2",
                    a.name
                );
                z.truncate(dl as usize);
                let mut back = vec![0u8; n + 1];
                let mut bl = back.len() as c_ulong;
                assert_eq!(
                    (b.uncompress)(back.as_mut_ptr(), &mut bl, z.as_ptr(), z.len() as c_ulong),
                    Z_OK
                );
                assert!(bl as usize == n && back[..n] == data[..]);
                let mut sl = z.len() as c_ulong;
                let mut bl2 = back.len() as c_ulong;
                assert_eq!(
                    (b.uncompress2)(back.as_mut_ptr(), &mut bl2, z.as_ptr(), &mut sl),
                    Z_OK
                );
                assert_eq!((bl2, sl), (n as c_ulong, z.len() as c_ulong));
                if n > 10 {
                    let mut small = n as c_ulong / 2;
                    let r1 = (b.uncompress)(
                        back.as_mut_ptr(),
                        &mut small,
                        z.as_ptr(),
                        z.len() as c_ulong,
                    );
                    let mut small2 = n as c_ulong / 2;
                    let r2 = (a.uncompress)(
                        back.as_mut_ptr(),
                        &mut small2,
                        z.as_ptr(),
                        z.len() as c_ulong,
                    );
                    assert_eq!((r1, small), (r2, small2), "uncompress into a short buffer");
                    assert_eq!(r1, Z_BUF_ERROR);
                    let mut tiny: c_ulong = 4;
                    let r = (a.compress)(back.as_mut_ptr(), &mut tiny, data.as_ptr(), n as c_ulong);
                    assert_eq!(r, Z_BUF_ERROR, "{} compress into 4 bytes", a.name);
                }
            }
            // deflateBound: one Z_FINISH call into a buffer of that size ends the stream.
            for wbits in FORMATS {
                let mut s = ZStream::new();
                assert_eq!(
                    (wdz.deflateInit2_)(&mut *s, 6, 8, wbits, 8, 0, VERSION.as_ptr().cast(), SIZE),
                    Z_OK
                );
                let bound = (wdz.deflateBound)(&mut *s, n as c_ulong) as usize;
                let mut out = vec![0u8; bound];
                s.next_in = data.as_ptr();
                s.avail_in = n as c_uint;
                s.next_out = out.as_mut_ptr();
                s.avail_out = bound as c_uint;
                assert_eq!(
                    (wdz.deflate)(&mut *s, Z_FINISH),
                    Z_STREAM_END,
                    "one call within deflateBound ({n} bytes, wbits {wbits})"
                );
                let len = s.total_out as usize;
                assert_eq!((wdz.deflateEnd)(&mut *s), Z_OK);
                assert_eq!(sys_inflate(&out[..len], wbits), data);
            }
        }
    }
}

/// Dictionaries, gzip headers, priming, copies, resets and parameter changes mid-stream,
/// each checked by the system zlib's inflate.
pub fn stream_operations() {
    let (sys, wdz) = libs();
    let data = corpus(400_000, 11);
    let dict = b"deflate stream the zip engine of nginx 1234";
    // SAFETY: zlib's prototypes; all buffers outlive the streams using them.
    unsafe {
        // Dictionary: Z_NEED_DICT with the dictionary's adler, then the data.
        let mut s = ZStream::new();
        assert_eq!(
            (wdz.deflateInit2_)(&mut *s, 6, 8, 15, 8, 0, VERSION.as_ptr().cast(), SIZE),
            Z_OK
        );
        assert_eq!(
            (wdz.deflateSetDictionary)(&mut *s, dict.as_ptr(), dict.len() as c_uint),
            Z_OK
        );
        assert_eq!(s.adler, sys.adler(dict));
        let mut out = vec![0u8; 500_000];
        s.next_in = data.as_ptr();
        s.avail_in = data.len() as c_uint;
        s.next_out = out.as_mut_ptr();
        s.avail_out = out.len() as c_uint;
        assert_eq!((wdz.deflate)(&mut *s, Z_FINISH), Z_STREAM_END);
        out.truncate(s.total_out as usize);
        (wdz.deflateEnd)(&mut *s);
        let mut t = ZStream::new();
        assert_eq!(
            (sys.inflateInit2_)(&mut *t, 15, VERSION.as_ptr().cast(), SIZE),
            Z_OK
        );
        let mut back = vec![0u8; data.len()];
        t.next_in = out.as_ptr();
        t.avail_in = out.len() as c_uint;
        t.next_out = back.as_mut_ptr();
        t.avail_out = back.len() as c_uint;
        assert_eq!((sys.inflate)(&mut *t, Z_NO_FLUSH), Z_NEED_DICT);
        assert_eq!(t.adler, sys.adler(dict));
        assert_eq!(
            (sys.inflateSetDictionary)(&mut *t, dict.as_ptr(), dict.len() as c_uint),
            Z_OK
        );
        assert_eq!((sys.inflate)(&mut *t, Z_NO_FLUSH), Z_STREAM_END);
        assert!(back == data);
        (sys.inflateEnd)(&mut *t);

        // gzip header fields written by us, read by zlib (and the reverse).
        for (a, b) in [(wdz, sys), (sys, wdz)] {
            let name = CString::new("file.txt").unwrap();
            let mut h: GzHeader = std::mem::zeroed();
            h.name = name.as_ptr() as *mut u8;
            h.time = 1_700_000_000;
            h.os = 3;
            let mut s = ZStream::new();
            assert_eq!(
                (a.deflateInit2_)(&mut *s, 6, 8, 31, 8, 0, VERSION.as_ptr().cast(), SIZE),
                Z_OK
            );
            assert_eq!((a.deflateSetHeader)(&mut *s, &mut h), Z_OK);
            let mut out = vec![0u8; 500_000];
            s.next_in = data.as_ptr();
            s.avail_in = data.len() as c_uint;
            s.next_out = out.as_mut_ptr();
            s.avail_out = out.len() as c_uint;
            assert_eq!((a.deflate)(&mut *s, Z_FINISH), Z_STREAM_END);
            out.truncate(s.total_out as usize);
            (a.deflateEnd)(&mut *s);
            let mut t = ZStream::new();
            assert_eq!(
                (b.inflateInit2_)(&mut *t, 31, VERSION.as_ptr().cast(), SIZE),
                Z_OK
            );
            let mut nb = [0u8; 64];
            let mut g: GzHeader = std::mem::zeroed();
            g.name = nb.as_mut_ptr();
            g.name_max = 64;
            assert_eq!((b.inflateGetHeader)(&mut *t, &mut g), Z_OK);
            let mut back = vec![0u8; data.len()];
            t.next_in = out.as_ptr();
            t.avail_in = out.len() as c_uint;
            t.next_out = back.as_mut_ptr();
            t.avail_out = back.len() as c_uint;
            assert_eq!((b.inflate)(&mut *t, Z_NO_FLUSH), Z_STREAM_END);
            assert!(back == data);
            assert_eq!((g.done, g.time), (1, 1_700_000_000));
            assert_eq!(&nb[..9], b"file.txt\0");
            (b.inflateEnd)(&mut *t);
        }

        // deflateParams mid-stream, deflateCopy, deflateReset: each output inflates.
        let mut s = ZStream::new();
        assert_eq!(
            (wdz.deflateInit2_)(&mut *s, 6, 8, 31, 8, 0, VERSION.as_ptr().cast(), SIZE),
            Z_OK
        );
        let mut out = vec![0u8; 1 << 20];
        let half = data.len() / 2;
        s.next_in = data.as_ptr();
        s.avail_in = half as c_uint;
        s.next_out = out.as_mut_ptr();
        s.avail_out = out.len() as c_uint;
        assert_eq!((wdz.deflate)(&mut *s, Z_NO_FLUSH), Z_OK);
        assert_eq!((wdz.deflateParams)(&mut *s, 1, 0), Z_OK);
        // A copy taken here finishes the same stream independently.
        let mut c = ZStream::new();
        assert_eq!((wdz.deflateCopy)(&mut *c, &mut *s), Z_OK);
        let mut out2 = out.clone();
        let done = s.total_out as usize;
        c.next_out = out2.as_mut_ptr().add(done);
        c.avail_out = (out2.len() - done) as c_uint;
        c.next_in = data.as_ptr().add(half);
        c.avail_in = (data.len() - half) as c_uint;
        assert_eq!((wdz.deflate)(&mut *c, Z_FINISH), Z_STREAM_END);
        let n2 = c.total_out as usize;
        assert_eq!((wdz.deflateEnd)(&mut *c), Z_OK);
        s.next_in = data.as_ptr().add(half);
        s.avail_in = (data.len() - half) as c_uint;
        assert_eq!((wdz.deflate)(&mut *s, Z_FINISH), Z_STREAM_END);
        let n1 = s.total_out as usize;
        assert_eq!(sys_inflate(&out[..n1], 31), data);
        assert_eq!(sys_inflate(&out2[..n2], 31), data);
        // Reset and reuse.
        assert_eq!((wdz.deflateReset)(&mut *s), Z_OK);
        assert_eq!((s.total_in, s.total_out), (0, 0));
        s.next_in = data.as_ptr();
        s.avail_in = data.len() as c_uint;
        s.next_out = out.as_mut_ptr();
        s.avail_out = out.len() as c_uint;
        assert_eq!((wdz.deflate)(&mut *s, Z_FINISH), Z_STREAM_END);
        assert_eq!(sys_inflate(&out[..s.total_out as usize], 31), data);
        assert_eq!((wdz.deflateEnd)(&mut *s), Z_OK);

        // deflatePrime on a raw stream: inflatePrime of the same bits reads it.
        let mut s = ZStream::new();
        assert_eq!(
            (wdz.deflateInit2_)(&mut *s, 6, 8, -15, 8, 0, VERSION.as_ptr().cast(), SIZE),
            Z_OK
        );
        assert_eq!((wdz.deflatePrime)(&mut *s, 5, 0x15), Z_OK);
        s.next_in = data.as_ptr();
        s.avail_in = data.len() as c_uint;
        s.next_out = out.as_mut_ptr();
        s.avail_out = out.len() as c_uint;
        assert_eq!((wdz.deflate)(&mut *s, Z_FINISH), Z_STREAM_END);
        let n = s.total_out as usize;
        (wdz.deflateEnd)(&mut *s);
        let mut t = ZStream::new();
        assert_eq!(
            (sys.inflateInit2_)(&mut *t, -15, VERSION.as_ptr().cast(), SIZE),
            Z_OK
        );
        // The first 5 bits are the primed ones: skip them by priming the inflater with
        // the first byte's low 5 bits consumed.
        let mut back = vec![0u8; data.len()];
        assert_eq!(out[0] & 0x1f, 0x15);
        assert_eq!((sys.inflatePrime)(&mut *t, 3, (out[0] >> 5) as c_int), Z_OK);
        t.next_in = out.as_ptr().add(1);
        t.avail_in = (n - 1) as c_uint;
        t.next_out = back.as_mut_ptr();
        t.avail_out = back.len() as c_uint;
        assert_eq!((sys.inflate)(&mut *t, Z_NO_FLUSH), Z_STREAM_END);
        assert!(back == data);
        (sys.inflateEnd)(&mut *t);

        // Bad calls: zlib's codes.
        let mut s = ZStream::new();
        assert_eq!(
            (wdz.deflateInit2_)(&mut *s, 10, 8, 15, 8, 0, VERSION.as_ptr().cast(), SIZE),
            Z_STREAM_ERROR
        );
        assert_eq!(
            (wdz.deflateInit2_)(&mut *s, 6, 8, 15, 8, 0, b"2.0\0".as_ptr().cast(), SIZE),
            -6
        );
        assert_eq!(
            (wdz.deflate)(&mut *s, Z_FINISH),
            Z_STREAM_ERROR,
            "deflate on an unset stream"
        );
        assert_eq!((wdz.deflateEnd)(std::ptr::null_mut()), Z_STREAM_ERROR);
        assert_eq!(
            (wdz.deflateInit2_)(&mut *s, 6, 8, 15, 8, 0, VERSION.as_ptr().cast(), SIZE),
            Z_OK
        );
        s.next_out = out.as_mut_ptr();
        s.avail_out = 0;
        assert_eq!((wdz.deflate)(&mut *s, Z_NO_FLUSH), Z_BUF_ERROR);
        assert_eq!((wdz.deflate)(&mut *s, 9), Z_STREAM_ERROR);
        assert_eq!((wdz.deflateEnd)(&mut *s), Z_OK);
    }
}

/// The gz* file API: files written by one library read by the other.
pub fn gz_files() {
    let (sys, wdz) = libs();
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(1_000_000, 21);
    // SAFETY: zlib's prototypes; gzFile handles used until closed.
    unsafe {
        for (a, b) in [(wdz, sys), (sys, wdz)] {
            let path =
                CString::new(dir.path().join(format!("{}.gz", a.name)).to_str().unwrap()).unwrap();
            let f = (a.gzopen)(path.as_ptr(), b"wb6\0".as_ptr().cast());
            assert!(!f.is_null());
            assert_eq!(
                (a.gzwrite)(f, data.as_ptr().cast(), data.len() as c_uint),
                data.len() as c_int
            );
            assert_eq!((a.gzputs)(f, b"\nline two\n\0".as_ptr().cast()), 10);
            assert_eq!(
                (a.gzprintf)(
                    f,
                    b"%s %d\n\0".as_ptr().cast(),
                    b"number\0".as_ptr(),
                    42 as c_int
                ),
                10
            );
            assert_eq!((a.gzclose)(f), Z_OK);
            let f = (b.gzopen)(path.as_ptr(), b"rb\0".as_ptr().cast());
            assert!(!f.is_null());
            let mut back = vec![0u8; data.len()];
            assert_eq!(
                (b.gzread)(f, back.as_mut_ptr().cast(), data.len() as c_uint),
                data.len() as c_int
            );
            assert!(back == data, "{} -> {}", a.name, b.name);
            let mut line = [0 as std::ffi::c_char; 64];
            assert!(!(b.gzgets)(f, line.as_mut_ptr(), 64).is_null());
            assert!(!(b.gzgets)(f, line.as_mut_ptr(), 64).is_null());
            assert_eq!(cstr(line.as_ptr()), "line two\n");
            assert!(!(b.gzgets)(f, line.as_mut_ptr(), 64).is_null());
            assert_eq!(cstr(line.as_ptr()), "number 42\n");
            assert_eq!((b.gztell)(f), data.len() as i64 + 20);
            assert_eq!((b.gzseek)(f, 1000, 0), 1000);
            let mut x = [0u8; 10];
            assert_eq!((b.gzread)(f, x.as_mut_ptr().cast(), 10), 10);
            assert_eq!(x[..], data[1000..1010]);
            assert_eq!((b.gzclose)(f), Z_OK);
        }
    }
}

/// inflateCopy mid-stream, inflateSync after damage at a full-flush point, inflateReset2
/// to another format: the same codes and bytes from both libraries.
pub fn inflate_copy_sync_reset() {
    let (sys, wdz) = libs();
    let data = corpus(200_000, 31);
    // A zlib stream with full flushes every 20 000 bytes (sync points).
    let (z, marks, _) = deflate_with(
        sys,
        &data,
        (6, -15, 8, 0),
        &[20_000],
        1 << 16,
        &[Z_FULL_FLUSH],
    );
    assert!(marks.len() > 3);
    let run = |lib: &Lib| -> (Vec<u8>, Vec<u8>, c_int, Vec<u8>, c_int) {
        // SAFETY: zlib's prototypes; buffers outlive the streams.
        unsafe {
            let mut s = ZStream::new();
            assert_eq!(
                (lib.inflateInit2_)(&mut *s, -15, VERSION.as_ptr().cast(), SIZE),
                Z_OK
            );
            let mut a = vec![0u8; data.len()];
            s.next_in = z.as_ptr();
            s.avail_in = (z.len() / 2) as c_uint;
            s.next_out = a.as_mut_ptr();
            s.avail_out = a.len() as c_uint;
            assert_eq!((lib.inflate)(&mut *s, Z_NO_FLUSH), Z_OK);
            let half_out = s.total_out as usize;
            let mut c = ZStream::new();
            assert_eq!((lib.inflateCopy)(&mut *c, &mut *s), Z_OK);
            let mut b = a.clone();
            c.next_out = b.as_mut_ptr().add(half_out);
            c.next_in = z.as_ptr().add(z.len() / 2);
            c.avail_in = (z.len() - z.len() / 2) as c_uint;
            s.next_in = z.as_ptr().add(z.len() / 2);
            s.avail_in = (z.len() - z.len() / 2) as c_uint;
            assert_eq!((lib.inflate)(&mut *s, Z_NO_FLUSH), Z_STREAM_END);
            assert_eq!((lib.inflate)(&mut *c, Z_NO_FLUSH), Z_STREAM_END);
            (lib.inflateEnd)(&mut *c);
            // Damage: skip the first 1000 bytes, then sync to the next full-flush point.
            assert_eq!((lib.inflateReset)(&mut *s), Z_OK);
            let mut d = vec![0u8; data.len()];
            s.next_in = z.as_ptr().add(1000);
            s.avail_in = (z.len() - 1000) as c_uint;
            s.next_out = d.as_mut_ptr();
            s.avail_out = d.len() as c_uint;
            let r = (lib.inflateSync)(&mut *s);
            let r2 = if r == Z_OK {
                (lib.inflate)(&mut *s, Z_NO_FLUSH)
            } else {
                r
            };
            d.truncate(s.total_out as usize);
            // Reset to zlib format: a raw stream is now a header error.
            assert_eq!((lib.inflateReset2)(&mut *s, 15), Z_OK);
            let mut e = vec![0u8; 100];
            s.next_in = z.as_ptr();
            s.avail_in = z.len() as c_uint;
            s.next_out = e.as_mut_ptr();
            s.avail_out = 100;
            let r3 = (lib.inflate)(&mut *s, Z_NO_FLUSH);
            (lib.inflateEnd)(&mut *s);
            (a, b, r2, d, r3)
        }
    };
    let (a1, b1, r1, d1, e1) = run(sys);
    let (a2, b2, r2, d2, e2) = run(wdz);
    assert!(a1 == data && b1 == data, "system zlib copy");
    assert!(a2 == data && b2 == data, "our copy finishes the stream");
    assert_eq!(r1, r2, "inflateSync then inflate");
    assert!(d1 == d2, "bytes after the sync point");
    assert!(d2.len() > 100_000 && data.ends_with(&d2));
    assert_eq!(e1, e2);
    assert_eq!(e1, Z_DATA_ERROR);
}

/// deflateEnd after input but before Z_FINISH is Z_DATA_ERROR in both libraries; after
/// the end, Z_OK.
pub fn deflate_end_codes() {
    let (sys, wdz) = libs();
    let data = corpus(100_000, 41);
    for wbits in FORMATS {
        let mut codes = Vec::new();
        for lib in [sys, wdz] {
            // SAFETY: zlib's prototypes; buffers outlive the streams.
            unsafe {
                let mut out = vec![0u8; 200_000];
                for finish in [false, true] {
                    let mut s = ZStream::new();
                    assert_eq!(
                        (lib.deflateInit2_)(
                            &mut *s,
                            6,
                            8,
                            wbits,
                            8,
                            0,
                            VERSION.as_ptr().cast(),
                            SIZE
                        ),
                        Z_OK
                    );
                    s.next_in = data.as_ptr();
                    s.avail_in = data.len() as c_uint;
                    s.next_out = out.as_mut_ptr();
                    s.avail_out = out.len() as c_uint;
                    let r = (lib.deflate)(&mut *s, if finish { Z_FINISH } else { Z_NO_FLUSH });
                    codes.push((r, (lib.deflateEnd)(&mut *s)));
                }
            }
        }
        assert_eq!(
            codes[0..2],
            codes[2..4],
            "wbits {wbits}: (deflate, deflateEnd) codes"
        );
        assert_eq!(codes[0].1, Z_DATA_ERROR);
        assert_eq!(codes[1], (Z_STREAM_END, Z_OK));
    }
}
