//! VFIO groundwork (docs/hardware-interface.md §6): the DMA-mapping path a VFIO backend
//! needs, through rust-vmm's vfio-ioctls (`default-features = false`, no KVM). A container,
//! an IOVA allocator, [`VfioDmaSpace::share`] (VFIO_IOMMU_MAP_DMA at a fresh IOVA) and
//! [`VfioDmaSpace::unshare`] (VFIO_IOMMU_UNMAP_DMA), everything still shared unmapped when
//! the space is released. NOIOMMU groups are recognised and refused with a clear error:
//! their containers answer only CHECK_EXTENSION, so there is no IOVA to give a device.
//! [`device`] opens a device container → group → device through the [`device::VfioSys`]
//! seam (test twin `fake::FakeVfio`, feature `fake-kernel`), maps its BAR and its DMA;
//! [`noiommu`] gives the NOIOMMU DMA half: physical addresses of pinned memory (with
//! `CAP_SYS_ADMIN`). [`backend::VfioBackend`] offers the functions as wd devices, their
//! queues brought up by a hardware queue manager plugged in from the driver layer
//! (`hisi_qm::vfio_bringup`; docs/hardware.md §5 item 16).

pub mod backend;
pub mod device;
#[cfg(any(test, feature = "fake-kernel"))]
pub mod fake;
pub mod ioctl;
pub mod iova;
pub mod noiommu;
pub mod scan;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::dma::Iova;
use crate::error::{Error, Result};
use crate::region::Region;

pub use iova::IovaAllocator;

/// Default IOVA window: above 4 GiB (clear of 32-bit MSI windows), 256 GiB long.
pub const IOVA_BASE: u64 = 1 << 32;
/// End of the default IOVA window.
pub const IOVA_LIMIT: u64 = IOVA_BASE + (256 << 30);

/// The two container operations the DMA path needs: the seam between [`VfioDmaSpace`] and
/// the kernel (vfio-ioctls' container) or a test twin.
pub trait VfioDmaOps: Send + Sync + fmt::Debug {
    /// `VFIO_IOMMU_MAP_DMA` of `len` bytes at `vaddr` to `iova`, read-write.
    ///
    /// # Safety
    /// `vaddr..vaddr+len` must stay mapped until unmapped again; the device may read and
    /// write it at any time meanwhile.
    unsafe fn map(&self, iova: u64, len: usize, vaddr: *mut u8) -> io::Result<()>;
    /// `VFIO_IOMMU_UNMAP_DMA` of exactly the range mapped at `iova`.
    fn unmap(&self, iova: u64, len: usize) -> io::Result<()>;
}

/// The kernel's container through vfio-ioctls.
pub struct Container(vfio_ioctls::VfioContainer);

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Container(/dev/vfio/vfio)")
    }
}

impl Container {
    /// Opens `/dev/vfio/vfio`, checks the API version and the TYPE1v2 IOMMU (what
    /// vfio-ioctls does). Groups are attached by the device bring-up (later issue).
    pub fn open() -> Result<Container> {
        vfio_ioctls::VfioContainer::new(None)
            .map(Container)
            .map_err(|e| Error::Unsupported(format!("VFIO container: {e}")))
    }
}

impl VfioDmaOps for Container {
    unsafe fn map(&self, iova: u64, len: usize, vaddr: *mut u8) -> io::Result<()> {
        // SAFETY: the caller upholds the mapping's lifetime (this function's contract).
        unsafe { self.0.vfio_dma_map(iova, len, vaddr) }.map_err(io::Error::other)
    }

    fn unmap(&self, iova: u64, len: usize) -> io::Result<()> {
        self.0.vfio_dma_unmap(iova, len).map_err(io::Error::other)
    }
}

struct Shared {
    len: usize,
    // Keeps the memory alive while the device may reach it.
    _region: Region,
}

/// One container's DMA address space: what the device can reach and at which IOVA.
pub struct VfioDmaSpace {
    ops: Box<dyn VfioDmaOps>,
    alloc: Mutex<IovaAllocator>,
    shared: Mutex<BTreeMap<u64, Shared>>,
}

impl fmt::Debug for VfioDmaSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioDmaSpace")
            .field("ops", &self.ops)
            .field("shared", &self.shared().len())
            .finish()
    }
}

