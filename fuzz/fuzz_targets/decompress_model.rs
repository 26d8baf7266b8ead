//! `cargo fuzz run decompress_model`: the body is `wd_tests::fuzz` (shared with the corpus replay test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wd_tests::fuzz::run("decompress_model", data));
