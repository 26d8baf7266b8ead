//! The uacce backend: accelerator queues exposed by Linux as `/dev/<driver>-<N>` char
//! devices, described under `/sys/class/uacce` (docs/hardware-interface.md §1).
//!
//! - [`sysfs`]: discovery (hardware-interface §1.2).
//! - [`sys`]: the one system-call seam ([`UacceSys`]); [`RealSys`] is libc.
//! - `fake` (feature `fake-kernel`, and in this crate's own tests): the seam's test twin, a
//!   fake kernel enforcing uacce's rules, whose device side (the memory behind the mappings,
//!   the engines) is plugged in. Test machinery: production builds leave it out.
//! - [`ioctl`]: request numbers and argument structs of both kernel numberings.
//! - [`kernel`]: api check, numbering choice, legacy geometry.
//! - [`queue`]: one opened queue ([`UacceQueue`]).
//! - [`ss`]: the static-share region of no-SVA queues (openEuler `_noiommu` apis).

#[cfg(any(test, feature = "fake-kernel"))]
pub mod fake;
pub mod ioctl;
pub mod kernel;
pub mod queue;
pub mod ss;
pub mod sys;
pub mod sysfs;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::{Backend, QueueBackend, QueueRequest};
use crate::device::{AddressMode, DeviceInfo};
use crate::error::{Error, Result};

pub use ioctl::Abi;
pub use kernel::AbiChoice;
pub use queue::UacceQueue;
pub use sys::{RealSys, UacceSys};

/// A device as the uacce backend sees it, usable or not (for `wd list`).
#[derive(Debug, Clone)]
pub struct Scanned {
    /// What sysfs says.
    pub info: DeviceInfo,
    /// The ioctl numbering that would be used, or why none can be.
    pub abi: std::result::Result<AbiChoice, String>,
    /// How queues reach memory (SVA or no-SVA/SS) when the device is usable.
    pub mode: Option<AddressMode>,
    /// Why queues will not be opened on the device (`None` if they will).
    pub refused: Option<String>,
}

/// The host's uacce devices as `wd list` shows them: [`UacceBackend::from_env`]'s
/// [`UacceBackend::scan`] (api, flags, algorithms, NUMA node, isolation, numbering, refusal;
/// free instances from [`Backend::available_instances`]).
pub fn scan_host() -> Result<Vec<Scanned>> {
    UacceBackend::from_env().scan()
}

/// Queues from the kernel's uacce devices.
#[derive(Debug, Clone)]
pub struct UacceBackend {
    sysfs_root: PathBuf,
    dev_root: PathBuf,
    sys: Arc<dyn UacceSys>,
    abi: std::result::Result<Option<Abi>, String>,
    ss_size: std::result::Result<Option<usize>, String>,
}

impl Default for UacceBackend {
    fn default() -> Self {
        Self::from_env()
    }
}

impl UacceBackend {
    /// A backend over the given sysfs class directory and device directory, real syscalls.
    pub fn new(sysfs_root: impl Into<PathBuf>, dev_root: impl Into<PathBuf>) -> Self {
        Self::with_sys(sysfs_root, dev_root, Arc::new(RealSys), None)
    }

    /// A backend whose every system call goes through `sys`, with the numbering fixed to
    /// `abi` (`None`: detected per device).
    pub fn with_sys(
        sysfs_root: impl Into<PathBuf>,
        dev_root: impl Into<PathBuf>,
        sys: Arc<dyn UacceSys>,
        abi: Option<Abi>,
    ) -> Self {
        UacceBackend {
            sysfs_root: sysfs_root.into(),
            dev_root: dev_root.into(),
            sys,
            abi: Ok(abi),
            ss_size: Ok(None),
        }
    }

