//! `cargo fuzz run decompress_soft`: the body is `wd_tests::fuzz` (shared with the corpus replay test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wd_tests::fuzz::run("decompress_soft", data));
