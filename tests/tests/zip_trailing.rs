//! What follows the last gzip member (issue 12, item 2), compared with the system's gzip
//! (gzip(1)'s rules, as gzip 1.12 applies them): another member when the gzip magic
//! follows; zeros to the end are padding, ignored (a warning and exit status 2 only with
//! -v); anything else, even a member after padding, is "decompression OK, trailing
//! garbage ignored" with exit status 2 (-q silences the message, not the status); a
//! single trailing nonzero byte is "unexpected end of file", status 1. `wd zip -d` must
//! give the same exit status and the same stdout bytes, on the model and in software.
//!
//! The library (Decompressor, WdDecoder, decompress, wd_inflate) accepts zero padding and
//! refuses other trailing bytes unless asked to ignore them: checked here too.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use wd_tests::build::wd_command as wd_bin;

use hisi_zip::{Decompressor, Format, Offload, WdDecoder};

/// Runs `prog args` on `input`: (exit code, stdout, stderr).
fn run(prog: &Path, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(prog)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn gzip_c(data: &[u8]) -> Vec<u8> {
    let (rc, gz, err) = run(Path::new("gzip"), &["-c", "-n"], &[], data);
    assert_eq!(rc, 0, "gzip -c: {err}");
    gz
}

/// The cases: name, file bytes.
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let a = gzip_c(b"abc");
    let b = gzip_c(b"second member\n");
    let cat = |parts: &[&[u8]]| parts.concat();
    vec![
        ("no padding", a.clone()),
        ("two members", cat(&[&a, &b])),
        ("10 zeros", cat(&[&a, &[0; 10]])),
        ("512 zeros", cat(&[&a, &[0; 512]])),
        ("one zero", cat(&[&a, &[0]])),
        ("two members, then 512 zeros", cat(&[&a, &b, &[0; 512]])),
        ("garbage", cat(&[&a, b"hello"])),
        ("zeros then garbage", cat(&[&a, &[0; 3], b"zz"])),
        ("member after 10 zeros", cat(&[&a, &[0; 10], &b])),
        ("member after 1 zero", cat(&[&a, &[0], &b])),
        ("0x1f, not the magic", cat(&[&a, &[0x1f, 0x41]])),
        ("one garbage byte", cat(&[&a, b"x"])),
        ("lone 0x1f", cat(&[&a, &[0x1f]])),
        ("truncated next header", cat(&[&a, &[0x1f, 0x8b, 8]])),
        ("only zeros", vec![0; 10]),
    ]
}

#[test]
fn wd_zip_d_treats_what_follows_the_last_member_as_gzip_does() {
    let wd = wd_bin();
    let slots = tempfile::tempdir().unwrap();
    let slots = slots.path().to_str().unwrap().to_owned();
    for (name, file) in cases() {
        for flags in [&["-d", "-c"][..], &["-d", "-c", "-q"], &["-d", "-c", "-v"]] {
            let (grc, gout, gerr) = run(Path::new("gzip"), flags, &[], &file);
            for devices in ["model", "none"] {
                let args: Vec<&str> = std::iter::once("zip")
                    .chain(flags.iter().copied())
                    .collect();
                let env = [("WD_DEVICES", devices), ("WD_MODEL_DIR", slots.as_str())];
                let (wrc, wout, werr) = run(&wd, &args, &env, &file);
                let what = format!("{name} {flags:?} {devices}: gzip said {gerr:?}, wd {werr:?}");
                assert_eq!(wrc, grc, "exit status: {what}");
                assert_eq!(wout, gout, "stdout: {what}");
                // The same warning, or none.
                for w in ["trailing garbage ignored", "trailing zero bytes ignored"] {
                    assert_eq!(werr.contains(w), gerr.contains(w), "{w}: {what}");
                }
            }
        }
    }
}

#[test]
fn the_library_accepts_zero_padding_and_refuses_other_trailing_bytes() {
    let a = gzip_c(b"abc");
    for (name, file) in cases() {
        let gzip_ok = matches!(
            name,
            "no padding" | "two members" | "10 zeros" | "512 zeros" | "one zero"
        ) || name == "two members, then 512 zeros";
        let want: &[u8] = if name.starts_with("two members") {
            b"abcsecond member\n"
        } else {
            b"abc"
        };
        let r = hisi_zip::decompress_with(Format::Gzip, &file, Offload::Never);
        match r {
            Ok(out) => {
                assert!(gzip_ok, "{name}: accepted");
                assert_eq!(out, want, "{name}");
            }
            Err(e) => assert!(!gzip_ok, "{name}: {e}"),
        }
        // Byte by byte through a streaming decoder: the same verdict.
        let mut d = WdDecoder::with_offload(Trickle(&file), Format::Gzip, Offload::Never).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            d.read_to_end(&mut out).is_ok(),
            gzip_ok,
            "{name} (trickled)"
        );
    }
    // Asked to, the garbage is ignored and counted; zeros are counted.
    let mut d = Decompressor::with_offload(Format::Gzip, Offload::Never).unwrap();
    d.ignore_trailing_garbage(true);
    let mut out = Vec::new();
    d.decompress(&[&a[..], &[0, 0], b"junk"].concat(), &mut out)
        .unwrap();
    d.finish(&mut out).unwrap();
    assert_eq!(out, b"abc");
    assert_eq!((d.trailing_zeros(), d.trailing_garbage()), (2, 4));
    // zlib and raw deflate take nothing after their end, zeros included.
    let z = hisi_zip::compress_with(Format::Zlib, 6, b"abc", Offload::Never).unwrap();
    assert!(
        hisi_zip::decompress_with(Format::Zlib, &[&z[..], &[0]].concat(), Offload::Never).is_err()
    );
}

/// A reader that hands out one byte at a time.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}
