//! Compression through the public hisi-zip API on no-SVA queues: the process's devices are
//! the fake kernel over a no-SVA fixture (`WD_DEVICES=fake-uacce:<dir>` as the C API and
//! the provider take it, `WD_UACCE_ABI=mainline` as an openEuler 5.10+ host sets it), every
//! DMA buffer of the ZIP driver (I/O blocks, stream contexts) carved from each queue's
//! static-share region. One-shot and streaming, both formats, checked against zlib-rs and
//! against the counters: the work was offloaded, with no device error and no fallback.
//! (Its own test binary: the device selection is process-wide.)

use std::path::PathBuf;
use std::sync::Once;

use wd_core::select::{self, Devices};
use wd_tests::corpus::{random, text};
use wd_tests::zip_offload::round_trips_offloaded;

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
    round_trips_offloaded(&[
        Vec::new(),
        text(1, 1),
        text(65537, 2),
        text(3 << 20, 3),
        random(200_000, 4),
    ]);
}
