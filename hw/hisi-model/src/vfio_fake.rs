//! The device side of wd-core's fake vfio kernel ([`wd_core::vfio::fake::FakeVfio`]): a
//! HiSilicon VF as a user driver sees it through vfio-pci, so that wd-core's VFIO backend,
//! the QM bring-up of `hisi_qm::vfio_bringup` and the unchanged HPRE and ZIP drivers run
//! end to end against the model.
//!
//! What is modelled (docs/hardware-interface.md §6.5):
//! - **BAR2**: the mailbox at 0x300 acting on each whole 128-bit store (a store that does
//!   not set busy does nothing); the interrupt mask registers (plain memory); the v2
//!   doorbell at 0x1000, the queue picked by the word's qn.
//! - **Mailbox commands**: SQC_VFT read (the function's queue range), SQC_BT and CQC_BT
//!   (table bases, checked reachable for one 32-byte context per queue), SQC and CQC
//!   (32 bytes read by DMA from the address given, copied into the tables), STOP_QP.
//!   Failures set the status field `[12:9]` and clear busy; EQC/AEQC are answered
//!   "unsupported" (the model has no event queues: a VF without interrupts needs none).
//!   The command completes inside the store (busy is never seen set afterwards) unless
//!   the `stuck` knob holds busy set forever.
//! - **Queue start**: a queue runs once both its contexts are written. The model keeps SQ
//!   and CQ in one region (its engine's layout), so it refuses — bad-context status — a
//!   CQC whose ring does not start right after the SQ, or sizes other than its engine's.
//! - **DMA**: every device access (contexts, tables, rings, request buffers) goes through
//!   the function's IOMMU: the fake kernel's type1 mappings ([`FakeVfio::translate`]), or
//!   on a NOIOMMU group the fake host's pinned physical memory ([`FakePhysView`]). A range
//!   leaving the IOMMU (UNMAP_DMA, munlock) first stops every queue whose ring is in it.
//!
//! Not modelled: interrupts (EQ/AEQ, MSI), FLR/reset, the PF's registers, doorbell
//! isolation (BAR4), `QM_QP_DEPTH_CAP`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use wd_core::region::page_size;
use wd_core::vfio::backend::{Candidate, VfioBackend, VfioHost};
use wd_core::vfio::fake::{FakeVfio, FakeVfioSide};
use wd_core::vfio::noiommu::{FakePhys, FakePhysView, PhysSys};
use wd_core::{Error, MmioHook, Region, Result};

use crate::config::{ApiVersion, ModelConfig};
use crate::device::{lock, DeviceCore, HwQueue, Shared};
use crate::engine::{DmaAccess, DmaFault, Engine};
use crate::layout::qm::{Doorbell, DoorbellFormat, DusLayout, CQE_SIZE};
use crate::mailbox::{self, cmd, status, Cqc, MbCommand, Sqc, QC_SIZE};
use crate::stats::ModelStats;
use crate::sys::EventFd;
use crate::uacce_fake::UacceDma;

/// How the function's device reaches memory.
#[derive(Debug, Clone)]
pub enum VfioDma {
    /// Through the fake kernel's type1 IOMMU.
    Type1(Weak<FakeVfio>),
    /// No IOMMU: the fake host's pinned physical memory.
    Phys(FakePhysView),
}

impl DmaAccess for VfioDma {
    fn translate(&self, iova: u64, len: usize) -> std::result::Result<Region, DmaFault> {
        let fault = DmaFault { iova, len };
        let va = match self {
            VfioDma::Type1(k) => k.upgrade().and_then(|k| k.translate(iova, len)),
            VfioDma::Phys(v) => v.virt(iova, len),
        }
        .ok_or(fault)?;
        let base = NonNull::new(va as usize as *mut u8).ok_or(fault)?;
        // SAFETY: `va..va+len` lies inside memory the process mapped for the device (an
        // IOMMU mapping, or pinned memory) and keeps mapped until it is unmapped; an unmap
        // first stops every queue whose ring is in the range (`on_unmap`), and the drivers
        // keep request buffers mapped until their completion, as with real DMA.
        Ok(unsafe { Region::from_raw(base, len, Arc::new(())) })
    }
}

#[derive(Default)]
struct FnState {
    sqc_bt: Option<u64>,
    cqc_bt: Option<u64>,
    sqc: HashMap<u16, [u8; QC_SIZE]>,
    cqc: HashMap<u16, [u8; QC_SIZE]>,
    running: HashMap<u16, Arc<HwQueue>>,
}

