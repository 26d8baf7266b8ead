//! The static-share (SS) region of a no-SVA uacce queue (openEuler, docs/hardware-interface.md
//! §1.1, §3.8): memory the kernel allocates for DMA when the queue maps region index 2, its
//! device addresses read with GET_SS_DMA, slice by slice. Every DMA address a no-SVA queue
//! hands out is an address inside it; [`StaticShare`] carves the DMA pools' chunks out of it
//! and translates (only) its own memory.

#![forbid(unsafe_code)]

use std::sync::Mutex;

use crate::dma::Iova;
use crate::error::{Error, Result};
use crate::region::Region;
use crate::uacce::ioctl::{SsDmaAnswer, UACCE_GRAN_SIZE};

/// One physically contiguous piece of the region: `len` bytes at mapping offset `off`,
/// device address `dma`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsSlice {
    /// Offset in the mapping.
    pub off: usize,
    /// Bytes.
    pub len: usize,
    /// Device address of the first byte.
    pub dma: u64,
}

/// The slices of a region of `len` bytes from the GET_SS_DMA answers in index order, or
/// why they do not describe it.
pub fn slices_from_answers(len: usize, answers: &[SsDmaAnswer]) -> Result<Vec<SsSlice>> {
    let bad = |m: String| Error::Protocol(format!("static-share region: {m}"));
    match answers {
        [SsDmaAnswer::Whole { dma }] => {
            if dma % UACCE_GRAN_SIZE != 0 && dma % 4096 != 0 {
                return Err(bad(format!("device address {dma:#x} is not page-aligned")));
            }
            return Ok(vec![SsSlice {
                off: 0,
                len,
                dma: *dma,
            }]);
        }
        [] => return Err(bad("GET_SS_DMA gave no answer".into())),
        _ => {}
    }
    let mut out = Vec::with_capacity(answers.len());
    let mut off = 0usize;
    for (i, a) in answers.iter().enumerate() {
        let SsDmaAnswer::Slice { dma, len: l, left } = *a else {
            return Err(bad(format!("answer {i} mixes the two GET_SS_DMA formats")));
        };
        if left as usize != answers.len() - 1 - i {
            return Err(bad(format!(
                "slice {i} says {left} slices follow, {} were read",
                answers.len() - 1 - i
            )));
        }
        let l = usize::try_from(l).map_err(|_| bad(format!("slice {i} of {l} bytes")))?;
        out.push(SsSlice { off, len: l, dma });
        off = off
            .checked_add(l)
            .ok_or_else(|| bad("slice sizes overflow".into()))?;
    }
    if off != len {
        return Err(bad(format!(
            "slices cover {off:#x} bytes of a {len:#x}-byte mapping"
        )));
    }
    Ok(out)
}

/// A queue's static-share region: the mapping, its slices, and what of it is free.
#[derive(Debug)]
pub struct StaticShare {
    region: Region,
    slices: Vec<SsSlice>,
    /// Free ranges (offset, length) of the mapping, sorted by offset, never spanning two
    /// slices.
    free: Mutex<Vec<(usize, usize)>>,
}

impl StaticShare {
    /// The region `region` (the SS mapping) made of `slices`.
    pub fn new(region: Region, slices: Vec<SsSlice>) -> StaticShare {
        let free = slices.iter().map(|s| (s.off, s.len)).collect();
        StaticShare {
            region,
            slices,
            free: Mutex::new(free),
        }
    }

    /// The slices.
    pub fn slices(&self) -> &[SsSlice] {
        &self.slices
    }

    /// Bytes of the mapping.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Never true (the kernel refuses an empty mapping).
    pub fn is_empty(&self) -> bool {
        self.region.is_empty()
    }