    /// The host's uacce devices, or the roots named by `WD_SYSFS_ROOT` / `WD_DEV_ROOT`;
    /// the numbering from `WD_UACCE_ABI` (`mainline` | `openeuler`) if set.
    pub fn from_env() -> Self {
        let sys = std::env::var_os("WD_SYSFS_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(sysfs::DEFAULT_SYSFS_ROOT));
        let dev = std::env::var_os("WD_DEV_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(sysfs::DEFAULT_DEV_ROOT));
        let mut b = Self::new(sys, dev);
        b.abi = match std::env::var("WD_UACCE_ABI") {
            Ok(v) if !v.trim().is_empty() => v.parse::<Abi>().map(Some),
            _ => Ok(None),
        };
        b.ss_size = match std::env::var("WD_SS_SIZE") {
            Ok(v) if !v.trim().is_empty() => kernel::parse_ss_size(&v)
                .map(Some)
                .map_err(|e| e.to_string()),
            _ => Ok(None),
        };
        b
    }

    /// Fixes the ioctl numbering (as `WD_UACCE_ABI` does).
    pub fn with_abi(mut self, abi: Abi) -> Self {
        self.abi = Ok(Some(abi));
        self
    }

    /// Fixes the static-share bytes each no-SVA queue maps (as `WD_SS_SIZE` does).
    pub fn with_static_share_size(mut self, bytes: usize) -> Self {
        self.ss_size = Ok(Some(bytes));
        self
    }

    /// The seam in use.
    pub fn sys(&self) -> &Arc<dyn UacceSys> {
        &self.sys
    }

    /// Every uacce device with the verdict on it: the numbering in force and why queues
    /// would be refused. `wd list` shows this; [`Backend::devices`] offers only devices
    /// whose api wd speaks.
    pub fn scan(&self) -> Result<Vec<Scanned>> {
        let list = sysfs::discover_with(&*self.sys, &self.sysfs_root, &self.dev_root)?;
        Ok(list
            .into_iter()
            .map(|info| {
                let abi = self.abi_for(&info).map_err(|e| e.to_string());
                let (mode, refused) = match self.refusal(&info, &abi) {
                    Ok((_, mode)) => (Some(mode), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                Scanned {
                    info,
                    abi,
                    mode,
                    refused,
                }
            })
            .collect())
    }

    /// The numbering for `dev`: configured, or detected (never guessed).
    pub fn abi_for(&self, dev: &DeviceInfo) -> Result<AbiChoice> {
        let configured = self.abi.clone().map_err(Error::Config)?;
        kernel::choose_abi(
            &*self.sys,
            configured,
            dev,
            &self.sysfs_root.join(&dev.name),
        )
    }

    /// Why queues cannot be opened on `dev`, checked before any system call on the node;
    /// else the numbering and the address mode: SVA, or no-SVA with the static-share
    /// region when the api carries openEuler's `_noiommu` suffix and the flags lack SVA.
    fn refusal(
        &self,
        dev: &DeviceInfo,
        abi: &std::result::Result<AbiChoice, String>,
    ) -> Result<(Abi, AddressMode)> {
        kernel::check_api(&dev.api)
            .map_err(|e| Error::Unsupported(format!("{}: {e}", dev.name)))?;
        let abi = match abi {
            Ok(a) => a.abi,
            Err(e) => return Err(Error::Unsupported(e.clone())),
        };
        let no_sva_api = kernel::is_no_sva_api(&dev.api);
        let mode = match (abi.has_sva(dev.flags), no_sva_api) {
            (true, false) => AddressMode::Sva,
            (false, true) if abi.no_sva_flags(dev.flags) => AddressMode::StaticShare,
            (true, true) => {
                return Err(Error::Unsupported(format!(
                    "{}: api {:?} says no-SVA but flags {:#x} say SVA ({abi} numbering):                      contradictory, refused",
                    dev.name,
                    dev.api.trim(),
                    dev.flags
                )))
            }
            (false, true) => {
                return Err(Error::Unsupported(format!(
                    "{}: api {:?} says no-SVA but flags {:#x} have neither SVA nor                      NOIOMMU ({abi} numbering)",
                    dev.name,
                    dev.api.trim(),
                    dev.flags
                )))
            }
            (false, false) => {
                return Err(Error::Unsupported(format!(
                    "{}: flags {:#x} lack SVA and the api {:?} has no {} suffix: the kernel \
                     offers neither SVA nor the static-share region (no-SVA queues need an \
                     openEuler kernel with hisi_qm in no-SVA mode)",
                    dev.name,
                    dev.flags,
                    dev.api.trim(),
                    kernel::NOIOMMU_SUFFIX
                )))
            }
        };
        if mode == AddressMode::StaticShare {
            if let Err(e) = &self.ss_size {
                return Err(Error::Config(e.clone()));
            }
        }
        if dev.isolated {
            return Err(Error::DeviceGone(format!(
                "{}: isolated by the hardware-error policy (isolate = 1)",
                dev.name
            )));
        }
        Ok((abi, mode))
    }
}

impl Backend for UacceBackend {
    fn name(&self) -> &'static str {
        "uacce"
    }

    /// Devices whose api wd speaks (a device with an unknown api is left out with a
    /// warning saying why; [`UacceBackend::scan`] still shows it). Isolated devices are
    /// listed, marked, and never given queues.
    fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let list = sysfs::discover_with(&*self.sys, &self.sysfs_root, &self.dev_root)?;
        Ok(list
            .into_iter()
            .filter(|d| match kernel::check_api(&d.api) {
                Ok(_) => true,
                Err(e) => {
                    crate::wd_log!(Warn, "uacce: refusing {}: {e}", d.name);
                    false
                }
            })
            .collect())
    }

    fn available_instances(&self, dev: &DeviceInfo) -> Result<u32> {
        sysfs::available_instances_with(&*self.sys, &self.sysfs_root, &dev.name)
    }

    /// SVA or no-SVA/SS, or the refusal `open_queue` would give before any system call.
    fn verdict(&self, dev: &DeviceInfo) -> Option<std::result::Result<AddressMode, String>> {
        let abi = self.abi_for(dev).map_err(|e| e.to_string());
        Some(
            self.refusal(dev, &abi)
                .map(|(_, mode)| mode)
                .map_err(|e| e.to_string()),
        )
    }

    /// Devices with an api wd does not speak.
    fn rejected(&self) -> Vec<(String, String)> {
        match sysfs::discover_with(&*self.sys, &self.sysfs_root, &self.dev_root) {
            Ok(list) => list
                .into_iter()
                .filter_map(|d| {
                    kernel::check_api(&d.api)
                        .err()
                        .map(|e| (d.name.clone(), e.to_string()))
                })
                .collect(),
            Err(e) => vec![("uacce".into(), e.to_string())],
        }
    }

    fn open_queue(&self, dev: &DeviceInfo, req: QueueRequest) -> Result<Box<dyn QueueBackend>> {
        let choice = self.abi_for(dev).map_err(|e| e.to_string());
        let (abi, mode) = self.refusal(dev, &choice)?;
        if let Ok(c) = &choice {
            crate::wd_log!(
                Info,
                "uacce: {}: {} ioctl numbering ({})",
                dev.name,
                c.abi,
                c.reason
            );
        }
        if self.available_instances(dev)? == 0 {
            return Err(Error::NoFreeQueue(format!(
                "{}: available_instances is 0",
                dev.name
            )));
        }
        let static_share = match mode {
            AddressMode::StaticShare => Some(
                self.ss_size
                    .clone()
                    .map_err(Error::Config)?
                    .unwrap_or_else(|| kernel::default_ss_size(dev.driver())),
            ),
            _ => None,
        };
        let q = UacceQueue::open(self.sys.clone(), dev, abi, req, static_share)?;
        Ok(Box::new(q))
    }
}
