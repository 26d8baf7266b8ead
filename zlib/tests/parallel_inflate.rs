//! Parallel inflate of independent segments (DESIGN.md, "Inflate") on a v3 device model
//! with two engines: libwdz's own output decodes its segments on several device streams at
//! once (the counters prove it), byte for byte and call for call as the system zlib;
//! marks that are not independent-segment boundaries (inside stored data, or followed by
//! a back-reference across them) are checked and dropped, never trusted; real ones in a
//! foreign stream (zlib's sync flush then full flush) are used; device errors mid-way and
//! a v2 device still decode exactly.

mod common;
use common::*;

use std::ffi::{c_int, c_uint};
use std::path::PathBuf;
use std::process::Command;

/// zlib, gzip, raw.
const FORMATS: [c_int; 3] = [15, 31, -15];

const MARK: [u8; 9] = [0, 0, 0xff, 0xff, 0, 0, 0, 0xff, 0xff];

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Before the library reads its configuration (first stream).
    ONCE.call_once(|| {
        std::env::set_var("WD_DEVICES", "model");
        std::env::set_var("WD_MODEL_API", "v3");
        std::env::set_var("WD_MODEL_ENGINES", "2");
        std::env::set_var("WD_ZLIB_STATS_DIR", stats_dir());
    });
}

fn counter(name: &str) -> u64 {
    std::panic::catch_unwind(|| counter_in(stats_dir(), name)).unwrap_or(0)
}

fn marks(z: &[u8]) -> usize {
    z.windows(MARK.len()).filter(|w| *w == MARK).count()
}

/// `lib`'s deflate driven step by step: each `(input, flush)` given whole, all output
/// taken (a large output window).
fn deflate_steps(lib: &Lib, wbits: c_int, level: c_int, steps: &[(&[u8], c_int)]) -> Vec<u8> {
    let mut s = deflate_init(lib, (level, wbits, 8, 0));
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    // SAFETY: zlib's prototypes on an initialised stream, buffers that outlive each call.
    unsafe {
        for (input, flush) in steps {
            s.next_in = input.as_ptr();
            s.avail_in = input.len() as c_uint;
            loop {
                s.next_out = buf.as_mut_ptr();
                s.avail_out = buf.len() as c_uint;
                let r = (lib.deflate)(&mut *s, *flush);
                assert!(r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR, "{r}");
                out.extend_from_slice(&buf[..buf.len() - s.avail_out as usize]);
                if s.avail_out != 0 {
                    break;
                }
            }
            assert_eq!(s.avail_in, 0);
        }
        (lib.deflateEnd)(&mut *s);
    }
    out
}

/// Inflates `z` with both libraries, whole and in pieces, and compares everything zlib
/// shows: output, final code, `avail_in` (trailing data untouched), totals, check.
fn same_as_zlib(z: &[u8], wbits: c_int, what: &str) -> Vec<u8> {
    let (sys, wdz) = libs();
    let mut tailed = z.to_vec();
    tailed.extend_from_slice(b"trailing garbage");
    for (ins, outs) in [
        (tailed.len(), 64 << 10),
        (tailed.len(), 3 << 20),
        (tailed.len(), 40 << 20),
        (5 << 20, 1 << 20),
    ] {
        let a = inflate_with(sys, &tailed, wbits, ins, outs);
        let b = inflate_with(wdz, &tailed, wbits, ins, outs);
        assert!(a.0 == b.0, "{what}: output, wbits {wbits} {ins}/{outs}");
        assert_eq!(a.2, b.2, "{what}: code, wbits {wbits} {ins}/{outs}");
        assert_eq!(a.2, Z_STREAM_END);
        let (la, lb) = (a.1.last().unwrap(), b.1.last().unwrap());
        assert_eq!(
            (la.avail_in, la.total_in, la.total_out),
            (lb.avail_in, lb.total_in, lb.total_out),
            "{what}: wbits {wbits} {ins}/{outs}"
        );
        if wbits >= 0 {
            assert_eq!(la.adler, lb.adler, "{what}: check");
        }
    }
    sys_inflate(z, wbits)
}

/// libwdz's whole-buffer output (as Python's `zlib.compress`) carries a mark before every
/// independent segment, is valid for the system zlib, and decodes on both engines at once
/// exactly as zlib decodes it (trailing data, totals, check).
#[test]
fn libwdz_segments_decode_in_parallel() {
    setup();
    let (_, wdz) = libs();
    let data = corpus(26 << 20, 11);
    for wbits in FORMATS {
        let z = deflate_steps(wdz, wbits, 6, &[(&data, Z_FINISH)]);
        // 8 MiB segments from a whole buffer: a mark before each but the first.
        assert!(marks(&z) >= 3, "marks in libwdz's output: {}", marks(&z));
        let before = counter("inflate_parallel_segments");
        assert!(same_as_zlib(&z, wbits, "libwdz output") == data);
        let after = counter("inflate_parallel_segments");
        assert!(
            after >= before + 2,
            "segments decoded in parallel, wbits {wbits}: {before} -> {after}"
        );
        // Streamed in 3 MiB pieces (each call sees part of a segment): the held
        // unfinished block is fed only up to the next segment, which is then taken.
        let (out, _, r) = inflate_with(&libs().1, &z, wbits, 3 << 20, 1 << 20);
        assert!(r == Z_STREAM_END && out == data);
        assert!(counter("inflate_parallel_segments") >= after + 2);
    }
    assert!(counter("inflate_offloaded") > 0);
}

