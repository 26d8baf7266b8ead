//! `cargo fuzz run key_der`: the body is `wd_tests::fuzz` (shared with the corpus replay test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wd_tests::fuzz::run("key_der", data));