    /// Bytes not handed out.
    pub fn free_bytes(&self) -> usize {
        self.lock().iter().map(|f| f.1).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(usize, usize)>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device address of `len` bytes at mapping offset `off`, if they lie in one slice.
    fn dma_at(&self, off: usize, len: usize) -> Option<Iova> {
        let s = self
            .slices
            .iter()
            .find(|s| s.off <= off && off < s.off + s.len)?;
        (off + len <= s.off + s.len).then(|| Iova(s.dma + (off - s.off) as u64))
    }

    /// `len` bytes (first fit, inside one slice) and their device address; `NoFreeQueue`
    /// (run in software) when the region has no such room.
    pub fn alloc(&self, len: usize) -> Result<(Region, Iova)> {
        if len == 0 {
            return Err(Error::InvalidArgument(
                "empty static-share allocation".into(),
            ));
        }
        let mut free = self.lock();
        let Some(i) = free.iter().position(|&(_, l)| l >= len) else {
            let largest = free.iter().map(|f| f.1).max().unwrap_or(0);
            return Err(Error::NoFreeQueue(format!(
                "static-share region full: {len:#x} bytes asked, largest free piece \
                 {largest:#x} of {:#x} (raise WD_SS_SIZE)",
                self.len()
            )));
        };
        let (off, l) = free[i];
        if l == len {
            free.remove(i);
        } else {
            free[i] = (off + len, l - len);
        }
        drop(free);
        let iova = self.dma_at(off, len).ok_or_else(|| {
            Error::Protocol(format!("static-share piece {off:#x}+{len:#x} spans slices"))
        })?;
        Ok((self.region.slice(off, len)?, iova))
    }

    /// Gives back memory from [`StaticShare::alloc`] (merged with free neighbours in the
    /// same slice).
    pub fn free(&self, mem: &Region, iova: Iova) -> Result<()> {
        let off = self.offset_of(mem).ok_or_else(|| {
            Error::InvalidArgument("freeing memory outside the static-share region".into())
        })?;
        if self.dma_at(off, mem.len()) != Some(iova) {
            return Err(Error::InvalidArgument(format!(
                "freeing {iova} with the memory of another static-share address"
            )));
        }
        let len = mem.len();
        let mut free = self.lock();
        if free.iter().any(|&(o, l)| off < o + l && o < off + len) {
            return Err(Error::InvalidArgument(format!(
                "static-share piece {off:#x}+{len:#x} freed twice"
            )));
        }
        let at = free.partition_point(|&(o, _)| o < off);
        free.insert(at, (off, len));
        let same_slice =
            |a: usize, b: usize| self.slices.iter().any(|s| s.off <= a && b < s.off + s.len);
        let mut i = 0;
        while i + 1 < free.len() {
            let (o, l) = free[i];
            let (o2, l2) = free[i + 1];
            if o + l == o2 && same_slice(o, o2) {
                free[i] = (o, l + l2);
                free.remove(i + 1);
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// The mapping offset of `mem` if it lies wholly inside the region.
    fn offset_of(&self, mem: &Region) -> Option<usize> {
        let base = self.region.as_ptr() as usize;
        let start = mem.as_ptr() as usize;
        let off = start.checked_sub(base)?;
        (off.checked_add(mem.len())? <= self.region.len()).then_some(off)
    }

    /// The device address of `mem`, which must lie inside one slice of the region: what
    /// `mem_share` gives on a no-SVA queue. Anything else is refused: without SVA or an
    /// IOMMU mapping the device cannot reach other memory.
    pub fn translate(&self, mem: &Region) -> Result<Iova> {
        let refuse = || {
            Error::Unsupported(format!(
                "no-SVA queue: memory at {:p}+{:#x} is not in the queue's static-share \
                 region; without SVA the device reaches only that region (use the queue's \
                 DMA pool, wd_reserve_memory in the C API)",
                mem.as_ptr(),
                mem.len()
            ))
        };
        let off = self.offset_of(mem).ok_or_else(refuse)?;
        self.dma_at(off, mem.len()).ok_or_else(refuse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(len: usize, answers: &[SsDmaAnswer]) -> StaticShare {
        let r = Region::anonymous(len).unwrap();
        StaticShare::new(r.clone(), slices_from_answers(len, answers).unwrap())
    }

    #[test]
    fn slices_and_whole_regions() {
        let m = 1 << 20;
        let a = [
            SsDmaAnswer::Slice {
                dma: 0x8000_0000,
                len: m,
                left: 1,
            },
            SsDmaAnswer::Slice {
                dma: 0x9000_0000,
                len: m,
                left: 0,
            },
        ];
        let s = slices_from_answers(2 << 20, &a).unwrap();
        assert_eq!(s[1].off, 1 << 20);
        assert!(slices_from_answers(3 << 20, &a).is_err(), "does not cover");
        assert!(
            slices_from_answers(2 << 20, &a[..1]).is_err(),
            "left mismatch"
        );
        assert!(slices_from_answers(m as usize, &[]).is_err());
        let w = slices_from_answers(m as usize, &[SsDmaAnswer::Whole { dma: 0x7000_0000 }]);
        assert_eq!(w.unwrap()[0].dma, 0x7000_0000);
    }

    #[test]
    fn alloc_stays_in_one_slice_and_translates() {
        let m = 1u64 << 20;
        let ss = share(
            2 << 20,
            &[
                SsDmaAnswer::Slice {
                    dma: 0x8000_0000,
                    len: m,
                    left: 1,
                },
                SsDmaAnswer::Slice {
                    dma: 0x9000_0000,
                    len: m,
                    left: 0,
                },
            ],
        );
        let (a, ia) = ss.alloc(0xc0000).unwrap();
        assert_eq!(ia, Iova(0x8000_0000));
        // Does not fit the rest of slice 0: goes to slice 1, never across.
        let (b, ib) = ss.alloc(0x80000).unwrap();
        assert_eq!(ib, Iova(0x9000_0000));
        assert!(ss.alloc(m as usize + 4096).is_err());
        assert_eq!(
            ss.translate(&a.slice(0x1000, 64).unwrap()).unwrap(),
            Iova(0x8000_1000)
        );
        let other = Region::anonymous(4096).unwrap();
        let e = ss.translate(&other).unwrap_err().to_string();
        assert!(e.contains("static-share"), "{e}");
        assert!(ss.free(&other, Iova(0x8000_0000)).is_err());
        assert!(ss.free(&a, ib).is_err(), "wrong address for the memory");
        ss.free(&a, ia).unwrap();
        assert!(ss.free(&a, ia).is_err(), "double free");
        ss.free(&b, ib).unwrap();
        assert_eq!(ss.free_bytes(), 2 << 20);
        // Merged back: a whole slice fits again.
        let (_, i) = ss.alloc(m as usize).unwrap();
        assert_eq!(i, Iova(0x8000_0000));
    }
}
