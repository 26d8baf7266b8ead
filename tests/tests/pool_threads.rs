//! The per-thread queue pool under load: many threads, bounded queues, no lost or
//! mismatched completion, overflow to software.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{cheap_key, model_with, policy};
use hisi_hpre::Hpre;
use hisi_model::ApiVersion;
use wd_core::pool::QueuePool;
use wd_core::Error;

fn run(threads: usize, ops: usize, limit: usize, model_queues: u32) -> (usize, usize) {
    let m = model_with(ApiVersion::V3, |c| {
        c.queues = model_queues;
        c.engines = 2;
    });
    let device = m.device.clone();
    let pool: Arc<QueuePool<Hpre>> = Arc::new(QueuePool::new(
        "hpre",
        limit,
        Box::new(move || hisi_hpre::open_queue(&device, policy(10_000))),
    ));
    let offloaded = Arc::new(AtomicUsize::new(0));
    let software = Arc::new(AtomicUsize::new(0));
    let k = cheap_key();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let pool = pool.clone();
            let (off, sw) = (offloaded.clone(), software.clone());
            std::thread::spawn(move || {
                for i in 0..ops {
                    let mut msg = k.message();
                    msg[1..9].copy_from_slice(&((t * ops + i) as u64).to_be_bytes());
                    let want = common::modexp(&msg, &k.e, &k.n, k.bytes());
                    match pool.with(|q| hisi_hpre::rsa(q, &k.public(), &msg)) {
                        Ok(got) => {
                            assert_eq!(got, want, "thread {t} op {i}");
                            off.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::NoFreeQueue(_)) => {
                            assert_eq!(k.sw_public(&msg), want);
                            sw.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("thread {t} op {i}: {e}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(pool.open_queues() <= limit);
    // Every thread has exited: its queue went back to the set.
    assert_eq!(pool.idle_queues(), pool.open_queues());
    let free_before_drain = m.device.available_instances().unwrap() as usize;
    assert_eq!(
        free_before_drain,
        model_queues as usize - pool.open_queues()
    );
    pool.drain_idle();
    assert_eq!(m.device.available_instances().unwrap(), model_queues);
    (
        offloaded.load(Ordering::Relaxed),
        software.load(Ordering::Relaxed),
    )
}

#[test]
fn eight_threads_ten_thousand_ops_each() {
    let (off, sw) = run(8, 10_000, 8, 16);
    assert_eq!((off, sw), (80_000, 0));
}

#[test]
fn more_threads_than_queues_overflow_to_software() {
    let (off, sw) = run(6, 500, 2, 16);
    assert_eq!(off + sw, 3_000);
    assert!(off >= 500, "the queues were used: {off}");
    assert!(sw >= 500, "the excess went to software: {sw}");
}

#[test]
fn pool_bounded_by_the_device_not_just_its_limit() {
    // The pool would allow 8, the device has 3 instances.
    let (off, sw) = run(6, 300, 8, 3);
    assert_eq!(off + sw, 1_800);
    assert!(sw > 0);
}
