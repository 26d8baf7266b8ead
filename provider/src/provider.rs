//! Provider entry, configuration and algorithm lookup: `OSSL_provider_init`, the provider's
//! gettable parameters (name, version, buildinfo, status, wd-stats, wd-config), the
//! operation query and the reason strings. The operations live in keymgmt/, signature/,
//! asym_cipher/ and rand/; this is the one module that names their dispatch tables (no
//! module it imports imports it back).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::ctx::ProvCtx;
use crate::error::{self, entry, entry_void, fail, CoreErr, Error, Reason, Result};
use crate::ffi::{
    self, dispatch, Table, END, OSSL_ALGORITHM, OSSL_DISPATCH, OSSL_ITEM, OSSL_PARAM,
};
use crate::params::{self, Output};
use crate::stats;

/// The function under `id` in the core's dispatch table `d`.
///
/// # Safety
/// `d` is NULL or a dispatch table terminated by an entry with function id 0.
unsafe fn find_fn(mut d: *const OSSL_DISPATCH, id: c_int) -> Option<unsafe extern "C" fn()> {
    if d.is_null() {
        return None;
    }
    // SAFETY: non-NULL, so per the contract an array ending with a function id of 0; the
    // walk reads entries up to that one and no further.
    unsafe {
        while (*d).function_id != 0 {
            if (*d).function_id == id {
                return (*d).function;
            }
            d = d.add(1);
        }
    }
    None
}

/// Reads string parameters from the core (`provider-name`, provider-section keys).
fn core_strings(
    get: ffi::CoreGetParamsFn,
    handle: *const ffi::OSSL_CORE_HANDLE,
    keys: &[&str],
) -> Vec<Option<String>> {
    let mut req = params::Request::new();
    for k in keys {
        req.utf8_ptr(k);
    }
    // SAFETY: `get` is the core's get_params (found under its id in the core's table by
    // init, this function's only caller) and `handle` our instance's: it answers a terminated list of UTF8_PTR entries with
    // pointers to strings the core keeps for the instance's life, as `ask` requires.
    let ok = unsafe { req.ask(|list| get(handle, list)) };
    if ok != 1 {
        return vec![None; keys.len()];
    }
    (0..keys.len()).map(|i| req.utf8(i)).collect()
}

/// Keys of provider section `name` in the configuration file libcrypto loaded by default
/// (`OPENSSL_CONF` or the built-in path), for the unknown-key check. None when there is no
/// such file or section (e.g. the provider was loaded with `-provider`).
fn config_file_keys(provider_name: &str) -> Option<Vec<String>> {
    // SAFETY: each call below is a public CONF function used as documented; every string
    // pointer is NUL-terminated and alive across its call; the error mark restores the
    // thread's error queue (missing keys push errors).
    unsafe {
        let file = ffi::CONF_get1_default_config_file();
        if file.is_null() {
            return None;
        }
        ffi::ERR_set_mark();
        let conf = openssl_sys::NCONF_new(ptr::null_mut());
        let mut eline: libc::c_long = 0;
        let mut out = None;
        if !conf.is_null() && ffi::NCONF_load(conf, file, &mut eline) == 1 {
            let get = |group: *const c_char, name: &CStr| -> *const c_char {
                ffi::NCONF_get_string(conf, group, name.as_ptr())
            };
            let init = get(ptr::null(), c"openssl_conf");
            let provs = if init.is_null() {
                ptr::null()
            } else {
                get(init, c"providers")
            };
            let pname = CString::new(provider_name).unwrap_or_default();
            let sect = if provs.is_null() {
                ptr::null()
            } else {
                ffi::NCONF_get_string(conf, provs, pname.as_ptr())
            };
            if !sect.is_null() {
                let sk = ffi::NCONF_get_section(conf, sect);
                if !sk.is_null() {
                    let n = openssl_sys::OPENSSL_sk_num(sk);
                    let mut keys = Vec::new();
                    for i in 0..n {
                        let v = openssl_sys::OPENSSL_sk_value(sk, i) as *const ffi::CONF_VALUE;
                        if !v.is_null() && !(*v).name.is_null() {
                            keys.push(CStr::from_ptr((*v).name).to_string_lossy().into_owned());
                        }
                    }
                    out = Some(keys);
                }
            }
        }
        if !conf.is_null() {
            openssl_sys::NCONF_free(conf);
        }
        ffi::ERR_pop_to_mark();
        ffi::CRYPTO_free(file.cast(), c"provider.rs".as_ptr(), line!() as c_int);
        out
    }
}

