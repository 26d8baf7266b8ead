//! The RSA key material of the provider: numbers as big-endian magnitudes (secrets cleansed
//! on drop), checked for consistency at import, with lazily built helpers: the software key
//! in the child library context, the key's fault-attack guard (guard.rs) and its CRT
//! parameters as the device takes them (checked: a wrong dp, dq or qinv is a key error;
//! unreduced ones reduced).

#![forbid(unsafe_code)]

use std::ffi::CStr;
use std::sync::{Arc, OnceLock};

use crate::ctx::ProvCtx;
use crate::error::{fail, Error, Reason, Result};
use crate::ffi;
use crate::guard::FaultGuard;
use crate::magnitude::{be_cmp, is_odd, strip};
use crate::ossl::{self, Bn, ParamBld, Params, Pkey};
use crate::params::Input;

/// Secret bytes, wiped when dropped.
pub struct Secret(Vec<u8>);

impl Secret {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            ossl::cleanse(&mut self.0);
        }
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret(self.0.clone())
    }
}

/// Private parts of a key.
#[derive(Clone)]
pub struct Private {
    /// Private exponent.
    pub d: Secret,
    /// Prime factors p, q, r_i...
    pub factors: Vec<Secret>,
    /// CRT exponents.
    pub exponents: Vec<Secret>,
    /// CRT coefficients.
    pub coefficients: Vec<Secret>,
}

/// An RSA key as the provider holds it: its numbers and the helpers built from them.
pub struct KeyMaterial {
    /// The provider instance.
    pub prov: Arc<ProvCtx>,
    /// Modulus.
    pub n: Vec<u8>,
    /// Public exponent.
    pub e: Vec<u8>,
    /// Modulus size in bits.
    pub bits: u32,
    /// Private parts, if any.
    pub private: Option<Private>,
    sw: OnceLock<Pkey>,
    guard: OnceLock<FaultGuard>,
    crt: OnceLock<Crt>,
}

/// The CRT parameters of a two-prime key as the device takes them, checked once per key.
pub enum Crt {
    /// Consistent: dp, dq and qinv reduced (dp mod p-1, dq mod q-1, qinv mod p), each
    /// within half the modulus as the engine's fields are. An unreduced exponent is valid
    /// input (the same exponentiation), only wider than the field.
    Reduced {
        /// dp mod (p-1).
        dp: Secret,
        /// dq mod (q-1).
        dq: Secret,
        /// qinv mod p.
        qinv: Secret,
    },
    /// Inconsistent: the CRT parameters do not compute the key's private operation (the
    /// detail says which); private operations stay in software, whose answer the default
    /// provider checks and recomputes with d.
    Inconsistent(String),
}

/// What the CRT parameters of a two-prime key are worth (see [`Crt`]): e·dp ≡ 1 (mod p-1),
/// e·dq ≡ 1 (mod q-1) and q·qinv ≡ 1 (mod p) are what CRT exponentiation needs (d itself
/// is not involved: a dp with e·dp ≡ 1 (mod p-1) gives x^dp ≡ x^d (mod p) for every x).
fn check_crt(e: &[u8], c: &Private) -> Result<Crt> {
    let (p, q) = (c.factors[0].bytes(), c.factors[1].bytes());
    let one = Bn::from_be(&[1])?;
    let e = Bn::from_be(e)?;
    let minus_one = |x: &[u8]| -> Result<Option<Bn>> {
        // An odd prime's predecessor: the last byte loses its low bit, no borrow.
        let x = strip(x);
        if !is_odd(x) || x == [1] {
            return Ok(None);
        }
        let mut v = x.to_vec();
        if let Some(last) = v.last_mut() {
            *last &= !1;
        }
        Bn::from_be(&v).map(Some)
    };
    let (Some(pm1), Some(qm1)) = (minus_one(p)?, minus_one(q)?) else {
        return Ok(Crt::Inconsistent("a prime factor is even or 1".into()));
    };
    let pb = Bn::from_be(p)?;
    let qb = Bn::from_be(q)?;
    let bn = |x: &Secret| Bn::from_be(x.bytes());
    let (dp, dq, qinv) = (
        bn(&c.exponents[0])?,
        bn(&c.exponents[1])?,
        bn(&c.coefficients[0])?,
    );
    let dp = ossl::nnmod(&dp, &pm1)?;
    let dq = ossl::nnmod(&dq, &qm1)?;
    let qinv = ossl::nnmod(&qinv, &pb)?;
    let inverse = |a: &Bn, b: &Bn, m: &Bn| -> Result<bool> {
        let ab = ossl::mul(a, b)?;
        let r = ossl::nnmod(&ab, m)?;
        Ok(ossl::bn_eq(&r, &one))
    };
    let wrong = if !inverse(&e, &dp, &pm1)? {
        Some("e·dp is not 1 modulo p-1 (wrong dp)")
    } else if !inverse(&e, &dq, &qm1)? {
        Some("e·dq is not 1 modulo q-1 (wrong dq)")
    } else if !inverse(&qb, &qinv, &pb)? {
        Some("q·qinv is not 1 modulo p (wrong qinv)")
    } else {
        None
    };
    Ok(match wrong {
        Some(w) => Crt::Inconsistent(w.into()),
        None => Crt::Reduced {
            dp: Secret(dp.to_be()),
            dq: Secret(dq.to_be()),
            qinv: Secret(qinv.to_be()),
        },
    })
}

