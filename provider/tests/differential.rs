//! Differential tests against the default provider, through the real `openssl` binary:
//! PKCS#1 v1.5 signatures byte-identical; PSS and OAEP (and PKCS#1 v1.5 encryption)
//! cross-verified and cross-decrypted both ways; raw RSA identical. 1024–4096-bit keys run
//! on the device model, 512, 1536 and 8192 through the software fallback; the counters
//! prove each route. On a host without devices (`wd.cnf`, `devices = auto`, an empty sysfs
//! tree) every operation runs in software with the same results: that part needs no device
//! model and also runs against the production build (`scripts/check-production.sh`).

mod common;
use common::*;

struct Case {
    w: World,
    /// The configuration of wd's side.
    wd: Conf,
    key: String,
    public: String,
    md: &'static str,
    bits: u32,
}

impl Case {
    fn new(bits: u32, extra: &[(&str, &str)]) -> Case {
        let mut w = World::new().with("WD_OFFLOAD_PUBLIC", "on");
        for (k, v) in extra {
            w = w.with(k, v);
        }
        let key = key(bits).to_str().unwrap().to_string();
        let public = w.path("pub.pem").to_str().unwrap().to_string();
        ok(w.openssl(
            Conf::Default,
            &["pkey", "-in", &key, "-pubout", "-out", &public],
        ));
        std::fs::write(
            w.path("msg"),
            format!("message for a {bits}-bit key\n").repeat(20),
        )
        .unwrap();
        std::fs::write(w.path("secret"), b"0123456789abcdef").unwrap();
        let md = if bits < 1024 { "sha1" } else { "sha256" };
        Case {
            w,
            wd: Conf::Model,
            key,
            public,
            md,
            bits,
        }
    }

    fn p(&self, name: &str) -> String {
        self.w.path(name).to_str().unwrap().to_string()
    }

