//! The C side of RSA and RSA-PSS key management: the entry points the core calls, each
//! behind the `entry` panic guard, checking the caller's pointers and handing safe values to
//! the logic in mod.rs; the parameter type lists; and the two dispatch tables (RSA-PSS
//! shares every function that does not depend on the key type).

// The operation's C side: raw pointers in, safe values out (mod.rs denies unsafe code).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use foreign_types::ForeignTypeRef;

use super::{no_gen_ctx, pss, GenCtx, KeyData, KeyType};
use crate::ctx::ProvCtx;
use crate::error::{entry, entry_void, Error, Reason, Result};
use crate::ffi::{self, dispatch, END, OSSL_CALLBACK, OSSL_DISPATCH, OSSL_PARAM};
use crate::key;
use crate::ossl::ParamsRef;
use crate::params::{self, Descriptors, Input, Output};

/// Borrows a keydata pointer (also for the signature and cipher inits, which get one).
///
/// # Safety
/// `p` is NULL or a keydata made by this module and not yet freed, alive for `'a`.
pub unsafe fn keydata<'a>(p: *const c_void) -> Result<&'a KeyData> {
    // SAFETY: per the contract `p` is NULL (then None) or a live, aligned `KeyData` from
    // `Box::into_raw`; it is only borrowed shared (its key sits behind a lock).
    unsafe { (p as *const KeyData).as_ref() }
        .ok_or_else(|| Error::new(Reason::InvalidKey, "NULL key"))
}

/// Hands a keydata to the core.
fn into_raw(kd: KeyData) -> P {
    Box::into_raw(Box::new(kd)).cast()
}

unsafe extern "C" fn rsa_new(provctx: P) -> P {
    entry(c"wd_rsa_new", ptr::null_mut(), || {
        // SAFETY: the core passes the provctx our init returned, alive while it calls us.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        Ok(into_raw(KeyData::new(prov, KeyType::Rsa, None)))
    })
}

unsafe extern "C" fn rsapss_new(provctx: P) -> P {
    entry(c"wd_rsapss_new", ptr::null_mut(), || {
        // SAFETY: the core passes the provctx our init returned, alive while it calls us.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        Ok(into_raw(KeyData::new(prov, KeyType::RsaPss, None)))
    })
}

unsafe extern "C" fn rsa_free(kd: P) {
    entry_void(c"wd_rsa_free", || {
        if !kd.is_null() {
            // SAFETY: a keydata made by `into_raw` (Box::into_raw); the core frees each once
            // and uses it no more.
            drop(unsafe { Box::from_raw(kd as *mut KeyData) });
        }
    })
}

unsafe extern "C" fn rsa_has(kd: CP, selection: c_int) -> c_int {
    entry(c"wd_rsa_has", 0, || {
        // SAFETY: the core passes NULL or one of our live keydata.
        let kd = unsafe { keydata(kd) }?;
        Ok(c_int::from(kd.has(selection)))
    })
}

unsafe extern "C" fn rsa_match(a: CP, b: CP, selection: c_int) -> c_int {
    entry(c"wd_rsa_match", 0, || {
        // SAFETY: the core passes NULL or live keydata of ours, both.
        let (a, b) = unsafe { (keydata(a)?, keydata(b)?) };
        Ok(c_int::from(a.matches(b, selection)))
    })
}

unsafe extern "C" fn rsa_validate(kd: CP, selection: c_int, _checktype: c_int) -> c_int {
    entry(c"wd_rsa_validate", 0, || {
        // SAFETY: the core passes NULL or one of our live keydata.
        let kd = unsafe { keydata(kd) }?;
        kd.validate(selection).map(|_| 1)
    })
}

unsafe extern "C" fn rsa_import(kd: P, selection: c_int, p: PP) -> c_int {
    entry(c"wd_rsa_import", 0, || {
        // SAFETY: the core passes NULL or one of our live keydata, and a terminated
        // parameter array (or NULL).
        let (kd, input) = unsafe { (keydata(kd)?, Input::new(p)) };
        kd.import(selection, input).map(|_| 1)
    })
}

