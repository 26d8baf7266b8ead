//! The RSA key object of the provider: numbers as big-endian magnitudes (secrets cleansed on
//! drop), checked for consistency at import, with lazily built helpers: the software key in
//! the child library context and the public-exponent check of the fault-attack guard.

use std::ffi::CStr;
use std::sync::{Arc, OnceLock};

use foreign_types::ForeignType;

use crate::ctx::ProvCtx;
use crate::error::{fail, Error, Reason, Result};
use crate::ffi;
use crate::ossl::{self, Bn, BnCtx, BnRef, Mont, MontModulus, ParamBld, Params, Pkey};
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
            // SAFETY: the vector's buffer is writable for its length.
            unsafe { ffi::OPENSSL_cleanse(self.0.as_mut_ptr().cast(), self.0.len()) };
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

/// What the fault-attack guard needs: n, e and Montgomery contexts — of p and q for a
/// two-prime key (the check is then done modulo each prime: half the work of one check
/// modulo n, and by the CRT exactly as strong), else of n.
pub struct GuardCtx {
    pub n: Bn,
    /// n, big-endian, minimal (for the range checks).
    n_be: Vec<u8>,
    pub e: Bn,
    pub mont: Mont,
    primes: Option<[MontModulus; 2]>,
}

impl GuardCtx {
    /// The guard of the public key (n, e), big-endian.
    pub fn new(n: &[u8], e: &[u8]) -> Result<GuardCtx> {
        let n = Bn::from_be(n)?;
        let e = Bn::from_be(e)?;
        let mont = Mont::new(&n)?;
        Ok(GuardCtx {
            n_be: n.to_be(),
            n,
            e,
            mont,
            primes: None,
        })
    }

    /// The guard of a two-prime key whose primes `p`, `q` (with p·q = n, checked at import)
    /// are known: checks modulo p and modulo q.
    pub fn with_primes(n: &[u8], e: &[u8], p: &[u8], q: &[u8]) -> Result<GuardCtx> {
        let mut g = GuardCtx::new(n, e)?;
        let (p, q) = (
            MontModulus::new(Bn::from_be(p)?)?,
            MontModulus::new(Bn::from_be(q)?)?,
        );
        // A number below n = p·q is below p·R when q < R (and likewise for q): then one
        // Montgomery reduction takes it modulo p, no division. Always so for balanced
        // primes; otherwise the check stays modulo n.
        if q.modulus().bits() <= p.r_bits() && p.modulus().bits() <= q.r_bits() {
            g.primes = Some([p, q]);
        }
        Ok(g)
    }

