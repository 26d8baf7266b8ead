//! The caller's output buffer (`next_out`, `avail_out`) as a bounds-checked writer. The
//! memory may be uninitialised, so it is never seen as a `&mut [u8]`: bytes are copied in.

/// A window of caller memory that receives output.
#[derive(Debug)]
pub struct OutBuf {
    ptr: *mut u8,
    len: usize,
    pos: usize,
}

impl OutBuf {
    /// # Safety
    /// `ptr` is valid for writes of `len` bytes (it may be null only when `len` is 0) for
    /// as long as the `OutBuf` lives, and nothing else accesses that memory meanwhile.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> OutBuf {
        OutBuf { ptr, len, pos: 0 }
    }

    /// Room left.
    pub fn room(&self) -> usize {
        self.len - self.pos
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.pos
    }

    /// Copies as much of `b` as fits; returns how much.
    pub fn write(&mut self, b: &[u8]) -> usize {
        let n = b.len().min(self.room());
        if n > 0 {
            // SAFETY: `pos + n <= len`, so the destination lies inside the window the
            // constructor's contract makes writable; `b` is a distinct Rust slice.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.ptr.add(self.pos), n) };
            self.pos += n;
        }
        n
    }

    /// The unwritten tail, for an engine that writes through a pointer (zlib-rs); report
    /// what it wrote with [`OutBuf::advance`].
    pub fn tail(&mut self) -> (*mut u8, usize) {
        if self.ptr.is_null() {
            return (self.ptr, 0);
        }
        // SAFETY: `pos <= len`: the result points inside (or one past) the window.
        (unsafe { self.ptr.add(self.pos) }, self.room())
    }

    /// Marks `n` more bytes of the tail as written.
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.room(), "engine wrote past the output window");
        self.pos += n;
    }
}
