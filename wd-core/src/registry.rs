//! The process's devices: those the uacce backend discovers and those registered at run
//! time (the device model).

use std::sync::{Arc, LazyLock, RwLock};

use crate::backend::Backend;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::uacce::UacceBackend;

static BACKENDS: LazyLock<RwLock<Vec<Arc<dyn Backend>>>> =
    LazyLock::new(|| RwLock::new(vec![Arc::new(UacceBackend::from_env()) as Arc<dyn Backend>]));

/// Adds a backend (the device model registers itself here).
pub fn register(backend: Arc<dyn Backend>) {
    BACKENDS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(backend);
}

/// Removes every backend of the given name.
pub fn unregister(name: &str) {
    BACKENDS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|b| b.name() != name);
}

/// The backends in registration order.
pub fn backends() -> Vec<Arc<dyn Backend>> {
    BACKENDS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Every device of every backend. A backend that fails to list is skipped with a warning.
pub fn devices() -> Vec<Device> {
    let mut out = Vec::new();
    for b in backends() {
        match b.devices() {
            Ok(list) => out.extend(list.into_iter().map(|d| Device::new(d, b.clone()))),
            Err(e) => crate::wd_log!(Warn, "{} backend: {e}", b.name()),
        }
    }
    out
}

/// The usable devices of `driver` (e.g. `hisi_hpre`) offering `algorithm`, from the
/// backends named in `backends` (all if empty), most free instances first. Isolated
/// devices are skipped.
pub fn find(driver: &str, algorithm: &str, backends: &[&str]) -> Result<Vec<Device>> {
    let mut found: Vec<(u32, Device)> = devices()
        .into_iter()
        .filter(|d| backends.is_empty() || backends.contains(&d.backend().name()))
        .filter(|d| d.info().driver() == driver && d.info().supports(algorithm))
        .filter(|d| !d.info().isolated)
        .map(|d| (d.available_instances().unwrap_or(0), d))
        .collect();
    if found.is_empty() {
        return Err(Error::NoDevice(format!("{driver} with {algorithm}")));
    }
    found.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(found.into_iter().map(|(_, d)| d).collect())
}
