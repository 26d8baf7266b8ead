//! RSA asymmetric cipher: encrypt and decrypt with PKCS#1 v1.5, OAEP (digest, MGF1 digest,
//! label) or no padding; TLS RSA key exchange (`pkcs1-tls`) is handed whole to the default
//! provider, whose implicit rejection must stay constant time. Padding through libcrypto,
//! the exponentiation through `policy::raw`.

use std::ffi::{c_int, c_uchar, c_void};
use std::ptr;
use std::sync::Arc;

use crate::ctx::ProvCtx;
use crate::error::{entry, entry_void, fail, Error, Reason, Result};
use crate::ffi::{self, bytes, dispatch, END, OSSL_DISPATCH, OSSL_PARAM};
use crate::key::KeyMaterial;
use crate::keymgmt::keydata;
use crate::ossl::Md;
use crate::padding;
use crate::params::{self, Input, Output};
use crate::policy;
use crate::stats::{self, Counter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    None,
    Encrypt,
    Decrypt,
}

#[derive(Clone)]
struct CipherCtx {
    prov: Arc<ProvCtx>,
    key: Option<Arc<KeyMaterial>>,
    op: Op,
    pad: c_int,
    md: Option<(String, Md)>,
    mgf1: Option<(String, Md)>,
    label: Vec<u8>,
    tls_client_version: u32,
    tls_negotiated_version: u32,
}

impl CipherCtx {
    fn key(&self) -> Result<&Arc<KeyMaterial>> {
        self.key
            .as_ref()
            .ok_or_else(|| Error::new(Reason::NotInitialized, "cipher operation not initialized"))
    }

    fn init(&mut self, op: Op, provkey: *mut c_void, p: *const OSSL_PARAM) -> Result<()> {
        // SAFETY: the core passes keydata of our keymgmt.
        let kd = unsafe { keydata(provkey) }?;
        let key = kd
            .key()
            .ok_or_else(|| Error::new(Reason::InvalidKey, "empty key"))?;
        if op == Op::Decrypt && key.private.is_none() {
            return fail(Reason::InvalidKey, "decryption needs a private key");
        }
        self.key = Some(key);
        self.op = op;
        self.pad = ffi::RSA_PKCS1_PADDING;
        self.md = None;
        self.mgf1 = None;
        self.label.clear();
        self.tls_client_version = 0;
        self.tls_negotiated_version = 0;
        // SAFETY: the caller's terminated params.
        self.set_params(unsafe { Input::new(p) })
    }

    fn oaep_md(&mut self) -> Result<(Md, Md)> {
        if self.md.is_none() {
            self.md = Some(("SHA1".into(), self.prov.software()?.digest("SHA1")?));
        }
        let md = self.md.as_ref().expect("set above").1.clone();
        let mgf1 = self
            .mgf1
            .as_ref()
            .map_or_else(|| md.clone(), |m| m.1.clone());
        Ok((md, mgf1))
    }

    fn set_params(&mut self, input: Input<'_>) -> Result<()> {
        if let Some(p) = input.get(c"pad-mode") {
            self.pad = if p.is_utf8() {
                match p.utf8()?.as_str() {
                    "none" => ffi::RSA_NO_PADDING,
                    "pkcs1" => ffi::RSA_PKCS1_PADDING,
                    "oaep" | "oeap" => ffi::RSA_PKCS1_OAEP_PADDING,
                    "x931" => ffi::RSA_X931_PADDING,
                    "pkcs1-tls" => ffi::RSA_PKCS1_WITH_TLS_PADDING,
                    other => {
                        return fail(
                            Reason::InvalidParameter,
                            format!("unknown pad-mode {other:?}"),
                        )
                    }
                }
            } else {
                p.int()?
            };
            match self.pad {
                ffi::RSA_NO_PADDING | ffi::RSA_PKCS1_PADDING | ffi::RSA_PKCS1_OAEP_PADDING => {}
                ffi::RSA_PKCS1_WITH_TLS_PADDING if self.op == Op::Decrypt => {}
                other => {
                    return fail(
                        Reason::InvalidParameter,
                        format!("pad-mode {other} is not supported for RSA encryption by wd"),
                    )
                }
            }
        }
        if let Some(p) = input.get(c"digest") {
            let n = p.utf8()?;
            self.md = Some((n.clone(), self.prov.software()?.digest(&n)?));
        }
        if let Some(p) = input.get(c"mgf1-digest") {
            let n = p.utf8()?;
            self.mgf1 = Some((n.clone(), self.prov.software()?.digest(&n)?));
        }
        if let Some(p) = input.get(c"oaep-label") {
            self.label = p.octets()?;
        }
        if let Some(p) = input.get(c"tls-client-version") {
            self.tls_client_version = p.uint()?;
        }
        if let Some(p) = input.get(c"tls-negotiated-version") {
            self.tls_negotiated_version = p.uint()?;
        }
        // "digest-props" / "mgf1-digest-props" are accepted: digests always come from the
        // default provider of the child context.
        Ok(())
    }

