//! The PSS parameter restrictions of an RSA-PSS key (RFC 4055's RSASSA-PSS-params on an
//! `id-RSASSA-PSS` key): the digest, the MGF1 digest and the minimum salt length, imported,
//! exported and answered as OpenSSL's own RSA-PSS key management does
//! (`ossl_rsa_pss_params_30_fromdata` / `_todata`): any one of them given makes the key
//! restricted, the others taking their defaults (SHA-1, MGF1 with SHA-1, 20 bytes); an
//! unrestricted key has none. The signature operation enforces them (signature/mod.rs).

#![forbid(unsafe_code)]

use std::ffi::c_int;

use crate::ctx::ProvCtx;
use crate::error::{fail, Reason, Result};
use crate::ossl::{Md, ParamBld};
use crate::params::{Input, Output};

/// The digests a restriction may name, under the names OpenSSL exports them with
/// (`ossl_rsa_oaeppss_nid2name`).
const DIGESTS: [(c_int, &str); 7] = [
    (openssl_sys::NID_sha1, "SHA1"),
    (openssl_sys::NID_sha224, "SHA2-224"),
    (openssl_sys::NID_sha256, "SHA2-256"),
    (openssl_sys::NID_sha384, "SHA2-384"),
    (openssl_sys::NID_sha512, "SHA2-512"),
    // NID_sha512_224, NID_sha512_256.
    (1094, "SHA2-512/224"),
    (1095, "SHA2-512/256"),
];

/// The default minimum salt length of a restricted key (RFC 4055: 20).
pub const DEFAULT_SALT: i32 = 20;

/// A digest of a restriction: fetched from the default provider, with its canonical name.
#[derive(Clone)]
pub struct PssMd {
    /// The digest.
    pub md: Md,
    /// Its name as OpenSSL exports it ("SHA2-256").
    pub name: &'static str,
}

impl PssMd {
    fn fetch(prov: &ProvCtx, name: &str) -> Result<PssMd> {
        let md = prov.software()?.digest(name)?;
        let nid = md.nid();
        match DIGESTS.iter().find(|(n, _)| *n == nid) {
            Some((_, canonical)) => Ok(PssMd {
                md,
                name: canonical,
            }),
            None => fail(
                Reason::InvalidParameter,
                format!("digest {name} is not allowed in RSA-PSS restrictions"),
            ),
        }
    }

    fn is_sha1(&self) -> bool {
        self.md.nid() == openssl_sys::NID_sha1
    }
}

/// The restrictions of a restricted RSA-PSS key.
#[derive(Clone)]
pub struct PssParams {
    /// The message digest signatures must use.
    pub md: PssMd,
    /// The MGF1 digest signatures must use.
    pub mgf1: PssMd,
    /// The smallest salt a signature may have (and the default one).
    pub min_salt: i32,
}

/// The parameter names of the restrictions, with their types, for the type lists.
pub const PARAM_NAMES: [(&std::ffi::CStr, u32); 5] = [
    (c"digest", crate::params::UTF8),
    (c"mgf", crate::params::UTF8),
    (c"mgf1-digest", crate::params::UTF8),
    (c"saltlen", crate::params::INT),
    (c"digest-props", crate::params::UTF8),
];

impl PssParams {
    /// The defaults a restriction starts from: SHA-1, MGF1 with SHA-1, 20 bytes.
    fn defaults(prov: &ProvCtx) -> Result<PssParams> {
        let sha1 = PssMd::fetch(prov, "SHA1")?;
        Ok(PssParams {
            md: sha1.clone(),
            mgf1: sha1,
            min_salt: DEFAULT_SALT,
        })
    }

    /// `current` updated by the restriction parameters in `input`: unchanged if there are
    /// none, else the given ones over `current` (or over the defaults for an unrestricted
    /// key), as OpenSSL's import and key generation take them.
    pub fn from_params(
        prov: &ProvCtx,
        input: &Input<'_>,
        current: Option<PssParams>,
    ) -> Result<Option<PssParams>> {
        let (md, mgf, mgf1, salt) = (
            input.get(c"digest"),
            input.get(c"mgf"),
            input.get(c"mgf1-digest"),
            input.get(c"saltlen"),
        );
        if md.is_none() && mgf.is_none() && mgf1.is_none() && salt.is_none() {
            return Ok(current);
        }
        let mut p = match current {
            Some(p) => p,
            None => PssParams::defaults(prov)?,
        };
        if let Some(m) = mgf {
            let name = m.utf8()?;
            if !name.eq_ignore_ascii_case("MGF1") {
                return fail(
                    Reason::InvalidParameter,
                    format!("RSA-PSS mask generation function {name:?} (only MGF1)"),
                );
            }
        }
        if let Some(m) = md {
            p.md = PssMd::fetch(prov, &m.utf8()?)?;
        }
        if let Some(m) = mgf1 {
            p.mgf1 = PssMd::fetch(prov, &m.utf8()?)?;
        }
        if let Some(s) = salt {
            let v = s.int()?;
            if v < 0 {
                return fail(
                    Reason::InvalidParameter,
                    format!("RSA-PSS minimum salt length {v}"),
                );
            }
            p.min_salt = v;
        }
        Ok(Some(p))
    }

    /// Adds the restrictions to an export as OpenSSL writes them: the digests only when
    /// not the defaults, the salt length always (so the key is not taken as unrestricted).
    pub fn to_params(&self, bld: &mut ParamBld) -> Result<()> {
        if !self.md.is_sha1() {
            bld.push_utf8(c"digest", self.md.name)?;
        }
        if !self.mgf1.is_sha1() {
            bld.push_utf8(c"mgf1-digest", self.mgf1.name)?;
        }
        bld.push_int(c"saltlen", self.min_salt)
    }

    /// Answers the restrictions asked for in `out` (as `to_params` exports them), and the
    /// mandatory digest.
    pub fn answer(&self, out: &Output) -> Result<()> {
        if let Some(s) = out.slot(c"mandatory-digest") {
            s.utf8(self.md.name)?;
        }
        if !self.md.is_sha1() {
            if let Some(s) = out.slot(c"digest") {
                s.utf8(self.md.name)?;
            }
        }
        if !self.mgf1.is_sha1() {
            if let Some(s) = out.slot(c"mgf1-digest") {
                s.utf8(self.mgf1.name)?;
            }
        }
        if let Some(s) = out.slot(c"saltlen") {
            s.int(self.min_salt)?;
        }
        Ok(())
    }
}
