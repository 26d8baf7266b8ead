//! Differential tests against the system zlib with offload off: every entry point.

mod common;

#[path = "common/suite.rs"]
mod suite;

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Before the library reads its configuration (first stream).
    ONCE.call_once(|| std::env::set_var("WD_ZLIB_OFFLOAD", "off"));
}

#[test]
fn round_trips_all_parameters() {
    setup();
    suite::round_trips_all_parameters(&[0, 1, 1000, 70_000]);
}

#[test]
fn flush_patterns_and_chunking() {
    setup();
    suite::flush_patterns_and_chunking(150_000, 12);
}

#[test]
fn inflate_matches_call_by_call() {
    setup();
    suite::inflate_matches_call_by_call();
}

#[test]
fn utilities_identical() {
    setup();
    suite::utilities_identical();
}

#[test]
fn one_shot_and_bounds() {
    setup();
    suite::one_shot_and_bounds();
}

#[test]
fn stream_operations() {
    setup();
    suite::stream_operations();
}

#[test]
fn gz_files() {
    setup();
    suite::gz_files();
}

#[test]
fn inflate_copy_sync_reset() {
    setup();
    suite::inflate_copy_sync_reset();
}

#[test]
fn deflate_end_codes() {
    setup();
    suite::deflate_end_codes();
}
