//! Fake PCI sysfs trees for `WD_DEVICES=fake-vfio:<root>/devices`: the VFIO tests of wd
//! (tests/) and of libwdz (zlib/tests) select the model's VFs behind the fake vfio kernel
//! through them.

use std::path::Path;

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
