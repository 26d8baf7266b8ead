//! Time an RSA operation spends in the QM ring and the device model beyond the bignum work
//! itself: the same engine computation called directly, and through driver → ring →
//! doorbell → model engine thread → CQE → driver, in one run. Also throughput with 64
//! requests in flight on one queue.
//!
//! `bench/ring-overhead.sh` runs this and prints the medians' differences.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hisi_model::{ApiVersion, ModelBackend, ModelConfig};
use openssl::rsa::Rsa;
use wd_core::wait::WaitPolicy;
use wd_core::Device;

fn pad(v: &[u8], w: usize) -> Vec<u8> {
    let mut out = vec![0u8; w - v.len()];
    out.extend_from_slice(v);
    out
}

struct Key {
    n: Vec<u8>,
    e: Vec<u8>,
    p: Vec<u8>,
    q: Vec<u8>,
    dp: Vec<u8>,
    dq: Vec<u8>,
    qinv: Vec<u8>,
    bytes: usize,
}

impl Key {
    fn new(bits: u32) -> Key {
        let r = Rsa::generate(bits).unwrap();
        Key {
            n: r.n().to_vec(),
            e: r.e().to_vec(),
            p: r.p().unwrap().to_vec(),
            q: r.q().unwrap().to_vec(),
            dp: r.dmp1().unwrap().to_vec(),
            dq: r.dmq1().unwrap().to_vec(),
            qinv: r.iqmp().unwrap().to_vec(),
            bytes: (bits / 8) as usize,
        }
    }
    /// docs/hardware-interface.md §5.3: e‖n, each key_sz wide.
    fn public_block(&self) -> Vec<u8> {
        [pad(&self.e, self.bytes), pad(&self.n, self.bytes)].concat()
    }
    /// hardware-interface §5.3: dq‖dp‖q‖p‖qinv, each key_sz/2 wide.
    fn crt_block(&self) -> Vec<u8> {
        let h = self.bytes / 2;
        [&self.dq, &self.dp, &self.q, &self.p, &self.qinv]
            .iter()
            .flat_map(|v| pad(v, h))
            .collect()
    }
    fn message(&self) -> Vec<u8> {
        let mut m = vec![0u8; self.bytes];
        openssl::rand::rand_bytes(&mut m[1..]).unwrap();
        m
    }
}

fn model() -> (Arc<ModelBackend>, Device, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig {
        api: ApiVersion::V3,
        engines: 1,
        instance_dir: dir.path().to_path_buf(),
        ..ModelConfig::default()
    };
    let backend = ModelBackend::new(cfg).unwrap();
    let info = wd_core::Backend::devices(&*backend)
        .unwrap()
        .into_iter()
        .find(|d| d.driver() == hisi_hpre::DRIVER)
        .unwrap();
    let dev = Device::new(info, backend.clone());
    (backend, dev, dir)
}

fn overhead(c: &mut Criterion) {
    let (_backend, dev, _dir) = model();
    // The ring and the model alone: the caller spins for the completion.
    let spin = WaitPolicy {
        spin: Duration::from_millis(50),
        min_sleep: Duration::from_secs(3600),
        ..WaitPolicy::default()
    };
    let mut q = hisi_hpre::open_queue(&dev, spin).unwrap();
    // What an application sees with the default hybrid wait (sleep most, spin the rest):
    // adds the sleep's wake-up jitter, in exchange for the CPU it frees.
    let mut qh = hisi_hpre::open_queue(&dev, WaitPolicy::default()).unwrap();

    let k1 = Key::new(1024);
    let m1 = k1.message();
    let block1 = k1.public_block();
    let key1 = hisi_hpre::RsaKey::Public { n: &k1.n, e: &k1.e };
    let mut g = c.benchmark_group("rsa1024-public");
    g.bench_function("direct", |b| {
        let mut out = vec![0u8; k1.bytes];
        b.iter(|| hisi_model::hpre_compute(0, k1.bytes, &block1, &m1, &mut out).unwrap())
    });
    g.bench_function("ring", |b| {
        b.iter(|| hisi_hpre::rsa(&mut q, &key1, &m1).unwrap())
    });
    g.bench_function("ring-hybrid-wait", |b| {
        b.iter(|| hisi_hpre::rsa(&mut qh, &key1, &m1).unwrap())
    });
    g.finish();

    let k2 = Key::new(2048);
    let c2 = k2.message();
    let block2 = k2.crt_block();
    let key2 = hisi_hpre::RsaKey::PrivateCrt {
        n_bytes: k2.bytes,
        p: &k2.p,
        q: &k2.q,
        dp: &k2.dp,
        dq: &k2.dq,
        qinv: &k2.qinv,
    };
    let mut g = c.benchmark_group("rsa2048-crt");
    g.bench_function("direct", |b| {
        let mut out = vec![0u8; k2.bytes];
        b.iter(|| hisi_model::hpre_compute(1, k2.bytes, &block2, &c2, &mut out).unwrap())
    });
    g.bench_function("ring", |b| {
        b.iter(|| hisi_hpre::rsa(&mut q, &key2, &c2).unwrap())
    });
    g.bench_function("ring-hybrid-wait", |b| {
        b.iter(|| hisi_hpre::rsa(&mut qh, &key2, &c2).unwrap())
    });
    g.finish();

    // 64 requests kept in flight on one queue.
    let mut g = c.benchmark_group("rsa1024-public-64-in-flight");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ring", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let (mut sent, mut done) = (0u64, 0u64);
            while done < iters {
                while sent < iters && q.in_flight() < 64 {
                    let job = hisi_hpre::RsaJob::new(q.driver(), &key1, &m1).unwrap();
                    match q.send(job) {
                        Ok(()) => sent += 1,
                        Err(e) if matches!(e.error, wd_core::Error::RingFull) => break,
                        Err(e) => panic!("{}", e.error),
                    }
                }
                let job = q.recv_sync().unwrap();
                job.result().unwrap();
                done += 1;
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = overhead
}
criterion_main!(benches);