/// Type lists: by key type (RSA, RSA-PSS) and whether the private numbers are in.
static TYPES: [[OnceLock<Descriptors>; 2]; 2] = [
    [OnceLock::new(), OnceLock::new()],
    [OnceLock::new(), OnceLock::new()],
];

/// The parameters of a key of type `kind` with the `selection`'s parts, as import and
/// export take them (an RSA-PSS key's restrictions with the other parameters).
fn types(kind: KeyType, selection: c_int) -> PP {
    let private = selection & ffi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0;
    let pss = kind == KeyType::RsaPss && selection & ffi::OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS != 0;
    TYPES[usize::from(pss)][usize::from(private)]
        .get_or_init(|| {
            let mut v: Vec<(&'static CStr, u32)> = key::param_names(private)
                .into_iter()
                .map(|n| (n, params::UINT))
                .collect();
            if pss {
                v.extend(pss::PARAM_NAMES);
            }
            Descriptors::new(&v)
        })
        .as_ptr()
}

unsafe extern "C" fn rsa_import_types(selection: c_int) -> PP {
    entry(c"wd_rsa_import_types", ptr::null(), || {
        Ok(types(KeyType::Rsa, selection))
    })
}

unsafe extern "C" fn rsa_export_types(selection: c_int) -> PP {
    entry(c"wd_rsa_export_types", ptr::null(), || {
        Ok(types(KeyType::Rsa, selection))
    })
}

unsafe extern "C" fn rsapss_import_types(selection: c_int) -> PP {
    entry(c"wd_rsapss_import_types", ptr::null(), || {
        Ok(types(KeyType::RsaPss, selection))
    })
}

unsafe extern "C" fn rsapss_export_types(selection: c_int) -> PP {
    entry(c"wd_rsapss_export_types", ptr::null(), || {
        Ok(types(KeyType::RsaPss, selection))
    })
}

unsafe extern "C" fn rsa_export(
    kd: P,
    selection: c_int,
    cb: Option<OSSL_CALLBACK>,
    cbarg: P,
) -> c_int {
    entry(c"wd_rsa_export", 0, || {
        // SAFETY: the core passes NULL or one of our live keydata.
        let kd = unsafe { keydata(kd) }?;
        let send = cb.map(|cb| {
            move |params: &ParamsRef| {
                // SAFETY: the caller's callback with the argument it gave for it, and a
                // terminated list that lives across the call.
                unsafe { cb(params.as_ptr(), cbarg) }
            }
        });
        kd.export(selection, send)
    })
}

static GETTABLE: [OnceLock<Descriptors>; 2] = [OnceLock::new(), OnceLock::new()];

/// The gettable parameters of a key of type `kind`.
fn gettable(kind: KeyType) -> PP {
    let pss = kind == KeyType::RsaPss;
    GETTABLE[usize::from(pss)]
        .get_or_init(|| {
            let mut v = vec![
                (c"bits", params::INT),
                (c"security-bits", params::INT),
                (c"max-size", params::INT),
                (c"default-digest", params::UTF8),
            ];
            if pss {
                v.push((c"mandatory-digest", params::UTF8));
                v.extend(pss::PARAM_NAMES.into_iter().take(4));
            }
            v.extend(
                key::param_names(true)
                    .into_iter()
                    .map(|n| (n, params::UINT)),
            );
            Descriptors::new(&v)
        })
        .as_ptr()
}

unsafe extern "C" fn rsa_gettable_params(_provctx: P) -> PP {
    entry(c"wd_rsa_gettable_params", ptr::null(), || {
        Ok(gettable(KeyType::Rsa))
    })
}

unsafe extern "C" fn rsapss_gettable_params(_provctx: P) -> PP {
    entry(c"wd_rsapss_gettable_params", ptr::null(), || {
        Ok(gettable(KeyType::RsaPss))
    })
}

unsafe extern "C" fn rsa_get_params(kd: P, out: *mut OSSL_PARAM) -> c_int {
    entry(c"wd_rsa_get_params", 0, || {
        // SAFETY: the core passes NULL or one of our live keydata, and the caller's
        // writable, terminated array (or NULL).
        let (kd, out) = unsafe { (keydata(kd)?, Output::new(out)) };
        kd.get_params(&out).map(|_| 1)
    })
}

unsafe extern "C" fn rsa_query_operation_name(_op: c_int) -> *const c_char {
    entry(c"wd_rsa_query_operation_name", ptr::null(), || {
        Ok(c"RSA".as_ptr())
    })
}

unsafe extern "C" fn rsa_dup(kd: CP, selection: c_int) -> P {
    entry(c"wd_rsa_dup", ptr::null_mut(), || {
        // SAFETY: the core passes NULL or one of our live keydata.
        let kd = unsafe { keydata(kd) }?;
        Ok(into_raw(kd.duplicate(selection)?))
    })
}

unsafe extern "C" fn rsa_gen_init(provctx: P, selection: c_int, p: PP) -> P {
    entry(c"wd_rsa_gen_init", ptr::null_mut(), || {
        // SAFETY: the provctx our init returned, and a terminated parameter array (or
        // NULL).
        let (prov, input) = unsafe { (ProvCtx::from_ptr(provctx)?, Input::new(p)) };
        let g = GenCtx::new(prov, KeyType::Rsa, selection, input)?;
        Ok(Box::into_raw(Box::new(g)).cast())
    })
}

unsafe extern "C" fn rsapss_gen_init(provctx: P, selection: c_int, p: PP) -> P {
    entry(c"wd_rsapss_gen_init", ptr::null_mut(), || {
        // SAFETY: the provctx our init returned, and a terminated parameter array (or
        // NULL).
        let (prov, input) = unsafe { (ProvCtx::from_ptr(provctx)?, Input::new(p)) };
        let g = GenCtx::new(prov, KeyType::RsaPss, selection, input)?;
        Ok(Box::into_raw(Box::new(g)).cast())
    })
}

unsafe extern "C" fn rsa_gen_set_params(gctx: P, p: PP) -> c_int {
    entry(c"wd_rsa_gen_set_params", 0, || {
        // SAFETY: NULL or a live GenCtx of rsa_gen_init, used by one thread at a time;
        // a terminated parameter array (or NULL).
        let (g, input) = unsafe { ((gctx as *mut GenCtx).as_mut(), Input::new(p)) };
        g.ok_or_else(no_gen_ctx)?.set_params(input).map(|_| 1)
    })
}

unsafe extern "C" fn rsa_gen_settable_params(_g: P, _p: P) -> PP {
    entry(c"wd_rsa_gen_settable_params", ptr::null(), || {
        Ok(params::descriptors![
            (c"bits", params::UINT),
            (c"primes", params::UINT),
            (c"e", params::UINT),
        ])
    })
}

unsafe extern "C" fn rsapss_gen_settable_params(_g: P, _p: P) -> PP {
    entry(c"wd_rsapss_gen_settable_params", ptr::null(), || {
        Ok(params::descriptors![
            (c"bits", params::UINT),
            (c"primes", params::UINT),
            (c"e", params::UINT),
            (c"digest", params::UTF8),
            (c"mgf", params::UTF8),
            (c"mgf1-digest", params::UTF8),
            (c"saltlen", params::INT),
            (c"digest-props", params::UTF8),
        ])
    })
}

unsafe extern "C" fn rsa_gen(gctx: P, _cb: Option<OSSL_CALLBACK>, _cbarg: P) -> P {
    entry(c"wd_rsa_gen", ptr::null_mut(), || {
        // SAFETY: the core passes NULL or a live GenCtx of rsa_gen_init, only read here.
        let g = unsafe { (gctx as *const GenCtx).as_ref() }.ok_or_else(no_gen_ctx)?;
        Ok(into_raw(g.generate()?))
    })
}

unsafe extern "C" fn rsa_gen_cleanup(gctx: P) {
    entry_void(c"wd_rsa_gen_cleanup", || {
        if !gctx.is_null() {
            // SAFETY: a GenCtx made by rsa_gen_init with Box::into_raw; the core frees it
            // once and uses it no more.
            drop(unsafe { Box::from_raw(gctx as *mut GenCtx) });
        }
    })
}

type P = *mut c_void;
type CP = *const c_void;
type PP = *const OSSL_PARAM;

/// One key management dispatch table: the entries common to RSA and RSA-PSS, with the six
/// functions that depend on the key type given by name. Both tables come from this one list,
/// so an entry added for one key type cannot be forgotten for the other.
macro_rules! keymgmt_table {
    (
        new: $new:ident,
        import_types: $import_types:ident,
        export_types: $export_types:ident,
        gettable_params: $gettable:ident,
        gen_init: $gen_init:ident,
        gen_settable_params: $gen_settable:ident $(,)?
    ) => {
        [
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_NEW,
                $new,
                unsafe extern "C" fn(P) -> P
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_FREE,
                rsa_free,
                unsafe extern "C" fn(P)
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_HAS,
                rsa_has,
                unsafe extern "C" fn(CP, c_int) -> c_int
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_MATCH,
                rsa_match,
                unsafe extern "C" fn(CP, CP, c_int) -> c_int
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_VALIDATE,
                rsa_validate,
                unsafe extern "C" fn(CP, c_int, c_int) -> c_int
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_IMPORT,
                rsa_import,
                unsafe extern "C" fn(P, c_int, PP) -> c_int
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_IMPORT_TYPES,
                $import_types,
                unsafe extern "C" fn(c_int) -> PP
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_EXPORT,
                rsa_export,
                unsafe extern "C" fn(P, c_int, Option<OSSL_CALLBACK>, P) -> c_int
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
                $export_types,
                unsafe extern "C" fn(c_int) -> PP
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_GET_PARAMS,
                rsa_get_params,
                unsafe extern "C" fn(P, *mut OSSL_PARAM) -> c_int
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,
                $gettable,
                unsafe extern "C" fn(P) -> PP
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
                rsa_query_operation_name,
                unsafe extern "C" fn(c_int) -> *const c_char
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_DUP,
                rsa_dup,
                unsafe extern "C" fn(CP, c_int) -> P
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_GEN_INIT,
                $gen_init,
                unsafe extern "C" fn(P, c_int, PP) -> P
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS,
                rsa_gen_set_params,
                unsafe extern "C" fn(P, PP) -> c_int
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS,
                $gen_settable,
                unsafe extern "C" fn(P, P) -> PP
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_GEN,
                rsa_gen,
                unsafe extern "C" fn(P, Option<OSSL_CALLBACK>, P) -> P
            ),
            dispatch!(
                ffi::OSSL_FUNC_KEYMGMT_GEN_CLEANUP,
                rsa_gen_cleanup,
                unsafe extern "C" fn(P)
            ),
            END,
        ]
    };
}

/// The RSA key management dispatch table.
pub static DISPATCH: [OSSL_DISPATCH; 19] = keymgmt_table! {
    new: rsa_new,
    import_types: rsa_import_types,
    export_types: rsa_export_types,
    gettable_params: rsa_gettable_params,
    gen_init: rsa_gen_init,
    gen_settable_params: rsa_gen_settable_params,
};

/// The RSA-PSS key management dispatch table: RSA's, but for the functions that depend
/// on the key type.
pub static PSS_DISPATCH: [OSSL_DISPATCH; 19] = keymgmt_table! {
    new: rsapss_new,
    import_types: rsapss_import_types,
    export_types: rsapss_export_types,
    gettable_params: rsapss_gettable_params,
    gen_init: rsapss_gen_init,
    gen_settable_params: rsapss_gen_settable_params,
};
