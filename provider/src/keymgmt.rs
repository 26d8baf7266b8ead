//! RSA key management: new, free, has, match, validate, import/export and their types,
//! get_params (bits, security-bits, max-size, default digest, the numbers), generation
//! (done by the default provider in the child context, then imported), dup.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::{Arc, OnceLock, RwLock};

use crate::ctx::ProvCtx;
use crate::error::{entry, entry_void, fail, Error, Reason, Result};
use crate::ffi::{self, dispatch, END, OSSL_CALLBACK, OSSL_DISPATCH, OSSL_PARAM};
use crate::key::{self, KeyMaterial};
use crate::ossl::Bn;
use crate::params::{self, Descriptors, Input, Output};

/// The key object handed to OpenSSL (`keydata`): empty after `new`, filled by import or
/// generation.
pub struct KeyData {
    prov: Arc<ProvCtx>,
    key: RwLock<Option<Arc<KeyMaterial>>>,
}

impl KeyData {
    /// The key, if it has been filled.
    pub fn key(&self) -> Option<Arc<KeyMaterial>> {
        self.key.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn into_raw(prov: Arc<ProvCtx>, key: Option<KeyMaterial>) -> *mut c_void {
        Box::into_raw(Box::new(KeyData {
            prov,
            key: RwLock::new(key.map(Arc::new)),
        }))
        .cast()
    }
}

/// Borrows a keydata pointer.
///
/// # Safety
/// `p` is NULL or a keydata made by this module and not yet freed.
pub unsafe fn keydata<'a>(p: *const c_void) -> Result<&'a KeyData> {
    // SAFETY: per the contract.
    unsafe { (p as *const KeyData).as_ref() }
        .ok_or_else(|| Error::new(Reason::InvalidKey, "NULL key"))
}

unsafe extern "C" fn rsa_new(provctx: *mut c_void) -> *mut c_void {
    entry(c"wd_rsa_new", ptr::null_mut(), || {
        // SAFETY: the core passes our provctx.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        Ok(KeyData::into_raw(prov, None))
    })
}

unsafe extern "C" fn rsa_free(kd: *mut c_void) {
    entry_void(c"wd_rsa_free", || {
        if !kd.is_null() {
            // SAFETY: made by Box::into_raw in this module; freed once by the core.
            drop(unsafe { Box::from_raw(kd as *mut KeyData) });
        }
    })
}

fn has(k: Option<&KeyMaterial>, selection: c_int) -> bool {
    let Some(k) = k else {
        // An empty key has only what needs nothing.
        return selection & ffi::OSSL_KEYMGMT_SELECT_KEYPAIR == 0;
    };
    let mut ok = true;
    if selection & ffi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY != 0 {
        ok &= !k.n.is_empty() && !k.e.is_empty();
    }
    if selection & ffi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0 {
        ok &= k.private.is_some();
    }
    ok
}

unsafe extern "C" fn rsa_has(kd: *const c_void, selection: c_int) -> c_int {
    entry(c"wd_rsa_has", 0, || {
        // SAFETY: keydata from this module.
        let kd = unsafe { keydata(kd) }?;
        Ok(c_int::from(has(kd.key().as_deref(), selection)))
    })
}

unsafe extern "C" fn rsa_match(a: *const c_void, b: *const c_void, selection: c_int) -> c_int {
    entry(c"wd_rsa_match", 0, || {
        // SAFETY: keydata from this module.
        let (a, b) = unsafe { (keydata(a)?, keydata(b)?) };
        let (Some(a), Some(b)) = (a.key(), b.key()) else {
            return Ok(0);
        };
        let mut ok = true;
        if selection & ffi::OSSL_KEYMGMT_SELECT_KEYPAIR != 0 {
            // As OpenSSL's own RSA: the public parts decide, whether or not private is
            // selected (a private key always carries its public half).
            ok &= a.n == b.n && a.e == b.e;
        }
        Ok(c_int::from(ok))
    })
}

unsafe extern "C" fn rsa_validate(kd: *const c_void, selection: c_int, _checktype: c_int) -> c_int {
    entry(c"wd_rsa_validate", 0, || {
        // SAFETY: keydata from this module.
        let kd = unsafe { keydata(kd) }?;
        let Some(k) = kd.key() else {
            return fail(Reason::InvalidKey, "validating an empty key");
        };
        if selection & ffi::OSSL_KEYMGMT_SELECT_KEYPAIR == 0 {
            return Ok(1);
        }
        let public = selection & ffi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY != 0;
        let private = selection & ffi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0;
        if private && k.private.is_none() {
            return fail(Reason::InvalidKey, "key has no private part to validate");
        }
        let ok = k
            .prov
            .software()?
            .validate(k.software()?, public, private)?;
        if !ok {
            return fail(Reason::InvalidKey, "key failed validation");
        }
        Ok(1)
    })
}

unsafe extern "C" fn rsa_import(kd: *mut c_void, selection: c_int, p: *const OSSL_PARAM) -> c_int {
    entry(c"wd_rsa_import", 0, || {
        // SAFETY: keydata from this module; params terminated per the core.
        let (kd, input) = unsafe { (keydata(kd)?, Input::new(p)) };
        if selection & ffi::OSSL_KEYMGMT_SELECT_KEYPAIR == 0 {
            // RSA has no domain parameters; nothing to import.
            return Ok(1);
        }
        let k = KeyMaterial::import(kd.prov.clone(), selection, input)?;
        *kd.key.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(k));
        Ok(1)
    })
}

