//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`), shared with the corpus
//! replay test (`tests/tests/fuzz_corpus.rs`), which runs every committed corpus file
//! through the same function on stable, so the targets cannot rot. Each body panics on a
//! finding: a crash, a result that differs from the reference, a broken invariant.
//!
//! | target | body | checks |
//! |---|---|---|
//! | `header` | [`header`] | gzip/zlib header parsers: prefixes, round trip, bounds |
//! | `decompress_soft` | [`decompress`] (software) | against zlib-rs; streaming = one-shot |
//! | `decompress_model` | [`decompress`] (device model) | the same on the ZIP model |
//! | `key_fromdata` | [`key_fromdata`] | `EVP_PKEY_fromdata` into wd vs the default provider |
//! | `key_der` | [`key_der`] | DER through the default decoder, exported into wd |
//! | `config` | [`config`] | `Config::load`: no panic, deterministic, bounds |

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::Once;

use hisi_zip::header::{parse_gzip, parse_zlib};
use hisi_zip::{Decompressor, Format, Offload};
use openssl_sys as sys;

use crate::rng::Rng;
use crate::zref;

/// Output limit of the decompression targets (a small input can expand 1000-fold).
const OUT_LIMIT: usize = 64 << 20;

/// The fuzz targets, by name (the corpus directories' names).
pub const TARGETS: &[&str] = &[
    "header",
    "decompress_soft",
    "decompress_model",
    "key_fromdata",
    "key_der",
    "config",
];

/// Runs target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "header" => header(data),
        "decompress_soft" => decompress(data, Offload::Never),
        "decompress_model" => {
            use_model();
            decompress(data, Offload::Auto)
        }
        "key_fromdata" => key_fromdata(data),
        "key_der" => key_der(data),
        "config" => config(data),
        _ => panic!("no fuzz target {name}"),
    }
}

/// The gzip and zlib header parsers: a parsed header lies within the input, every prefix
/// of it asks for more bytes, the same bytes with anything after parse the same, and a
/// parsed gzip header written back parses to itself.
pub fn header(data: &[u8]) {
    let g = parse_gzip(data);
    if let Ok(Some((n, h))) = &g {
        assert!(*n >= 10 && *n <= data.len(), "gzip header length {n}");
        if *n <= 4096 {
            for k in 0..*n {
                // Every prefix of a valid header asks for more bytes.
                assert_eq!(
                    parse_gzip(&data[..k]),
                    Ok(None),
                    "prefix {k} of a {n}-byte header"
                );
            }
        }
        assert_eq!(parse_gzip(&data[..*n]), g, "the header alone");
        let again = h.to_bytes();
        match parse_gzip(&again) {
            Ok(Some((m, h2))) => {
                assert_eq!(m, again.len());
                assert_eq!(&h2, h, "written back");
            }
            other => panic!("a written header does not parse: {other:?}"),
        }
    }
    let z = parse_zlib(data);
    if let Ok(Some(n)) = z {
        assert!(n >= 2 && n <= data.len(), "zlib header length {n}");
        assert_eq!(parse_zlib(&data[..n]), z);
        assert!(parse_zlib(&data[..n - 1]).is_ok_and(|r| r.is_none()));
    }
}

/// Starts the device model for this process (the ZIP path on `Offload::Auto`).
pub fn use_model() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dir = std::env::temp_dir().join(format!("wd-fuzz-model-{}", std::process::id()));
        std::env::set_var("WD_MODEL_DIR", &dir);
        hisi_model::plug();
        wd_core::select::set_process(wd_core::select::Devices::Model);
        wd_core::select::activate_process().expect("device model");
    });
}

