//! Shared set-up of the end-to-end tests: a private device model per test, RSA keys.
#![allow(dead_code)]

pub mod uacce;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hisi_model::{ApiVersion, ModelBackend, ModelConfig};
use openssl::bn::{BigNum, BigNumContext};
use openssl::pkey::Private;
use openssl::rsa::Rsa;
use wd_core::wait::WaitPolicy;
use wd_core::Device;

/// A device model of its own (own instance directory), and its HPRE device.
pub struct Model {
    pub backend: Arc<ModelBackend>,
    pub device: Device,
    _dir: tempfile::TempDir,
}

pub fn model_with(api: ApiVersion, tweak: impl FnOnce(&mut ModelConfig)) -> Model {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = ModelConfig {
        api,
        instance_dir: dir.path().to_path_buf(),
        ..ModelConfig::default()
    };
    tweak(&mut cfg);
    let backend = ModelBackend::new(cfg).expect("model backend");
    let info = wd_core::Backend::devices(&*backend)
        .expect("model devices")
        .into_iter()
        .find(|d| d.driver() == hisi_hpre::DRIVER)
        .expect("an HPRE device");
    let device = Device::new(info, backend.clone());
    Model {
        backend,
        device,
        _dir: dir,
    }
}

pub fn model(api: ApiVersion) -> Model {
    model_with(api, |_| {})
}

pub fn policy(timeout_ms: u64) -> WaitPolicy {
    WaitPolicy {
        timeout: Duration::from_millis(timeout_ms),
        ..WaitPolicy::default()
    }
}

/// The parts of an RSA key, big-endian.
pub struct Parts {
    pub bits: u32,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub d: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
    pub dp: Vec<u8>,
    pub dq: Vec<u8>,
    pub qinv: Vec<u8>,
    pub rsa: Rsa<Private>,
}

impl Parts {
    pub fn of(rsa: Rsa<Private>) -> Parts {
        Parts {
            bits: rsa.n().num_bits() as u32,
            n: rsa.n().to_vec(),
            e: rsa.e().to_vec(),
            d: rsa.d().to_vec(),
            p: rsa.p().unwrap().to_vec(),
            q: rsa.q().unwrap().to_vec(),
            dp: rsa.dmp1().unwrap().to_vec(),
            dq: rsa.dmq1().unwrap().to_vec(),
            qinv: rsa.iqmp().unwrap().to_vec(),
            rsa,
        }
    }

    pub fn bytes(&self) -> usize {
        self.n.len()
    }

    pub fn public(&self) -> hisi_hpre::RsaKey<'_> {
        hisi_hpre::RsaKey::Public {
            n: &self.n,
            e: &self.e,
        }
    }

    pub fn private(&self) -> hisi_hpre::RsaKey<'_> {
        hisi_hpre::RsaKey::Private {
            n: &self.n,
            d: &self.d,
        }
    }

    pub fn crt(&self) -> hisi_hpre::RsaKey<'_> {
        hisi_hpre::RsaKey::PrivateCrt {
            n_bytes: self.n.len(),
            p: &self.p,
            q: &self.q,
            dp: &self.dp,
            dq: &self.dq,
            qinv: &self.qinv,
        }
    }

    /// A random message below n, `bytes()` long (leading zero byte).
    pub fn message(&self) -> Vec<u8> {
        let mut m = vec![0u8; self.bytes()];
        openssl::rand::rand_bytes(&mut m[1..]).unwrap();
        m
    }

    /// m^e mod n by libcrypto, `bytes()` long.
    pub fn sw_public(&self, m: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.bytes()];
        let k = self
            .rsa
            .public_encrypt(m, &mut out, openssl::rsa::Padding::NONE);
        assert_eq!(k.unwrap(), self.bytes());
        out
    }

    /// c^d mod n by libcrypto, `bytes()` long.
    pub fn sw_private(&self, c: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.bytes()];
        let k = self
            .rsa
            .private_decrypt(c, &mut out, openssl::rsa::Padding::NONE);
        assert_eq!(k.unwrap(), self.bytes());
        out
    }
}

/// One key per size, generated once per test binary.
pub fn key(bits: u32) -> &'static Parts {
    static KEYS: OnceLock<std::sync::Mutex<Vec<&'static Parts>>> = OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    let mut g = keys.lock().unwrap();
    if let Some(k) = g.iter().find(|k| k.bits == bits) {
        return k;
    }
    let k: &'static Parts = Box::leak(Box::new(Parts::of(Rsa::generate(bits).unwrap())));
    g.push(k);
    k
}

/// A cheap key for volume tests: e = 3, so software checks cost almost nothing.
pub fn cheap_key() -> &'static Parts {
    static K: OnceLock<Parts> = OnceLock::new();
    K.get_or_init(|| {
        let e = BigNum::from_u32(3).unwrap();
        Parts::of(Rsa::generate_with_e(1024, &e).unwrap())
    })
}

/// m^e mod n with plain bignums, left-padded to `width`.
pub fn modexp(m: &[u8], e: &[u8], n: &[u8], width: usize) -> Vec<u8> {
    let mut ctx = BigNumContext::new().unwrap();
    let mut r = BigNum::new().unwrap();
    r.mod_exp(
        &BigNum::from_slice(m).unwrap(),
        &BigNum::from_slice(e).unwrap(),
        &BigNum::from_slice(n).unwrap(),
        &mut ctx,
    )
    .unwrap();
    r.to_vec_padded(width as i32).unwrap()
}
