//! [`ModelBackend`]: the model's devices as a wd-core backend.
//!
//! Device threads and queues are per process: they are built lazily on the first queue
//! opened in a process incarnation ([`Epoch`]) and, after a fork, rebuilt in the child
//! without touching the parent's. Queue limits are shared by all processes through lock
//! files, one per queue slot, held with `flock` while the queue is open.

#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use wd_core::fork::Epoch;
use wd_core::region::page_size;
use wd_core::{Backend, DeviceInfo, Error, QueueBackend, QueueInfo, QueueRequest, Region, Result};

use crate::config::{FaultConfig, ModelConfig};
use crate::device::{lock, DeviceCore, HwQueue, Shared};
use crate::engine::{Engine, MAX_SQE_WORDS};
use crate::hpre::HpreEngine;
use crate::layout::qm::{DusLayout, MAX_QC_TYPE};
use crate::queue::{DoorbellHook, ModelQueue};
use crate::stats::ModelStats;
use crate::sys::{self, EventFd};

/// First uacce index of model devices (`hisi_hpre-9000`), far above real ones.
pub const FIRST_DEVICE_INDEX: usize = 9000;

struct DeviceSpec {
    info: DeviceInfo,
    engine: Arc<dyn Engine>,
}

/// The devices to present: one entry per device. Other engines add theirs here.
fn device_specs(config: &ModelConfig) -> Vec<DeviceSpec> {
    let mut engines: Vec<Arc<dyn Engine>> = Vec::new();
    for _ in 0..config.hpre_devices {
        engines.push(Arc::new(HpreEngine));
    }
    for _ in 0..config.zip_devices {
        engines.push(Arc::new(crate::zip::ZipEngine::new(config.zip_level)));
    }
    let page = page_size();
    let depth = usize::from(config.depth);
    engines
        .into_iter()
        .enumerate()
        .map(|(i, engine)| {
            let layout = DusLayout {
                sqe_size: engine.sqe_size(),
                sq_depth: depth,
                cq_depth: depth,
                page,
            };
            DeviceSpec {
                info: DeviceInfo {
                    name: format!("{}-{}", engine.driver(), FIRST_DEVICE_INDEX + i),
                    api: config.api.as_str().to_string(),
                    algorithms: engine.algorithms(config.api),
                    flags: 0,
                    numa_node: 0,
                    mmio_size: config.api.doorbell().mmio_size(page),
                    dus_size: layout.size(),
                    isolated: false,
                    dev_path: None,
                },
                engine,
            }
        })
        .collect()
}

/// Device threads and queues of one process incarnation.
struct ProcState {
    epoch: Epoch,
    devices: Vec<Arc<DeviceCore>>,
    threads: Vec<JoinHandle<()>>,
}

