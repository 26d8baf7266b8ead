//! Python's `zlib` and `gzip` modules under `LD_PRELOAD=libwdz.so` on the device model:
//! every output is checked by the system zlib in another Python, and the process's
//! counters prove the offload (and, with injected device errors, the hand-over).

use std::path::{Path, PathBuf};
use std::process::Command;

fn wdz() -> PathBuf {
    // `cargo test` builds the cdylib next to the test binaries (deps/); `cargo build`
    // puts it one level up.
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let fresh = deps.join("libwdz.so");
    if fresh.is_file() {
        return fresh;
    }
    deps.parent().unwrap().join("libwdz.so")
}

fn python(args: &[&str], dir: &Path, env: &[(&str, String)]) -> (String, u32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python_zlib.py");
    let mut c = Command::new("python3");
    c.arg(&script).args(args).arg(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python {args:?}: {so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (so, pid)
}

fn counters(dir: &Path, pid: u32) -> Vec<(String, u64)> {
    let f = std::fs::read(dir.join(format!("{pid}.zlib"))).expect("the process's stats file");
    let w: Vec<u64> = f
        .chunks(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    let names = wd_core::counters::zlib::NAMES;
    assert_eq!(w[0], u64::from_le_bytes(*b"WDZLIB\0\x01"));
    assert_eq!(w[2], u64::from(pid));
    names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), w[4 + i]))
        .collect()
}

fn get(c: &[(String, u64)], n: &str) -> u64 {
    c.iter().find(|(k, _)| k == n).unwrap().1
}

fn run_case(extra: &[(&str, String)]) -> Vec<(String, u64)> {
    let d = tempfile::tempdir().unwrap();
    let stats = tempfile::tempdir().unwrap();
    python(&["gen"], d.path(), &[]);
    let mut env = vec![
        ("LD_PRELOAD", wdz().display().to_string()),
        ("WD_DEVICES", "model".into()),
        ("WD_MODEL_ENGINES", "2".into()),
        ("WD_ZLIB_CHUNK", "64k".into()),
        ("WD_ZLIB_STATS_DIR", stats.path().display().to_string()),
    ];
    env.extend(extra.iter().cloned());
    let (o, pid) = python(&["run"], d.path(), &env);
    assert!(o.contains("run ok"));
    let (o, _) = python(&["check"], d.path(), &[]);
    assert!(o.contains("check ok 28"), "{o}");
    let c = counters(stats.path(), pid);
    eprintln!("{c:?}");
    c
}

#[test]
fn python_zlib_and_gzip_on_the_model() {
    let c = run_case(&[]);
    assert!(get(&c, "deflate_offloaded") >= 8, "{c:?}");
    assert!(get(&c, "deflate_bytes_in") > 20 << 20);
    assert!(get(&c, "inflate_streams") > 0);
    assert!(get(&c, "inflate_offloaded") > 0, "{c:?}");
    assert!(get(&c, "inflate_bytes_out") > 10 << 20, "{c:?}");
    assert_eq!(get(&c, "fallback_device_error"), 0);
    assert_eq!(get(&c, "inflate_replay_error"), 0);
}

#[test]
fn device_errors_mid_stream_continue_in_software() {
    // Nine of ten requests fail: the driver's retries (16 since 95b6cd9) exhaust on about
    // one segment in six, which software redoes; every output still checks.
    let c = run_case(&[("WD_MODEL_ERROR_RATIO", "0.9".into()), ("SEED", "2".into())]);
    assert!(get(&c, "fallback_device_error") > 0, "{c:?}");
    // Segments went through the device before the failures: the hand-overs were mid-stream.
    assert!(get(&c, "deflate_bytes_in") > 0, "{c:?}");
    assert!(get(&c, "deflate_offloaded") > 0);
    // Inflate streams the device failed were replayed in software, exactly (checked).
    assert!(get(&c, "inflate_replay_error") > 0, "{c:?}");
}

/// The same Python run on a VFIO queue (the model's VF behind the fake vfio kernel): the
/// library's queues come from the VFIO backend as the provider's do.
#[test]
fn python_zlib_and_gzip_over_vfio() {
    let t = tempfile::tempdir().unwrap();
    wd_tests::pci::zip_vf_tree(t.path(), "0000:75:00.1", 7, false);
    let devices = t.path().join("devices");
    let c = run_case(&[("WD_DEVICES", format!("fake-vfio:{}", devices.display()))]);
    assert!(get(&c, "deflate_offloaded") >= 8, "{c:?}");
    assert!(get(&c, "inflate_offloaded") > 0, "{c:?}");
    assert_eq!(get(&c, "fallback_no_device"), 0, "{c:?}");
    assert_eq!(get(&c, "fallback_device_error"), 0, "{c:?}");
}
