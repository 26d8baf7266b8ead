//! The engine abstraction: what the queue machinery needs from an accelerator engine
//! (HPRE now, ZIP next). The QM side fetches an SQE, hands its words to the engine, and
//! writes back whatever words the engine changed before posting the CQE.

#![forbid(unsafe_code)]

use std::fmt;

use wd_core::Region;

use crate::config::ApiVersion;

/// Largest SQE the model handles, in 32-bit words (ZIP and SEC: 128 bytes).
pub const MAX_SQE_WORDS: usize = 32;

/// A DMA access the IOMMU refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DMA fault at {iova:#x}+{len}: not inside one mapping")]
pub struct DmaFault {
    /// Device address of the access.
    pub iova: u64,
    /// Bytes accessed.
    pub len: usize,
}

/// The device's view of memory: every access translates through the queue's IOMMU and
/// must lie wholly within one mapping.
pub trait DmaAccess {
    /// The `len` bytes at `iova` as a region of host memory, or a fault.
    fn translate(&self, iova: u64, len: usize) -> Result<Region, DmaFault>;

    /// Copies `out.len()` bytes from device address `iova`.
    fn read(&self, iova: u64, out: &mut [u8]) -> Result<(), DmaFault> {
        let r = self.translate(iova, out.len())?;
        r.read_bytes(0, out);
        Ok(())
    }

    /// Copies `data` to device address `iova`.
    fn write(&self, iova: u64, data: &[u8]) -> Result<(), DmaFault> {
        let r = self.translate(iova, data.len())?;
        r.write_bytes(0, data);
        Ok(())
    }
}

/// How a request ended, for the statistics. The engine has already written the matching
/// status into the SQE words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success status.
    Ok,
    /// An error status (bad parameters, wrong queue type, injected error...).
    Error,
    /// An error status because a DMA address was not mapped.
    AddressFault,
}

/// Why the queue machinery (not the engine's own checks) fails a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Fault injection: an error status as a hardware error would give.
    Injected,
    /// The engine itself failed (a bug in the model, caught): a hardware error status.
    Internal,
}

/// What an engine gets with each request besides the SQE words.
pub struct Job<'a> {
    /// The queue's `qc_type`, latched at open.
    pub qc_type: u16,
    /// The hardware version the device presents.
    pub api: ApiVersion,
    /// The queue's IOMMU view.
    pub dma: &'a dyn DmaAccess,
}

impl fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("qc_type", &self.qc_type)
            .field("api", &self.api)
            .finish()
    }
}

/// An accelerator engine behind the QM: parses its own SQE format, computes, and writes
/// its result and status into the SQE words. Must never panic on any SQE content.
pub trait Engine: Send + Sync + fmt::Debug + 'static {
    /// The uacce driver name of its devices (`hisi_hpre`, `hisi_zip`).
    fn driver(&self) -> &'static str;
    /// Bytes per SQE (a multiple of 4, at most `4 * MAX_SQE_WORDS`).
    fn sqe_size(&self) -> usize;
    /// The sysfs `algorithms` of a device presenting `api`.
    fn algorithms(&self, api: ApiVersion) -> Vec<String>;
    /// Processes one request: `sqe` holds the SQE's words as fetched; on return it holds
    /// the words as the device leaves them in the slot (result and status).
    fn process(&self, job: &Job<'_>, sqe: &mut [u32]) -> Outcome;
    /// Writes an error status for a request failed by the queue machinery.
    fn fail(&self, sqe: &mut [u32], why: Failure);
}
