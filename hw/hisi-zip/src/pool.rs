//! Where ZIP queues come from: the process's device selection ([`wd_core::select::process`]:
//! `WD_DEVICES`, or what the program set) and the per-process queue pools (one for
//! compression queues, one for decompression queues). wd-core's [`QueuePool`] gives each
//! thread its own queue and makes a forked child open its own.

#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex};

use wd_core::backend::QueueRequest;
use wd_core::pool::QueuePool;
use wd_core::select::{self, Devices};
use wd_core::wait::WaitPolicy;
use wd_core::{DriverQueue, Error, Queue};

use crate::driver::{Zip, QC_COMPRESS, QC_DECOMPRESS};
use crate::stats::Reason;

/// The uacce driver name of ZIP devices (`hisi_zip-N`).
pub const DRIVER: &str = "hisi_zip";

/// Most queues a pool opens in one process.
const POOL_LIMIT: usize = 64;

/// The two queue pools of this process.
#[derive(Debug)]
pub(crate) struct Pools {
    pub comp: QueuePool<Zip>,
    pub decomp: QueuePool<Zip>,
}

static POOLS: Mutex<Option<(Devices, Arc<Pools>)>> = Mutex::new(None);

fn opener(backends: &'static [&'static str], qc_type: u16) -> wd_core::pool::Opener<Zip> {
    Box::new(move || {
        let found = wd_core::registry::find(DRIVER, "zlib", backends)?;
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

/// The pools of the selection in force, or why there are none (the fallback reason). A new
/// selection (the program changed it) gets new pools.
pub(crate) fn pools() -> std::result::Result<Arc<Pools>, Reason> {
    let d = select::process().map_err(|e| {
        wd_core::wd_log!(Warn, "hisi_zip: {e}");
        Reason::NoDevice
    })?;
    if d == Devices::None {
        return Err(Reason::Disabled);
    }
    let mut g = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((sel, p)) = g.as_ref() {
        if *sel == d {
            return Ok(p.clone());
        }
    }
    let backends = select::activate(&d, &select::model_settings_from_env()).map_err(|e| {
        wd_core::wd_log!(Warn, "hisi_zip: {e}");
        Reason::NoDevice
    })?;
    if backends.is_empty() || wd_core::registry::find(DRIVER, "zlib", backends).is_err() {
        return Err(Reason::NoDevice);
    }
    let p = Arc::new(Pools {
        comp: QueuePool::new(
            "hisi_zip compress",
            POOL_LIMIT,
            opener(backends, QC_COMPRESS),
        ),
        decomp: QueuePool::new(
            "hisi_zip decompress",
            POOL_LIMIT,
            opener(backends, QC_DECOMPRESS),
        ),
    });
    *g = Some((d, p.clone()));
    Ok(p)
}