/// Counters of one modelled function's mailbox.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStats {
    /// Commands taken.
    pub commands: u64,
    /// Commands answered with a failure status.
    pub failed: u64,
    /// Queues started (both contexts written).
    pub started: u64,
    /// Queues stopped (STOP_QP, a new context over a running one, or an unmap).
    pub stopped: u64,
}

struct Inner {
    name: String,
    core: Arc<DeviceCore>,
    shared: Arc<Shared>,
    bar: OnceLock<Region>,
    dma: OnceLock<VfioDma>,
    vft: (u16, u16),
    state: Mutex<FnState>,
    stuck: AtomicBool,
    commands: AtomicU64,
    failed: AtomicU64,
    started: AtomicU64,
    stopped: AtomicU64,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioFunctionModel")
            .field("name", &self.name)
            .field("vft", &self.vft)
            .finish()
    }
}

struct BarHook(Weak<Inner>);

impl MmioHook for BarHook {
    fn on_write_u64(&self, offset: usize, value: u64) {
        if let Some(i) = self.0.upgrade() {
            i.doorbell(offset, value);
        }
    }

    fn on_write_u128(&self, offset: usize, lo: u64, hi: u64) {
        if let Some(i) = self.0.upgrade() {
            if offset == mailbox::MB_OFFSET {
                i.mailbox(MbCommand::decode(lo, hi));
            }
        }
    }
}

/// One modelled VF: its BAR2, mailbox, contexts, queues and engine threads.
pub struct VfioFunctionModel {
    inner: Arc<Inner>,
}

impl fmt::Debug for VfioFunctionModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Inner {
    fn bar(&self) -> &Region {
        self.bar.get().expect("BAR set at construction")
    }

    fn dma(&self) -> Option<&VfioDma> {
        self.dma.get()
    }

    fn read_context(&self, base: u64) -> std::result::Result<[u8; QC_SIZE], u16> {
        let dma = self.dma().ok_or(status::DMA_FAULT)?;
        let mut b = [0u8; QC_SIZE];
        dma.read(base, &mut b).map_err(|_| status::DMA_FAULT)?;
        Ok(b)
    }

    fn reachable(&self, base: u64, len: usize) -> bool {
        self.dma().is_some_and(|d| d.translate(base, len).is_ok())
    }

