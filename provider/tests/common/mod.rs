//! Shared helpers of the provider tests: the built module as `wd.so`, a per-test directory
//! (counters, device-model state), `openssl` commands configured for wd, and the counters.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

pub use wd_provider::stats;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The profile directory the test binary was built into (`target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// `--release` when the tests themselves were built in release mode.
fn release_flag() -> Vec<&'static str> {
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        vec!["--release"]
    } else {
        Vec::new()
    }
}

/// The feature flags these tests were built with, for the nested `cargo build`s (a build
/// with other features would overwrite the provider's cdylib under the tests' feet).
fn feature_flags() -> Vec<&'static str> {
    if cfg!(feature = "model") {
        Vec::new()
    } else {
        vec!["--no-default-features"]
    }
}

/// A directory holding the provider built with these tests, as `wd.so`.
pub fn modules() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = profile_dir().join("ossl-modules-test");
    ONCE.call_once(|| {
        // `cargo test` builds the cdylib with the library, into deps/ (the copy in the
        // profile directory is only refreshed by `cargo build`): take the newer one.
        let newest = [
            profile_dir().join("deps/libwd_provider.so"),
            profile_dir().join("libwd_provider.so"),
        ]
        .into_iter()
        .filter_map(|p| {
            std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, p))
        })
        .max();
        let lib = newest
            .map(|(_, p)| p)
            .unwrap_or_else(|| profile_dir().join("libwd_provider.so"));
        if !lib.exists() {
            // `cargo test` builds the cdylib with the library; build it if it is missing.
            let st = Command::new(env!("CARGO"))
                .args(["build", "-q", "-p", "wd-provider", "--lib"])
                .args(release_flag())
                .args(feature_flags())
                .current_dir(root())
                .status()
                .unwrap();
            assert!(st.success(), "building the provider failed");
        }
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!("wd.so.{}", std::process::id()));
        std::fs::copy(&lib, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("wd.so")).unwrap();
    });
    dir
}

/// An example program, built (or brought up to date) once per test process: `cargo test
/// --test X` does not build examples by itself.
pub fn example(name: &str) -> PathBuf {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "wd-provider", "--examples"])
            .args(release_flag())
            .args(feature_flags())
            .current_dir(root())
            .status()
            .unwrap();
        assert!(st.success(), "building the examples failed");
    });
    profile_dir().join("examples").join(name)
}

/// The `wd` command (package wd-cli), built (or brought up to date) once per test process.
pub fn wd_command() -> PathBuf {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "wd-cli", "--bin", "wd"])
            .args(release_flag())
            .current_dir(root())
            .status()
            .unwrap();
        assert!(st.success(), "building the wd command failed");
    });
    profile_dir().join("wd")
}

/// A test key of `bits` bits (PEM, made by the default provider).
pub fn key(bits: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/rsa{bits}.pem"))
}

/// Which configuration an `openssl` command runs with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Conf {
    /// openssl.cnf.d/wd-model.cnf: wd on the device model, default beside it.
    Model,
    /// openssl.cnf.d/wd.cnf: wd on real devices (none here), default beside it.
    Host,
    /// No configuration: the default provider alone (the reference).
    Default,
}

