//! RSA signature: sign, verify, verify_recover, digest-sign and digest-verify, with PKCS#1
//! v1.5, PSS (salt length as a number or `digest`, `max`, `auto`, `auto-digestmax`) and no
//! padding; the context parameters of OpenSSL's own RSA signature (digest, properties,
//! pad-mode, saltlen, mgf1-digest, mgf1-properties; algorithm-id to get). Padding through
//! libcrypto, the exponentiation through `policy::raw`.

use std::ffi::{c_int, c_uchar, c_void, CStr};
use std::ptr;
use std::sync::Arc;

use foreign_types::ForeignType;

use crate::ctx::ProvCtx;
use crate::digestinfo;
use crate::error::{entry, entry_void, fail, Error, Reason, Result};
use crate::ffi::{self, bytes, dispatch, END, OSSL_DISPATCH, OSSL_PARAM};
use crate::key::KeyMaterial;
use crate::keymgmt::keydata;
use crate::ossl::{Md, MdCtx, ParamBld, Rsa};
use crate::padding;
use crate::params::{self, Input, Output};
use crate::policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    None,
    Sign,
    Verify,
    VerifyRecover,
}

/// PSS salt length setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Salt {
    Digest,
    Max,
    Auto,
    AutoDigestMax,
    Len(i32),
}

impl Salt {
    fn parse_text(s: &str) -> Result<Salt> {
        Ok(match s {
            "digest" => Salt::Digest,
            "max" => Salt::Max,
            "auto" => Salt::Auto,
            "auto-digestmax" => Salt::AutoDigestMax,
            n => match n.parse::<i32>() {
                Ok(v) => Salt::from_int(v)?,
                Err(_) => {
                    return fail(
                        Reason::InvalidParameter,
                        format!("invalid PSS salt length {n:?}"),
                    )
                }
            },
        })
    }

    fn from_int(v: i32) -> Result<Salt> {
        Ok(match v {
            -1 => Salt::Digest,
            -2 => Salt::Auto,
            -3 => Salt::Max,
            -4 => Salt::AutoDigestMax,
            n if n >= 0 => Salt::Len(n),
            n => {
                return fail(
                    Reason::InvalidParameter,
                    format!("invalid PSS salt length {n}"),
                )
            }
        })
    }

    fn as_int(self) -> i32 {
        match self {
            Salt::Digest => -1,
            Salt::Auto => -2,
            Salt::Max => -3,
            Salt::AutoDigestMax => -4,
            Salt::Len(n) => n,
        }
    }

    fn as_text(self) -> String {
        match self {
            Salt::Digest => "digest".into(),
            Salt::Max => "max".into(),
            Salt::Auto => "auto".into(),
            Salt::AutoDigestMax => "auto-digestmax".into(),
            Salt::Len(n) => n.to_string(),
        }
    }
}

struct SigCtx {
    prov: Arc<ProvCtx>,
    key: Option<Arc<KeyMaterial>>,
    rsa: Option<Arc<Rsa>>,
    op: Op,
    pad: c_int,
    md: Option<Md>,
    md_name: Option<String>,
    mgf1: Option<Md>,
    mgf1_name: Option<String>,
    salt: Salt,
    mdctx: Option<MdCtx>,
}

impl SigCtx {
    fn key(&self) -> Result<&Arc<KeyMaterial>> {
        self.key.as_ref().ok_or_else(|| {
            Error::new(
                Reason::NotInitialized,
                "signature operation not initialized",
            )
        })
    }

    fn set_md(&mut self, name: &str) -> Result<()> {
        let md = self.prov.software()?.digest(name)?;
        if digestinfo::prefix(md.nid()).is_none() && self.pad == ffi::RSA_PKCS1_PADDING {
            return fail(
                Reason::InvalidParameter,
                format!("digest {name} is not allowed with PKCS#1 v1.5"),
            );
        }
        self.md = Some(md);
        self.md_name = Some(name.to_string());
        Ok(())
    }