/// Streamed deflate (1 MiB chunks and sync flushes) also marks independent segments
/// every 4 MiB of input, and they decode in parallel.
#[test]
fn chunked_deflate_is_marked_too() {
    setup();
    let (_, wdz) = libs();
    let data = corpus(20 << 20, 12);
    let steps: Vec<(&[u8], c_int)> = data
        .chunks(700_000)
        .enumerate()
        .map(|(i, c)| (c, if i % 5 == 4 { Z_SYNC_FLUSH } else { Z_NO_FLUSH }))
        .chain([(&[][..], Z_FINISH)])
        .collect();
    let z = deflate_steps(wdz, 15, 6, &steps);
    assert!(marks(&z) >= 3, "marks: {}", marks(&z));
    let before = counter("inflate_parallel_segments");
    assert!(same_as_zlib(&z, 15, "chunked libwdz output") == data);
    assert!(counter("inflate_parallel_segments") > before);
}

/// Marks that are no segment boundary are checked, not trusted: libwdz's output stored
/// inside another stream (level 0: marks inside stored blocks), and a crafted stream whose
/// data after a mark refers back across it. Both decode exactly; the speculative work
/// is dropped.
#[test]
fn false_marks_are_dropped() {
    setup();
    let (sys, wdz) = libs();
    // Ours inside a stored stream.
    let inner = deflate_steps(wdz, 15, 6, &[(&corpus(26 << 20, 13), Z_FINISH)]);
    assert!(marks(&inner) >= 3);
    let stored = deflate_steps(sys, 15, 0, &[(&inner, Z_FINISH)]);
    assert!(marks(&stored) >= 3);
    let dropped = counter("inflate_parallel_dropped");
    assert!(same_as_zlib(&stored, 15, "stored marks") == inner);
    assert!(
        counter("inflate_parallel_dropped") > dropped,
        "speculation dropped"
    );

    // A sync flush, an extra empty stored block (the mark), then data that repeats what
    // came before it: back-references across the mark.
    let mut r = fastrand::Rng::with_seed(7);
    let period: Vec<u8> = (0..16 << 10).map(|_| r.u8(..)).collect();
    let noise: Vec<u8> = (0..3 << 20).map(|_| r.u8(..)).collect();
    let mut a = noise[..3 << 19].to_vec();
    for _ in 0..4 {
        a.extend_from_slice(&period);
    }
    let mut b = Vec::new();
    for _ in 0..4 {
        b.extend_from_slice(&period);
    }
    b.extend_from_slice(&noise[3 << 19..]);
    for wbits in FORMATS {
        let head = deflate_steps(sys, wbits, 6, &[(&a, Z_SYNC_FLUSH)]);
        let whole = deflate_steps(sys, wbits, 6, &[(&a, Z_SYNC_FLUSH), (&b, Z_FINISH)]);
        assert!(whole.starts_with(&head) && head.ends_with(&MARK[..4]));
        let mut crafted = head.clone();
        crafted.extend_from_slice(&MARK[4..]);
        crafted.extend_from_slice(&whole[head.len()..]);
        let want: Vec<u8> = a.iter().chain(&b).copied().collect();
        let dropped = counter("inflate_parallel_dropped");
        assert!(same_as_zlib(&crafted, wbits, "back-reference across a mark") == want);
        assert!(
            counter("inflate_parallel_dropped") > dropped,
            "the segment after the mark refers back: dropped"
        );
    }
}

/// A foreign stream: zlib's sync flush followed by a full flush writes the mark at a real
/// independent boundary (the full flush resets the window): used; sync flushes alone
/// write no mark. Both decode exactly.
#[test]
fn foreign_flush_points() {
    setup();
    let (sys, _) = libs();
    let data = corpus(24 << 20, 14);
    for (pattern, want_marks) in [
        (&[Z_SYNC_FLUSH, Z_FULL_FLUSH][..], true),
        (&[Z_SYNC_FLUSH], false),
    ] {
        let mut steps: Vec<(&[u8], c_int)> = Vec::new();
        for c in data.chunks(3 << 20) {
            steps.push((c, Z_NO_FLUSH));
            for &f in pattern {
                steps.push((&[], f));
            }
        }
        steps.push((&[], Z_FINISH));
        let z = deflate_steps(sys, 31, 6, &steps);
        assert_eq!(marks(&z) >= 4, want_marks, "marks: {}", marks(&z));
        let before = counter("inflate_parallel_segments");
        assert!(same_as_zlib(&z, 31, "foreign flush points") == data);
        if want_marks {
            assert!(counter("inflate_parallel_segments") > before);
        }
    }
}