    fn run(&self, conf: Conf, args: &[&str]) -> std::process::Output {
        ok(self.w.openssl(conf, args))
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.w.path(name)).unwrap()
    }

    fn sign(&self, conf: Conf, out: &str, opts: &[&str]) {
        let mdarg = format!("-{}", self.md);
        let mut a = vec!["dgst", mdarg.as_str()];
        for o in opts {
            a.extend(["-sigopt", o]);
        }
        let outp = self.p(out);
        let msg = self.p("msg");
        a.extend([
            "-sign",
            self.key.as_str(),
            "-out",
            outp.as_str(),
            msg.as_str(),
        ]);
        self.run(conf, &a);
    }

    fn verify(&self, conf: Conf, sig: &str, opts: &[&str]) {
        let mdarg = format!("-{}", self.md);
        let mut a = vec!["dgst", mdarg.as_str()];
        for o in opts {
            a.extend(["-sigopt", o]);
        }
        let sigp = self.p(sig);
        let msg = self.p("msg");
        a.extend([
            "-verify",
            self.public.as_str(),
            "-signature",
            sigp.as_str(),
            msg.as_str(),
        ]);
        let out = self.run(conf, &a);
        assert!(
            stdout(&out).contains("Verified OK"),
            "{} ({:?}): {}",
            sig,
            conf,
            stdout(&out)
        );
    }

    fn pkeyutl(
        &self,
        conf: Conf,
        op: &str,
        public: bool,
        input: &str,
        output: &str,
        opts: &[&str],
    ) {
        let (i, o) = (self.p(input), self.p(output));
        let mut a = vec!["pkeyutl", op, "-inkey"];
        if public {
            a.extend([self.public.as_str(), "-pubin"]);
        } else {
            a.push(self.key.as_str());
        }
        for x in opts {
            a.extend(["-pkeyopt", x]);
        }
        a.extend(["-in", i.as_str(), "-out", o.as_str()]);
        self.run(conf, &a);
    }

    /// Everything, both directions.
    fn all(&self) {
        // PKCS#1 v1.5 signatures: deterministic, so byte-identical.
        self.sign(self.wd, "sig.wd", &[]);
        self.sign(Conf::Default, "sig.def", &[]);
        assert_eq!(
            self.read("sig.wd"),
            self.read("sig.def"),
            "PKCS#1 v1.5 signatures differ"
        );
        self.verify(self.wd, "sig.def", &[]);

        // PSS, salt = digest length and salt = max; each verified by the other side.
        for (tag, salt) in [("d", "digest"), ("m", "max")] {
            let opts = ["rsa_padding_mode:pss", &format!("rsa_pss_saltlen:{salt}")];
            let opts: Vec<&str> = opts.iter().map(|s| s.as_ref()).collect();
            self.sign(self.wd, &format!("pss{tag}.wd"), &opts);
            self.sign(Conf::Default, &format!("pss{tag}.def"), &opts);
            self.verify(Conf::Default, &format!("pss{tag}.wd"), &opts);
            self.verify(self.wd, &format!("pss{tag}.def"), &opts);
            // And with the salt length recovered automatically.
            self.verify(
                self.wd,
                &format!("pss{tag}.def"),
                &["rsa_padding_mode:pss", "rsa_pss_saltlen:auto"],
            );
        }

        // OAEP with a digest, the MGF1 digest and a label; PKCS#1 v1.5 encryption.
        let oaep_md = format!("rsa_oaep_md:{}", self.md);
        let mgf1 = format!("rsa_mgf1_md:{}", self.md);
        let oaep = [
            "rsa_padding_mode:oaep",
            oaep_md.as_str(),
            mgf1.as_str(),
            "rsa_oaep_label:00c0ffee",
        ];
        let pkcs1 = ["rsa_padding_mode:pkcs1"];
        for (tag, opts) in [("oaep", &oaep[..]), ("pkcs1", &pkcs1[..])] {
            self.pkeyutl(
                Conf::Default,
                "-encrypt",
                true,
                "secret",
                &format!("{tag}.ct.def"),
                opts,
            );
            self.pkeyutl(
                self.wd,
                "-decrypt",
                false,
                &format!("{tag}.ct.def"),
                &format!("{tag}.pt.wd"),
                opts,
            );
            assert_eq!(
                self.read(&format!("{tag}.pt.wd")),
                self.read("secret"),
                "{tag}: wd decrypt"
            );
            self.pkeyutl(
                self.wd,
                "-encrypt",
                true,
                "secret",
                &format!("{tag}.ct.wd"),
                opts,
            );
            self.pkeyutl(
                Conf::Default,
                "-decrypt",
                false,
                &format!("{tag}.ct.wd"),
                &format!("{tag}.pt.def"),
                opts,
            );
            assert_eq!(
                self.read(&format!("{tag}.pt.def")),
                self.read("secret"),
                "{tag}: default decrypt of wd"
            );
        }

        // Raw RSA (no padding): both directions identical.
        let k = self.bits.div_ceil(8) as usize;
        let mut raw = vec![0u8; k];
        for (i, b) in raw.iter_mut().enumerate().skip(1) {
            *b = (i * 131 + 7) as u8;
        }
        std::fs::write(self.w.path("raw"), &raw).unwrap();
        let none = ["rsa_padding_mode:none"];
        self.pkeyutl(self.wd, "-decrypt", false, "raw", "raw.priv.wd", &none);
        self.pkeyutl(
            Conf::Default,
            "-decrypt",
            false,
            "raw",
            "raw.priv.def",
            &none,
        );
        assert_eq!(
            self.read("raw.priv.wd"),
            self.read("raw.priv.def"),
            "raw private op"
        );
        self.pkeyutl(self.wd, "-encrypt", true, "raw", "raw.pub.wd", &none);
        self.pkeyutl(Conf::Default, "-encrypt", true, "raw", "raw.pub.def", &none);
        assert_eq!(
            self.read("raw.pub.wd"),
            self.read("raw.pub.def"),
            "raw public op"
        );
    }
}

/// A case whose wd side is `wd.cnf` (real devices only) on a host with none.
fn on_a_host_without_devices(bits: u32) -> Case {
    let mut c = Case::new(bits, &[]);
    let empty = c.w.path("no-sysfs");
    std::fs::create_dir_all(&empty).unwrap();
    c.w.env
        .push(("WD_SYSFS_ROOT".into(), empty.to_str().unwrap().into()));
    c.wd = Conf::Host;
    c
}

#[cfg(feature = "model")]
fn on_device(bits: u32, extra: &[(&str, &str)]) {
    let c = Case::new(bits, extra);
    c.all();
    let w = &c.w;
    assert!(
        w.counter("offload_private") >= 6,
        "{}",
        stats::format(&w.counters())
    );
    assert!(
        w.counter("offload_public") >= 7,
        "{}",
        stats::format(&w.counters())
    );
    assert_eq!(
        w.fallbacks(),
        0,
        "unexpected fallback: {}",
        stats::format(&w.counters())
    );
    assert_eq!(w.counter("fault_guard_trips"), 0);
}

/// Runs every operation of `c` and checks that all of them ran in software, at least 14
/// counted under `reason`.
fn all_in_software(c: &Case, reason: &str) {
    c.all();
    let w = &c.w;
    let counters = stats::format(&w.counters());
    assert_eq!(
        w.counter("offload_private") + w.counter("offload_public"),
        0,
        "{counters}"
    );
    assert!(w.counter(reason) >= 14, "{counters}");
}

