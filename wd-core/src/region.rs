//! `Region`: memory mapped from a device or shared with one, with volatile, width-exact,
//! bounds-checked accessors.
//!
//! A region keeps its backing mapping alive through a reference-counted owner, so clones are
//! cheap and the memory is unmapped only when the last clone goes. An MMIO region may carry a
//! [`MmioHook`]: the device model uses it to see doorbell stores the way hardware sees a
//! register write. Real MMIO regions have none.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Observes 64-bit stores into an MMIO region (a doorbell ring), after the store is done.
pub trait MmioHook: Send + Sync {
    /// Called after `value` was stored at byte `offset` of the region.
    fn on_write_u64(&self, offset: usize, value: u64);
    /// Called after a 128-bit store ([`Region::write_u128`]: the QM mailbox) of `lo` at
    /// `offset` and `hi` at `offset + 8`, seen as the one write it is on the bus.
    fn on_write_u128(&self, _offset: usize, _lo: u64, _hi: u64) {}
}

/// Mapped memory with a fixed base and length.
#[derive(Clone)]
pub struct Region {
    base: NonNull<u8>,
    len: usize,
    _owner: Arc<dyn Send + Sync>,
    hook: Option<Arc<dyn MmioHook>>,
}

// SAFETY: a Region is a view of process-wide mapped memory kept alive by `_owner`; all
// accesses are volatile reads/writes of plain bytes, which any thread may do.
unsafe impl Send for Region {}
// SAFETY: as above; no method hands out references into the memory.
unsafe impl Sync for Region {}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("base", &self.base)
            .field("len", &self.len)
            .field("hooked", &self.hook.is_some())
            .finish()
    }
}