    fn encrypt(&mut self, msg: &[u8]) -> Result<Vec<u8>> {
        if self.op != Op::Encrypt {
            return fail(Reason::NotInitialized, "encrypt without encrypt_init");
        }
        let key = self.key()?.clone();
        let k = key.size();
        let em = match self.pad {
            ffi::RSA_NO_PADDING => {
                if msg.len() != k {
                    return fail(
                        Reason::WrongInputLength,
                        format!("no padding needs exactly {k} bytes, got {}", msg.len()),
                    );
                }
                msg.to_vec()
            }
            ffi::RSA_PKCS1_PADDING => padding::add_type2(k, msg)?,
            ffi::RSA_PKCS1_OAEP_PADDING => {
                let (md, mgf1) = self.oaep_md()?;
                padding::add_oaep(k, msg, &self.label, &md, &mgf1)?
            }
            other => return fail(Reason::Unsupported, format!("pad-mode {other}")),
        };
        policy::raw(&key, false, &em)
    }

    fn decrypt(&mut self, ct: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.op != Op::Decrypt {
            return fail(Reason::NotInitialized, "decrypt without decrypt_init");
        }
        let key = self.key()?.clone();
        let k = key.size();
        if ct.len() != k {
            return fail(
                Reason::WrongInputLength,
                format!("ciphertext is {} bytes, the key needs {k}", ct.len()),
            );
        }
        if self.pad == ffi::RSA_PKCS1_WITH_TLS_PADDING {
            stats::bump(Counter::FallbackPadding);
            let sw = self.prov.software()?;
            return sw.decrypt_tls(
                key.software()?,
                ct,
                self.tls_client_version,
                self.tls_negotiated_version,
                out,
            );
        }
        let em = policy::raw(&key, true, ct)?;
        let msg = match self.pad {
            ffi::RSA_NO_PADDING => em,
            ffi::RSA_PKCS1_PADDING => padding::check_type2(&em)?,
            ffi::RSA_PKCS1_OAEP_PADDING => {
                let (md, mgf1) = self.oaep_md()?;
                padding::check_oaep(&em, &self.label, &md, &mgf1)?
            }
            other => return fail(Reason::Unsupported, format!("pad-mode {other}")),
        };
        if msg.len() > out.len() {
            return fail(
                Reason::BufferTooSmall,
                format!("need {} bytes, buffer has {}", msg.len(), out.len()),
            );
        }
        out[..msg.len()].copy_from_slice(&msg);
        Ok(msg.len())
    }

    fn get_params(&mut self, out: &Output) -> Result<()> {
        if let Some(s) = out.slot(c"pad-mode") {
            if s.wants_utf8() {
                s.utf8(match self.pad {
                    ffi::RSA_NO_PADDING => "none",
                    ffi::RSA_PKCS1_OAEP_PADDING => "oaep",
                    ffi::RSA_PKCS1_WITH_TLS_PADDING => "pkcs1-tls",
                    _ => "pkcs1",
                })?;
            } else {
                s.int(self.pad)?;
            }
        }
        if let Some(s) = out.slot(c"digest") {
            let (md, _) = self.oaep_md()?;
            let _ = md;
            s.utf8(self.md.as_ref().map_or("SHA1", |m| m.0.as_str()))?;
        }
        if let Some(s) = out.slot(c"mgf1-digest") {
            let name = self
                .mgf1
                .as_ref()
                .or(self.md.as_ref())
                .map_or("SHA1", |m| m.0.as_str())
                .to_string();
            s.utf8(&name)?;
        }
        if let Some(s) = out.slot(c"oaep-label") {
            s.octets(&self.label)?;
        }
        if let Some(s) = out.slot(c"tls-client-version") {
            s.uint(self.tls_client_version)?;
        }
        if let Some(s) = out.slot(c"tls-negotiated-version") {
            s.uint(self.tls_negotiated_version)?;
        }
        Ok(())
    }
}

/// Borrows a cipher context.
///
/// # Safety
/// `p` is NULL or a context made by `newctx` below and not yet freed.
unsafe fn cctx<'a>(p: *mut c_void) -> Result<&'a mut CipherCtx> {
    // SAFETY: per the contract; one context is never used by two threads at once.
    unsafe { (p as *mut CipherCtx).as_mut() }
        .ok_or_else(|| Error::new(Reason::NotInitialized, "NULL cipher context"))
}

