//! HiSilicon accelerators bound to vfio-pci, as `wd list` shows them: each with its mode
//! (VFIO through an IOMMU group, or NOIOMMU) and why wd opens no queue on it (the QM
//! bring-up over VFIO is not written: docs/hardware.md §5 item 16). Reads
//! `/sys/bus/pci/devices` (`WD_PCI_ROOT`) and `/dev/vfio` (`WD_VFIO_ROOT`).

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
    /// VFIO or NOIOMMU; `None` when the group cannot be told.
    pub mode: Option<AddressMode>,
    /// Why wd opens no queue on it.
    pub refused: String,
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
            let (mode, why) = match group_of(&dir, dev_vfio) {
                Ok(GroupKind::Iommu(g)) => (Some(AddressMode::Vfio), format!("group {g}")),
                Ok(GroupKind::NoIommu(g)) => {
                    (Some(AddressMode::NoIommu), format!("noiommu group {g}"))
                }
                Err(e) => (None, e.to_string()),
            };
            Some(VfioScanned {
                bdf,
                engine,
                vf: matches!(id, 0xa251 | 0xa256 | 0xa259),
                mode,
                refused: format!(
                    "bound to vfio-pci ({why}): wd has no queue bring-up over VFIO yet \
                     (docs/hardware.md §5 item 16); bind it to its kernel driver with \
                     uacce_mode=1 to use it through uacce"
                ),
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
        assert!(s
            .iter()
            .all(|d| d.refused.contains("no queue bring-up over VFIO")));
        assert!(scan_with(&r.join("nothing"), &dev_vfio).is_empty());
        assert_eq!(engine_of(0xa258), Some("hisi_hpre"));
        assert_eq!(engine_of(0x1234), None);
    }
}
