//! Bad input gives an OpenSSL error with wd's reason string, never a crash or a panic
//! across the C boundary: wrong-size input, input above the modulus, malformed and
//! inconsistent keys, missing parameters. The checks are wd's own, made before any device
//! is involved: these run on `wd.cnf` (no device here), so also against the production build.

mod common;
use common::*;

/// Runs a failing `openssl` command on wd; returns stderr after checking that no panic
/// was caught (the guard turns one into "internal error").
fn refused(w: &World, args: &[&str]) -> String {
    let err = fails(w.openssl(Conf::Host, args));
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    err
}

#[test]
fn wrong_size_input_is_an_error_with_a_reason() {
    let w = World::new();
    let k = key(1024);
    let k = k.to_str().unwrap();
    std::fs::write(w.path("in20"), [7u8; 20]).unwrap();
    // Longer than the 128-byte modulus (a shorter ciphertext is the integer it is, as
    // for the default provider: see differential.rs).
    std::fs::write(w.path("in129"), [7u8; 129]).unwrap();
    std::fs::write(w.path("ff"), [0xffu8; 128]).unwrap();
    let err = refused(
        &w,
        &[
            "pkeyutl",
            "-sign",
            "-inkey",
            k,
            "-pkeyopt",
            "digest:sha256",
            "-in",
            "in20",
            "-out",
            "o",
        ],
    );
    assert!(
        err.contains(":wd:") && err.contains("wrong input length"),
        "{err}"
    );
    let err = refused(
        &w,
        &[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            k,
            "-pkeyopt",
            "rsa_padding_mode:none",
            "-in",
            "in129",
            "-out",
            "o",
        ],
    );
    assert!(err.contains("wrong input length"), "{err}");
    let err = refused(
        &w,
        &[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            k,
            "-pkeyopt",
            "rsa_padding_mode:none",
            "-in",
            "ff",
            "-out",
            "o",
        ],
    );
    assert!(err.contains("data too large for key size"), "{err}");
    // A message too long for PKCS#1 v1.5 encryption.
    std::fs::write(w.path("long"), [1u8; 120]).unwrap();
    let err = refused(
        &w,
        &[
            "pkeyutl", "-encrypt", "-inkey", k, "-in", "long", "-out", "o",
        ],
    );
    assert!(err.contains("data too large for key size"), "{err}");
    // A corrupted ciphertext fails the padding check.
    std::fs::write(w.path("ct"), [0x11u8; 128]).unwrap();
    let err = refused(
        &w,
        &["pkeyutl", "-decrypt", "-inkey", k, "-in", "ct", "-out", "o"],
    );
    assert!(err.contains("padding check failed"), "{err}");
}

#[test]
fn bad_parameters_are_errors_with_a_reason() {
    let w = World::new();
    let k = key(2048);
    let k = k.to_str().unwrap();
    std::fs::write(w.path("m"), b"secret").unwrap();
    let err = refused(
        &w,
        &[
            "pkeyutl",
            "-encrypt",
            "-inkey",
            k,
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:nosuchdigest",
            "-in",
            "m",
            "-out",
            "o",
        ],
    );
    assert!(
        err.contains("unknown digest") || err.contains("invalid parameter"),
        "{err}"
    );
    let err = refused(
        &w,
        &[
            "pkeyutl",
            "-sign",
            "-inkey",
            k,
            "-pkeyopt",
            "rsa_padding_mode:x931",
            "-in",
            "m",
            "-out",
            "o",
        ],
    );
    assert!(
        err.contains("not supported by wd") || err.contains("X9.31"),
        "{err}"
    );
}

/// A key wd refuses at import (here: p*q != n) is, under `?provider=wd` (a preference),
/// handled by the default provider instead: OpenSSL's semantics. The refusal itself, with
/// its reason, is checked in-process in inprocess.rs where wd is required.
#[test]
fn a_key_wd_refuses_goes_to_the_default_provider_under_a_preference() {
    let w = World::new();
    std::fs::write(w.path("d"), [3u8; 32]).unwrap();
    let good = numbers(1024);
    let mut bad = good.clone();
    bad.insert("prime1".into(), good["prime2"].clone());
    let k = der_key(&w, "pq", &bad);
    let out = ok(w.with_log().openssl(
        Conf::Host,
        &[
            "pkeyutl",
            "-sign",
            "-keyform",
            "DER",
            "-inkey",
            &k,
            "-pkeyopt",
            "digest:sha256",
            "-in",
            "d",
            "-out",
            "o",
        ],
    ));
    assert!(
        stderr(&out).contains("the prime factors do not multiply to n"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.counter("offload_private"), 0);
}
