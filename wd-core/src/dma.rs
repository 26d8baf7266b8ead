//! DMA memory: device addresses and a pool of pre-faulted blocks shared with a queue once.
//!
//! Blocks are carved from page-aligned chunks that are registered with the queue's backend
//! when the chunk is made, never per request. A block returns to its pool when dropped; the
//! part of a block marked sensitive (key material) is wiped first.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::backend::QueueBackend;
use crate::error::{Error, Result};
use crate::region::{page_size, Region};

/// An address as the device sees it: a virtual address under SVA, an IOVA otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iova(pub u64);

impl Iova {
    /// The address `off` bytes further on.
    pub fn offset(self, off: usize) -> Iova {
        Iova(self.0 + off as u64)
    }
}

impl fmt::Display for Iova {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

struct Chunk {
    region: Region,
    iova: Iova,
}

struct PoolInner {
    backend: Arc<dyn QueueBackend>,
    block_size: usize,
    blocks_per_chunk: usize,
    max_blocks: usize,
    chunks: Mutex<Vec<Chunk>>,
    free: Mutex<Vec<(Region, Iova)>>,
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let chunks = std::mem::take(self.chunks.get_mut().unwrap_or_else(|e| e.into_inner()));
        for c in chunks {
            let _ = self.backend.free_dma(&c.region, c.iova);
        }
    }
}

/// A pool of equal-sized DMA blocks for one queue.
#[derive(Clone)]
pub struct DmaPool {
    inner: Arc<PoolInner>,
}

impl fmt::Debug for DmaPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaPool")
            .field("block_size", &self.inner.block_size)
            .field("chunks", &self.chunks())
            .field("free", &self.free_blocks())
            .finish()
    }
}

impl DmaPool {
    /// A pool of `block_size`-byte blocks (rounded up to 64 bytes), starting with `initial`
    /// blocks and growing in chunks of the same count up to `max_blocks`.
    pub(crate) fn new(
        backend: Arc<dyn QueueBackend>,
        block_size: usize,
        initial: usize,
        max_blocks: usize,
    ) -> Result<Self> {
        if block_size == 0 || initial == 0 || max_blocks < initial {
            return Err(Error::InvalidArgument(format!(
                "DMA pool of {initial}..{max_blocks} blocks of {block_size} bytes"
            )));
        }
        let block_size = block_size.div_ceil(64) * 64;
        let pool = DmaPool {
            inner: Arc::new(PoolInner {
                backend,
                block_size,
                blocks_per_chunk: initial,
                max_blocks,
                chunks: Mutex::new(Vec::new()),
                free: Mutex::new(Vec::with_capacity(max_blocks)),
            }),
        };
        pool.grow()?;
        Ok(pool)
    }

    fn grow(&self) -> Result<()> {
        let inner = &self.inner;
        let mut chunks = inner.chunks.lock().unwrap_or_else(|e| e.into_inner());
        let have = chunks.len() * inner.blocks_per_chunk;
        if have >= inner.max_blocks {
            return Err(Error::NoFreeQueue(format!(
                "DMA pool exhausted ({have} blocks of {} bytes)",
                inner.block_size
            )));
        }
        let n = inner.blocks_per_chunk.min(inner.max_blocks - have);
        let len = (n * inner.block_size).div_ceil(page_size()) * page_size();
        let (region, iova) = inner.backend.alloc_dma(len)?;
        let mut free = inner.free.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..n {
            let off = i * inner.block_size;
            free.push((region.slice(off, inner.block_size)?, iova.offset(off)));
        }
        chunks.push(Chunk { region, iova });
        Ok(())
    }

    /// Takes a block; grows the pool (off the hot path) if none is free.
    pub fn alloc(&self) -> Result<DmaBuf> {
        loop {
            if let Some((region, iova)) = self
                .inner
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
            {
                return Ok(DmaBuf {
                    region: Some(region),
                    iova,
                    sensitive: 0..0,
                    pool: self.inner.clone(),
                });
            }
            self.grow()?;
        }
    }

    /// Bytes per block.
    pub fn block_size(&self) -> usize {
        self.inner.block_size
    }

    /// Chunks registered with the device.
    pub fn chunks(&self) -> usize {
        self.inner.chunks.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Blocks free now.
    pub fn free_blocks(&self) -> usize {
        self.inner.free.lock().map(|f| f.len()).unwrap_or(0)
    }
}

/// One block of DMA memory, returned to its pool on drop.
pub struct DmaBuf {
    region: Option<Region>,
    iova: Iova,
    /// The bytes holding key material (wiped on release).
    sensitive: std::ops::Range<usize>,
    pool: Arc<PoolInner>,
}

impl fmt::Debug for DmaBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaBuf")
            .field("iova", &self.iova)
            .field("len", &self.len())
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

impl DmaBuf {
    fn region(&self) -> &Region {
        self.region
            .as_ref()
            .expect("DmaBuf region present until drop")
    }

    /// Device address of the block's first byte.
    pub fn iova(&self) -> Iova {
        self.iova
    }

    /// Block length.
    pub fn len(&self) -> usize {
        self.region().len()
    }

    /// Never true.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks `off..off + len` of the block as holding key material: that part is wiped
    /// before the block is reused (ranges marked before widen to cover both).
    pub fn set_sensitive(&mut self, off: usize, len: usize) {
        let end = off.saturating_add(len).min(self.len());
        let off = off.min(end);
        self.sensitive = if self.sensitive.is_empty() {
            off..end
        } else {
            self.sensitive.start.min(off)..self.sensitive.end.max(end)
        };
    }

    /// Copies `data` into the block at `off`.
    pub fn write(&mut self, off: usize, data: &[u8]) {
        self.region().write_bytes(off, data)
    }

    /// Copies from the block at `off` into `out`.
    pub fn read(&self, off: usize, out: &mut [u8]) {
        self.region().read_bytes(off, out)
    }

    /// Appends `len` bytes of the block from `off` to `out`.
    pub fn append_to(&self, off: usize, len: usize, out: &mut Vec<u8>) {
        self.region().append_to(off, len, out)
    }

    /// Fills `off..off+len` with zeros.
    pub fn zero(&mut self, off: usize, len: usize) {
        self.region().fill(off, len, 0)
    }

    /// Writes `value` big-endian, right-aligned in a zeroed field of `width` bytes at `off`
    /// (the operand format of HPRE). Fails if the value is wider than the field.
    pub fn write_be_padded(&mut self, off: usize, width: usize, value: &[u8]) -> Result<()> {
        let v = strip_leading_zeros(value);
        if v.len() > width {
            return Err(Error::InvalidArgument(format!(
                "operand of {} bytes does not fit {width}",
                v.len()
            )));
        }
        self.zero(off, width - v.len());
        self.write(off + width - v.len(), v);
        Ok(())
    }
}

/// `value` without its leading zero bytes.
pub fn strip_leading_zeros(value: &[u8]) -> &[u8] {
    let first = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    &value[first..]
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        if let Some(region) = self.region.take() {
            if !self.sensitive.is_empty() {
                region.fill(self.sensitive.start, self.sensitive.len(), 0);
            }
            self.pool
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((region, self.iova));
        }
    }
}
