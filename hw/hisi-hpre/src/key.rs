//! RSA keys as the HPRE engine takes them, and the DMA block a job lays out
//! (docs/hardware-interface.md §5.3).
//!
//! Every number is big-endian, right-aligned in a zeroed field: `key_bytes` wide, or
//! `key_bytes/2` for the CRT parameters.
//!
//! | key                 | alg | key block                                 |
//! |---------------------|-----|-------------------------------------------|
//! | public              | 0   | `e` ‖ `n`                                 |
//! | private, non-CRT    | 0   | `d` ‖ `n`                                 |
//! | private, CRT        | 1   | `dq` ‖ `dp` ‖ `q` ‖ `p` ‖ `qinv` (h each) |

#![forbid(unsafe_code)]

use wd_core::dma::strip_leading_zeros;
use wd_core::{Error, Result};

use crate::sqe::{ALG_NC_CRT, ALG_NC_NCRT};

/// Bytes of one job's DMA block.
pub const BLOCK_SIZE: usize = 4096;
/// Offset of the key block (at most 1280 bytes: 4096-bit CRT).
pub const KEY_OFF: usize = 0;
/// Offset of the input operand (at most 512 bytes).
pub const IN_OFF: usize = 2048;
/// Offset of the output operand (at most 512 bytes).
pub const OUT_OFF: usize = 3072;

// The largest operands fit their places: a 4096-bit CRT key block (5 × 256 bytes) or
// non-CRT one (2 × 512) below the input, 512-byte input and output.
const _: () = {
    assert!(KEY_OFF + 5 * 256 <= IN_OFF);
    assert!(KEY_OFF + 2 * 512 <= IN_OFF);
    assert!(IN_OFF + 512 <= OUT_OFF);
    assert!(OUT_OFF + 512 <= BLOCK_SIZE);
};

/// Modulus sizes the engine does, in bytes: RSA-1024, 2048, 3072, 4096.
pub const SUPPORTED_KEY_BYTES: [usize; 4] = [128, 256, 384, 512];

/// True for a modulus size (bytes) the engine does.
pub fn supported_key_bytes(n: usize) -> bool {
    SUPPORTED_KEY_BYTES.contains(&n)
}

/// An RSA key: borrowed big-endian numbers (leading zeros allowed).
#[derive(Debug, Clone, Copy)]
pub enum RsaKey<'a> {
    /// Public key: `in^e mod n` (alg 0, key block `e‖n`).
    Public {
        /// Modulus.
        n: &'a [u8],
        /// Public exponent.
        e: &'a [u8],
    },
    /// Private key without CRT: `in^d mod n` (alg 0, key block `d‖n`).
    Private {
        /// Modulus.
        n: &'a [u8],
        /// Private exponent.
        d: &'a [u8],
    },
    /// Private key in CRT form (alg 1, key block `dq‖dp‖q‖p‖qinv`, each `n_bytes/2` wide).
    PrivateCrt {
        /// Modulus size in bytes (the modulus itself is not given to the engine).
        n_bytes: usize,
        /// First prime.
        p: &'a [u8],
        /// Second prime.
        q: &'a [u8],
        /// `d mod (p-1)`.
        dp: &'a [u8],
        /// `d mod (q-1)`.
        dq: &'a [u8],
        /// `q^-1 mod p`.
        qinv: &'a [u8],
    },
}

/// One number of a key block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// Offset from the key block's start.
    pub off: usize,
    /// Field width in bytes.
    pub width: usize,
    /// Big-endian value, possibly with leading zeros.
    pub value: &'a [u8],
    /// Parameter name, for messages.
    pub name: &'static str,
}

/// Which kind of key a job uses (for the service-time class and wiping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Public = 0,
    Private = 1,
    Crt = 2,
}

