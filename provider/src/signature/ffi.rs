//! The C side of the RSA signature: the entry points the core calls, each behind the
//! `entry` panic guard, checking the caller's pointers and handing safe values to the
//! logic in mod.rs; and the dispatch table.

// The operation's C side: raw pointers in, safe values out (mod.rs denies unsafe code).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uchar, c_void, CStr};
use std::ptr;

use foreign_types::ForeignType;

use super::{Op, SigCtx};
use crate::ctx::ProvCtx;
use crate::error::{entry, entry_void, Error, Reason, Result};
use crate::ffi::{self, bytes, dispatch, END, OSSL_DISPATCH, OSSL_PARAM};
use crate::keymgmt::ffi::keydata;
use crate::keymgmt::KeyData;
use crate::outbuf::{output_entry, OutBuf};
use crate::params::{self, Input};

/// Borrows a signature context.
///
/// # Safety
/// `p` is NULL or a context made by `newctx` or `dupctx` below and not yet freed.
unsafe fn sctx<'a>(p: *mut c_void) -> Result<&'a mut SigCtx> {
    // SAFETY: per the contract `p` is NULL (then None) or a live, aligned `SigCtx` from
    // `Box::into_raw`; the core never uses one context from two threads at once, so the
    // `&mut` is unique for the call.
    unsafe { (p as *mut SigCtx).as_mut() }
        .ok_or_else(|| Error::new(Reason::NotInitialized, "NULL signature context"))
}

/// The key of an init call: None for NULL (keep the previous operation's key).
///
/// # Safety
/// `key` is NULL or a keydata of our keymgmt, alive for the call.
unsafe fn init_key<'a>(key: *mut c_void) -> Result<Option<&'a KeyData>> {
    if key.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, so per the contract a live keydata of our keymgmt.
    unsafe { keydata(key) }.map(Some)
}

unsafe extern "C" fn newctx(provctx: *mut c_void, _propq: *const c_char) -> *mut c_void {
    entry(c"wd_rsa_sig_newctx", ptr::null_mut(), || {
        // SAFETY: the core passes the provctx our init returned, alive while it calls us.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        Ok(Box::into_raw(Box::new(SigCtx::new(prov))).cast())
    })
}

unsafe extern "C" fn freectx(ctx: *mut c_void) {
    entry_void(c"wd_rsa_sig_freectx", || {
        if !ctx.is_null() {
            // SAFETY: a context made by newctx/dupctx with Box::into_raw; the core frees
            // each once and uses it no more.
            drop(unsafe { Box::from_raw(ctx as *mut SigCtx) });
        }
    })
}

unsafe extern "C" fn dupctx(ctx: *mut c_void) -> *mut c_void {
    entry(c"wd_rsa_sig_dupctx", ptr::null_mut(), || {
        // SAFETY: the core passes NULL or one of our live contexts.
        let c = unsafe { sctx(ctx) }?;
        Ok(Box::into_raw(Box::new(c.duplicate()?)).cast())
    })
}

/// The body of the three init entries.
///
/// # Safety
/// `ctx` is NULL or a live context of ours; `key` NULL or a live keydata of our keymgmt;
/// `p` NULL or a terminated parameter array, all for the call.
unsafe fn init(func: &CStr, op: Op, ctx: *mut c_void, key: *mut c_void, p: PP) -> c_int {
    entry(func, 0, || {
        // SAFETY: `ctx` is NULL or a live context of ours, `key` NULL or a live keydata of
        // our keymgmt and `p` NULL or a terminated array (this function's contract), as
        // `sctx`, `init_key` and `Input::new` require.
        let (c, key, input) = unsafe { (sctx(ctx)?, init_key(key)?, Input::new(p)) };
        c.init(op, key, input).map(|_| 1)
    })
}

unsafe extern "C" fn sign_init(ctx: P, key: P, p: PP) -> c_int {
    // SAFETY: the core passes one of our contexts, a keydata of our keymgmt (or NULL) and
    // a terminated parameter array (or NULL), as `init` requires.
    unsafe { init(c"wd_rsa_sign_init", Op::Sign, ctx, key, p) }
}

