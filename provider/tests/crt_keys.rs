//! Keys with unusual CRT parameters, crafted as DER and read by the default provider's
//! decoder into wd: inconsistent ones (a wrong dp, dq or qinv) are key errors — counted as
//! `key_errors`, not as device errors or fault-guard trips, logged once per key, kept in
//! software with the right answer (the default provider checks its CRT result and redoes it
//! with d), refused with `fallback = off`; unreduced ones (dp ≥ p-1, dq ≥ q-1, qinv ≥ p) are
//! valid keys, reduced and offloaded (and reduced for the software path too, where the
//! default provider would fail on qinv ≥ p).

// These tests need the device model; the production flavour has none.
#![cfg(feature = "model")]

mod common;
use common::*;
use openssl::bn::BigNum;
use std::collections::HashMap;

/// Signatures (hex lines) of the sign-many example with `key` in `w` on `conf`.
fn sign_many(w: &World, conf: Conf, key: &str, n: u32) -> Result<Vec<String>, String> {
    let mut c = w.command(example("sign-many"), conf);
    c.arg(key).arg(n.to_string()).arg("pkcs1");
    let out = c.output().unwrap();
    if !out.status.success() {
        return Err(stderr(&out));
    }
    Ok(stdout(&out).lines().map(String::from).collect())
}

/// The numbers of the 2048-bit test key with `change` applied (name → new value), as a
/// PEM key file written by the default provider from the crafted DER (the numbers as
/// they are).
fn crafted(
    w: &World,
    name: &str,
    change: impl Fn(&HashMap<String, BigNum>) -> Vec<(&'static str, BigNum)>,
) -> String {
    let hex = numbers(2048);
    let bn: HashMap<String, BigNum> = hex
        .iter()
        .map(|(k, v)| (k.clone(), BigNum::from_hex_str(v).unwrap()))
        .collect();
    let mut fields = hex.clone();
    for (k, v) in change(&bn) {
        fields.insert(k.into(), v.to_hex_str().unwrap().to_string());
    }
    let der = der_key(w, name, &fields);
    let pem = w.path(&format!("{name}.pem"));
    ok(w.openssl(
        Conf::Default,
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            &der,
            "-out",
            pem.to_str().unwrap(),
        ],
    ));
    pem.to_str().unwrap().to_string()
}

fn add(a: &BigNum, b: &BigNum) -> BigNum {
    let mut r = BigNum::new().unwrap();
    r.checked_add(a, b).unwrap();
    r
}

fn minus_one(a: &BigNum) -> BigNum {
    let mut r = BigNum::new().unwrap();
    r.checked_sub(a, &BigNum::from_u32(1).unwrap()).unwrap();
    r
}

const N: u32 = 6;

fn reference() -> Vec<String> {
    let w = World::new();
    sign_many(&w, Conf::Default, key(2048).to_str().unwrap(), N).unwrap()
}

/// A key with a wrong CRT parameter: right signatures, all in software, counted as key
/// errors (none as device errors or guard trips), logged once for N signatures.
fn inconsistent(name: &str, field: &'static str, what: &str) {
    let w = World::new().with("WD_LOG", "warn");
    let k = crafted(&w, name, |b| {
        vec![(field, add(&b[field], &BigNum::from_u32(2).unwrap()))]
    });
    let out = w
        .command(example("sign-many"), Conf::Model)
        .args([k.as_str(), &N.to_string(), "pkcs1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(
        got,
        reference(),
        "{name}: a signature differs from the default provider's"
    );
    let c = stats::format(&w.counters());
    assert_eq!(w.counter("key_errors"), u64::from(N), "{name}: {c}");
    assert_eq!(w.counter("device_errors"), 0, "{name}: {c}");
    assert_eq!(w.counter("fault_guard_trips"), 0, "{name}: {c}");
    assert_eq!(w.counter("fallback_device_error"), 0, "{name}: {c}");
    assert_eq!(w.counter("offload_private"), 0, "{name}: {c}");
    let err = stderr(&out);
    let logged = err.matches("inconsistent CRT parameters").count();
    assert_eq!(logged, 1, "{name}: logged once per key:\n{err}");
    assert!(err.contains(what), "{name}: {err}");

    // With fallback = off, refused with wd's reason.
    let w = World::new().with("WD_FALLBACK", "off");
    let err = sign_many(&w, Conf::Model, &k, 1).unwrap_err();
    assert!(err.contains("inconsistent key parameters"), "{name}: {err}");
    assert_eq!(w.counter("device_errors"), 0);
}

#[test]
fn a_wrong_dp_is_a_key_error() {
    inconsistent("dp", "exponent1", "wrong dp");
}

#[test]
fn a_wrong_dq_is_a_key_error() {
    inconsistent("dq", "exponent2", "wrong dq");
}

#[test]
fn a_wrong_qinv_is_a_key_error() {
    inconsistent("qinv", "coefficient", "wrong qinv");
}

/// dp + (p-1), dq + (q-1), qinv + p: the same key, wider than the engine's fields; reduced
/// and offloaded, signatures identical.
#[test]
fn unreduced_crt_parameters_are_reduced_and_offloaded() {
    let w = World::new();
    let k = crafted(&w, "wide", |b| {
        let (p, q) = (&b["prime1"], &b["prime2"]);
        vec![
            ("exponent1", add(&b["exponent1"], &minus_one(p))),
            (
                "exponent2",
                add(&add(&b["exponent2"], &minus_one(q)), &minus_one(q)),
            ),
            ("coefficient", add(&b["coefficient"], p)),
        ]
    });
    // The crafted key has the wide numbers (the default provider kept them).
    let rsa = openssl::rsa::Rsa::private_key_from_pem(&std::fs::read(&k).unwrap()).unwrap();
    assert!(rsa.dmp1().unwrap() >= rsa.p().unwrap());
    assert!(rsa.dmq1().unwrap() >= rsa.q().unwrap());
    assert!(rsa.iqmp().unwrap() >= rsa.p().unwrap());
    let got = sign_many(&w, Conf::Model, &k, N).unwrap();
    assert_eq!(
        got,
        reference(),
        "a signature differs from the default provider's"
    );
    let c = stats::format(&w.counters());
    assert_eq!(w.counter("offload_private"), u64::from(N), "{c}");
    assert_eq!(w.fallbacks(), 0, "{c}");
    assert_eq!(w.counter("key_errors"), 0, "{c}");
    assert_eq!(w.counter("fault_guard_trips"), 0, "{c}");
    // And in software (no device), where the key goes reduced too: the default provider
    // itself fails to sign with a qinv ≥ p.
    let w = World::new().with("WD_DEVICES", "none");
    assert!(
        sign_many(&World::new(), Conf::Default, &k, 1).is_err(),
        "the default provider signs with qinv ≥ p now: reword this test"
    );
    let got = sign_many(&w, Conf::Model, &k, N).unwrap();
    assert_eq!(got, reference(), "a software signature differs");
    let c = stats::format(&w.counters());
    assert_eq!(w.counter("fallback_no_device"), u64::from(N), "{c}");
}
