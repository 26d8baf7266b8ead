//! The device side of wd-core's fake uacce kernel ([`wd_core::uacce::fake`]): the model's
//! queues as the kernel hands them out, so the unmodified uacce backend and user drivers run
//! end to end against fixture sysfs trees.
//!
//! The order follows the kernel's: a queue's DUS and MMIO memory exist from open (the QP is
//! allocated then, before the qc_type is known); START_Q gives the device the queue with
//! the qc_type latched; PUT_Q / close / removal take it away. Doorbell stores before START_Q
//! reach nothing, as on hardware whose queue context is not yet programmed.
//!
//! DMA on an SVA device is SVA, as on mainline: the device is given process virtual
//! addresses and reaches them through [`Sva`], which refuses (with the hardware's
//! address-fault status) any range that is not mapped read-write in the process. On a
//! no-SVA device (openEuler `_noiommu`) the device sees "physical" addresses: only the
//! pieces of the queue's static-share region at the device addresses the kernel gave them
//! ([`StaticShareDma`]); a virtual address, or anything outside the region, faults.

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use wd_core::fork::Epoch;
use wd_core::uacce::fake::{FakeDevice, FakeDeviceSide, FakeHwQueue, SsPiece};
use wd_core::{MmioHook, Region};

use crate::config::ApiVersion;
use crate::device::{lock, DeviceCore, HwQueue, Shared};
use crate::engine::{DmaAccess, DmaFault, Engine};
use crate::hpre::HpreEngine;
use crate::layout::qm::{DoorbellFormat, DusLayout};
use crate::stats::ModelStats;
use crate::sys::EventFd;

/// The engine behind a uacce driver name; `None` for engines the model lacks.
pub fn engine_for(driver: &str) -> Option<Arc<dyn Engine>> {
    match driver {
        "hisi_hpre" => Some(Arc::new(HpreEngine)),
        "hisi_zip" => Some(Arc::new(crate::zip::ZipEngine::new(
            crate::zip::DEFAULT_LEVEL,
        ))),
        _ => None,
    }
}

/// Device addresses as SVA gives them: process virtual addresses, each access checked to
/// lie in memory mapped read-write (`/proc/self/maps`); anything else is an address fault.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sva;

/// True if `start..end` is covered by read-write mappings of this process.
fn mapped_rw(start: u64, end: u64) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let mut cur = start;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        if a <= cur && cur < b {
            if !perms.starts_with("rw") {
                return false;
            }
            cur = b;
            if cur >= end {
                return true;
            }
        }
    }
    false
}

impl DmaAccess for Sva {
    fn translate(&self, iova: u64, len: usize) -> Result<Region, DmaFault> {
        let fault = DmaFault { iova, len };
        if len == 0 {
            return Err(fault);
        }
        let end = iova.checked_add(len as u64).ok_or(fault)?;
        if !mapped_rw(iova, end) {
            return Err(fault);
        }
        let base = NonNull::new(iova as usize as *mut u8).ok_or(fault)?;
        // SAFETY: the range was just found mapped read-write in this process. As with a
        // real SVA device, the memory must stay mapped while the request that names it is
        // in flight: the drivers keep their DMA blocks alive until the completion.
        Ok(unsafe { Region::from_raw(base, len, Arc::new(())) })
    }
}

/// The device's view of a no-SVA queue's static-share region: each piece at its device
/// address. An access must lie wholly inside one piece; everything else is an address
/// fault (there is no IOMMU and no SVA to reach other memory).
#[derive(Debug, Clone)]
pub struct StaticShareDma {
    region: Region,
    pieces: Vec<SsPiece>,
}

impl StaticShareDma {
    /// The region's memory and its pieces.
    pub fn new(region: Region, pieces: Vec<SsPiece>) -> Self {
        StaticShareDma { region, pieces }
    }
}

