//! Stock Debian nginx with the wd provider configured only through OPENSSL_CONF: the
//! handshakes' RSA signatures are computed on HPRE (the device model) in the workers, nginx's
//! reloads and worker deaths are survived, no queue leaks, and fewer queues than workers
//! overflow to software without a client noticing.

use std::collections::BTreeSet;
use std::path::Path;

use wd_tests::nginx::{curl, s_client, Crypto, Nginx};
use wd_tests::ossl::{read_stats, ProcessStats};

/// Counters of the given processes, summed.
fn sum(stats: &[ProcessStats], pids: &BTreeSet<u32>, name: &str) -> u64 {
    stats
        .iter()
        .filter(|s| pids.contains(&s.pid))
        .map(|s| s.get(name))
        .sum()
}

/// Free HPRE instances of the model whose slots live in `dir`.
fn model_free(dir: &std::path::Path, queues: u32) -> u32 {
    let backend = hisi_model::ModelBackend::new(hisi_model::ModelConfig {
        instance_dir: dir.to_path_buf(),
        queues,
        ..hisi_model::ModelConfig::default()
    })
    .unwrap();
    let info = wd_core::Backend::devices(&*backend)
        .unwrap()
        .into_iter()
        .find(|d| d.driver() == "hisi_hpre")
        .unwrap();
    wd_core::Backend::available_instances(&*backend, &info).unwrap()
}

fn get_ok(port: u16, version: &str, bits: u32) {
    let body = curl(port, version).unwrap_or_else(|e| panic!("curl TLS {version}: {e}"));
    assert_eq!(body, format!("hello from wd {bits}\n"));
}

/// TLS 1.2 and 1.3 handshakes with curl and s_client against 2048-4096-bit certificates;
/// every signature computed on the device in the workers, with the workers waiting for
/// completions in `poll_mode`.
fn worker_handshakes_signed_on_the_device(poll_mode: Option<&'static str>) {
    worker_handshakes_signed_with(Crypto::WdModel {
        queues: 16,
        poll_mode,
    });
}

