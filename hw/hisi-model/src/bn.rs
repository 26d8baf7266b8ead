//! libcrypto bignum calls the engines need that rust-openssl does not wrap.

use foreign_types::ForeignTypeRef;
use openssl::bn::{BigNumContextRef, BigNumRef};
use openssl::error::ErrorStack;

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
    ctx: &mut BigNumContextRef,
) -> Result<(), ErrorStack> {
    // SAFETY: every pointer is a live BIGNUM or BN_CTX borrowed for the call; the results
    // are distinct from the inputs; NULL Montgomery contexts are allowed (computed inside).
    let ok = unsafe {
        BN_mod_exp_mont_consttime_x2(
            r1.as_ptr(),
            a1.as_ptr(),
            p1.as_ptr(),
            m1.as_ptr(),
            std::ptr::null_mut(),
            r2.as_ptr(),
            a2.as_ptr(),
            p2.as_ptr(),
            m2.as_ptr(),
            std::ptr::null_mut(),
            ctx.as_ptr(),
        )
    };
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}
