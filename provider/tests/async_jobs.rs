//! wd under OpenSSL ASYNC jobs with the real binaries (issue 10): `openssl speed
//! -async_jobs` (wd alone and beside default; more jobs than ring slots; device errors; a
//! stalled engine) and `openssl s_server -async` with TLS 1.2 and 1.3 clients, the counters
//! proving the requests were in flight from jobs.

// These tests drive the device model; the production flavour has none.
#![cfg(feature = "model")]

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `openssl speed -elapsed -seconds 1 -async_jobs <jobs> <providers> rsa2048` on the model
/// with two engines; returns the world (for its counters) and the sign/s figure.
fn speed(w: &World, jobs: &str, providers: &[&str]) -> f64 {
    let args = [
        &["speed", "-elapsed", "-seconds", "1", "-async_jobs", jobs],
        providers,
        &["rsa2048"],
    ]
    .concat();
    let out = ok(w.openssl(Conf::Default, &args));
    let s = stdout(&out);
    let line = s
        .lines()
        .find(|l| l.starts_with("rsa 2048 bits"))
        .unwrap_or_else(|| panic!("no result line:\n{s}\n{}", stderr(&out)));
    let signs: f64 = line.split_whitespace().nth(5).unwrap().parse().unwrap();
    assert!(signs > 0.0, "{line}");
    signs
}

fn world() -> World {
    World::new()
        .with("WD_DEVICES", "model")
        .with("WD_MODEL_ENGINES", "2")
}

fn summary(w: &World) -> String {
    stats::format(&w.counters())
}

/// Every signature went to the device from a job that paused for it, none to software.
fn assert_async_offload(w: &World) {
    let submitted = w.counter("async_submitted");
    assert!(
        submitted > 50,
        "only {submitted} async submissions: {}",
        summary(w)
    );
    assert!(w.counter("async_pauses") > 0, "{}", summary(w));
    assert!(w.counter("offload_private") >= submitted, "{}", summary(w));
    assert_eq!(w.fallbacks(), 0, "{}", summary(w));
}

#[test]
fn speed_async_jobs_with_wd_alone_keeps_requests_in_flight() {
    let w = world();
    speed(&w, "8", &["-provider", "wd"]);
    assert_async_offload(&w);
}

#[test]
fn speed_async_jobs_with_wd_and_default_keeps_requests_in_flight() {
    let w = world();
    speed(&w, "32", &["-provider", "wd", "-provider", "default"]);
    assert_async_offload(&w);
    // 32 requests in flight: the watcher waits for batches (async_coalesce_us's default).
    assert!(w.counter("async_coalesced_waits") > 0, "{}", summary(&w));
}

/// `async_coalesce_us = 0`: the watcher wakes at every completion, never for a batch.
#[test]
fn coalescing_switched_off_wakes_at_every_completion() {
    let w = world().with("WD_ASYNC_COALESCE_US", "0");
    speed(&w, "32", &["-provider", "wd"]);
    assert_async_offload(&w);
    assert_eq!(w.counter("async_coalesced_waits"), 0, "{}", summary(&w));
}

/// A ring of 4 slots (3 usable) and 16 jobs: a full ring pauses the job and retries; no
/// request goes to software.
#[test]
fn more_jobs_than_ring_slots_pause_and_retry() {
    let w = world().with("WD_MODEL_DEPTH", "4");
    speed(&w, "16", &["-provider", "wd"]);
    assert_async_offload(&w);
    assert!(w.counter("async_ring_full") > 0, "{}", summary(&w));
}

/// Every 7th request fails on the device: that job's request runs in software inside the
/// job, the others on the device; speed sees no failure.
#[test]
fn device_errors_in_jobs_go_to_software() {
    let w = world().with("WD_MODEL_ERROR_EVERY", "7");
    speed(&w, "8", &["-provider", "wd"]);
    let errors = w.counter("fallback_device_error");
    assert!(errors > 5, "{}", summary(&w));
    assert!(w.counter("device_errors") >= errors, "{}", summary(&w));
    assert!(w.counter("async_submitted") > errors, "{}", summary(&w));
    assert!(w.counter("offload_private") > 0, "{}", summary(&w));
}

/// `speed` with `jobs` jobs on a model set up to stall (`knob` = `value`) and a 200 ms
/// timeout: the paused jobs are resumed by the stall timer, time out and sign in software
/// inside their jobs, and speed finishes with its figures well within the harness's time.
fn speed_on_a_stalling_engine(knob: &str, value: &str, jobs: &str) -> World {
    let w = world().with(knob, value).with("WD_TIMEOUT_MS", "200");
    let t0 = Instant::now();
    speed(&w, jobs, &["-provider", "wd"]);
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "speed took {:?}",
        t0.elapsed()
    );
    assert!(w.counter("timeouts") >= 1, "{}", summary(&w));
    assert!(w.counter("fallback_device_error") >= 1, "{}", summary(&w));
    w
}

