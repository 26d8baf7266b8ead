//! DMA without an IOMMU (VFIO NOIOMMU groups, docs/hardware-interface.md §6.2): the device
//! is given **physical addresses**, so memory shared with it must be pinned (locked in RAM)
//! and physically contiguous over each shared range, and its physical address is read from
//! `/proc/self/pagemap`, which gives page frame numbers only to a process with
//! `CAP_SYS_ADMIN` (to others the PFN field reads 0, since Linux 4.2).
//!
//! Every system call goes through [`PhysSys`]: [`RealPhys`] (procfs reads, `mlock`,
//! `munlock`) or the test twin [`FakePhys`] (feature `fake-kernel`).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Mutex;

use crate::dma::Iova;
use crate::error::{Error, Result};
use crate::region::Region;

/// `CAP_SYS_ADMIN` (`include/uapi/linux/capability.h`).
pub const CAP_SYS_ADMIN: u32 = 21;
/// pagemap entry: page present in RAM.
pub const PM_PRESENT: u64 = 1 << 63;
/// pagemap entry: page swapped out.
pub const PM_SWAPPED: u64 = 1 << 62;
/// pagemap entry: the page frame number (bits 0–54).
pub const PM_PFN_MASK: u64 = (1 << 55) - 1;

/// The system calls of the NOIOMMU DMA path.
pub trait PhysSys: Send + Sync + fmt::Debug {
    /// The kernel's page size.
    fn page_size(&self) -> usize;
    /// The effective capability set of this process (`CapEff` of `/proc/self/status`).
    fn effective_caps(&self) -> io::Result<u64>;
    /// `mlock(addr, len)`: keeps the pages resident.
    fn mlock(&self, mem: &Region) -> io::Result<()>;
    /// `munlock(addr, len)`.
    fn munlock(&self, mem: &Region) -> io::Result<()>;
    /// The pagemap entries of `out.len()` pages from virtual page number `vpn`
    /// (`pread` of `/proc/self/pagemap` at `vpn * 8`).
    fn pagemap(&self, vpn: u64, out: &mut [u64]) -> io::Result<()>;
}

/// The real system calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealPhys;

/// `CapEff` of a `/proc/<pid>/status` text.
pub fn parse_cap_eff(status: &str) -> io::Result<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no CapEff line"))
}

impl PhysSys for RealPhys {
    fn page_size(&self) -> usize {
        crate::region::page_size()
    }

    fn effective_caps(&self) -> io::Result<u64> {
        parse_cap_eff(&std::fs::read_to_string("/proc/self/status")?)
    }