static TYPES_PUBLIC: OnceLock<Descriptors> = OnceLock::new();
static TYPES_ALL: OnceLock<Descriptors> = OnceLock::new();

fn types(selection: c_int) -> *const OSSL_PARAM {
    let private = selection & ffi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0;
    let (cell, names) = if private {
        (&TYPES_ALL, key::param_names(true))
    } else {
        (&TYPES_PUBLIC, key::param_names(false))
    };
    cell.get_or_init(|| {
        let v: Vec<(&'static CStr, u32)> = names.into_iter().map(|n| (n, params::UINT)).collect();
        Descriptors::new(&v)
    })
    .as_ptr()
}

unsafe extern "C" fn rsa_import_types(selection: c_int) -> *const OSSL_PARAM {
    entry(c"wd_rsa_import_types", ptr::null(), || Ok(types(selection)))
}

unsafe extern "C" fn rsa_export_types(selection: c_int) -> *const OSSL_PARAM {
    entry(c"wd_rsa_export_types", ptr::null(), || Ok(types(selection)))
}

unsafe extern "C" fn rsa_export(
    kd: *mut c_void,
    selection: c_int,
    cb: Option<OSSL_CALLBACK>,
    cbarg: *mut c_void,
) -> c_int {
    entry(c"wd_rsa_export", 0, || {
        // SAFETY: keydata from this module.
        let kd = unsafe { keydata(kd) }?;
        let Some(k) = kd.key() else {
            return fail(Reason::InvalidKey, "exporting an empty key");
        };
        let Some(cb) = cb else {
            return fail(Reason::MissingParameter, "export without a callback");
        };
        if selection & ffi::OSSL_KEYMGMT_SELECT_KEYPAIR == 0 {
            return Ok(1);
        }
        let private = selection & ffi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0;
        let params = k.to_params(private)?;
        // SAFETY: the caller's callback with its argument and our terminated list.
        Ok(unsafe { cb(foreign_types::ForeignType::as_ptr(&params), cbarg) })
    })
}

static GETTABLE: OnceLock<Descriptors> = OnceLock::new();

unsafe extern "C" fn rsa_gettable_params(_provctx: *mut c_void) -> *const OSSL_PARAM {
    entry(c"wd_rsa_gettable_params", ptr::null(), || {
        Ok(GETTABLE
            .get_or_init(|| {
                let mut v = vec![
                    (c"bits", params::INT),
                    (c"security-bits", params::INT),
                    (c"max-size", params::INT),
                    (c"default-digest", params::UTF8),
                ];
                v.extend(
                    key::param_names(true)
                        .into_iter()
                        .map(|n| (n, params::UINT)),
                );
                Descriptors::new(&v)
            })
            .as_ptr())
    })
}

unsafe extern "C" fn rsa_get_params(kd: *mut c_void, out: *mut OSSL_PARAM) -> c_int {
    entry(c"wd_rsa_get_params", 0, || {
        // SAFETY: keydata from this module; out is the caller's terminated array.
        let (kd, out) = unsafe { (keydata(kd)?, Output::new(out)) };
        let Some(k) = kd.key() else {
            return fail(Reason::InvalidKey, "parameters of an empty key");
        };
        if let Some(s) = out.slot(c"bits") {
            s.int(k.bits as i32)?;
        }
        if let Some(s) = out.slot(c"security-bits") {
            s.int(k.security_bits())?;
        }
        if let Some(s) = out.slot(c"max-size") {
            s.int(k.size() as i32)?;
        }
        if let Some(s) = out.slot(c"default-digest") {
            s.static_utf8(c"SHA256")?;
        }
        // The numbers, as OpenSSL's RSA keymgmt also answers them.
        let params = k.to_params(true)?;
        let have = params::input_of(&params);
        for name in key::param_names(true) {
            if let (Some(s), Some(v)) = (out.slot(name), have.get(name)) {
                let b: Bn = v.bn()?;
                s.bn(&b)?;
            }
        }
        Ok(1)
    })
}

unsafe extern "C" fn rsa_query_operation_name(_op: c_int) -> *const c_char {
    entry(c"wd_rsa_query_operation_name", ptr::null(), || {
        Ok(c"RSA".as_ptr())
    })
}

unsafe extern "C" fn rsa_dup(kd: *const c_void, selection: c_int) -> *mut c_void {
    entry(c"wd_rsa_dup", ptr::null_mut(), || {
        // SAFETY: keydata from this module.
        let kd = unsafe { keydata(kd) }?;
        let copy = match kd.key() {
            Some(k) => Some(k.duplicate(selection & ffi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0)?),
            None => None,
        };
        Ok(KeyData::into_raw(kd.prov.clone(), copy))
    })
}

// ----- generation ----------------------------------------------------------------------

struct GenCtx {
    prov: Arc<ProvCtx>,
    selection: c_int,
    bits: u32,
    primes: u32,
    e: Option<Vec<u8>>,
}

fn gen_set(g: &mut GenCtx, input: Input<'_>) -> Result<()> {
    if let Some(p) = input.get(c"bits") {
        let b = p.size()?;
        if !(512..=16384).contains(&b) {
            return fail(
                Reason::InvalidParameter,
                format!("RSA key size {b} outside 512..16384"),
            );
        }
        g.bits = b as u32;
    }
    if let Some(p) = input.get(c"primes") {
        let n = p.size()?;
        if !(2..=5).contains(&n) {
            return fail(
                Reason::InvalidParameter,
                format!("RSA primes {n} outside 2..5"),
            );
        }
        g.primes = n as u32;
    }
    if let Some(p) = input.get(c"e") {
        g.e = Some(p.bn()?.to_be());
    }
    Ok(())
}

unsafe extern "C" fn rsa_gen_init(
    provctx: *mut c_void,
    selection: c_int,
    p: *const OSSL_PARAM,
) -> *mut c_void {
    entry(c"wd_rsa_gen_init", ptr::null_mut(), || {
        // SAFETY: our provctx; params terminated.
        let (prov, input) = unsafe { (ProvCtx::from_ptr(provctx)?, Input::new(p)) };
        let mut g = GenCtx {
            prov,
            selection,
            bits: 2048,
            primes: 2,
            e: None,
        };
        gen_set(&mut g, input)?;
        Ok(Box::into_raw(Box::new(g)).cast())
    })
}

unsafe extern "C" fn rsa_gen_set_params(gctx: *mut c_void, p: *const OSSL_PARAM) -> c_int {
    entry(c"wd_rsa_gen_set_params", 0, || {
        // SAFETY: a GenCtx of this module; params terminated.
        let (g, input) = unsafe { ((gctx as *mut GenCtx).as_mut(), Input::new(p)) };
        let g = g.ok_or_else(|| Error::new(Reason::NotInitialized, "NULL generation context"))?;
        gen_set(g, input)?;
        Ok(1)
    })
}

unsafe extern "C" fn rsa_gen_settable_params(
    _g: *mut c_void,
    _p: *mut c_void,
) -> *const OSSL_PARAM {
    entry(c"wd_rsa_gen_settable_params", ptr::null(), || {
        Ok(params::descriptors![
            (c"bits", params::UINT),
            (c"primes", params::UINT),
            (c"e", params::UINT),
        ])
    })
}

unsafe extern "C" fn rsa_gen(
    gctx: *mut c_void,
    _cb: Option<OSSL_CALLBACK>,
    _cbarg: *mut c_void,
) -> *mut c_void {
    entry(c"wd_rsa_gen", ptr::null_mut(), || {
        // SAFETY: a GenCtx of this module.
        let g = unsafe { (gctx as *const GenCtx).as_ref() }
            .ok_or_else(|| Error::new(Reason::NotInitialized, "NULL generation context"))?;
        if g.selection & ffi::OSSL_KEYMGMT_SELECT_KEYPAIR == 0 {
            return Ok(KeyData::into_raw(g.prov.clone(), None));
        }
        let pkey = g
            .prov
            .software()?
            .generate(g.bits, g.primes, g.e.as_deref())?;
        let k = KeyMaterial::from_software(g.prov.clone(), pkey)?;
        Ok(KeyData::into_raw(g.prov.clone(), Some(k)))
    })
}

unsafe extern "C" fn rsa_gen_cleanup(gctx: *mut c_void) {
    entry_void(c"wd_rsa_gen_cleanup", || {
        if !gctx.is_null() {
            // SAFETY: made by Box::into_raw in gen_init, freed once.
            drop(unsafe { Box::from_raw(gctx as *mut GenCtx) });
        }
    })
}

type P = *mut c_void;
type CP = *const c_void;

/// The RSA key management dispatch table.
pub static DISPATCH: [OSSL_DISPATCH; 19] = [
    dispatch!(
        ffi::OSSL_FUNC_KEYMGMT_NEW,
        rsa_new,
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
        unsafe extern "C" fn(P, c_int, *const OSSL_PARAM) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_KEYMGMT_IMPORT_TYPES,
        rsa_import_types,
        unsafe extern "C" fn(c_int) -> *const OSSL_PARAM
    ),
    dispatch!(
        ffi::OSSL_FUNC_KEYMGMT_EXPORT,
        rsa_export,
        unsafe extern "C" fn(P, c_int, Option<OSSL_CALLBACK>, P) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
        rsa_export_types,
        unsafe extern "C" fn(c_int) -> *const OSSL_PARAM
    ),
    dispatch!(
        ffi::OSSL_FUNC_KEYMGMT_GET_PARAMS,
        rsa_get_params,
        unsafe extern "C" fn(P, *mut OSSL_PARAM) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,
        rsa_gettable_params,
        unsafe extern "C" fn(P) -> *const OSSL_PARAM
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
        rsa_gen_init,
        unsafe extern "C" fn(P, c_int, *const OSSL_PARAM) -> P
    ),
    dispatch!(
        ffi::OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS,
        rsa_gen_set_params,
        unsafe extern "C" fn(P, *const OSSL_PARAM) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS,
        rsa_gen_settable_params,
        unsafe extern "C" fn(P, P) -> *const OSSL_PARAM
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
];