impl VfioDmaSpace {
    /// A space over `ops` with IOVAs from `[base, limit)` in `page`-byte pages.
    pub fn new(ops: Box<dyn VfioDmaOps>, base: u64, limit: u64, page: u64) -> Result<Self> {
        Ok(VfioDmaSpace {
            ops,
            alloc: Mutex::new(IovaAllocator::new(base, limit, page)?),
            shared: Mutex::new(BTreeMap::new()),
        })
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Shared>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn alloc(&self) -> std::sync::MutexGuard<'_, IovaAllocator> {
        self.alloc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Maps `mem` for the device at a fresh IOVA (map on share). The region is kept alive
    /// until [`VfioDmaSpace::unshare`] or the space is dropped.
    pub fn share(&self, mem: &Region) -> Result<Iova> {
        if mem.is_empty() {
            return Err(Error::InvalidArgument("sharing an empty region".into()));
        }
        let iova = self.alloc().alloc(mem.len())?;
        // SAFETY: `mem` is a live mapping whose clone is kept in `shared` until the range
        // is unmapped from the container (unshare or drop).
        if let Err(e) = unsafe { self.ops.map(iova.0, mem.len(), mem.as_ptr()) } {
            let _ = self.alloc().free(iova, mem.len());
            return Err(Error::io("VFIO_IOMMU_MAP_DMA", e));
        }
        self.shared().insert(
            iova.0,
            Shared {
                len: mem.len(),
                _region: mem.clone(),
            },
        );
        Ok(iova)
    }

    /// Unmaps a range made by [`VfioDmaSpace::share`] (same IOVA and length).
    pub fn unshare(&self, iova: Iova, len: usize) -> Result<()> {
        let mut shared = self.shared();
        match shared.get(&iova.0) {
            Some(s) if s.len == len => {}
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unshare of {iova}+{len}: no such shared range"
                )))
            }
        }
        self.ops
            .unmap(iova.0, len)
            .map_err(|e| Error::io("VFIO_IOMMU_UNMAP_DMA", e))?;
        shared.remove(&iova.0);
        drop(shared);
        self.alloc().free(iova, len)
    }

    /// Ranges shared now.
    pub fn shared_ranges(&self) -> usize {
        self.shared().len()
    }
}

impl Drop for VfioDmaSpace {
    /// Unmap on release: nothing stays reachable by the device once the space is gone.
    fn drop(&mut self) {
        let shared = std::mem::take(&mut *self.shared());
        for (iova, s) in shared {
            if let Err(e) = self.ops.unmap(iova, s.len) {
                crate::wd_log!(
                    Warn,
                    "vfio: unmapping {iova:#x}+{:#x} at release: {e}",
                    s.len
                );
            }
        }
    }
}

/// How a device's IOMMU group can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupKind {
    /// A real IOMMU group: `/dev/vfio/<id>`, DMA through IOVAs.
    Iommu(u32),
    /// A NOIOMMU group (`/dev/vfio/noiommu-<id>`): unsupported.
    NoIommu(u32),
}

/// Classifies the IOMMU group of the PCI device at `device` (a sysfs device directory,
/// e.g. `/sys/bus/pci/devices/0000:75:00.0`), with `/dev/vfio` at `dev_vfio`.
pub fn group_of(device: &Path, dev_vfio: &Path) -> Result<GroupKind> {
    let link = device.join("iommu_group");
    let target: PathBuf = std::fs::read_link(&link).map_err(|e| {
        Error::NoDevice(format!(
            "{}: no IOMMU group ({e}); bind the device to vfio-pci first",
            device.display()
        ))
    })?;
    let id: u32 = target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "{}: odd iommu_group {}",
                device.display(),
                target.display()
            ))
        })?;
    let group_dir = device.join("iommu_group");
    let name = std::fs::read_to_string(group_dir.join("name")).unwrap_or_default();
    if name.trim() == "vfio-noiommu" || dev_vfio.join(format!("noiommu-{id}")).exists() {
        return Ok(GroupKind::NoIommu(id));
    }
    Ok(GroupKind::Iommu(id))
}

