//! The output convention of sign, digest-sign-final, verify-recover, encrypt and decrypt:
//! the caller passes a buffer `out` of `outsize` bytes and a length `outlen`. `outlen` is
//! required; a NULL `out` asks only for the size (the modulus length); otherwise the result
//! is written into `out` if it fits and its length into `outlen`.
//!
//! [`OutBuf`] takes the caller's pointers once, at the C boundary; the operations answer
//! through it with safe code.

use std::ffi::{c_int, c_void, CStr};
use std::marker::PhantomData;
use std::ptr;

use crate::error::{entry, fail, Reason, Result};
use crate::ffi::bytes;

/// The caller's output buffer and length of one call.
pub struct OutBuf<'a> {
    out: *mut u8,
    cap: usize,
    outlen: &'a mut usize,
}

/// Where an operation writes its result: the caller's buffer of `cap` bytes.
pub struct Sink<'a> {
    out: *mut u8,
    cap: usize,
    _buf: PhantomData<&'a mut [u8]>,
}

impl<'a> OutBuf<'a> {
    /// Takes the caller's `out`, `outlen` and `outsize` (`cap`); a NULL `outlen` is a
    /// `MissingParameter` error saying `missing`.
    ///
    /// # Safety
    /// `outlen` is NULL or writable; `out` is NULL or writable for `cap` bytes; for `'a`
    /// neither is used by anyone else nor overlaps the other or the operation's inputs.
    pub unsafe fn new(
        out: *mut u8,
        outlen: *mut usize,
        cap: usize,
        missing: &str,
    ) -> Result<OutBuf<'a>> {
        // SAFETY: per the contract, `outlen` is NULL (then None) or writable and ours
        // alone for 'a.
        let Some(outlen) = (unsafe { outlen.as_mut() }) else {
            return fail(Reason::MissingParameter, missing);
        };
        Ok(OutBuf { out, cap, outlen })
    }

    /// Answers the call: with `size` when the caller asked only for the size, else with
    /// what `write` puts into the caller's buffer (it returns the length written). `c` is
    /// the operation's context, handed to whichever of the two runs.
    pub fn answer<C>(
        self,
        c: &mut C,
        size: impl FnOnce(&C) -> Result<usize>,
        write: impl FnOnce(&mut C, &mut Sink<'a>) -> Result<usize>,
    ) -> Result<()> {
        if self.out.is_null() {
            *self.outlen = size(c)?;
            return Ok(());
        }
        let mut sink = Sink {
            out: self.out,
            cap: self.cap,
            _buf: PhantomData,
        };
        *self.outlen = write(c, &mut sink)?;
        Ok(())
    }
}

/// The body of an entry point of the form `(ctx, out, outlen, outsize, in, inlen)` (sign,
/// verify-recover, encrypt, decrypt), behind the `entry` guard named `func`: borrows the
/// context with `borrow`, takes the caller's buffers (`missing` words a NULL `outlen`) and
/// lets `op` answer; 1 on success.
///
/// # Safety
/// `ctx` is what `borrow` accepts (NULL or a live context of its kind); `out`, `outlen` and
/// `outsize` are as [`OutBuf::new`] requires and `input` is NULL or readable for `inlen`
/// bytes, all for the call.
pub unsafe fn output_entry<'a, C: 'a>(
    func: &CStr,
    borrow: unsafe fn(*mut c_void) -> Result<&'a mut C>,
    ctx: *mut c_void,
    (out, outlen, outsize): (*mut u8, *mut usize, usize),
    (input, inlen): (*const u8, usize),
    missing: &str,
    op: impl FnOnce(&mut C, OutBuf<'a>, &'a [u8]) -> Result<()>,
) -> c_int {
    entry(func, 0, || {
        // SAFETY: per this function's contract: `ctx` is what `borrow` accepts, the output
        // pointers are what `OutBuf::new` needs and `input` is readable for `inlen` bytes.
        let (c, out, input) = unsafe {
            (
                borrow(ctx)?,
                OutBuf::new(out, outlen, outsize, missing)?,
                bytes(input, inlen),
            )
        };
        op(c, out, input).map(|_| 1)
    })
}

impl Sink<'_> {
    /// The buffer's size.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Copies `data` into the buffer if it fits (else `BufferTooSmall`); its length.
    pub fn put(&mut self, data: &[u8]) -> Result<usize> {
        if data.len() > self.cap {
            return fail(
                Reason::BufferTooSmall,
                format!("need {} bytes, buffer has {}", data.len(), self.cap),
            );
        }
        // SAFETY: `out` is writable for `cap` ≥ `data.len()` bytes and overlaps nothing
        // else (`OutBuf::new`'s contract); `data` is a distinct Rust slice.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.out, data.len()) };
        Ok(data.len())
    }

    /// The whole buffer, for a result written in place (by libcrypto, which decides how
    /// much of it to use). Its bytes before the write are whatever the caller left there.
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `out` is non-NULL (a `Sink` is made only for a non-NULL `out`), writable
        // for `cap` bytes and used by no one else for the sink's life (`OutBuf::new`).
        unsafe { std::slice::from_raw_parts_mut(self.out, self.cap) }
    }
}
