//! Stock Debian HAProxy with `ssl-mode-async` and the wd provider configured only through
//! OPENSSL_CONF (issue 10): TLS 1.2 and 1.3 terminated with the handshakes' RSA signatures
//! sent to HPRE (the device model) from libssl's ASYNC jobs, concurrent clients served by
//! one thread, and without `ssl-mode-async` the same through the synchronous path.

use wd_tests::haproxy::Haproxy;
use wd_tests::nginx::{curl, s_client, Crypto};
use wd_tests::ossl::{read_stats, s_time};

fn total(h: &Haproxy, name: &str) -> u64 {
    read_stats(&h.stats_dir).iter().map(|s| s.get(name)).sum()
}

fn fallbacks(h: &Haproxy) -> u64 {
    wd_provider::stats::NAMES
        .iter()
        .filter(|n| n.starts_with("fallback_"))
        .map(|n| total(h, n))
        .sum()
}

fn summary(h: &Haproxy) -> String {
    wd_provider::stats::NAMES
        .iter()
        .map(|n| format!("{n}={}", total(h, n)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Client handshakes: curl and s_client at TLS 1.2 and 1.3, and ECDHE-RSA named.
fn handshakes(h: &Haproxy) -> u64 {
    let mut n = 0;
    for v in ["1.2", "1.3"] {
        for _ in 0..3 {
            let body = curl(h.port, v).unwrap_or_else(|e| panic!("curl TLS {v}: {e}"));
            assert_eq!(body, "hello from wd\n");
            n += 1;
        }
        let out = s_client(h.port, v, &[]).unwrap_or_else(|e| panic!("s_client: {e}"));
        assert!(out.contains("hello from wd"), "{out}");
        assert!(out.contains(&format!("Protocol version: TLSv{v}")), "{out}");
        n += 1;
    }
    let out = s_client(h.port, "1.2", &["-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]).unwrap();
    assert!(out.contains("ECDHE-RSA-AES128-GCM-SHA256"), "{out}");
    n + 1
}

/// `clients` concurrent `openssl s_time -new` runs of `seconds` each; the handshakes
/// they made (each run must succeed).
fn s_time_parallel(port: u16, clients: u32, seconds: u32) -> u64 {
    let load = s_time(port, clients, seconds);
    assert_eq!(load.failed_runs, 0, "s_time runs failed (printed above)");
    load.handshakes
}

#[test]
fn haproxy_ssl_mode_async_terminates_tls_with_signatures_in_flight_on_the_device() {
    let t = tempfile::tempdir().unwrap();
    let mut h = Haproxy::start(
        t.path(),
        Crypto::WdModel {
            queues: 16,
            poll_mode: None,
        },
        true,
        1,
        &[("WD_MODEL_ENGINES", "2")],
    );
    let mut n = handshakes(&h);
    let loaded = s_time_parallel(h.port, 4, 2);
    assert!(loaded > 20, "only {loaded} handshakes under load");
    n += loaded;
    assert!(h.alive(), "haproxy died: {}", h.stop());
    let signed = total(&h, "offload_private");
    let submitted = total(&h, "async_submitted");
    assert!(
        signed >= n,
        "{n} handshakes, {signed} signed on the device: {}",
        summary(&h)
    );
    assert!(
        submitted >= n,
        "{n} handshakes, {submitted} from ASYNC jobs: {}",
        summary(&h)
    );
    assert!(total(&h, "async_pauses") > 0, "{}", summary(&h));
    assert_eq!(fallbacks(&h), 0, "{}", summary(&h));
    let err = h.stop();
    assert!(
        !err.contains("FATAL") && !err.contains("bug condition"),
        "{err}"
    );
}

/// Without `ssl-mode-async` nothing changes: the same handshakes, signed on the device
/// synchronously, none from a job.
#[test]
fn haproxy_without_async_mode_signs_synchronously() {
    let t = tempfile::tempdir().unwrap();
    let h = Haproxy::start(
        t.path(),
        Crypto::WdModel {
            queues: 16,
            poll_mode: None,
        },
        false,
        1,
        &[],
    );
    let n = handshakes(&h);
    assert!(total(&h, "offload_private") >= n, "{}", summary(&h));
    assert_eq!(total(&h, "async_submitted"), 0, "{}", summary(&h));
    assert_eq!(fallbacks(&h), 0, "{}", summary(&h));
}