unsafe extern "C" fn newctx(provctx: *mut c_void) -> *mut c_void {
    entry(c"wd_rsa_cipher_newctx", ptr::null_mut(), || {
        // SAFETY: our provctx.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        let c = CipherCtx {
            prov,
            key: None,
            op: Op::None,
            pad: ffi::RSA_PKCS1_PADDING,
            md: None,
            mgf1: None,
            label: Vec::new(),
            tls_client_version: 0,
            tls_negotiated_version: 0,
        };
        Ok(Box::into_raw(Box::new(c)).cast())
    })
}

unsafe extern "C" fn freectx(ctx: *mut c_void) {
    entry_void(c"wd_rsa_cipher_freectx", || {
        if !ctx.is_null() {
            // SAFETY: made by newctx/dupctx, freed once.
            drop(unsafe { Box::from_raw(ctx as *mut CipherCtx) });
        }
    })
}

unsafe extern "C" fn dupctx(ctx: *mut c_void) -> *mut c_void {
    entry(c"wd_rsa_cipher_dupctx", ptr::null_mut(), || {
        // SAFETY: our context.
        let c = unsafe { cctx(ctx) }?;
        Ok(Box::into_raw(Box::new(c.clone())).cast())
    })
}

unsafe extern "C" fn encrypt_init(
    ctx: *mut c_void,
    key: *mut c_void,
    p: *const OSSL_PARAM,
) -> c_int {
    // SAFETY: our context; key and params from the core.
    entry(c"wd_rsa_encrypt_init", 0, || {
        // SAFETY: our context; key and params from the core.
        unsafe { cctx(ctx) }?.init(Op::Encrypt, key, p).map(|_| 1)
    })
}

unsafe extern "C" fn decrypt_init(
    ctx: *mut c_void,
    key: *mut c_void,
    p: *const OSSL_PARAM,
) -> c_int {
    // SAFETY: as above.
    entry(c"wd_rsa_decrypt_init", 0, || {
        // SAFETY: as above.
        unsafe { cctx(ctx) }?.init(Op::Decrypt, key, p).map(|_| 1)
    })
}

unsafe extern "C" fn encrypt(
    ctx: *mut c_void,
    out: *mut c_uchar,
    outlen: *mut usize,
    outsize: usize,
    input: *const c_uchar,
    inlen: usize,
) -> c_int {
    entry(c"wd_rsa_encrypt", 0, || {
        // SAFETY: our context.
        let c = unsafe { cctx(ctx) }?;
        if outlen.is_null() {
            return fail(Reason::MissingParameter, "NULL output length");
        }
        let k = c.key()?.size();
        if out.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { *outlen = k };
            return Ok(1);
        }
        if outsize < k {
            return fail(
                Reason::BufferTooSmall,
                format!("need {k} bytes, buffer has {outsize}"),
            );
        }
        // SAFETY: the caller's input.
        let ct = c.encrypt(unsafe { bytes(input, inlen) })?;
        // SAFETY: out writable for outsize ≥ k bytes; outlen writable.
        unsafe {
            ptr::copy_nonoverlapping(ct.as_ptr(), out, ct.len());
            *outlen = ct.len();
        }
        Ok(1)
    })
}

unsafe extern "C" fn decrypt(
    ctx: *mut c_void,
    out: *mut c_uchar,
    outlen: *mut usize,
    outsize: usize,
    input: *const c_uchar,
    inlen: usize,
) -> c_int {
    entry(c"wd_rsa_decrypt", 0, || {
        // SAFETY: our context.
        let c = unsafe { cctx(ctx) }?;
        if outlen.is_null() {
            return fail(Reason::MissingParameter, "NULL output length");
        }
        let k = c.key()?.size();
        if out.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { *outlen = k };
            return Ok(1);
        }
        // SAFETY: out writable for outsize bytes; input readable.
        let (outbuf, input) = unsafe {
            (
                std::slice::from_raw_parts_mut(out, outsize),
                bytes(input, inlen),
            )
        };
        let n = c.decrypt(input, outbuf)?;
        // SAFETY: outlen checked non-NULL.
        unsafe { *outlen = n };
        Ok(1)
    })
}

params::ctx_params_entries!(
    cctx,
    c"wd_rsa_cipher_get_ctx_params",
    c"wd_rsa_cipher_set_ctx_params"
);

unsafe extern "C" fn gettable_ctx_params(
    _ctx: *mut c_void,
    _prov: *mut c_void,
) -> *const OSSL_PARAM {
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

unsafe extern "C" fn settable_ctx_params(
    _ctx: *mut c_void,
    _prov: *mut c_void,
) -> *const OSSL_PARAM {
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