/// Decompression of arbitrary input. The first byte chooses the format and the chunking
/// seed; the rest is the stream. One-shot and streaming (random pieces) must agree, and
/// for zlib and raw deflate (one stream, nothing after it) both must agree with zlib-rs:
/// the same bytes, or both an error.
pub fn decompress(data: &[u8], offload: Offload) {
    let Some((&sel, z)) = data.split_first() else {
        return;
    };
    let format = match sel % 3 {
        0 => Format::Gzip,
        1 => Format::Zlib,
        _ => Format::Deflate,
    };
    let one = hisi_zip::decompress_with(format, z, offload);
    let mut rng = Rng::new(u64::from(sel));
    let streamed = (|| -> std::io::Result<Vec<u8>> {
        let mut d = Decompressor::with_offload(format, offload)?;
        let mut out = Vec::new();
        let mut p = 0;
        while p < z.len() {
            let l = rng.log_size(z.len()).min(z.len() - p);
            d.decompress(&z[p..p + l], &mut out)?;
            p += l;
            if out.len() > OUT_LIMIT {
                return Ok(out);
            }
        }
        d.finish(&mut out)?;
        while d.output_pending() && out.len() <= OUT_LIMIT {
            d.finish(&mut out)?;
        }
        Ok(out)
    })();
    if let (Ok(a), Ok(b)) = (&one, &streamed) {
        if b.len() <= OUT_LIMIT {
            assert!(a == b, "{format}: one-shot and streaming differ");
        }
    }
    if format != Format::Gzip {
        let reference = zref::inflate(format, z, OUT_LIMIT);
        match (&one, &reference) {
            (Ok(a), Ok(r)) => assert!(a == r, "{format}: differs from zlib-rs"),
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) => panic!("{format}: accepted what zlib-rs refuses ({e})"),
            (Err(e), Ok(r)) if r.len() < OUT_LIMIT => {
                panic!("{format}: refused ({e}) what zlib-rs decodes")
            }
            (Err(_), Ok(_)) => {}
        }
        match (&streamed, &reference) {
            (Ok(_), Err(e)) => panic!("{format}: streaming accepted what zlib-rs refuses ({e})"),
            (Err(e), Ok(r)) if r.len() < OUT_LIMIT => {
                panic!("{format}: streaming refused ({e}) what zlib-rs decodes")
            }
            _ => {}
        }
    } else if let Ok(r) = zref::inflate(format, z, OUT_LIMIT) {
        // One gzip member and nothing after it: wd must read it the same.
        if r.len() < OUT_LIMIT {
            match &one {
                Ok(a) => assert!(a == &r, "gzip: differs from zlib-rs"),
                Err(e) => panic!("gzip: refused ({e}) a member zlib-rs decodes"),
            }
        }
    }
}

extern "C" {
    fn OSSL_PROVIDER_add_builtin(
        ctx: *mut sys::OSSL_LIB_CTX,
        name: *const c_char,
        init: unsafe extern "C" fn(
            *const wd_provider::ffi::OSSL_CORE_HANDLE,
            *const wd_provider::ffi::OSSL_DISPATCH,
            *mut *const wd_provider::ffi::OSSL_DISPATCH,
            *mut *mut c_void,
        ) -> c_int,
    ) -> c_int;
    fn EVP_PKEY_CTX_new_from_pkey(
        ctx: *mut sys::OSSL_LIB_CTX,
        pkey: *mut sys::EVP_PKEY,
        propq: *const c_char,
    ) -> *mut sys::EVP_PKEY_CTX;
    fn EVP_PKEY_pairwise_check(ctx: *mut sys::EVP_PKEY_CTX) -> c_int;
    fn EVP_PKEY_check(ctx: *mut sys::EVP_PKEY_CTX) -> c_int;
    fn OSSL_DECODER_CTX_new_for_pkey(
        pkey: *mut *mut sys::EVP_PKEY,
        input_type: *const c_char,
        input_struct: *const c_char,
        keytype: *const c_char,
        selection: c_int,
        libctx: *mut sys::OSSL_LIB_CTX,
        propquery: *const c_char,
    ) -> *mut c_void;
    fn OSSL_DECODER_from_data(
        ctx: *mut c_void,
        pdata: *mut *const u8,
        pdata_len: *mut usize,
    ) -> c_int;
    fn OSSL_DECODER_CTX_free(ctx: *mut c_void);
}