impl DmaAccess for StaticShareDma {
    fn translate(&self, iova: u64, len: usize) -> Result<Region, DmaFault> {
        let fault = DmaFault { iova, len };
        if len == 0 {
            return Err(fault);
        }
        let end = iova.checked_add(len as u64).ok_or(fault)?;
        let p = self
            .pieces
            .iter()
            .find(|p| p.dma <= iova && end <= p.dma + p.len as u64)
            .ok_or(fault)?;
        self.region
            .slice(p.off + (iova - p.dma) as usize, len)
            .map_err(|_| fault)
    }
}

/// How the device of a fake-kernel queue reaches memory.
#[derive(Debug, Clone)]
pub enum UacceDma {
    /// SVA: process virtual addresses.
    Sva(Sva),
    /// No-SVA: the static-share region only.
    StaticShare(StaticShareDma),
    /// A VF behind the fake vfio kernel: its IOMMU or pinned memory ([`crate::vfio_fake`]).
    Vfio(crate::vfio_fake::VfioDma),
}

impl DmaAccess for UacceDma {
    fn translate(&self, iova: u64, len: usize) -> Result<Region, DmaFault> {
        match self {
            UacceDma::Sva(s) => s.translate(iova, len),
            UacceDma::StaticShare(s) => s.translate(iova, len),
            UacceDma::Vfio(v) => v.translate(iova, len),
        }
    }
}

/// Knobs of the model behind a fake kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideConfig {
    /// Engine threads per device.
    pub engines: usize,
    /// Extra latency per request.
    pub latency: Duration,
    /// Engine spin after a completion.
    pub spin: Duration,
}

impl Default for SideConfig {
    fn default() -> Self {
        SideConfig {
            engines: 1,
            latency: Duration::ZERO,
            spin: crate::config::DEFAULT_SPIN,
        }
    }
}

struct Proc {
    epoch: Epoch,
    cores: Vec<(String, Arc<DeviceCore>)>,
    threads: Vec<JoinHandle<()>>,
}

/// The model as the device side of a fake kernel.
pub struct ModelSide {
    config: SideConfig,
    shared: Arc<Shared>,
    state: Mutex<Option<Proc>>,
}

impl fmt::Debug for ModelSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelSide")
            .field("config", &self.config)
            .finish()
    }
}

impl Default for ModelSide {
    fn default() -> Self {
        ModelSide::new(SideConfig::default())
    }
}

impl ModelSide {
    /// A device side with these knobs; threads start with the first queue.
    pub fn new(config: SideConfig) -> Self {
        ModelSide {
            config,
            shared: Arc::new(Shared::default()),
            state: Mutex::new(None),
        }
    }

    /// Counters of every device of this side.
    pub fn stats(&self) -> ModelStats {
        self.shared.stats.snapshot()
    }

