//! Where ZIP queues come from: the device selection of `WD_DEVICES` and the per-process
//! queue pools (one for compression queues, one for decompression queues). wd-core's
//! [`QueuePool`] gives each thread its own queue and makes a forked child open its own.

#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex, OnceLock};

use wd_core::backend::QueueRequest;
use wd_core::pool::QueuePool;
use wd_core::wait::WaitPolicy;
use wd_core::{DriverQueue, Error, Queue, Result};

use crate::driver::{Zip, QC_COMPRESS, QC_DECOMPRESS};
use crate::stats::Reason;

/// The uacce driver name of ZIP devices (`hisi_zip-N`).
pub const DRIVER: &str = "hisi_zip";

/// Most queues a pool opens in one process.
const POOL_LIMIT: usize = 64;

/// Which devices compression may use (`WD_DEVICES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Devices {
    /// Every registered backend (the kernel's uacce devices, and the model if something
    /// registered it). The default.
    Auto,
    /// The kernel's uacce devices only.
    Uacce,
    /// The device model, registered once per process from `WD_MODEL_*`.
    Model,
    /// None: everything in software.
    None,
}

impl Devices {
    /// Parses a `WD_DEVICES` value.
    pub fn parse(v: &str) -> Result<Devices> {
        match v.trim() {
            "" | "auto" => Ok(Devices::Auto),
            "uacce" => Ok(Devices::Uacce),
            "model" => Ok(Devices::Model),
            "none" => Ok(Devices::None),
            other => Err(Error::Config(format!(
                "WD_DEVICES={other:?}: expected auto, uacce, model or none"
            ))),
        }
    }

    /// From the environment (`WD_DEVICES`, default auto).
    pub fn from_env() -> Result<Devices> {
        Devices::parse(&std::env::var("WD_DEVICES").unwrap_or_default())
    }
}

/// Registers the device model with wd-core once per process (unless some other part of
/// the process already registered a `model` backend).
pub fn register_model() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        if wd_core::registry::backends()
            .iter()
            .any(|b| b.name() == "model")
        {
            return Ok(());
        }
        let cfg = hisi_model::ModelConfig::from_env().map_err(|e| e.to_string())?;
        hisi_model::register(cfg).map_err(|e| e.to_string())?;
        Ok(())
    })
    .clone()
    .map_err(Error::Config)
}

/// The two queue pools of this process.
#[derive(Debug)]
pub(crate) struct Pools {
    pub comp: QueuePool<Zip>,
    pub decomp: QueuePool<Zip>,
}

static SELECTED: Mutex<Option<Devices>> = Mutex::new(None);
static POOLS: Mutex<Option<Arc<Pools>>> = Mutex::new(None);

/// Overrides `WD_DEVICES` for this process (tests, the `wd` command's `--model`). Takes
/// effect for streams made afterwards.
pub fn select_devices(d: Devices) -> Result<()> {
    if d == Devices::Model {
        register_model()?;
    }
    *SELECTED.lock().unwrap_or_else(|e| e.into_inner()) = Some(d);
    *POOLS.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(())
}

/// The device selection in force.
pub fn selected_devices() -> Result<Devices> {
    let mut g = SELECTED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = *g {
        return Ok(d);
    }
    let d = Devices::from_env()?;
    if d == Devices::Model {
        register_model()?;
    }
    *g = Some(d);
    Ok(d)
}

fn backends(d: Devices) -> &'static [&'static str] {
    match d {
        Devices::Auto | Devices::None => &[],
        Devices::Uacce => &["uacce"],
        Devices::Model => &["model"],
    }
}

fn opener(d: Devices, qc_type: u16) -> wd_core::pool::Opener<Zip> {
    Box::new(move || {
        let found = wd_core::registry::find(DRIVER, "zlib", backends(d))?;
        let mut last = None;
        for dev in &found {
            match Queue::request(dev, QueueRequest { qc_type })
                .and_then(|q| DriverQueue::open(q, WaitPolicy::default()))
            {
                Ok(q) => return Ok(q),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NoDevice(DRIVER.into())))
    })
}

/// The pools, or why there are none (the fallback reason).
pub(crate) fn pools() -> std::result::Result<Arc<Pools>, Reason> {
    let d = selected_devices().map_err(|_| Reason::NoDevice)?;
    if d == Devices::None {
        return Err(Reason::Disabled);
    }
    let mut g = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = g.as_ref() {
        return Ok(p.clone());
    }
    if wd_core::registry::find(DRIVER, "zlib", backends(d)).is_err() {
        return Err(Reason::NoDevice);
    }
    let p = Arc::new(Pools {
        comp: QueuePool::new("hisi_zip compress", POOL_LIMIT, opener(d, QC_COMPRESS)),
        decomp: QueuePool::new("hisi_zip decompress", POOL_LIMIT, opener(d, QC_DECOMPRESS)),
    });
    *g = Some(p.clone());
    Ok(p)
}