    fn mlock(&self, mem: &Region) -> io::Result<()> {
        // SAFETY: mlock only changes whether the pages of this live mapping may be paged
        // out; it neither reads nor writes them.
        let r = unsafe { libc::mlock(mem.as_ptr().cast(), mem.len()) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn munlock(&self, mem: &Region) -> io::Result<()> {
        // SAFETY: as for mlock: residency only, no access to the memory.
        let r = unsafe { libc::munlock(mem.as_ptr().cast(), mem.len()) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn pagemap(&self, vpn: u64, out: &mut [u64]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::open("/proc/self/pagemap")?;
        let mut buf = vec![0u8; out.len() * 8];
        f.read_exact_at(&mut buf, vpn * 8)?;
        for (o, c) in out.iter_mut().zip(buf.chunks_exact(8)) {
            *o = u64::from_ne_bytes(c.try_into().expect("8-byte chunk"));
        }
        Ok(())
    }
}

/// The physical address of `len` bytes at `va`, from their pagemap entries (one per page
/// from `va`'s page): present, not swapped, and physically contiguous, else the reason.
pub fn physical_address(va: u64, len: usize, page: usize, entries: &[u64]) -> Result<u64> {
    let page = page as u64;
    let mut first = None;
    for (i, &e) in entries.iter().enumerate() {
        let at = (va / page + i as u64) * page;
        if e & PM_PRESENT == 0 || e & PM_SWAPPED != 0 {
            return Err(Error::Unsupported(format!(
                "NOIOMMU DMA: page at {at:#x} is not resident (pagemap {e:#x})"
            )));
        }
        let pfn = e & PM_PFN_MASK;
        if pfn == 0 {
            return Err(Error::Unsupported(
                "NOIOMMU DMA: pagemap gives no page frame numbers (needs CAP_SYS_ADMIN)".into(),
            ));
        }
        match first {
            None => first = Some(pfn),
            Some(f) if pfn != f + i as u64 => {
                return Err(Error::Unsupported(format!(
                    "NOIOMMU DMA: {len:#x} bytes at {va:#x} are not physically contiguous \
                     (page {i} at frame {pfn:#x}, not {:#x}); without an IOMMU the device \
                     needs contiguous memory (hugetlb pages)",
                    f + i as u64
                )))
            }
            Some(_) => {}
        }
    }
    let f = first.ok_or_else(|| Error::InvalidArgument("empty range".into()))?;
    Ok(f * page + va % page)
}

struct Pinned {
    region: Region,
}

/// Memory shared with a device that has no IOMMU: pinned, its physical address its device
/// address. Refused without `CAP_SYS_ADMIN` (checked once, when made).
pub struct NoIommuDma {
    sys: Box<dyn PhysSys>,
    pinned: Mutex<BTreeMap<u64, Pinned>>,
}

impl fmt::Debug for NoIommuDma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoIommuDma")
            .field("pinned", &self.pinned().len())
            .finish()
    }
}

impl NoIommuDma {
    /// The NOIOMMU DMA path through `sys`; refused unless this process has
    /// `CAP_SYS_ADMIN` (without it pagemap hides the frame numbers, and the kernel's
    /// noiommu mode needs CAP_SYS_RAWIO besides).
    pub fn new(sys: Box<dyn PhysSys>) -> Result<NoIommuDma> {
        let caps = sys
            .effective_caps()
            .map_err(|e| Error::io("reading this process's capabilities", e))?;
        if caps & (1 << CAP_SYS_ADMIN) == 0 {
            return Err(Error::Unsupported(
                "VFIO NOIOMMU: physical addresses need CAP_SYS_ADMIN (pagemap hides page \
                 frame numbers from other processes); run as root or grant the capability"
                    .into(),
            ));
        }
        Ok(NoIommuDma {
            sys,
            pinned: Mutex::new(BTreeMap::new()),
        })
    }

    fn pinned(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Pinned>> {
        self.pinned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pins `mem` and returns its physical address. `mem` must be physically contiguous
    /// (refused otherwise, and left unpinned).
    pub fn share(&self, mem: &Region) -> Result<Iova> {
        if mem.is_empty() {
            return Err(Error::InvalidArgument("sharing an empty region".into()));
        }
        let page = self.sys.page_size();
        let va = mem.as_ptr() as u64;
        let first = va / page as u64;
        let last = (va + mem.len() as u64 - 1) / page as u64;
        self.sys.mlock(mem).map_err(|e| {
            Error::io(
                format!(
                    "NOIOMMU DMA: mlock of {:#x} bytes (RLIMIT_MEMLOCK?)",
                    mem.len()
                ),
                e,
            )
        })?;
        let mut entries = vec![0u64; (last - first + 1) as usize];
        let phys = self
            .sys
            .pagemap(first, &mut entries)
            .map_err(|e| Error::io("reading /proc/self/pagemap", e))
            .and_then(|()| physical_address(va, mem.len(), page, &entries));
        let phys = match phys {
            Ok(p) => p,
            Err(e) => {
                let _ = self.sys.munlock(mem);
                return Err(e);
            }
        };
        let mut pinned = self.pinned();
        if pinned.contains_key(&phys) {
            let _ = self.sys.munlock(mem);
            return Err(Error::InvalidArgument(format!(
                "NOIOMMU DMA: {phys:#x} already shared"
            )));
        }
        pinned.insert(
            phys,
            Pinned {
                region: mem.clone(),
            },
        );
        Ok(Iova(phys))
    }

    /// Unpins memory shared at `iova` with exactly `len` bytes.
    pub fn unshare(&self, iova: Iova, len: usize) -> Result<()> {
        let mut pinned = self.pinned();
        match pinned.get(&iova.0) {
            Some(p) if p.region.len() == len => {}
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "NOIOMMU DMA: nothing of {len:#x} bytes shared at {iova}"
                )))
            }
        }
        let p = pinned.remove(&iova.0).expect("checked above");
        self.sys
            .munlock(&p.region)
            .map_err(|e| Error::io("NOIOMMU DMA: munlock", e))
    }

