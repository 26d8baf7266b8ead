//! A PCI sysfs tree with one HiSilicon ZIP VF bound to vfio-pci, selected process-wide as
//! `fake-vfio:<tree>`, and the ZIP round trip the VFIO tests run on it.
#![allow(dead_code)]

use std::path::Path;

use wd_core::select::{self, Devices};
use wd_tests::corpus::text;
use wd_tests::zip_offload::round_trips_offloaded;

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
    round_trips_offloaded(&[text(0, 1), text(1, 2), text(65_537, 3), text(3 << 20, 4)]);
    let mode = dev[0].backend().verdict(dev[0].info());
    let want = if noiommu {
        wd_core::AddressMode::NoIommu
    } else {
        wd_core::AddressMode::Vfio
    };
    assert_eq!(mode, Some(Ok(want)));
}
