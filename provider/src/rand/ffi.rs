//! The C side of the random generator: the entry points the core calls, each behind the
//! `entry` panic guard, handing the call and the caller's buffers and parameters to the
//! inner generator unchanged; and the dispatch table.

// The operation's C side: raw pointers in, safe values out (mod.rs denies unsafe code).
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uchar, c_uint, c_void, CStr};
use std::ptr;

use foreign_types::ForeignTypeRef;

use super::{seed_len, Drbg};
use crate::ctx::ProvCtx;
use crate::error::{entry, entry_void, fail, Reason, Result};
use crate::ffi::{self, dispatch, END, EVP_RAND_CTX, OSSL_DISPATCH, OSSL_PARAM};

/// Borrows the generator behind a context pointer of ours.
///
/// # Safety
/// `p` is NULL or a pointer `newctx` returned and `freectx` has not yet freed.
unsafe fn drbg<'a>(p: *mut c_void) -> Result<&'a Drbg> {
    if p.is_null() {
        return fail(Reason::Internal, "NULL random generator context");
    }
    // SAFETY: non-NULL, so per the contract a live, aligned `Drbg` from `Box::into_raw`;
    // only borrowed shared (concurrent calls are the core's to lock, see `lock`).
    Ok(unsafe { &*(p as *const Drbg) })
}

/// `1` for a libcrypto success, else the error libcrypto put on the queue, with context.
fn checked(r: c_int, what: &str) -> Result<c_int> {
    crate::ossl::check(r, what).map(|()| 1)
}

/// The body of an entry point that hands the call to the inner generator: `call` gets it
/// and returns libcrypto's answer, which becomes ours (`what` names it in an error).
///
/// # Safety
/// `ctx` is NULL or a context `newctx` made and `freectx` has not freed.
unsafe fn forward(
    func: &CStr,
    ctx: *mut c_void,
    what: &str,
    call: impl FnOnce(*mut EVP_RAND_CTX) -> c_int,
) -> c_int {
    entry(func, 0, || {
        // SAFETY: `ctx` is NULL or a live generator of ours (this function's contract), as
        // `drbg` requires.
        let d = unsafe { drbg(ctx) }?;
        checked(call(d.inner.as_ptr()), what)
    })
}

type P = *mut c_void;
type CU = *const c_uchar;
type PP = *const OSSL_PARAM;

unsafe extern "C" fn newctx(provctx: P, _parent: P, _parent_calls: *const OSSL_DISPATCH) -> P {
    entry(c"wd_rand_newctx", ptr::null_mut(), || {
        // SAFETY: the core passes the provctx our init returned, alive while it calls us.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        Ok(Box::into_raw(Box::new(Drbg::new(prov)?)) as P)
    })
}

unsafe extern "C" fn freectx(ctx: P) {
    entry_void(c"wd_rand_freectx", || {
        if !ctx.is_null() {
            // SAFETY: a generator made by newctx with Box::into_raw; the core frees each once
            // and uses it no more.
            drop(unsafe { Box::from_raw(ctx as *mut Drbg) });
        }
    })
}

unsafe extern "C" fn instantiate(
    ctx: P,
    strength: c_uint,
    prediction_resistance: c_int,
    pstr: CU,
    pstr_len: usize,
    params: PP,
) -> c_int {
    // SAFETY: ctx comes from newctx (the core's contract); the buffers and
    // parameters are the caller's, passed on as they came.
    unsafe {
        forward(
            c"wd_rand_instantiate",
            ctx,
            "EVP_RAND_instantiate",
            |inner| {
                ffi::EVP_RAND_instantiate(
                    inner,
                    strength,
                    prediction_resistance,
                    pstr,
                    pstr_len,
                    params,
                )
            },
        )
    }
}

unsafe extern "C" fn uninstantiate(ctx: P) -> c_int {
    // SAFETY: ctx comes from newctx (the core's contract); nothing else is passed.
    unsafe {
        forward(
            c"wd_rand_uninstantiate",
            ctx,
            "EVP_RAND_uninstantiate",
            |inner| ffi::EVP_RAND_uninstantiate(inner),
        )
    }
}

