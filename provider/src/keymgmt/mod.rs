//! RSA and RSA-PSS key management: new, free, has, match, validate, import/export and their
//! types, get_params (bits, security-bits, max-size, default digest, the numbers; an RSA-PSS
//! key's restrictions, see pss.rs), generation (the numbers by the default provider in the
//! child context, then imported), dup. Both key types share the key object; an RSA-PSS
//! key is one for PSS signatures only, within its restrictions if it has any.
//!
//! This file is the operation's logic, in safe code; `ffi.rs` holds its C entry points and
//! dispatch table.

// `deny`, not `forbid`: a forbid would extend to the child `ffi`, which must use unsafe.
#![deny(unsafe_code)]

pub mod ffi;
pub mod pss;

use std::ffi::c_int;
use std::sync::{Arc, RwLock};

use crate::ctx::ProvCtx;
use crate::error::{fail, Error, Reason, Result};
use crate::ffi::{
    OSSL_KEYMGMT_SELECT_KEYPAIR, OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS,
    OSSL_KEYMGMT_SELECT_PRIVATE_KEY, OSSL_KEYMGMT_SELECT_PUBLIC_KEY,
};
use crate::key::{self, KeyMaterial};
use crate::ossl::{Bn, ParamBld, ParamsRef};
use crate::params::{self, Input, Output};
use pss::PssParams;

/// The two key types of this key management.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `RSA` (rsaEncryption).
    Rsa,
    /// `RSA-PSS` (id-RSASSA-PSS): PSS signatures only.
    RsaPss,
}

/// The key object handed to OpenSSL (`keydata`): empty after `new`, filled by import or
/// generation.
pub struct KeyData {
    prov: Arc<ProvCtx>,
    kind: KeyType,
    key: RwLock<Option<Arc<KeyMaterial>>>,
    /// An RSA-PSS key's restrictions (None: unrestricted; always None for RSA).
    pss: RwLock<Option<PssParams>>,
}

impl KeyData {
    fn new(prov: Arc<ProvCtx>, kind: KeyType, key: Option<KeyMaterial>) -> KeyData {
        KeyData {
            prov,
            kind,
            key: RwLock::new(key.map(Arc::new)),
            pss: RwLock::new(None),
        }
    }

