//! HiSilicon HPRE user driver: RSA modular exponentiation (docs/hardware-interface.md §5)
//! on a QM ring.
//!
//! - [`RsaKey`]: public, private and CRT private keys as borrowed big-endian numbers.
//! - [`RsaJob`]: one operation, its key block and operands laid out in one DMA block.
//! - [`Hpre`]: the [`wd_core::UserDriver`] (open, send, recv, arm), many jobs in flight
//!   matched by tag and slot.
//! - [`open_queue`] and [`rsa`]: a driven queue and one synchronous operation on it.
//!
//! The SQE layout ([`sqe`]) is defined here and pinned by tests to hardware-interface's
//! offsets; the device model defines its own.

#![forbid(unsafe_code)]

pub mod driver;
pub mod job;
pub mod key;
pub mod sqe;

#[cfg(test)]
mod tests;

pub use driver::Hpre;
pub use job::RsaJob;
pub use key::{supported_key_bytes, RsaKey};

use wd_core::backend::QueueRequest;
use wd_core::wait::WaitPolicy;
use wd_core::{Device, DriverQueue, Queue, Result};

/// The uacce driver name of HPRE devices (`hisi_hpre-N`).
pub const DRIVER: &str = "hisi_hpre";
/// The algorithm name an HPRE device lists for RSA.
pub const ALGORITHM: &str = "rsa";

/// Opens an RSA queue (qc_type 0) on `device` with the HPRE driver.
pub fn open_queue(device: &Device, policy: WaitPolicy) -> Result<DriverQueue<Hpre>> {
    let queue = Queue::request(
        device,
        QueueRequest {
            qc_type: driver::QC_TYPE_RSA,
        },
    )?;
    DriverQueue::open(queue, policy)
}

/// One synchronous RSA operation, `input^exp mod n`, on an idle queue: the result is
/// `key_bytes` big-endian bytes, leading zeros kept.
pub fn rsa(q: &mut DriverQueue<Hpre>, key: &RsaKey<'_>, input: &[u8]) -> Result<Vec<u8>> {
    let job = RsaJob::new(q.driver(), key, input)?;
    q.call(job)?.result()
}