struct AnonMap(#[allow(dead_code)] memmap2::MmapMut);

impl Region {
    /// Wraps mapped memory.
    ///
    /// # Safety
    /// `base..base+len` must be mapped readable and writable for as long as `owner` lives,
    /// and nothing may unmap it while `owner` is alive.
    pub unsafe fn from_raw(base: NonNull<u8>, len: usize, owner: Arc<dyn Send + Sync>) -> Self {
        Region {
            base,
            len,
            _owner: owner,
            hook: None,
        }
    }

    /// Anonymous zeroed memory of `len` bytes, page-aligned, pre-faulted (every page touched
    /// once so the first device access costs no page fault).
    pub fn anonymous(len: usize) -> Result<Self> {
        if len == 0 {
            return Err(Error::InvalidArgument("zero-length region".into()));
        }
        let mut map = memmap2::MmapOptions::new()
            .len(len)
            .map_anon()
            .map_err(|e| Error::io("mmap anonymous region", e))?;
        let page = page_size();
        for off in (0..len).step_by(page) {
            map[off] = 0;
        }
        let base = NonNull::new(map.as_mut_ptr()).expect("mmap returned null");
        // SAFETY: the mapping is owned by the AnonMap kept in `owner` and lives as long.
        Ok(unsafe { Self::from_raw(base, len, Arc::new(AnonMap(map))) })
    }

    /// The same memory, with stores of 64 bits reported to `hook`.
    pub fn with_hook(mut self, hook: Arc<dyn MmioHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the region has no bytes (never, for a constructed region).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Host address of the first byte (for DMA registration and SVA addresses).
    pub fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// A sub-region `offset..offset+len` sharing the same owner (no hook).
    pub fn slice(&self, offset: usize, len: usize) -> Result<Region> {
        self.check(offset, len, 1)?;
        Ok(Region {
            // SAFETY: checked above that offset+len is within the mapping.
            base: unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) },
            len,
            _owner: self._owner.clone(),
            hook: None,
        })
    }

    #[inline(always)]
    fn check(&self, offset: usize, width: usize, align: usize) -> Result<()> {
        let end = offset
            .checked_add(width)
            .ok_or_else(|| Error::InvalidArgument("region offset overflow".into()))?;
        if end > self.len {
            return Err(Error::InvalidArgument(format!(
                "region access {offset:#x}+{width} beyond length {:#x}",
                self.len
            )));
        }
        if !(self.base.as_ptr() as usize + offset).is_multiple_of(align) {
            return Err(Error::InvalidArgument(format!(
                "unaligned {width}-byte region access at {offset:#x}"
            )));
        }
        Ok(())
    }

    #[inline(always)]
    fn at<T>(&self, offset: usize) -> *mut T {
        let w = std::mem::size_of::<T>();
        if let Err(e) = self.check(offset, w, w) {
            panic!("{e}");
        }
        // SAFETY: bounds and alignment checked above.
        unsafe { self.base.as_ptr().add(offset).cast::<T>() }
    }

    /// One volatile 16-bit load. Panics if out of bounds or unaligned (a driver bug).
    #[inline(always)]
    pub fn read_u16(&self, offset: usize) -> u16 {
        // SAFETY: `at` checked bounds and alignment; the memory is mapped while self lives.
        u16::from_le(unsafe { self.at::<u16>(offset).read_volatile() })
    }

    /// One volatile 32-bit load.
    #[inline(always)]
    pub fn read_u32(&self, offset: usize) -> u32 {
        // SAFETY: as in read_u16.
        u32::from_le(unsafe { self.at::<u32>(offset).read_volatile() })
    }

    /// One volatile 64-bit load.
    #[inline(always)]
    pub fn read_u64(&self, offset: usize) -> u64 {
        // SAFETY: as in read_u16.
        u64::from_le(unsafe { self.at::<u64>(offset).read_volatile() })
    }

    /// One volatile 16-bit store.
    #[inline(always)]
    pub fn write_u16(&self, offset: usize, v: u16) {
        // SAFETY: as in read_u16; the mapping is writable.
        unsafe { self.at::<u16>(offset).write_volatile(v.to_le()) }
    }

    /// One volatile 32-bit store.
    #[inline(always)]
    pub fn write_u32(&self, offset: usize, v: u32) {
        // SAFETY: as in write_u16.
        unsafe { self.at::<u32>(offset).write_volatile(v.to_le()) }
    }

    /// One volatile 64-bit store: the doorbell write. Reported to the hook, if any.
    #[inline(always)]
    pub fn write_u64(&self, offset: usize, v: u64) {
        // SAFETY: as in write_u16.
        unsafe { self.at::<u64>(offset).write_volatile(v.to_le()) }
        if let Some(h) = &self.hook {
            h.on_write_u64(offset, v);
        }
    }

    /// One 128-bit store: `lo` at `offset`, `hi` at `offset + 8`, as a single bus write
    /// (a register that acts on a whole 128-bit value, like the QM mailbox, must not see
    /// two halves). On arm64 one `stp` of two 64-bit registers followed by `dmb oshst`, the
    /// instruction pair Linux's `qm_mb_write` uses; a hooked region (the device model) gets
    /// the two halves stored and then one [`MmioHook::on_write_u128`]. Elsewhere an
    /// unhooked region is refused: wd knows no single 128-bit store to rely on there.
    pub fn write_u128(&self, offset: usize, lo: u64, hi: u64) -> Result<()> {
        self.check(offset, 16, 16)?;
        if let Some(h) = &self.hook {
            // SAFETY: bounds and 16-byte alignment checked above; the memory is mapped
            // writable while self lives.
            unsafe {
                self.at::<u64>(offset).write_volatile(lo.to_le());
                self.at::<u64>(offset + 8).write_volatile(hi.to_le());
            }
            h.on_write_u128(offset, lo, hi);
            return Ok(());
        }
        #[cfg(target_arch = "aarch64")]
        {
            // SAFETY: `offset..offset+16` is inside the mapping (checked) and 16-byte
            // aligned; the asm stores exactly those 16 bytes and orders them before later
            // device accesses, touching no other memory or register state.
            unsafe {
                let p = self.base.as_ptr().add(offset);
                std::arch::asm!(
                    "stp {lo}, {hi}, [{p}]",
                    "dmb oshst",
                    lo = in(reg) lo.to_le(),
                    hi = in(reg) hi.to_le(),
                    p = in(reg) p,
                    options(nostack, preserves_flags)
                );
            }
            Ok(())
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            Err(Error::Unsupported(
                "a 128-bit MMIO store (the QM mailbox) needs arm64's stp; this build's \
                 architecture has no single 128-bit store wd relies on"
                    .into(),
            ))
        }
    }

    /// Copies bytes out of the region: bulk data (DMA buffers), not registers. The copy is
    /// a plain `memcpy`; ordering against the device comes from the ring's barriers.
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        if let Err(e) = self.check(offset, out.len(), 1) {
            panic!("{e}");
        }
        // SAFETY: bounds checked; the source is mapped memory that no Rust reference
        // aliases, and `out` is a distinct caller buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                out.as_mut_ptr(),
                out.len(),
            );
        }
    }

    /// Appends `len` bytes from `offset` to `out` (bulk data), writing each byte of `out`
    /// once: no zero-fill before the copy.
    pub fn append_to(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        if let Err(e) = self.check(offset, len, 1) {
            panic!("{e}");
        }
        out.reserve(len);
        // SAFETY: bounds checked; `reserve` made room for `len` more bytes after
        // `out.len()`, which the copy initialises before `set_len` exposes them; the source
        // is mapped memory distinct from `out`'s heap buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                out.as_mut_ptr().add(out.len()),
                len,
            );
            out.set_len(out.len() + len);
        }
    }

    /// Copies bytes into the region (bulk data; see [`Region::read_bytes`]).
    pub fn write_bytes(&self, offset: usize, data: &[u8]) {
        if let Err(e) = self.check(offset, data.len(), 1) {
            panic!("{e}");
        }
        // SAFETY: bounds checked; the destination is mapped writable memory no Rust
        // reference aliases, and `data` is a distinct caller buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.base.as_ptr().add(offset),
                data.len(),
            );
        }
    }

    /// Fills `offset..offset+len` with `byte` using volatile stores the compiler cannot
    /// elide (used to wipe key material); 64-bit stores where aligned.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) {
        if let Err(e) = self.check(offset, len, 1) {
            panic!("{e}");
        }
        let word = u64::from_ne_bytes([byte; 8]);
        // SAFETY: bounds checked; volatile stores to mapped writable memory, each within
        // `offset..offset+len`; the u64 stores are at 8-byte aligned addresses.
        unsafe {
            let mut p = self.base.as_ptr().add(offset);
            let end = p.add(len);
            while p < end && !(p as usize).is_multiple_of(8) {
                p.write_volatile(byte);
                p = p.add(1);
            }
            while (end as usize) - (p as usize) >= 8 {
                p.cast::<u64>().write_volatile(word);
                p = p.add(8);
            }
            while p < end {
                p.write_volatile(byte);
                p = p.add(1);
            }
        }
    }

    /// Copies 32-bit words out of an aligned descriptor slot (SQE read-back).
    pub fn read_words(&self, offset: usize, out: &mut [u32]) {
        for (i, w) in out.iter_mut().enumerate() {
            *w = self.read_u32(offset + 4 * i);
        }
    }

    /// Copies 32-bit words into an aligned descriptor slot (SQE write).
    pub fn write_words(&self, offset: usize, words: &[u32]) {
        for (i, w) in words.iter().enumerate() {
            self.write_u32(offset + 4 * i, *w);
        }
    }
}

