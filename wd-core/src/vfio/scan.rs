//! HiSilicon accelerators bound to vfio-pci: each with its PCI identity, its mode (VFIO
//! through an IOMMU group, or NOIOMMU) and its group node, for the VFIO backend
//! ([`super::backend::VfioBackend`]) and `wd list`. Reads `/sys/bus/pci/devices`
//! (`WD_PCI_ROOT`) and `/dev/vfio` (`WD_VFIO_ROOT`).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use crate::device::AddressMode;
use crate::vfio::{group_of, GroupKind};

/// `PCI_VENDOR_ID_HUAWEI`.
pub const VENDOR_HUAWEI: u16 = 0x19e5;

/// The engine of a HiSilicon accelerator PCI function (PF and VF device IDs of the
/// kernel's zip, sec2 and hpre drivers and of hisi_acc_vfio_pci).
pub fn engine_of(device_id: u16) -> Option<&'static str> {
    match device_id {
        0xa250 | 0xa251 => Some("hisi_zip"),
        0xa255 | 0xa256 => Some("hisi_sec2"),
        0xa258 | 0xa259 => Some("hisi_hpre"),
        _ => None,
    }
}

/// One accelerator function bound to vfio-pci.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfioScanned {
    /// PCI address (`0000:75:00.1`).
    pub bdf: String,
    /// `hisi_zip`, `hisi_hpre`, `hisi_sec2`.
    pub engine: &'static str,
    /// True for a virtual function.
    pub vf: bool,
    /// PCI vendor ID.
    pub vendor_id: u16,
    /// PCI device ID.
    pub device_id: u16,
    /// PCI revision ID (the QM hardware version: 0x21 v2, 0x30 v3); 0 when unreadable.
    pub revision: u8,
    /// VFIO or NOIOMMU; `None` when the group cannot be told.
    pub mode: Option<AddressMode>,
    /// The group's node (`/dev/vfio/<id>` or `/dev/vfio/noiommu-<id>`), when told.
    pub group_node: Option<PathBuf>,
    /// The group, or why it cannot be told.
    pub group: String,
}

fn hex_attr(dir: &Path, name: &str) -> Option<u16> {
    let s = std::fs::read_to_string(dir.join(name)).ok()?;
    u16::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// The HiSilicon accelerator functions under `pci_root` bound to vfio-pci.
pub fn scan_with(pci_root: &Path, dev_vfio: &Path) -> Vec<VfioScanned> {
    let Ok(rd) = std::fs::read_dir(pci_root) else {
        return Vec::new();
    };
    let mut out: Vec<VfioScanned> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let dir = e.path();
            if hex_attr(&dir, "vendor")? != VENDOR_HUAWEI {
                return None;
            }
            let id = hex_attr(&dir, "device")?;
            let engine = engine_of(id)?;
            let driver = std::fs::read_link(dir.join("driver")).ok()?;
            if driver.file_name()? != "vfio-pci" {
                return None;
            }
            let bdf = e.file_name().to_string_lossy().into_owned();
            let (mode, node, group) = match group_of(&dir, dev_vfio) {
                Ok(GroupKind::Iommu(g)) => (
                    Some(AddressMode::Vfio),
                    Some(dev_vfio.join(g.to_string())),
                    format!("group {g}"),
                ),
                Ok(GroupKind::NoIommu(g)) => (
                    Some(AddressMode::NoIommu),
                    Some(dev_vfio.join(format!("noiommu-{g}"))),
                    format!("noiommu group {g}"),
                ),
                Err(e) => (None, None, e.to_string()),
            };
            Some(VfioScanned {
                bdf,
                engine,
                vf: matches!(id, 0xa251 | 0xa256 | 0xa259),
                vendor_id: VENDOR_HUAWEI,
                device_id: id,
                revision: hex_attr(&dir, "revision").map_or(0, |r| r as u8),
                mode,
                group_node: node,
                group,
            })
        })
        .collect();
    out.sort_by(|a, b| a.bdf.cmp(&b.bdf));
    out
}

/// [`scan_with`] of the host (`WD_PCI_ROOT`, `WD_VFIO_ROOT` override the roots).
pub fn scan_host() -> Vec<VfioScanned> {
    let pci = std::env::var_os("WD_PCI_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sys/bus/pci/devices"));
    let vfio = std::env::var_os("WD_VFIO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/vfio"));
    scan_with(&pci, &vfio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn function(root: &Path, bdf: &str, vendor: &str, device: &str, driver: &str, group: &str) {
        let d = root.join("devices").join(bdf);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vendor"), format!("{vendor}\n")).unwrap();
        std::fs::write(d.join("device"), format!("{device}\n")).unwrap();
        let drv = root.join("drivers").join(driver);
        std::fs::create_dir_all(&drv).unwrap();
        symlink(&drv, d.join("driver")).unwrap();
        let g = root.join("groups").join(group);
        std::fs::create_dir_all(&g).unwrap();
        if group == "9" {
            std::fs::write(g.join("name"), "vfio-noiommu\n").unwrap();
        }
        symlink(&g, d.join("iommu_group")).unwrap();
    }

    #[test]
    fn hisilicon_functions_on_vfio_pci_with_their_mode() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        function(r, "0000:75:00.1", "0x19e5", "0xa251", "vfio-pci", "7");
        function(r, "0000:79:00.1", "0x19e5", "0xa259", "vfio-pci", "9");
        function(r, "0000:75:00.0", "0x19e5", "0xa250", "hisi_zip", "3");
        function(r, "0000:01:00.0", "0x8086", "0xa251", "vfio-pci", "4");
        let dev_vfio = r.join("dev-vfio");
        std::fs::create_dir_all(&dev_vfio).unwrap();
        let s = scan_with(&r.join("devices"), &dev_vfio);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!((s[0].engine, s[0].vf), ("hisi_zip", true));
        assert_eq!(s[0].mode, Some(AddressMode::Vfio));
        assert_eq!(s[1].engine, "hisi_hpre");
        assert_eq!(s[1].mode, Some(AddressMode::NoIommu));
        assert_eq!(s[0].group_node, Some(dev_vfio.join("7")));
        assert_eq!(s[1].group_node, Some(dev_vfio.join("noiommu-9")));
        assert_eq!((s[0].device_id, s[0].revision), (0xa251, 0));
        assert!(scan_with(&r.join("nothing"), &dev_vfio).is_empty());
        assert_eq!(engine_of(0xa258), Some("hisi_hpre"));
        assert_eq!(engine_of(0x1234), None);
    }
}