/// Logs a key error once per key (by modulus) in this process, however many copies of the
/// key OpenSSL makes.
fn log_key_error_once(n: &[u8], why: &str) {
    use std::collections::HashSet;
    use std::hash::{Hash, Hasher};
    use std::sync::Mutex;
    static LOGGED: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    n.hash(&mut h);
    let id = h.finish();
    let first = LOGGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(id);
    if first {
        wd_core::wd_log!(
            Warn,
            "wd provider: RSA key {id:016x} (modulus hash): inconsistent CRT parameters: {why}; \
             its private operations run in software (counted as key_errors)"
        );
    }
}

const FACTORS: [&CStr; 10] = [
    c"rsa-factor1",
    c"rsa-factor2",
    c"rsa-factor3",
    c"rsa-factor4",
    c"rsa-factor5",
    c"rsa-factor6",
    c"rsa-factor7",
    c"rsa-factor8",
    c"rsa-factor9",
    c"rsa-factor10",
];
const EXPONENTS: [&CStr; 10] = [
    c"rsa-exponent1",
    c"rsa-exponent2",
    c"rsa-exponent3",
    c"rsa-exponent4",
    c"rsa-exponent5",
    c"rsa-exponent6",
    c"rsa-exponent7",
    c"rsa-exponent8",
    c"rsa-exponent9",
    c"rsa-exponent10",
];
const COEFFICIENTS: [&CStr; 9] = [
    c"rsa-coefficient1",
    c"rsa-coefficient2",
    c"rsa-coefficient3",
    c"rsa-coefficient4",
    c"rsa-coefficient5",
    c"rsa-coefficient6",
    c"rsa-coefficient7",
    c"rsa-coefficient8",
    c"rsa-coefficient9",
];

/// Parameter names of an RSA key, for import/export type lists.
pub fn param_names(private: bool) -> Vec<&'static CStr> {
    let mut v = vec![c"n", c"e"];
    if private {
        v.push(c"d");
        v.extend(FACTORS);
        v.extend(EXPONENTS);
        v.extend(COEFFICIENTS);
    }
    v
}

impl KeyMaterial {
    /// An empty key is not representable: keys are made by import or generation.
    pub fn from_parts(
        prov: Arc<ProvCtx>,
        n: Vec<u8>,
        e: Vec<u8>,
        private: Option<Private>,
    ) -> Result<KeyMaterial> {
        let n = strip(&n).to_vec();
        let e = strip(&e).to_vec();
        let nb = Bn::from_be(&n)?;
        let bits = nb.bits();
        if bits < 16 || !is_odd(&n) {
            return fail(
                Reason::InvalidKey,
                format!("modulus is not a valid RSA modulus ({bits} bits, must be odd)"),
            );
        }
        if e.is_empty() || !is_odd(&e) || e == [1] || be_cmp(&e, &n).is_ge() {
            return fail(
                Reason::InvalidKey,
                "public exponent must be odd, above 1 and below n",
            );
        }
        if let Some(p) = &private {
            let d = p.d.bytes();
            if d.iter().all(|x| *x == 0) || be_cmp(d, &n).is_ge() {
                return fail(
                    Reason::InconsistentKey,
                    "private exponent must be in 1..n-1",
                );
            }
            let f = p.factors.len();
            if f != 0 {
                if f < 2 || p.exponents.len() != f || p.coefficients.len() != f - 1 {
                    return fail(
                        Reason::InconsistentKey,
                        format!(
                            "{f} factors need {f} CRT exponents and {} coefficients (got {} and {})",
                            f.saturating_sub(1),
                            p.exponents.len(),
                            p.coefficients.len()
                        ),
                    );
                }
                let mut prod = Bn::from_be(p.factors[0].bytes())?;
                for q in &p.factors[1..] {
                    let qb = Bn::from_be(q.bytes())?;
                    prod = ossl::mul(&prod, &qb)?;
                }
                if !ossl::bn_eq(&prod, &nb) {
                    return fail(
                        Reason::InconsistentKey,
                        "the prime factors do not multiply to n",
                    );
                }
            }
        }
        Ok(KeyMaterial {
            prov,
            n,
            e,
            bits,
            private,
            sw: OnceLock::new(),
            guard: OnceLock::new(),
            crt: OnceLock::new(),
        })
    }

