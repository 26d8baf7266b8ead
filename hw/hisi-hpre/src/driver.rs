//! `Hpre`: the HPRE user driver on one QM queue (RSA on a qc_type 0 queue).

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use hisi_qm::{QmRing, TaggedRing};
use wd_core::driver::SendError;
use wd_core::{DmaPool, Error, Queue, Result, UserDriver};

use crate::job::RsaJob;
use crate::key::BLOCK_SIZE;
use crate::sqe::{HpreSqe, SQE_SIZE};

/// The queue class of RSA and DH on HPRE (qc_type 1 is ECC).
pub const QC_TYPE_RSA: u16 = 0;

/// DMA blocks made when the queue opens (and added per growth step).
const POOL_INITIAL_BLOCKS: usize = 64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The HPRE driver state of one queue: the ring, the DMA pool jobs draw their blocks from,
/// and the jobs in flight by tag.
#[derive(Debug)]
pub struct Hpre {
    ring: TaggedRing<RsaJob>,
    pool: DmaPool,
    id: u64,
}

impl Hpre {
    /// The ring (geometry, state).
    pub fn ring(&self) -> &QmRing {
        self.ring.ring()
    }

    /// The pool of 4 KiB job blocks shared with this queue.
    pub fn pool(&self) -> &DmaPool {
        &self.pool
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl UserDriver for Hpre {
    type Msg = RsaJob;

    /// Needs a qc_type 0 queue with 64-byte SQEs; makes the ring and a pool of 64 job
    /// blocks, growing up to the SQ depth.
    fn open(queue: &Queue) -> Result<Self> {
        let qc = queue.request_params().qc_type;
        if qc != QC_TYPE_RSA {
            return Err(Error::Unsupported(format!(
                "HPRE RSA needs a qc_type {QC_TYPE_RSA} queue, not {qc} (the ECC class)"
            )));
        }
        let info = queue.info();
        if info.sqe_size as usize != SQE_SIZE {
            return Err(Error::Unsupported(format!(
                "HPRE queue {} has {}-byte SQEs; the driver speaks {SQE_SIZE}-byte ones",
                info.qid, info.sqe_size
            )));
        }
        let ring = QmRing::new(queue)?;
        let depth = ring.sq_depth() as usize;
        let pool = queue.dma_pool(BLOCK_SIZE, POOL_INITIAL_BLOCKS.min(depth), depth)?;
        Ok(Hpre {
            ring: TaggedRing::new(ring),
            pool,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn send(&mut self, _queue: &Queue, msg: RsaJob) -> Result<(), SendError<RsaJob>> {
        if msg.owner() != self.id {
            return Err(SendError {
                error: Error::InvalidArgument(
                    "RSA job was built for another HPRE queue (its DMA block is not shared here)"
                        .into(),
                ),
                msg,
            });
        }
        self.ring.submit(msg, |job, tag| job.sqe(tag).0)
    }

    /// Takes one completion: reads the SQE back from the slot the CQE names, matches its
    /// tag to the job sent in that slot ([`Error::Protocol`] if it does not match, never a
    /// wrong result) and records the device's verdict in the job.
    fn recv(&mut self, _queue: &Queue) -> Result<Option<RsaJob>> {
        let Some(done) = self.ring.complete(|_, w| Ok(HpreSqe(*w).tag()))? else {
            return Ok(None);
        };
        let (mut job, sqe, slot, tag) = (done.msg, HpreSqe(done.sqe), done.slot, done.tag);
        if !job.matches(&sqe) {
            return Err(Error::Protocol(format!(
                "SQE read back from slot {slot} (tag {tag}) no longer holds the request's \
                 addresses"
            )));
        }
        job.finish(&sqe);
        Ok(Some(job))
    }

    fn arm(&mut self, _queue: &Queue) -> Result<()> {
        self.ring.arm();
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.ring.in_flight()
    }

    fn class(msg: &RsaJob) -> usize {
        msg.class()
    }

    fn close(&mut self, _queue: &Queue) {
        let left = self.ring.drain();
        if !left.is_empty() {
            wd_core::wd_log!(
                Warn,
                "HPRE queue {}: closed with {} requests in flight",
                self.ring.ring().qid(),
                left.len()
            );
        }
    }
}