unsafe extern "C" fn verify_init(ctx: P, key: P, p: PP) -> c_int {
    // SAFETY: the core passes one of our contexts, a keydata of our keymgmt (or NULL) and
    // a terminated parameter array (or NULL), as `init` requires.
    unsafe { init(c"wd_rsa_verify_init", Op::Verify, ctx, key, p) }
}

unsafe extern "C" fn verify_recover_init(ctx: P, key: P, p: PP) -> c_int {
    // SAFETY: the core passes one of our contexts, a keydata of our keymgmt (or NULL) and
    // a terminated parameter array (or NULL), as `init` requires.
    unsafe {
        init(
            c"wd_rsa_verify_recover_init",
            Op::VerifyRecover,
            ctx,
            key,
            p,
        )
    }
}

unsafe extern "C" fn sign(
    ctx: P,
    sig: U,
    siglen: *mut usize,
    size: usize,
    tbs: CU,
    len: usize,
) -> c_int {
    // SAFETY: the core passes one of our contexts (or NULL), `sig` writable for `size`
    // bytes (or NULL), `siglen` writable, `tbs` readable for `len`: distinct caller buffers.
    unsafe {
        output_entry(
            c"wd_rsa_sign",
            sctx,
            ctx,
            (sig, siglen, size),
            (tbs, len),
            "NULL signature length",
            SigCtx::sign_into,
        )
    }
}

unsafe extern "C" fn verify(ctx: P, sig: CU, siglen: usize, tbs: CU, tbslen: usize) -> c_int {
    entry(c"wd_rsa_verify", 0, || {
        // SAFETY: one of our contexts; the caller's buffers, readable for their lengths.
        let (c, sig, tbs) = unsafe { (sctx(ctx)?, bytes(sig, siglen), bytes(tbs, tbslen)) };
        c.verify_or_fail(sig, tbs).map(|_| 1)
    })
}

unsafe extern "C" fn verify_recover(
    ctx: P,
    rout: U,
    routlen: *mut usize,
    size: usize,
    sig: CU,
    len: usize,
) -> c_int {
    // SAFETY: the core passes one of our contexts (or NULL), `rout` writable for `size`
    // bytes (or NULL), `routlen` writable, `sig` readable for `len`: distinct caller buffers.
    unsafe {
        output_entry(
            c"wd_rsa_verify_recover",
            sctx,
            ctx,
            (rout, routlen, size),
            (sig, len),
            "NULL output length",
            SigCtx::verify_recover_into,
        )
    }
}

/// The body of the two digest init entries.
///
/// # Safety
/// As [`init`]; `mdname` is NULL or a NUL-terminated string, alive for the call.
unsafe fn digest_init(func: &CStr, op: Op, ctx: P, mdname: S, key: P, p: PP) -> c_int {
    entry(func, 0, || {
        // SAFETY: `ctx` is NULL or a live context of ours, `key` NULL or a live keydata of
        // our keymgmt and `p` NULL or a terminated array (this function's contract), as
        // `sctx`, `init_key` and `Input::new` require.
        let (c, key, input) = unsafe { (sctx(ctx)?, init_key(key)?, Input::new(p)) };
        let name = if mdname.is_null() {
            None
        } else {
            // SAFETY: non-NULL, so per the contract a NUL-terminated string alive for the
            // call; copied out at once.
            let name = unsafe { CStr::from_ptr(mdname) };
            Some(name.to_string_lossy().into_owned())
        };
        c.digest_init(op, name.as_deref(), key, input).map(|_| 1)
    })
}

unsafe extern "C" fn digest_sign_init(ctx: P, mdname: S, key: P, p: PP) -> c_int {
    // SAFETY: the core passes one of our contexts, a digest name (or NULL), a keydata of
    // our keymgmt (or NULL) and a terminated parameter array (or NULL).
    unsafe { digest_init(c"wd_rsa_digest_sign_init", Op::Sign, ctx, mdname, key, p) }
}

