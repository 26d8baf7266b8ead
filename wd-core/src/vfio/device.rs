//! A VFIO device opened the way vfio-pci wants it (docs/hardware-interface.md §6.1): the
//! container (`/dev/vfio/vfio`: API version, IOMMU extension), the group (viable, attached
//! to the container), the IOMMU type set, the device descriptor by name, BAR2 mapped at the
//! offset `VFIO_DEVICE_GET_REGION_INFO` reports, and DMA shared with `VFIO_IOMMU_MAP_DMA`
//! at IOVAs of its own. Every system call goes through [`VfioSys`]: [`RealVfioSys`] is
//! libc; `vfio::fake::FakeVfio` (feature `fake-kernel`) answers as the kernel's vfio does.
//!
//! What it does not do: the QM bring-up on the mapped BAR (docs/hardware.md §5 item 16).
//! In NOIOMMU mode the container has no MAP_DMA (`ENOTTY`): DMA addresses then come from
//! [`super::noiommu::NoIommuDma`].

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use crate::dma::Iova;
use crate::error::{Error, Result};
use crate::region::Region;
use crate::vfio::ioctl::*;
use crate::vfio::iova::IovaAllocator;

/// A descriptor number as the seam hands it out.
pub type Fd = i32;

/// The argument of a VFIO ioctl.
#[derive(Debug)]
pub enum VfioArg<'a> {
    /// No argument.
    None,
    /// An integer argument (CHECK_EXTENSION, SET_IOMMU).
    Value(u64),
    /// A pointer to this C struct (in and out); its first u32 is `argsz`.
    Buf(&'a mut [u8]),
    /// A pointer to an int (GROUP_SET_CONTAINER's container descriptor).
    Fd(Fd),
    /// A NUL-terminated string (GROUP_GET_DEVICE_FD's device name).
    Name(&'a CStr),
}

/// The system calls of the VFIO path.
pub trait VfioSys: Send + Sync + fmt::Debug {
    /// `open(path, flags)`.
    fn open(&self, path: &Path, flags: i32) -> io::Result<Fd>;
    /// `ioctl(fd, request, arg)`; the return value.
    fn ioctl(&self, fd: Fd, request: u32, arg: VfioArg<'_>) -> io::Result<i32>;
    /// A shared read-write mapping of `len` bytes of `fd` at `offset`, unmapped when the
    /// last clone of the region is dropped.
    fn mmap(&self, fd: Fd, len: usize, offset: u64) -> io::Result<Region>;
    /// `close(fd)`.
    fn close(&self, fd: Fd) -> io::Result<()>;
}

/// The real system calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealVfioSys;

fn cvt(r: libc::c_int) -> io::Result<i32> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

struct MmapOwner {
    addr: usize,
    len: usize,
}

impl Drop for MmapOwner {
    fn drop(&mut self) {
        // SAFETY: the owner was made for exactly this mapping and is dropped with the last
        // Region over it, so nothing uses the range any more.
        let _ = unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

impl VfioSys for RealVfioSys {
    fn open(&self, path: &Path, flags: i32) -> io::Result<Fd> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a NUL-terminated path alive for the call; O_CREAT masked, so no mode.
        cvt(unsafe { libc::open(c.as_ptr(), flags & !libc::O_CREAT) })
    }

    fn ioctl(&self, fd: Fd, request: u32, arg: VfioArg<'_>) -> io::Result<i32> {
        let r = match arg {
            // SAFETY: an argument-less request reads nothing.
            VfioArg::None => unsafe { libc::ioctl(fd, request as _, 0usize) },
            // SAFETY: an integer argument is passed by value; nothing is dereferenced.
            VfioArg::Value(v) => unsafe { libc::ioctl(fd, request as _, v as libc::c_ulong) },
            VfioArg::Buf(b) => {
                if b.len() < 4 || u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize != b.len() {
                    return Err(io::Error::from_raw_os_error(libc::EINVAL));
                }
                // SAFETY: the buffer's argsz (its first u32, checked) is its length, which is
                // all the kernel reads or writes; it lives for the call.
                unsafe { libc::ioctl(fd, request as _, b.as_mut_ptr()) }
            }
            VfioArg::Fd(v) => {
                let v: libc::c_int = v;
                // SAFETY: a pointer to one int alive for the call, read by the kernel.
                unsafe { libc::ioctl(fd, request as _, &v as *const libc::c_int) }
            }
            // SAFETY: a NUL-terminated string alive for the call, read by the kernel.
            VfioArg::Name(n) => unsafe { libc::ioctl(fd, request as _, n.as_ptr()) },
        };
        cvt(r)
    }

    fn mmap(&self, fd: Fd, len: usize, offset: u64) -> io::Result<Region> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a new shared mapping where the kernel chooses (no MAP_FIXED) overlaps no
        // memory in use; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap at 0"))?;
        let owner = Arc::new(MmapOwner {
            addr: p as usize,
            len,
        });
        // SAFETY: `base..base+len` is the live shared mapping just made; `owner` unmaps it
        // when the last Region over it goes.
        Ok(unsafe { Region::from_raw(base, len, owner) })
    }

    fn close(&self, fd: Fd) -> io::Result<()> {
        // SAFETY: closing a descriptor this path opened and owns; not used after.
        cvt(unsafe { libc::close(fd) }).map(|_| ())
    }
}

/// The bytes of a `#[repr(C)]` argument struct of plain integers, for the seam.
fn words(fields: &[(usize, u64, usize)], size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size];
    for &(off, v, width) in fields {
        b[off..off + width].copy_from_slice(&v.to_ne_bytes()[..width]);
    }
    b
}

fn read_u32(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn read_u64(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Which IOMMU the container uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IommuType {
    /// `VFIO_TYPE1v2_IOMMU`: DMA through IOVAs.
    Type1v2,
    /// `VFIO_NOIOMMU_IOMMU`: physical addresses, no MAP_DMA.
    NoIommu,
}

impl IommuType {
    fn number(self) -> u32 {
        match self {
            IommuType::Type1v2 => VFIO_TYPE1V2_IOMMU,
            IommuType::NoIommu => VFIO_NOIOMMU_IOMMU,
        }
    }
}

/// A region of the device as `VFIO_DEVICE_GET_REGION_INFO` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region index (BAR n = n on vfio-pci).
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Bytes.
    pub size: u64,
    /// Where to mmap it on the device descriptor.
    pub offset: u64,
}

/// An opened VFIO device: container, group and device descriptors, its mapped BAR.
pub struct VfioDevice {
    sys: Arc<dyn VfioSys>,
    container: Fd,
    group: Fd,
    device: Fd,
    iommu: IommuType,
    bar: Region,
    iovas: Mutex<IovaAllocator>,
    mapped: Mutex<Vec<(u64, usize, Region)>>,
}

impl fmt::Debug for VfioDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioDevice")
            .field("iommu", &self.iommu)
            .field("bar_len", &self.bar.len())
            .finish()
    }
}