fn wdz_so() -> PathBuf {
    wdz_path()
}

fn python(code: &str, env: &[(&str, String)]) -> String {
    let mut c = Command::new("python3");
    c.arg("-c").arg(code);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("python3");
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python: {so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

/// Python's zlib under LD_PRELOAD: libwdz's output decoded while the device fails
/// requests (85% of them: the driver's retries exhaust now and then, on the stream's own
/// device stream or a fresh one) is still exact; the failures were met (replays or
/// dropped segments) and segments still went in parallel.
#[test]
fn device_errors_mid_way_still_exact() {
    let d = tempfile::tempdir().unwrap();
    let stats = tempfile::tempdir().unwrap();
    let gen = r#"
import random, sys, zlib
r = random.Random(5)
words = [b"nginx ", b"gzip ", b"the ", b"engine ", b"zip\n", b"1234 ", b"deflate "]
text = b"".join(r.choice(words) for _ in range(150_000))
parts = []
for i in range(24):
    parts.append(text[i * 1000:] + r.randbytes(40_000) + text[: i * 1000])
data = b"".join(parts)
open(sys.argv[1] + "/data", "wb").write(data)
open(sys.argv[1] + "/data.z", "wb").write(zlib.compress(data, 6))
"#;
    let base = |extra: &[(&'static str, String)]| {
        let mut v = vec![
            ("LD_PRELOAD", wdz_so().display().to_string()),
            ("WD_DEVICES", "model".into()),
            ("WD_MODEL_API", "v3".into()),
            ("WD_MODEL_ENGINES", "2".into()),
            ("WD_ZLIB_STATS_DIR", stats.path().display().to_string()),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let dir = d.path().display().to_string();
    python(
        &format!("import sys; sys.argv = ['x', {dir:?}]\n{gen}"),
        &base(&[]),
    );
    let z = std::fs::read(d.path().join("data.z")).unwrap();
    assert!(marks(&z) >= 3, "marks: {}", marks(&z));
    let dec = format!(
        r#"
import os, zlib
d = {dir:?}
data = open(d + "/data", "rb").read()
z = open(d + "/data.z", "rb").read()
for i in range(6):
    assert zlib.decompress(z) == data, i
    o = zlib.decompressobj()
    got = b"".join(o.decompress(z[j:j + (3 << 20)]) for j in range(0, len(z), 3 << 20))
    assert got + o.flush() == data and o.eof, i
print("ok", os.getpid())
"#
    );
    let o = python(&dec, &base(&[("WD_MODEL_ERROR_RATIO", "0.85".into())]));
    let pid: u32 = o.trim().strip_prefix("ok ").unwrap().parse().unwrap();
    let get = |n: &str| counter_of(stats.path(), pid, n);
    let (par, dropped, replays) = (
        get("inflate_parallel_segments"),
        get("inflate_parallel_dropped"),
        get("inflate_replay_error"),
    );
    eprintln!("parallel {par}, dropped {dropped}, replays {replays}");
    assert!(get("inflate_offloaded") >= 12);
    assert!(par > 0, "segments decoded in parallel");
    assert!(dropped + replays > 0, "device failures met");
}

/// `hisi_zip::Compressor::restart_window` on the device: the stream goes on across it
/// and its trailer (written by the device, combined in software) checks for zlib.
#[test]
fn compressor_restart_keeps_the_trailer() {
    setup();
    // This binary's own copy of the driver (libwdz has its own): the model plugged here.
    hisi_model::plug();
    let a = corpus(3 << 20, 15);
    let b = corpus(2 << 20, 16);
    for (format, wbits) in [
        (hisi_zip::Format::Zlib, 15),
        (hisi_zip::Format::Gzip, 31),
        (hisi_zip::Format::Deflate, -15),
    ] {
        let mut c = hisi_zip::Compressor::new(format, 6).unwrap();
        assert!(c.is_offloaded(), "{:?}", c.fallback_reason());
        let mut out = Vec::new();
        c.compress(&a, &mut out).unwrap();
        c.restart_window(&mut out).unwrap();
        let cut = out.len();
        c.compress(&b, &mut out).unwrap();
        c.restart_window(&mut out).unwrap();
        c.finish(&mut out).unwrap();
        let want: Vec<u8> = a.iter().chain(&b).copied().collect();
        assert!(sys_inflate(&out, wbits) == want, "{format}");
        if wbits < 0 {
            // What follows the restart decodes on its own (no reference before it).
            assert!(sys_inflate(&out[cut..], -15) == b);
        }
    }
}