unsafe extern "C" fn digest_verify_init(ctx: P, mdname: S, key: P, p: PP) -> c_int {
    // SAFETY: the core passes one of our contexts, a digest name (or NULL), a keydata of
    // our keymgmt (or NULL) and a terminated parameter array (or NULL).
    unsafe {
        digest_init(
            c"wd_rsa_digest_verify_init",
            Op::Verify,
            ctx,
            mdname,
            key,
            p,
        )
    }
}

unsafe extern "C" fn digest_update(ctx: P, data: CU, len: usize) -> c_int {
    entry(c"wd_rsa_digest_update", 0, || {
        // SAFETY: one of our contexts; the caller's data, readable for `len` bytes.
        let (c, data) = unsafe { (sctx(ctx)?, bytes(data, len)) };
        c.digest_update(data).map(|_| 1)
    })
}

unsafe extern "C" fn digest_sign_final(
    ctx: P,
    sig: U,
    siglen: *mut usize,
    sigsize: usize,
) -> c_int {
    entry(c"wd_rsa_digest_sign_final", 0, || {
        // SAFETY: one of our contexts; `sig` writable for `sigsize` bytes (or NULL) and
        // `siglen` writable, distinct buffers of the caller's.
        let (c, out) = unsafe {
            (
                sctx(ctx)?,
                OutBuf::new(sig, siglen, sigsize, "NULL signature length")?,
            )
        };
        c.digest_sign_final_into(out).map(|_| 1)
    })
}

unsafe extern "C" fn digest_verify_final(ctx: P, sig: CU, siglen: usize) -> c_int {
    entry(c"wd_rsa_digest_verify_final", 0, || {
        // SAFETY: one of our contexts; the caller's signature, readable for `siglen` bytes.
        let (c, sig) = unsafe { (sctx(ctx)?, bytes(sig, siglen)) };
        c.digest_verify_final(sig).map(|_| 1)
    })
}

params::ctx_params_entries!(
    sctx,
    c"wd_rsa_sig_get_ctx_params",
    c"wd_rsa_sig_set_ctx_params"
);

unsafe extern "C" fn gettable_ctx_params(_ctx: P, _prov: P) -> PP {
    entry(c"wd_rsa_sig_gettable_ctx_params", ptr::null(), || {
        Ok(params::descriptors![
            (c"algorithm-id", params::OCTETS),
            (c"pad-mode", params::UTF8),
            (c"digest", params::UTF8),
            (c"mgf1-digest", params::UTF8),
            (c"saltlen", params::UTF8),
        ])
    })
}

unsafe extern "C" fn settable_ctx_params(_ctx: P, _prov: P) -> PP {
    entry(c"wd_rsa_sig_settable_ctx_params", ptr::null(), || {
        Ok(params::descriptors![
            (c"pad-mode", params::UTF8),
            (c"digest", params::UTF8),
            (c"properties", params::UTF8),
            (c"saltlen", params::UTF8),
            (c"mgf1-digest", params::UTF8),
            (c"mgf1-properties", params::UTF8),
        ])
    })
}

unsafe extern "C" fn get_ctx_md_params(ctx: P, out: *mut OSSL_PARAM) -> c_int {
    entry(c"wd_rsa_sig_get_ctx_md_params", 0, || {
        // SAFETY: the core passes NULL or one of our live contexts.
        let c = unsafe { sctx(ctx) }?;
        let m = c.digest_ctx("no digest in progress")?;
        // SAFETY: a valid digest context of ours; `out` is the caller's terminated array
        // (or NULL), handed on as it came.
        Ok(unsafe { ffi::EVP_MD_CTX_get_params(m.as_ptr(), out) })
    })
}

