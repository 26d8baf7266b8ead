//! One uacce queue: the bring-up of docs/hardware-interface.md §1.4, the interrupt wait,
//! teardown, and the fork rule (a child closes its copy of the descriptor and touches
//! nothing else).

#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{QueueBackend, QueueInfo, QueueRequest};
use crate::device::{AddressMode, DeviceInfo};
use crate::dma::Iova;
use crate::error::{Error, Result};
use crate::fork::Epoch;
use crate::region::Region;
use crate::uacce::ioctl::{
    self, Abi, HisiQpCtx, HisiQpInfo, SsDmaAnswer, UACCE_CMD_QM_SET_QP_CTX,
    UACCE_CMD_QM_SET_QP_INFO, UACCE_GRAN_SIZE, UACCE_QFRT_DUS, UACCE_QFRT_MMIO, UACCE_QFRT_SS,
};
use crate::uacce::kernel::{engine_sqe_size, expected_dus_size, LEGACY_DEPTH};
use crate::uacce::ss::{slices_from_answers, StaticShare};
use crate::uacce::sys::{mapped_region, IoctlArg, SeamFd, UacceSys};

const LIVE: u8 = 0;
const RELEASED: u8 = 1;
const ABANDONED: u8 = 2;

/// An errno from the kernel as a typed error: EBUSY means no free queue (the caller falls
/// back), ENXIO/ENODEV that the device or queue is gone.
pub fn errno_error(dev: &str, op: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EBUSY) => Error::NoFreeQueue(format!("{dev}: {op}: every queue is in use")),
        Some(libc::ENXIO) | Some(libc::ENODEV) => Error::DeviceGone(format!("{dev}: {op}: {e}")),
        _ => Error::io(format!("{dev}: {op}"), e),
    }
}

fn open_error(dev: &DeviceInfo, path: &std::path::Path, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Error::NoDevice(format!(
            "{}: no device node {} (is the driver loaded with uacce_mode=1?)",
            dev.name,
            path.display()
        )),
        Some(libc::EACCES) | Some(libc::EPERM) => Error::io(
            format!(
                "{}: open {} (needs read-write access to the node: see the udev rule in \
                 docs/hardware.md)",
                dev.name,
                path.display()
            ),
            e,
        ),
        _ => errno_error(&dev.name, &format!("open {}", path.display()), e),
    }
}

/// An opened, started uacce queue.
pub struct UacceQueue {
    name: String,
    info: QueueInfo,
    abi: Abi,
    sys: Arc<dyn UacceSys>,
    fd: Arc<SeamFd>,
    dus: Region,
    mmio: Region,
    /// No-SVA queues: the static-share region every DMA address comes from.
    ss: Option<StaticShare>,
    state: AtomicU8,
    epoch: Epoch,
}

impl fmt::Debug for UacceQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UacceQueue")
            .field("device", &self.name)
            .field("info", &self.info)
            .field("abi", &self.abi)
            .field("static_share", &self.ss.as_ref().map(|s| s.slices().len()))
            .field("fd", &self.fd.get())
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