    fn pss_md(&mut self) -> Result<(Md, Md)> {
        if self.md.is_none() {
            self.set_md("SHA1")?;
        }
        let md = self.md.clone().expect("set above");
        let mgf1 = match &self.mgf1 {
            Some(m) => m.clone(),
            None => md.clone(),
        };
        Ok((md, mgf1))
    }

    fn rsa(&mut self) -> Result<Arc<Rsa>> {
        if let Some(r) = &self.rsa {
            return Ok(r.clone());
        }
        let k = self.key()?.clone();
        let r = Arc::new(Rsa::public(&k.n, &k.e)?);
        self.rsa = Some(r.clone());
        Ok(r)
    }

    /// Largest PSS salt for this key and digest.
    fn max_salt(&self, hlen: usize) -> Result<i32> {
        let k = self.key()?;
        let em_bits = k.bits as usize - 1;
        let em_len = em_bits.div_ceil(8);
        let max = em_len as i64 - hlen as i64 - 2;
        if max < 0 {
            return fail(
                Reason::DataTooLarge,
                "key too small for PSS with this digest",
            );
        }
        Ok(max as i32)
    }

    fn init(&mut self, op: Op, provkey: *mut c_void, p: *const OSSL_PARAM) -> Result<()> {
        if !provkey.is_null() {
            // SAFETY: the core passes keydata of our keymgmt.
            let kd = unsafe { keydata(provkey) }?;
            let key = kd
                .key()
                .ok_or_else(|| Error::new(Reason::InvalidKey, "empty key"))?;
            if op == Op::Sign && key.private.is_none() {
                return fail(Reason::InvalidKey, "signing needs a private key");
            }
            self.key = Some(key);
            self.rsa = None;
        } else if self.key.is_none() {
            return fail(Reason::NotInitialized, "no key given");
        }
        self.op = op;
        self.pad = ffi::RSA_PKCS1_PADDING;
        self.md = None;
        self.md_name = None;
        self.mgf1 = None;
        self.mgf1_name = None;
        self.salt = Salt::Auto;
        self.mdctx = None;
        // SAFETY: the caller's terminated params.
        self.set_params(unsafe { Input::new(p) })
    }

