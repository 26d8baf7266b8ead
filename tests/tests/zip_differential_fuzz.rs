//! Differential fuzz of compression (issue 12): random data (text, random, zeros, mixes,
//! short repeats) of random sizes, random levels and formats, random chunk and flush
//! patterns, through wd compress -> zlib-rs decompress and zlib-rs compress -> wd
//! decompress (one-shot and streaming in random pieces), on the device model (and a share
//! on wd's software path); every result compared byte for byte, and every truncation of a
//! stream must be an error. Fixed seed (`WD_DIFF_SEED` to change it, `WD_DIFF_CASES` for
//! more cases); the seed and case are printed on a failure.

use std::io;

use hisi_zip::{Compressor, Decompressor, Format, Offload};
use wd_core::select::{self, Devices};
use wd_tests::rng::Rng;
use wd_tests::zref::{self, Flush};

fn model() {
    let dir = std::env::temp_dir().join(format!("wd-zip-diff-{}", std::process::id()));
    std::env::set_var("WD_MODEL_DIR", &dir);
    hisi_model::plug();
    select::set_process(Devices::Model);
    select::activate_process().expect("device model");
}

fn data(rng: &mut Rng) -> Vec<u8> {
    let n = match rng.below(8) {
        0 => rng.below(4) as usize,
        1..=5 => rng.log_size(256 << 10),
        _ => rng.log_size(1 << 20),
    };
    match rng.below(5) {
        0 => wd_tests::corpus::text(n, rng.next_u64()),
        1 => rng.bytes(n),
        2 => vec![rng.below(256) as u8; n],
        3 => {
            // A short pattern repeated (long matches at small distances).
            let len = rng.range(1, 16);
            let p = rng.bytes(len);
            p.iter().copied().cycle().take(n).collect()
        }
        _ => {
            let mut v = wd_tests::corpus::text(n, rng.next_u64());
            let mut p = 0;
            while p < n {
                let l = rng.log_size(32 << 10).min(n - p);
                if rng.chance(1, 2) {
                    v[p..p + l].copy_from_slice(&rng.bytes(l));
                }
                p += l;
            }
            v
        }
    }
}

/// Chunk lengths covering `n` bytes: tiny, medium or large pieces.
fn pieces(rng: &mut Rng, n: usize) -> Vec<usize> {
    // Tiny pieces only for small inputs (each piece can be a device request).
    let tiny = if n <= 16 << 10 { 16 } else { 1024 };
    let max = [tiny, 4096, 256 << 10, n.max(1)][rng.below(4) as usize];
    let mut v = Vec::new();
    let mut left = n;
    while left > 0 {
        let l = rng.log_size(max).min(left);
        v.push(l);
        left -= l;
    }
    v
}

fn wd_compress(
    rng: &mut Rng,
    f: Format,
    level: u32,
    off: Offload,
    d: &[u8],
) -> io::Result<Vec<u8>> {
    if rng.chance(1, 4) {
        return hisi_zip::compress_with(f, level, d, off);
    }
    let mut c = Compressor::with_options(f, level, off, None)?;
    let mut out = Vec::new();
    let mut p = 0;
    for l in pieces(rng, d.len()) {
        c.compress(&d[p..p + l], &mut out)?;
        p += l;
        if rng.chance(1, 5) {
            c.flush(&mut out)?;
        }
    }
    c.finish(&mut out)?;
    Ok(out)
}

fn wd_decompress(rng: &mut Rng, f: Format, off: Offload, z: &[u8]) -> io::Result<Vec<u8>> {
    if rng.chance(1, 3) {
        return hisi_zip::decompress_with(f, z, off);
    }
    let mut d = Decompressor::with_offload(f, off)?;
    let mut out = Vec::new();
    let mut p = 0;
    for l in pieces(rng, z.len()) {
        d.decompress(&z[p..p + l], &mut out)?;
        p += l;
    }
    d.finish(&mut out)?;
    while d.output_pending() {
        d.finish(&mut out)?;
    }
    Ok(out)
}

#[test]
fn random_data_and_chunking_agree_with_zlib_both_ways() {
    model();
    let seed: u64 = std::env::var("WD_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_1202);
    let cases: u64 = std::env::var("WD_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 40 } else { 400 });
    let mut rng = Rng::new(seed);
    let (mut bytes, mut device) = (0u64, 0u64);
    let verbose = std::env::var_os("WD_DIFF_VERBOSE").is_some();
    for case in 0..cases {
        let t = std::time::Instant::now();
        let d = data(&mut rng);
        let f = [Format::Gzip, Format::Zlib, Format::Deflate][rng.below(3) as usize];
        let level = rng.range(1, 9) as u32;
        let off = if rng.chance(1, 5) {
            Offload::Never
        } else {
            Offload::Auto
        };
        let what = format!(
            "seed {seed} case {case}: {} bytes, {f}, level {level}, {off:?}",
            d.len()
        );
        bytes += d.len() as u64;

        // wd -> zlib-rs.
        let z = wd_compress(&mut rng, f, level, off, &d).unwrap_or_else(|e| panic!("{what}: {e}"));
        match zref::inflate(f, &z, d.len()) {
            Ok(back) => assert!(
                back == d,
                "{what}: zlib-rs reads other bytes from wd's stream"
            ),
            Err(e) => panic!("{what}: zlib-rs refuses wd's stream: {e}"),
        }

        // zlib-rs -> wd, with a random chunk and flush pattern on the zlib side.
        let mut pattern = Vec::new();
        for l in pieces(&mut rng, d.len()) {
            let fl = match rng.below(6) {
                0 => Flush::Sync,
                1 => Flush::Full,
                _ => Flush::None,
            };
            pattern.push((l, fl));
        }
        let zl = zref::deflate_chunked(f, level as i32, &d, &pattern);
        let before = hisi_zip::stats().offloaded;
        let back = wd_decompress(&mut rng, f, off, &zl)
            .unwrap_or_else(|e| panic!("{what}: wd refuses zlib's stream: {e}"));
        assert!(back == d, "{what}: wd reads other bytes from zlib's stream");
        device += u64::from(hisi_zip::stats().offloaded > before);

        // Any truncation is an error, never a short success.
        if !zl.is_empty() {
            let cut = rng.range(1, zl.len().min(64));
            let short = &zl[..zl.len() - cut];
            if let Ok(got) = wd_decompress(&mut rng, f, off, short) {
                panic!(
                    "{what}: a stream cut by {cut} bytes decoded to {} bytes",
                    got.len()
                );
            }
        }
        if verbose {
            eprintln!("{what}: {:?}", t.elapsed());
        }
    }
    println!("{cases} cases, {bytes} bytes, {device} decompressions on the device model");
    assert!(
        device > cases / 4,
        "the device path was hardly used: {device} of {cases}"
    );
}