impl UacceQueue {
    /// Opens and starts a queue on `dev` in the order of hardware-interface §1.4: open
    /// (O_RDWR|O_CLOEXEC); mmap DUS (offset 1 page, `region_dus_size`) then MMIO (offset 0,
    /// `region_mmio_size`); SET_QP_CTX with the qc_type; SET_QP_INFO, or depth 1024 and the
    /// engine's SQE size on kernels without it; START_Q. On failure everything done so far
    /// is undone (munmap, close; an unstarted queue needs no PUT_Q).
    ///
    /// `static_share`: `None` for an SVA queue; for a no-SVA queue the bytes of
    /// static-share region to map (offset 2 pages, right after MMIO) and read the device
    /// addresses of with GET_SS_DMA, slice by slice (hardware-interface §3.8).
    ///
    /// The caller has checked the api, the address mode and isolation (see
    /// [`super::UacceBackend`]).
    pub fn open(
        sys: Arc<dyn UacceSys>,
        dev: &DeviceInfo,
        abi: Abi,
        req: QueueRequest,
        static_share: Option<usize>,
    ) -> Result<UacceQueue> {
        let name = dev.name.as_str();
        let page = sys.page_size();
        if page == 0 || !page.is_power_of_two() {
            return Err(Error::Config(format!("page size {page} from the kernel")));
        }
        for (what, size) in [
            ("region_dus_size", dev.dus_size),
            ("region_mmio_size", dev.mmio_size),
        ] {
            if size == 0 || !size.is_multiple_of(page) {
                return Err(Error::Unsupported(format!(
                    "{name}: {what} {size:#x} is not a whole number of {page}-byte pages"
                )));
            }
        }
        let path = dev
            .dev_path
            .clone()
            .ok_or_else(|| Error::NoDevice(format!("{name}: no device node")))?;

        let raw = sys
            .open(&path, libc::O_RDWR | libc::O_CLOEXEC)
            .map_err(|e| open_error(dev, &path, e))?;
        let fd = SeamFd::new(sys.clone(), raw);

        let dus_off = UACCE_QFRT_DUS * page as u64;
        let dus = sys
            .mmap(raw, dev.dus_size, dus_off)
            .map_err(|e| errno_error(name, "mmap DUS region", e))?;
        let dus = mapped_region(sys.clone(), fd.clone(), dus);
        let mmio = sys
            .mmap(raw, dev.mmio_size, UACCE_QFRT_MMIO * page as u64)
            .map_err(|e| errno_error(name, "mmap MMIO region", e))?;
        let mmio = mapped_region(sys.clone(), fd.clone(), mmio);
        let ss = match static_share {
            None => None,
            Some(len) => Some(map_static_share(&sys, &fd, raw, name, abi, page, len)?),
        };

        let mut ctx = HisiQpCtx {
            id: 0,
            qc_type: req.qc_type,
        }
        .to_bytes();
        sys.ioctl(raw, UACCE_CMD_QM_SET_QP_CTX, IoctlArg::Buf(&mut ctx))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EINVAL) => Error::InvalidArgument(format!(
                    "{name}: the kernel refused qc_type {} (SET_QP_CTX: EINVAL)",
                    req.qc_type
                )),
                _ => errno_error(name, "SET_QP_CTX", e),
            })?;
        let qid = HisiQpCtx::from_bytes(&ctx).id;

        let mut qi = HisiQpInfo::default().to_bytes();
        let info = match sys.ioctl(raw, UACCE_CMD_QM_SET_QP_INFO, IoctlArg::Buf(&mut qi)) {
            Ok(_) => {
                let i = HisiQpInfo::from_bytes(&qi);
                QueueInfo {
                    qid,
                    sqe_size: i.sqe_size,
                    sq_depth: i.sq_depth,
                    cq_depth: i.cq_depth,
                }
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTTY)) => {
                let sqe_size = engine_sqe_size(dev.driver()).ok_or_else(|| {
                    Error::Unsupported(format!(
                        "{name}: the kernel has no SET_QP_INFO and the SQE size of driver {} \
                         is unknown",
                        dev.driver()
                    ))
                })?;
                crate::wd_log!(
                    Info,
                    "uacce: {name}: no SET_QP_INFO ({e}); older kernel: depth {LEGACY_DEPTH}, \
                     {sqe_size}-byte SQEs"
                );
                QueueInfo {
                    qid,
                    sqe_size,
                    sq_depth: LEGACY_DEPTH,
                    cq_depth: LEGACY_DEPTH,
                }
            }
            Err(e) => return Err(errno_error(name, "SET_QP_INFO", e)),
        };
        let expect = expected_dus_size(info.sqe_size, info.sq_depth, info.cq_depth, page);
        if expect != dev.dus_size {
            crate::wd_log!(
                Warn,
                "uacce: {name}: region_dus_size {:#x} differs from {expect:#x} computed from \
                 {}-byte SQEs and depths {}/{}",
                dev.dus_size,
                info.sqe_size,
                info.sq_depth,
                info.cq_depth
            );
        }

        sys.ioctl(raw, abi.start_q(), IoctlArg::None)
            .map_err(|e| errno_error(name, ioctl::name(abi.start_q(), abi), e))?;
        crate::wd_log!(
            Debug,
            "uacce: {name}: queue {qid} started (qc_type {}, {}-byte SQEs, depth {}/{}, {abi} \
             numbering)",
            req.qc_type,
            info.sqe_size,
            info.sq_depth,
            info.cq_depth
        );
        Ok(UacceQueue {
            name: dev.name.clone(),
            info,
            abi,
            sys,
            fd,
            dus,
            mmio,
            ss,
            state: AtomicU8::new(LIVE),
            epoch: Epoch::current(),
        })
    }

    fn live(&self) -> Result<()> {
        match self.state.load(Ordering::Acquire) {
            LIVE => Ok(()),
            RELEASED => Err(Error::DeviceGone(format!(
                "{}: queue {} was released",
                self.name, self.info.qid
            ))),
            _ => Err(Error::DeviceGone(format!(
                "{}: queue {} belongs to the parent process",
                self.name, self.info.qid
            ))),
        }
    }

    /// The numbering the queue was opened with.
    pub fn abi(&self) -> Abi {
        self.abi
    }
}