fn err(what: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENODEV) => Error::NoDevice(format!("VFIO: {what}: {e}")),
        Some(libc::EBUSY) => Error::NoFreeQueue(format!("VFIO: {what}: device in use")),
        _ => Error::io(format!("VFIO: {what}"), e),
    }
}

impl VfioDevice {
    /// Opens `device` (its vfio-pci name, the PCI address) of the group node `group`
    /// (`/dev/vfio/<id>` or `/dev/vfio/noiommu-<id>`) under container node `container`,
    /// with `iommu`, and maps region `bar` (2: the QM registers and v2 doorbells, §3.4).
    /// Undoes everything on failure.
    pub fn open(
        sys: Arc<dyn VfioSys>,
        container_path: &Path,
        group_path: &Path,
        device: &str,
        iommu: IommuType,
        bar: u32,
    ) -> Result<VfioDevice> {
        let flags = libc::O_RDWR | libc::O_CLOEXEC;
        let mut opened: Vec<Fd> = Vec::new();
        let r = (|| {
            let container = sys
                .open(container_path, flags)
                .map_err(|e| err(&format!("open {}", container_path.display()), e))?;
            opened.push(container);
            let v = sys
                .ioctl(container, VFIO_GET_API_VERSION, VfioArg::None)
                .map_err(|e| err("GET_API_VERSION", e))?;
            if v != VFIO_API_VERSION {
                return Err(Error::Unsupported(format!(
                    "VFIO API version {v}, expected {VFIO_API_VERSION}"
                )));
            }
            let has = sys
                .ioctl(
                    container,
                    VFIO_CHECK_EXTENSION,
                    VfioArg::Value(iommu.number().into()),
                )
                .map_err(|e| err("CHECK_EXTENSION", e))?;
            if has <= 0 {
                return Err(Error::Unsupported(format!(
                    "VFIO container lacks the {iommu:?} IOMMU (extension {})",
                    iommu.number()
                )));
            }
            let group = sys
                .open(group_path, flags)
                .map_err(|e| err(&format!("open {}", group_path.display()), e))?;
            opened.push(group);
            let mut st = words(&[(0, 8, 4)], 8);
            sys.ioctl(group, VFIO_GROUP_GET_STATUS, VfioArg::Buf(&mut st))
                .map_err(|e| err("GROUP_GET_STATUS", e))?;
            if read_u32(&st, 4) & VFIO_GROUP_FLAGS_VIABLE == 0 {
                return Err(Error::Unsupported(format!(
                    "VFIO group {} is not viable: bind every device of the group to vfio-pci",
                    group_path.display()
                )));
            }
            sys.ioctl(group, VFIO_GROUP_SET_CONTAINER, VfioArg::Fd(container))
                .map_err(|e| err("GROUP_SET_CONTAINER", e))?;
            sys.ioctl(
                container,
                VFIO_SET_IOMMU,
                VfioArg::Value(iommu.number().into()),
            )
            .map_err(|e| err("SET_IOMMU", e))?;
            let name = CString::new(device)
                .map_err(|_| Error::InvalidArgument(format!("device name {device:?}")))?;
            let dev = sys
                .ioctl(group, VFIO_GROUP_GET_DEVICE_FD, VfioArg::Name(&name))
                .map_err(|e| err(&format!("GROUP_GET_DEVICE_FD {device}"), e))?;
            opened.push(dev);
            let info = region_info(&*sys, dev, bar)?;
            if info.flags & VFIO_REGION_INFO_FLAG_MMAP == 0 || info.size == 0 {
                return Err(Error::Unsupported(format!(
                    "VFIO {device}: region {bar} cannot be mapped ({info:?})"
                )));
            }
            let len = usize::try_from(info.size)
                .map_err(|_| Error::Unsupported(format!("region {bar} of {} bytes", info.size)))?;
            let bar_region = sys
                .mmap(dev, len, info.offset)
                .map_err(|e| err(&format!("mmap of region {bar}"), e))?;
            Ok((container, group, dev, bar_region))
        })();
        match r {
            Ok((container, group, device, bar)) => Ok(VfioDevice {
                sys,
                container,
                group,
                device,
                iommu,
                bar,
                iovas: Mutex::new(IovaAllocator::new(
                    super::IOVA_BASE,
                    super::IOVA_LIMIT,
                    4096,
                )?),
                mapped: Mutex::new(Vec::new()),
            }),
            Err(e) => {
                for fd in opened.into_iter().rev() {
                    let _ = sys.close(fd);
                }
                Err(e)
            }
        }
    }

