//! The WarpDrive queue API of libwd.so from C: tests/c/queue_*.c compiled with `cc` against
//! capi/include and the libwd.so cargo builds, then run on the device model, on the uacce
//! backend over the fake kernel, and with no devices.

use std::path::{Path, PathBuf};
use std::process::Command;
use wd_tests::build::libwd_dir;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Compiles tests/c/`name`.c against libwd.so; returns the program.
fn compile(name: &str, out: &Path) -> PathBuf {
    let lib = libwd_dir();
    let exe = out.join(name);
    let st = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg("-I")
        .arg(root().join("capi/include"))
        .arg(root().join(format!("tests/c/{name}.c")))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lwd")
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("running cc");
    assert!(st.success(), "cc {name}.c failed");
    exe
}

fn run(exe: &Path, mode: &str, env: &[(&str, String)]) {
    let out = Command::new(exe)
        .arg(mode)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("WD_LOG")
        .output()
        .expect("running the C test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(" 0 failures"),
        "{} {mode}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        exe.display(),
        out.status
    );
    assert!(!stdout.contains(" 0 checks"), "{mode}: ran no check");
}

#[test]
fn c_program_on_the_device_model() {
    let t = tempfile::tempdir().unwrap();
    let exe = compile("queue_rsa", t.path());
    run(
        &exe,
        "model",
        &[
            ("WD_DEVICES", "model".into()),
            ("WD_MODEL_DIR", t.path().join("slots").display().to_string()),
        ],
    );
}

#[test]
fn c_program_on_the_uacce_backend_over_the_fake_kernel() {
    let t = tempfile::tempdir().unwrap();
    let exe = compile("queue_rsa", t.path());
    let fixture = root().join("tests/fixtures/uacce/kunpeng920");
    run(
        &exe,
        "fake",
        &[("WD_DEVICES", format!("fake-uacce:{}", fixture.display()))],
    );
}

#[test]
fn c_program_on_no_sva_queues_over_the_fake_kernel() {
    let t = tempfile::tempdir().unwrap();
    let exe = compile("queue_rsa", t.path());
    let fixture = root().join("tests/fixtures/uacce/openeuler-nosva");
    run(
        &exe,
        "nosva",
        &[
            ("WD_DEVICES", format!("fake-uacce:{}", fixture.display())),
            ("WD_UACCE_ABI", "mainline".into()),
        ],
    );
}

#[test]
fn c_program_without_devices() {
    let t = tempfile::tempdir().unwrap();
    let exe = compile("queue_rsa", t.path());
    run(&exe, "none", &[("WD_DEVICES", "none".into())]);
}
