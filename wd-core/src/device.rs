//! Devices as discovery finds them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::Result;

/// The uacce `flags` bit for Shared Virtual Addressing (mainline numbering).
pub const UACCE_DEV_SVA: u32 = 1;

/// How a device reaches the memory a queue hands it, which decides what a DMA address is
/// (docs/hardware-interface.md §3.8, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressMode {
    /// Shared Virtual Addressing: the device walks the process's page tables; DMA
    /// addresses are virtual addresses and any mapped memory can be shared.
    Sva,
    /// openEuler no-SVA: the kernel allocates a static-share (SS) region per queue; DMA
    /// addresses are its device (physical) addresses and only its memory can be used.
    StaticShare,
    /// VFIO with an IOMMU: memory is mapped at IOVAs with `VFIO_IOMMU_MAP_DMA`.
    Vfio,
    /// VFIO without an IOMMU: DMA addresses are physical addresses of pinned pages.
    NoIommu,
}

impl fmt::Display for AddressMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressMode::Sva => "SVA",
            AddressMode::StaticShare => "no-SVA/SS",
            AddressMode::Vfio => "VFIO",
            AddressMode::NoIommu => "NOIOMMU",
        })
    }
}

/// What a backend knows about a device (sysfs attributes of
/// docs/hardware-interface.md §1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device name, `<driver>-<N>` (e.g. `hisi_hpre-1`); N is a global uacce index.
    pub name: String,
    /// Driver API string with no newline (`hisi_qm_v2`).
    pub api: String,
    /// Algorithms the device offers (`rsa`, `zlib`, `gzip`, `deflate`...).
    pub algorithms: Vec<String>,
    /// uacce flags (bit 0 = SVA on mainline kernels).
    pub flags: u32,
    /// NUMA node of the parent PCI device (negative read as 0).
    pub numa_node: i32,
    /// `region_mmio_size` in bytes.
    pub mmio_size: usize,
    /// `region_dus_size` in bytes.
    pub dus_size: usize,
    /// True if the hardware-error policy isolated the device.
    pub isolated: bool,
    /// Character device for uacce devices; `None` for run-time registered ones.
    pub dev_path: Option<PathBuf>,
}

impl DeviceInfo {
    /// The driver part of the name (`hisi_hpre` of `hisi_hpre-1`).
    pub fn driver(&self) -> &str {
        match self.name.rfind('-') {
            Some(i) if self.name[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &self.name[..i],
            _ => &self.name,
        }
    }

    /// True if the device lists `alg` among its algorithms.
    pub fn supports(&self, alg: &str) -> bool {
        self.algorithms.iter().any(|a| a == alg)
    }
}

/// A device together with the backend that opens queues on it.
#[derive(Clone)]
pub struct Device {
    info: DeviceInfo,
    backend: Arc<dyn Backend>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("info", &self.info)
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Device {
    /// Pairs a device with its backend.
    pub fn new(info: DeviceInfo, backend: Arc<dyn Backend>) -> Self {
        Device { info, backend }
    }

    /// The device's attributes.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The backend serving this device.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Free queues on the device now (read live).
    pub fn available_instances(&self) -> Result<u32> {
        self.backend.available_instances(&self.info)
    }
}
