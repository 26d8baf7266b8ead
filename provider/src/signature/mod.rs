//! RSA signature: sign, verify, verify_recover, digest-sign and digest-verify, with PKCS#1
//! v1.5, PSS (salt length as a number or `digest`, `max`, `auto`, `auto-digestmax`) and no
//! padding; the context parameters of OpenSSL's own RSA signature (digest, properties,
//! pad-mode, saltlen, mgf1-digest, mgf1-properties; algorithm-id to get). Padding through
//! libcrypto, the exponentiation through `policy::raw`. An RSA-PSS key signs with PSS only,
//! and within its restrictions as OpenSSL's own signature enforces them: the key's digest
//! and MGF1 digest (another is refused), a salt no shorter than its minimum (the default),
//! no automatic salt length when verifying.
//!
//! This file is the operation's logic, in safe code; `ffi.rs` holds its C entry points and
//! dispatch table.

// `deny`, not `forbid`: a forbid would extend to the child `ffi`, which must use unsafe.
#![deny(unsafe_code)]

pub mod ffi;

use std::ffi::c_int;
use std::sync::Arc;

use crate::ctx::ProvCtx;
use crate::digestinfo;
use crate::error::{fail, Error, Reason, Result};
use crate::ffi::{RSA_NO_PADDING, RSA_PKCS1_PADDING, RSA_PKCS1_PSS_PADDING, RSA_X931_PADDING};
use crate::key::KeyMaterial;
use crate::keymgmt::pss::PssParams;
use crate::keymgmt::{KeyData, KeyType};
use crate::ossl::{Md, MdCtx, ParamBld, Rsa};
use crate::outbuf::OutBuf;
use crate::padding;
use crate::params::{Input, Output};
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
    /// The key is an RSA-PSS key.
    pss_key: bool,
    /// Its restrictions, if it has any.
    restricted: Option<PssParams>,
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
        if digestinfo::prefix(md.nid()).is_none() && self.pad == RSA_PKCS1_PADDING {
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

    fn new(prov: Arc<ProvCtx>) -> SigCtx {
        SigCtx {
            prov,
            key: None,
            rsa: None,
            op: Op::None,
            pad: RSA_PKCS1_PADDING,
            md: None,
            md_name: None,
            mgf1: None,
            mgf1_name: None,
            salt: Salt::Auto,
            mdctx: None,
            pss_key: false,
            restricted: None,
        }
    }

    /// Starts operation `op` with `key` (None: the key of the previous operation) and the
    /// settings in `input`.
    fn init(&mut self, op: Op, key: Option<&KeyData>, input: Input<'_>) -> Result<()> {
        if let Some(kd) = key {
            let key = kd
                .key()
                .ok_or_else(|| Error::new(Reason::InvalidKey, "empty key"))?;
            if op == Op::Sign && key.private.is_none() {
                return fail(Reason::InvalidKey, "signing needs a private key");
            }
            self.key = Some(key);
            self.rsa = None;
            self.pss_key = kd.kind() == KeyType::RsaPss;
            self.restricted = kd.pss_restrictions();
        } else if self.key.is_none() {
            return fail(Reason::NotInitialized, "no key given");
        }
        self.op = op;
        self.pad = RSA_PKCS1_PADDING;
        self.md = None;
        self.md_name = None;
        self.mgf1 = None;
        self.mgf1_name = None;
        self.salt = Salt::Auto;
        self.mdctx = None;
        if self.pss_key {
            self.pad = RSA_PKCS1_PSS_PADDING;
        }
        if let Some(r) = self.restricted.clone() {
            // As OpenSSL's rsa_signverify_init: the restrictions are the settings, the
            // minimum salt length within what the key and digest allow.
            self.md = Some(r.md.md.clone());
            self.md_name = Some(r.md.name.to_string());
            self.mgf1 = Some(r.mgf1.md.clone());
            self.mgf1_name = Some(r.mgf1.name.to_string());
            let k = self.key()?;
            let mut max = k.size() as i64 - r.md.md.size() as i64;
            if k.bits & 7 == 1 {
                max -= 1;
            }
            if i64::from(r.min_salt) > max {
                return fail(
                    Reason::InvalidParameter,
                    format!(
                        "the RSA-PSS key's minimum salt length {} exceeds the largest \
                         possible ({max})",
                        r.min_salt
                    ),
                );
            }
            self.salt = Salt::Len(r.min_salt);
        }
        self.set_params(input)
    }

    /// Refuses digest `md` (for the message, or for MGF1 if `mgf1`) when the key is
    /// restricted to another.
    fn check_restricted_md(&self, name: &str, md: &Md, mgf1: bool) -> Result<()> {
        let Some(r) = &self.restricted else {
            return Ok(());
        };
        let want = if mgf1 { &r.mgf1 } else { &r.md };
        if md.nid() != want.md.nid() {
            return fail(
                Reason::InvalidParameter,
                format!(
                    "{}digest {name} not allowed: the RSA-PSS key is restricted to {}",
                    if mgf1 { "MGF1 " } else { "" },
                    want.name
                ),
            );
        }
        Ok(())
    }

    /// Refuses salt length `salt` when below the key's minimum (or automatic, for
    /// verification), as OpenSSL's rsa_set_ctx_params.
    fn check_restricted_salt(&self, salt: Salt) -> Result<()> {
        let Some(r) = &self.restricted else {
            return Ok(());
        };
        let too_small = |n: i64| {
            fail(
                Reason::InvalidParameter,
                format!(
                    "PSS salt length {n} is below the RSA-PSS key's minimum {}",
                    r.min_salt
                ),
            )
        };
        match salt {
            Salt::Auto | Salt::AutoDigestMax if self.op == Op::Verify => fail(
                Reason::InvalidParameter,
                "cannot use an automatic salt length with a restricted RSA-PSS key",
            ),
            Salt::Digest => {
                let hlen = self.md.as_ref().map_or(r.md.md.size(), |m| m.size());
                if r.min_salt as usize > hlen {
                    return too_small(hlen as i64);
                }
                Ok(())
            }
            Salt::Len(n) if n < r.min_salt => too_small(i64::from(n)),
            _ => Ok(()),
        }
    }

    /// Starts digest-sign or digest-verify (`op`) with digest `mdname` (SHA256 if None).
    fn digest_init(
        &mut self,
        op: Op,
        mdname: Option<&str>,
        key: Option<&KeyData>,
        input: Input<'_>,
    ) -> Result<()> {
        self.init(op, key, Input::empty())?;
        match mdname {
            Some(name) => {
                let md = self.prov.software()?.digest(name)?;
                self.check_restricted_md(name, &md, false)?;
                self.set_md(name)?;
            }
            // A restricted key's digest is already set.
            None if self.restricted.is_some() => {}
            None => self.set_md("SHA256")?,
        }
        self.set_params(input)?;
        let md = self.md.as_ref().expect("set above");
        self.mdctx = Some(MdCtx::start(md)?);
        Ok(())
    }

    fn set_params(&mut self, input: Input<'_>) -> Result<()> {
        if let Some(p) = input.get(c"pad-mode") {
            self.pad = if p.is_utf8() {
                match p.utf8()?.as_str() {
                    "none" => RSA_NO_PADDING,
                    "pkcs1" => RSA_PKCS1_PADDING,
                    "x931" => RSA_X931_PADDING,
                    "pss" => RSA_PKCS1_PSS_PADDING,
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
                RSA_NO_PADDING | RSA_PKCS1_PADDING | RSA_PKCS1_PSS_PADDING => {}
                RSA_X931_PADDING => {
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
            if self.pad == RSA_PKCS1_PSS_PADDING && self.op == Op::VerifyRecover {
                return fail(
                    Reason::InvalidParameter,
                    "PSS cannot be used with verify-recover",
                );
            }
            if self.pss_key && self.pad != RSA_PKCS1_PSS_PADDING {
                self.pad = RSA_PKCS1_PSS_PADDING;
                return fail(
                    Reason::InvalidParameter,
                    "an RSA-PSS key signs with PSS padding only",
                );
            }
        }
        if let Some(p) = input.get(c"digest") {
            let name = p.utf8()?;
            let md = self.prov.software()?.digest(&name)?;
            self.check_restricted_md(&name, &md, false)?;
            self.set_md(&name)?;
        }
        if let Some(p) = input.get(c"mgf1-digest") {
            let name = p.utf8()?;
            let md = self.prov.software()?.digest(&name)?;
            self.check_restricted_md(&name, &md, true)?;
            self.mgf1 = Some(md);
            self.mgf1_name = Some(name);
        }
        if let Some(p) = input.get(c"saltlen") {
            let salt = if p.is_utf8() {
                Salt::parse_text(&p.utf8()?)?
            } else {
                Salt::from_int(p.int()?)?
            };
            self.check_restricted_salt(salt)?;
            self.salt = salt;
        }
        // "properties" and "mgf1-properties" are accepted: digests always come from the
        // default provider of the child context (see software.rs).
        Ok(())
    }

    fn encode(&mut self, tbs: &[u8]) -> Result<Vec<u8>> {
        let k = self.key()?.size();
        match self.pad {
            RSA_NO_PADDING => {
                if tbs.len() != k {
                    return fail(
                        Reason::WrongInputLength,
                        format!("no padding needs exactly {k} bytes, got {}", tbs.len()),
                    );
                }
                Ok(tbs.to_vec())
            }
            RSA_PKCS1_PADDING => {
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
            RSA_PKCS1_PSS_PADDING => {
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
            RSA_PKCS1_PSS_PADDING => {
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
            RSA_NO_PADDING => Ok(em),
            RSA_PKCS1_PADDING => {
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

    /// The digest in progress (digest-sign or digest-verify).
    fn digest_ctx(&self, what: &str) -> Result<&MdCtx> {
        self.mdctx
            .as_ref()
            .ok_or_else(|| Error::new(Reason::NotInitialized, what.to_string()))
    }

    /// The output length of sign and verify-recover: the modulus length.
    fn out_size(&self) -> Result<usize> {
        Ok(self.key()?.size())
    }

    /// `sign` with the caller's output convention.
    fn sign_into(&mut self, out: OutBuf<'_>, tbs: &[u8]) -> Result<()> {
        out.answer(self, Self::out_size, |c, sink| sink.put(&c.sign(tbs)?))
    }

    /// `verify_recover` with the caller's output convention.
    fn verify_recover_into(&mut self, out: OutBuf<'_>, sig: &[u8]) -> Result<()> {
        out.answer(self, Self::out_size, |c, sink| {
            sink.put(&c.verify_recover(sig)?)
        })
    }

    /// Signs the digest in progress, with the caller's output convention.
    fn digest_sign_final_into(&mut self, out: OutBuf<'_>) -> Result<()> {
        out.answer(self, Self::out_size, |c, sink| {
            let h = c.digest_ctx("digest sign final without init")?.finish()?;
            sink.put(&c.sign(&h)?)
        })
    }

    /// Hashes more data into the digest in progress.
    fn digest_update(&self, data: &[u8]) -> Result<()> {
        self.digest_ctx("digest update without init")?.update(data)
    }

    /// `verify`, a mismatch being a `BadSignature` error.
    fn verify_or_fail(&mut self, sig: &[u8], tbs: &[u8]) -> Result<()> {
        if self.verify(sig, tbs)? {
            Ok(())
        } else {
            fail(Reason::BadSignature, "RSA signature verification failed")
        }
    }

    /// Verifies `sig` against the digest in progress.
    fn digest_verify_final(&mut self, sig: &[u8]) -> Result<()> {
        let h = self
            .digest_ctx("digest verify final without init")?
            .finish()?;
        self.verify_or_fail(sig, &h)
    }

    fn algorithm_id(&mut self) -> Result<Vec<u8>> {
        let key = self.key()?.clone();
        let mut bld = ParamBld::new()?;
        bld.push_int(c"pad-mode", self.pad)?;
        bld.push_utf8(c"digest", self.md_name.as_deref().unwrap_or("SHA1"))?;
        if self.pad == RSA_PKCS1_PSS_PADDING {
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
                    RSA_NO_PADDING => "none",
                    RSA_PKCS1_PSS_PADDING => "pss",
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
            pss_key: self.pss_key,
            restricted: self.restricted.clone(),
        })
    }
}