/// wd (linked into this program, so the fuzzer sees its coverage) and the default
/// provider in the default library context; wd without devices (its software path).
fn providers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("WD_DEVICES", "none");
        // SAFETY: registers wd's init function under the name "wd" and loads both
        // providers into the default library context, for the process's life.
        unsafe {
            assert_eq!(
                OSSL_PROVIDER_add_builtin(
                    ptr::null_mut(),
                    c"wd".as_ptr(),
                    wd_provider::provider::OSSL_provider_init,
                ),
                1
            );
            assert!(!sys::OSSL_PROVIDER_load(ptr::null_mut(), c"wd".as_ptr()).is_null());
            assert!(!sys::OSSL_PROVIDER_load(ptr::null_mut(), c"default".as_ptr()).is_null());
        }
    });
}

/// An EVP_PKEY freed on drop.
struct Pkey(*mut sys::EVP_PKEY);

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: owned, freed once.
        unsafe { sys::EVP_PKEY_free(self.0) }
    }
}

fn clear_errors() {
    // SAFETY: clears this thread's error queue.
    unsafe { sys::ERR_clear_error() }
}

/// `pkey`'s raw RSA private operation (no padding) on `input` in `provider`, or `None`.
fn raw_private(pkey: &Pkey, provider: &CStr, input: &[u8]) -> Option<Vec<u8>> {
    // SAFETY: a context on a live key, freed here; the output buffer is as long as said.
    unsafe {
        let ctx = EVP_PKEY_CTX_new_from_pkey(ptr::null_mut(), pkey.0, provider.as_ptr());
        if ctx.is_null() {
            return None;
        }
        let mut out = vec![0u8; 2048];
        let mut len = out.len();
        let ok = sys::EVP_PKEY_decrypt_init(ctx) > 0
            && sys::EVP_PKEY_CTX_set_rsa_padding(ctx, 3) > 0
            && sys::EVP_PKEY_decrypt(ctx, out.as_mut_ptr(), &mut len, input.as_ptr(), input.len())
                > 0;
        sys::EVP_PKEY_CTX_free(ctx);
        clear_errors();
        ok.then(|| {
            out.truncate(len);
            out
        })
    }
}

/// Whether the default provider finds `pkey` a consistent key pair (n = pq, e and d
/// inverse): its private operation is then m^d mod n.
fn valid_pair(pkey: &Pkey) -> bool {
    default_check(pkey, false)
}

/// The default provider's check: `full` adds the CRT parameters' consistency
/// (`EVP_PKEY_check`), else the pairwise check.
fn default_check(pkey: &Pkey, full: bool) -> bool {
    // SAFETY: a context on a live key, freed here.
    unsafe {
        let ctx = EVP_PKEY_CTX_new_from_pkey(ptr::null_mut(), pkey.0, c"provider=default".as_ptr());
        if ctx.is_null() {
            return false;
        }
        let ok = if full {
            EVP_PKEY_check(ctx) == 1
        } else {
            EVP_PKEY_pairwise_check(ctx) == 1
        };
        sys::EVP_PKEY_CTX_free(ctx);
        clear_errors();
        ok
    }
}

fn bits(pkey: &Pkey) -> i32 {
    // SAFETY: a live key.
    unsafe { sys::EVP_PKEY_get_bits(pkey.0) }
}

/// A fixed input below any modulus of `bytes` bytes: 0x00 0x01 0x02 ...
fn below_n(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| i as u8).collect()
}

/// Both providers' raw private operation on a key they both hold: the same answer when
/// the key is a valid pair; otherwise neither may crash.
fn compare_private(pkey: &Pkey) {
    let b = bits(pkey);
    if !(512..=8192).contains(&b) {
        return;
    }
    let m = below_n((b as usize).div_ceil(8));
    let wd = raw_private(pkey, c"provider=wd", &m);
    if valid_pair(pkey) {
        let def = raw_private(pkey, c"provider=default", &m);
        assert_eq!(
            wd, def,
            "{b}-bit valid key: wd and the default provider differ"
        );
    }
}

