//! Latency distribution of RSA through the ring and the model against the bignum work
//! alone, in one run: `cargo run --release -p wd-bench --example latency [ops]`.

use std::time::{Duration, Instant};

use hisi_model::{ApiVersion, ModelBackend, ModelConfig};
use openssl::rsa::Rsa;
use wd_core::wait::{thread_cpu, WaitPolicy};
use wd_core::Device;

fn pad(v: &[u8], w: usize) -> Vec<u8> {
    [vec![0u8; w - v.len()], v.to_vec()].concat()
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6
}

fn main() {
    let ops: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    // WD_LATENCY_RING_ONLY=1: back-to-back ring operations (the engine never idles).
    let ring_only = std::env::var_os("WD_LATENCY_RING_ONLY").is_some();
    let dir = tempfile::tempdir().unwrap();
    let backend = ModelBackend::new(ModelConfig {
        api: ApiVersion::V3,
        engines: 1,
        instance_dir: dir.path().to_path_buf(),
        ..ModelConfig::default()
    })
    .unwrap();
    let info = wd_core::Backend::devices(&*backend).unwrap().remove(0);
    let dev = Device::new(info, backend.clone());
    let mut q = hisi_hpre::open_queue(&dev, WaitPolicy::default()).unwrap();
    for bits in [1024u32, 2048] {
        let r = Rsa::generate(bits).unwrap();
        let w = (bits / 8) as usize;
        let h = w / 2;
        let (n, e) = (r.n().to_vec(), r.e().to_vec());
        let (p, qq, dp, dq, qi) = (
            r.p().unwrap().to_vec(),
            r.q().unwrap().to_vec(),
            r.dmp1().unwrap().to_vec(),
            r.dmq1().unwrap().to_vec(),
            r.iqmp().unwrap().to_vec(),
        );
        let d = r.d().to_vec();
        let (alg, block, key) = if std::env::var_os("WD_LATENCY_NONCRT").is_some() && bits == 2048 {
            (
                0u8,
                [pad(&d, w), pad(&n, w)].concat(),
                hisi_hpre::RsaKey::Private { n: &n, d: &d },
            )
        } else if bits == 1024 {
            (
                0u8,
                [pad(&e, w), pad(&n, w)].concat(),
                hisi_hpre::RsaKey::Public { n: &n, e: &e },
            )
        } else {
            (
                1u8,
                [
                    pad(&dq, h),
                    pad(&dp, h),
                    pad(&qq, h),
                    pad(&p, h),
                    pad(&qi, h),
                ]
                .concat(),
                hisi_hpre::RsaKey::PrivateCrt {
                    n_bytes: w,
                    p: &p,
                    q: &qq,
                    dp: &dp,
                    dq: &dq,
                    qinv: &qi,
                },
            )
        };
        let mut m = vec![0u8; w];
        openssl::rand::rand_bytes(&mut m[1..]).unwrap();
        let mut out = vec![0u8; w];
        let (mut direct, mut ring) = (Vec::new(), Vec::new());
        let mut ring_cpu = Duration::ZERO;
        for i in 0..ops {
            // Interleave the two so both see the same machine conditions.
            let t = Instant::now();
            if i == 0 || !ring_only {
                hisi_model::hpre_compute(alg, w, &block, &m, &mut out).unwrap();
            }
            let d = t.elapsed();
            let (t, c) = (Instant::now(), thread_cpu());
            let got = hisi_hpre::rsa(&mut q, &key, &m).unwrap();
            let rr = t.elapsed();
            if i >= ops / 10 {
                ring_cpu += thread_cpu() - c;
            }
            assert_eq!(got, out);
            if i >= ops / 10 {
                direct.push(d);
                ring.push(rr);
            }
        }
        let cpu_us = ring_cpu.as_secs_f64() * 1e6 / ring.len() as f64;
        let (d50, r50) = (pct(&mut direct, 0.5), pct(&mut ring, 0.5));
        println!(
            "rsa{bits} {}: direct p50 {d50:.2} us min {:.2} | ring p50 {r50:.2} us min {:.2} p99 {:.2} | added p50 {:.2} us | caller CPU {cpu_us:.1} us/op",
            if alg == 0 { "public" } else { "crt" },
            pct(&mut direct, 0.0),
            pct(&mut ring, 0.0),
            pct(&mut ring, 0.99),
            r50 - d50
        );
    }
}
