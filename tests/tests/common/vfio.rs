//! A fake VFIO host with one HiSilicon ZIP VF bound to vfio-pci (`wd_tests::pci`), selected
//! process-wide as `fake-vfio:<tree>`, and the ZIP round trip the VFIO tests run on it.
#![allow(dead_code)]

use wd_core::select::{self, Devices};
use wd_tests::corpus::text;
use wd_tests::pci::zip_vf_tree;
use wd_tests::zip_offload::round_trips_offloaded;

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