    fn stop(&self, st: &mut FnState, qn: u16) {
        if let Some(q) = st.running.remove(&qn) {
            q.shut();
            self.core.remove_queue(&q);
            self.stopped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts queue `qn` once both contexts are there.
    fn try_start(&self, st: &mut FnState, qn: u16) -> std::result::Result<(), u16> {
        let (Some(s), Some(c)) = (st.sqc.get(&qn), st.cqc.get(&qn)) else {
            return Ok(());
        };
        let (s, c) = (Sqc::decode(s), Cqc::decode(c));
        let engine = &self.core.engine;
        let ok = s.sqe_size == engine.sqe_size()
            && s.depth >= 2
            && s.depth == c.depth
            && c.cqe_size_code == 4
            && s.cq_num == qn
            && !s.pasid_enable
            && c.phase
            && s.alg_type <= crate::layout::qm::MAX_QC_TYPE
            && c.base == s.base + (s.sqe_size * s.depth) as u64;
        if !ok {
            wd_core::wd_log!(
                Debug,
                "model vfio {}: queue {qn}: contexts refused: {s:?} {c:?}",
                self.name
            );
            return Err(status::BAD_CONTEXT);
        }
        let layout = DusLayout {
            sqe_size: s.sqe_size,
            sq_depth: s.depth,
            cq_depth: c.depth,
            page: page_size(),
        };
        let dma = self.dma().ok_or(status::DMA_FAULT)?;
        // The model's one-region queue: rings and the page after them (wd's status page).
        let dus = dma
            .translate(s.base, layout.size())
            .or_else(|_| dma.translate(s.base, layout.cqe(c.depth - 1) + CQE_SIZE))
            .map_err(|_| status::DMA_FAULT)?;
        if dus.len() < layout.size() {
            // The rings are reachable but not the page after them: the model's queue
            // needs its whole layout.
            return Err(status::BAD_CONTEXT);
        }
        let event = EventFd::new().map_err(|_| status::BAD_CONTEXT)?;
        self.stop(st, qn);
        let hw = Arc::new(HwQueue::new(qn, s.alg_type, layout, dus, event));
        let _ = hw.uacce_dma.set(UacceDma::Vfio(dma.clone()));
        self.core.add_queue(hw.clone());
        st.running.insert(qn, hw);
        self.started.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn command(&self, c: &MbCommand) -> std::result::Result<u64, u16> {
        let (_, queues) = self.vft;
        let mut st = lock(&self.state);
        match (c.cmd, c.read) {
            (cmd::SQC_VFT, true) => Ok(mailbox::vft_word(self.vft.0, self.vft.1)),
            (cmd::SQC_BT | cmd::CQC_BT, false) => {
                if !self.reachable(c.base, QC_SIZE * usize::from(queues)) {
                    return Err(status::DMA_FAULT);
                }
                if c.cmd == cmd::SQC_BT {
                    st.sqc_bt = Some(c.base);
                } else {
                    st.cqc_bt = Some(c.base);
                }
                Ok(0)
            }
            (cmd::SQC | cmd::CQC, false) => {
                if c.queue >= queues {
                    return Err(status::BAD_CONTEXT);
                }
                let table = if c.cmd == cmd::SQC {
                    st.sqc_bt
                } else {
                    st.cqc_bt
                };
                let table = table.ok_or(status::NO_TABLE)?;
                let ctx = self.read_context(c.base)?;
                // The hardware keeps contexts in the function's table.
                let slot = table + (QC_SIZE * usize::from(c.queue)) as u64;
                self.dma()
                    .ok_or(status::DMA_FAULT)?
                    .write(slot, &ctx)
                    .map_err(|_| status::DMA_FAULT)?;
                // A new context replaces the running queue.
                self.stop(&mut st, c.queue);
                if c.cmd == cmd::SQC {
                    st.sqc.insert(c.queue, ctx);
                } else {
                    st.cqc.insert(c.queue, ctx);
                }
                let r = self.try_start(&mut st, c.queue);
                if r.is_err() {
                    st.sqc.remove(&c.queue);
                    st.cqc.remove(&c.queue);
                }
                r.map(|()| 0)
            }
            (cmd::STOP_QP, false) if self.core.api == ApiVersion::V3 => {
                if c.queue >= queues {
                    return Err(status::BAD_CONTEXT);
                }
                self.stop(&mut st, c.queue);
                st.sqc.remove(&c.queue);
                st.cqc.remove(&c.queue);
                Ok(0)
            }
            _ => Err(status::UNSUPPORTED),
        }
    }

    fn mailbox(&self, c: MbCommand) {
        if !c.busy {
            return;
        }
        self.commands.fetch_add(1, Ordering::Relaxed);
        let bar = self.bar();
        if self.stuck.load(Ordering::SeqCst) {
            // Busy stays set: the command never completes.
            return;
        }
        let (status, data) = match self.command(&c) {
            Ok(d) => (0, d),
            Err(s) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                (s, 0)
            }
        };
        if c.read && status == 0 {
            bar.write_u32(mailbox::MB_DATA_LO, data as u32);
            bar.write_u32(mailbox::MB_DATA_HI, (data >> 32) as u32);
        }
        let w0 = u32::from(c.cmd)
            | if c.read { mailbox::w0::READ as u32 } else { 0 }
            | (u32::from(status) << mailbox::w0::STATUS_SHIFT)
            | (u32::from(c.queue) << 16);
        bar.write_u32(mailbox::MB_OFFSET, w0);
    }

    fn doorbell(&self, offset: usize, value: u64) {
        if offset != mailbox::DOORBELL {
            bad_doorbell(&self.shared);
            return;
        }
        let db = Doorbell::decode(DoorbellFormat::V2, value);
        let q = lock(&self.state).running.get(&db.qn).cloned();
        match q {
            Some(q) => {
                self.core
                    .mmio_write(&q, DoorbellFormat::V2, DoorbellFormat::V2.offset(), value)
            }
            // A doorbell for a queue whose contexts are not programmed reaches nothing.
            None => bad_doorbell(&self.shared),
        }
    }
}

fn bad_doorbell(shared: &Shared) {
    crate::stats::Counters::bump(&shared.stats.bad_doorbells);
}

impl FakeVfioSide for Inner {
    fn on_unmap(&self, iova: u64, len: u64) {
        let mut st = lock(&self.state);
        let end = iova.saturating_add(len);
        let hit: Vec<u16> = st
            .running
            .iter()
            .filter(|(qn, _)| {
                st.sqc
                    .get(qn)
                    .map(|s| Sqc::decode(s).base)
                    .is_some_and(|b| iova <= b && b < end)
            })
            .map(|(qn, _)| *qn)
            .collect();
        for qn in hit {
            self.stop(&mut st, qn);
        }
        if st.sqc_bt.is_some_and(|b| iova <= b && b < end) {
            st.sqc_bt = None;
        }
        if st.cqc_bt.is_some_and(|b| iova <= b && b < end) {
            st.cqc_bt = None;
        }
    }
}

/// The unmap notices of a NOIOMMU host: its munlock, seen by the device as memory gone.
#[derive(Debug)]
struct PhysSide(Weak<Inner>, FakePhysView);

impl FakeVfioSide for PhysSide {
    fn on_unmap(&self, va: u64, len: u64) {
        if let Some(i) = self.0.upgrade() {
            let page = 4096;
            let phys = (self.1.first_pfn + va / page) * page + va % page;
            i.on_unmap(phys, len);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.core.shutdown();
    }
}

impl VfioFunctionModel {
    /// A VF of `engine` (`hisi_hpre`, `hisi_zip`) speaking `api`, owning queues
    /// `vft.0..vft.0+vft.1` of its PF, with `engines` engine threads.
    pub fn new(
        name: &str,
        engine: Arc<dyn Engine>,
        api: ApiVersion,
        vft: (u16, u16),
        engines: usize,
    ) -> Result<Arc<VfioFunctionModel>> {
        if api == ApiVersion::V1 || vft.1 == 0 {
            return Err(Error::Config(format!(
                "model VF {name}: {api:?} with {} queues (v2/v3 VFs with queues only)",
                vft.1
            )));
        }
        let defaults = ModelConfig::from_lookup(|_| None)?;
        let shared = Arc::new(Shared::default());
        let core = Arc::new(DeviceCore::new(
            name.to_string(),
            engine,
            api,
            shared.clone(),
            defaults.latency,
            defaults.spin,
        ));
        for i in 0..engines.max(1) {
            let c = core.clone();
            std::thread::Builder::new()
                .name(format!("wdm-vf-e{i}"))
                .spawn(move || c.engine_loop(i))
                .map_err(|e| Error::io("starting a model engine thread", e))?;
        }
        let inner = Arc::new(Inner {
            name: name.to_string(),
            core,
            shared,
            bar: OnceLock::new(),
            dma: OnceLock::new(),
            vft,
            state: Mutex::new(FnState::default()),
            stuck: AtomicBool::new(false),
            commands: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            started: AtomicU64::new(0),
            stopped: AtomicU64::new(0),
        });
        let bar = Region::anonymous(mailbox::BAR_SIZE)?
            .with_hook(Arc::new(BarHook(Arc::downgrade(&inner))));
        let _ = inner.bar.set(bar);
        Ok(Arc::new(VfioFunctionModel { inner }))
    }

    /// BAR2 as the device presents it (hand it to [`FakeVfio::with_device`]).
    pub fn bar(&self) -> Region {
        self.inner.bar().clone()
    }

    /// What the fake kernel tells of unmaps.
    pub fn side(&self) -> Arc<dyn FakeVfioSide> {
        self.inner.clone()
    }

    /// The device reaches memory through `kernel`'s type1 IOMMU.
    pub fn attach_type1(&self, kernel: &Arc<FakeVfio>) {
        let _ = self.inner.dma.set(VfioDma::Type1(Arc::downgrade(kernel)));
    }

    /// The device reaches the pinned memory of a NOIOMMU host; returns what that host's
    /// munlock must tell.
    pub fn attach_phys(&self, view: FakePhysView) -> Arc<dyn FakeVfioSide> {
        let _ = self.inner.dma.set(VfioDma::Phys(view.clone()));
        Arc::new(PhysSide(Arc::downgrade(&self.inner), view))
    }

    /// Holds the mailbox's busy bit set forever (true) or lets commands complete.
    pub fn set_mailbox_stuck(&self, stuck: bool) {
        self.inner.stuck.store(stuck, Ordering::SeqCst);
    }

    /// Mailbox counters.
    pub fn mailbox_stats(&self) -> MailboxStats {
        let r = Ordering::Relaxed;
        MailboxStats {
            commands: self.inner.commands.load(r),
            failed: self.inner.failed.load(r),
            started: self.inner.started.load(r),
            stopped: self.inner.stopped.load(r),
        }
    }

    /// Queues running now.
    pub fn running_queues(&self) -> usize {
        lock(&self.inner.state).running.len()
    }

    /// The engines' counters.
    pub fn stats(&self) -> ModelStats {
        self.inner.shared.stats.snapshot()
    }
}

/// One fake VFIO host for one function: the fake kernel, the model behind it and the
/// [`VfioHost`] the backend reaches them through.
#[derive(Debug)]
pub struct FakeVfioHost {
    /// The fake vfio kernel.
    pub kernel: Arc<FakeVfio>,
    /// The modelled VF.
    pub model: Arc<VfioFunctionModel>,
    /// System calls for the backend.
    pub host: VfioHost,
}

/// A fake VFIO host for the function `bdf` in group `group`: type1, or NOIOMMU with a
/// fake pagemap (CAP_SYS_ADMIN held).
pub fn fake_host(
    bdf: &str,
    group: u32,
    driver: &str,
    api: ApiVersion,
    noiommu: bool,
    vft: (u16, u16),
) -> Result<FakeVfioHost> {
    let engine = crate::uacce_fake::engine_for(driver)
        .ok_or_else(|| Error::Config(format!("the model has no {driver} engine")))?;
    let model = VfioFunctionModel::new(&format!("{driver}-vf-{bdf}"), engine, api, vft, 2)?;
    let kernel = Arc::new(FakeVfio::with_device(
        noiommu,
        group,
        bdf,
        model.bar(),
        Some(model.side()),
    ));
    let phys: Arc<dyn Fn() -> Box<dyn PhysSys> + Send + Sync> = if noiommu {
        let template = FakePhys::root();
        let side = model.attach_phys(template.view());
        let (first_pfn, locked) = (template.first_pfn, template.locked.clone());
        Arc::new(move || {
            let mut p = FakePhys::root();
            p.first_pfn = first_pfn;
            p.locked = locked.clone();
            p.unlocked = Some(side.clone());
            Box::new(p)
        })
    } else {
        model.attach_type1(&kernel);
        Arc::new(|| Box::new(FakePhys::root()))
    };
    Ok(FakeVfioHost {
        host: VfioHost {
            sys: kernel.clone(),
            container: kernel.container_path.clone(),
            phys,
        },
        kernel,
        model,
    })
}

/// `WD_DEVICES=fake-vfio:<dir>`: every HiSilicon ZIP or HPRE VF bound to vfio-pci in the
/// PCI sysfs tree `dir` (`vfio::scan`; revision 0x30 is v3, else v2) becomes a fake vfio
/// host with the model behind it (16 queues each); the `vfio` backend is replaced by one
/// over them.
pub fn start_fake_vfio(dir: &Path) -> Result<()> {
    let scanned = wd_core::vfio::scan::scan_with(dir, Path::new("/dev/vfio"));
    let mut candidates = Vec::new();
    let mut hosts = Vec::new();
    for s in &scanned {
        let mut c = Candidate::from_scan(s);
        let driver = s.engine;
        let modelled = s.vf && crate::uacce_fake::engine_for(driver).is_some();
        if let (true, Ok(mode), Some(node)) = (modelled, &c.mode, &c.group_node) {
            let group: u32 = node
                .file_name()
                .and_then(|n| n.to_str())
                .map(|n| n.trim_start_matches("noiommu-"))
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Error::Config(format!("group node {}", node.display())))?;
            let api = if s.revision == 0x30 {
                ApiVersion::V3
            } else {
                ApiVersion::V2
            };
            let noiommu = *mode == wd_core::AddressMode::NoIommu;
            let h = fake_host(&s.bdf, group, driver, api, noiommu, (0, 16))?;
            c.host = Some(h.host.clone());
            hosts.push(h);
        }
        candidates.push(c);
    }
    // The fake hosts live as long as the process.
    std::mem::forget(hosts);
    wd_core::registry::unregister("vfio");
    wd_core::registry::register(Arc::new(VfioBackend::new(
        VfioHost {
            // Functions without a fake host of their own (PFs, SEC) open nothing.
            sys: Arc::new(FakeVfio::with_device(
                false,
                u32::MAX,
                "-",
                Region::anonymous(4096)?,
                None,
            )),
            container: "/dev/vfio/vfio".into(),
            phys: Arc::new(|| Box::new(FakePhys::root())),
        },
        candidates,
    )));
    Ok(())
}