impl QueueBackend for UacceQueue {
    fn info(&self) -> QueueInfo {
        self.info
    }

    fn mmio(&self) -> &Region {
        &self.mmio
    }

    fn dus(&self) -> &Region {
        &self.dus
    }

    /// SVA: the device walks the process's page tables, so its address for `mem` is the
    /// virtual address. No-SVA: only memory inside the static-share region has a device
    /// address (its slice's DMA address plus the offset); anything else is refused, since
    /// there is no IOMMU mapping to make for it.
    fn map_dma(&self, mem: &Region) -> Result<Iova> {
        self.live()?;
        if mem.is_empty() {
            return Err(Error::InvalidArgument("sharing an empty region".into()));
        }
        match &self.ss {
            None => Ok(Iova(mem.as_ptr() as u64)),
            Some(ss) => ss
                .translate(mem)
                .map_err(|e| Error::Unsupported(format!("{}: {e}", self.name))),
        }
    }

    fn unmap_dma(&self, _iova: Iova, _len: usize) -> Result<()> {
        // Nothing was mapped: SVA shares the whole address space, and the static-share
        // region stays the device's until the queue is released.
        Ok(())
    }

    fn address_mode(&self) -> AddressMode {
        match self.ss {
            None => AddressMode::Sva,
            Some(_) => AddressMode::StaticShare,
        }
    }

    /// No-SVA: carved from the static-share region (the only memory the device reaches).
    fn alloc_dma(&self, len: usize) -> Result<(Region, Iova)> {
        self.live()?;
        match &self.ss {
            None => {
                let region = Region::anonymous(len)?;
                let iova = self.map_dma(&region)?;
                Ok((region, iova))
            }
            Some(ss) => ss.alloc(len),
        }
    }

    fn free_dma(&self, mem: &Region, iova: Iova) -> Result<()> {
        match &self.ss {
            None => self.unmap_dma(iova, mem.len()),
            Some(ss) => ss.free(mem, iova),
        }
    }

    fn wait(&self, timeout: Duration) -> Result<bool> {
        self.live()?;
        let fd = self
            .fd
            .get()
            .ok_or_else(|| Error::DeviceGone(format!("{}: queue descriptor closed", self.name)))?;
        self.sys
            .poll(fd, timeout)
            .map_err(|e| errno_error(&self.name, "poll", e))
    }

