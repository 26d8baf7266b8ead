//! Decompression memory is bounded whatever the expansion ratio (issue 12, item 1): a
//! gzip stream of 1 GiB of zeros (about 1 MiB compressed, made here without holding the
//! output) decompressed through the Rust API with a small read buffer, the C API in one
//! `wd_inflate` stream over the whole file with a 64 KiB output buffer, and `wd zip -d -c`,
//! on the device model and in software. Each runs in a child process whose peak RSS
//! (`ru_maxrss` from `wait4`) must stay under [`PEAK_LIMIT`]; the output is checked for
//! length and content. Also: the CLI succeeds under a 512 MiB address-space limit.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use wd_tests::build::{libwd_dir, profile_dir, wd_command as wd_bin};

use zlib_rs::{Deflate, DeflateFlush};

/// Zeros in the test stream.
const ZEROS: u64 = 1 << 30;
/// Peak RSS a child may reach (before the fix: 1.1 GB for `wd zip -d` on 1 GiB of input
/// expanding 1000 times per 1 MiB read).
const PEAK_LIMIT: u64 = 160 << 20;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A gzip file of `ZEROS` zeros: one deflate piece for the first 64 MiB, then the same
/// byte-aligned piece for each further 64 MiB (it refers only to zeros in the window, so
/// it decodes the same anywhere after the first), then the final block and the trailer.
fn zeros_gz(path: &Path) {
    const PIECE: usize = 64 << 20;
    let zero = vec![0u8; PIECE];
    let mut d = Deflate::new(9, false, 15);
    let mut piece = |input: &[u8], flush: DeflateFlush| {
        let mut out = vec![0u8; 1 << 20];
        let before = d.total_out();
        let r = d.compress(input, &mut out, flush);
        assert!(r.is_ok());
        out.truncate((d.total_out() - before) as usize);
        out
    };
    let first = piece(&zero, DeflateFlush::SyncFlush);
    let next = piece(&zero, DeflateFlush::SyncFlush);
    let last = piece(&[], DeflateFlush::Finish);
    let mut crc = 0;
    for _ in 0..ZEROS / PIECE as u64 {
        crc = zlib_rs::crc32::crc32(crc, &zero);
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&hisi_zip::header::GZIP_HEADER).unwrap();
    f.write_all(&first).unwrap();
    for _ in 1..ZEROS / PIECE as u64 {
        f.write_all(&next).unwrap();
    }
    f.write_all(&last).unwrap();
    f.write_all(&hisi_zip::header::gzip_trailer(crc, ZEROS as u32))
        .unwrap();
    f.flush().unwrap();
}

fn fixture() -> PathBuf {
    static MADE: Once = Once::new();
    let p = profile_dir().join("zip_bounded_zeros.gz");
    MADE.call_once(|| zeros_gz(&p));
    p
}

