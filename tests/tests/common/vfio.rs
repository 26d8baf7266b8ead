//! A PCI sysfs tree with one HiSilicon ZIP VF bound to vfio-pci, selected process-wide as
//! `fake-vfio:<tree>`, and the ZIP round trip the VFIO tests run on it.
#![allow(dead_code)]

use std::path::Path;

use hisi_zip::{compress, decompress, Compressor, Decompressor, Format};
use wd_core::select::{self, Devices};

/// Writes `root/devices/<bdf>` for a ZIP VF (revision 0x21) in group `group`, NOIOMMU
/// when asked.
pub fn zip_vf_tree(root: &Path, bdf: &str, group: u32, noiommu: bool) {
    let d = root.join("devices").join(bdf);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("vendor"), "0x19e5\n").unwrap();
    std::fs::write(d.join("device"), "0xa251\n").unwrap();
    std::fs::write(d.join("revision"), "0x21\n").unwrap();
    let drv = root.join("drivers/vfio-pci");
    std::fs::create_dir_all(&drv).unwrap();
    std::os::unix::fs::symlink(&drv, d.join("driver")).unwrap();
    let g = root.join("groups").join(group.to_string());
    std::fs::create_dir_all(&g).unwrap();
    if noiommu {
        std::fs::write(g.join("name"), "vfio-noiommu\n").unwrap();
    }
    std::os::unix::fs::symlink(&g, d.join("iommu_group")).unwrap();
}

fn text(n: usize, seed: u32) -> Vec<u8> {
    let words: [&[u8]; 6] = [
        b"queue ",
        b"mailbox ",
        b"context ",
        b"doorbell ",
        b"VF ",
        b"\n",
    ];
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let mut v = Vec::with_capacity(n + 16);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.extend_from_slice(words[(x % 6) as usize]);
    }
    v.truncate(n);
    v
}

/// Selects a one-VF fake VFIO host for this process and runs one-shot and streaming
/// compression on it.
pub fn zip_round_trips(noiommu: bool) {
    let t = tempfile::tempdir().unwrap();
    zip_vf_tree(t.path(), "0000:75:00.1", 7, noiommu);
    hisi_model::plug();
    hisi_qm::vfio_bringup::plug();
    select::set_process(Devices::FakeVfio(t.path().join("devices")));
    select::activate_process().expect("fake vfio host");
    let dev = wd_core::registry::find("hisi_zip", "zlib", &["vfio"]).unwrap();
    assert_eq!(dev.len(), 1);
    let before = hisi_zip::stats();
    for (n, seed) in [(0usize, 1), (1, 2), (65_537, 3), (3 << 20, 4)] {
        let data = text(n, seed);
        for f in [Format::Gzip, Format::Zlib] {
            let z = compress(f, 6, &data).unwrap();
            assert_eq!(
                decompress(f, &z).unwrap(),
                data,
                "{f:?} one-shot, {n} bytes"
            );
        }
    }
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
    let mode = dev[0].backend().verdict(dev[0].info());
    let want = if noiommu {
        wd_core::AddressMode::NoIommu
    } else {
        wd_core::AddressMode::Vfio
    };
    assert_eq!(mode, Some(Ok(want)));
}