fn load_config(
    get: Option<ffi::CoreGetParamsFn>,
    handle: *const ffi::OSSL_CORE_HANDLE,
) -> Result<Config> {
    // The device model is test machinery, plugged in from the top of this artifact only in
    // builds that carry it (feature `model`); then `devices = model` can start it.
    #[cfg(feature = "model")]
    hisi_model::plug();
    let model_keys: Vec<String> = wd_core::select::model_plug()
        .map_or(&[][..], |p| p.keys)
        .iter()
        .map(|k| format!("model_{k}"))
        .collect();
    let keys: Vec<&str> = crate::config::KEYS
        .iter()
        .map(|k| k.key)
        .chain(model_keys.iter().map(|s| s.as_str()))
        .collect();
    let (name, values) = match get {
        Some(get) => {
            let name = core_strings(get, handle, &["provider-name"])
                .pop()
                .flatten();
            (name, core_strings(get, handle, &keys))
        }
        None => (None, vec![None; keys.len()]),
    };
    let cfg = Config::load(
        |k| {
            keys.iter()
                .position(|x| *x == k)
                .and_then(|i| values[i].clone())
        },
        |v| std::env::var(v).ok(),
    )?;
    if let Some(present) = config_file_keys(name.as_deref().unwrap_or("wd")) {
        Config::check_keys(present.iter().map(|s| s.as_str()))?;
    }
    // Device settings that are not the selection itself reach wd-core before any device
    // search: the uacce numbering, and the QM bring-up for `devices = vfio`.
    if let Some(abi) = cfg.uacce_abi {
        wd_core::select::set_uacce_abi(abi);
    }
    hisi_qm::vfio_bringup::plug();
    Ok(cfg)
}

// ----- provider functions -------------------------------------------------------------

unsafe extern "C" fn gettable_params(_prov: *mut c_void) -> *const OSSL_PARAM {
    entry(c"wd_gettable_params", ptr::null(), || {
        Ok(params::descriptors![
            (c"name", params::UTF8),
            (c"version", params::UTF8),
            (c"buildinfo", params::UTF8),
            (c"status", params::INT),
            (c"wd-stats", params::UTF8),
            (c"wd-config", params::UTF8),
        ])
    })
}

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(s) => s,
        Err(_) => c"0",
    };
const BUILDINFO: &CStr = match CStr::from_bytes_with_nul(
    concat!(
        "wd-provider ",
        env!("CARGO_PKG_VERSION"),
        " (Rust; RSA on HiSilicon HPRE via wd-core)\0"
    )
    .as_bytes(),
) {
    Ok(s) => s,
    Err(_) => c"wd-provider",
};

unsafe extern "C" fn get_params(prov: *mut c_void, out: *mut OSSL_PARAM) -> c_int {
    entry(c"wd_get_params", 0, || {
        // SAFETY: the core passes the provctx our init returned and the caller's writable,
        // terminated array (or NULL), both alive for the call.
        let (p, out) = unsafe { (ProvCtx::from_ptr(prov)?, Output::new(out)) };
        if let Some(s) = out.slot(c"name") {
            s.static_utf8(c"wd: WarpDrive HiSilicon HPRE provider")?;
        }
        if let Some(s) = out.slot(c"version") {
            s.static_utf8(VERSION)?;
        }
        if let Some(s) = out.slot(c"buildinfo") {
            s.static_utf8(BUILDINFO)?;
        }
        if let Some(s) = out.slot(c"status") {
            s.int(1)?;
        }
        if let Some(s) = out.slot(c"wd-stats") {
            s.utf8(&stats::format(&stats::snapshot()))?;
        }
        if let Some(s) = out.slot(c"wd-config") {
            s.utf8(&p.config().describe())?;
        }
        Ok(1)
    })
}

macro_rules! algorithms {
    ($name:ident, $impl:path) => {
        static $name: Table<[OSSL_ALGORITHM; 2]> = Table([
            OSSL_ALGORITHM {
                algorithm_names: c"RSA:rsaEncryption:1.2.840.113549.1.1.1".as_ptr(),
                property_definition: c"provider=wd".as_ptr(),
                implementation: $impl.as_ptr(),
                algorithm_description: c"RSA on HiSilicon HPRE (wd) with software fallback"
                    .as_ptr(),
            },
            OSSL_ALGORITHM {
                algorithm_names: ptr::null(),
                property_definition: ptr::null(),
                implementation: ptr::null(),
                algorithm_description: ptr::null(),
            },
        ]);
    };
}