    /// The mapped BAR.
    pub fn bar(&self) -> &Region {
        &self.bar
    }

    /// The IOMMU type in use.
    pub fn iommu(&self) -> IommuType {
        self.iommu
    }

    /// Maps `mem` for the device with `VFIO_IOMMU_MAP_DMA` at a fresh IOVA. In NOIOMMU mode
    /// there is no such mapping: refused (use [`super::noiommu::NoIommuDma`]).
    pub fn map_dma(&self, mem: &Region) -> Result<Iova> {
        if self.iommu == IommuType::NoIommu {
            return Err(Error::Unsupported(
                "VFIO NOIOMMU container: no VFIO_IOMMU_MAP_DMA (ENOTTY); the device takes \
                 physical addresses of pinned memory (vfio::noiommu)"
                    .into(),
            ));
        }
        let len = mem.len();
        let iova = self
            .iovas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .alloc(len)?
            .0;
        let mut arg = words(
            &[
                (0, 32, 4),
                (
                    4,
                    u64::from(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE),
                    4,
                ),
                (8, mem.as_ptr() as u64, 8),
                (16, iova, 8),
                (24, len as u64, 8),
            ],
            32,
        );
        if let Err(e) = self
            .sys
            .ioctl(self.container, VFIO_IOMMU_MAP_DMA, VfioArg::Buf(&mut arg))
        {
            let _ = self
                .iovas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .free(Iova(iova), len);
            return Err(err("IOMMU_MAP_DMA", e));
        }
        self.mapped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((iova, len, mem.clone()));
        Ok(Iova(iova))
    }

