//! Compression through the public hisi-zip API on no-SVA queues: the process's devices are
//! the fake kernel over a no-SVA fixture (`WD_DEVICES=fake-uacce:<dir>` as the C API and
//! the provider take it, `WD_UACCE_ABI=mainline` as an openEuler 5.10+ host sets it), every
//! DMA buffer of the ZIP driver (I/O blocks, stream contexts) carved from each queue's
//! static-share region. One-shot and streaming, both formats, checked against zlib-rs and
//! against the counters: the work was offloaded, with no device error and no fallback.
//! (Its own test binary: the device selection is process-wide.)

use std::path::PathBuf;
use std::sync::Once;

use hisi_zip::{compress, decompress, Compressor, Decompressor, Format};
use wd_core::select::{self, Devices};
use wd_tests::corpus::{random, text};

fn no_sva_host() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/uacce/openeuler-nosva");
        std::env::set_var("WD_UACCE_ABI", "mainline");
        hisi_model::plug();
        select::set_process(Devices::FakeUacce(dir));
        select::activate_process().expect("fake no-SVA kernel");
    });
}

#[test]
fn one_shot_and_streams_run_on_static_share_queues() {
    no_sva_host();
    let before = hisi_zip::stats();
    for (n, data) in [
        (0usize, Vec::new()),
        (1, text(1, 1)),
        (65537, text(65537, 2)),
        (3 << 20, text(3 << 20, 3)),
        (200_000, random(200_000, 4)),
    ] {
        for f in [Format::Gzip, Format::Zlib] {
            let z = compress(f, 6, &data).unwrap();
            assert_eq!(
                decompress(f, &z).unwrap(),
                data,
                "{f:?} one-shot, {n} bytes"
            );
        }
    }
    // Streaming: many small writes, a flush in the middle, then finish.
    let data = text(5 << 20, 9);
    let mut c = Compressor::new(Format::Gzip, 6).unwrap();
    assert!(c.is_offloaded(), "{:?}", c.fallback_reason());
    let mut z = Vec::new();
    for (i, piece) in data.chunks(100_003).enumerate() {
        c.compress(piece, &mut z).unwrap();
        if i == 7 {
            c.flush(&mut z).unwrap();
        }
    }
    c.finish(&mut z).unwrap();
    let mut d = Decompressor::new(Format::Gzip).unwrap();
    assert!(d.is_offloaded(), "{:?}", d.fallback_reason());
    let mut back = Vec::new();
    for piece in z.chunks(77_777) {
        d.decompress(piece, &mut back).unwrap();
    }
    assert!(d.is_complete());
    assert!(back == data, "stream round trip");
    let after = hisi_zip::stats();
    assert!(
        after.offloaded > before.offloaded && after.requests > before.requests + 10,
        "{after:?}"
    );
    assert_eq!(after.device_errors, before.device_errors, "{after:?}");
    assert_eq!(after.fallback_total(), before.fallback_total(), "{after:?}");
}