static KEYMGMT_ALGS: Table<[OSSL_ALGORITHM; 3]> = Table([
    OSSL_ALGORITHM {
        algorithm_names: c"RSA:rsaEncryption:1.2.840.113549.1.1.1".as_ptr(),
        property_definition: c"provider=wd".as_ptr(),
        implementation: crate::keymgmt::ffi::DISPATCH.as_ptr(),
        algorithm_description: c"RSA on HiSilicon HPRE (wd) with software fallback".as_ptr(),
    },
    // OpenSSL's names for RSA-PSS keys (id-RSASSA-PSS, as in certificates restricting a key
    // to PSS): the default provider's decoders and encoders hand such keys to and from wd
    // under these names, and their signatures run in wd's RSA signature.
    OSSL_ALGORITHM {
        algorithm_names: c"RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10".as_ptr(),
        property_definition: c"provider=wd".as_ptr(),
        implementation: crate::keymgmt::ffi::PSS_DISPATCH.as_ptr(),
        algorithm_description: c"RSA-PSS on HiSilicon HPRE (wd) with software fallback".as_ptr(),
    },
    OSSL_ALGORITHM {
        algorithm_names: ptr::null(),
        property_definition: ptr::null(),
        implementation: ptr::null(),
        algorithm_description: ptr::null(),
    },
]);
algorithms!(SIGNATURE_ALGS, crate::signature::ffi::DISPATCH);
algorithms!(ASYM_CIPHER_ALGS, crate::asym_cipher::ffi::DISPATCH);

static RAND_ALGS: Table<[OSSL_ALGORITHM; 2]> = Table([
    OSSL_ALGORITHM {
        algorithm_names: c"CTR-DRBG".as_ptr(),
        property_definition: c"provider=wd".as_ptr(),
        implementation: crate::rand::ffi::DISPATCH.as_ptr(),
        algorithm_description: c"the default provider's CTR-DRBG, for wd loaded alone".as_ptr(),
    },
    OSSL_ALGORITHM {
        algorithm_names: ptr::null(),
        property_definition: ptr::null(),
        implementation: ptr::null(),
        algorithm_description: ptr::null(),
    },
]);

unsafe extern "C" fn query_operation(
    prov: *mut c_void,
    operation_id: c_int,
    no_cache: *mut c_int,
) -> *const OSSL_ALGORITHM {
    entry(c"wd_query_operation", ptr::null(), || {
        if !no_cache.is_null() {
            // SAFETY: non-NULL, so the `int` the core passes for the answer, writable.
            unsafe { *no_cache = 0 };
        }
        Ok(match operation_id {
            ffi::OSSL_OP_KEYMGMT => KEYMGMT_ALGS.0.as_ptr(),
            ffi::OSSL_OP_SIGNATURE => SIGNATURE_ALGS.0.as_ptr(),
            ffi::OSSL_OP_ASYM_CIPHER => ASYM_CIPHER_ALGS.0.as_ptr(),
            ffi::OSSL_OP_RAND => {
                // SAFETY: the core passes the provctx our init returned, alive for the call.
                let p = unsafe { ProvCtx::from_ptr(prov) }?;
                // Not in wd's own child contexts: their DRBG is the default provider's.
                if crate::software::is_child_context(p.libctx()) {
                    ptr::null()
                } else {
                    RAND_ALGS.0.as_ptr()
                }
            }
            _ => ptr::null(),
        })
    })
}

static REASONS: OnceLock<Table<Vec<OSSL_ITEM>>> = OnceLock::new();

unsafe extern "C" fn get_reason_strings(_prov: *mut c_void) -> *const OSSL_ITEM {
    entry(c"wd_get_reason_strings", ptr::null(), || {
        Ok(REASONS
            .get_or_init(|| {
                let mut v: Vec<OSSL_ITEM> = error::REASON_STRINGS
                    .iter()
                    .map(|(r, s)| OSSL_ITEM {
                        id: *r as u32,
                        ptr: s.as_ptr().cast(),
                    })
                    .collect();
                v.push(OSSL_ITEM {
                    id: 0,
                    ptr: ptr::null(),
                });
                Table(v)
            })
            .0
            .as_ptr())
    })
}

unsafe extern "C" fn teardown(prov: *mut c_void) {
    entry_void(c"wd_teardown", || {
        if prov.is_null() {
            return;
        }
        // SAFETY: the provctx our init made with `Arc::into_raw`; teardown is the core's
        // last use of it, so the reference it held is taken back here, once.
        let p = unsafe { Arc::from_raw(prov as *const ProvCtx) };
        error::uninstall(p.handle());
        if Arc::strong_count(&p) > 1 {
            // Keys or contexts of this instance are still alive (freed later, or never,
            // at exit): keep the instance, and its child context, valid for them.
            std::mem::forget(p);
        }
    })
}

