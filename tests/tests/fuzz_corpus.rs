//! Every committed fuzz corpus file (`fuzz/corpus/<target>/*`) through the same function
//! its `cargo fuzz` target calls (`wd_tests::fuzz`), on stable, so the targets cannot rot
//! and every finding kept in the corpus stays fixed. One test per target.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn replay(target: &str) {
    let files = corpus(target);
    assert!(files.len() >= 3, "{target}: {} corpus files", files.len());
    for (p, data) in &files {
        let r = std::panic::catch_unwind(|| wd_tests::fuzz::run(target, data));
        assert!(r.is_ok(), "{target}: {} fails", p.display());
    }
}

#[test]
fn every_target_has_a_corpus() {
    for t in wd_tests::fuzz::TARGETS {
        assert!(!corpus(t).is_empty(), "{t}");
    }
}

#[test]
fn header_corpus() {
    replay("header");
}

#[test]
fn decompress_soft_corpus() {
    replay("decompress_soft");
}

#[test]
fn decompress_model_corpus() {
    replay("decompress_model");
}

#[test]
fn key_fromdata_corpus() {
    replay("key_fromdata");
}

#[test]
fn key_der_corpus() {
    replay("key_der");
}

#[test]
fn config_corpus() {
    replay("config");
}