    /// The key, if it has been filled.
    pub fn key(&self) -> Option<Arc<KeyMaterial>> {
        self.key.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key's type.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// An RSA-PSS key's restrictions, if it has any.
    pub fn pss_restrictions(&self) -> Option<PssParams> {
        self.pss.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_pss(&self, p: Option<PssParams>) {
        *self.pss.write().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// Whether the key has what `selection` asks for.
    fn has(&self, selection: c_int) -> bool {
        let Some(k) = self.key() else {
            // An empty key has only what needs nothing.
            return selection & OSSL_KEYMGMT_SELECT_KEYPAIR == 0;
        };
        let mut ok = true;
        if selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY != 0 {
            ok &= !k.n.is_empty() && !k.e.is_empty();
        }
        if selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0 {
            ok &= k.private.is_some();
        }
        ok
    }

    /// Whether the two keys are the same as far as `selection` goes.
    fn matches(&self, other: &KeyData, selection: c_int) -> bool {
        let (Some(a), Some(b)) = (self.key(), other.key()) else {
            return false;
        };
        let mut ok = true;
        if selection & OSSL_KEYMGMT_SELECT_KEYPAIR != 0 {
            // As OpenSSL's own RSA: the public parts decide, whether or not private is
            // selected (a private key always carries its public half).
            ok &= a.n == b.n && a.e == b.e;
        }
        ok
    }

    /// Validates the selected parts with the default provider.
    fn validate(&self, selection: c_int) -> Result<()> {
        let Some(k) = self.key() else {
            return fail(Reason::InvalidKey, "validating an empty key");
        };
        if selection & OSSL_KEYMGMT_SELECT_KEYPAIR == 0 {
            return Ok(());
        }
        let public = selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY != 0;
        let private = selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0;
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
        Ok(())
    }

    /// Fills the key from parameters.
    fn import(&self, selection: c_int, input: Input<'_>) -> Result<()> {
        // An RSA-PSS key's restrictions are its "other parameters" (RSA has none).
        let pss = if self.kind == KeyType::RsaPss
            && selection & OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS != 0
        {
            Some(PssParams::from_params(
                &self.prov,
                &input,
                self.pss_restrictions(),
            )?)
        } else {
            None
        };
        if selection & OSSL_KEYMGMT_SELECT_KEYPAIR != 0 {
            let k = KeyMaterial::import(self.prov.clone(), selection, input)?;
            *self.key.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(k));
        }
        if let Some(p) = pss {
            self.set_pss(p);
        }
        Ok(())
    }

    /// Hands the selected parts, as parameters, to `send` (the caller's callback, absent
    /// if it gave none); its answer.
    fn export(
        &self,
        selection: c_int,
        send: Option<impl FnOnce(&ParamsRef) -> c_int>,
    ) -> Result<c_int> {
        let Some(k) = self.key() else {
            return fail(Reason::InvalidKey, "exporting an empty key");
        };
        let Some(send) = send else {
            return fail(Reason::MissingParameter, "export without a callback");
        };
        let private = selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0;
        if self.kind == KeyType::Rsa {
            if selection & OSSL_KEYMGMT_SELECT_KEYPAIR == 0 {
                return Ok(1);
            }
            let params = k.to_params(private)?;
            return Ok(send(&params));
        }
        // RSA-PSS, as OpenSSL's: the restrictions (if selected and the key has any) and
        // the selected parts of the key, in one list.
        let mut bld = ParamBld::new()?;
        if selection & OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS != 0 {
            if let Some(p) = self.pss_restrictions() {
                p.to_params(&mut bld)?;
            }
        }
        if selection & OSSL_KEYMGMT_SELECT_KEYPAIR != 0 {
            k.push_params(&mut bld, private)?;
        }
        let params = bld.to_params()?;
        Ok(send(&params))
    }

    /// Answers the key's parameters asked for in `out`.
    fn get_params(&self, out: &Output) -> Result<()> {
        let Some(k) = self.key() else {
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
        let pss = self.pss_restrictions();
        if let Some(s) = out.slot(c"default-digest") {
            // An RSA-PSS key's digest is its restriction's, if it has one.
            match &pss {
                Some(p) => s.utf8(p.md.name)?,
                None => s.static_utf8(c"SHA256")?,
            }
        }
        if let Some(p) = &pss {
            p.answer(out)?;
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
        Ok(())
    }

    /// A copy, with the private part if `selection` asks for it.
    fn duplicate(&self, selection: c_int) -> Result<KeyData> {
        let copy = match self.key() {
            Some(k) => Some(k.duplicate(selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0)?),
            None => None,
        };
        let kd = KeyData::new(self.prov.clone(), self.kind, copy);
        kd.set_pss(self.pss_restrictions());
        Ok(kd)
    }
}

// ----- generation ----------------------------------------------------------------------

/// A key generation in preparation.
struct GenCtx {
    prov: Arc<ProvCtx>,
    kind: KeyType,
    selection: c_int,
    bits: u32,
    primes: u32,
    e: Option<Vec<u8>>,
    /// An RSA-PSS key's restrictions to be (None: unrestricted).
    pss: Option<PssParams>,
}

impl GenCtx {
    /// A generation of a 2048-bit two-prime key unless `input` says otherwise.
    fn new(
        prov: Arc<ProvCtx>,
        kind: KeyType,
        selection: c_int,
        input: Input<'_>,
    ) -> Result<GenCtx> {
        let mut g = GenCtx {
            prov,
            kind,
            selection,
            bits: 2048,
            primes: 2,
            e: None,
            pss: None,
        };
        g.set_params(input)?;
        Ok(g)
    }

    fn set_params(&mut self, input: Input<'_>) -> Result<()> {
        if self.kind == KeyType::RsaPss {
            // As OpenSSL's: the first restriction given sets the defaults of the others.
            self.pss = PssParams::from_params(&self.prov, &input, self.pss.take())?;
        }
        if let Some(p) = input.get(c"bits") {
            let b = p.size()?;
            if !(512..=16384).contains(&b) {
                return fail(
                    Reason::InvalidParameter,
                    format!("RSA key size {b} outside 512..16384"),
                );
            }
            self.bits = b as u32;
        }
        if let Some(p) = input.get(c"primes") {
            let n = p.size()?;
            if !(2..=5).contains(&n) {
                return fail(
                    Reason::InvalidParameter,
                    format!("RSA primes {n} outside 2..5"),
                );
            }
            self.primes = n as u32;
        }
        if let Some(p) = input.get(c"e") {
            self.e = Some(p.bn()?.to_be());
        }
        Ok(())
    }

    /// The key (by the default provider, then imported), or an empty one if no key pair
    /// was asked for.
    fn generate(&self) -> Result<KeyData> {
        let key = if self.selection & OSSL_KEYMGMT_SELECT_KEYPAIR == 0 {
            None
        } else {
            // An RSA-PSS key's numbers are an RSA key's.
            let pkey = self
                .prov
                .software()?
                .generate(self.bits, self.primes, self.e.as_deref())?;
            Some(KeyMaterial::from_software(self.prov.clone(), pkey)?)
        };
        let kd = KeyData::new(self.prov.clone(), self.kind, key);
        kd.set_pss(self.pss.clone());
        Ok(kd)
    }
}

/// The error of a NULL generation context.
fn no_gen_ctx() -> Error {
    Error::new(Reason::NotInitialized, "NULL generation context")
}
