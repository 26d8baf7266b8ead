//! [`FakeVfio`]: the test twin of [`VfioSys`], answering as the kernel's vfio core, type1
//! and noiommu backends and vfio-pci do (docs/hardware-interface.md §6), for one group with
//! one device whose BAR2 is plain memory. Test machinery (feature `fake-kernel`).
//!
//! Rules (errno as the kernel gives them): the container answers GET_API_VERSION (0) and
//! CHECK_EXTENSION (1 for the IOMMU types of its mode, else 0); SET_IOMMU `EINVAL` before a
//! group is attached, or with a type of the other mode; GROUP_GET_STATUS reports VIABLE as
//! configured; GROUP_SET_CONTAINER `EINVAL` for a descriptor that is not a container,
//! `EPERM` when the group is not viable; GROUP_GET_DEVICE_FD `EINVAL` before SET_IOMMU or
//! for another name; GET_REGION_INFO as vfio-pci (offset = index << 40, BAR2 mmap-able);
//! mmap only inside a region at its offset; MAP_DMA and UNMAP_DMA `ENOTTY` in noiommu
//! mode, else `EINVAL` for bad argsz/flags or a range not page-aligned, `EEXIST` for an
//! overlap; UNMAP_DMA writes back the bytes unmapped (0 when nothing was there). Every
//! call is recorded.
//!
//! A device side ([`FakeVfioSide`], the device model) may stand behind the BAR: its BAR2
//! region is what mmap hands out (with its register hook), [`FakeVfio::translate`] is the
//! type1 IOMMU it reaches memory through, and it hears of every range leaving the IOMMU
//! (UNMAP_DMA, container close) before the call returns, as a device whose IOMMU entry is
//! gone can no longer reach the memory.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::region::Region;
use crate::vfio::device::{Fd, VfioArg, VfioSys};
use crate::vfio::ioctl::*;
use std::sync::Arc;

/// vfio-pci's region offset: `index << 40` (`VFIO_PCI_INDEX_TO_OFFSET`).
pub const fn region_offset(index: u32) -> u64 {
    (index as u64) << 40
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Container,
    Group,
    Device,
}

#[derive(Debug, Default)]
struct State {
    next: Fd,
    fds: HashMap<Fd, Node>,
    attached: bool,
    iommu: Option<u32>,
    /// IOVA -> (size, process virtual address).
    dma: BTreeMap<u64, (u64, u64)>,
}

/// The device behind a [`FakeVfio`]: told when memory leaves its IOMMU.
pub trait FakeVfioSide: Send + Sync + std::fmt::Debug {
    /// `iova..iova+len` was unmapped; the device must stop reaching it before this returns.
    fn on_unmap(&self, iova: u64, len: u64);
}

/// A fake vfio kernel with one group (`group_path`) holding one device (`device`).
#[derive(Debug)]
pub struct FakeVfio {
    /// `/dev/vfio/vfio`.
    pub container_path: PathBuf,
    /// `/dev/vfio/<id>` or `/dev/vfio/noiommu-<id>`.
    pub group_path: PathBuf,
    /// The device's name (PCI address).
    pub device: String,
    /// True: the noiommu backend (only VFIO_NOIOMMU_IOMMU, no DMA mapping).
    pub noiommu: bool,
    /// GROUP_GET_STATUS reports VIABLE.
    pub viable: bool,
    bar2: Region,
    side: Option<Arc<dyn FakeVfioSide>>,
    state: Mutex<State>,
    unmapped: Mutex<Vec<(u64, u64)>>,
    trace: Mutex<Vec<(u32, Result<i32, i32>)>>,
}

impl FakeVfio {
    /// A host with group 7 holding `0000:75:00.1` (a ZIP VF), BAR2 of `bar2_len` bytes.
    pub fn new(noiommu: bool, bar2_len: usize) -> FakeVfio {
        let bar2 = Region::anonymous(bar2_len).expect("BAR memory");
        FakeVfio::with_device(noiommu, 7, "0000:75:00.1", bar2, None)
    }

    /// A host with group `group` holding `device`, whose BAR2 is `bar2` (a device side's
    /// register file, hook included), the device side told of unmaps.
    pub fn with_device(
        noiommu: bool,
        group: u32,
        device: &str,
        bar2: Region,
        side: Option<Arc<dyn FakeVfioSide>>,
    ) -> FakeVfio {
        let group = if noiommu {
            format!("/dev/vfio/noiommu-{group}")
        } else {
            format!("/dev/vfio/{group}")
        };
        FakeVfio {
            container_path: "/dev/vfio/vfio".into(),
            group_path: group.into(),
            device: device.into(),
            noiommu,
            viable: true,
            bar2,
            side,
            state: Mutex::new(State {
                next: 1 << 21,
                ..State::default()
            }),
            unmapped: Mutex::new(Vec::new()),
            trace: Mutex::new(Vec::new()),
        }
    }