#[cfg(feature = "model")]
fn in_software(bits: u32) {
    all_in_software(&Case::new(bits, &[]), "fallback_key_size");
}

#[test]
fn every_operation_in_software_on_a_host_without_devices() {
    for bits in [1024, 2048] {
        all_in_software(&on_a_host_without_devices(bits), "fallback_no_device");
    }
}

#[cfg(feature = "model")]
#[test]
fn rsa1024_on_the_device() {
    on_device(1024, &[]);
}

#[cfg(feature = "model")]
#[test]
fn rsa2048_on_the_device() {
    on_device(2048, &[]);
}

#[cfg(feature = "model")]
#[test]
fn rsa2048_on_a_v3_device() {
    on_device(2048, &[("WD_MODEL_API", "v3")]);
}

#[cfg(feature = "model")]
#[test]
fn rsa3072_on_the_device() {
    on_device(3072, &[]);
}

#[cfg(feature = "model")]
#[test]
fn rsa4096_on_the_device() {
    on_device(4096, &[]);
}

#[cfg(feature = "model")]
#[test]
fn rsa512_through_fallback() {
    in_software(512);
}

#[cfg(feature = "model")]
#[test]
fn rsa1536_through_fallback() {
    in_software(1536);
}

#[cfg(feature = "model")]
#[test]
fn rsa8192_through_fallback() {
    in_software(8192);
}

#[cfg(feature = "model")]
#[test]
fn keys_made_by_wd_work_everywhere() {
    // Key generation is delegated to the default provider in the child context and the
    // result imported: the key works with both providers.
    let w = World::new();
    let k = w.path("gen.pem");
    ok(w.openssl(
        Conf::Model,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            k.to_str().unwrap(),
        ],
    ));
    let msg = w.path("m");
    std::fs::write(&msg, b"x").unwrap();
    let sig_wd = w.path("s.wd");
    let sig_def = w.path("s.def");
    for (conf, out) in [(Conf::Model, &sig_wd), (Conf::Default, &sig_def)] {
        ok(w.openssl(
            conf,
            &[
                "dgst",
                "-sha256",
                "-sign",
                k.to_str().unwrap(),
                "-out",
                out.to_str().unwrap(),
                msg.to_str().unwrap(),
            ],
        ));
    }
    assert_eq!(
        std::fs::read(&sig_wd).unwrap(),
        std::fs::read(&sig_def).unwrap()
    );
    let out = ok(w.openssl(
        Conf::Model,
        &["pkey", "-in", k.to_str().unwrap(), "-check", "-noout"],
    ));
    assert!(stdout(&out).contains("valid"), "{}", stdout(&out));
    assert!(std::path::Path::new(&sig_wd).exists());
}

#[cfg(feature = "model")]
#[test]
fn certificates_signed_through_wd_verify_with_the_default_provider() {
    // X.509 signing needs the signature's algorithm-id (PKCS#1 v1.5 and PSS parameters).
    let w = World::new();
    let k = key(2048);
    for (name, opts) in [
        ("pkcs1.pem", vec![]),
        (
            "pss.pem",
            vec![
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ],
        ),
    ] {
        let cert = w.path(name);
        let mut args = vec![
            "req",
            "-x509",
            "-new",
            "-key",
            k.to_str().unwrap(),
            "-subj",
            "/CN=wd",
            "-days",
            "1",
            "-sha256",
        ];
        args.extend(opts);
        args.extend(["-out", cert.to_str().unwrap()]);
        ok(w.openssl(Conf::Model, &args));
        let c = cert.to_str().unwrap();
        let out = ok(w.openssl(Conf::Default, &["verify", "-CAfile", c, c]));
        assert!(stdout(&out).contains(": OK"), "{name}: {}", stdout(&out));
    }
    assert_eq!(
        w.counter("offload_private"),
        2,
        "{}",
        stats::format(&w.counters())
    );
}

/// A ciphertext of the 2048-bit test key under `padding` whose first byte is zero (one in
/// 256 is), without it: 255 bytes that are the same integer.
#[cfg(feature = "model")]
fn short_ciphertext(padding: openssl::rsa::Padding, msg: &[u8]) -> Vec<u8> {
    let pem = std::fs::read(key(2048)).unwrap();
    let rsa = openssl::rsa::Rsa::private_key_from_pem(&pem).unwrap();
    let mut ct = vec![0u8; rsa.size() as usize];
    for _ in 0..100_000 {
        let n = rsa.public_encrypt(msg, &mut ct, padding).unwrap();
        assert_eq!(n, ct.len());
        if ct[0] == 0 {
            return ct[1..].to_vec();
        }
    }
    panic!("no ciphertext with a leading zero byte in 100000 tries");
}