    /// Undoes [`VfioDevice::map_dma`] (exactly the range mapped at `iova`).
    pub fn unmap_dma(&self, iova: Iova, len: usize) -> Result<()> {
        let mut mapped = self.mapped.lock().unwrap_or_else(|e| e.into_inner());
        let i = mapped
            .iter()
            .position(|m| m.0 == iova.0 && m.1 == len)
            .ok_or_else(|| Error::InvalidArgument(format!("VFIO: nothing mapped at {iova}")))?;
        let mut arg = words(&[(0, 24, 4), (8, iova.0, 8), (16, len as u64, 8)], 24);
        self.sys
            .ioctl(self.container, VFIO_IOMMU_UNMAP_DMA, VfioArg::Buf(&mut arg))
            .map_err(|e| err("IOMMU_UNMAP_DMA", e))?;
        if read_u64(&arg, 16) != len as u64 {
            return Err(Error::Protocol(format!(
                "VFIO: UNMAP_DMA at {iova} unmapped {:#x} bytes, not {len:#x}",
                read_u64(&arg, 16)
            )));
        }
        mapped.remove(i);
        let _ = self
            .iovas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .free(iova, len);
        Ok(())
    }
}

/// `VFIO_DEVICE_GET_REGION_INFO` of region `index`.
pub fn region_info(sys: &dyn VfioSys, device: Fd, index: u32) -> Result<RegionInfo> {
    let mut b = words(&[(0, 32, 4), (8, index.into(), 4)], 32);
    sys.ioctl(device, VFIO_DEVICE_GET_REGION_INFO, VfioArg::Buf(&mut b))
        .map_err(|e| err(&format!("GET_REGION_INFO {index}"), e))?;
    Ok(RegionInfo {
        index,
        flags: read_u32(&b, 4),
        size: read_u64(&b, 16),
        offset: read_u64(&b, 24),
    })
}

impl Drop for VfioDevice {
    fn drop(&mut self) {
        let mapped = std::mem::take(&mut *self.mapped.lock().unwrap_or_else(|e| e.into_inner()));
        for (iova, len, _) in mapped {
            let mut arg = words(&[(0, 24, 4), (8, iova, 8), (16, len as u64, 8)], 24);
            let _ = self
                .sys
                .ioctl(self.container, VFIO_IOMMU_UNMAP_DMA, VfioArg::Buf(&mut arg));
        }
        for fd in [self.device, self.group, self.container] {
            let _ = self.sys.close(fd);
        }
    }
}