/// The same, with the workers' devices from `crypto`.
fn worker_handshakes_signed_with(crypto: Crypto) {
    let t = tempfile::tempdir().unwrap();
    let mut n = Nginx::start(t.path(), crypto, 2, &[2048, 3072, 4096]);
    let mut handshakes = 0;
    for &(bits, port) in &n.ports.clone() {
        for v in ["1.2", "1.3"] {
            get_ok(port, v, bits);
            let out = s_client(port, v, &[]).unwrap_or_else(|e| panic!("s_client: {e}"));
            assert!(out.contains(&format!("hello from wd {bits}")), "{out}");
            assert!(out.contains(&format!("Protocol version: TLSv{v}")), "{out}");
            if v == "1.3" {
                assert!(
                    out.contains("Signature type: RSA-PSS"),
                    "TLS 1.3 signs with RSA-PSS: {out}"
                );
            }
            handshakes += 2;
        }
    }
    // TLS 1.2 with ECDHE-RSA named explicitly, through s_client.
    let out = s_client(n.port, "1.2", &["-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]).unwrap();
    assert!(out.contains("ECDHE-RSA-AES128-GCM-SHA256"), "{out}");
    handshakes += 1;

    let workers = n.workers();
    let stats = read_stats(&n.stats_dir);
    let offloaded = sum(&stats, &workers, "offload_private");
    assert!(
        offloaded >= handshakes,
        "{offloaded} private-key operations offloaded in workers {workers:?} for {handshakes} handshakes: {stats:?}"
    );
    for reason in [
        "fallback_no_device",
        "fallback_no_queue",
        "fallback_device_error",
        "fault_guard_trips",
    ] {
        assert_eq!(sum(&stats, &workers, reason), 0, "{reason}: {stats:?}");
    }
    // The master loaded the provider and forked; it never did a private-key operation.
    let master: BTreeSet<u32> = [n.master_pid()].into();
    assert_eq!(sum(&stats, &master, "offload_private"), 0);
    n.stop();
}

/// openEuler's no-SVA mode (static-share region, physical DMA addresses) behind the fake
/// uacce kernel: each worker opens its queues on the kernel's interface and signs there.
#[test]
fn worker_handshakes_are_signed_on_no_sva_queues() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/uacce/openeuler-nosva");
    assert!(fixture.is_dir(), "{}", fixture.display());
    // openEuler 5.10's uacce takes mainline's ioctl numbers; wd cannot tell them apart
    // safely from 4.19's on a _noiommu api, so a host says which (docs/hardware.md).
    worker_handshakes_signed_with(Crypto::WdFakeKernel {
        fixture,
        abi: Some("mainline"),
    });
}

#[test]
fn worker_handshakes_are_signed_on_the_device_tls12_and_tls13() {
    worker_handshakes_signed_on_the_device(None);
}

#[test]
fn worker_handshakes_are_signed_on_the_device_waiting_on_the_event() {
    worker_handshakes_signed_on_the_device(Some("event"));
}

#[test]
fn reload_and_a_killed_worker_keep_serving_and_leak_no_queue() {
    let t = tempfile::tempdir().unwrap();
    let queues = 4;
    let mut n = Nginx::start(
        t.path(),
        Crypto::WdModel {
            queues,
            poll_mode: None,
        },
        2,
        &[2048],
    );
    let model_dir = n.model_dir.clone();
    for i in 0..8 {
        get_ok(n.port, if i % 2 == 0 { "1.2" } else { "1.3" }, 2048);
    }
    let first = n.workers();
    assert!(
        model_free(&model_dir, queues) < queues,
        "workers hold queues while serving"
    );

    n.reload();
    let second = n.workers();
    assert!(second.is_disjoint(&first));
    for i in 0..8 {
        get_ok(n.port, if i % 2 == 0 { "1.2" } else { "1.3" }, 2048);
    }
    let stats = read_stats(&n.stats_dir);
    assert!(
        sum(&stats, &second, "offload_private") > 0,
        "new workers offload after reload: {stats:?}"
    );

    let victim = n.kill_worker();
    let third = n.workers();
    assert!(!third.contains(&victim));
    for i in 0..8 {
        get_ok(n.port, if i % 2 == 0 { "1.2" } else { "1.3" }, 2048);
    }
    let stats = read_stats(&n.stats_dir);
    let respawned: BTreeSet<u32> = third.difference(&second).copied().collect();
    assert_eq!(respawned.len(), 1);
    for reason in ["fallback_device_error", "fallback_no_device"] {
        assert_eq!(sum(&stats, &third, reason), 0, "{reason}: {stats:?}");
    }
    // Old workers exited after the graceful reload; every queue they held came back.
    n.stop();
    assert_eq!(
        model_free(&model_dir, queues),
        queues,
        "queues leaked after nginx stopped"
    );
}

#[test]
fn fewer_queues_than_workers_overflow_to_software() {
    let t = tempfile::tempdir().unwrap();
    let mut n = Nginx::start(
        t.path(),
        Crypto::WdModel {
            queues: 1,
            poll_mode: None,
        },
        2,
        &[2048],
    );
    for i in 0..60 {
        get_ok(n.port, if i % 2 == 0 { "1.2" } else { "1.3" }, 2048);
    }
    let workers = n.workers();
    let stats = read_stats(&n.stats_dir);
    let per_worker: Vec<(u32, u64, u64)> = workers
        .iter()
        .map(|w| {
            let s = stats.iter().find(|s| s.pid == *w);
            (
                *w,
                s.map_or(0, |s| s.get("offload_private")),
                s.map_or(0, |s| s.get("fallback_no_queue")),
            )
        })
        .collect();
    let offloaded: u64 = per_worker.iter().map(|w| w.1).sum();
    let overflowed: u64 = per_worker.iter().map(|w| w.2).sum();
    assert!(offloaded > 0, "one worker got the queue: {per_worker:?}");
    assert!(overflowed > 0, "the other went to software: {per_worker:?}");
    assert!(
        offloaded + overflowed >= 60,
        "every handshake accounted for: {per_worker:?}"
    );
    assert!(
        per_worker.iter().all(|w| w.1 == 0 || w.2 == 0),
        "a worker either holds the queue or never got one: {per_worker:?}"
    );
    n.stop();
}