impl RsaKey<'_> {
    /// Modulus bytes: the length of `n` without its leading zeros, or `n_bytes` for CRT.
    pub fn key_bytes(&self) -> usize {
        match self {
            RsaKey::Public { n, .. } | RsaKey::Private { n, .. } => strip_leading_zeros(n).len(),
            RsaKey::PrivateCrt { n_bytes, .. } => *n_bytes,
        }
    }

    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            RsaKey::Public { .. } => KeyKind::Public,
            RsaKey::Private { .. } => KeyKind::Private,
            RsaKey::PrivateCrt { .. } => KeyKind::Crt,
        }
    }

    /// True if the key block holds secret material.
    pub fn is_private(&self) -> bool {
        !matches!(self, RsaKey::Public { .. })
    }

    /// The SQE algorithm code for this key.
    pub fn alg(&self) -> u8 {
        match self {
            RsaKey::PrivateCrt { .. } => ALG_NC_CRT,
            _ => ALG_NC_NCRT,
        }
    }

    /// The key block's fields: (offset from the block start, width, value, name), in the
    /// order of hardware-interface §5.3. `key_bytes` must be the key's (supported) size.
    pub(crate) fn fields(&self, key_bytes: usize) -> impl Iterator<Item = Field<'_>> {
        let kb = key_bytes;
        let h = kb / 2;
        let f = |off, width, value, name| {
            Some(Field {
                off,
                width,
                value,
                name,
            })
        };
        let list = match *self {
            RsaKey::Public { n, e } => [f(0, kb, e, "e"), f(kb, kb, n, "n"), None, None, None],
            RsaKey::Private { n, d } => [f(0, kb, d, "d"), f(kb, kb, n, "n"), None, None, None],
            RsaKey::PrivateCrt {
                p, q, dp, dq, qinv, ..
            } => [
                f(0, h, dq, "dq"),
                f(h, h, dp, "dp"),
                f(2 * h, h, q, "q"),
                f(3 * h, h, p, "p"),
                f(4 * h, h, qinv, "qinv"),
            ],
        };
        list.into_iter().flatten()
    }

    /// Checks the key for the engine: a supported size, and every number fitting its field.
    /// An exponent wider than the modulus is an invalid key ([`Error::InvalidArgument`]); a
    /// CRT parameter wider than half the modulus (unbalanced primes) is a valid key the
    /// engine cannot take ([`Error::Unsupported`], so callers fall back to software).
    pub(crate) fn check(&self) -> Result<usize> {
        let kb = self.key_bytes();
        if !supported_key_bytes(kb) {
            return Err(Error::Unsupported(format!(
                "RSA-{} (HPRE does RSA-1024, 2048, 3072 and 4096)",
                kb * 8
            )));
        }
        for Field {
            width, value, name, ..
        } in self.fields(kb)
        {
            let len = strip_leading_zeros(value).len();
            if len <= width {
                continue;
            }
            let msg = format!(
                "RSA-{} key: {name} is {len} bytes, its field {width}",
                kb * 8
            );
            return Err(if matches!(self, RsaKey::PrivateCrt { .. }) {
                Error::Unsupported(msg)
            } else {
                Error::InvalidArgument(msg)
            });
        }
        Ok(kb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for n in [128, 256, 384, 512] {
            assert!(supported_key_bytes(n));
        }
        for n in [0, 64, 192, 255, 257, 1024] {
            assert!(!supported_key_bytes(n));
        }
        let mut n = vec![0u8; 3];
        n.extend([0xc5; 256]);
        let k = RsaKey::Public {
            n: &n,
            e: &[1, 0, 1],
        };
        assert_eq!(k.key_bytes(), 256);
        assert_eq!(k.alg(), 0);
        assert!(!k.is_private());
    }

    #[test]
    fn checks_widths() {
        let n = [0xffu8; 128];
        let wide = [0x01u8; 129];
        assert_eq!(RsaKey::Private { n: &n, d: &n }.check().unwrap(), 128);
        assert!(matches!(
            RsaKey::Private { n: &n, d: &wide }.check(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            RsaKey::Public { n: &n[..100], e: &[3] }.check(),
            Err(Error::Unsupported(m)) if m.contains("RSA-800")
        ));
        let h = [0x7fu8; 64];
        let crt = |p: &[u8]| {
            RsaKey::PrivateCrt {
                n_bytes: 128,
                p,
                q: &h,
                dp: &h,
                dq: &h,
                qinv: &h,
            }
            .check()
        };
        assert_eq!(crt(&h).unwrap(), 128);
        assert!(matches!(crt(&[1u8; 65]), Err(Error::Unsupported(_))));
        // Leading zeros do not count.
        let mut padded = vec![0u8; 10];
        padded.extend(h);
        assert!(crt(&padded).is_ok());
    }
}