static PROVIDER_DISPATCH: [OSSL_DISPATCH; 6] = [
    dispatch!(
        ffi::OSSL_FUNC_PROVIDER_GETTABLE_PARAMS,
        gettable_params,
        unsafe extern "C" fn(*mut c_void) -> *const OSSL_PARAM
    ),
    dispatch!(
        ffi::OSSL_FUNC_PROVIDER_GET_PARAMS,
        get_params,
        unsafe extern "C" fn(*mut c_void, *mut OSSL_PARAM) -> c_int
    ),
    dispatch!(
        ffi::OSSL_FUNC_PROVIDER_QUERY_OPERATION,
        query_operation,
        unsafe extern "C" fn(*mut c_void, c_int, *mut c_int) -> *const OSSL_ALGORITHM
    ),
    dispatch!(
        ffi::OSSL_FUNC_PROVIDER_GET_REASON_STRINGS,
        get_reason_strings,
        unsafe extern "C" fn(*mut c_void) -> *const OSSL_ITEM
    ),
    dispatch!(
        ffi::OSSL_FUNC_PROVIDER_TEARDOWN,
        teardown,
        unsafe extern "C" fn(*mut c_void)
    ),
    END,
];

/// The module's only export: OpenSSL calls it when it loads the provider.
///
/// # Safety
/// Called by libcrypto with a valid core handle and dispatch table and writable `out` and
/// `provctx`.
#[no_mangle]
pub unsafe extern "C" fn OSSL_provider_init(
    handle: *const ffi::OSSL_CORE_HANDLE,
    core_in: *const OSSL_DISPATCH,
    out: *mut *const OSSL_DISPATCH,
    provctx: *mut *mut c_void,
) -> c_int {
    entry(c"OSSL_provider_init", 0, || {
        // SAFETY: `core_in` is the core's dispatch table, terminated by id 0.
        let find = |id| unsafe { find_fn(core_in, id) };
        let new_error = find(ffi::OSSL_FUNC_CORE_NEW_ERROR);
        let set_debug = find(ffi::OSSL_FUNC_CORE_SET_ERROR_DEBUG);
        let vset = find(ffi::OSSL_FUNC_CORE_VSET_ERROR);
        if let (Some(a), Some(b), Some(c)) = (new_error, set_debug, vset) {
            // SAFETY: the core's functions under these ids have exactly these signatures
            // (core_dispatch.h), so each is later called at its own type.
            let core = unsafe {
                CoreErr {
                    handle,
                    new_error: std::mem::transmute::<unsafe extern "C" fn(), ffi::CoreNewErrorFn>(
                        a,
                    ),
                    set_error_debug: std::mem::transmute::<
                        unsafe extern "C" fn(),
                        ffi::CoreSetErrorDebugFn,
                    >(b),
                    vset_error: std::mem::transmute::<unsafe extern "C" fn(), ffi::CoreVsetErrorFn>(
                        c,
                    ),
                }
            };
            error::install(core);
        }
        let libctx = find(ffi::OSSL_FUNC_CORE_GET_LIBCTX).map_or(ptr::null_mut(), |f| {
            // SAFETY: the core's get_libctx has this signature (core_dispatch.h) and takes
            // the handle the core gave this init.
            unsafe {
                std::mem::transmute::<unsafe extern "C" fn(), ffi::CoreGetLibctxFn>(f)(handle)
            }
        });
        let get = find(ffi::OSSL_FUNC_CORE_GET_PARAMS)
            // SAFETY: the core's get_params has this signature (core_dispatch.h).
            .map(|f| unsafe {
                std::mem::transmute::<unsafe extern "C" fn(), ffi::CoreGetParamsFn>(f)
            });
        let config = load_config(get, handle).map_err(|e| {
            // Also said on stderr, whatever the log level: OpenSSL's own applications
            // drop a provider that fails to load from openssl.cnf without printing why.
            wd_core::log::emit(format_args!("wd provider: configuration error: {}", e.msg));
            Error::new(e.reason, format!("wd provider configuration: {}", e.msg))
        })?;
        if let Some(l) = config.log_level {
            wd_core::log::set_level(l);
        }
        stats::configure(config.stats_dir.clone());
        wd_core::wd_log!(Info, "wd provider loaded: {}", config.describe());
        let ctx = Arc::new(ProvCtx::new(handle, libctx, core_in, config));
        if out.is_null() || provctx.is_null() {
            return fail(Reason::Internal, "NULL out pointers in provider init");
        }
        // SAFETY: both checked non-NULL above: the core's writable out slots. The provctx
        // reference written is the one `teardown` takes back.
        unsafe {
            *out = PROVIDER_DISPATCH.as_ptr();
            *provctx = Arc::into_raw(ctx) as *mut c_void;
        }
        Ok(1)
    })
}