const FIELDS: [&CStr; 8] = [
    c"n",
    c"e",
    c"d",
    c"rsa-factor1",
    c"rsa-factor2",
    c"rsa-exponent1",
    c"rsa-exponent2",
    c"rsa-coefficient1",
];

/// `EVP_PKEY_fromdata` into wd of fields cut from `data`: byte 0 says which of n, e, d,
/// p, q, dp, dq, qinv are present (bit i), byte 1 the selection (public or key pair);
/// then each present field is a length byte pair (up to 512) and that many big-endian
/// bytes. The same into the default provider. A key pair wd imports must give the
/// default provider's answer whenever that is m^d mod n (the pairwise check passes),
/// whatever its CRT parameters; a key pair with all eight fields or n, e, d alone that
/// the default provider finds fully valid (`EVP_PKEY_check`) must import into wd (a
/// partial CRT set, e.g. factors and dp without dq or qinv, wd refuses as inconsistent;
/// the default provider may take it: a fuzz find, kept in the corpus).
pub fn key_fromdata(data: &[u8]) {
    providers();
    if data.len() < 2 {
        return;
    }
    let (present, sel) = (data[0], data[1]);
    let mut rest = &data[2..];
    let mut fields: Vec<(&CStr, Vec<u8>)> = Vec::new();
    for (i, name) in FIELDS.iter().enumerate() {
        if present & (1 << i) == 0 {
            continue;
        }
        if rest.len() < 2 {
            break;
        }
        let len = (usize::from(rest[0]) << 8 | usize::from(rest[1])) % 513;
        rest = &rest[2..];
        let len = len.min(rest.len());
        fields.push((name, rest[..len].to_vec()));
        rest = &rest[len..];
    }
    let selection = if sel & 1 == 0 {
        sys::EVP_PKEY_KEYPAIR
    } else {
        sys::EVP_PKEY_PUBLIC_KEY
    };
    let import = |provider: &CStr| -> Option<Pkey> {
        // SAFETY: a parameter builder, bignums and a context made and freed here; the key
        // is returned owned.
        unsafe {
            let bld = sys::OSSL_PARAM_BLD_new();
            let mut bns = Vec::new();
            for (k, v) in &fields {
                let bn = sys::BN_bin2bn(v.as_ptr(), v.len() as c_int, ptr::null_mut());
                sys::OSSL_PARAM_BLD_push_BN(bld, k.as_ptr(), bn);
                bns.push(bn);
            }
            let params = sys::OSSL_PARAM_BLD_to_param(bld);
            let pctx = sys::EVP_PKEY_CTX_new_from_name(
                ptr::null_mut(),
                c"RSA".as_ptr(),
                provider.as_ptr(),
            );
            let mut pkey: *mut sys::EVP_PKEY = ptr::null_mut();
            let ok = !pctx.is_null()
                && sys::EVP_PKEY_fromdata_init(pctx) == 1
                && sys::EVP_PKEY_fromdata(pctx, &mut pkey, selection, params) == 1;
            sys::EVP_PKEY_CTX_free(pctx);
            sys::OSSL_PARAM_free(params);
            sys::OSSL_PARAM_BLD_free(bld);
            for b in bns {
                sys::BN_free(b);
            }
            clear_errors();
            (ok && !pkey.is_null()).then(|| Pkey(pkey))
        }
    };
    let wd = import(c"provider=wd");
    let def = import(c"provider=default");
    if let Some(k) = &wd {
        assert!(bits(k) >= 0);
        if selection == sys::EVP_PKEY_KEYPAIR {
            compare_private(k);
        }
    }
    let names: Vec<&CStr> = fields.iter().map(|(k, _)| *k).collect();
    let whole = names.len() == 8 || names == [c"n", c"e", c"d"];
    if let (Some(d), None, true) = (&def, &wd, whole) {
        let b = bits(d);
        if selection == sys::EVP_PKEY_KEYPAIR && (512..=8192).contains(&b) && default_check(d, true)
        {
            panic!("a valid {b}-bit key pair the default provider imports is refused by wd");
        }
    }
}

