//! Compiles the one C shim Rust cannot write on stable (the variadic `gzprintf` and
//! `gzvprintf`: a `va_list` formatted with vsnprintf, then written with our `gzwrite`), and
//! gives libwdz.so zlib's symbol versions (DESIGN.md, "Installation").

use std::path::Path;

/// Versioned functions defined in C (csrc/), not through a Rust alias.
const IN_C: &[&str] = &["gzvprintf"];

fn main() {
    println!("cargo:rerun-if-changed=csrc/gzprintf.c");
    cc::Build::new()
        .file("csrc/gzprintf.c")
        .warnings(true)
        .compile("wdz_gzprintf");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
    // rustc's version script exports only Rust symbols; this one adds gzprintf (base).
    let map = Path::new(&dir).join("csrc/gzprintf.map");
    println!("cargo:rerun-if-changed=csrc/gzprintf.map");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
    // zlib's version nodes. rustc's own script binds every Rust export to its anonymous
    // node first, so the versioned functions are exported by Rust as `wdz_<name>` and
    // `<name>` is an alias the nodes below bind.
    let versions = Path::new(&dir).join("csrc/versions.map");
    println!("cargo:rerun-if-changed=csrc/versions.map");
    let text = std::fs::read_to_string(&versions).expect("csrc/versions.map");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        versions.display()
    );
    for line in text.lines().filter(|l| l.starts_with("ZLIB_")) {
        let Some(body) = line.split("global:").nth(1) else {
            continue;
        };
        let body = body.split('}').next().unwrap_or("");
        for name in body.split(';').map(str::trim).filter(|n| !n.is_empty()) {
            if !IN_C.contains(&name) {
                println!("cargo:rustc-cdylib-link-arg=-Wl,--defsym={name}=wdz_{name}");
            }
        }
    }
}