unsafe extern "C" fn set_ctx_md_params(ctx: P, p: PP) -> c_int {
    entry(c"wd_rsa_sig_set_ctx_md_params", 0, || {
        // SAFETY: the core passes NULL or one of our live contexts.
        let c = unsafe { sctx(ctx) }?;
        let m = c.digest_ctx("no digest in progress")?;
        // SAFETY: a valid digest context of ours; `p` is the caller's terminated array (or
        // NULL), handed on as it came.
        Ok(unsafe { ffi::EVP_MD_CTX_set_params(m.as_ptr(), p) })
    })
}

unsafe extern "C" fn gettable_ctx_md_params(ctx: P) -> PP {
    entry(c"wd_rsa_sig_gettable_ctx_md_params", ptr::null(), || {
        // SAFETY: the core passes NULL or one of our live contexts.
        let c = unsafe { sctx(ctx) }?;
        Ok(c.md.as_ref().map_or(ptr::null(), |m| {
            // SAFETY: a valid fetched digest; the list it returns is static in its provider.
            unsafe { ffi::EVP_MD_gettable_ctx_params(m.as_ptr()) }
        }))
    })
}

unsafe extern "C" fn settable_ctx_md_params(ctx: P) -> PP {
    entry(c"wd_rsa_sig_settable_ctx_md_params", ptr::null(), || {
        // SAFETY: the core passes NULL or one of our live contexts.
        let c = unsafe { sctx(ctx) }?;
        Ok(c.md.as_ref().map_or(ptr::null(), |m| {
            // SAFETY: a valid fetched digest; the list it returns is static in its provider.
            unsafe { ffi::EVP_MD_settable_ctx_params(m.as_ptr()) }
        }))
    })
}

type P = *mut c_void;
type U = *mut c_uchar;
type CU = *const c_uchar;
type S = *const c_char;
type PP = *const OSSL_PARAM;

/// The RSA signature dispatch table.
pub static DISPATCH: [OSSL_DISPATCH; 24] = [
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_NEWCTX,
        newctx,
        unsafe extern "C" fn(P, S) -> P
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_FREECTX,
        freectx,
        unsafe extern "C" fn(P)
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_DUPCTX,
        dupctx,
        unsafe extern "C" fn(P) -> P
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_SIGN_INIT,
        sign_init,
        unsafe extern "C" fn(P, P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_SIGN,
        sign,
        unsafe extern "C" fn(P, U, *mut usize, usize, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_VERIFY_INIT,
        verify_init,
        unsafe extern "C" fn(P, P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_VERIFY,
        verify,
        unsafe extern "C" fn(P, CU, usize, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_VERIFY_RECOVER_INIT,
        verify_recover_init,
        unsafe extern "C" fn(P, P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_VERIFY_RECOVER,
        verify_recover,
        unsafe extern "C" fn(P, U, *mut usize, usize, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
        digest_sign_init,
        unsafe extern "C" fn(P, S, P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,
        digest_update,
        unsafe extern "C" fn(P, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,
        digest_sign_final,
        unsafe extern "C" fn(P, U, *mut usize, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,
        digest_verify_init,
        unsafe extern "C" fn(P, S, P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,
        digest_update,
        unsafe extern "C" fn(P, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,
        digest_verify_final,
        unsafe extern "C" fn(P, CU, usize) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,
        get_ctx_params,
        unsafe extern "C" fn(P, *mut OSSL_PARAM) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
        gettable_ctx_params,
        unsafe extern "C" fn(P, P) -> PP
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,
        set_ctx_params,
        unsafe extern "C" fn(P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
        settable_ctx_params,
        unsafe extern "C" fn(P, P) -> PP
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_GET_CTX_MD_PARAMS,
        get_ctx_md_params,
        unsafe extern "C" fn(P, *mut OSSL_PARAM) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_GETTABLE_CTX_MD_PARAMS,
        gettable_ctx_md_params,
        unsafe extern "C" fn(P) -> PP
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_SET_CTX_MD_PARAMS,
        set_ctx_md_params,
        unsafe extern "C" fn(P, PP) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_SIGNATURE_SETTABLE_CTX_MD_PARAMS,
        settable_ctx_md_params,
        unsafe extern "C" fn(P) -> PP
    ),
    END,
];