unsafe extern "C" fn generate(
    ctx: P,
    out: *mut c_uchar,
    outlen: usize,
    strength: c_uint,
    prediction_resistance: c_int,
    addin: CU,
    addin_len: usize,
) -> c_int {
    entry(c"wd_rand_generate", 0, || {
        if out.is_null() && outlen != 0 {
            return fail(Reason::InvalidParameter, "NULL output buffer");
        }
        // SAFETY: the core passes NULL or one of our live generators; `out` is writable for
        // `outlen` bytes (checked non-NULL when `outlen` > 0) and `addin` readable for
        // `addin_len`, per the caller.
        unsafe {
            let d = drbg(ctx)?;
            checked(
                ffi::EVP_RAND_generate(
                    d.inner.as_ptr(),
                    out,
                    outlen,
                    strength,
                    prediction_resistance,
                    addin,
                    addin_len,
                ),
                "EVP_RAND_generate",
            )
        }
    })
}

unsafe extern "C" fn reseed(
    ctx: P,
    prediction_resistance: c_int,
    ent: CU,
    ent_len: usize,
    addin: CU,
    addin_len: usize,
) -> c_int {
    // SAFETY: ctx comes from newctx (the core's contract); the buffers are the
    // caller's, passed on as they came.
    unsafe {
        forward(c"wd_rand_reseed", ctx, "EVP_RAND_reseed", |inner| {
            ffi::EVP_RAND_reseed(inner, prediction_resistance, ent, ent_len, addin, addin_len)
        })
    }
}

unsafe extern "C" fn enable_locking(ctx: P) -> c_int {
    // SAFETY: ctx comes from newctx (the core's contract); our own lock always
    // exists; the inner generator gets one too, for the calls made on it without ours.
    unsafe {
        forward(
            c"wd_rand_enable_locking",
            ctx,
            "EVP_RAND_enable_locking",
            |inner| ffi::EVP_RAND_enable_locking(inner),
        )
    }
}

unsafe extern "C" fn lock(ctx: P) -> c_int {
    entry(c"wd_rand_lock", 0, || {
        // SAFETY: the core passes NULL or one of our live generators.
        unsafe { drbg(ctx) }?.lock.lock();
        Ok(1)
    })
}

unsafe extern "C" fn unlock(ctx: P) {
    entry_void(c"wd_rand_unlock", || {
        // SAFETY: the core passes NULL or one of our live generators.
        if let Ok(d) = unsafe { drbg(ctx) } {
            d.lock.unlock();
        }
    })
}

unsafe extern "C" fn gettable_ctx_params(_ctx: P, provctx: P) -> PP {
    entry(c"wd_rand_gettable_ctx_params", ptr::null(), || {
        // SAFETY: the core passes the provctx our init returned, alive while it calls us.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        // The table is static in the default provider, which stays loaded with the child.
        Ok(prov.software()?.drbg()?.gettable_ctx_params())
    })
}

unsafe extern "C" fn settable_ctx_params(_ctx: P, provctx: P) -> PP {
    entry(c"wd_rand_settable_ctx_params", ptr::null(), || {
        // SAFETY: the core passes the provctx our init returned, alive while it calls us.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        Ok(prov.software()?.drbg()?.settable_ctx_params())
    })
}

unsafe extern "C" fn get_ctx_params(ctx: P, params: *mut OSSL_PARAM) -> c_int {
    // SAFETY: ctx comes from newctx (the core's contract); params is the
    // caller's terminated array.
    unsafe {
        forward(
            c"wd_rand_get_ctx_params",
            ctx,
            "EVP_RAND_CTX_get_params",
            |inner| ffi::EVP_RAND_CTX_get_params(inner, params),
        )
    }
}

unsafe extern "C" fn set_ctx_params(ctx: P, params: PP) -> c_int {
    // SAFETY: ctx comes from newctx (the core's contract); params is the
    // caller's terminated array (or NULL).
    unsafe {
        forward(
            c"wd_rand_set_ctx_params",
            ctx,
            "EVP_RAND_CTX_set_params",
            |inner| ffi::EVP_RAND_CTX_set_params(inner, params),
        )
    }
}

unsafe extern "C" fn verify_zeroization(ctx: P) -> c_int {
    entry(c"wd_rand_verify_zeroization", 0, || {
        // SAFETY: the core passes NULL or one of our live generators, whose inner context
        // is valid while it is.
        Ok(unsafe { ffi::EVP_RAND_verify_zeroization(drbg(ctx)?.inner.as_ptr()) })
    })
}

