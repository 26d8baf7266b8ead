//! `openssl speed` and TLS handshakes through wd on the device model, with the counters
//! proving the offload.

// These tests drive the device model; the production flavour has none.
#![cfg(feature = "model")]

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs `openssl speed -seconds 1 <providers> rsa2048` on the model without a configuration
/// file; checks the report and that the signatures ran on the device, none in software.
fn speed_offloads_with(providers: &[&str]) {
    let w = World::new().with("WD_DEVICES", "model");
    let args = [&["speed", "-seconds", "1"], providers, &["rsa2048"]].concat();
    let out = ok(w.openssl(Conf::Default, &args));
    let s = stdout(&out);
    assert!(s.contains("rsa 2048 bits"), "{s}");
    let n = w.counter("offload_private");
    assert!(
        n > 10,
        "speed signed on the device only {n} times: {}",
        stats::format(&w.counters())
    );
    assert_eq!(w.fallbacks(), 0, "{}", stats::format(&w.counters()));
}

#[test]
fn speed_with_wd_and_default_offloads_rsa2048() {
    speed_offloads_with(&["-provider", "wd", "-provider", "default"]);
}

#[test]
fn speed_through_openssl_cnf_offloads_rsa2048() {
    let w = World::new();
    let out = ok(w.openssl(Conf::Model, &["speed", "-seconds", "1", "rsa2048"]));
    assert!(stdout(&out).contains("rsa 2048 bits"), "{}", stdout(&out));
    assert!(
        w.counter("offload_private") > 10,
        "{}",
        stats::format(&w.counters())
    );
}

/// `openssl speed -provider wd rsa2048`, wd alone: libcrypto's own DRBG comes from wd's
/// CTR-DRBG (the default provider's, run in wd's child context), the signatures from the
/// device.
#[test]
fn speed_with_wd_alone_offloads_rsa2048() {
    speed_offloads_with(&["-provider", "wd"]);
}

/// wd's random generator: listed, and `openssl rand` with wd alone gives fresh bytes each
/// time, of the length asked for.
#[test]
fn wd_alone_serves_random_bytes() {
    let w = World::new().with("WD_DEVICES", "none");
    let list = stdout(&ok(w.openssl(
        Conf::Default,
        &["list", "-provider", "wd", "-random-generators"],
    )));
    assert!(list.contains("CTR-DRBG @ wd"), "{list}");
    let draw = || {
        let out = ok(w.openssl(Conf::Default, &["rand", "-provider", "wd", "-hex", "4096"]));
        stdout(&out).split_whitespace().collect::<String>()
    };
    let (a, b) = (draw(), draw());
    assert_eq!(a.len(), 8192, "{a}");
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, b);
    // Not a constant or a short cycle: every byte value turns up in 4 KiB of output.
    let bytes: std::collections::HashSet<&str> =
        (0..a.len()).step_by(2).map(|i| &a[i..i + 2]).collect();
    assert!(
        bytes.len() > 250,
        "only {} distinct byte values",
        bytes.len()
    );
}

/// wd with the base provider (encoders, decoders, file store) and no default provider: a
/// key generated through wd (software in its child context), stored, and used to sign on
/// the device; the default provider verifies the signature.
#[test]
fn wd_with_base_alone_generates_signs_and_stores() {
    let w = World::new().with("WD_DEVICES", "model");
    let wd = ["-provider", "wd", "-provider", "base"];
    let key = w.path("k.pem");
    let key_s = key.to_str().unwrap();
    ok(w.openssl(
        Conf::Default,
        &[
            &["genpkey"],
            &wd[..],
            &[
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                key_s,
            ],
        ]
        .concat(),
    ));
    // A SHA-256-sized digest: pkeyutl signs digests.
    std::fs::write(w.path("msg"), [0x5au8; 32]).unwrap();
    let sig = w.path("sig");
    ok(w.openssl(
        Conf::Default,
        &[
            &["pkeyutl", "-sign"],
            &wd[..],
            &[
                "-inkey",
                key_s,
                "-in",
                "msg",
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                "digest:sha256",
                "-out",
                sig.to_str().unwrap(),
            ],
        ]
        .concat(),
    ));
    assert!(
        w.counter("offload_private") >= 1,
        "{}",
        stats::format(&w.counters())
    );
    let out = ok(w.openssl(
        Conf::Default,
        &[
            "pkeyutl",
            "-verify",
            "-inkey",
            key_s,
            "-in",
            "msg",
            "-sigfile",
            sig.to_str().unwrap(),
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "digest:sha256",
        ],
    ));
    assert!(
        stdout(&out).contains("Signature Verified Successfully"),
        "{}",
        stdout(&out)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs one handshake: `s_server` (wd on the model) against `s_client`; returns the
/// client's output.
fn handshake(w: &World, server_args: &[&str], client_args: &[&str]) -> String {
    let key = key(2048);
    let cert = w.path("cert.pem");
    if !cert.exists() {
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
    }
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    let mut sargs = vec![
        "s_server",
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
    // Wait for "ACCEPT".
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("ACCEPT") => break,
            Some(Ok(_)) => {}
            _ => panic!("s_server did not start"),
        }
        assert!(Instant::now() < deadline, "s_server did not start in time");
    }
    let connect = accept.clone();
    let mut cargs = vec![
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        cert.to_str().unwrap(),
        "-verify_return_error",
        "-servername",
        "localhost",
    ];
    cargs.extend_from_slice(client_args);
    let client = w
        .openssl(Conf::Model, &cargs)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&client.stdout),
        String::from_utf8_lossy(&client.stderr)
    );
    // The server (-www: it does not read stdin) exits after its one connection.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = server.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.wait();
    assert!(client.status.success(), "s_client failed:\n{out}");
    out
}

#[test]
fn tls12_ecdhe_rsa_handshake_signs_on_the_device() {
    let w = World::new();
    let cipher = "ECDHE-RSA-AES128-GCM-SHA256";
    let out = handshake(
        &w,
        &["-tls1_2", "-cipher", cipher],
        &["-tls1_2", "-cipher", cipher],
    );
    assert!(out.contains(&format!("Cipher is {cipher}")), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(
        w.counter("offload_private") >= 1,
        "{}",
        stats::format(&w.counters())
    );
    assert_eq!(w.fallbacks(), 0, "{}", stats::format(&w.counters()));
}

#[test]
fn tls13_rsa_pss_handshake_signs_on_the_device() {
    let w = World::new().with("WD_OFFLOAD_PUBLIC", "on");
    let out = handshake(
        &w,
        &["-tls1_3"],
        &["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"],
    );
    assert!(out.contains("TLSv1.3"), "{out}");
    assert!(out.contains("Peer signature type: RSA-PSS"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    // The server's CertificateVerify on the device; the client's checks (certificate and
    // CertificateVerify) with the public key, offloaded too here.
    assert!(
        w.counter("offload_private") >= 1,
        "{}",
        stats::format(&w.counters())
    );
    assert!(
        w.counter("offload_public") >= 1,
        "{}",
        stats::format(&w.counters())
    );
    assert_eq!(w.fallbacks(), 0, "{}", stats::format(&w.counters()));
}