/// DER (PKCS#8, RSAPrivateKey, SubjectPublicKeyInfo, RSAPublicKey) through libcrypto's
/// decoders, then into wd's keymgmt (the export an operation fetched from wd does): no
/// crash, and a private key the default provider finds valid gives its answers in wd.
pub fn key_der(data: &[u8]) {
    providers();
    // SAFETY: a decoder context and key made and freed here; the input pointer and
    // length are the decoder's to advance.
    let pkey = unsafe {
        let mut pkey: *mut sys::EVP_PKEY = ptr::null_mut();
        let dctx = OSSL_DECODER_CTX_new_for_pkey(
            &mut pkey,
            c"DER".as_ptr(),
            ptr::null(),
            c"RSA".as_ptr(),
            0,
            ptr::null_mut(),
            ptr::null(),
        );
        if dctx.is_null() {
            clear_errors();
            return;
        }
        let mut p = data.as_ptr();
        let mut len = data.len();
        let ok = OSSL_DECODER_from_data(dctx, &mut p, &mut len) == 1;
        OSSL_DECODER_CTX_free(dctx);
        clear_errors();
        if !ok || pkey.is_null() {
            return;
        }
        Pkey(pkey)
    };
    let b = bits(&pkey);
    if !(512..=16384).contains(&b) {
        return;
    }
    // Into wd: the signature and cipher inits export the key to wd's keymgmt.
    // SAFETY: a context on a live key, freed here.
    let in_wd = unsafe {
        let ctx = EVP_PKEY_CTX_new_from_pkey(ptr::null_mut(), pkey.0, c"provider=wd".as_ptr());
        let ok = !ctx.is_null() && sys::EVP_PKEY_encrypt_init(ctx) > 0;
        if !ctx.is_null() {
            sys::EVP_PKEY_CTX_free(ctx);
        }
        clear_errors();
        ok
    };
    let _ = in_wd;
    // SAFETY: asks whether the key holds a private part.
    let private = unsafe {
        let mut d: *mut sys::BIGNUM = ptr::null_mut();
        let r = sys::EVP_PKEY_get_bn_param(pkey.0, c"d".as_ptr(), &mut d) == 1;
        sys::BN_free(d);
        clear_errors();
        r
    };
    if private {
        compare_private(&pkey);
    }
}

/// The provider's configuration parser on arbitrary `key = value` lines: lines whose key
/// starts with `WD_` are the environment, the others the config section. No panic; the
/// same input gives the same answer; what loads describes itself and keeps its bounds.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut section: Vec<(String, String)> = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().to_string();
        if k.starts_with("WD_") {
            env.push((k, v.to_string()));
        } else {
            section.push((k, v.to_string()));
        }
    }
    let load = || {
        wd_provider::config::Config::load(
            |k| {
                section
                    .iter()
                    .rev()
                    .find(|(a, _)| a == k)
                    .map(|(_, v)| v.clone())
            },
            |k| {
                env.iter()
                    .rev()
                    .find(|(a, _)| a == k)
                    .map(|(_, v)| v.clone())
            },
        )
    };
    let a = load();
    let b = load();
    match (&a, &b) {
        (Ok(x), Ok(y)) => {
            assert_eq!(x.describe(), y.describe(), "not deterministic");
            assert!(!x.timeout.is_zero(), "a zero timeout loaded");
            assert!(x.queues >= 1, "no queues");
        }
        (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
        _ => panic!("not deterministic: {a:?} / {b:?}"),
    }
    let _ = wd_provider::config::Config::check_keys(section.iter().map(|(k, _)| k.as_str()));
}