thread_local! {
    /// The first 4 KiB of the last [`run`]'s stdout.
    static HEAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `cmd` with stdin from `input`, counting its stdout; returns (exit ok, stdout
/// length, stdout all zeros, peak RSS in bytes, stderr).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives the peak RSS
fn run(mut cmd: Command, input: &Path, rlimit_as: Option<u64>) -> (bool, u64, bool, u64, String) {
    cmd.stdin(std::fs::File::open(input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(lim) = rlimit_as {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::rlimit {
                    rlim_cur: lim,
                    rlim_max: lim,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    HEAD.with(|h| h.borrow_mut().clear());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).ok();
        s
    });
    let (mut n, mut zeros) = (0u64, true);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = stdout.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        HEAD.with(|h| {
            let mut h = h.borrow_mut();
            let room = 4096usize.saturating_sub(h.len()).min(k);
            h.extend_from_slice(&buf[..room]);
        });
        zeros &= buf[..k].iter().all(|&b| b == 0);
        n += k as u64;
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which nothing else reaps.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(pid, child.id() as i32);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let peak = ru.ru_maxrss as u64 * 1024;
    (ok, n, zeros, peak, err.join().unwrap())
}

fn check(what: &str, r: (bool, u64, bool, u64, String), want_len: u64) {
    let (ok, n, zeros, peak, err) = r;
    eprintln!("{what}: {n} bytes, peak RSS {} MiB", peak >> 20);
    assert!(ok, "{what} failed: {err}");
    assert_eq!(n, want_len, "{what}: output length ({err})");
    assert!(zeros, "{what}: output not all zeros");
    assert!(
        peak < PEAK_LIMIT,
        "{what}: peak RSS {} MiB, limit {} MiB",
        peak >> 20,
        PEAK_LIMIT >> 20
    );
}

fn devices() -> [(&'static str, &'static str); 2] {
    [("model", "model"), ("software", "none")]
}

/// The child side of `rust_api_*`: decompresses stdin with WdDecoder through an 8 KiB
/// read buffer and writes it to stdout.
#[test]
fn child_rust_api() {
    if std::env::var_os("ZIP_BOUNDED_CHILD").is_none() {
        return;
    }
    if std::env::var("WD_DEVICES").as_deref() == Ok("model") {
        hisi_model::plug();
        wd_core::select::set_process(wd_core::select::Devices::Model);
        wd_core::select::activate_process().expect("device model");
    }
    let mut d =
        hisi_zip::WdDecoder::new(std::io::stdin().lock(), hisi_zip::Format::Gzip).expect("decoder");
    let offloaded = d.decompressor().is_offloaded();
    assert_eq!(
        offloaded,
        std::env::var("WD_DEVICES").as_deref() == Ok("model")
    );
    let (mut total, mut zeros) = (0u64, true);
    let mut buf = vec![0u8; 8 << 10];
    loop {
        let n = d.read(&mut buf).expect("decompressing");
        if n == 0 {
            break;
        }
        zeros &= buf[..n].iter().all(|&b| b == 0);
        total += n as u64;
    }
    println!("ZIP_BOUNDED total {total} zeros {}", u8::from(zeros));
}

#[test]
fn rust_api_decompresses_a_1000x_expanding_stream_in_bounded_memory() {
    let gz = fixture();
    let slots = tempfile::tempdir().unwrap();
    for (mode, devices) in devices() {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "child_rust_api",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ZIP_BOUNDED_CHILD", "1")
        .env("WD_DEVICES", devices)
        .env("WD_MODEL_DIR", slots.path());
        let (ok, _, _, peak, err) = run(cmd, &gz, None);
        assert!(ok, "Rust API, {mode}: {err}");
        let text = HEAD.with(|h| String::from_utf8_lossy(&h.borrow()).into_owned());
        assert!(
            text.contains(&format!("ZIP_BOUNDED total {ZEROS} zeros 1")),
            "Rust API, {mode}: {text}{err}"
        );
        eprintln!("Rust API, {mode}: peak RSS {} MiB", peak >> 20);
        assert!(
            peak < PEAK_LIMIT,
            "Rust API, {mode}: peak RSS {} MiB",
            peak >> 20
        );
    }
}

#[test]
fn c_api_one_stream_with_a_64k_buffer_decompresses_in_bounded_memory() {
    let lib = libwd_dir();
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("zip_bounded");
    let st = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"])
        .arg("-I")
        .arg(root().join("capi/include"))
        .arg(root().join("tests/c/zip_bounded.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lwd", "-o"])
        .arg(&exe)
        .status()
        .unwrap();
    assert!(st.success(), "cc zip_bounded.c");
    let gz = fixture();
    let want = format!("rc 1 total {ZEROS} zeros 1");
    for (mode, devices) in devices() {
        let mut cmd = Command::new(&exe);
        cmd.arg(&gz)
            .env("WD_DEVICES", devices)
            .env("WD_MODEL_DIR", tmp.path().join("slots"));
        // The file arrives as an argument; stdin is unused. The program prints a summary.
        let (ok, n, _, peak, err) = run(cmd, &gz, None);
        assert!(ok, "C API, {mode}: {err}");
        assert!(n > 0);
        eprintln!("C API, {mode}: peak RSS {} MiB", peak >> 20);
        assert!(
            peak < PEAK_LIMIT,
            "C API, {mode}: peak RSS {} MiB",
            peak >> 20
        );
        let text = HEAD.with(|h| String::from_utf8_lossy(&h.borrow()).into_owned());
        assert!(text.contains(&want), "C API, {mode}: {text}");
        assert_eq!(text.contains("offloaded 1"), devices == "model", "{text}");
    }
}

#[test]
fn wd_zip_d_decompresses_a_1000x_expanding_stream_in_bounded_memory() {
    let gz = fixture();
    let slots = tempfile::tempdir().unwrap();
    for (mode, devices) in devices() {
        let mut cmd = Command::new(wd_bin());
        cmd.args(["zip", "-d", "-c"])
            .env("WD_DEVICES", devices)
            .env("WD_MODEL_DIR", slots.path());
        check(&format!("wd zip -d -c, {mode}"), run(cmd, &gz, None), ZEROS);
    }
    // Under a 512 MiB address-space limit (the reproducer's `ulimit -v`): no abort.
    let mut cmd = Command::new(wd_bin());
    cmd.args(["zip", "-d", "-c"]).env("WD_DEVICES", "none");
    check(
        "wd zip -d -c, 512 MiB",
        run(cmd, &gz, Some(512 << 20)),
        ZEROS,
    );
}