/// One test's world.
pub struct World {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("stats")).unwrap();
        World {
            dir,
            env: Vec::new(),
        }
    }

    /// A copy of this world's settings with wd's debug log on (same directory).
    pub fn with_log(&self) -> LogWorld<'_> {
        LogWorld(self)
    }

    /// Adds an environment variable to every command of this world.
    pub fn with(mut self, k: &str, v: &str) -> World {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn stats_dir(&self) -> PathBuf {
        self.path("stats")
    }

    /// A command with the world's environment (no inherited WD_* or OpenSSL settings).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, conf: Conf) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("WD_") || k.starts_with("OPENSSL_") {
                c.env_remove(&k);
            }
        }
        let cnf = match conf {
            Conf::Model => root().join("openssl.cnf.d/wd-model.cnf"),
            Conf::Host => root().join("openssl.cnf.d/wd.cnf"),
            Conf::Default => PathBuf::from("/dev/null"),
        };
        c.env("OPENSSL_CONF", cnf)
            .env("OPENSSL_MODULES", modules())
            .env("WD_STATS_DIR", self.stats_dir())
            .env("WD_MODEL_DIR", self.path("model"))
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn openssl(&self, conf: Conf, args: &[&str]) -> Command {
        let mut c = self.command("openssl", conf);
        c.args(args);
        c
    }

    /// Counters summed over every process of this world so far.
    pub fn counters(&self) -> Vec<u64> {
        stats::read_dir(&self.stats_dir())
            .map(|(_, v)| v)
            .unwrap_or_else(|_| vec![0; stats::NAMES.len()])
    }

    pub fn counter(&self, name: &str) -> u64 {
        stats::get(&self.counters(), name).unwrap_or_else(|| panic!("no counter {name}"))
    }

    /// Forgets the counters so far.
    pub fn reset_counters(&self) {
        let d = self.stats_dir();
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
    }

    /// Sum of all fallback counters.
    pub fn fallbacks(&self) -> u64 {
        let v = self.counters();
        stats::NAMES
            .iter()
            .zip(&v)
            .filter(|(n, _)| n.starts_with("fallback_"))
            .map(|(_, x)| *x)
            .sum()
    }
}

/// Runs a command; panics with its output unless it succeeded.
pub fn ok(mut c: Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed ({}):\nstdout: {}\nstderr: {}",
        c,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail; returns its stderr.
pub fn fails(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(
        !out.status.success(),
        "{:?} should have failed:\nstdout: {}\nstderr: {}",
        c,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A [`World`] whose commands run with `WD_LOG=debug`.
pub struct LogWorld<'a>(&'a World);

impl LogWorld<'_> {
    pub fn openssl(&self, conf: Conf, args: &[&str]) -> Command {
        let mut c = self.0.openssl(conf, args);
        c.env("WD_LOG", "debug");
        c
    }
}

/// The numbers of a test key, from `openssl pkey -text`.
pub fn numbers(bits: u32) -> HashMap<String, String> {
    let w = World::new();
    let out = ok(w.openssl(
        Conf::Default,
        &[
            "pkey",
            "-in",
            key(bits).to_str().unwrap(),
            "-text",
            "-noout",
        ],
    ));
    let mut map = HashMap::new();
    let mut cur: Option<String> = None;
    for line in stdout(&out).lines() {
        if let Some(rest) = line.strip_prefix("publicExponent: ") {
            let hex = rest.split("(0x").nth(1).unwrap().trim_end_matches(')');
            map.insert("e".into(), hex.to_string());
            cur = None;
        } else if !line.starts_with(' ') && line.ends_with(':') {
            cur = Some(line.trim_end_matches(':').to_string());
            map.insert(cur.clone().unwrap(), String::new());
        } else if let Some(c) = &cur {
            map.get_mut(c)
                .unwrap()
                .push_str(&line.trim().replace(':', ""));
        }
    }
    map
}

/// A DER RSAPrivateKey with the given numbers (hex), through `openssl asn1parse -genconf`.
pub fn der_key(w: &World, name: &str, f: &HashMap<String, String>) -> String {
    let field = |k: &str| format!("INTEGER:0x{}", f[k]);
    let conf = format!(
        "asn1=SEQUENCE:k\n[k]\nv=INTEGER:0\nn={}\ne={}\nd={}\np={}\nq={}\ndp={}\ndq={}\nqi={}\n",
        field("modulus"),
        field("e"),
        field("privateExponent"),
        field("prime1"),
        field("prime2"),
        field("exponent1"),
        field("exponent2"),
        field("coefficient")
    );
    let cnf = w.path(&format!("{name}.cnf"));
    std::fs::write(&cnf, conf).unwrap();
    let out = w.path(&format!("{name}.der"));
    ok(w.openssl(
        Conf::Default,
        &[
            "asn1parse",
            "-genconf",
            cnf.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
            "-noout",
        ],
    ));
    out.to_str().unwrap().to_string()
}