    /// Imports from core parameters (`selection` as in keymgmt import).
    pub fn import(prov: Arc<ProvCtx>, selection: i32, params: Input<'_>) -> Result<KeyMaterial> {
        let need = |k: &CStr| -> Result<Vec<u8>> {
            match params.get(k) {
                Some(p) => Ok(p.bn()?.to_be()),
                None => fail(
                    Reason::MissingParameter,
                    format!("RSA key import needs parameter {}", k.to_string_lossy()),
                ),
            }
        };
        let n = need(c"n")?;
        let e = need(c"e")?;
        let mut private = None;
        if selection & ffi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY != 0 {
            if let Some(d) = params.get(c"d") {
                let list = |names: &[&CStr]| -> Result<Vec<Secret>> {
                    let mut v = Vec::new();
                    for k in names {
                        match params.get(k) {
                            Some(p) => v.push(Secret(p.bn()?.to_be())),
                            None => break,
                        }
                    }
                    Ok(v)
                };
                private = Some(Private {
                    d: Secret(d.bn()?.to_be()),
                    factors: list(&FACTORS)?,
                    exponents: list(&EXPONENTS)?,
                    coefficients: list(&COEFFICIENTS)?,
                });
            }
        }
        KeyMaterial::from_parts(prov, n, e, private)
    }

    /// Modulus length in bytes.
    pub fn size(&self) -> usize {
        self.bits.div_ceil(8) as usize
    }

    /// Security strength in bits.
    pub fn security_bits(&self) -> i32 {
        ossl::security_bits(self.bits)
    }

    /// True for a two-prime CRT key.
    pub fn crt2(&self) -> Option<&Private> {
        self.private
            .as_ref()
            .filter(|p| p.factors.len() == 2 && p.exponents.len() == 2 && p.coefficients.len() == 1)
    }

    /// The key's parameters for export or for building the software key.
    pub fn to_params(&self, private: bool) -> Result<Params> {
        let mut bld = ParamBld::new()?;
        self.push_params(&mut bld, private)?;
        bld.to_params()
    }

    /// Adds the key's numbers (the private ones if `private`) to `bld`.
    pub fn push_params(&self, bld: &mut ParamBld, private: bool) -> Result<()> {
        bld.push_be(c"n", &self.n)?;
        bld.push_be(c"e", &self.e)?;
        if private {
            if let Some(p) = &self.private {
                bld.push_be(c"d", p.d.bytes())?;
                let crt = FACTORS
                    .iter()
                    .zip(&p.factors)
                    .chain(EXPONENTS.iter().zip(&p.exponents))
                    .chain(COEFFICIENTS.iter().zip(&p.coefficients));
                for (k, v) in crt {
                    bld.push_be(k, v.bytes())?;
                }
            }
        }
        Ok(())
    }

    /// The numbers the software key is built from: the key's, with consistent CRT
    /// parameters reduced (the default provider fails to sign with a qinv ≥ p); an
    /// inconsistent key's as they are (the default provider checks its CRT result and
    /// recomputes with d).
    fn software_params(&self) -> Result<Params> {
        let mut bld = ParamBld::new()?;
        match (self.crt2(), self.crt()?) {
            (Some(p), Some(Crt::Reduced { dp, dq, qinv })) => {
                bld.push_be(c"n", &self.n)?;
                bld.push_be(c"e", &self.e)?;
                bld.push_be(c"d", p.d.bytes())?;
                bld.push_be(FACTORS[0], p.factors[0].bytes())?;
                bld.push_be(FACTORS[1], p.factors[1].bytes())?;
                bld.push_be(EXPONENTS[0], dp.bytes())?;
                bld.push_be(EXPONENTS[1], dq.bytes())?;
                bld.push_be(COEFFICIENTS[0], qinv.bytes())?;
            }
            _ => self.push_params(&mut bld, true)?,
        }
        bld.to_params()
    }

