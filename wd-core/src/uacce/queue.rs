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
use crate::device::DeviceInfo;
use crate::dma::Iova;
use crate::error::{Error, Result};
use crate::fork::Epoch;
use crate::region::Region;
use crate::uacce::ioctl::{
    self, Abi, HisiQpCtx, HisiQpInfo, UACCE_CMD_QM_SET_QP_CTX, UACCE_CMD_QM_SET_QP_INFO,
    UACCE_QFRT_DUS, UACCE_QFRT_MMIO,
};
use crate::uacce::kernel::{engine_sqe_size, expected_dus_size, LEGACY_DEPTH};
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
    state: AtomicU8,
    epoch: Epoch,
}

impl fmt::Debug for UacceQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UacceQueue")
            .field("device", &self.name)
            .field("info", &self.info)
            .field("abi", &self.abi)
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
    /// The caller has checked the api, SVA and isolation (see [`super::UacceBackend`]).
    pub fn open(
        sys: Arc<dyn UacceSys>,
        dev: &DeviceInfo,
        abi: Abi,
        req: QueueRequest,
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
    /// virtual address. (Queues are opened only on SVA devices.)
    fn map_dma(&self, mem: &Region) -> Result<Iova> {
        self.live()?;
        if mem.is_empty() {
            return Err(Error::InvalidArgument("sharing an empty region".into()));
        }
        Ok(Iova(mem.as_ptr() as u64))
    }

    fn unmap_dma(&self, _iova: Iova, _len: usize) -> Result<()> {
        // Nothing was mapped: SVA shares the whole address space.
        Ok(())
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
