//! The workspace's binaries and libraries as the tests run them: built (or brought up to
//! date) once per test process, in the running test's profile.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The profile directory the running test was built into (`target/release`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("profile dir")
        .to_path_buf()
}

/// `cargo build -q ARGS` in the running test's profile (`cargo test` builds no binaries
/// of other packages by itself).
pub fn cargo_build(args: &[&str]) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q"])
        .args(args)
        .current_dir(crate::ossl::repo_root());
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let st = cmd.status().expect("running cargo");
    assert!(st.success(), "cargo build {args:?} failed");
}

/// The `wd` command, built once per test process.
pub fn wd_command() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo_build(&["-p", "wd-cli"]);
            profile_dir().join("wd")
        })
        .clone()
}

/// The directory holding `libwd.so`, built once per test process.
pub fn libwd_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo_build(&["-p", "wd-capi", "--lib"]);
            let dir = profile_dir();
            assert!(
                dir.join("libwd.so").is_file(),
                "no libwd.so in {}",
                dir.display()
            );
            dir
        })
        .clone()
}
