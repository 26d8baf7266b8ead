//! `cargo fuzz run config`: the body is `wd_tests::fuzz` (shared with the corpus replay test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wd_tests::fuzz::run("config", data));
