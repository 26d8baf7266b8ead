//! libcrypto bignum calls the engines need that rust-openssl does not wrap.

use std::ptr::NonNull;

use foreign_types::ForeignTypeRef;
use openssl::bn::{BigNumContext, BigNumContextRef, BigNumRef};
use openssl::error::ErrorStack;

// Montgomery contexts (bn.h; not declared by openssl-sys).
extern "C" {
    fn BN_MONT_CTX_new() -> *mut libc::c_void;
    fn BN_MONT_CTX_set(
        mont: *mut libc::c_void,
        m: *const openssl_sys::BIGNUM,
        ctx: *mut openssl_sys::BN_CTX,
    ) -> libc::c_int;
    fn BN_MONT_CTX_free(mont: *mut libc::c_void);
}

/// A Montgomery context of an odd modulus, made once and reused for many exponentiations.
#[derive(Debug)]
pub struct MontCtx(NonNull<libc::c_void>);

impl MontCtx {
    /// The context of `m` (odd, non-zero: checked by the caller).
    pub fn new(m: &BigNumRef) -> Result<MontCtx, ErrorStack> {
        let ctx = BigNumContext::new()?;
        // SAFETY: plain constructor; NULL means allocation failure.
        let raw = NonNull::new(unsafe { BN_MONT_CTX_new() }).ok_or_else(ErrorStack::get)?;
        let mont = MontCtx(raw);
        // SAFETY: `mont` is a fresh context, `m` a live BIGNUM, `ctx` a live BN_CTX.
        if unsafe { BN_MONT_CTX_set(mont.0.as_ptr(), m.as_ptr(), ctx.as_ptr()) } != 1 {
            return Err(ErrorStack::get());
        }
        Ok(mont)
    }
}

impl Drop for MontCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context; it is freed once.
        unsafe { BN_MONT_CTX_free(self.0.as_ptr()) }
    }
}

// Public libcrypto API since OpenSSL 3.0 (bn.h), not declared by openssl-sys: two
// constant-time modular exponentiations at once, which libcrypto runs with AVX-512 IFMA
// where the CPU has it (as its own RSA does), else one after the other.
extern "C" {
    fn BN_mod_exp_mont_consttime_x2(
        rr1: *mut openssl_sys::BIGNUM,
        a1: *const openssl_sys::BIGNUM,
        p1: *const openssl_sys::BIGNUM,
        m1: *const openssl_sys::BIGNUM,
        in_mont1: *mut libc::c_void,
        rr2: *mut openssl_sys::BIGNUM,
        a2: *const openssl_sys::BIGNUM,
        p2: *const openssl_sys::BIGNUM,
        m2: *const openssl_sys::BIGNUM,
        in_mont2: *mut libc::c_void,
        ctx: *mut openssl_sys::BN_CTX,
    ) -> libc::c_int;
}

/// `r1 = a1^p1 mod m1` and `r2 = a2^p2 mod m2`, constant time, in one libcrypto call.
#[allow(clippy::too_many_arguments)]
pub fn mod_exp_x2(
    r1: &mut BigNumRef,
    a1: &BigNumRef,
    p1: &BigNumRef,
    m1: &BigNumRef,
    r2: &mut BigNumRef,
    a2: &BigNumRef,
    p2: &BigNumRef,
    m2: &BigNumRef,
    monts: Option<(&MontCtx, &MontCtx)>,
    ctx: &mut BigNumContextRef,
) -> Result<(), ErrorStack> {
    let (mont1, mont2) = match monts {
        Some((a, b)) => (a.0.as_ptr(), b.0.as_ptr()),
        None => (std::ptr::null_mut(), std::ptr::null_mut()),
    };
    // SAFETY: every pointer is a live BIGNUM or BN_CTX borrowed for the call; the results
    // are distinct from the inputs; the Montgomery contexts belong to m1 and m2 (the
    // caller's cache is keyed by the moduli) or are NULL (then computed inside).
    let ok = unsafe {
        BN_mod_exp_mont_consttime_x2(
            r1.as_ptr(),
            a1.as_ptr(),
            p1.as_ptr(),
            m1.as_ptr(),
            mont1,
            r2.as_ptr(),
            a2.as_ptr(),
            p2.as_ptr(),
            m2.as_ptr(),
            mont2,
            ctx.as_ptr(),
        )
    };
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}
