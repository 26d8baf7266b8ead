//! The fault-attack guard: every private-key result the device returns is checked with the
//! public exponent (`result^e ≡ input (mod n)`) before it is used, so that a faulty
//! computation (Bellcore: one wrong CRT half gives away a prime) never leaves the provider.
//! A rejected result is counted and redone in software (see policy.rs).
//!
//! For a two-prime key with balanced primes the check is done modulo p and modulo q (by the
//! CRT exactly as strong as modulo n, and half the work), with Montgomery arithmetic and
//! without a division: a number below n = p·q is below p·R when q < R, so one Montgomery
//! reduction takes it modulo p (as x·R⁻¹), and both sides are compared in that form.
//! Otherwise it is done modulo n. The numbers are built once per key (cached by the key, see
//! key.rs).

#![forbid(unsafe_code)]

use crate::error::{fail, Reason, Result};
use crate::magnitude::be_cmp;
use crate::ossl::{self, Bn, BnCtx, BnCtxRef, BnRef, Mont};
use crate::stats::{self, Counter};

/// The guard of one key: n, e and Montgomery contexts — of p and q for a two-prime key with
/// balanced primes, else of n.
pub struct FaultGuard {
    n: Bn,
    /// n, big-endian, minimal (for the range checks).
    n_be: Vec<u8>,
    e: Bn,
    mont: Mont,
    primes: Option<[MontModulus; 2]>,
}

impl FaultGuard {
    /// The guard of the key (n, e, and its two primes if it is a two-prime key),
    /// big-endian: prime-wise when the primes allow it, else modulo n.
    pub fn of_key(n: &[u8], e: &[u8], primes: Option<(&[u8], &[u8])>) -> Result<FaultGuard> {
        match primes {
            Some((p, q)) => FaultGuard::with_primes(n, e, p, q),
            None => FaultGuard::modulo_n(n, e),
        }
    }

    /// The guard of the public key (n, e): checks modulo n.
    pub fn modulo_n(n: &[u8], e: &[u8]) -> Result<FaultGuard> {
        let n = Bn::from_be(n)?;
        let e = Bn::from_be(e)?;
        let mont = Mont::new(&n)?;
        Ok(FaultGuard {
            n_be: n.to_be(),
            n,
            e,
            mont,
            primes: None,
        })
    }