    /// The same key in the software (default provider) path, built once.
    pub fn software(&self) -> Result<&Pkey> {
        if let Some(k) = self.sw.get() {
            return Ok(k);
        }
        let params = self.software_params()?;
        let pkey = self
            .prov
            .software()?
            .key_from_params(&params, self.private.is_some())?;
        Ok(self.sw.get_or_init(|| pkey))
    }

    /// The key's fault-attack guard, built once.
    pub fn fault_guard(&self) -> Result<&FaultGuard> {
        if let Some(g) = self.guard.get() {
            return Ok(g);
        }
        let primes = self
            .crt2()
            .map(|p| (p.factors[0].bytes(), p.factors[1].bytes()));
        let g = FaultGuard::of_key(&self.n, &self.e, primes)?;
        Ok(self.guard.get_or_init(|| g))
    }

    /// The CRT parameters as the device takes them, checked (and a key error logged) on
    /// first use; None if the key is not a two-prime CRT key.
    pub fn crt(&self) -> Result<Option<&Crt>> {
        let Some(p) = self.crt2() else {
            return Ok(None);
        };
        if let Some(c) = self.crt.get() {
            return Ok(Some(c));
        }
        let c = check_crt(&self.e, p)?;
        if let Crt::Inconsistent(why) = &c {
            log_key_error_once(&self.n, why);
        }
        Ok(Some(self.crt.get_or_init(|| c)))
    }

    /// Copies the key (same provider, same numbers; helpers are rebuilt lazily).
    pub fn duplicate(&self, private: bool) -> Result<KeyMaterial> {
        Ok(KeyMaterial {
            prov: self.prov.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
            bits: self.bits,
            private: if private { self.private.clone() } else { None },
            sw: OnceLock::new(),
            guard: OnceLock::new(),
            crt: OnceLock::new(),
        })
    }

    /// Builds a key from a software key (after generation).
    pub fn from_software(prov: Arc<ProvCtx>, pkey: Pkey) -> Result<KeyMaterial> {
        let get = |k: &CStr| -> Result<Option<Vec<u8>>> { Ok(pkey.bn_param(k)) };
        let n = get(c"n")?.ok_or_else(|| Error::new(Reason::Software, "generated key has no n"))?;
        let e = get(c"e")?.ok_or_else(|| Error::new(Reason::Software, "generated key has no e"))?;
        let private = match get(c"d")? {
            Some(d) => {
                let list = |names: &[&CStr]| -> Result<Vec<Secret>> {
                    let mut v = Vec::new();
                    for k in names {
                        match get(k)? {
                            Some(x) => v.push(Secret(x)),
                            None => break,
                        }
                    }
                    Ok(v)
                };
                Some(Private {
                    d: Secret(d),
                    factors: list(&FACTORS)?,
                    exponents: list(&EXPONENTS)?,
                    coefficients: list(&COEFFICIENTS)?,
                })
            }
            None => None,
        };
        let key = KeyMaterial::from_parts(prov, n, e, private)?;
        let _ = key.sw.set(pkey);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n = 61·53, e = 17, d = 2753: dp = 53, dq = 49, qinv = 38.
    fn toy(dp: u16, dq: u16, qinv: u16) -> Private {
        let s = |v: u16| Secret(strip(&v.to_be_bytes()).to_vec());
        Private {
            d: s(2753),
            factors: vec![s(61), s(53)],
            exponents: vec![s(dp), s(dq)],
            coefficients: vec![s(qinv)],
        }
    }

    fn reduced(c: Crt) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        match c {
            Crt::Reduced { dp, dq, qinv } => (dp.0.clone(), dq.0.clone(), qinv.0.clone()),
            Crt::Inconsistent(w) => panic!("inconsistent: {w}"),
        }
    }

    #[test]
    fn crt_parameters_are_checked_and_reduced() {
        assert_eq!(
            reduced(check_crt(&[17], &toy(53, 49, 38)).unwrap()),
            (vec![53], vec![49], vec![38])
        );
        // Unreduced: dp + 60, dq + 2·52, qinv + 61 are the same key.
        assert_eq!(
            reduced(check_crt(&[17], &toy(113, 153, 99)).unwrap()),
            (vec![53], vec![49], vec![38])
        );
        for (bad, what) in [
            (toy(55, 49, 38), "wrong dp"),
            (toy(53, 51, 38), "wrong dq"),
            (toy(53, 49, 39), "wrong qinv"),
        ] {
            match check_crt(&[17], &bad).unwrap() {
                Crt::Inconsistent(w) => assert!(w.contains(what), "{w}"),
                Crt::Reduced { .. } => panic!("{what} not found"),
            }
        }
    }
}
