//! VFIO-bound accelerator functions as a wd [`Backend`] (docs/hardware-interface.md §6).
//!
//! wd-core knows VFIO, not the hardware: opening a function (container → group → device,
//! its register BAR mapped), its DMA memory (IOVAs from `VFIO_IOMMU_MAP_DMA`, or physical
//! addresses of pinned memory on a NOIOMMU group) and the bookkeeping of its queues. What
//! the registers mean — how a function is brought up and a queue started — is the
//! hardware driver's: a [`QueueManager`] plugged in from the driver layer
//! ([`plug_queue_manager`]; the HiSilicon QM's is `hisi_qm::vfio_bringup`). A function no
//! plugged manager drives is listed by [`Backend::rejected`] with the reason.
//!
//! One process owns an opened function (vfio groups open once: `EBUSY` elsewhere): it is
//! opened on first use and kept for the life of the process; a forked child gets no queue
//! on it (the parent's descriptors and contexts are the parent's).
//!
//! There are no interrupts on this path: [`QueueBackend::wait`] sleeps a short while and
//! callers poll the ring's completion phase bit, as a user driver without an event queue
//! must.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::backend::{Backend, QueueBackend, QueueInfo, QueueRequest};
use crate::device::{AddressMode, DeviceInfo};
use crate::dma::Iova;
use crate::error::{Error, Result};
use crate::fork::Epoch;
use crate::region::Region;
use crate::vfio::device::{IommuType, RealVfioSys, VfioDevice, VfioSys};
use crate::vfio::noiommu::{NoIommuDma, PhysSys, RealPhys};
use crate::vfio::scan::VfioScanned;

/// The PCI identity of a function, what a [`QueueManager`] decides by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFunction {
    /// PCI address (`0000:75:00.1`), the vfio device name.
    pub bdf: String,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Revision ID.
    pub revision: u8,
    /// True for a virtual function.
    pub vf: bool,
}

/// DMA memory of one opened function, in its address mode.
pub trait FunctionDma: Send + Sync + fmt::Debug {
    /// VFIO (IOVAs) or NOIOMMU (physical addresses).
    fn mode(&self) -> AddressMode;
    /// Makes `mem` reachable by the device; the address to give it.
    fn map(&self, mem: &Region) -> Result<Iova>;
    /// Undoes [`FunctionDma::map`].
    fn unmap(&self, iova: Iova, len: usize) -> Result<()>;
    /// `len` bytes of fresh zeroed memory the device can reach, with its device address.
    fn alloc(&self, len: usize) -> Result<(Region, Iova)> {
        let r = Region::anonymous(len)?;
        let iova = self.map(&r)?;
        Ok((r, iova))
    }
    /// Gives back memory of [`FunctionDma::alloc`].
    fn free(&self, mem: &Region, iova: Iova) -> Result<()> {
        self.unmap(iova, mem.len())
    }
}

/// What a manager says of a function before it is opened (`wd list`, discovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionKind {
    /// Driver name, the device name's stem (`hisi_hpre`).
    pub driver: String,
    /// The api string the user drivers read (`hisi_qm_v2`).
    pub api: String,
    /// Algorithms offered.
    pub algorithms: Vec<String>,
    /// Bytes of the doorbell region a queue gets.
    pub mmio_size: usize,
    /// Bytes of a queue's ring memory (the uacce DUS layout).
    pub dus_size: usize,
}

/// One started queue as the manager hands it over.
#[derive(Debug, Clone)]
pub struct StartedQueue {
    /// Geometry (function-relative queue number, SQE size, depths).
    pub info: QueueInfo,
    /// The doorbell region (the register BAR).
    pub mmio: Region,
    /// SQ, CQ and status page, laid out as uacce's DUS region.
    pub dus: Region,
}

/// A function brought up by its manager.
pub trait ManagedFunction: Send + Sync + fmt::Debug {
    /// Queues the function owns (numbered from 0).
    fn queues(&self) -> u16;
    /// Programs and starts queue `qn` for `req`.
    fn start_queue(&self, qn: u16, req: QueueRequest) -> Result<StartedQueue>;
    /// Stops queue `qn` and frees its ring memory. After it the device no longer reaches
    /// the ring.
    fn stop_queue(&self, qn: u16) -> Result<()>;
}