impl ProcState {
    fn stop(&mut self) {
        for d in &self.devices {
            d.shutdown();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The device model as a wd-core [`Backend`] (`name() == "model"`).
pub struct ModelBackend {
    config: ModelConfig,
    specs: Vec<DeviceSpec>,
    shared: Arc<Shared>,
    state: Mutex<Option<ProcState>>,
}

impl fmt::Debug for ModelBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelBackend")
            .field("config", &self.config)
            .field(
                "devices",
                &self.specs.iter().map(|s| &s.info.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Creates a model backend and registers it with wd-core, so discovery finds its devices.
pub fn register(config: ModelConfig) -> Result<Arc<ModelBackend>> {
    let b = ModelBackend::new(config)?;
    wd_core::registry::register(b.clone());
    Ok(b)
}

impl ModelBackend {
    /// A backend presenting the devices of `config`, not registered anywhere (tests,
    /// benchmarks). No thread starts until the first queue is opened.
    pub fn new(config: ModelConfig) -> Result<Arc<ModelBackend>> {
        config.validate()?;
        let specs = device_specs(&config);
        for s in &specs {
            if s.engine.sqe_size() % 4 != 0 || s.engine.sqe_size() > 4 * MAX_SQE_WORDS {
                return Err(Error::Config(format!(
                    "engine {} has an unsupported SQE size {}",
                    s.engine.driver(),
                    s.engine.sqe_size()
                )));
            }
        }
        let shared = Arc::new(Shared::default());
        shared.faults.set(&config.faults);
        Ok(Arc::new(ModelBackend {
            config,
            specs,
            shared,
            state: Mutex::new(None),
        }))
    }

    /// The configuration it was made with (faults as at creation).
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Changes the fault knobs at run time. The every-Nth knobs count from this call
    /// (the Nth request, doorbell or CQE after it). TX/RX-stop words of open queues are
    /// written at once (set to 1, or cleared to 0 unless the device stopped the queue
    /// itself).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.faults.set(&faults);
        let st = lock(&self.state);
        if let Some(s) = st.as_ref().filter(|s| s.epoch.is_current()) {
            for d in &s.devices {
                d.reset_fault_counters();
                for q in d.open_queues() {
                    q.set_stop_words(faults.tx_stop, faults.rx_stop);
                }
            }
        }
    }

    /// The fault knobs in force.
    pub fn faults(&self) -> FaultConfig {
        self.shared.faults.get()
    }

    /// Counters of all devices of this backend.
    pub fn stats(&self) -> ModelStats {
        self.shared.stats.snapshot()
    }

    /// Where device `name` keeps its instance slot files.
    pub fn slot_dir(&self, name: &str) -> PathBuf {
        self.config.instance_dir.join(name)
    }

    fn spec(&self, dev: &DeviceInfo) -> Result<(usize, &DeviceSpec)> {
        self.specs
            .iter()
            .enumerate()
            .find(|(_, s)| s.info.name == dev.name)
            .ok_or_else(|| Error::NoDevice(format!("{} is not a model device", dev.name)))
    }

    fn slot_paths(&self, name: &str) -> Result<Vec<PathBuf>> {
        let dir = self.slot_dir(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok((0..self.config.queues)
            .map(|i| dir.join(format!("slot-{i}")))
            .collect())
    }

    /// This process's device threads and queues, started on first use and rebuilt after
    /// a fork.
    fn devices_now(&self) -> Result<Vec<Arc<DeviceCore>>> {
        let mut st = lock(&self.state);
        if let Some(s) = st.as_ref() {
            if s.epoch.is_current() {
                return Ok(s.devices.clone());
            }
        }
        if let Some(old) = st.take() {
            // The parent's threads do not exist here and its queues are not ours: never
            // join, stop or free any of it.
            std::mem::forget(old);
        }
        let mut new = ProcState {
            epoch: Epoch::current(),
            devices: Vec::new(),
            threads: Vec::new(),
        };
        for spec in &self.specs {
            let core = Arc::new(DeviceCore::new(
                spec.info.name.clone(),
                spec.engine.clone(),
                self.config.api,
                self.shared.clone(),
                self.config.latency,
                self.config.spin,
            ));
            let number = spec.info.name.rsplit('-').next().unwrap_or("0").to_string();
            for i in 0..self.config.engines {
                let c = core.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("wdm-{number}-e{i}"))
                    .spawn(move || c.engine_loop(i));
                match spawned {
                    Ok(t) => new.threads.push(t),
                    Err(e) => {
                        core.shutdown();
                        new.devices.push(core);
                        new.stop();
                        return Err(Error::io("starting a model engine thread", e));
                    }
                }
            }
            new.devices.push(core);
        }
        let devices = new.devices.clone();
        *st = Some(new);
        Ok(devices)
    }
}

impl Drop for ModelBackend {
    fn drop(&mut self) {
        let st = self
            .state
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut s) = st {
            if s.epoch.is_current() {
                s.stop();
            } else {
                std::mem::forget(s);
            }
        }
    }
}

impl Backend for ModelBackend {
    fn name(&self) -> &'static str {
        "model"
    }

    fn is_model(&self) -> bool {
        true
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        Ok(self.specs.iter().map(|s| s.info.clone()).collect())
    }

    fn available_instances(&self, dev: &DeviceInfo) -> Result<u32> {
        let (_, spec) = self.spec(dev)?;
        let mut free = 0;
        for p in self.slot_paths(&spec.info.name)? {
            if sys::slot_is_free(&p).map_err(|e| Error::io(format!("{}", p.display()), e))? {
                free += 1;
            }
        }
        Ok(free)
    }

    fn open_queue(&self, dev: &DeviceInfo, req: QueueRequest) -> Result<Box<dyn QueueBackend>> {
        let (index, spec) = self.spec(dev)?;
        if req.qc_type > MAX_QC_TYPE {
            return Err(Error::InvalidArgument(format!(
                "qc_type {} (the kernel accepts 0..={MAX_QC_TYPE})",
                req.qc_type
            )));
        }
        let core = self.devices_now()?.swap_remove(index);
        let mut taken = None;
        for (i, p) in self.slot_paths(&spec.info.name)?.iter().enumerate() {
            let got =
                sys::try_lock_slot(p).map_err(|e| Error::io(format!("{}", p.display()), e))?;
            if let Some(l) = got {
                taken = Some((i as u16, l));
                break;
            }
        }
        let Some((qid, slot)) = taken else {
            return Err(Error::NoFreeQueue(spec.info.name.clone()));
        };
        let depth = usize::from(self.config.depth);
        let layout = DusLayout {
            sqe_size: spec.engine.sqe_size(),
            sq_depth: depth,
            cq_depth: depth,
            page: page_size(),
        };
        let dus = Region::anonymous(layout.size())?;
        let event = EventFd::new().map_err(|e| Error::io("model queue eventfd", e))?;
        let hw = Arc::new(HwQueue::new(qid, req.qc_type, layout, dus, event));
        let faults = self.shared.faults.get();
        hw.set_stop_words(faults.tx_stop, faults.rx_stop);
        let format = self.config.api.doorbell();
        let hook = Arc::new(DoorbellHook {
            hw: hw.clone(),
            device: core.clone(),
            format,
        });
        let mmio = Region::anonymous(spec.info.mmio_size)?.with_hook(hook);
        core.add_queue(hw.clone());
        wd_core::wd_log!(
            Debug,
            "model: opened queue {qid} on {} (qc_type {})",
            spec.info.name,
            req.qc_type
        );
        Ok(Box::new(ModelQueue {
            info: QueueInfo {
                qid,
                sqe_size: layout.sqe_size as u32,
                sq_depth: self.config.depth,
                cq_depth: self.config.depth,
            },
            hw,
            device: core,
            mmio,
            slot: Mutex::new(Some(slot)),
            epoch: Epoch::current(),
            abandoned: AtomicBool::new(false),
        }))
    }
}
