//! `Zip`: the ZIP user driver on one QM queue (compression on qc_type 0, decompression on
//! qc_type 1).

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use hisi_qm::{QmRing, TaggedRing};
use wd_core::driver::SendError;
use wd_core::{DmaBuf, DmaPool, Error, Queue, Result, UserDriver};

use crate::job::ZipJob;
use crate::sqe::{ZipSqe, SQE_SIZE, SQE_TYPE_V2, SQE_TYPE_V3, SQE_WORDS};

/// Queue class of compression queues.
pub const QC_COMPRESS: u16 = 0;
/// Queue class of decompression queues.
pub const QC_DECOMPRESS: u16 = 1;
/// Most input (and output) bytes of one request (`HZ_MAX_SIZE`).
pub const MAX_REQUEST: usize = 8 << 20;
/// Smallest output buffer the engine accepts.
pub const MIN_DEST: u32 = 200;
/// The hardware stream context (`HW_CTX_SIZE`).
pub const CTX_SIZE: usize = 0x10000;

/// Input/output blocks made when the queue opens (and per growth step).
const IO_BLOCKS_INITIAL: usize = 2;
/// Most input/output blocks per queue.
const IO_BLOCKS_MAX: usize = 64;
/// Stream contexts made when the queue opens.
const CTX_INITIAL: usize = 4;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The ZIP driver state of one queue: ring, DMA pools, jobs in flight by tag.
#[derive(Debug)]
pub struct Zip {
    ring: TaggedRing<ZipJob>,
    io: DmaPool,
    ctx: DmaPool,
    id: u64,
    qc_type: u16,
    sqe_type: u8,
    v3: bool,
}

impl Zip {
    /// The ring.
    pub fn ring(&self) -> &QmRing {
        self.ring.ring()
    }

    /// The pool of 8 MiB input/output blocks.
    pub fn io_pool(&self) -> &DmaPool {
        &self.io
    }

    /// A 64 KiB stream context block (its content is the device's).
    pub fn alloc_ctx(&self) -> Result<DmaBuf> {
        self.ctx.alloc()
    }

    /// Identity of this driver instance (jobs and contexts belong to one).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The queue class: [`QC_COMPRESS`] or [`QC_DECOMPRESS`].
    pub fn qc_type(&self) -> u16 {
        self.qc_type
    }

    /// True on api ≥ v3 (sqe_type 3, raw deflate available).
    pub fn is_v3(&self) -> bool {
        self.v3
    }
}

impl UserDriver for Zip {
    type Msg = ZipJob;

    /// Needs a qc_type 0 or 1 queue with 128-byte SQEs.
    fn open(queue: &Queue) -> Result<Self> {
        let qc = queue.request_params().qc_type;
        if qc != QC_COMPRESS && qc != QC_DECOMPRESS {
            return Err(Error::Unsupported(format!(
                "ZIP needs a qc_type 0 (compress) or 1 (decompress) queue, not {qc}"
            )));
        }
        let info = queue.info();
        if info.sqe_size as usize != SQE_SIZE {
            return Err(Error::Unsupported(format!(
                "ZIP queue {} has {}-byte SQEs; the driver speaks {SQE_SIZE}-byte ones",
                info.qid, info.sqe_size
            )));
        }
        let ring = QmRing::new(queue)?;
        let v3 = ring.version().number() >= 3;
        let depth = ring.sq_depth() as usize;
        let io = queue.dma_pool(MAX_REQUEST, IO_BLOCKS_INITIAL, IO_BLOCKS_MAX)?;
        let ctx = queue.dma_pool(CTX_SIZE, CTX_INITIAL, depth.max(CTX_INITIAL) * 4)?;
        Ok(Zip {
            ring: TaggedRing::new(ring),
            io,
            ctx,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            qc_type: qc,
            sqe_type: if v3 { SQE_TYPE_V3 } else { SQE_TYPE_V2 },
            v3,
        })
    }

    fn send(&mut self, _queue: &Queue, msg: ZipJob) -> Result<(), SendError<ZipJob>> {
        if msg.owner() != self.id {
            return Err(SendError {
                error: Error::InvalidArgument(
                    "ZIP job was built for another queue (its DMA blocks are not shared here)"
                        .into(),
                ),
                msg,
            });
        }
        let sqe_type = self.sqe_type;
        self.ring.submit(msg, |job, tag| job.sqe(tag, sqe_type).0)
    }

    /// Takes one completion: the SQE read back from the slot the CQE names, its tag
    /// matched to the job sent in that slot, the device's answer recorded in the job.
    fn recv(&mut self, _queue: &Queue) -> Result<Option<ZipJob>> {
        let sent_type = self.sqe_type;
        let tag_of = |slot: u16, w: &[u32; SQE_WORDS]| {
            let sqe = ZipSqe(*w);
            if sqe.sqe_type() != sent_type {
                return Err(Error::Protocol(format!(
                    "SQE read back from slot {slot} has sqe_type {}, sent {sent_type}",
                    sqe.sqe_type()
                )));
            }
            u16::try_from(sqe.tag()).map_err(|_| {
                Error::Protocol(format!(
                    "completion in slot {slot} carries tag {:#x}",
                    sqe.tag()
                ))
            })
        };
        let Some(done) = self.ring.complete(tag_of)? else {
            return Ok(None);
        };
        let (mut job, sqe, slot, tag) = (done.msg, ZipSqe(done.sqe), done.slot, done.tag);
        if !job.matches(&sqe) {
            return Err(Error::Protocol(format!(
                "SQE read back from slot {slot} (tag {tag}) no longer holds the request's \
                 addresses"
            )));
        }
        job.finish(&sqe)?;
        Ok(Some(job))
    }

    fn arm(&mut self, _queue: &Queue) -> Result<()> {
        self.ring.arm();
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.ring.in_flight()
    }

    fn class(msg: &ZipJob) -> usize {
        // Service time grows with the request: classes by power of two of the input.
        let n = msg.params().input_len.max(1);
        (usize::BITS - n.leading_zeros()) as usize
    }

    fn close(&mut self, _queue: &Queue) {
        let left = self.ring.drain();
        if !left.is_empty() {
            wd_core::wd_log!(
                Warn,
                "ZIP queue {}: closed with {} requests in flight",
                self.ring.ring().qid(),
                left.len()
            );
        }
    }
}
