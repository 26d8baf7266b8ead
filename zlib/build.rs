//! Compiles the one C shim Rust cannot write on stable: the variadic `gzprintf` and
//! `gzvprintf` (a `va_list` formatted with vsnprintf, then written with our `gzwrite`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/gzprintf.c");
    cc::Build::new()
        .file("csrc/gzprintf.c")
        .warnings(true)
        .compile("wdz_gzprintf");
    // rustc's version script exports only Rust symbols; this one adds the C pair.
    let map = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("csrc/gzprintf.map");
    println!("cargo:rerun-if-changed=csrc/gzprintf.map");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        map.display()
    );
}
