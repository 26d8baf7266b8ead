//! libwdz.so in place of the system zlib for a program linked against `libz.so.1` with
//! versioned references (`crc32_z@ZLIB_1.2.9`, `crc32_combine_gen@ZLIB_1.2.12`): as a
//! drop-in (a directory on `LD_LIBRARY_PATH` holding it as `libz.so.1`) and under
//! `LD_PRELOAD`; and libwdz.so defines every versioned symbol of the system's libz.so.1
//! with the same version (DESIGN.md, "Installation").

use std::path::{Path, PathBuf};
use std::process::Command;

fn wdz() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let fresh = deps.join("libwdz.so");
    if fresh.is_file() {
        return fresh;
    }
    deps.parent().unwrap().join("libwdz.so")
}

fn run(prog: &Path, env: &[(&str, &Path)]) -> (String, String) {
    let mut c = Command::new(prog);
    for (k, v) in env {
        c.env(k, v);
    }
    c.env("WD_DEVICES", "none");
    let out = c.output().expect("run the test program");
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{env:?}: {:?}\n{so}\n{se}",
        out.status
    );
    (so, se)
}

#[test]
fn versioned_program_runs_on_libwdz_as_drop_in_and_preload() {
    let d = tempfile::tempdir().unwrap();
    let prog = d.path().join("versioned");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/versioned.c");
    let st = Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&prog)
        .arg("-lz")
        .status()
        .expect("cc");
    assert!(st.success(), "cc {src:?} -lz");
    // The references really are versioned.
    let t = Command::new("objdump")
        .arg("-T")
        .arg(&prog)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&t.stdout);
    assert!(t.contains("(ZLIB_1.2.9) crc32_z"), "{t}");
    assert!(t.contains("(ZLIB_1.2.12) crc32_combine_gen"), "{t}");

    let (sys, _) = run(&prog, &[]);
    assert!(sys.starts_with("1.2."), "system zlib: {sys}");
    let sums = |s: &str| s.split_whitespace().skip(1).collect::<Vec<_>>().join(" ");

    let lib = wdz();
    let drop = d.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    std::os::unix::fs::symlink(&lib, drop.join("libz.so.1")).unwrap();
    let (o, e) = run(&prog, &[("LD_LIBRARY_PATH", &drop)]);
    assert!(o.contains("zlib-rs"), "drop-in not used: {o}");
    assert_eq!(sums(&o), sums(&sys));
    // glibc's notice is the only thing on stderr.
    for l in e.lines() {
        assert!(
            l.contains("no version information available"),
            "stderr: {e}"
        );
    }

    let (o, e) = run(&prog, &[("LD_PRELOAD", &lib)]);
    assert!(o.contains("zlib-rs"), "preload not used: {o}");
    assert_eq!(sums(&o), sums(&sys));
    assert!(e.is_empty(), "stderr under LD_PRELOAD: {e}");
}

/// `(version, name)` of the functions `lib` defines with a `ZLIB_*` version.
fn versioned(lib: &Path) -> Vec<(String, String)> {
    let t = Command::new("objdump").arg("-T").arg(lib).output().unwrap();
    let mut v: Vec<(String, String)> = String::from_utf8_lossy(&t.stdout)
        .lines()
        .filter(|l| l.contains(" DF ") && !l.contains("*UND*"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (ver, name) = (f[f.len() - 2], f[f.len() - 1]);
            ver.starts_with("ZLIB_")
                .then(|| (ver.to_string(), name.to_string()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn symbol_versions_are_the_system_zlibs() {
    let sys = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.exists())
    .expect("the system libz.so.1");
    let want = versioned(sys);
    assert!(want.len() > 40, "{want:?}");
    assert_eq!(versioned(&wdz()), want);
}
