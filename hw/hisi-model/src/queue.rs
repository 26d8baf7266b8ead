//! One opened model queue as wd-core sees it ([`QueueBackend`]): the DUS region, the MMIO
//! region whose doorbell stores reach the device, the IOMMU, the completion eventfd and the
//! instance slot lock.

#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wd_core::fork::Epoch;
use wd_core::{Error, Iova, MmioHook, QueueBackend, QueueInfo, Region, Result};

use crate::device::{lock, DeviceCore, HwQueue};
use crate::layout::qm::DoorbellFormat;
use crate::sys::SlotLock;

/// Sees the doorbell stores of one queue's MMIO region.
pub(crate) struct DoorbellHook {
    pub hw: Arc<HwQueue>,
    pub device: Arc<DeviceCore>,
    pub format: DoorbellFormat,
}

impl MmioHook for DoorbellHook {
    fn on_write_u64(&self, offset: usize, value: u64) {
        self.device.mmio_write(&self.hw, self.format, offset, value);
    }
}

/// A queue of the device model.
pub struct ModelQueue {
    pub(crate) info: QueueInfo,
    pub(crate) hw: Arc<HwQueue>,
    pub(crate) device: Arc<DeviceCore>,
    pub(crate) mmio: Region,
    pub(crate) slot: Mutex<Option<SlotLock>>,
    pub(crate) epoch: Epoch,
    pub(crate) abandoned: AtomicBool,
}

impl fmt::Debug for ModelQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelQueue")
            .field("device", &self.device.name)
            .field("info", &self.info)
            .field("qc_type", &self.hw.qc_type)
            .field("released", &self.hw.released.load(Ordering::Relaxed))
            .finish()
    }
}

impl ModelQueue {
    fn gone(&self) -> Option<Error> {
        if self.abandoned.load(Ordering::SeqCst) {
            return Some(Error::DeviceGone("model queue abandoned after fork".into()));
        }
        if self.hw.released.load(Ordering::SeqCst) {
            return Some(Error::DeviceGone(format!(
                "model queue {} released",
                self.info.qid
            )));
        }
        None
    }
}

impl QueueBackend for ModelQueue {
    fn info(&self) -> QueueInfo {
        self.info
    }

    fn mmio(&self) -> &Region {
        &self.mmio
    }

    fn dus(&self) -> &Region {
        &self.hw.dus
    }

    fn map_dma(&self, mem: &Region) -> Result<Iova> {
        if let Some(e) = self.gone() {
            return Err(e);
        }
        self.hw.iommu.map(&self.device.shared.iova, mem)
    }

    fn unmap_dma(&self, iova: Iova, len: usize) -> Result<()> {
        if let Some(e) = self.gone() {
            return Err(e);
        }
        self.hw.iommu.unmap(iova, len)
    }

    fn wait(&self, timeout: Duration) -> Result<bool> {
        if let Some(e) = self.gone() {
            return Err(e);
        }
        self.hw
            .event
            .wait(timeout)
            .map_err(|e| Error::io("model queue event wait", e))
    }

    fn event_fd(&self) -> Option<std::os::fd::RawFd> {
        if self.gone().is_some() {
            return None;
        }
        self.hw.event.raw_fd()
    }

    fn release(&self) -> Result<()> {
        if !self.epoch.is_current() {
            // A forked child must not stop the parent's queue.
            self.abandon();
            return Ok(());
        }
        if self.abandoned.load(Ordering::SeqCst) || self.hw.released.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.hw.shut();
        self.device.remove_queue(&self.hw);
        // Closing the slot's descriptor frees the instance for every process.
        lock(&self.slot).take();
        Ok(())
    }

    fn abandon(&self) {
        if self.abandoned.swap(true, Ordering::SeqCst) {
            return;
        }
        // Process-local descriptors only: the slot lock's copy and the eventfd's copy.
        // Nothing of the parent's (threads, ring state, mappings) is touched. `try_lock`
        // because a thread of the parent may have held the mutex at fork time.
        if let Ok(mut s) = self.slot.try_lock() {
            s.take();
        }
        self.hw.event.close();
    }
}

impl Drop for ModelQueue {
    fn drop(&mut self) {
        if self.epoch.is_current() && !self.abandoned.load(Ordering::SeqCst) {
            let _ = self.release();
        } else {
            self.abandon();
        }
    }
}