/// Decryption of ciphertexts shorter or longer than the modulus, as the default provider
/// does it (rsa_ossl_private_decrypt): a shorter one — empty, one byte, 255 bytes for a
/// 2048-bit key, a real PKCS#1 or OAEP ciphertext written without its leading zero byte —
/// is the big-endian integer it is and decrypts, on the device; a longer one (even with a
/// leading zero) and one not below n are refused by both.
#[cfg(feature = "model")]
#[test]
fn ciphertexts_shorter_or_longer_than_the_modulus_as_the_default_provider() {
    let c = Case::new(2048, &[]);
    let w = &c.w;
    let mut n = numbers(2048)["modulus"].clone();
    // `openssl pkey -text` writes the modulus with a leading 00 byte.
    while n.starts_with("00") {
        n.drain(..2);
    }
    let n: Vec<u8> = (0..n.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&n[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(n.len(), 256);
    // n with its last byte at most: not below n.
    let mut n_up = n.clone();
    *n_up.last_mut().unwrap() = 0xff;
    let mut long0 = vec![0u8];
    long0.extend((0..256).map(|i| (i * 7 + 3) as u8 & 0x7f));
    let inputs: Vec<(&str, Vec<u8>, bool)> = vec![
        ("empty", vec![], true),
        ("one", vec![1], true),
        ("two", vec![0x5a, 0xa5], true),
        (
            "s255",
            (0..255).map(|i| (i * 131 + 7) as u8).collect(),
            true,
        ),
        ("zero255", vec![0; 255], true),
        ("n", n.clone(), false),
        ("n_up", n_up, false),
        ("ff256", vec![0xff; 256], false),
        ("long257", vec![0x11; 257], false),
        ("long0_257", long0, false),
    ];
    let none = ["rsa_padding_mode:none"];
    let mut decrypted = 0;
    for (name, data, succeeds) in &inputs {
        std::fs::write(w.path(name), data).unwrap();
        let (o_wd, o_def) = (format!("{name}.wd"), format!("{name}.def"));
        let args = |o: &str| {
            vec![
                "pkeyutl".to_string(),
                "-decrypt".into(),
                "-inkey".into(),
                c.key.clone(),
                "-pkeyopt".into(),
                none[0].into(),
                "-in".into(),
                c.p(name),
                "-out".into(),
                c.p(o),
            ]
        };
        let a_wd = args(&o_wd);
        let a_def = args(&o_def);
        let a_wd: Vec<&str> = a_wd.iter().map(|s| s.as_str()).collect();
        let a_def: Vec<&str> = a_def.iter().map(|s| s.as_str()).collect();
        let def = w.openssl(Conf::Default, &a_def).output().unwrap();
        assert_eq!(def.status.success(), *succeeds, "{name}: default provider");
        if *succeeds {
            ok(w.openssl(c.wd, &a_wd));
            let out = c.read(&o_wd);
            assert_eq!(out.len(), 256, "{name}: output is modulus-long");
            assert_eq!(out, c.read(&o_def), "{name}: wd and default differ");
            decrypted += 1;
        } else {
            let err = fails(w.openssl(c.wd, &a_wd));
            assert!(err.contains(":wd:"), "{name}: refused by wd: {err}");
            let reason = if data.len() > 256 {
                "wrong input length"
            } else {
                "data too large for key size"
            };
            assert!(err.contains(reason), "{name}: {err}");
        }
    }
    // Padded ciphertexts without their leading zero byte.
    let secret = c.read("secret");
    for (tag, padding, opt) in [
        (
            "pkcs1",
            openssl::rsa::Padding::PKCS1,
            "rsa_padding_mode:pkcs1",
        ),
        (
            "oaep",
            openssl::rsa::Padding::PKCS1_OAEP,
            "rsa_padding_mode:oaep",
        ),
    ] {
        let ct = short_ciphertext(padding, &secret);
        assert_eq!(ct.len(), 255);
        let name = format!("{tag}.short");
        std::fs::write(w.path(&name), &ct).unwrap();
        for conf in [c.wd, Conf::Default] {
            let out = format!("{name}.{conf:?}");
            c.pkeyutl(conf, "-decrypt", false, &name, &out, &[opt]);
            assert_eq!(c.read(&out), secret, "{tag} ({conf:?})");
        }
        decrypted += 1;
    }
    let counters = stats::format(&w.counters());
    assert_eq!(w.counter("offload_private"), decrypted, "{counters}");
    assert_eq!(w.fallbacks(), 0, "{counters}");
}
