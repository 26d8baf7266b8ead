//! The ring and model's added time per RSA operation, measured paired: blocks of 100
//! operations through the ring (caller spinning, the engine kept busy) alternate with
//! blocks of 100 direct calls of the same engine computation, so both medians come from the
//! same stretch of a noisy shared machine. Criterion (`benches/ring.rs`) times the two in
//! separate phases seconds apart, which on these VMs can differ by more than the overhead.
//!
//! `cargo run --release -p wd-bench --example ring_paired [OPS] [RUNS]` (defaults 20000 and
//! 5): prints each run's medians and, per operation, the median over runs of the added time.

use std::time::{Duration, Instant};

use hisi_model::{ApiVersion, ModelBackend, ModelConfig};
use openssl::rsa::Rsa;
use wd_core::wait::WaitPolicy;
use wd_core::Device;

const BLOCK: usize = 100;

fn pad(v: &[u8], w: usize) -> Vec<u8> {
    [vec![0u8; w - v.len()], v.to_vec()].concat()
}

fn median_us(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn main() {
    let mut args = std::env::args().skip(1);
    let ops: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().expect("temporary directory");
    let backend = ModelBackend::new(ModelConfig {
        api: ApiVersion::V3,
        engines: 1,
        instance_dir: dir.path().to_path_buf(),
        ..ModelConfig::default()
    })
    .expect("device model");
    let info = wd_core::Backend::devices(&*backend)
        .expect("model devices")
        .into_iter()
        .find(|d| d.driver() == hisi_hpre::DRIVER)
        .expect("an HPRE device");
    let dev = Device::new(info, backend.clone());
    // The caller spins: the ring and the model alone, not the wait's sleep.
    let spin = WaitPolicy {
        spin: Duration::from_millis(50),
        min_sleep: Duration::from_secs(3600),
        ..WaitPolicy::default()
    };
    let mut q = hisi_hpre::open_queue(&dev, spin).expect("queue");
    let k1 = Rsa::generate(1024).expect("RSA-1024 key");
    let k2 = Rsa::generate(2048).expect("RSA-2048 key");
    let (n1, e1) = (k1.n().to_vec(), k1.e().to_vec());
    let v = |b: Option<&openssl::bn::BigNumRef>| b.expect("CRT part").to_vec();
    let (p, q2, dp, dq, qi) = (
        v(k2.p()),
        v(k2.q()),
        v(k2.dmp1()),
        v(k2.dmq1()),
        v(k2.iqmp()),
    );
    let cases = [
        (
            "rsa1024-public",
            0u8,
            128usize,
            [pad(&e1, 128), pad(&n1, 128)].concat(),
            hisi_hpre::RsaKey::Public { n: &n1, e: &e1 },
        ),
        (
            "rsa2048-crt",
            1u8,
            256usize,
            [
                pad(&dq, 128),
                pad(&dp, 128),
                pad(&q2, 128),
                pad(&p, 128),
                pad(&qi, 128),
            ]
            .concat(),
            hisi_hpre::RsaKey::PrivateCrt {
                n_bytes: 256,
                p: &p,
                q: &q2,
                dp: &dp,
                dq: &dq,
                qinv: &qi,
            },
        ),
    ];
    for (name, alg, w, block, key) in &cases {
        let mut m = vec![0u8; *w];
        openssl::rand::rand_bytes(&mut m[1..]).expect("random message");
        let mut out = vec![0u8; *w];
        let scale = if *alg == 0 { 1 } else { 8 };
        let per_run = (ops / scale).max(2 * BLOCK);
        let mut added = Vec::new();
        for run in 0..runs {
            let (mut direct, mut ring) = (Vec::new(), Vec::new());
            while ring.len() < per_run {
                for _ in 0..BLOCK {
                    let t = Instant::now();
                    let got = hisi_hpre::rsa(&mut q, key, &m).expect("ring operation");
                    ring.push(t.elapsed());
                    std::hint::black_box(got);
                }
                for _ in 0..BLOCK {
                    let t = Instant::now();
                    hisi_model::hpre_compute(*alg, *w, block, &m, &mut out).expect("direct");
                    direct.push(t.elapsed());
                }
            }
            let (d, r) = (median_us(&mut direct), median_us(&mut ring));
            println!(
                "{name} run {}: direct p50 {d:.2} us | ring p50 {r:.2} us | added {:.2} us",
                run + 1,
                r - d
            );
            added.push(r - d);
        }
        added.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name}: added per operation, median of {runs} paired runs: {:.2} us (goal <= 2)",
            added[added.len() / 2]
        );
    }
}
