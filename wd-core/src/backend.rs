//! The plug-in point for queue providers: the uacce char devices, VFIO, and the device model.
//!
//! A [`Backend`] lists devices and opens queues on them; a [`QueueBackend`] is one opened
//! hardware queue as the backend sees it: two mapped regions, a way to register memory for
//! DMA, an interrupt-style wait, and release.

use std::fmt;
use std::time::Duration;

use crate::device::{AddressMode, DeviceInfo};
use crate::dma::Iova;
use crate::error::Result;
use crate::region::Region;

/// What a caller asks of a queue when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRequest {
    /// The engine's queue class (hisi_qm `qc_type`): ZIP 0 = compress, 1 = decompress;
    /// HPRE 0 = RSA/DH, 1 = ECC.
    pub qc_type: u16,
}

/// Geometry of an opened queue, as the kernel (SET_QP_CTX / SET_QP_INFO) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueInfo {
    /// Function-relative queue number: the `qn` of every doorbell.
    pub qid: u16,
    /// Bytes per submission descriptor.
    pub sqe_size: u32,
    /// Submission ring entries.
    pub sq_depth: u16,
    /// Completion ring entries.
    pub cq_depth: u16,
}

/// A source of devices and queues.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Short name: `uacce`, `vfio`, `model`.
    fn name(&self) -> &'static str;
    /// True for the device model (shown by `wd list`).
    fn is_model(&self) -> bool {
        false
    }
    /// The devices this backend offers now.
    fn devices(&self) -> Result<Vec<DeviceInfo>>;
    /// Free queues on `dev` right now.
    fn available_instances(&self, dev: &DeviceInfo) -> Result<u32>;
    /// Opens and starts one queue on `dev`.
    fn open_queue(&self, dev: &DeviceInfo, req: QueueRequest) -> Result<Box<dyn QueueBackend>>;
    /// How queues on `dev` reach memory, or why no queue can be opened on it, decided
    /// without opening one (`wd list`). `None`: the backend does not say (the model: its
    /// own IOVAs).
    fn verdict(&self, _dev: &DeviceInfo) -> Option<std::result::Result<AddressMode, String>> {
        None
    }
    /// Devices the backend found but does not offer at all ([`Backend::devices`] leaves
    /// them out), each with the reason: `(name, why)`.
    fn rejected(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// One opened, started hardware queue.
pub trait QueueBackend: Send + Sync + fmt::Debug {
    /// Queue geometry.
    fn info(&self) -> QueueInfo;
    /// The doorbell page(s).
    fn mmio(&self) -> &Region;
    /// The device user share: SQ, CQ and the status page.
    fn dus(&self) -> &Region;
    /// Makes `mem` reachable by the device; returns the address the device must be given.
    /// With SVA this is the virtual address; with VFIO or the model, an IOVA.
    fn map_dma(&self, mem: &Region) -> Result<Iova>;
    /// Undoes [`QueueBackend::map_dma`].
    fn unmap_dma(&self, iova: Iova, len: usize) -> Result<()>;
    /// How the device reaches memory (what its DMA addresses are).
    fn address_mode(&self) -> AddressMode {
        AddressMode::Sva
    }
    /// `len` bytes (a page multiple) of memory the device can reach, with its device
    /// address: the memory of a [`crate::DmaPool`] chunk. By default fresh pre-faulted
    /// anonymous memory shared with [`QueueBackend::map_dma`]; a backend whose device can
    /// reach only memory of its own (the no-SVA static-share region) carves it from there.
    fn alloc_dma(&self, len: usize) -> Result<(Region, Iova)> {
        let region = Region::anonymous(len)?;
        let iova = self.map_dma(&region)?;
        Ok((region, iova))
    }
    /// Gives back memory from [`QueueBackend::alloc_dma`].
    fn free_dma(&self, mem: &Region, iova: Iova) -> Result<()> {
        self.unmap_dma(iova, mem.len())
    }
    /// Blocks until the device raises the queue's completion event or `timeout` passes.
    /// Returns true on an event. Spurious returns are allowed; callers re-check the ring.
    fn wait(&self, timeout: Duration) -> Result<bool>;
    /// A descriptor that `poll()` reports readable when [`QueueBackend::wait`] would return
    /// an event (uacce: the queue's own descriptor; the model: its completion eventfd), for
    /// callers that wait in an event loop of their own (the provider's ASYNC jobs). It stays
    /// owned by the queue. None when the backend has no such descriptor.
    fn event_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
    /// Stops the queue and frees it on the device (uacce `PUT_Q`). Idempotent.
    fn release(&self) -> Result<()>;
    /// In a forked child: drops process-local handles (file descriptors) without touching
    /// the device, the mappings or the device threads, which belong to the parent. After it
    /// the object is inert; the caller forgets it.
    fn abandon(&self);
}
