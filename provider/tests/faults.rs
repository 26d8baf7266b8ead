//! Fault injection in the device model: every result still correct (compared with the
//! default provider), every device error counted, no wait past the configured timeout; and
//! the fallback policy.

// These tests drive the device model; the production flavour has none.
#![cfg(feature = "model")]

mod common;
use common::*;
use std::time::{Duration, Instant};

/// Runs the sign-many example in `w` on `conf`; returns its output lines, or the error.
fn sign_many(w: &World, conf: Conf, bits: u32, n: u32, mode: &str) -> Result<Vec<String>, String> {
    let mut c = w.command(example("sign-many"), conf);
    c.arg(key(bits)).arg(n.to_string()).arg(mode);
    let out = c.output().unwrap();
    if !out.status.success() {
        return Err(stderr(&out));
    }
    Ok(stdout(&out).lines().map(String::from).collect())
}

fn reference(bits: u32, n: u32) -> Vec<String> {
    sign_many(&World::new(), Conf::Default, bits, n, "pkcs1").unwrap()
}

/// Every third request fails on the device: all signatures still right, the failures
/// counted and redone in software, with the waiting thread in `poll_mode`.
fn every_third_failing(poll_mode: &str) {
    let w = World::new()
        .with("WD_MODEL_ERROR_EVERY", "3")
        .with("WD_POLL_MODE", poll_mode);
    let got = sign_many(&w, Conf::Model, 2048, 30, "pkcs1").unwrap();
    assert_eq!(
        got,
        reference(2048, 30),
        "a signature differs from the default provider's"
    );
    let (errors, redone) = (
        w.counter("device_errors"),
        w.counter("fallback_device_error"),
    );
    assert_eq!(errors, 10, "{}", stats::format(&w.counters()));
    assert_eq!(redone, errors);
    assert_eq!(w.counter("offload_private"), 20);
}

#[test]
fn every_third_request_failing_still_gives_right_signatures() {
    every_third_failing("hybrid");
}

#[test]
fn every_third_request_failing_still_gives_right_signatures_waiting_on_the_event() {
    every_third_failing("event");
}

#[test]
fn a_random_share_of_failures_with_pss_still_verifies() {
    let w = World::new()
        .with("WD_MODEL_ERROR_RATIO", "0.3")
        .with("WD_OFFLOAD_PUBLIC", "on");
    let got = sign_many(&w, Conf::Model, 2048, 40, "pss").unwrap();
    assert_eq!(got.len(), 40);
    assert!(got.iter().all(|l| l == "ok"));
    let errors = w.counter("device_errors");
    assert!(
        errors > 0,
        "no injected error hit in 80 requests: {}",
        stats::format(&w.counters())
    );
    assert_eq!(errors, w.counter("fallback_device_error"));
}

/// A stalled engine with the waiting thread in `poll_mode`: each request waits the
/// timeout once, then runs in software, right.
fn stalled_engine(poll_mode: &str) {
    let timeout_ms = 150;
    let w = World::new()
        .with("WD_MODEL_STALL", "on")
        .with("WD_TIMEOUT_MS", &timeout_ms.to_string())
        .with("WD_POLL_MODE", poll_mode);
    let n = 4;
    let t = Instant::now();
    let got = sign_many(&w, Conf::Model, 2048, n, "pkcs1").unwrap();
    let took = t.elapsed();
    assert_eq!(got, reference(2048, n));
    assert_eq!(
        w.counter("timeouts"),
        n as u64,
        "{}",
        stats::format(&w.counters())
    );
    assert_eq!(w.counter("fallback_device_error"), n as u64);
    // Each request waits the timeout once, then software; allow start-up and slack.
    let bound = Duration::from_millis(n as u64 * (timeout_ms + 100) + 1500);
    assert!(took < bound, "took {took:?}, bound {bound:?}");
}

#[test]
fn a_stalled_engine_costs_one_timeout_per_request_and_no_more() {
    stalled_engine("hybrid");
}

#[test]
fn a_stalled_engine_costs_one_timeout_per_request_waiting_on_the_event() {
    stalled_engine("event");
}

#[test]
fn fallback_off_makes_device_failures_errors_with_a_reason() {
    let w = World::new()
        .with("WD_MODEL_STALL", "on")
        .with("WD_TIMEOUT_MS", "100")
        .with("WD_FALLBACK", "off");
    let err = sign_many(&w, Conf::Model, 2048, 1, "pkcs1").unwrap_err();
    assert!(
        err.contains("accelerator failed and fallback is off"),
        "{err}"
    );
    assert_eq!(w.counter("refused"), 1);
}

#[test]
fn fallback_off_refuses_unsupported_key_sizes() {
    let w = World::new().with("WD_FALLBACK", "off");
    let err = sign_many(&w, Conf::Model, 1536, 1, "pkcs1").unwrap_err();
    assert!(
        err.contains("request not offloadable and fallback is off"),
        "{err}"
    );
    assert!(err.contains("1536-bit key"), "{err}");
}

#[test]
fn no_device_means_software_counted_as_such() {
    // wd.cnf: real devices only; this machine has none.
    let w = World::new();
    let got = sign_many(&w, Conf::Host, 2048, 3, "pkcs1").unwrap();
    assert_eq!(got, reference(2048, 3));
    assert_eq!(
        w.counter("fallback_no_device"),
        3,
        "{}",
        stats::format(&w.counters())
    );
    let w = World::new().with("WD_DEVICES", "none");
    sign_many(&w, Conf::Model, 2048, 2, "pkcs1").unwrap();
    assert_eq!(w.counter("fallback_no_device"), 2);
}

#[test]
fn key_size_range_is_configurable() {
    let w = World::new().with("WD_MIN_BITS", "3072");
    let got = sign_many(&w, Conf::Model, 2048, 2, "pkcs1").unwrap();
    assert_eq!(got, reference(2048, 2));
    assert_eq!(w.counter("fallback_key_size"), 2);
    assert_eq!(w.counter("offload_private"), 0);
}

#[test]
fn no_free_queue_falls_back() {
    // One queue on the device, held by a long `openssl speed`; a second process finds none.
    let a = World::new().with("WD_MODEL_QUEUES", "1");
    let model_dir = a.path("model");
    let mut speed = a
        .openssl(Conf::Model, &["speed", "-seconds", "3", "rsa2048"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the speed process has its queue (it has offloaded something).
    let t = Instant::now();
    while a.counter("offload_private") == 0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = World::new()
        .with("WD_MODEL_QUEUES", "1")
        .with("WD_MODEL_DIR", model_dir.to_str().unwrap());
    let got = sign_many(&b, Conf::Model, 2048, 3, "pkcs1");
    let _ = speed.kill();
    let _ = speed.wait();
    assert_eq!(got.unwrap(), reference(2048, 3));
    assert_eq!(
        b.counter("fallback_no_queue"),
        3,
        "{}",
        stats::format(&b.counters())
    );
    assert_eq!(b.counter("offload_private"), 0);
}

#[test]
fn a_forked_child_opens_its_own_queue_and_offloads() {
    let w = World::new();
    let got = sign_many(&w, Conf::Model, 2048, 6, "fork").unwrap();
    assert_eq!(got, reference(2048, 6));
    // Two processes counted: the parent's first signature, the child's five.
    let (files, v) = stats::read_dir(&w.stats_dir()).unwrap();
    assert_eq!(files, 2, "{}", stats::format(&v));
    assert_eq!(
        stats::get(&v, "offload_private"),
        Some(6),
        "{}",
        stats::format(&v)
    );
    assert_eq!(w.fallbacks(), 0, "{}", stats::format(&v));
}
