//! The model's IOMMU: device addresses from its own allocator, translated and checked on
//! every engine access.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use wd_core::{region::page_size, Error, Iova, Region, Result};

use crate::engine::{DmaAccess, DmaFault};

/// First IOVA handed out (far from any host address the model could confuse it with).
pub const IOVA_BASE: u64 = 0x10_0000_0000;

/// Hands out distinct, page-aligned IOVA ranges (with an unmapped guard page between
/// neighbours). One per backend, so addresses are unique across its queues.
#[derive(Debug)]
pub struct IovaAllocator {
    next: AtomicU64,
}

impl Default for IovaAllocator {
    fn default() -> Self {
        IovaAllocator {
            next: AtomicU64::new(IOVA_BASE),
        }
    }
}

impl IovaAllocator {
    /// A range of at least `len` bytes.
    pub fn alloc(&self, len: usize) -> u64 {
        let page = page_size() as u64;
        let span = (len as u64).div_ceil(page) * page + page;
        self.next.fetch_add(span, Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct Mapping {
    len: usize,
    region: Region,
}

/// One queue's DMA mappings.
#[derive(Debug, Default)]
pub struct Iommu {
    maps: RwLock<BTreeMap<u64, Mapping>>,
}

impl Iommu {
    /// Maps `mem` at a fresh IOVA from `alloc`.
    pub fn map(&self, alloc: &IovaAllocator, mem: &Region) -> Result<Iova> {
        if mem.is_empty() {
            return Err(Error::InvalidArgument("mapping an empty region".into()));
        }
        let iova = alloc.alloc(mem.len());
        self.maps.write().unwrap_or_else(|e| e.into_inner()).insert(
            iova,
            Mapping {
                len: mem.len(),
                region: mem.clone(),
            },
        );
        Ok(Iova(iova))
    }

    /// Removes the mapping at `iova`; it must exist with exactly `len` bytes.
    pub fn unmap(&self, iova: Iova, len: usize) -> Result<()> {
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        match maps.get(&iova.0) {
            None => Err(Error::InvalidArgument(format!(
                "unmap of {iova}: no mapping starts there"
            ))),
            Some(m) if m.len != len => Err(Error::InvalidArgument(format!(
                "unmap of {iova}: mapped {} bytes, asked {len}",
                m.len
            ))),
            Some(_) => {
                maps.remove(&iova.0);
                Ok(())
            }
        }
    }

    /// Number of live mappings.
    pub fn mappings(&self) -> usize {
        self.maps.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Drops every mapping (queue release).
    pub fn clear(&self) {
        self.maps.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl DmaAccess for Iommu {
    fn translate(&self, iova: u64, len: usize) -> std::result::Result<Region, DmaFault> {
        let fault = DmaFault { iova, len };
        let end = iova.checked_add(len as u64).ok_or(fault)?;
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        let (&start, m) = maps.range(..=iova).next_back().ok_or(fault)?;
        if end > start + m.len as u64 {
            return Err(fault);
        }
        m.region
            .slice((iova - start) as usize, len)
            .map_err(|_| fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translate_checks_whole_access() {
        let alloc = IovaAllocator::default();
        let mmu = Iommu::default();
        let a = Region::anonymous(8192).unwrap();
        let b = Region::anonymous(100).unwrap();
        let ia = mmu.map(&alloc, &a).unwrap();
        let ib = mmu.map(&alloc, &b).unwrap();
        assert!(ia.0 >= IOVA_BASE && ia.0 % page_size() as u64 == 0);
        assert!(ib.0 >= ia.0 + 8192 && ib.0 % page_size() as u64 == 0);
        assert_ne!(ia.0, a.as_ptr() as u64);

        mmu.write(ia.0 + 10, b"hello").unwrap();
        let mut out = [0u8; 5];
        a.read_bytes(10, &mut out);
        assert_eq!(&out, b"hello");
        mmu.read(ib.0 + 95, &mut out).unwrap();

        // Beyond the end, straddling, before the first mapping, overflow.
        assert!(mmu.read(ib.0 + 96, &mut out).is_err());
        assert!(mmu.translate(ia.0 + 8190, 4).is_err());
        assert!(mmu.translate(ia.0 - 1, 1).is_err());
        assert!(mmu.translate(u64::MAX - 1, 4).is_err());
        assert!(mmu.translate(0, 1).is_err());

        // Unmap must match exactly.
        assert!(mmu.unmap(ia, 4096).is_err());
        assert!(mmu.unmap(Iova(ia.0 + 4096), 4096).is_err());
        mmu.unmap(ia, 8192).unwrap();
        assert!(mmu.unmap(ia, 8192).is_err());
        assert!(mmu.translate(ia.0, 1).is_err());
        assert_eq!(mmu.mappings(), 1);
    }
}
