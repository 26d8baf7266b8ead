//! The C side of the RSA asymmetric cipher: the entry points the core calls, each behind
//! the `entry` panic guard, checking the caller's pointers and handing safe values to the
//! logic in mod.rs; and the dispatch table.

// The operation's C side: raw pointers in, safe values out (mod.rs denies unsafe code).
#![allow(unsafe_code)]

use std::ffi::{c_int, c_uchar, c_void, CStr};
use std::ptr;

use super::{CipherCtx, Op};
use crate::ctx::ProvCtx;
use crate::error::{entry, entry_void, Error, Reason, Result};
use crate::ffi::{self, dispatch, END, OSSL_DISPATCH, OSSL_PARAM};
use crate::keymgmt::ffi::keydata;
use crate::outbuf::output_entry;
use crate::params::{self, Input};

/// Borrows a cipher context.
///
/// # Safety
/// `p` is NULL or a context made by `newctx` or `dupctx` below and not yet freed.
unsafe fn cctx<'a>(p: *mut c_void) -> Result<&'a mut CipherCtx> {
    // SAFETY: per the contract `p` is NULL (then None) or a live, aligned `CipherCtx` from
    // `Box::into_raw`; one context is never used by two threads at once, so the `&mut`
    // is unique for the call.
    unsafe { (p as *mut CipherCtx).as_mut() }
        .ok_or_else(|| Error::new(Reason::NotInitialized, "NULL cipher context"))
}

unsafe extern "C" fn newctx(provctx: P) -> P {
    entry(c"wd_rsa_cipher_newctx", ptr::null_mut(), || {
        // SAFETY: the core passes the provctx our init returned, alive while it calls us.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        Ok(Box::into_raw(Box::new(CipherCtx::new(prov))).cast())
    })
}

unsafe extern "C" fn freectx(ctx: P) {
    entry_void(c"wd_rsa_cipher_freectx", || {
        if !ctx.is_null() {
            // SAFETY: a context made by newctx/dupctx with Box::into_raw; the core frees
            // each once and uses it no more.
            drop(unsafe { Box::from_raw(ctx as *mut CipherCtx) });
        }
    })
}

unsafe extern "C" fn dupctx(ctx: P) -> P {
    entry(c"wd_rsa_cipher_dupctx", ptr::null_mut(), || {
        // SAFETY: the core passes NULL or one of our live contexts.
        let c = unsafe { cctx(ctx) }?;
        Ok(Box::into_raw(Box::new(c.clone())).cast())
    })
}

/// The body of the two init entries.
///
/// # Safety
/// `ctx` is NULL or a live context of ours; `key` NULL or a live keydata of our keymgmt;
/// `p` NULL or a terminated parameter array, all for the call.
unsafe fn init(func: &CStr, op: Op, ctx: P, key: P, p: PP) -> c_int {
    entry(func, 0, || {
        // SAFETY: `ctx` is NULL or a live context of ours, `key` NULL or a live keydata of
        // our keymgmt and `p` NULL or a terminated array (this function's contract), as
        // `cctx`, `keydata` and `Input::new` require.
        let (c, kd, input) = unsafe { (cctx(ctx)?, keydata(key)?, Input::new(p)) };
        c.init(op, kd, input).map(|_| 1)
    })
}

unsafe extern "C" fn encrypt_init(ctx: P, key: P, p: PP) -> c_int {
    // SAFETY: the core passes one of our contexts, a keydata of our keymgmt and a
    // terminated parameter array (or NULL), as `init` requires.
    unsafe { init(c"wd_rsa_encrypt_init", Op::Encrypt, ctx, key, p) }
}

unsafe extern "C" fn decrypt_init(ctx: P, key: P, p: PP) -> c_int {
    // SAFETY: the core passes one of our contexts, a keydata of our keymgmt and a
    // terminated parameter array (or NULL), as `init` requires.
    unsafe { init(c"wd_rsa_decrypt_init", Op::Decrypt, ctx, key, p) }
}