    /// The guard of a two-prime key whose primes `p`, `q` (with p·q = n, checked at import)
    /// are known: checks modulo p and modulo q when both are below the other's R.
    pub fn with_primes(n: &[u8], e: &[u8], p: &[u8], q: &[u8]) -> Result<FaultGuard> {
        let mut g = FaultGuard::modulo_n(n, e)?;
        let (p, q) = (
            MontModulus::new(Bn::from_be(p)?, &g.e)?,
            MontModulus::new(Bn::from_be(q)?, &g.e)?,
        );
        // A number below n = p·q is below p·R when q < R (and likewise for q): then one
        // Montgomery reduction takes it modulo p, no division. Always so for balanced
        // primes; otherwise the check stays modulo n.
        if q.m.bits() <= p.r_bits && p.m.bits() <= q.r_bits {
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
            // both sides compared as x·R⁻¹ mod p, fully reduced (R is invertible mod p).
            Some(primes) => {
                for m in primes {
                    let rr = m.reduce_wide(&r, &ctx)?;
                    let back = m.pow_reduced(&rr, &self.e, &ctx)?;
                    let wr = m.reduce_wide(&want, &ctx)?;
                    if !ossl::bn_eq(&back, &wr) {
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

    /// Whether the device's `result` for the private operation on `input` may be used. A
    /// rejection is counted (`fault_guard_trips`, `device_errors`) and logged.
    pub fn admit(&self, input: &[u8], result: &[u8]) -> Result<bool> {
        let ok = self.checks_out(input, result)?;
        if !ok {
            stats::bump(Counter::FaultGuardTrips);
            stats::bump(Counter::DeviceErrors);
            wd_core::wd_log!(Warn, "wd provider: fault guard rejected a device result");
        }
        Ok(ok)
    }
}

/// Arithmetic modulo a prime factor with Montgomery products, without divisions: what the
/// prime-wise check needs per request.
struct MontModulus {
    m: Bn,
    mont: Mont,
    /// Bits of Montgomery's radix R (the modulus's bit length rounded up to whole words).
    r_bits: u32,
    /// R^(2e-1) mod m, for the key's public exponent e: one product with it turns the
    /// exponentiation's result back into the form of a reduced number (`pow_reduced`).
    fold: Bn,
}

impl MontModulus {
    /// Sets up arithmetic modulo odd `m` for the public exponent `e`.
    fn new(m: Bn, e: &BnRef) -> Result<MontModulus> {
        let mont = Mont::new(&m)?;
        let word = 8 * std::mem::size_of::<openssl_sys::BN_ULONG>() as u32;
        let r_bits = m.bits().div_ceil(word) * word;
        let ctx = BnCtx::new()?;
        let radix = Bn::power_of_two(r_bits)?;
        let r = ossl::nnmod(&radix, &m)?;
        // R^e·R^e·R⁻¹ = R^(2e-1).
        let re = ossl::mod_exp(&r, e, &m, &mont)?;
        let fold = mont.mul(&re, &re, &ctx)?;
        Ok(MontModulus {
            m,
            mont,
            r_bits,
            fold,
        })
    }

    /// `x·R⁻¹ mod m`, fully reduced, for any `x < m·R` (a number up to twice the modulus's
    /// width): one Montgomery reduction.
    fn reduce_wide(&self, x: &BnRef, ctx: &BnCtxRef) -> Result<Bn> {
        if x.bits() > 2 * self.r_bits {
            return fail(
                Reason::Internal,
                "number too wide for a Montgomery reduction",
            );
        }
        self.mont.reduce(x, ctx)
    }

    /// `x^e·R⁻¹ mod m` for `xr = x·R⁻¹ mod m` and a public exponent `e`, the key's (square
    /// and multiply; not constant time, for public values only). A Montgomery product of
    /// `x^i·R^a` and `x^j·R^b` is `x^(i+j)·R^(a+b-1)`, so from `x·R⁻¹` every power `x^j`
    /// the ladder passes comes as `x^j·R^-(2j-1)`; one product with `R^(2e-1)` then leaves
    /// `x^e·R⁻¹`, with no conversion into or out of Montgomery form.
    fn pow_reduced(&self, xr: &BnRef, e: &BnRef, ctx: &BnCtxRef) -> Result<Bn> {
        let bits = e.bits();
        if bits == 0 {
            return fail(Reason::InvalidKey, "zero public exponent");
        }
        let mut acc = xr.dup()?;
        for i in (0..bits - 1).rev() {
            self.mont.square_in_place(&mut acc, ctx)?;
            if e.bit(i) {
                self.mont.mul_in_place(&mut acc, xr, ctx)?;
            }
        }
        self.mont.mul_in_place(&mut acc, &self.fold, ctx)?;
        Ok(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_accepts_a_right_result_and_rejects_a_faulty_one() {
        // n = 61 * 53 = 3233, e = 17, d = 2753: 65^17 mod n = 2790, so the private
        // operation on 2790 gives 65.
        let g = FaultGuard::modulo_n(&3233u16.to_be_bytes(), &[17]).unwrap();
        let input = 2790u16.to_be_bytes();
        assert!(g.checks_out(&input, &[65]).unwrap());
        assert!(!g.checks_out(&input, &[66]).unwrap());
        assert!(!g.checks_out(&input, &[0]).unwrap());
        // A result not below n is rejected before any arithmetic.
        assert!(!g.checks_out(&input, &3233u16.to_be_bytes()).unwrap());
    }

    #[test]
    fn prime_wise_guard_catches_a_result_wrong_modulo_one_prime_only() {
        let g = FaultGuard::with_primes(&3233u16.to_be_bytes(), &[17], &[61], &[53]).unwrap();
        let input = 2790u16.to_be_bytes();
        assert!(g.checks_out(&input, &[65]).unwrap());
        // 118 ≡ 65 (mod 53) but not (mod 61); 126 ≡ 65 (mod 61) but not (mod 53): the
        // faulty half of a CRT computation (Bellcore) is caught either way.
        assert!(!g.checks_out(&input, &[118]).unwrap());
        assert!(!g.checks_out(&input, &[126]).unwrap());
        assert!(!g.checks_out(&input, &3233u16.to_be_bytes()).unwrap());
    }

    /// The prime-wise check (Montgomery reductions, no division) against a plain
    /// `result^e mod n` on real keys of three sizes, and with public exponents other than
    /// 65537 (the fold constant R^(2e-1) depends on e: small, Fermat-like, wider than a
    /// word): right results pass, and a result off by one, or wrong modulo one prime only,
    /// fails.
    #[test]
    fn prime_wise_guard_agrees_with_the_check_modulo_n_on_real_keys() {
        let keys = [
            (1024u32, "65537"),
            (2048, "65537"),
            (3072, "65537"),
            (1024, "3"),
            (1024, "17"),
            (1024, "4294967311"),
            (1024, "18446744073709551629"),
        ];
        for (bits, e) in keys {
            let e = openssl::bn::BigNum::from_dec_str(e).unwrap();
            let rsa = openssl::rsa::Rsa::generate_with_e(bits, &e).unwrap();
            let (n, e) = (rsa.n().to_vec(), e.to_vec());
            let (p, q) = (rsa.p().unwrap(), rsa.q().unwrap());
            let g = FaultGuard::with_primes(&n, &e, &p.to_vec(), &q.to_vec()).unwrap();
            assert!(g.primes.is_some(), "{bits}-bit key: balanced primes");
            let plain = FaultGuard::modulo_n(&n, &e).unwrap();
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            for _ in 0..6 {
                let mut m = openssl::bn::BigNum::new().unwrap();
                rsa.n().rand_range(&mut m).unwrap();
                let mut s = openssl::bn::BigNum::new().unwrap();
                s.mod_exp(&m, rsa.d(), rsa.n(), &mut ctx).unwrap();
                let input = m.to_vec();
                let what = format!("{bits}-bit key, e = {e:?}");
                assert!(g.checks_out(&input, &s.to_vec()).unwrap(), "{what}");
                assert!(plain.checks_out(&input, &s.to_vec()).unwrap(), "{what}");
                // Off by one: wrong modulo both primes.
                let mut s1 = openssl::bn::BigNum::new().unwrap();
                s1.checked_add(&s, &openssl::bn::BigNum::from_u32(1).unwrap())
                    .unwrap();
                if s1 < *rsa.n() {
                    assert!(!g.checks_out(&input, &s1.to_vec()).unwrap(), "{what}");
                }
                // Wrong modulo p only: s + q is ≡ s (mod q), not (mod p).
                let mut sq = openssl::bn::BigNum::new().unwrap();
                sq.checked_add(&s, q).unwrap();
                if sq < *rsa.n() {
                    assert!(!g.checks_out(&input, &sq.to_vec()).unwrap(), "{what}");
                    assert!(!plain.checks_out(&input, &sq.to_vec()).unwrap(), "{what}");
                }
            }
        }
    }

    #[test]
    fn a_rejected_result_is_counted() {
        let g = FaultGuard::modulo_n(&3233u16.to_be_bytes(), &[17]).unwrap();
        let input = 2790u16.to_be_bytes();
        let trips = || stats::snapshot()[Counter::FaultGuardTrips as usize];
        let before = trips();
        assert!(g.admit(&input, &[65]).unwrap());
        assert!(!g.admit(&input, &[66]).unwrap());
        assert!(trips() > before);
    }
}