    /// Ranges pinned now.
    pub fn shared_ranges(&self) -> usize {
        self.pinned().len()
    }
}

impl Drop for NoIommuDma {
    fn drop(&mut self) {
        for (_, p) in std::mem::take(&mut *self.pinned()) {
            let _ = self.sys.munlock(&p.region);
        }
    }
}

/// The test twin of [`PhysSys`]: a capability set, page frames of its choosing
/// (contiguous from `first_pfn`, or every other frame), and a record of the locks.
#[cfg(any(test, feature = "fake-kernel"))]
#[derive(Debug)]
pub struct FakePhys {
    /// `CapEff`.
    pub caps: u64,
    /// Frame of the lowest virtual page asked about.
    pub first_pfn: u64,
    /// True: frames of consecutive pages are not consecutive.
    pub fragmented: bool,
    /// True: pages read as not present.
    pub absent: bool,
    /// Locked ranges now: (address, length).
    pub locked: std::sync::Arc<Mutex<Vec<(usize, usize)>>>,
    /// Told of every range unlocked (its virtual address), after the lock list no longer
    /// holds it: the device side of a fake NOIOMMU host.
    pub unlocked: Option<std::sync::Arc<dyn crate::vfio::fake::FakeVfioSide>>,
}

#[cfg(any(test, feature = "fake-kernel"))]
impl FakePhys {
    /// A process with CAP_SYS_ADMIN and contiguous frames.
    pub fn root() -> FakePhys {
        FakePhys {
            caps: 1 << CAP_SYS_ADMIN,
            first_pfn: 0x8_0000,
            fragmented: false,
            absent: false,
            locked: Default::default(),
            unlocked: None,
        }
    }
}

#[cfg(any(test, feature = "fake-kernel"))]
impl FakePhys {
    /// What a device without an IOMMU reaches at a physical address of this fake host
    /// (contiguous frames only).
    pub fn view(&self) -> FakePhysView {
        FakePhysView {
            first_pfn: self.first_pfn,
            locked: self.locked.clone(),
        }
    }
}

/// The physical memory of a [`FakePhys`] host as a device on the bus sees it: frame
/// `first_pfn + vpn` is virtual page `vpn`, and only pinned (mlocked) memory is there to
/// reach; anything else is a bus error.
#[cfg(any(test, feature = "fake-kernel"))]
#[derive(Debug, Clone)]
pub struct FakePhysView {
    /// As the [`FakePhys`] it came from.
    pub first_pfn: u64,
    /// Its locked ranges.
    pub locked: std::sync::Arc<Mutex<Vec<(usize, usize)>>>,
}

#[cfg(any(test, feature = "fake-kernel"))]
impl FakePhysView {
    /// The process address of physical `phys..phys+len`, if it lies in one pinned range.
    pub fn virt(&self, phys: u64, len: usize) -> Option<u64> {
        let page = 4096u64;
        let va = (phys / page).checked_sub(self.first_pfn)? * page + phys % page;
        let end = va.checked_add(len as u64)?;
        let l = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        (len > 0
            && l.iter()
                .any(|&(a, n)| a as u64 <= va && end <= a as u64 + n as u64))
        .then_some(va)
    }
}

#[cfg(any(test, feature = "fake-kernel"))]
impl PhysSys for FakePhys {
    fn page_size(&self) -> usize {
        4096
    }

    fn effective_caps(&self) -> io::Result<u64> {
        Ok(self.caps)
    }

    fn mlock(&self, mem: &Region) -> io::Result<()> {
        let mut l = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        l.push((mem.as_ptr() as usize, mem.len()));
        Ok(())
    }

    fn munlock(&self, mem: &Region) -> io::Result<()> {
        let mut l = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        let key = (mem.as_ptr() as usize, mem.len());
        let i = l
            .iter()
            .position(|x| *x == key)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        l.remove(i);
        drop(l);
        if let Some(side) = &self.unlocked {
            side.on_unmap(key.0 as u64, key.1 as u64);
        }
        Ok(())
    }