/// Refuses NOIOMMU groups with the reason; passes real ones.
pub fn check_group(kind: &GroupKind) -> Result<u32> {
    match kind {
        GroupKind::Iommu(id) => Ok(*id),
        GroupKind::NoIommu(id) => Err(Error::Unsupported(format!(
            "VFIO group {id} is NOIOMMU (enable_unsafe_noiommu_mode): the device would DMA to \
             physical addresses and its container has no VFIO_IOMMU_MAP_DMA (ENOTTY); wd \
             needs an IOMMU (or SVA through uacce)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    /// A container that answers like type1: MAP_DMA refuses overlaps (EEXIST), UNMAP_DMA
    /// must name exactly one mapping.
    #[derive(Debug, Default)]
    struct FakeContainer {
        maps: StdMutex<BTreeMap<u64, (usize, usize)>>,
        log: Arc<StdMutex<Vec<String>>>,
        fail_map: bool,
    }

    impl VfioDmaOps for FakeContainer {
        unsafe fn map(&self, iova: u64, len: usize, vaddr: *mut u8) -> io::Result<()> {
            if self.fail_map {
                return Err(io::Error::from_raw_os_error(libc::ENOMEM));
            }
            let mut m = self.maps.lock().unwrap();
            let end = iova + len as u64;
            if m.range(..end)
                .next_back()
                .is_some_and(|(s, (l, _))| s + *l as u64 > iova)
            {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            m.insert(iova, (len, vaddr as usize));
            self.log
                .lock()
                .unwrap()
                .push(format!("map {iova:#x}+{len:#x}"));
            Ok(())
        }

        fn unmap(&self, iova: u64, len: usize) -> io::Result<()> {
            let mut m = self.maps.lock().unwrap();
            match m.get(&iova) {
                Some((l, _)) if *l == len => {
                    m.remove(&iova);
                    self.log
                        .lock()
                        .unwrap()
                        .push(format!("unmap {iova:#x}+{len:#x}"));
                    Ok(())
                }
                _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            }
        }
    }

    #[test]
    fn map_on_share_unmap_on_unshare_and_release() {
        let log = Arc::new(StdMutex::new(Vec::new()));
        let ops = FakeContainer {
            log: log.clone(),
            ..FakeContainer::default()
        };
        let space = VfioDmaSpace::new(Box::new(ops), IOVA_BASE, IOVA_LIMIT, 4096).unwrap();
        let a = Region::anonymous(8192).unwrap();
        let b = Region::anonymous(100).unwrap();
        let ia = space.share(&a).unwrap();
        let ib = space.share(&b).unwrap();
        assert_eq!(ia.0, IOVA_BASE);
        assert_eq!(ib.0, IOVA_BASE + 0x3000);
        assert_ne!(ia.0, a.as_ptr() as u64, "an IOVA, not the virtual address");
        assert!(space.unshare(ia, 4096).is_err(), "wrong length");
        space.unshare(ia, 8192).unwrap();
        assert!(space.unshare(ia, 8192).is_err(), "twice");
        assert_eq!(space.shared_ranges(), 1);
        // The freed IOVA is reused.
        assert_eq!(space.share(&a).unwrap(), ia);
        drop(space);
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log,
            vec![
                "map 0x100000000+0x2000",
                "map 0x100003000+0x64",
                "unmap 0x100000000+0x2000",
                "map 0x100000000+0x2000",
                "unmap 0x100000000+0x2000",
                "unmap 0x100003000+0x64",
            ],
            "everything still shared is unmapped at release"
        );
    }

    #[test]
    fn failed_map_returns_the_iova() {
        let ops = FakeContainer {
            fail_map: true,
            ..FakeContainer::default()
        };
        let space = VfioDmaSpace::new(Box::new(ops), IOVA_BASE, IOVA_LIMIT, 4096).unwrap();
        let a = Region::anonymous(4096).unwrap();
        let e = space.share(&a).unwrap_err();
        assert_eq!(e.errno(), libc::ENOMEM);
        assert_eq!(space.alloc().allocated(), 0);
    }

    #[test]
    fn noiommu_groups_are_refused_with_a_reason() {
        let t = tempfile::tempdir().unwrap();
        let groups = t.path().join("iommu_groups");
        let devvfio = t.path().join("dev-vfio");
        std::fs::create_dir_all(groups.join("7")).unwrap();
        std::fs::create_dir_all(groups.join("9")).unwrap();
        std::fs::write(groups.join("9/name"), "vfio-noiommu\n").unwrap();
        std::fs::create_dir_all(&devvfio).unwrap();
        let real = t.path().join("0000:75:00.0");
        let noio = t.path().join("0000:76:00.0");
        let none = t.path().join("0000:77:00.0");
        for d in [&real, &noio, &none] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(groups.join("7"), real.join("iommu_group")).unwrap();
        std::os::unix::fs::symlink(groups.join("9"), noio.join("iommu_group")).unwrap();
        assert_eq!(group_of(&real, &devvfio).unwrap(), GroupKind::Iommu(7));
        assert_eq!(check_group(&GroupKind::Iommu(7)).unwrap(), 7);
        let k = group_of(&noio, &devvfio).unwrap();
        assert_eq!(k, GroupKind::NoIommu(9));
        let e = check_group(&k).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)));
        assert!(e.to_string().contains("NOIOMMU"), "{e}");
        // Also recognised by its /dev/vfio/noiommu-N node.
        std::fs::write(devvfio.join("noiommu-7"), "").unwrap();
        assert_eq!(group_of(&real, &devvfio).unwrap(), GroupKind::NoIommu(7));
        assert!(matches!(group_of(&none, &devvfio), Err(Error::NoDevice(_))));
    }

    #[test]
    fn no_vfio_here_is_a_clear_error() {
        if Path::new("/dev/vfio/vfio").exists() {
            return;
        }
        let e = Container::open().unwrap_err();
        assert!(e.to_string().contains("VFIO container"), "{e}");
    }
}
