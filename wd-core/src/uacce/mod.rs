//! The uacce backend: accelerator queues exposed by Linux as `/dev/<driver>-<N>` char
//! devices, described under `/sys/class/uacce`.

pub mod sysfs;

use std::path::PathBuf;

use crate::backend::{Backend, QueueBackend, QueueRequest};
use crate::device::DeviceInfo;
use crate::error::{Error, Result};

/// Queues from the kernel's uacce devices.
#[derive(Debug, Clone)]
pub struct UacceBackend {
    sysfs_root: PathBuf,
    dev_root: PathBuf,
}

impl Default for UacceBackend {
    fn default() -> Self {
        Self::from_env()
    }
}

impl UacceBackend {
    /// A backend over the given sysfs class directory and device directory.
    pub fn new(sysfs_root: impl Into<PathBuf>, dev_root: impl Into<PathBuf>) -> Self {
        UacceBackend {
            sysfs_root: sysfs_root.into(),
            dev_root: dev_root.into(),
        }
    }

    /// The host's uacce devices, or the roots named by `WD_SYSFS_ROOT` / `WD_DEV_ROOT`.
    pub fn from_env() -> Self {
        let sys = std::env::var_os("WD_SYSFS_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(sysfs::DEFAULT_SYSFS_ROOT));
        let dev = std::env::var_os("WD_DEV_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(sysfs::DEFAULT_DEV_ROOT));
        Self::new(sys, dev)
    }
}

impl Backend for UacceBackend {
    fn name(&self) -> &'static str {
        "uacce"
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        sysfs::discover(&self.sysfs_root, &self.dev_root)
    }

    fn available_instances(&self, dev: &DeviceInfo) -> Result<u32> {
        sysfs::available_instances(&self.sysfs_root, &dev.name)
    }

    fn open_queue(&self, dev: &DeviceInfo, _req: QueueRequest) -> Result<Box<dyn QueueBackend>> {
        Err(Error::Unsupported(format!(
            "{}: opening uacce queues is not implemented in this build yet",
            dev.name
        )))
    }
}
