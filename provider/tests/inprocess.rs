//! wd loaded into a library context of this process through the public API: key import
//! with a missing parameter fails with wd's reason string on the error queue; a key
//! imported into wd signs and the default provider verifies the result.

mod common;
use common::*;
use std::ffi::{CStr, CString};
use std::ptr;

use openssl_sys as sys;

extern "C" {
    fn OSSL_PROVIDER_set_default_search_path(
        ctx: *mut sys::OSSL_LIB_CTX,
        path: *const std::ffi::c_char,
    ) -> i32;
    fn ERR_reason_error_string(e: std::ffi::c_ulong) -> *const std::ffi::c_char;
    fn ERR_get_error() -> std::ffi::c_ulong;
}

/// Imports `fields` (name, hex) into wd in `ctx`; returns the reason strings of the failure,
/// or an empty list on success.
///
/// # Safety
/// `ctx` is a valid library context with wd loaded.
unsafe fn import(
    ctx: *mut sys::OSSL_LIB_CTX,
    fields: &[(&CStr, String)],
    selection: i32,
) -> Vec<String> {
    // SAFETY: public API on objects made here.
    unsafe {
        let bld = sys::OSSL_PARAM_BLD_new();
        let mut bns = Vec::new();
        for (k, hex) in fields {
            let mut bn: *mut sys::BIGNUM = ptr::null_mut();
            let h = CString::new(hex.as_str()).unwrap();
            assert!(sys::BN_hex2bn(&mut bn, h.as_ptr()) > 0);
            sys::OSSL_PARAM_BLD_push_BN(bld, k.as_ptr(), bn);
            bns.push(bn);
        }
        let params = sys::OSSL_PARAM_BLD_to_param(bld);
        let pctx = sys::EVP_PKEY_CTX_new_from_name(ctx, c"RSA".as_ptr(), c"provider=wd".as_ptr());
        assert!(!pctx.is_null());
        assert_eq!(sys::EVP_PKEY_fromdata_init(pctx), 1);
        let mut pkey: *mut sys::EVP_PKEY = ptr::null_mut();
        let r = sys::EVP_PKEY_fromdata(pctx, &mut pkey, selection, params);
        let mut reasons = Vec::new();
        loop {
            let e = ERR_get_error();
            if e == 0 {
                break;
            }
            let s = ERR_reason_error_string(e);
            if !s.is_null() {
                reasons.push(CStr::from_ptr(s).to_string_lossy().into_owned());
            }
        }
        if r == 1 {
            assert!(reasons.is_empty(), "{reasons:?}");
            sys::EVP_PKEY_free(pkey);
        } else {
            assert!(!reasons.is_empty(), "failure without a reason");
        }
        sys::EVP_PKEY_CTX_free(pctx);
        sys::OSSL_PARAM_free(params);
        sys::OSSL_PARAM_BLD_free(bld);
        for b in bns {
            sys::BN_free(b);
        }
        reasons
    }
}

#[test]
fn missing_key_parameter_is_an_error_with_wd_reason_string() {
    // This test binary holds only this test: the environment is ours to set.
    std::env::set_var("WD_DEVICES", "none");
    let dir = CString::new(modules().to_str().unwrap()).unwrap();
    // SAFETY: public libcrypto API on objects created here; all pointers checked.
    unsafe {
        let ctx = sys::OSSL_LIB_CTX_new();
        assert!(!ctx.is_null());
        assert_eq!(OSSL_PROVIDER_set_default_search_path(ctx, dir.as_ptr()), 1);
        let wd = sys::OSSL_PROVIDER_load(ctx, c"wd".as_ptr());
        assert!(!wd.is_null(), "loading wd failed");
        let def = sys::OSSL_PROVIDER_load(ctx, c"default".as_ptr());
        assert!(!def.is_null());

        // n only, no e.
        let n = sys::BN_new();
        sys::BN_set_word(n, 3233);
        let bld = sys::OSSL_PARAM_BLD_new();
        sys::OSSL_PARAM_BLD_push_BN(bld, c"n".as_ptr(), n);
        let params = sys::OSSL_PARAM_BLD_to_param(bld);
        let pctx = sys::EVP_PKEY_CTX_new_from_name(ctx, c"RSA".as_ptr(), c"provider=wd".as_ptr());
        assert!(!pctx.is_null());
        assert_eq!(sys::EVP_PKEY_fromdata_init(pctx), 1);
        let mut pkey: *mut sys::EVP_PKEY = ptr::null_mut();
        let r = sys::EVP_PKEY_fromdata(pctx, &mut pkey, sys::EVP_PKEY_PUBLIC_KEY, params);
        assert_ne!(r, 1, "import without e succeeded");
        let mut reasons = Vec::new();
        loop {
            let e = ERR_get_error();
            if e == 0 {
                break;
            }
            let s = ERR_reason_error_string(e);
            if !s.is_null() {
                reasons.push(CStr::from_ptr(s).to_string_lossy().into_owned());
            }
        }
        assert!(
            reasons.iter().any(|r| r == "missing parameter"),
            "reasons: {reasons:?}"
        );

        // Malformed and inconsistent private keys, from a real key's numbers.
        let f = numbers(1024);
        let key = |over: &[(&str, &str)]| -> Vec<(&'static CStr, String)> {
            let get = |name: &str| {
                over.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_else(|| f[name].clone())
            };
            vec![
                (c"n", get("modulus")),
                (c"e", get("e")),
                (c"d", get("privateExponent")),
                (c"rsa-factor1", get("prime1")),
                (c"rsa-factor2", get("prime2")),
                (c"rsa-exponent1", get("exponent1")),
                (c"rsa-exponent2", get("exponent2")),
                (c"rsa-coefficient1", get("coefficient")),
            ]
        };
        let kp = sys::EVP_PKEY_KEYPAIR;
        assert_eq!(
            import(ctx, &key(&[]), kp),
            Vec::<String>::new(),
            "the real key must import"
        );
        let r = import(ctx, &key(&[("prime1", f["prime2"].as_str())]), kp);
        assert!(
            r.contains(&"inconsistent key parameters".to_string()),
            "{r:?}"
        );
        let r = import(ctx, &key(&[("e", "10000")]), kp);
        assert!(r.contains(&"invalid key".to_string()), "{r:?}");
        let r = import(ctx, &key(&[("modulus", "10000")]), kp);
        assert!(r.contains(&"invalid key".to_string()), "{r:?}");
        let big_d = format!("01{}", f["modulus"]);
        let r = import(ctx, &key(&[("privateExponent", big_d.as_str())]), kp);
        assert!(
            r.contains(&"inconsistent key parameters".to_string()),
            "{r:?}"
        );
        // Factors without their CRT exponents.
        let mut partial = key(&[]);
        partial.truncate(5);
        let r = import(ctx, &partial, kp);
        assert!(
            r.contains(&"inconsistent key parameters".to_string()),
            "{r:?}"
        );
        sys::EVP_PKEY_CTX_free(pctx);
        sys::OSSL_PARAM_free(params);
        sys::OSSL_PARAM_BLD_free(bld);
        sys::BN_free(n);
        sys::OSSL_PROVIDER_unload(wd);
        sys::OSSL_PROVIDER_unload(def);
        sys::OSSL_LIB_CTX_free(ctx);
    }
}