/// Seed material for a child generator whose parent is ours: at least `entropy` bits'
/// worth of output, `min_len..=max_len` bytes, drawn with prediction resistance when asked.
unsafe extern "C" fn get_seed(
    ctx: P,
    pout: *mut *mut c_uchar,
    entropy: c_int,
    min_len: usize,
    max_len: usize,
    prediction_resistance: c_int,
    adin: CU,
    adin_len: usize,
) -> usize {
    entry(c"wd_rand_get_seed", 0, || {
        if pout.is_null() {
            return fail(Reason::InvalidParameter, "NULL seed pointer");
        }
        let len = seed_len(entropy, min_len, max_len)?;
        // SAFETY: the core passes NULL or one of our live generators and a writable `pout`
        // (checked non-NULL); `buf` is freshly allocated for `len` bytes, written by the
        // generator within them, and either freed here or handed to the caller, who returns
        // it through clear_seed; `adin` is readable for `adin_len`, per the caller.
        unsafe {
            let d = drbg(ctx)?;
            let buf = openssl_sys::CRYPTO_malloc(len, c"rand/ffi.rs".as_ptr(), line!() as c_int)
                as *mut c_uchar;
            if buf.is_null() {
                return fail(Reason::Internal, "out of memory for a seed");
            }
            let inner = d.inner.as_ptr();
            let r =
                ffi::EVP_RAND_generate(inner, buf, len, 0, prediction_resistance, adin, adin_len);
            if r != 1 {
                ffi::OPENSSL_cleanse(buf.cast(), len);
                ffi::CRYPTO_free(buf.cast(), c"rand/ffi.rs".as_ptr(), line!() as c_int);
                checked(r, "EVP_RAND_generate (seed)")?;
            }
            *pout = buf;
        }
        Ok(len)
    })
}

unsafe extern "C" fn clear_seed(_ctx: P, out: *mut c_uchar, outlen: usize) {
    entry_void(c"wd_rand_clear_seed", || {
        if out.is_null() {
            return;
        }
        // SAFETY: non-NULL, so the buffer of `outlen` bytes get_seed allocated with
        // CRYPTO_malloc and handed out (the core returns each seed here once).
        unsafe {
            ffi::OPENSSL_cleanse(out.cast(), outlen);
            ffi::CRYPTO_free(out.cast(), c"rand/ffi.rs".as_ptr(), line!() as c_int);
        }
    })
}

/// The random generator dispatch table.
pub static DISPATCH: [OSSL_DISPATCH; 17] = [
    dispatch!(
        ffi::OSSL_FUNC_RAND_NEWCTX,
        newctx,
        unsafe extern "C" fn(P, P, *const OSSL_DISPATCH) -> P
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_FREECTX,
        freectx,
        unsafe extern "C" fn(P)
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_INSTANTIATE,
        instantiate,
        unsafe extern "C" fn(P, c_uint, c_int, CU, usize, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_UNINSTANTIATE,
        uninstantiate,
        unsafe extern "C" fn(P) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_GENERATE,
        generate,
        unsafe extern "C" fn(P, *mut c_uchar, usize, c_uint, c_int, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_RESEED,
        reseed,
        unsafe extern "C" fn(P, c_int, CU, usize, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_ENABLE_LOCKING,
        enable_locking,
        unsafe extern "C" fn(P) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_LOCK,
        lock,
        unsafe extern "C" fn(P) -> c_int
    ),
    dispatch!(ffi::OSSL_FUNC_RAND_UNLOCK, unlock, unsafe extern "C" fn(P)),
    dispatch!(
        ffi::OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS,
        gettable_ctx_params,
        unsafe extern "C" fn(P, P) -> PP
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_SETTABLE_CTX_PARAMS,
        settable_ctx_params,
        unsafe extern "C" fn(P, P) -> PP
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_GET_CTX_PARAMS,
        get_ctx_params,
        unsafe extern "C" fn(P, *mut OSSL_PARAM) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_SET_CTX_PARAMS,
        set_ctx_params,
        unsafe extern "C" fn(P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_VERIFY_ZEROIZATION,
        verify_zeroization,
        unsafe extern "C" fn(P) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_GET_SEED,
        get_seed,
        unsafe extern "C" fn(P, *mut *mut c_uchar, c_int, usize, usize, c_int, CU, usize) -> usize
    ),
    dispatch!(
        ffi::OSSL_FUNC_RAND_CLEAR_SEED,
        clear_seed,
        unsafe extern "C" fn(P, *mut c_uchar, usize)
    ),
    END,
];