    /// True if `result^e mod n == input`: `result` is what the device returned for the
    /// private operation on `input`.
    pub fn checks_out(&self, input: &[u8], result: &[u8]) -> Result<bool> {
        if be_cmp(result, &self.n_be).is_ge() || be_cmp(input, &self.n_be).is_ge() {
            return Ok(false);
        }
        let r = Bn::from_be(result)?;
        let want = Bn::from_be(input)?;
        let ctx = BnCtx::new()?;
        match &self.primes {
            // r^e ≡ input (mod p) and (mod q) ⇔ r^e ≡ input (mod n), p ≠ q primes;
            // compared in Montgomery form, where both sides are reduced.
            Some(primes) => {
                for m in primes {
                    let rm = m.to_mont_wide(&r, &ctx)?;
                    let back = m.pow_public(&rm, &self.e, &ctx)?;
                    let wm = m.to_mont_wide(&want, &ctx)?;
                    if !ossl::bn_eq(&back, &wm) {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            None => {
                let back = ossl::mod_exp(&r, &self.e, &self.n, &self.mont)?;
                Ok(ossl::bn_eq(&back, &want))
            }
        }
    }
}

/// An RSA key as the provider holds it.
pub struct RsaKey {
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
    guard: OnceLock<GuardCtx>,
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

fn is_odd(b: &[u8]) -> bool {
    b.last().is_some_and(|x| x & 1 == 1)
}

fn strip(mut b: Vec<u8>) -> Vec<u8> {
    let z = b.iter().take_while(|x| **x == 0).count();
    b.drain(..z);
    b
}

/// Big-endian magnitude comparison.
pub fn be_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let a = &a[a.iter().take_while(|x| **x == 0).count()..];
    let b = &b[b.iter().take_while(|x| **x == 0).count()..];
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl RsaKey {
    /// An empty key is not representable: keys are made by import or generation.
    pub fn from_parts(
        prov: Arc<ProvCtx>,
        n: Vec<u8>,
        e: Vec<u8>,
        private: Option<Private>,
    ) -> Result<RsaKey> {
        let n = strip(n);
        let e = strip(e);
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
        Ok(RsaKey {
            prov,
            n,
            e,
            bits,
            private,
            sw: OnceLock::new(),
            guard: OnceLock::new(),
        })
    }

    /// Imports from core parameters (`selection` as in keymgmt import).
    pub fn import(prov: Arc<ProvCtx>, selection: i32, params: Input<'_>) -> Result<RsaKey> {
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
        RsaKey::from_parts(prov, n, e, private)
    }

    /// Modulus length in bytes.
    pub fn size(&self) -> usize {
        self.bits.div_ceil(8) as usize
    }

    /// Security strength in bits.
    pub fn security_bits(&self) -> i32 {
        // SAFETY: pure function of two integers.
        unsafe { ffi::BN_security_bits(self.bits as i32, -1) }
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
        bld.to_params()
    }

    /// The same key in the software (default provider) path, built once.
    pub fn software(&self) -> Result<&Pkey> {
        if let Some(k) = self.sw.get() {
            return Ok(k);
        }
        let params = self.to_params(true)?;
        let pkey = self
            .prov
            .software()?
            .key_from_params(&params, self.private.is_some())?;
        Ok(self.sw.get_or_init(|| pkey))
    }

    /// The fault-attack guard's numbers, built once.
    pub fn guard(&self) -> Result<&GuardCtx> {
        if let Some(g) = self.guard.get() {
            return Ok(g);
        }
        let g = match self.crt2() {
            Some(p) => {
                GuardCtx::with_primes(&self.n, &self.e, p.factors[0].bytes(), p.factors[1].bytes())?
            }
            None => GuardCtx::new(&self.n, &self.e)?,
        };
        Ok(self.guard.get_or_init(|| g))
    }

    /// Fault-attack guard: true if `result^e mod n == input`.
    pub fn result_checks_out(&self, input: &[u8], result: &[u8]) -> Result<bool> {
        self.guard()?.checks_out(input, result)
    }

    /// Copies the key (same provider, same numbers; helpers are rebuilt lazily).
    pub fn duplicate(&self, private: bool) -> Result<RsaKey> {
        Ok(RsaKey {
            prov: self.prov.clone(),
            n: self.n.clone(),
            e: self.e.clone(),
            bits: self.bits,
            private: if private { self.private.clone() } else { None },
            sw: OnceLock::new(),
            guard: OnceLock::new(),
        })
    }

    /// Builds a key from a software key (after generation).
    pub fn from_software(prov: Arc<ProvCtx>, pkey: Pkey) -> Result<RsaKey> {
        let get = |k: &CStr| -> Result<Option<Vec<u8>>> {
            let mut b: *mut openssl_sys::BIGNUM = std::ptr::null_mut();
            // SAFETY: valid key; on success b is a new BIGNUM we own.
            let r =
                unsafe { openssl_sys::EVP_PKEY_get_bn_param(pkey.as_ptr(), k.as_ptr(), &mut b) };
            if r != 1 || b.is_null() {
                return Ok(None);
            }
            // SAFETY: fresh, owned.
            let b = unsafe { Bn::from_ptr(b) };
            Ok(Some(BnRef::to_be(&b)))
        };
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
        let key = RsaKey::from_parts(prov, n, e, private)?;
        let _ = key.sw.set(pkey);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_accepts_a_right_result_and_rejects_a_faulty_one() {
        // n = 61 * 53 = 3233, e = 17, d = 2753: 65^17 mod n = 2790, so the private
        // operation on 2790 gives 65.
        let g = GuardCtx::new(&3233u16.to_be_bytes(), &[17]).unwrap();
        let input = 2790u16.to_be_bytes();
        assert!(g.checks_out(&input, &[65]).unwrap());
        assert!(!g.checks_out(&input, &[66]).unwrap());
        assert!(!g.checks_out(&input, &[0]).unwrap());
        // A result not below n is rejected before any arithmetic.
        assert!(!g.checks_out(&input, &3233u16.to_be_bytes()).unwrap());
    }

    #[test]
    fn prime_wise_guard_catches_a_result_wrong_modulo_one_prime_only() {
        let g = GuardCtx::with_primes(&3233u16.to_be_bytes(), &[17], &[61], &[53]).unwrap();
        let input = 2790u16.to_be_bytes();
        assert!(g.checks_out(&input, &[65]).unwrap());
        // 118 ≡ 65 (mod 53) but not (mod 61); 126 ≡ 65 (mod 61) but not (mod 53): the
        // faulty half of a CRT computation (Bellcore) is caught either way.
        assert!(!g.checks_out(&input, &[118]).unwrap());
        assert!(!g.checks_out(&input, &[126]).unwrap());
        assert!(!g.checks_out(&input, &3233u16.to_be_bytes()).unwrap());
    }

    /// The prime-wise check (Montgomery reductions, no division) against a plain
    /// `result^e mod n` on real keys: right results pass, and a result off by one, or wrong
    /// modulo one prime only, fails.
    #[test]
    fn prime_wise_guard_agrees_with_the_check_modulo_n_on_real_keys() {
        for bits in [1024u32, 2048, 3072] {
            let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
            let (n, e) = (rsa.n().to_vec(), rsa.e().to_vec());
            let (p, q) = (rsa.p().unwrap(), rsa.q().unwrap());
            let g = GuardCtx::with_primes(&n, &e, &p.to_vec(), &q.to_vec()).unwrap();
            assert!(g.primes.is_some(), "{bits}-bit key: balanced primes");
            let plain = GuardCtx::new(&n, &e).unwrap();
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            for _ in 0..8 {
                let mut m = openssl::bn::BigNum::new().unwrap();
                rsa.n().rand_range(&mut m).unwrap();
                let mut s = openssl::bn::BigNum::new().unwrap();
                s.mod_exp(&m, rsa.d(), rsa.n(), &mut ctx).unwrap();
                let input = m.to_vec();
                assert!(g.checks_out(&input, &s.to_vec()).unwrap());
                assert!(plain.checks_out(&input, &s.to_vec()).unwrap());
                // Off by one: wrong modulo both primes.
                let mut s1 = openssl::bn::BigNum::new().unwrap();
                s1.checked_add(&s, &openssl::bn::BigNum::from_u32(1).unwrap())
                    .unwrap();
                if s1 < *rsa.n() {
                    assert!(!g.checks_out(&input, &s1.to_vec()).unwrap());
                }
                // Wrong modulo p only: s + q is ≡ s (mod q), not (mod p).
                let mut sq = openssl::bn::BigNum::new().unwrap();
                sq.checked_add(&s, q).unwrap();
                if sq < *rsa.n() {
                    assert!(!g.checks_out(&input, &sq.to_vec()).unwrap());
                    assert!(!plain.checks_out(&input, &sq.to_vec()).unwrap());
                }
            }
        }
    }

    #[test]
    fn be_cmp_ignores_leading_zeros() {
        assert!(be_cmp(&[0, 0, 5], &[5]).is_eq());
        assert!(be_cmp(&[1, 0], &[0xff]).is_gt());
        assert!(be_cmp(&[], &[0]).is_eq());
    }
}
