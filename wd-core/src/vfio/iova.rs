//! An IOVA allocator for a VFIO container: page-aligned ranges from a window, an unmapped
//! guard page after each, first fit, freed ranges coalesced.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use crate::dma::Iova;
use crate::error::{Error, Result};

/// Hands out device address ranges in `[base, limit)`.
#[derive(Debug)]
pub struct IovaAllocator {
    page: u64,
    /// Free ranges: start → end (exclusive), disjoint and not adjacent.
    free: BTreeMap<u64, u64>,
    /// Allocated ranges (including their guard page): start → end.
    used: BTreeMap<u64, u64>,
}

impl IovaAllocator {
    /// A window `[base, limit)` of `page`-byte pages (`base` and `limit` page-aligned).
    pub fn new(base: u64, limit: u64, page: u64) -> Result<IovaAllocator> {
        if page == 0
            || !page.is_power_of_two()
            || !base.is_multiple_of(page)
            || !limit.is_multiple_of(page)
        {
            return Err(Error::InvalidArgument(format!(
                "IOVA window {base:#x}..{limit:#x} with {page}-byte pages"
            )));
        }
        if base == 0 || limit <= base {
            return Err(Error::InvalidArgument(format!(
                "IOVA window {base:#x}..{limit:#x}: empty or starting at 0"
            )));
        }
        let mut free = BTreeMap::new();
        free.insert(base, limit);
        Ok(IovaAllocator {
            page,
            free,
            used: BTreeMap::new(),
        })
    }

    fn span(&self, len: usize) -> Result<u64> {
        if len == 0 {
            return Err(Error::InvalidArgument("IOVA range of 0 bytes".into()));
        }
        (len as u64)
            .checked_next_multiple_of(self.page)
            .and_then(|l| l.checked_add(self.page))
            .ok_or_else(|| Error::InvalidArgument(format!("IOVA range of {len} bytes")))
    }

    /// A range of at least `len` bytes (page-aligned start).
    pub fn alloc(&mut self, len: usize) -> Result<Iova> {
        let span = self.span(len)?;
        let (&start, &end) = self
            .free
            .iter()
            .find(|(s, e)| *e - *s >= span)
            .ok_or_else(|| Error::NoFreeQueue(format!("IOVA space exhausted ({len} bytes)")))?;
        self.free.remove(&start);
        if start + span < end {
            self.free.insert(start + span, end);
        }
        self.used.insert(start, start + span);
        Ok(Iova(start))
    }

    /// Returns the range at `iova`, allocated for `len` bytes.
    pub fn free(&mut self, iova: Iova, len: usize) -> Result<()> {
        let span = self.span(len)?;
        match self.used.get(&iova.0) {
            Some(&end) if end - iova.0 == span => {}
            Some(_) => {
                return Err(Error::InvalidArgument(format!(
                    "IOVA {iova}: freed with another length ({len})"
                )))
            }
            None => {
                return Err(Error::InvalidArgument(format!(
                    "IOVA {iova}: not allocated"
                )))
            }
        }
        self.used.remove(&iova.0);
        let (mut start, mut end) = (iova.0, iova.0 + span);
        if let Some((&ps, &pe)) = self.free.range(..start).next_back() {
            if pe == start {
                self.free.remove(&ps);
                start = ps;
            }
        }
        if let Some(ne) = self.free.remove(&end) {
            end = ne;
        }
        self.free.insert(start, end);
        Ok(())
    }

    /// Ranges allocated now.
    pub fn allocated(&self) -> usize {
        self.used.len()
    }

    /// Free bytes left.
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(|(s, e)| e - s).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x1_0000_0000;

    #[test]
    fn aligned_guarded_first_fit() {
        let mut a = IovaAllocator::new(BASE, BASE + 0x10_0000, 4096).unwrap();
        let x = a.alloc(1).unwrap();
        let y = a.alloc(8192).unwrap();
        let z = a.alloc(4097).unwrap();
        assert_eq!(x.0, BASE);
        assert_eq!(y.0, BASE + 0x2000, "one guard page after x");
        assert_eq!(z.0, BASE + 0x5000);
        assert!([x, y, z].iter().all(|i| i.0.is_multiple_of(4096)));
        // First fit reuses a hole of the right size.
        a.free(y, 8192).unwrap();
        assert_eq!(a.alloc(100).unwrap().0, BASE + 0x2000);
        assert_eq!(
            a.alloc(100).unwrap().0,
            BASE + 0x8000,
            "hole of 1 page left too small"
        );
    }

    #[test]
    fn frees_coalesce_back_to_one_range() {
        let mut a = IovaAllocator::new(BASE, BASE + 0x40_0000, 65536).unwrap();
        let total = a.free_bytes();
        let v: Vec<(Iova, usize)> = (1..20)
            .map(|i| (a.alloc(i * 5000).unwrap(), i * 5000))
            .collect();
        assert_eq!(a.allocated(), 19);
        for (i, (iova, len)) in v.iter().enumerate() {
            if i % 2 == 0 {
                a.free(*iova, *len).unwrap();
            }
        }
        for (i, (iova, len)) in v.iter().enumerate() {
            if i % 2 == 1 {
                a.free(*iova, *len).unwrap();
            }
        }
        assert_eq!(a.allocated(), 0);
        assert_eq!(a.free_bytes(), total);
        assert_eq!(a.free.len(), 1, "coalesced");
    }

    #[test]
    fn misuse_is_refused() {
        assert!(IovaAllocator::new(0, 0x1000, 4096).is_err());
        assert!(IovaAllocator::new(BASE + 1, BASE + 0x2000, 4096).is_err());
        assert!(IovaAllocator::new(BASE, BASE, 4096).is_err());
        assert!(IovaAllocator::new(BASE, BASE + 0x3000, 3000).is_err());
        let mut a = IovaAllocator::new(BASE, BASE + 0x4000, 4096).unwrap();
        assert!(a.alloc(0).is_err());
        let x = a.alloc(4096).unwrap();
        assert!(a.free(x, 8192).is_err(), "wrong length");
        assert!(a.free(Iova(x.0 + 4096), 4096).is_err(), "not a range start");
        a.free(x, 4096).unwrap();
        assert!(a.free(x, 4096).is_err(), "double free");
        assert!(
            matches!(a.alloc(0x4000), Err(Error::NoFreeQueue(_))),
            "with guard > window"
        );
        assert!(a.alloc(usize::MAX).is_err());
    }
}