    fn set_params(&mut self, input: Input<'_>) -> Result<()> {
        if let Some(p) = input.get(c"pad-mode") {
            self.pad = if p.is_utf8() {
                match p.utf8()?.as_str() {
                    "none" => ffi::RSA_NO_PADDING,
                    "pkcs1" => ffi::RSA_PKCS1_PADDING,
                    "x931" => ffi::RSA_X931_PADDING,
                    "pss" => ffi::RSA_PKCS1_PSS_PADDING,
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
                ffi::RSA_NO_PADDING | ffi::RSA_PKCS1_PADDING | ffi::RSA_PKCS1_PSS_PADDING => {}
                ffi::RSA_X931_PADDING => {
                    return fail(
                        Reason::Unsupported,
                        "X9.31 signature padding is not supported by wd",
                    )
                }
                other => {
                    return fail(
                        Reason::InvalidParameter,
                        format!("pad-mode {other} is not a signature padding"),
                    )
                }
            }
            if self.pad == ffi::RSA_PKCS1_PSS_PADDING && self.op == Op::VerifyRecover {
                return fail(
                    Reason::InvalidParameter,
                    "PSS cannot be used with verify-recover",
                );
            }
        }
        if let Some(p) = input.get(c"digest") {
            let name = p.utf8()?;
            self.set_md(&name)?;
        }
        if let Some(p) = input.get(c"mgf1-digest") {
            let name = p.utf8()?;
            self.mgf1 = Some(self.prov.software()?.digest(&name)?);
            self.mgf1_name = Some(name);
        }
        if let Some(p) = input.get(c"saltlen") {
            self.salt = if p.is_utf8() {
                Salt::parse_text(&p.utf8()?)?
            } else {
                Salt::from_int(p.int()?)?
            };
        }
        // "properties" and "mgf1-properties" are accepted: digests always come from the
        // default provider of the child context (see software.rs).
        Ok(())
    }

    fn encode(&mut self, tbs: &[u8]) -> Result<Vec<u8>> {
        let k = self.key()?.size();
        match self.pad {
            ffi::RSA_NO_PADDING => {
                if tbs.len() != k {
                    return fail(
                        Reason::WrongInputLength,
                        format!("no padding needs exactly {k} bytes, got {}", tbs.len()),
                    );
                }
                Ok(tbs.to_vec())
            }
            ffi::RSA_PKCS1_PADDING => {
                let data = match &self.md {
                    Some(md) => {
                        if tbs.len() != md.size() {
                            return fail(
                                Reason::WrongInputLength,
                                format!(
                                    "{} needs a {}-byte digest, got {} bytes",
                                    self.md_name.as_deref().unwrap_or("digest"),
                                    md.size(),
                                    tbs.len()
                                ),
                            );
                        }
                        digestinfo::encode(md.nid(), tbs).ok_or_else(|| {
                            Error::new(Reason::InvalidParameter, "digest has no PKCS#1 encoding")
                        })?
                    }
                    None => tbs.to_vec(),
                };
                padding::add_type1(k, &data)
            }
            ffi::RSA_PKCS1_PSS_PADDING => {
                let (md, mgf1) = self.pss_md()?;
                let slen = match self.salt {
                    Salt::Digest => md.size() as i32,
                    Salt::Max | Salt::Auto => self.max_salt(md.size())?,
                    Salt::AutoDigestMax => self.max_salt(md.size())?.min(md.size() as i32),
                    Salt::Len(n) => n,
                };
                let rsa = self.rsa()?;
                padding::add_pss(&rsa, k, tbs, &md, &mgf1, slen)
            }
            other => fail(Reason::Unsupported, format!("pad-mode {other}")),
        }
    }

    fn sign(&mut self, tbs: &[u8]) -> Result<Vec<u8>> {
        if self.op != Op::Sign {
            return fail(Reason::NotInitialized, "sign without sign_init");
        }
        let em = self.encode(tbs)?;
        let key = self.key()?.clone();
        policy::raw(&key, true, &em)
    }

    fn recover(&self, sig: &[u8]) -> Result<Vec<u8>> {
        let key = self.key()?;
        let k = key.size();
        if sig.len() > k {
            return fail(
                Reason::WrongInputLength,
                format!("signature is {} bytes, the key's is {k}", sig.len()),
            );
        }
        let mut s = vec![0u8; k - sig.len()];
        s.extend_from_slice(sig);
        policy::raw(key, false, &s)
    }

    fn verify(&mut self, sig: &[u8], tbs: &[u8]) -> Result<bool> {
        if self.op != Op::Verify {
            return fail(Reason::NotInitialized, "verify without verify_init");
        }
        let em = match self.recover(sig) {
            Ok(em) => em,
            Err(e) if e.reason == Reason::DataTooLarge => return Ok(false),
            Err(e) => return Err(e),
        };
        match self.pad {
            ffi::RSA_PKCS1_PSS_PADDING => {
                let (md, mgf1) = self.pss_md()?;
                let slen = match self.salt {
                    Salt::Digest => -1,
                    Salt::Auto | Salt::AutoDigestMax => -2,
                    Salt::Max => -3,
                    Salt::Len(n) => n,
                };
                let rsa = self.rsa()?;
                padding::verify_pss(&rsa, tbs, &md, &mgf1, &em, slen)
            }
            _ => {
                let want = self.encode(tbs)?;
                Ok(want == em)
            }
        }
    }

    fn verify_recover(&mut self, sig: &[u8]) -> Result<Vec<u8>> {
        if self.op != Op::VerifyRecover {
            return fail(
                Reason::NotInitialized,
                "verify_recover without verify_recover_init",
            );
        }
        let em = self.recover(sig)?;
        match self.pad {
            ffi::RSA_NO_PADDING => Ok(em),
            ffi::RSA_PKCS1_PADDING => {
                let data = padding::check_type1(&em)?.ok_or_else(|| {
                    Error::new(Reason::BadSignature, "not a PKCS#1 v1.5 signature block")
                })?;
                match &self.md {
                    None => Ok(data),
                    Some(md) => {
                        let prefix = digestinfo::prefix(md.nid()).unwrap_or(&[]);
                        if data.len() != prefix.len() + md.size() || !data.starts_with(prefix) {
                            return fail(
                                Reason::BadSignature,
                                "DigestInfo does not match the digest",
                            );
                        }
                        Ok(data[prefix.len()..].to_vec())
                    }
                }
            }
            other => fail(
                Reason::Unsupported,
                format!("pad-mode {other} with verify-recover"),
            ),
        }
    }

    fn algorithm_id(&mut self) -> Result<Vec<u8>> {
        let key = self.key()?.clone();
        let mut bld = ParamBld::new()?;
        bld.push_int(c"pad-mode", self.pad)?;
        bld.push_utf8(c"digest", self.md_name.as_deref().unwrap_or("SHA1"))?;
        if self.pad == ffi::RSA_PKCS1_PSS_PADDING {
            bld.push_int(c"saltlen", self.salt.as_int())?;
            if let Some(m) = &self.mgf1_name {
                bld.push_utf8(c"mgf1-digest", m)?;
            }
        }
        let settings = bld.to_params()?;
        self.prov
            .software()?
            .signature_param(key.software()?, &settings, c"algorithm-id")
    }

    fn get_params(&mut self, out: &Output) -> Result<()> {
        if let Some(s) = out.slot(c"pad-mode") {
            if s.wants_utf8() {
                s.utf8(match self.pad {
                    ffi::RSA_NO_PADDING => "none",
                    ffi::RSA_PKCS1_PSS_PADDING => "pss",
                    _ => "pkcs1",
                })?;
            } else {
                s.int(self.pad)?;
            }
        }
        if let Some(s) = out.slot(c"digest") {
            s.utf8(self.md_name.as_deref().unwrap_or(""))?;
        }
        if let Some(s) = out.slot(c"mgf1-digest") {
            s.utf8(
                self.mgf1_name
                    .as_deref()
                    .or(self.md_name.as_deref())
                    .unwrap_or("SHA1"),
            )?;
        }
        if let Some(s) = out.slot(c"saltlen") {
            if s.wants_utf8() {
                s.utf8(&self.salt.as_text())?;
            } else {
                s.int(self.salt.as_int())?;
            }
        }
        if let Some(s) = out.slot(c"algorithm-id") {
            let aid = self.algorithm_id()?;
            s.octets(&aid)?;
        }
        Ok(())
    }

    fn duplicate(&self) -> Result<SigCtx> {
        Ok(SigCtx {
            prov: self.prov.clone(),
            key: self.key.clone(),
            rsa: self.rsa.clone(),
            op: self.op,
            pad: self.pad,
            md: self.md.clone(),
            md_name: self.md_name.clone(),
            mgf1: self.mgf1.clone(),
            mgf1_name: self.mgf1_name.clone(),
            salt: self.salt,
            mdctx: match &self.mdctx {
                Some(c) => Some(c.duplicate()?),
                None => None,
            },
        })
    }
}

/// Borrows a signature context.
///
/// # Safety
/// `p` is NULL or a context made by `newctx` below and not yet freed.
unsafe fn sctx<'a>(p: *mut c_void) -> Result<&'a mut SigCtx> {
    // SAFETY: per the contract; the core never uses one context from two threads at once.
    unsafe { (p as *mut SigCtx).as_mut() }
        .ok_or_else(|| Error::new(Reason::NotInitialized, "NULL signature context"))
}

unsafe extern "C" fn newctx(provctx: *mut c_void, _propq: *const std::ffi::c_char) -> *mut c_void {
    entry(c"wd_rsa_sig_newctx", ptr::null_mut(), || {
        // SAFETY: our provctx.
        let prov = unsafe { ProvCtx::from_ptr(provctx) }?;
        let c = SigCtx {
            prov,
            key: None,
            rsa: None,
            op: Op::None,
            pad: ffi::RSA_PKCS1_PADDING,
            md: None,
            md_name: None,
            mgf1: None,
            mgf1_name: None,
            salt: Salt::Auto,
            mdctx: None,
        };
        Ok(Box::into_raw(Box::new(c)).cast())
    })
}

unsafe extern "C" fn freectx(ctx: *mut c_void) {
    entry_void(c"wd_rsa_sig_freectx", || {
        if !ctx.is_null() {
            // SAFETY: made by newctx/dupctx, freed once.
            drop(unsafe { Box::from_raw(ctx as *mut SigCtx) });
        }
    })
}

unsafe extern "C" fn dupctx(ctx: *mut c_void) -> *mut c_void {
    entry(c"wd_rsa_sig_dupctx", ptr::null_mut(), || {
        // SAFETY: our context.
        let c = unsafe { sctx(ctx) }?;
        Ok(Box::into_raw(Box::new(c.duplicate()?)).cast())
    })
}

unsafe extern "C" fn sign_init(ctx: *mut c_void, key: *mut c_void, p: *const OSSL_PARAM) -> c_int {
    // SAFETY: our context; key and params from the core.
    entry(c"wd_rsa_sign_init", 0, || {
        // SAFETY: our context; key and params from the core.
        unsafe { sctx(ctx) }?.init(Op::Sign, key, p).map(|_| 1)
    })
}

unsafe extern "C" fn verify_init(
    ctx: *mut c_void,
    key: *mut c_void,
    p: *const OSSL_PARAM,
) -> c_int {
    // SAFETY: as above.
    entry(c"wd_rsa_verify_init", 0, || {
        // SAFETY: as above.
        unsafe { sctx(ctx) }?.init(Op::Verify, key, p).map(|_| 1)
    })
}

unsafe extern "C" fn verify_recover_init(
    ctx: *mut c_void,
    key: *mut c_void,
    p: *const OSSL_PARAM,
) -> c_int {
    // SAFETY: as above.
    entry(c"wd_rsa_verify_recover_init", 0, || {
        // SAFETY: as above.
        unsafe { sctx(ctx) }?
            .init(Op::VerifyRecover, key, p)
            .map(|_| 1)
    })
}

/// The output convention of sign, digest-sign-final and verify-recover: `outlen` is required (else
/// `MissingParameter` with `missing`); a NULL `out` asks only for the size, the modulus
/// length; otherwise `produce` makes the output, which is copied into `out` if it fits.
///
/// # Safety
/// `outlen` is NULL or writable; `out` is NULL or writable for `cap` bytes.
unsafe fn produce_into(
    c: &mut SigCtx,
    out: *mut c_uchar,
    outlen: *mut usize,
    cap: usize,
    missing: &str,
    produce: impl FnOnce(&mut SigCtx) -> Result<Vec<u8>>,
) -> Result<c_int> {
    if outlen.is_null() {
        return fail(Reason::MissingParameter, missing);
    }
    if out.is_null() {
        // SAFETY: checked non-NULL.
        unsafe { *outlen = c.key()?.size() };
        return Ok(1);
    }
    let data = produce(c)?;
    if data.len() > cap {
        return fail(
            Reason::BufferTooSmall,
            format!("need {} bytes, buffer has {cap}", data.len()),
        );
    }
    // SAFETY: per the contract, out is writable for cap ≥ data.len() bytes; outlen checked
    // non-NULL.
    unsafe {
        ptr::copy_nonoverlapping(data.as_ptr(), out, data.len());
        *outlen = data.len();
    }
    Ok(1)
}

unsafe extern "C" fn sign(
    ctx: *mut c_void,
    sig: *mut c_uchar,
    siglen: *mut usize,
    sigsize: usize,
    tbs: *const c_uchar,
    tbslen: usize,
) -> c_int {
    entry(c"wd_rsa_sign", 0, || {
        // SAFETY: our context; the caller's input buffer.
        let (c, tbs) = unsafe { (sctx(ctx)?, bytes(tbs, tbslen)) };
        // SAFETY: the caller's sig (NULL or writable for sigsize bytes) and siglen.
        unsafe {
            produce_into(c, sig, siglen, sigsize, "NULL signature length", |c| {
                c.sign(tbs)
            })
        }
    })
}

unsafe extern "C" fn verify(
    ctx: *mut c_void,
    sig: *const c_uchar,
    siglen: usize,
    tbs: *const c_uchar,
    tbslen: usize,
) -> c_int {
    entry(c"wd_rsa_verify", 0, || {
        // SAFETY: our context; the caller's buffers.
        let (c, sig, tbs) = unsafe { (sctx(ctx)?, bytes(sig, siglen), bytes(tbs, tbslen)) };
        if c.verify(sig, tbs)? {
            Ok(1)
        } else {
            fail(Reason::BadSignature, "RSA signature verification failed")
        }
    })
}

unsafe extern "C" fn verify_recover(
    ctx: *mut c_void,
    rout: *mut c_uchar,
    routlen: *mut usize,
    routsize: usize,
    sig: *const c_uchar,
    siglen: usize,
) -> c_int {
    entry(c"wd_rsa_verify_recover", 0, || {
        // SAFETY: our context; the caller's signature.
        let (c, sig) = unsafe { (sctx(ctx)?, bytes(sig, siglen)) };
        // SAFETY: the caller's rout (NULL or writable for routsize bytes) and routlen.
        unsafe {
            produce_into(c, rout, routlen, routsize, "NULL output length", |c| {
                c.verify_recover(sig)
            })
        }
    })
}

fn digest_init(
    c: &mut SigCtx,
    op: Op,
    mdname: *const std::ffi::c_char,
    key: *mut c_void,
    p: *const OSSL_PARAM,
) -> Result<()> {
    c.init(op, key, ptr::null())?;
    let name = if mdname.is_null() {
        "SHA256".to_string()
    } else {
        // SAFETY: a NUL-terminated name from the core.
        unsafe { CStr::from_ptr(mdname) }
            .to_string_lossy()
            .into_owned()
    };
    c.set_md(&name)?;
    // SAFETY: the caller's params.
    c.set_params(unsafe { Input::new(p) })?;
    let md = c.md.as_ref().expect("set above");
    c.mdctx = Some(MdCtx::start(md)?);
    Ok(())
}

unsafe extern "C" fn digest_sign_init(
    ctx: *mut c_void,
    mdname: *const std::ffi::c_char,
    key: *mut c_void,
    p: *const OSSL_PARAM,
) -> c_int {
    // SAFETY: our context.
    entry(c"wd_rsa_digest_sign_init", 0, || {
        // SAFETY: our context.
        digest_init(unsafe { sctx(ctx) }?, Op::Sign, mdname, key, p).map(|_| 1)
    })
}

unsafe extern "C" fn digest_verify_init(
    ctx: *mut c_void,
    mdname: *const std::ffi::c_char,
    key: *mut c_void,
    p: *const OSSL_PARAM,
) -> c_int {
    // SAFETY: our context.
    entry(c"wd_rsa_digest_verify_init", 0, || {
        // SAFETY: our context.
        digest_init(unsafe { sctx(ctx) }?, Op::Verify, mdname, key, p).map(|_| 1)
    })
}

unsafe extern "C" fn digest_update(ctx: *mut c_void, data: *const c_uchar, len: usize) -> c_int {
    entry(c"wd_rsa_digest_update", 0, || {
        // SAFETY: our context; the caller's data.
        let (c, data) = unsafe { (sctx(ctx)?, bytes(data, len)) };
        let m = c
            .mdctx
            .as_ref()
            .ok_or_else(|| Error::new(Reason::NotInitialized, "digest update without init"))?;
        m.update(data)?;
        Ok(1)
    })
}

unsafe extern "C" fn digest_sign_final(
    ctx: *mut c_void,
    sig: *mut c_uchar,
    siglen: *mut usize,
    sigsize: usize,
) -> c_int {
    entry(c"wd_rsa_digest_sign_final", 0, || {
        // SAFETY: our context.
        let c = unsafe { sctx(ctx) }?;
        // SAFETY: the caller's sig (NULL or writable for sigsize bytes) and siglen.
        unsafe {
            produce_into(c, sig, siglen, sigsize, "NULL signature length", |c| {
                let m = c.mdctx.as_ref().ok_or_else(|| {
                    Error::new(Reason::NotInitialized, "digest sign final without init")
                })?;
                let h = m.finish()?;
                c.sign(&h)
            })
        }
    })
}

unsafe extern "C" fn digest_verify_final(
    ctx: *mut c_void,
    sig: *const c_uchar,
    siglen: usize,
) -> c_int {
    entry(c"wd_rsa_digest_verify_final", 0, || {
        // SAFETY: our context; the caller's signature.
        let (c, sig) = unsafe { (sctx(ctx)?, bytes(sig, siglen)) };
        let m = c.mdctx.as_ref().ok_or_else(|| {
            Error::new(Reason::NotInitialized, "digest verify final without init")
        })?;
        let h = m.finish()?;
        if c.verify(sig, &h)? {
            Ok(1)
        } else {
            fail(Reason::BadSignature, "RSA signature verification failed")
        }
    })
}

params::ctx_params_entries!(
    sctx,
    c"wd_rsa_sig_get_ctx_params",
    c"wd_rsa_sig_set_ctx_params"
);

unsafe extern "C" fn gettable_ctx_params(
    _ctx: *mut c_void,
    _prov: *mut c_void,
) -> *const OSSL_PARAM {
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

unsafe extern "C" fn settable_ctx_params(
    _ctx: *mut c_void,
    _prov: *mut c_void,
) -> *const OSSL_PARAM {
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

unsafe extern "C" fn get_ctx_md_params(ctx: *mut c_void, out: *mut OSSL_PARAM) -> c_int {
    entry(c"wd_rsa_sig_get_ctx_md_params", 0, || {
        // SAFETY: our context.
        let c = unsafe { sctx(ctx) }?;
        let m = c
            .mdctx
            .as_ref()
            .ok_or_else(|| Error::new(Reason::NotInitialized, "no digest in progress"))?;
        // SAFETY: valid digest context; the caller's array.
        Ok(unsafe { ffi::EVP_MD_CTX_get_params(m.as_ptr(), out) })
    })
}

unsafe extern "C" fn set_ctx_md_params(ctx: *mut c_void, p: *const OSSL_PARAM) -> c_int {
    entry(c"wd_rsa_sig_set_ctx_md_params", 0, || {
        // SAFETY: our context.
        let c = unsafe { sctx(ctx) }?;
        let m = c
            .mdctx
            .as_ref()
            .ok_or_else(|| Error::new(Reason::NotInitialized, "no digest in progress"))?;
        // SAFETY: valid digest context; the caller's array.
        Ok(unsafe { ffi::EVP_MD_CTX_set_params(m.as_ptr(), p) })
    })
}

unsafe extern "C" fn gettable_ctx_md_params(ctx: *mut c_void) -> *const OSSL_PARAM {
    entry(c"wd_rsa_sig_gettable_ctx_md_params", ptr::null(), || {
        // SAFETY: our context.
        let c = unsafe { sctx(ctx) }?;
        // SAFETY: valid digest.
        Ok(c.md.as_ref().map_or(ptr::null(), |m| unsafe {
            ffi::EVP_MD_gettable_ctx_params(m.as_ptr())
        }))
    })
}

unsafe extern "C" fn settable_ctx_md_params(ctx: *mut c_void) -> *const OSSL_PARAM {
    entry(c"wd_rsa_sig_settable_ctx_md_params", ptr::null(), || {
        // SAFETY: our context.
        let c = unsafe { sctx(ctx) }?;
        // SAFETY: valid digest.
        Ok(c.md.as_ref().map_or(ptr::null(), |m| unsafe {
            ffi::EVP_MD_settable_ctx_params(m.as_ptr())
        }))
    })
}

type P = *mut c_void;
type U = *mut c_uchar;
type CU = *const c_uchar;
type S = *const std::ffi::c_char;
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