    /// The type1 IOMMU's translation: the process address of `iova..iova+len` if that
    /// range lies inside one live mapping.
    pub fn translate(&self, iova: u64, len: usize) -> Option<u64> {
        let st = self.lock();
        let (start, (size, vaddr)) = st.dma.range(..=iova).next_back()?;
        let end = iova.checked_add(len as u64)?;
        (len > 0 && end <= start + size).then(|| vaddr + (iova - start))
    }

    fn notify_unmapped(&self) {
        let gone = std::mem::take(&mut *self.unmapped.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(side) = &self.side {
            for (iova, len) in gone {
                side.on_unmap(iova, len);
            }
        }
    }

    /// The BAR2 memory as the device sees it.
    pub fn bar2(&self) -> &Region {
        &self.bar2
    }

    /// The ioctls so far: (request, result or errno).
    pub fn trace(&self) -> Vec<(u32, Result<i32, i32>)> {
        self.trace.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Live DMA mappings: IOVA -> size.
    pub fn dma_maps(&self) -> BTreeMap<u64, u64> {
        self.lock().dma.iter().map(|(i, (l, _))| (*i, *l)).collect()
    }

    /// Open descriptors.
    pub fn open_fds(&self) -> usize {
        self.lock().fds.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn types(&self) -> &'static [u32] {
        if self.noiommu {
            &[VFIO_NOIOMMU_IOMMU]
        } else {
            &[VFIO_TYPE1_IOMMU, VFIO_TYPE1V2_IOMMU]
        }
    }

    fn do_ioctl(&self, fd: Fd, request: u32, arg: VfioArg<'_>) -> Result<i32, i32> {
        let mut st = self.lock();
        let node = *st.fds.get(&fd).ok_or(libc::EBADF)?;
        let u32_at = |b: &[u8], o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |b: &[u8], o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
        match (node, request, arg) {
            (Node::Container, VFIO_GET_API_VERSION, _) => Ok(VFIO_API_VERSION),
            (Node::Container, VFIO_CHECK_EXTENSION, VfioArg::Value(v)) => {
                Ok(i32::from(self.types().contains(&(v as u32))))
            }
            (Node::Container, VFIO_SET_IOMMU, VfioArg::Value(v)) => {
                if !st.attached || st.iommu.is_some() || !self.types().contains(&(v as u32)) {
                    return Err(libc::EINVAL);
                }
                st.iommu = Some(v as u32);
                Ok(0)
            }
            (Node::Container, VFIO_IOMMU_MAP_DMA | VFIO_IOMMU_UNMAP_DMA, _) if self.noiommu => {
                Err(libc::ENOTTY)
            }
            (Node::Container, VFIO_IOMMU_MAP_DMA, VfioArg::Buf(b)) => {
                if st.iommu.is_none() {
                    return Err(libc::EINVAL);
                }
                let rw = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
                if b.len() != 32 || u32_at(b, 0) != 32 || u32_at(b, 4) & !rw != 0 {
                    return Err(libc::EINVAL);
                }
                let (vaddr, iova, size) = (u64_at(b, 8), u64_at(b, 16), u64_at(b, 24));
                if size == 0 || (vaddr | iova | size) % 4096 != 0 {
                    return Err(libc::EINVAL);
                }
                let overlaps = st
                    .dma
                    .range(..iova + size)
                    .next_back()
                    .is_some_and(|(s, (l, _))| s + l > iova);
                if overlaps {
                    return Err(libc::EEXIST);
                }
                st.dma.insert(iova, (size, vaddr));
                Ok(0)
            }
            (Node::Container, VFIO_IOMMU_UNMAP_DMA, VfioArg::Buf(b)) => {
                if b.len() != 24 || u32_at(b, 0) != 24 {
                    return Err(libc::EINVAL);
                }
                let (iova, size) = (u64_at(b, 8), u64_at(b, 16));
                let done = match st.dma.get(&iova) {
                    Some(&(l, _)) if l == size => {
                        st.dma.remove(&iova);
                        self.unmapped
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((iova, size));
                        size
                    }
                    _ => 0,
                };
                b[16..24].copy_from_slice(&done.to_ne_bytes());
                Ok(0)
            }
            (Node::Group, VFIO_GROUP_GET_STATUS, VfioArg::Buf(b)) => {
                if b.len() != 8 || u32_at(b, 0) != 8 {
                    return Err(libc::EINVAL);
                }
                let flags = if self.viable {
                    VFIO_GROUP_FLAGS_VIABLE
                } else {
                    0
                } | if st.attached { 2 } else { 0 };
                b[4..8].copy_from_slice(&flags.to_ne_bytes());
                Ok(0)
            }
            (Node::Group, VFIO_GROUP_SET_CONTAINER, VfioArg::Fd(c)) => {
                if st.fds.get(&c) != Some(&Node::Container) || st.attached {
                    return Err(libc::EINVAL);
                }
                if !self.viable {
                    return Err(libc::EPERM);
                }
                st.attached = true;
                Ok(0)
            }
            (Node::Group, VFIO_GROUP_GET_DEVICE_FD, VfioArg::Name(n)) => {
                if st.iommu.is_none() || n.to_bytes() != self.device.as_bytes() {
                    return Err(libc::EINVAL);
                }
                let fd = st.next;
                st.next += 1;
                st.fds.insert(fd, Node::Device);
                Ok(fd)
            }
            (Node::Device, VFIO_DEVICE_GET_REGION_INFO, VfioArg::Buf(b)) => {
                if b.len() != 32 || u32_at(b, 0) < 32 {
                    return Err(libc::EINVAL);
                }
                let index = u32_at(b, 8);
                let (flags, size) = match index {
                    // BAR0 of a HiSilicon VF is absent; BAR2 holds the QM registers.
                    VFIO_PCI_BAR2_REGION_INDEX => {
                        (1 | 2 | VFIO_REGION_INFO_FLAG_MMAP, self.bar2.len())
                    }
                    0..=8 => (0, 0),
                    _ => return Err(libc::EINVAL),
                };
                b[4..8].copy_from_slice(&flags.to_ne_bytes());
                b[16..24].copy_from_slice(&(size as u64).to_ne_bytes());
                b[24..32].copy_from_slice(&region_offset(index).to_ne_bytes());
                Ok(0)
            }
            _ => Err(libc::ENOTTY),
        }
    }
}

impl VfioSys for FakeVfio {
    fn open(&self, path: &Path, _flags: i32) -> io::Result<Fd> {
        let node = if path == self.container_path {
            Node::Container
        } else if path == self.group_path {
            Node::Group
        } else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        let mut st = self.lock();
        if node == Node::Group && st.fds.values().any(|n| *n == Node::Group) {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let fd = st.next;
        st.next += 1;
        st.fds.insert(fd, node);
        Ok(fd)
    }

    fn ioctl(&self, fd: Fd, request: u32, arg: VfioArg<'_>) -> io::Result<i32> {
        let r = self.do_ioctl(fd, request, arg);
        self.notify_unmapped();
        self.trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((request, r));
        r.map_err(io::Error::from_raw_os_error)
    }

    fn mmap(&self, fd: Fd, len: usize, offset: u64) -> io::Result<Region> {
        let st = self.lock();
        if st.fds.get(&fd) != Some(&Node::Device) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let base = region_offset(VFIO_PCI_BAR2_REGION_INDEX);
        if offset < base || (offset - base) as usize + len > self.bar2.len() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if offset == base && len == self.bar2.len() {
            // The whole BAR: its register hook goes with it.
            return Ok(self.bar2.clone());
        }
        self.bar2
            .slice((offset - base) as usize, len)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    }

    fn close(&self, fd: Fd) -> io::Result<()> {
        let mut st = self.lock();
        match st.fds.remove(&fd) {
            Some(Node::Group) => {
                st.attached = false;
                Ok(())
            }
            Some(Node::Container) => {
                st.iommu = None;
                let gone: Vec<(u64, u64)> = std::mem::take(&mut st.dma)
                    .into_iter()
                    .map(|(i, (l, _))| (i, l))
                    .collect();
                drop(st);
                self.unmapped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(gone);
                self.notify_unmapped();
                Ok(())
            }
            Some(Node::Device) => Ok(()),
            None => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfio::device::{IommuType, VfioDevice};
    use crate::Error;
    use std::sync::Arc;

    fn open(k: &Arc<FakeVfio>, iommu: IommuType) -> crate::Result<VfioDevice> {
        VfioDevice::open(
            k.clone(),
            &k.container_path.clone(),
            &k.group_path.clone(),
            &k.device.clone(),
            iommu,
            VFIO_PCI_BAR2_REGION_INDEX,
        )
    }

    #[test]
    fn container_group_device_bar_and_dma_in_the_kernels_order() {
        let k = Arc::new(FakeVfio::new(false, 0x10000));
        let d = open(&k, IommuType::Type1v2).unwrap();
        let reqs: Vec<u32> = k.trace().iter().map(|t| t.0).collect();
        assert_eq!(
            reqs,
            vec![
                VFIO_GET_API_VERSION,
                VFIO_CHECK_EXTENSION,
                VFIO_GROUP_GET_STATUS,
                VFIO_GROUP_SET_CONTAINER,
                VFIO_SET_IOMMU,
                VFIO_GROUP_GET_DEVICE_FD,
                VFIO_DEVICE_GET_REGION_INFO
            ]
        );
        assert!(k.trace().iter().all(|t| t.1.is_ok()), "{:?}", k.trace());
        // The BAR is the device's memory: a register write is seen by the device.
        assert_eq!(d.bar().len(), 0x10000);
        d.bar().write_u32(0x100, 0xfeed);
        assert_eq!(k.bar2().read_u32(0x100), 0xfeed);
        // DMA at fresh IOVAs, refused overlaps impossible by construction, exact unmap.
        let a = Region::anonymous(8192).unwrap();
        let b = Region::anonymous(4096).unwrap();
        let ia = d.map_dma(&a).unwrap();
        let ib = d.map_dma(&b).unwrap();
        assert!(ia.0 >= crate::vfio::IOVA_BASE && ib.0 >= ia.0 + 8192);
        assert_eq!(k.dma_maps().len(), 2);
        assert!(d.unmap_dma(ia, 4096).is_err());
        d.unmap_dma(ia, 8192).unwrap();
        assert_eq!(k.dma_maps().len(), 1);
        // A range that is not page-aligned: the kernel's EINVAL, the IOVA given back.
        let odd = a.slice(100, 200).unwrap();
        assert!(d.map_dma(&odd).is_err());
        drop(d);
        assert!(k.dma_maps().is_empty(), "unmapped at release");
        assert_eq!(k.open_fds(), 0, "every descriptor closed");
    }

    #[test]
    fn refusals_say_why_and_undo_what_was_opened() {
        let mut host = FakeVfio::new(false, 0x10000);
        host.viable = false;
        let k = Arc::new(host);
        let e = open(&k, IommuType::Type1v2).unwrap_err().to_string();
        assert!(e.contains("not viable"), "{e}");
        assert_eq!(k.open_fds(), 0);
        // A type1 container asked for NOIOMMU: no such extension.
        let k = Arc::new(FakeVfio::new(false, 0x10000));
        let e = open(&k, IommuType::NoIommu).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        assert_eq!(k.open_fds(), 0);
        // A missing group node.
        let k = Arc::new(FakeVfio::new(false, 0x10000));
        let e = VfioDevice::open(
            k.clone(),
            &k.container_path,
            Path::new("/dev/vfio/9"),
            &k.device,
            IommuType::Type1v2,
            2,
        )
        .unwrap_err();
        assert!(matches!(e, Error::NoDevice(_)), "{e}");
        assert_eq!(k.open_fds(), 0);
        // A wrong device name.
        let e = VfioDevice::open(
            k.clone(),
            &k.container_path,
            &k.group_path,
            "0000:00:00.0",
            IommuType::Type1v2,
            2,
        )
        .unwrap_err();
        assert!(e.to_string().contains("GROUP_GET_DEVICE_FD"), "{e}");
        assert_eq!(k.open_fds(), 0);
        // A region that cannot be mapped (BAR0 of the VF).
        let e = VfioDevice::open(
            k.clone(),
            &k.container_path,
            &k.group_path,
            &k.device,
            IommuType::Type1v2,
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot be mapped"), "{e}");
        assert_eq!(k.open_fds(), 0);
    }

    #[test]
    fn noiommu_containers_open_but_have_no_dma_mapping() {
        let k = Arc::new(FakeVfio::new(true, 0x10000));
        let d = open(&k, IommuType::NoIommu).unwrap();
        let e = d.map_dma(&Region::anonymous(4096).unwrap()).unwrap_err();
        assert!(e.to_string().contains("physical addresses"), "{e}");
        // Asked directly, the kernel answers ENOTTY.
        let mut arg = [0u8; 32];
        arg[0..4].copy_from_slice(&32u32.to_ne_bytes());
        let container = 1 << 21;
        let r = k.ioctl(container, VFIO_IOMMU_MAP_DMA, VfioArg::Buf(&mut arg));
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOTTY));
        // A type1 request on the noiommu container: refused before anything is opened
        // past the container.
        drop(d);
        let e = open(&k, IommuType::Type1v2).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
    }
}