    /// This process's device `dev` (threads started on first use, rebuilt after a fork).
    fn core(&self, dev: &FakeDevice) -> io::Result<Arc<DeviceCore>> {
        let mut st = lock(&self.state);
        if st.as_ref().is_some_and(|p| !p.epoch.is_current()) {
            // The parent's threads do not exist here: forget, never join.
            if let Some(old) = st.take() {
                std::mem::forget(old);
            }
        }
        let p = st.get_or_insert_with(|| Proc {
            epoch: Epoch::current(),
            cores: Vec::new(),
            threads: Vec::new(),
        });
        if let Some((_, c)) = p.cores.iter().find(|(n, _)| *n == dev.name) {
            return Ok(c.clone());
        }
        let engine = engine_for(&dev.driver).ok_or_else(|| {
            wd_core::wd_log!(Warn, "model: no engine for {} yet", dev.driver);
            io::Error::from_raw_os_error(libc::ENODEV)
        })?;
        let api: ApiVersion = dev
            .api
            .trim()
            .trim_end_matches(wd_core::uacce::kernel::NOIOMMU_SUFFIX)
            .parse()
            .map_err(|e: String| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let core = Arc::new(DeviceCore::new(
            dev.name.clone(),
            engine,
            api,
            self.shared.clone(),
            self.config.latency,
            self.config.spin,
        ));
        let number = dev.name.rsplit('-').next().unwrap_or("0").to_string();
        for i in 0..self.config.engines.max(1) {
            let c = core.clone();
            let t = std::thread::Builder::new()
                .name(format!("wdk-{number}-e{i}"))
                .spawn(move || c.engine_loop(i))?;
            p.threads.push(t);
        }
        p.cores.push((dev.name.clone(), core.clone()));
        Ok(core)
    }
}

impl Drop for ModelSide {
    fn drop(&mut self) {
        let st = self
            .state
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut p) = st {
            if !p.epoch.is_current() {
                std::mem::forget(p);
                return;
            }
            for (_, c) in &p.cores {
                c.shutdown();
            }
            for t in p.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// Forwards doorbell stores to the device once the queue is started.
struct LateHook {
    started: OnceLock<(Arc<HwQueue>, Arc<DeviceCore>)>,
    format: DoorbellFormat,
    early: AtomicU64,
}

impl MmioHook for LateHook {
    fn on_write_u64(&self, offset: usize, value: u64) {
        match self.started.get() {
            Some((hw, core)) => core.mmio_write(hw, self.format, offset, value),
            None => {
                self.early.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One queue of [`ModelSide`].
pub struct ModelHwQueue {
    dev: FakeDevice,
    qid: u16,
    core: Arc<DeviceCore>,
    dus: Region,
    mmio: Region,
    hook: Arc<LateHook>,
    /// A no-SVA queue's static-share region, once the kernel made it.
    ss: Mutex<Option<StaticShareDma>>,
}

impl fmt::Debug for ModelHwQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelHwQueue")
            .field("device", &self.dev.name)
            .field("qid", &self.qid)
            .field("started", &self.hook.started.get().is_some())
            .finish()
    }
}

impl ModelHwQueue {
    /// Doorbell stores made before START_Q (ignored by the device).
    pub fn early_doorbells(&self) -> u64 {
        self.hook.early.load(Ordering::Relaxed)
    }
}

/// Marks `r` as not inherited by a forked child, as uacce's `VM_DONTCOPY` does for queue
/// mappings: a child that touches its parent's queue memory faults, as it would on a host.
fn dont_fork(r: &Region) -> io::Result<()> {
    // SAFETY: `r` is a whole anonymous mapping of its own (page-aligned start); DONTFORK
    // changes only what a later fork copies, not this process's view of the memory.
    let rc = unsafe { libc::madvise(r.as_ptr().cast(), r.len(), libc::MADV_DONTFORK) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl FakeDeviceSide for ModelSide {
    fn create_queue(&self, dev: &FakeDevice, qid: u16) -> io::Result<Arc<dyn FakeHwQueue>> {
        let core = self.core(dev)?;
        let map = |e: wd_core::Error| io::Error::other(e.to_string());
        let dus = Region::anonymous(dev.dus_size).map_err(map)?;
        let mmio = Region::anonymous(dev.mmio_size).map_err(map)?;
        dont_fork(&dus)?;
        dont_fork(&mmio)?;
        let format = core.api.doorbell();
        let hook = Arc::new(LateHook {
            started: OnceLock::new(),
            format,
            early: AtomicU64::new(0),
        });
        Ok(Arc::new(ModelHwQueue {
            dev: dev.clone(),
            qid,
            core,
            dus,
            mmio,
            hook,
            ss: Mutex::new(None),
        }))
    }
}

impl FakeHwQueue for ModelHwQueue {
    fn dus(&self) -> Region {
        self.dus.clone()
    }

    fn mmio(&self) -> Region {
        self.mmio.clone()
    }

    fn mmio_hook(&self) -> Option<Arc<dyn MmioHook>> {
        Some(self.hook.clone())
    }

    fn start(&self, qc_type: u16) -> io::Result<()> {
        let layout = DusLayout {
            sqe_size: self.dev.sqe_size as usize,
            sq_depth: usize::from(self.dev.depth),
            cq_depth: usize::from(self.dev.depth),
            page: self.dev.page_size,
        };
        if layout.size() != self.dus.len() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let event = EventFd::new()?;
        let hw = Arc::new(HwQueue::new(
            self.qid,
            qc_type,
            layout,
            self.dus.clone(),
            event,
        ));
        let dma = if self.dev.no_sva {
            // No SVA: until the static-share region exists the device reaches nothing.
            let ss = lock(&self.ss)
                .clone()
                .unwrap_or_else(|| StaticShareDma::new(self.dus.clone(), Vec::new()));
            UacceDma::StaticShare(ss)
        } else {
            UacceDma::Sva(Sva)
        };
        let _ = hw.uacce_dma.set(dma);
        self.core.add_queue(hw.clone());
        self.hook
            .started
            .set((hw, self.core.clone()))
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    }

    /// The kernel maps the region before START_Q (wd's bring-up order); made after it, the
    /// running queue would keep the view it started with, so that is refused.
    fn static_share(&self, len: usize, pieces: &[SsPiece]) -> io::Result<Region> {
        if !self.dev.no_sva || self.hook.started.get().is_some() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let map = |e: wd_core::Error| io::Error::other(e.to_string());
        let region = Region::anonymous(len).map_err(map)?;
        dont_fork(&region)?;
        *lock(&self.ss) = Some(StaticShareDma::new(region.clone(), pieces.to_vec()));
        Ok(region)
    }

    fn stop(&self) {
        if let Some((hw, core)) = self.hook.started.get() {
            hw.shut();
            core.remove_queue(hw);
        }
    }

    fn wait(&self, timeout: Duration) -> bool {
        match self.hook.started.get() {
            Some((hw, _)) => hw.event.wait(timeout).unwrap_or(false),
            None => {
                std::thread::sleep(timeout.min(Duration::from_millis(50)));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sva_translates_only_mapped_rw_memory() {
        let r = Region::anonymous(8192).unwrap();
        r.write_bytes(100, b"abc");
        let va = r.as_ptr() as u64;
        let t = Sva.translate(va + 100, 3).unwrap();
        let mut out = [0u8; 3];
        t.read_bytes(0, &mut out);
        assert_eq!(&out, b"abc");
        assert!(Sva.translate(0, 8).is_err());
        assert!(Sva.translate(8, 8).is_err());
        assert!(Sva.translate(u64::MAX - 4, 8).is_err());
        // Code is mapped but not writable.
        let code = sva_translates_only_mapped_rw_memory as *const () as usize as u64;
        assert!(Sva.translate(code, 8).is_err());
    }

    #[test]
    fn static_share_translates_only_its_pieces() {
        let r = Region::anonymous(0x40000).unwrap();
        r.write_bytes(0x20010, b"xyz");
        let pieces = vec![
            SsPiece {
                dma: 0x80_0000_0000,
                off: 0,
                len: 0x20000,
            },
            SsPiece {
                dma: 0x80_0003_0000,
                off: 0x20000,
                len: 0x20000,
            },
        ];
        let ss = StaticShareDma::new(r.clone(), pieces);
        let mut out = [0u8; 3];
        ss.read(0x80_0003_0010, &mut out).unwrap();
        assert_eq!(&out, b"xyz");
        // Across the two pieces (contiguous in memory, not on the bus), past the end, the
        // gap between them, and the virtual address of the memory itself: faults.
        assert!(ss.translate(0x80_0001_fff0, 0x20).is_err());
        assert!(ss.translate(0x80_0004_fff0, 0x20).is_err());
        assert!(ss.translate(0x80_0002_0000, 4).is_err());
        assert!(ss.translate(r.as_ptr() as u64, 4).is_err());
        assert!(ss.translate(u64::MAX - 2, 4).is_err());
    }

    #[test]
    fn engines_by_driver_name() {
        assert!(engine_for("hisi_hpre").is_some());
        assert_eq!(engine_for("hisi_zip").unwrap().sqe_size(), 128);
        assert!(engine_for("acme").is_none());
    }
}