    /// The queue's descriptor: uacce's `poll()` reports it readable when the CQ holds a
    /// completion the driver has not consumed (`hisi_qm_is_q_updated`).
    fn event_fd(&self) -> Option<std::os::fd::RawFd> {
        if self.live().is_err() || !self.sys.descriptors_are_real() {
            return None;
        }
        self.fd.get()
    }

    fn release(&self) -> Result<()> {
        if !self.epoch.is_current() {
            self.abandon();
            return Ok(());
        }
        if self
            .state
            .compare_exchange(LIVE, RELEASED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(());
        }
        let Some(fd) = self.fd.get() else {
            return Ok(());
        };
        match self.sys.ioctl(fd, self.abi.put_q(), IoctlArg::None) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                // The kernel already took the queue down (device removal).
                crate::wd_log!(Info, "uacce: {}: PUT_Q: queue already gone", self.name);
                Ok(())
            }
            Err(e) => Err(errno_error(&self.name, "PUT_Q", e)),
        }
    }

    /// Closes this process's copy of the descriptor only. The mappings are not inherited
    /// (VM_DONTCOPY / VM_WIPEONFORK) and are never unmapped here; the queue stays the
    /// parent's (no PUT_Q).
    fn abandon(&self) {
        self.state.store(ABANDONED, Ordering::Release);
        self.fd.close_now();
    }
}

/// Maps `len` bytes (rounded up to whole granules and pages) of the static-share region of
/// queue `raw` and reads its device addresses: GET_SS_DMA with slice index 0, 1, ... until
/// the kernel says none are left (uadk's header), or the one address of the whole region
/// (the legacy openEuler answer).
fn map_static_share(
    sys: &Arc<dyn UacceSys>,
    fd: &Arc<SeamFd>,
    raw: crate::uacce::sys::Fd,
    name: &str,
    abi: Abi,
    page: usize,
    len: usize,
) -> Result<StaticShare> {
    let unit = (UACCE_GRAN_SIZE as usize).max(page);
    let len = len.div_ceil(unit) * unit;
    let m = sys
        .mmap(raw, len, UACCE_QFRT_SS * page as u64)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOMEM) => Error::NoFreeQueue(format!(
                "{name}: the kernel has no {len:#x} bytes of static-share memory (mmap SS:                  ENOMEM; lower WD_SS_SIZE)"
            )),
            _ => errno_error(name, "mmap static-share region", e),
        })?;
    let region = mapped_region(sys.clone(), fd.clone(), m);
    let request = abi.get_ss_dma();
    let mut answers = Vec::new();
    loop {
        let index = answers.len() as u64;
        let mut arg = index.to_ne_bytes();
        let ret = sys
            .ioctl(raw, request, IoctlArg::Buf(&mut arg))
            .map_err(|e| errno_error(name, ioctl::name(request, abi), e))?;
        let a = SsDmaAnswer::decode(u64::from_ne_bytes(arg), ret)
            .map_err(|e| Error::Protocol(format!("{name}: {e}")))?;
        answers.push(a);
        match a {
            SsDmaAnswer::Slice { left, .. } if left > 0 => {
                if answers.len() > 4096 {
                    return Err(Error::Protocol(format!(
                        "{name}: GET_SS_DMA reports more than 4096 slices"
                    )));
                }
            }
            _ => break,
        }
    }
    let slices = slices_from_answers(len, &answers).map_err(|e| match e {
        Error::Protocol(m) => Error::Protocol(format!("{name}: {m}")),
        e => e,
    })?;
    crate::wd_log!(
        Info,
        "uacce: {name}: static-share region of {len:#x} bytes in {} slice(s), first at          device address {:#x}",
        slices.len(),
        slices[0].dma
    );
    Ok(StaticShare::new(region, slices))
}

impl Drop for UacceQueue {
    fn drop(&mut self) {
        if !self.epoch.is_current() {
            self.abandon();
            return;
        }
        if self.state.load(Ordering::Acquire) == LIVE {
            if let Err(e) = self.release() {
                crate::wd_log!(Warn, "uacce: {}: {e}", self.name);
            }
        }
    }
}