/// The hardware half of the VFIO path, plugged in by a driver crate.
pub trait QueueManager: Send + Sync + fmt::Debug {
    /// Short name (`hisi_qm`).
    fn name(&self) -> &'static str;
    /// What it would offer on `f`; `Some(Err(why))` for a function of its hardware it
    /// cannot drive (shown by `wd list`); `None` if `f` is none of its business.
    fn describe(&self, f: &PciFunction) -> Option<std::result::Result<FunctionKind, String>>;
    /// The region index of the registers (vfio-pci BAR n = n).
    fn register_bar(&self) -> u32 {
        2
    }
    /// Brings the opened function up: `bar` is its mapped register BAR, `dma` its memory.
    fn start(
        &self,
        f: &PciFunction,
        bar: Region,
        dma: Arc<dyn FunctionDma>,
    ) -> Result<Arc<dyn ManagedFunction>>;
}

static MANAGERS: RwLock<Vec<Arc<dyn QueueManager>>> = RwLock::new(Vec::new());

/// Plugs a queue manager in (idempotent by name).
pub fn plug_queue_manager(qm: Arc<dyn QueueManager>) {
    let mut m = MANAGERS.write().unwrap_or_else(|e| e.into_inner());
    if !m.iter().any(|x| x.name() == qm.name()) {
        m.push(qm);
    }
}

/// The plugged managers.
pub fn queue_managers() -> Vec<Arc<dyn QueueManager>> {
    MANAGERS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

type Described = (
    Arc<dyn QueueManager>,
    std::result::Result<FunctionKind, String>,
);

fn manager_for(f: &PciFunction) -> Option<Described> {
    queue_managers()
        .into_iter()
        .find_map(|m| m.describe(f).map(|k| (m, k)))
}

/// Type1 DMA: the device's own IOVAs through the container.
#[derive(Debug)]
struct Type1Dma(Arc<VfioDevice>);

impl FunctionDma for Type1Dma {
    fn mode(&self) -> AddressMode {
        AddressMode::Vfio
    }
    fn map(&self, mem: &Region) -> Result<Iova> {
        self.0.map_dma(mem)
    }
    fn unmap(&self, iova: Iova, len: usize) -> Result<()> {
        self.0.unmap_dma(iova, len)
    }
}

/// NOIOMMU DMA: physical addresses of pinned, physically contiguous memory.
#[derive(Debug)]
struct PhysDma {
    phys: NoIommuDma,
    // Held so the device descriptor outlives the pinned memory it may reach.
    _device: Arc<VfioDevice>,
}

impl FunctionDma for PhysDma {
    fn mode(&self) -> AddressMode {
        AddressMode::NoIommu
    }
    fn map(&self, mem: &Region) -> Result<Iova> {
        self.phys.share(mem)
    }
    fn unmap(&self, iova: Iova, len: usize) -> Result<()> {
        self.phys.unshare(iova, len)
    }
}

/// A function the backend may offer.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its PCI identity.
    pub function: PciFunction,
    /// VFIO or NOIOMMU, or why the group cannot be told.
    pub mode: std::result::Result<AddressMode, String>,
    /// Its group node.
    pub group_node: Option<PathBuf>,
    /// System calls of this function when not the backend's own (a fake host per
    /// function in tests).
    pub host: Option<VfioHost>,
}

impl Candidate {
    /// A scanned function.
    pub fn from_scan(s: &VfioScanned) -> Candidate {
        Candidate {
            function: PciFunction {
                bdf: s.bdf.clone(),
                vendor: s.vendor_id,
                device: s.device_id,
                revision: s.revision,
                vf: s.vf,
            },
            mode: s.mode.ok_or_else(|| s.group.clone()),
            group_node: s.group_node.clone(),
            host: None,
        }
    }
}

/// Where the system calls of the VFIO path go.
#[derive(Clone)]
pub struct VfioHost {
    /// The VFIO system calls.
    pub sys: Arc<dyn VfioSys>,
    /// The container node (`/dev/vfio/vfio`).
    pub container: PathBuf,
    /// Makes the page-frame source of a NOIOMMU function (pagemap, mlock).
    pub phys: Arc<dyn Fn() -> Box<dyn PhysSys> + Send + Sync>,
}

impl fmt::Debug for VfioHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioHost")
            .field("sys", &self.sys)
            .field("container", &self.container)
            .finish()
    }
}

impl VfioHost {
    /// The real kernel: libc, `/dev/vfio/vfio` (under `WD_VFIO_ROOT`), `/proc/self/pagemap`.
    pub fn real() -> VfioHost {
        let root = std::env::var_os("WD_VFIO_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/dev/vfio"));
        VfioHost {
            sys: Arc::new(RealVfioSys),
            container: root.join("vfio"),
            phys: Arc::new(|| Box::new(RealPhys)),
        }
    }
}