unsafe extern "C" fn encrypt(
    ctx: P,
    out: U,
    outlen: *mut usize,
    size: usize,
    input: CU,
    len: usize,
) -> c_int {
    // SAFETY: the core passes one of our contexts (or NULL), `out` writable for `size`
    // bytes (or NULL), `outlen` writable, `input` readable for `len`: distinct buffers.
    unsafe {
        output_entry(
            c"wd_rsa_encrypt",
            cctx,
            ctx,
            (out, outlen, size),
            (input, len),
            "NULL output length",
            CipherCtx::encrypt_into,
        )
    }
}

unsafe extern "C" fn decrypt(
    ctx: P,
    out: U,
    outlen: *mut usize,
    size: usize,
    input: CU,
    len: usize,
) -> c_int {
    // SAFETY: the core passes one of our contexts (or NULL), `out` writable for `size`
    // bytes (or NULL), `outlen` writable, `input` readable for `len`: distinct buffers.
    unsafe {
        output_entry(
            c"wd_rsa_decrypt",
            cctx,
            ctx,
            (out, outlen, size),
            (input, len),
            "NULL output length",
            CipherCtx::decrypt_into,
        )
    }
}

params::ctx_params_entries!(
    cctx,
    c"wd_rsa_cipher_get_ctx_params",
    c"wd_rsa_cipher_set_ctx_params"
);

unsafe extern "C" fn gettable_ctx_params(_ctx: P, _prov: P) -> PP {
    entry(c"wd_rsa_cipher_gettable_ctx_params", ptr::null(), || {
        Ok(params::descriptors![
            (c"pad-mode", params::UTF8),
            (c"digest", params::UTF8),
            (c"mgf1-digest", params::UTF8),
            (c"oaep-label", params::OCTETS),
            (c"tls-client-version", params::UINT),
            (c"tls-negotiated-version", params::UINT),
        ])
    })
}

unsafe extern "C" fn settable_ctx_params(_ctx: P, _prov: P) -> PP {
    entry(c"wd_rsa_cipher_settable_ctx_params", ptr::null(), || {
        Ok(params::descriptors![
            (c"pad-mode", params::UTF8),
            (c"digest", params::UTF8),
            (c"digest-props", params::UTF8),
            (c"mgf1-digest", params::UTF8),
            (c"mgf1-digest-props", params::UTF8),
            (c"oaep-label", params::OCTETS),
            (c"tls-client-version", params::UINT),
            (c"tls-negotiated-version", params::UINT),
        ])
    })
}

type P = *mut c_void;
type U = *mut c_uchar;
type CU = *const c_uchar;
type PP = *const OSSL_PARAM;

/// The RSA asymmetric cipher dispatch table.
pub static DISPATCH: [OSSL_DISPATCH; 12] = [
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_NEWCTX,
        newctx,
        unsafe extern "C" fn(P) -> P
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_FREECTX,
        freectx,
        unsafe extern "C" fn(P)
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_DUPCTX,
        dupctx,
        unsafe extern "C" fn(P) -> P
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT,
        encrypt_init,
        unsafe extern "C" fn(P, P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_ENCRYPT,
        encrypt,
        unsafe extern "C" fn(P, U, *mut usize, usize, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT,
        decrypt_init,
        unsafe extern "C" fn(P, P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_DECRYPT,
        decrypt,
        unsafe extern "C" fn(P, U, *mut usize, usize, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS,
        get_ctx_params,
        unsafe extern "C" fn(P, *mut OSSL_PARAM) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS,
        gettable_ctx_params,
        unsafe extern "C" fn(P, P) -> PP
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS,
        set_ctx_params,
        unsafe extern "C" fn(P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS,
        settable_ctx_params,
        unsafe extern "C" fn(P, P) -> PP
    ),
    END,
];
