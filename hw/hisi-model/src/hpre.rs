//! The HPRE engine (docs/hardware-interface.md §5): RSA modular exponentiation, plain and
//! CRT, computed with libcrypto's bignums.

#![forbid(unsafe_code)]

use std::cmp::Ordering;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::error::ErrorStack;

use crate::bn::{mod_exp_x2, MontCtx};
use crate::config::ApiVersion;
use crate::engine::{DmaAccess, Engine, Failure, Job, Outcome};
use crate::layout::hpre::{
    completed_dw0, HpreSqe, ALG_NC_CRT, ALG_NC_NCRT, DONE_INIT, ETYPE1_ADDR, ETYPE_ADDR, ETYPE_HW,
    ETYPE_PARAM, SQE_SIZE, SQE_WORDS,
};

/// Key sizes the engine accepts, in bytes (RSA 1024, 2048, 3072, 4096).
pub const KEY_SIZES: [usize; 4] = [128, 256, 384, 512];

/// Why an HPRE computation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HpreError {
    /// The algorithm code is not one the model implements.
    #[error("unknown or unsupported HPRE algorithm code {0:#x}")]
    UnknownAlg(u8),
    /// The key size is not 128, 256, 384 or 512 bytes.
    #[error("unsupported key size of {0} bytes")]
    KeySize(usize),
    /// A buffer has the wrong length.
    #[error("{what} is {got} bytes, expected {want}")]
    Length {
        /// Which buffer.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length required.
        want: usize,
    },
    /// The input operand is not below the modulus.
    #[error("input is not below the modulus")]
    InputNotReduced,
    /// The key block cannot be used (zero or even modulus or prime).
    #[error("invalid key: {0}")]
    BadKey(&'static str),
    /// libcrypto failed.
    #[error("bignum: {0}")]
    Bignum(#[from] ErrorStack),
}

/// Bytes of the key block for `alg` at `key_sz`: `2*key_sz` for alg 0, `5*key_sz/2` for
/// alg 1.
pub fn key_block_len(alg: u8, key_sz: usize) -> Result<usize, HpreError> {
    if !KEY_SIZES.contains(&key_sz) {
        return Err(HpreError::KeySize(key_sz));
    }
    match alg {
        ALG_NC_NCRT => Ok(2 * key_sz),
        ALG_NC_CRT => Ok(5 * (key_sz / 2)),
        other => Err(HpreError::UnknownAlg(other)),
    }
}

/// A bignum holding secret material: constant-time, and erased when dropped.
struct Secret(BigNum);

impl Secret {
    fn from_slice(b: &[u8]) -> Result<Secret, ErrorStack> {
        let mut n = BigNum::from_slice(b)?;
        n.set_const_time();
        Ok(Secret(n))
    }
    fn new() -> Result<Secret, ErrorStack> {
        let mut n = BigNum::new()?;
        n.set_const_time();
        Ok(Secret(n))
    }
}

impl std::ops::Deref for Secret {
    type Target = BigNumRef;
    fn deref(&self) -> &BigNumRef {
        &self.0
    }
}

impl std::ops::DerefMut for Secret {
    fn deref_mut(&mut self) -> &mut BigNumRef {
        &mut self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.clear();
    }
}

fn check_len(what: &'static str, got: usize, want: usize) -> Result<(), HpreError> {
    if got == want {
        Ok(())
    } else {
        Err(HpreError::Length { what, got, want })
    }
}

fn usable_modulus(m: &BigNumRef, what: &'static str) -> Result<(), HpreError> {
    if m.num_bits() == 0 {
        return Err(HpreError::BadKey(what));
    }
    if !m.is_odd() {
        return Err(HpreError::BadKey(what));
    }
    Ok(())
}

/// The engine's computation, callable directly (benchmarks, differential tests).
///
/// `alg` 0 (`NC_NCRT`): `key_block` = `e‖n` or `d‖n`, each `key_sz` bytes;
/// `out = input^exp mod n`. `alg` 1 (`NC_CRT`): `key_block` = `dq‖dp‖q‖p‖qinv`, each
/// `key_sz/2` bytes; the CRT private operation. All numbers big-endian, right-aligned;
/// `input` and `out` are `key_sz` bytes and `out` is left-padded with zeros. On error `out`
/// is left unchanged.
pub fn hpre_compute(
    alg: u8,
    key_sz: usize,
    key_block: &[u8],
    input: &[u8],
    out: &mut [u8],
) -> Result<(), HpreError> {
    let klen = key_block_len(alg, key_sz)?;
    check_len("key block", key_block.len(), klen)?;
    check_len("input", input.len(), key_sz)?;
    check_len("output", out.len(), key_sz)?;
    let mut ctx = BigNumContext::new_secure()?;
    let msg = BigNum::from_slice(input)?;
    let result = if alg == ALG_NC_NCRT {
        let exp = Secret::from_slice(&key_block[..key_sz])?;
        let n = BigNum::from_slice(&key_block[key_sz..])?;
        usable_modulus(&n, "modulus is zero or even")?;
        if msg.ucmp(&n) != Ordering::Less {
            return Err(HpreError::InputNotReduced);
        }
        let mut r = Secret::new()?;
        r.mod_exp(&msg, &exp, &n, &mut ctx)?;
        r.to_vec_padded(key_sz as i32)?
    } else {
        let h = key_sz / 2;
        let dq = Secret::from_slice(&key_block[..h])?;
        let dp = Secret::from_slice(&key_block[h..2 * h])?;
        let q = Secret::from_slice(&key_block[2 * h..3 * h])?;
        let p = Secret::from_slice(&key_block[3 * h..4 * h])?;
        let qinv = Secret::from_slice(&key_block[4 * h..5 * h])?;
        usable_modulus(&p, "prime p is zero or even")?;
        usable_modulus(&q, "prime q is zero or even")?;
        let mut n = Secret::new()?;
        n.checked_mul(&p, &q, &mut ctx)?;
        if msg.ucmp(&n) != Ordering::Less {
            return Err(HpreError::InputNotReduced);
        }
        // m1 = (c mod p)^dp mod p; m2 = (c mod q)^dq mod q.
        let mut cp = Secret::new()?;
        cp.nnmod(&msg, &p, &mut ctx)?;
        let mut cq = Secret::new()?;
        cq.nnmod(&msg, &q, &mut ctx)?;
        let mut m1 = Secret::new()?;
        let mut m2 = Secret::new()?;
        with_prime_monts(&key_block[2 * h..4 * h], &p, &q, |monts| {
            mod_exp_x2(
                &mut m1, &cp, &dp, &p, &mut m2, &cq, &dq, &q, monts, &mut ctx,
            )
        })?;
        // h = qinv * (m1 - m2) mod p; m = m2 + h * q.
        let mut diff = Secret::new()?;
        diff.mod_sub(&m1, &m2, &p, &mut ctx)?;
        let mut hh = Secret::new()?;
        hh.mod_mul(&qinv, &diff, &p, &mut ctx)?;
        let mut hq = Secret::new()?;
        hq.checked_mul(&hh, &q, &mut ctx)?;
        let mut m = Secret::new()?;
        m.checked_add(&m2, &hq)?;
        if m.num_bytes() as usize > key_sz {
            // Only a key block whose parts do not belong together gets here.
            return Err(HpreError::BadKey("CRT parameters are inconsistent"));
        }
        m.to_vec_padded(key_sz as i32)?
    };
    out.copy_from_slice(&result);
    wipe(result);
    Ok(())
}

/// Montgomery contexts of recently used CRT primes, per engine thread. Building them is
/// part of every request otherwise; the model's speed is what the benchmarks compare with
/// software, so it does what libcrypto does for a key it uses again. Entries hold secret
/// primes: the key bytes are wiped when an entry is evicted.
struct PrimeCache {
    entries: Vec<(Vec<u8>, MontCtx, MontCtx)>,
}

const PRIME_CACHE_ENTRIES: usize = 8;

impl Drop for PrimeCache {
    fn drop(&mut self) {
        for (k, _, _) in &mut self.entries {
            k.fill(0);
        }
    }
}

thread_local! {
    static PRIMES: std::cell::RefCell<PrimeCache> =
        const { std::cell::RefCell::new(PrimeCache { entries: Vec::new() }) };
}

/// Runs `f` with the Montgomery contexts of `p` and `q` (`qp` = the `q‖p` bytes of the key
/// block, the cache key), building and caching them on first use.
fn with_prime_monts<R>(
    qp: &[u8],
    p: &BigNumRef,
    q: &BigNumRef,
    f: impl FnOnce(Option<(&MontCtx, &MontCtx)>) -> Result<R, ErrorStack>,
) -> Result<R, ErrorStack> {
    PRIMES.with(|cell| {
        let Ok(mut cache) = cell.try_borrow_mut() else {
            return f(None);
        };
        let i = match cache
            .entries
            .iter()
            .position(|(k, _, _)| k.as_slice() == qp)
        {
            Some(i) => i,
            None => {
                let entry = (qp.to_vec(), MontCtx::new(p)?, MontCtx::new(q)?);
                if cache.entries.len() == PRIME_CACHE_ENTRIES {
                    let (mut old, _, _) = cache.entries.remove(0);
                    old.fill(0);
                }
                cache.entries.push(entry);
                cache.entries.len() - 1
            }
        };
        let (_, mp, mq) = &cache.entries[i];
        f(Some((mp, mq)))
    })
}

/// Zeroes a buffer that held secret material before freeing it.
fn wipe(mut v: Vec<u8>) {
    v.fill(0);
    std::hint::black_box(&v);
}

/// The HPRE engine: 64-byte SQEs, RSA on qc_type 0 queues.
#[derive(Debug, Default, Clone, Copy)]
pub struct HpreEngine;

impl HpreEngine {
    fn run(&self, job: &Job<'_>, s: &HpreSqe) -> Result<(), (u16, u16)> {
        const PARAM: (u16, u16) = (ETYPE_PARAM, 0);
        const ADDR: (u16, u16) = (ETYPE_ADDR, ETYPE1_ADDR);
        if u32::from(s.done) != DONE_INIT {
            return Err(PARAM);
        }
        // RSA and DH run on qc_type 0 queues only (qc_type 1 is the ECC channel).
        if job.qc_type != 0 {
            return Err(PARAM);
        }
        let key_sz = s.key_bytes();
        let klen = key_block_len(s.alg, key_sz).map_err(|_| PARAM)?;
        let dma: &dyn DmaAccess = job.dma;
        let key_r = dma.translate(s.key, klen).map_err(|_| ADDR)?;
        let in_r = dma.translate(s.input, key_sz).map_err(|_| ADDR)?;
        let out_r = dma.translate(s.out, key_sz).map_err(|_| ADDR)?;
        let mut key = vec![0u8; klen];
        key_r.read_bytes(0, &mut key);
        let mut input = vec![0u8; key_sz];
        in_r.read_bytes(0, &mut input);
        let mut out = vec![0u8; key_sz];
        let r = hpre_compute(s.alg, key_sz, &key, &input, &mut out);
        wipe(key);
        if r.is_ok() {
            out_r.write_bytes(0, &out);
        }
        wipe(out);
        r.map_err(|_| PARAM)
    }
}

impl Engine for HpreEngine {
    fn driver(&self) -> &'static str {
        "hisi_hpre"
    }

    fn sqe_size(&self) -> usize {
        SQE_SIZE
    }

    fn algorithms(&self, _api: ApiVersion) -> Vec<String> {
        vec!["rsa".to_string()]
    }

    fn process(&self, job: &Job<'_>, sqe: &mut [u32]) -> Outcome {
        let Some(words) = sqe
            .get(..SQE_WORDS)
            .and_then(|w| <&[u32; 16]>::try_from(w).ok())
        else {
            return Outcome::Error;
        };
        let s = HpreSqe::decode(words);
        match self.run(job, &s) {
            Ok(()) => {
                sqe[0] = completed_dw0(sqe[0], 0, 0);
                Outcome::Ok
            }
            Err((etype, etype1)) => {
                sqe[0] = completed_dw0(sqe[0], etype, etype1);
                if etype == ETYPE_ADDR {
                    Outcome::AddressFault
                } else {
                    Outcome::Error
                }
            }
        }
    }

    fn fail(&self, sqe: &mut [u32], why: Failure) {
        match why {
            Failure::Injected | Failure::Internal => {
                if let Some(w) = sqe.first_mut() {
                    *w = completed_dw0(*w, ETYPE_HW, 0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::{Padding, Rsa};

    fn pad(b: &BigNumRef, w: usize) -> Vec<u8> {
        b.to_vec_padded(w as i32).unwrap()
    }

    #[test]
    fn matches_libcrypto_for_public_private_and_crt() {
        for bits in [1024u32, 2048] {
            let k = bits as usize / 8;
            let h = k / 2;
            let rsa = Rsa::generate(bits).unwrap();
            let mut msg = vec![0u8; k];
            msg[1..]
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = i as u8);

            let mut want = vec![0u8; k];
            rsa.private_encrypt(&msg, &mut want, Padding::NONE).unwrap();

            let mut key = pad(rsa.d(), k);
            key.extend(pad(rsa.n(), k));
            let mut out = vec![0u8; k];
            hpre_compute(0, k, &key, &msg, &mut out).unwrap();
            assert_eq!(out, want, "non-CRT private, {bits}");

            let mut crt = Vec::new();
            for part in [rsa.dmq1(), rsa.dmp1(), rsa.q(), rsa.p(), rsa.iqmp()] {
                crt.extend(pad(part.unwrap(), h));
            }
            let mut out2 = vec![0u8; k];
            hpre_compute(1, k, &crt, &msg, &mut out2).unwrap();
            assert_eq!(out2, want, "CRT, {bits}");

            let mut pubkey = pad(rsa.e(), k);
            pubkey.extend(pad(rsa.n(), k));
            let mut back = vec![0u8; k];
            hpre_compute(0, k, &pubkey, &out, &mut back).unwrap();
            assert_eq!(back, msg, "public, {bits}");
        }
    }

    #[test]
    fn refuses_bad_parameters() {
        let k = 128;
        let rsa = Rsa::generate(1024).unwrap();
        let mut key = pad(rsa.e(), k);
        key.extend(pad(rsa.n(), k));
        let mut out = vec![7u8; k];
        let big = pad(rsa.n(), k);
        assert!(matches!(
            hpre_compute(0, k, &key, &big, &mut out),
            Err(HpreError::InputNotReduced)
        ));
        assert!(matches!(
            hpre_compute(0, 64, &key[..128], &big[..64], &mut out[..64]),
            Err(HpreError::KeySize(64))
        ));
        assert!(matches!(
            hpre_compute(2, k, &key, &big, &mut out),
            Err(HpreError::UnknownAlg(2))
        ));
        assert!(matches!(
            hpre_compute(0, k, &key[..200], &big, &mut out),
            Err(HpreError::Length { .. })
        ));
        let zero = vec![0u8; 2 * k];
        assert!(matches!(
            hpre_compute(0, k, &zero, &vec![0u8; k], &mut out),
            Err(HpreError::BadKey(_))
        ));
        let mut even = key.clone();
        even[2 * k - 1] &= 0xfe;
        assert!(hpre_compute(0, k, &even, &vec![1u8; k], &mut out).is_err());
        let crt_zero = vec![0u8; 5 * k / 2];
        assert!(hpre_compute(1, k, &crt_zero, &vec![1u8; k], &mut out).is_err());
        assert_eq!(out, vec![7u8; k], "output untouched on error");
    }
}
