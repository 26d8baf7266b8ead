//! Hosts on the fake uacce kernel (wd_core::uacce::fake) over the fixture sysfs trees of
//! tests/fixtures/uacce, their queues backed by the device model; and the raw ZIP SQEs of
//! the tests that drive a QM ring by hand (built from docs/hardware-interface.md §4).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hisi_model::layout::zip::*;
use hisi_model::uacce_fake::{ModelSide, SideConfig};
use hisi_qm::QmRing;
use wd_core::uacce::fake::{Call, FakeKernel};
use wd_core::uacce::ioctl::Abi;
use wd_core::uacce::UacceBackend;
use wd_core::{Backend, Device};

/// The fixture sysfs tree `name`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/uacce")
        .join(name)
}

/// A fake kernel over a fixture, the model's side of its queues, and the unmodified uacce
/// backend on top.
pub struct Host {
    pub kernel: Arc<FakeKernel>,
    pub side: Arc<ModelSide>,
    pub backend: Arc<UacceBackend>,
}

/// The host of fixture `name`, its model side configured by `config`, the ioctl
/// numbering `abi` (None: detected, as in production).
pub fn host(name: &str, config: SideConfig, abi: Option<Abi>) -> Host {
    let side = Arc::new(ModelSide::new(config));
    let kernel = FakeKernel::from_fixture(fixture(name), side.clone()).expect("fixture");
    let backend = Arc::new(kernel.backend(abi));
    Host {
        kernel,
        side,
        backend,
    }
}

impl Host {
    /// The device called `name` in the fixture.
    pub fn device(&self, name: &str) -> Device {
        let info = self
            .backend
            .devices()
            .unwrap()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} not found"));
        Device::new(info, self.backend.clone())
    }

    /// The requests of the ioctls that succeeded, in order.
    pub fn ioctls(&self) -> Vec<u32> {
        self.kernel
            .trace()
            .iter()
            .filter_map(|c| match c {
                Call::Ioctl {
                    request,
                    result: Ok(_),
                    ..
                } => Some(*request),
                _ => None,
            })
            .collect()
    }
}

/// A ZIP SQE: request type `req` (32 KiB window), `len` input bytes, `dest` bytes of
/// output room, source/destination/context at `addrs`, flush `flags`, tag 7; the v3 type
/// field when `v3`.
pub fn zip_sqe(
    v3: bool,
    addrs: [u64; 3],
    req: u8,
    len: usize,
    dest: usize,
    flags: u32,
) -> [u32; 32] {
    let mut w = [0u32; SQE_WORDS];
    w[DW_INPUT_LEN] = len as u32;
    let t = if v3 { u32::from(SQE_TYPE_V3) } else { 0 };
    w[DW_FLAGS] = flags | (t << SQE_TYPE_SHIFT);
    w[DW_TYPE] = u32::from(req) | (4 << WINDOW_SHIFT);
    w[DW_DEST_AVAIL] = dest as u32;
    for (dw, a) in [
        (DW_SRC, addrs[0]),
        (DW_DST, addrs[1]),
        (DW_CTX_ADDR, addrs[2]),
    ] {
        w[dw] = a as u32;
        w[dw + 1] = (a >> 32) as u32;
    }
    w[if v3 { DW_TAG_V3 } else { DW_TAG_V2 }] = 7;
    w
}

/// Sends `w` and waits (at most 10 s) for its completion; returns the completed SQE.
pub fn run(ring: &mut QmRing, w: &[u32; 32]) -> [u32; 32] {
    ring.send(w).unwrap();
    let t0 = Instant::now();
    let slot = loop {
        if let Some(s) = ring.poll().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no completion");
        std::thread::sleep(Duration::from_micros(100));
    };
    let mut out = [0u32; 32];
    ring.read_sqe(slot, &mut out).unwrap();
    out
}