    fn pagemap(&self, vpn: u64, out: &mut [u64]) -> io::Result<()> {
        // Without CAP_SYS_ADMIN the kernel zeroes the frame numbers.
        let hide = self.caps & (1 << CAP_SYS_ADMIN) == 0;
        for (i, o) in out.iter_mut().enumerate() {
            let step = if self.fragmented { 2 } else { 1 };
            let pfn = self.first_pfn + (vpn + i as u64) * step;
            *o = if self.absent {
                0
            } else {
                PM_PRESENT | if hide { 0 } else { pfn }
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_without_cap_sys_admin() {
        let mut f = FakePhys::root();
        f.caps = 0;
        let e = NoIommuDma::new(Box::new(f)).unwrap_err().to_string();
        assert!(e.contains("CAP_SYS_ADMIN"), "{e}");
        assert_eq!(
            parse_cap_eff("Name:\tx\nCapEff:\t0000000000200000\n").unwrap(),
            1 << 21
        );
        assert!(parse_cap_eff("Name: x\n").is_err());
    }

    #[test]
    fn shares_pinned_contiguous_memory_at_its_physical_address() {
        let f = FakePhys::root();
        let locked = f.locked.clone();
        let first = f.first_pfn;
        let dma = NoIommuDma::new(Box::new(f)).unwrap();
        let r = Region::anonymous(3 * 4096).unwrap();
        let va = r.as_ptr() as u64;
        let part = r.slice(100, 8000).unwrap();
        let iova = dma.share(&part).unwrap();
        assert_eq!(iova.0, (first + va / 4096) * 4096 + 100);
        let view = FakePhysView {
            first_pfn: first,
            locked: locked.clone(),
        };
        assert_eq!(view.virt(iova.0, 8000), Some(va + 100));
        assert_eq!(view.virt(iova.0, 8001), None, "beyond the pinned range");
        assert_eq!(locked.lock().unwrap().len(), 1, "pinned");
        assert!(dma.share(&part).is_err(), "twice");
        assert!(dma.unshare(iova, 10).is_err());
        dma.unshare(iova, 8000).unwrap();
        assert!(locked.lock().unwrap().is_empty(), "unpinned");
        let again = dma.share(&r).unwrap();
        drop(dma);
        assert!(locked.lock().unwrap().is_empty(), "unpinned at release");
        assert_ne!(again.0, va);
    }

    #[test]
    fn fragmented_or_absent_memory_is_refused_and_left_unpinned() {
        for (fragmented, absent, why) in [(true, false, "contiguous"), (false, true, "resident")] {
            let mut f = FakePhys::root();
            f.fragmented = fragmented;
            f.absent = absent;
            let locked = f.locked.clone();
            let dma = NoIommuDma::new(Box::new(f)).unwrap();
            let r = Region::anonymous(2 * 4096).unwrap();
            let e = dma.share(&r).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
            assert!(locked.lock().unwrap().is_empty());
            // One page is always contiguous with itself.
            if fragmented {
                dma.share(&r.slice(0, 4096).unwrap()).unwrap();
            }
        }
        // Frame numbers hidden (no capability): the entry says present, frame 0.
        let e = physical_address(0x1000, 8, 4096, &[PM_PRESENT]).unwrap_err();
        assert!(e.to_string().contains("CAP_SYS_ADMIN"), "{e}");
        assert!(physical_address(0x1000, 8, 4096, &[PM_PRESENT | PM_SWAPPED | 5]).is_err());
    }

    #[test]
    fn real_pagemap_of_this_process() {
        // Unprivileged here (or not): either the frames are hidden and the refusal says
        // so, or a single resident page has an address.
        let r = Region::anonymous(4096).unwrap();
        match NoIommuDma::new(Box::new(RealPhys)) {
            Err(e) => assert!(e.to_string().contains("CAP_SYS_ADMIN"), "{e}"),
            Ok(dma) => match dma.share(&r) {
                Ok(iova) => assert_ne!(iova.0, 0),
                // mlock limits can refuse; the message names the cause.
                Err(e) => assert!(e.to_string().contains("mlock"), "{e}"),
            },
        }
    }
}