struct Opened {
    epoch: Epoch,
    managed: Arc<dyn ManagedFunction>,
    mode: AddressMode,
    busy: Arc<Mutex<Vec<bool>>>,
    // Kept open for the life of the process.
    dma: Arc<dyn FunctionDma>,
    _device: Arc<VfioDevice>,
}

/// Accelerator functions bound to vfio-pci, driven through plugged queue managers.
pub struct VfioBackend {
    host: VfioHost,
    candidates: Vec<Candidate>,
    opened: Mutex<HashMap<String, Arc<Opened>>>,
}

impl fmt::Debug for VfioBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioBackend")
            .field("host", &self.host)
            .field(
                "functions",
                &self
                    .candidates
                    .iter()
                    .map(|c| &c.function.bdf)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The device name of a function: `<driver>-<routing ID>` (PCI bus << 8 | devfn, domain
/// << 16, as a decimal, so that the name's stem is the driver, as uacce names are).
pub fn device_name(driver: &str, bdf: &str) -> String {
    let parse = || -> Option<u32> {
        let (dom, rest) = bdf.split_once(':')?;
        let (bus, rest) = rest.split_once(':')?;
        let (dev, func) = rest.split_once('.')?;
        let dom = u32::from_str_radix(dom, 16).ok()?;
        let bus = u32::from_str_radix(bus, 16).ok()?;
        let dev = u32::from_str_radix(dev, 16).ok()?;
        let func = u32::from_str_radix(func, 16).ok()?;
        Some(dom << 16 | bus << 8 | dev << 3 | func)
    };
    match parse() {
        Some(n) => format!("{driver}-{n}"),
        None => format!("{driver}-{bdf}"),
    }
}

impl VfioBackend {
    /// A backend over `candidates` reached through `host`.
    pub fn new(host: VfioHost, candidates: Vec<Candidate>) -> VfioBackend {
        VfioBackend {
            host,
            candidates,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The host's HiSilicon functions bound to vfio-pci (`vfio::scan`), real system calls.
    pub fn from_host() -> VfioBackend {
        let scanned = crate::vfio::scan::scan_host();
        VfioBackend::new(
            VfioHost::real(),
            scanned.iter().map(Candidate::from_scan).collect(),
        )
    }

    fn offered(&self) -> impl Iterator<Item = (&Candidate, AddressMode, FunctionKind)> {
        self.candidates.iter().filter_map(|c| {
            let mode = c.mode.clone().ok()?;
            c.group_node.as_ref()?;
            let (_, kind) = manager_for(&c.function)?;
            Some((c, mode, kind.ok()?))
        })
    }

    fn info_of(c: &Candidate, kind: &FunctionKind) -> DeviceInfo {
        DeviceInfo {
            name: device_name(&kind.driver, &c.function.bdf),
            api: kind.api.clone(),
            algorithms: kind.algorithms.clone(),
            flags: 0,
            numa_node: 0,
            mmio_size: kind.mmio_size,
            dus_size: kind.dus_size,
            isolated: false,
            dev_path: Some(PathBuf::from(&c.function.bdf)),
        }
    }

    fn candidate(&self, dev: &DeviceInfo) -> Result<&Candidate> {
        self.candidates
            .iter()
            .find(|c| dev.dev_path.as_deref() == Some(Path::new(&c.function.bdf)))
            .ok_or_else(|| Error::NoDevice(format!("{} is not a VFIO function", dev.name)))
    }

    /// The opened function of `c`, opened and brought up on first use in this process.
    fn open_function(&self, c: &Candidate) -> Result<Arc<Opened>> {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = opened.get(&c.function.bdf) {
            if o.epoch.is_current() {
                return Ok(o.clone());
            }
            return Err(Error::NoFreeQueue(format!(
                "VFIO {}: opened by the parent process; a forked child cannot share it",
                c.function.bdf
            )));
        }
        let mode = c.mode.clone().map_err(|why| {
            Error::NoDevice(format!("VFIO {}: no usable group: {why}", c.function.bdf))
        })?;
        let group = c
            .group_node
            .clone()
            .ok_or_else(|| Error::NoDevice(format!("VFIO {}: no group node", c.function.bdf)))?;
        let qm = match manager_for(&c.function) {
            Some((qm, Ok(_))) => qm,
            Some((_, Err(why))) => {
                return Err(Error::Unsupported(format!(
                    "VFIO {}: {why}",
                    c.function.bdf
                )))
            }
            None => {
                return Err(Error::Unsupported(format!(
                    "VFIO {}: no queue manager plugged in drives it",
                    c.function.bdf
                )))
            }
        };
        let iommu = match mode {
            AddressMode::NoIommu => IommuType::NoIommu,
            _ => IommuType::Type1v2,
        };
        let host = c.host.as_ref().unwrap_or(&self.host);
        let device = Arc::new(VfioDevice::open(
            host.sys.clone(),
            &host.container,
            &group,
            &c.function.bdf,
            iommu,
            qm.register_bar(),
        )?);
        let dma: Arc<dyn FunctionDma> = match iommu {
            IommuType::NoIommu => Arc::new(PhysDma {
                phys: NoIommuDma::new((host.phys)())?,
                _device: device.clone(),
            }),
            IommuType::Type1v2 => Arc::new(Type1Dma(device.clone())),
        };
        let managed = qm.start(&c.function, device.bar().clone(), dma.clone())?;
        crate::wd_log!(
            Info,
            "vfio: {} brought up by {} ({mode}, {} queues)",
            c.function.bdf,
            qm.name(),
            managed.queues()
        );
        let o = Arc::new(Opened {
            epoch: Epoch::current(),
            busy: Arc::new(Mutex::new(vec![false; usize::from(managed.queues())])),
            managed,
            mode,
            dma,
            _device: device,
        });
        opened.insert(c.function.bdf.clone(), o.clone());
        Ok(o)
    }
}

impl Drop for VfioBackend {
    fn drop(&mut self) {
        // A forked child must not close the parent's function (its contexts stay live).
        let opened = std::mem::take(self.opened.get_mut().unwrap_or_else(|e| e.into_inner()));
        for (_, o) in opened {
            if !o.epoch.is_current() {
                std::mem::forget(o);
            }
        }
    }
}

impl Backend for VfioBackend {
    fn name(&self) -> &'static str {
        "vfio"
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        if !self.candidates.is_empty() && queue_managers().is_empty() {
            return Err(Error::Unsupported(
                "VFIO functions found, but this program plugged in no queue manager \
                 (hisi_qm::vfio_bringup::plug) to bring them up"
                    .into(),
            ));
        }
        Ok(self
            .offered()
            .map(|(c, _, kind)| VfioBackend::info_of(c, &kind))
            .collect())
    }

    fn available_instances(&self, dev: &DeviceInfo) -> Result<u32> {
        let c = self.candidate(dev)?;
        let o = self.open_function(c)?;
        let busy = o.busy.lock().unwrap_or_else(|e| e.into_inner());
        Ok(busy.iter().filter(|b| !**b).count() as u32)
    }

    fn open_queue(&self, dev: &DeviceInfo, req: QueueRequest) -> Result<Box<dyn QueueBackend>> {
        let c = self.candidate(dev)?;
        let o = self.open_function(c)?;
        let qn = {
            let mut busy = o.busy.lock().unwrap_or_else(|e| e.into_inner());
            let i = busy
                .iter()
                .position(|b| !*b)
                .ok_or_else(|| Error::NoFreeQueue(dev.name.clone()))?;
            busy[i] = true;
            i as u16
        };
        match o.managed.start_queue(qn, req) {
            Ok(q) => Ok(Box::new(VfioQueue {
                qn,
                started: q,
                function: o.clone(),
                epoch: Epoch::current(),
                released: Mutex::new(false),
            })),
            Err(e) => {
                o.busy.lock().unwrap_or_else(|e| e.into_inner())[usize::from(qn)] = false;
                Err(e)
            }
        }
    }

    fn verdict(&self, dev: &DeviceInfo) -> Option<std::result::Result<AddressMode, String>> {
        let c = self.candidate(dev).ok()?;
        Some(c.mode.clone())
    }

    fn rejected(&self) -> Vec<(String, String)> {
        self.candidates
            .iter()
            .filter_map(|c| {
                let why = match (&c.mode, &c.group_node, manager_for(&c.function)) {
                    (Err(why), _, _) => format!("bound to vfio-pci, no usable group: {why}"),
                    (Ok(_), None, _) => "bound to vfio-pci, no group node".to_string(),
                    (Ok(_), Some(_), None) => format!(
                        "bound to vfio-pci (device {:#06x}): no queue manager in this \
                         build drives it",
                        c.function.device
                    ),
                    (Ok(_), Some(_), Some((_, Err(why)))) => format!("bound to vfio-pci: {why}"),
                    _ => return None,
                };
                Some((c.function.bdf.clone(), why))
            })
            .collect()
    }
}

/// One queue of a VFIO function.
struct VfioQueue {
    qn: u16,
    started: StartedQueue,
    function: Arc<Opened>,
    epoch: Epoch,
    released: Mutex<bool>,
}

impl fmt::Debug for VfioQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VfioQueue")
            .field("qn", &self.qn)
            .field("info", &self.started.info)
            .field("mode", &self.function.mode)
            .finish()
    }
}

/// How long [`QueueBackend::wait`] sleeps at most: there is no completion interrupt, the
/// caller polls the CQ phase bit between sleeps.
pub const POLL_INTERVAL: Duration = Duration::from_micros(50);

impl QueueBackend for VfioQueue {
    fn info(&self) -> QueueInfo {
        self.started.info
    }

    fn mmio(&self) -> &Region {
        &self.started.mmio
    }

    fn dus(&self) -> &Region {
        &self.started.dus
    }

    fn map_dma(&self, mem: &Region) -> Result<Iova> {
        self.function.dma.map(mem)
    }

    fn unmap_dma(&self, iova: Iova, len: usize) -> Result<()> {
        self.function.dma.unmap(iova, len)
    }

    fn address_mode(&self) -> AddressMode {
        self.function.mode
    }

    fn alloc_dma(&self, len: usize) -> Result<(Region, Iova)> {
        self.function.dma.alloc(len)
    }

    fn free_dma(&self, mem: &Region, iova: Iova) -> Result<()> {
        self.function.dma.free(mem, iova)
    }

    fn wait(&self, timeout: Duration) -> Result<bool> {
        std::thread::sleep(timeout.min(POLL_INTERVAL));
        Ok(false)
    }

    fn release(&self) -> Result<()> {
        if !self.epoch.is_current() {
            return Ok(());
        }
        let mut released = self.released.lock().unwrap_or_else(|e| e.into_inner());
        if *released {
            return Ok(());
        }
        *released = true;
        // A queue that did not stop stays taken: its ring may still be in the device's use.
        self.function.managed.stop_queue(self.qn)?;
        self.function.busy.lock().unwrap_or_else(|e| e.into_inner())[usize::from(self.qn)] = false;
        Ok(())
    }

    fn abandon(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(
        bdf: &str,
        device: u16,
        mode: std::result::Result<AddressMode, String>,
    ) -> Candidate {
        Candidate {
            function: PciFunction {
                bdf: bdf.into(),
                vendor: 0x19e5,
                device,
                revision: 0x21,
                vf: true,
            },
            mode,
            group_node: Some(PathBuf::from("/dev/vfio/7")),
            host: None,
        }
    }

    #[test]
    fn names_end_in_the_routing_id() {
        assert_eq!(device_name("hisi_zip", "0000:75:00.1"), "hisi_zip-29953");
        assert_eq!(device_name("hisi_hpre", "0001:79:00.1"), "hisi_hpre-96513");
        assert_eq!(device_name("hisi_zip", "odd"), "hisi_zip-odd");
        let i = DeviceInfo {
            name: device_name("hisi_zip", "0000:75:00.1"),
            api: String::new(),
            algorithms: Vec::new(),
            flags: 0,
            numa_node: 0,
            mmio_size: 0,
            dus_size: 0,
            isolated: false,
            dev_path: None,
        };
        assert_eq!(i.driver(), "hisi_zip");
    }

    #[test]
    fn functions_nothing_drives_are_rejected_with_the_reason() {
        // This crate plugs no manager: a backend with functions says so instead of
        // listing nothing.
        let b = VfioBackend::new(
            VfioHost::real(),
            vec![
                candidate("0000:75:00.1", 0xa251, Ok(AddressMode::Vfio)),
                candidate("0000:76:00.1", 0xa251, Err("no IOMMU group".into())),
            ],
        );
        if queue_managers().is_empty() {
            let e = b.devices().unwrap_err().to_string();
            assert!(e.contains("no queue manager"), "{e}");
        }
        let r = b.rejected();
        assert!(
            r.iter()
                .any(|(n, w)| n == "0000:76:00.1" && w.contains("no IOMMU group")),
            "{r:?}"
        );
        let empty = VfioBackend::new(VfioHost::real(), Vec::new());
        assert!(empty.devices().unwrap().is_empty());
        assert!(empty.rejected().is_empty());
    }
}
