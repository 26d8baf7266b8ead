//! libwd's compression API from C: tests/c/zip_stream.c compiled with `cc` against
//! capi/include, libwd.so and the system zlib, run on the device model (uacce-like, the
//! fake uacce kernel, a VFIO queue) and in software.

use std::path::{Path, PathBuf};
use std::process::Command;
use wd_tests::build::libwd_dir;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

#[test]
fn c_stream_api_interoperates_with_zlib_on_the_model_the_fake_kernel_vfio_and_in_software() {
    let lib = libwd_dir();
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("zip_stream");
    let st = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg("-I")
        .arg(root().join("capi/include"))
        .arg(root().join("tests/c/zip_stream.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lwd", "-lz", "-o"])
        .arg(&exe)
        .status()
        .expect("running cc");
    assert!(st.success(), "cc zip_stream.c failed");
    // The same WD_DEVICES values as the queue API (queue.h) takes, fake kernel included.
    let fake = format!(
        "fake-uacce:{}",
        root().join("tests/fixtures/uacce/kunpeng920").display()
    );
    // A VFIO queue: the model's ZIP VF behind the fake vfio kernel.
    wd_tests::pci::zip_vf_tree(tmp.path(), "0000:75:00.1", 7, false);
    let vfio = format!("fake-vfio:{}", tmp.path().join("devices").display());
    for (mode, devices) in [
        ("model", "model"),
        ("fake", fake.as_str()),
        ("vfio", vfio.as_str()),
        ("software", "none"),
    ] {
        let out = Command::new(&exe)
            .arg(mode)
            .env("WD_DEVICES", devices)
            .env("WD_MODEL_DIR", tmp.path().join("slots"))
            .output()
            .expect("running the C test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(" 0 failures"),
            "{mode}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
