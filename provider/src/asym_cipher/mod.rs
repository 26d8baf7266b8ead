//! RSA asymmetric cipher: encrypt and decrypt with PKCS#1 v1.5, OAEP (digest, MGF1 digest,
//! label) or no padding; TLS RSA key exchange (`pkcs1-tls`) is handed whole to the default
//! provider, whose implicit rejection must stay constant time. Padding through libcrypto,
//! the exponentiation through `policy::raw`.
//!
//! This file is the operation's logic, in safe code; `ffi.rs` holds its C entry points and
//! dispatch table.

// `deny`, not `forbid`: a forbid would extend to the child `ffi`, which must use unsafe.
#![deny(unsafe_code)]

pub mod ffi;

use std::ffi::c_int;
use std::sync::Arc;

use crate::ctx::ProvCtx;
use crate::error::{fail, Error, Reason, Result};
use crate::ffi::{
    RSA_NO_PADDING, RSA_PKCS1_OAEP_PADDING, RSA_PKCS1_PADDING, RSA_PKCS1_WITH_TLS_PADDING,
    RSA_X931_PADDING,
};
use crate::key::KeyMaterial;
use crate::keymgmt::{KeyData, KeyType};
use crate::ossl::Md;
use crate::outbuf::{OutBuf, Sink};
use crate::padding;
use crate::params::{Input, Output};
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

    fn new(prov: Arc<ProvCtx>) -> CipherCtx {
        CipherCtx {
            prov,
            key: None,
            op: Op::None,
            pad: RSA_PKCS1_PADDING,
            md: None,
            mgf1: None,
            label: Vec::new(),
            tls_client_version: 0,
            tls_negotiated_version: 0,
        }
    }

    /// Starts operation `op` with `kd`'s key and the settings in `input`.
    fn init(&mut self, op: Op, kd: &KeyData, input: Input<'_>) -> Result<()> {
        let key = kd
            .key()
            .ok_or_else(|| Error::new(Reason::InvalidKey, "empty key"))?;
        if kd.kind() == KeyType::RsaPss {
            return fail(
                Reason::Unsupported,
                "an RSA-PSS key is for signatures only, not encryption",
            );
        }
        if op == Op::Decrypt && key.private.is_none() {
            return fail(Reason::InvalidKey, "decryption needs a private key");
        }
        self.key = Some(key);
        self.op = op;
        self.pad = RSA_PKCS1_PADDING;
        self.md = None;
        self.mgf1 = None;
        self.label.clear();
        self.tls_client_version = 0;
        self.tls_negotiated_version = 0;
        self.set_params(input)
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
                    "none" => RSA_NO_PADDING,
                    "pkcs1" => RSA_PKCS1_PADDING,
                    "oaep" | "oeap" => RSA_PKCS1_OAEP_PADDING,
                    "x931" => RSA_X931_PADDING,
                    "pkcs1-tls" => RSA_PKCS1_WITH_TLS_PADDING,
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
                RSA_NO_PADDING | RSA_PKCS1_PADDING | RSA_PKCS1_OAEP_PADDING => {}
                RSA_PKCS1_WITH_TLS_PADDING if self.op == Op::Decrypt => {}
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
            RSA_NO_PADDING => {
                if msg.len() != k {
                    return fail(
                        Reason::WrongInputLength,
                        format!("no padding needs exactly {k} bytes, got {}", msg.len()),
                    );
                }
                msg.to_vec()
            }
            RSA_PKCS1_PADDING => padding::add_type2(k, msg)?,
            RSA_PKCS1_OAEP_PADDING => {
                let (md, mgf1) = self.oaep_md()?;
                padding::add_oaep(k, msg, &self.label, &md, &mgf1)?
            }
            other => return fail(Reason::Unsupported, format!("pad-mode {other}")),
        };
        policy::raw(&key, false, &em)
    }

    /// The output length of encrypt and decrypt: the modulus length.
    fn out_size(&self) -> Result<usize> {
        Ok(self.key()?.size())
    }

    /// `encrypt` with the caller's output convention; a buffer smaller than the modulus is
    /// refused before anything is computed.
    fn encrypt_into(&mut self, out: OutBuf<'_>, msg: &[u8]) -> Result<()> {
        out.answer(self, Self::out_size, |c, sink| {
            let k = c.out_size()?;
            if sink.cap() < k {
                return fail(
                    Reason::BufferTooSmall,
                    format!("need {k} bytes, buffer has {}", sink.cap()),
                );
            }
            sink.put(&c.encrypt(msg)?)
        })
    }

    /// `decrypt` with the caller's output convention.
    fn decrypt_into(&mut self, out: OutBuf<'_>, ct: &[u8]) -> Result<()> {
        out.answer(self, Self::out_size, |c, sink| {
            c.out_size()?;
            c.decrypt(ct, sink)
        })
    }

    fn decrypt(&mut self, ct: &[u8], out: &mut Sink<'_>) -> Result<usize> {
        if self.op != Op::Decrypt {
            return fail(Reason::NotInitialized, "decrypt without decrypt_init");
        }
        let key = self.key()?.clone();
        let k = key.size();
        // As the default provider (rsa_ossl_private_decrypt): the ciphertext is the
        // big-endian integer it is, so a shorter one (even empty, the integer 0) is that
        // number left-padded to the modulus length; a longer one is refused whatever its
        // value, one not below n by the raw operation.
        if ct.len() > k {
            return fail(
                Reason::WrongInputLength,
                format!(
                    "ciphertext is {} bytes, longer than the {k}-byte modulus",
                    ct.len()
                ),
            );
        }
        if self.pad == RSA_PKCS1_WITH_TLS_PADDING {
            stats::bump(Counter::FallbackPadding);
            let sw = self.prov.software()?;
            return sw.decrypt_tls(
                key.software()?,
                ct,
                self.tls_client_version,
                self.tls_negotiated_version,
                out.bytes(),
            );
        }
        let em = policy::raw(&key, true, &left_pad(ct, k))?;
        let msg = match self.pad {
            RSA_NO_PADDING => em,
            RSA_PKCS1_PADDING => padding::check_type2(&em)?,
            RSA_PKCS1_OAEP_PADDING => {
                let (md, mgf1) = self.oaep_md()?;
                padding::check_oaep(&em, &self.label, &md, &mgf1)?
            }
            other => return fail(Reason::Unsupported, format!("pad-mode {other}")),
        };
        out.put(&msg)
    }

    fn get_params(&mut self, out: &Output) -> Result<()> {
        if let Some(s) = out.slot(c"pad-mode") {
            if s.wants_utf8() {
                s.utf8(match self.pad {
                    RSA_NO_PADDING => "none",
                    RSA_PKCS1_OAEP_PADDING => "oaep",
                    RSA_PKCS1_WITH_TLS_PADDING => "pkcs1-tls",
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

/// `x` (at most `k` bytes) left-padded with zeros to `k` bytes: the same integer.
fn left_pad(x: &[u8], k: usize) -> Vec<u8> {
    let mut v = vec![0u8; k.saturating_sub(x.len())];
    v.extend_from_slice(x);
    v
}

#[cfg(test)]
mod tests {
    use super::left_pad;

    #[test]
    fn a_short_ciphertext_is_the_same_integer_at_the_modulus_length() {
        assert_eq!(left_pad(&[], 4), [0, 0, 0, 0]);
        assert_eq!(left_pad(&[1, 2], 4), [0, 0, 1, 2]);
        assert_eq!(left_pad(&[1, 2, 3, 4], 4), [1, 2, 3, 4]);
    }
}