/// The kernel's page size, from `sysconf(_SC_PAGESIZE)`; never assumed to be 4096.
pub fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v > 0 {
            v as usize
        } else {
            4096
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn accessors_are_little_endian_and_width_exact() {
        let r = Region::anonymous(4096).unwrap();
        r.write_u64(8, 0x1122_3344_5566_7788);
        let mut b = [0u8; 8];
        r.read_bytes(8, &mut b);
        assert_eq!(b, [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(r.read_u32(8), 0x5566_7788);
        assert_eq!(r.read_u16(14), 0x1122);
    }

    #[test]
    #[should_panic(expected = "beyond length")]
    fn out_of_bounds_panics() {
        let r = Region::anonymous(4096).unwrap();
        r.read_u32(4094);
    }

    #[test]
    fn append_to_extends_a_vector_with_region_bytes() {
        let r = Region::anonymous(4096).unwrap();
        r.write_bytes(100, b"hello");
        let mut v = b"say ".to_vec();
        r.append_to(100, 5, &mut v);
        assert_eq!(v, b"say hello");
        r.append_to(0, 0, &mut v);
        assert_eq!(v.len(), 9);
    }

    #[test]
    fn fill_wipes_exactly_the_range() {
        let r = Region::anonymous(4096).unwrap();
        r.fill(0, 4096, 0xaa);
        r.fill(3, 29, 0);
        let mut b = [0u8; 40];
        r.read_bytes(0, &mut b);
        assert_eq!(&b[..3], &[0xaa; 3]);
        assert!(b[3..32].iter().all(|&x| x == 0));
        assert_eq!(&b[32..], &[0xaa; 8]);
    }

    #[test]
    fn slice_is_checked() {
        let r = Region::anonymous(8192).unwrap();
        assert!(r.slice(4096, 4097).is_err());
        let s = r.slice(4096, 4096).unwrap();
        s.write_u32(0, 7);
        assert_eq!(r.read_u32(4096), 7);
    }

    #[test]
    fn hook_sees_64_bit_stores_only() {
        struct H(AtomicU64);
        impl MmioHook for H {
            fn on_write_u64(&self, offset: usize, value: u64) {
                self.0.store(value ^ offset as u64, Ordering::SeqCst);
            }
        }
        let h = Arc::new(H(AtomicU64::new(0)));
        let r = Region::anonymous(4096).unwrap().with_hook(h.clone());
        r.write_u32(0x1000 % 4096, 5);
        assert_eq!(h.0.load(Ordering::SeqCst), 0);
        r.write_u64(0x100, 0xabc);
        assert_eq!(h.0.load(Ordering::SeqCst), 0xabc ^ 0x100);
    }
}
