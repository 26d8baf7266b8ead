//! `Queue`: one hardware queue opened on a device, released on drop.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{QueueBackend, QueueInfo, QueueRequest};
use crate::device::Device;
use crate::dma::{DmaPool, Iova};
use crate::error::Result;
use crate::fork::Epoch;
use crate::region::Region;

/// An opened and started queue: its doorbell page, its ring memory and its DMA mappings.
pub struct Queue {
    device: Device,
    backend: Arc<dyn QueueBackend>,
    info: QueueInfo,
    request: QueueRequest,
    epoch: Epoch,
    serial: u64,
}

/// Serial numbers of the queues this process opens (never reused, unlike descriptors).
static NEXT_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("device", &self.device.info().name)
            .field("info", &self.info)
            .field("qc_type", &self.request.qc_type)
            .finish()
    }
}

impl Queue {
    /// Requests a queue on `device` (the seed API's `wd_request_queue`).
    pub fn request(device: &Device, request: QueueRequest) -> Result<Queue> {
        let backend: Arc<dyn QueueBackend> =
            Arc::from(device.backend().open_queue(device.info(), request)?);
        crate::wd_log!(
            Info,
            "opened queue {} on {} ({})",
            backend.info().qid,
            device.info().name,
            device.backend().name()
        );
        Ok(Queue {
            device: device.clone(),
            info: backend.info(),
            backend,
            request,
            epoch: Epoch::current(),
            serial: NEXT_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// The device the queue is on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The device's API string (`hisi_qm_v2`...).
    pub fn api(&self) -> &str {
        &self.device.info().api
    }

    /// Geometry reported by the kernel.
    pub fn info(&self) -> QueueInfo {
        self.info
    }

    /// What the queue was opened for.
    pub fn request_params(&self) -> QueueRequest {
        self.request
    }

    /// The doorbell page(s).
    pub fn mmio(&self) -> &Region {
        self.backend.mmio()
    }

    /// SQ, CQ and status page.
    pub fn dus(&self) -> &Region {
        self.backend.dus()
    }

    /// How the device reaches memory: SVA (any memory can be shared), no-SVA/SS (only the
    /// queue's static-share region: [`Queue::mem_share`] of other memory is refused, DMA
    /// pools are carved from the region), VFIO or NOIOMMU.
    pub fn address_mode(&self) -> crate::device::AddressMode {
        self.backend.address_mode()
    }

    /// Shares `mem` with the device (`wd_mem_share`); returns its device address. On a
    /// no-SVA queue only memory inside the queue's static-share region (blocks of its
    /// [`Queue::dma_pool`]s) has a device address: other memory is refused with
    /// [`crate::Error::Unsupported`].
    pub fn mem_share(&self, mem: &Region) -> Result<Iova> {
        self.backend.map_dma(mem)
    }

    /// Stops sharing memory shared with [`Queue::mem_share`] (`wd_mem_unshare`).
    pub fn mem_unshare(&self, iova: Iova, len: usize) -> Result<()> {
        self.backend.unmap_dma(iova, len)
    }

    /// A pool of `block_size`-byte DMA blocks shared with this queue.
    pub fn dma_pool(&self, block_size: usize, initial: usize, max: usize) -> Result<DmaPool> {
        DmaPool::new(self.backend.clone(), block_size, initial, max)
    }

    /// Waits for the queue's completion event (interrupt, or the model's eventfd).
    pub fn wait_event(&self, timeout: Duration) -> Result<bool> {
        self.backend.wait(timeout)
    }

    /// The descriptor `poll()` reports readable on a completion event, if the backend has
    /// one ([`QueueBackend::event_fd`]); [`Queue::wait_event`] with a zero timeout clears it.
    pub fn event_fd(&self) -> Option<std::os::fd::RawFd> {
        self.backend.event_fd()
    }

    /// This queue's serial number in the process: unique among every queue it ever opened,
    /// where a descriptor number comes back once its queue is closed.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// True if this queue was opened by the calling process incarnation.
    pub fn is_owned_by_this_process(&self) -> bool {
        self.epoch.is_current()
    }

    /// Forgets the queue in a forked child without touching the parent's device state.
    pub fn abandon(self) {
        self.backend.abandon();
        // Never run Drop: it would release the parent's queue.
        std::mem::forget(self);
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if !self.epoch.is_current() {
            self.backend.abandon();
            return;
        }
        if let Err(e) = self.backend.release() {
            crate::wd_log!(Warn, "releasing queue {}: {e}", self.info.qid);
        }
    }
}