/// A stalled engine from the start: nothing is signed on the device.
#[test]
fn stalled_engine_times_out_to_software_inside_jobs() {
    let w = speed_on_a_stalling_engine("WD_MODEL_STALL", "1", "4");
    assert_eq!(w.counter("offload_private"), 0, "{}", summary(&w));
}

/// The engine stalls after a good start with 16 jobs, enough to coalesce once the pace is
/// learnt: the watcher's batch timer is running when it does, and the stall is still
/// caught at the deadline.
#[test]
fn stalled_engine_times_out_while_coalescing() {
    let w = speed_on_a_stalling_engine("WD_MODEL_STALL_AFTER", "200", "16");
    assert!(w.counter("async_coalesced_waits") > 0, "{}", summary(&w));
    assert!(w.counter("offload_private") >= 100, "{}", summary(&w));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A world whose model takes 50 ms per request: the handshake's one signature is surely
/// still in flight when its job first looks, so the job pauses (on an idle engine a
/// signature can be done before the job reaps, if the loaded test machine deschedules the
/// thread between submitting and reaping, and then the job never pauses).
fn slow_engine_world() -> World {
    World::new().with("WD_MODEL_LATENCY_US", "50000")
}

/// One handshake: `s_server -async` (wd on the model) against `s_client`; the client's
/// output.
fn async_handshake(w: &World, server_args: &[&str], client_args: &[&str]) -> String {
    let key = key(2048);
    let cert = w.path("cert.pem");
    ok(w.openssl(
        Conf::Default,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            "/CN=localhost",
            "-days",
            "2",
            "-out",
            cert.to_str().unwrap(),
        ],
    ));
    let accept = format!("127.0.0.1:{}", free_port());
    let mut sargs = vec![
        "s_server",
        "-async",
        "-www",
        "-accept",
        &accept,
        "-naccept",
        "1",
        "-cert",
        cert.to_str().unwrap(),
        "-key",
        key.to_str().unwrap(),
    ];
    sargs.extend_from_slice(server_args);
    let mut server = w
        .openssl(Conf::Model, &sargs)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("ACCEPT") => break,
            Some(Ok(_)) => {}
            _ => panic!("s_server -async did not start"),
        }
    }
    let mut cargs = vec![
        "s_client",
        "-connect",
        &accept,
        "-CAfile",
        cert.to_str().unwrap(),
        "-verify_return_error",
        "-servername",
        "localhost",
    ];
    cargs.extend_from_slice(client_args);
    let client = w
        .openssl(Conf::Default, &cargs)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&client.stdout),
        String::from_utf8_lossy(&client.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = server.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = server.wait().unwrap();
    assert!(client.status.success(), "s_client failed:\n{out}");
    assert!(status.success(), "s_server -async failed: {status}");
    out
}

#[test]
fn s_server_async_tls12_signs_in_a_job_on_the_device() {
    let w = slow_engine_world();
    let cipher = "ECDHE-RSA-AES128-GCM-SHA256";
    let out = async_handshake(&w, &["-tls1_2"], &["-tls1_2", "-cipher", cipher]);
    assert!(out.contains(&format!("Cipher is {cipher}")), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(w.counter("async_submitted") >= 1, "{}", summary(&w));
    assert!(w.counter("async_pauses") >= 1, "{}", summary(&w));
    assert!(w.counter("offload_private") >= 1, "{}", summary(&w));
    assert_eq!(w.fallbacks(), 0, "{}", summary(&w));
}

#[test]
fn s_server_async_tls13_signs_in_a_job_on_the_device() {
    let w = slow_engine_world();
    let out = async_handshake(
        &w,
        &["-tls1_3"],
        &["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"],
    );
    assert!(out.contains("TLSv1.3"), "{out}");
    assert!(out.contains("Peer signature type: RSA-PSS"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(w.counter("async_submitted") >= 1, "{}", summary(&w));
    assert!(w.counter("offload_private") >= 1, "{}", summary(&w));
    assert_eq!(w.fallbacks(), 0, "{}", summary(&w));
}

/// Diagnostics on a stderr whose reader went away (a daemon's log pipe) are dropped, not
/// turned into panics: with `WD_LOG=debug` and stderr a pipe closed at its far end, speed
/// still signs every request on the device in its jobs and finishes. (A log line that
/// panicked inside a job left the other paused jobs unwatched, and speed waited forever.)
#[test]
fn logging_to_a_closed_stderr_changes_nothing() {
    let w = world().with("WD_LOG", "debug");
    let mut child = w
        .openssl(
            Conf::Default,
            &[
                "speed",
                "-elapsed",
                "-seconds",
                "1",
                "-async_jobs",
                "8",
                "-provider",
                "wd",
                "rsa2048",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("speed hung with stderr closed: {}", summary(&w));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("rsa 2048 bits"), "{out}");
    assert_async_offload(&w);
}
