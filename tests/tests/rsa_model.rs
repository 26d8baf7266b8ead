//! HPRE RSA through the QM ring and the device model, checked against libcrypto.

mod common;

use common::{cheap_key, key, model, model_with, policy, Parts};
use hisi_model::{ApiVersion, FaultConfig};
use wd_core::error::StopWord;
use wd_core::Error;

fn check_all_forms(api: ApiVersion, bits: u32) {
    let m = model(api);
    let mut q = hisi_hpre::open_queue(&m.device, policy(10_000)).unwrap();
    let k: &Parts = key(bits);
    for _ in 0..3 {
        let msg = k.message();
        let c = hisi_hpre::rsa(&mut q, &k.public(), &msg).unwrap();
        assert_eq!(c, k.sw_public(&msg), "{bits}-bit public op on {api:?}");
        let p1 = hisi_hpre::rsa(&mut q, &k.private(), &c).unwrap();
        assert_eq!(p1, msg, "{bits}-bit non-CRT private op on {api:?}");
        let p2 = hisi_hpre::rsa(&mut q, &k.crt(), &c).unwrap();
        assert_eq!(p2, msg, "{bits}-bit CRT private op on {api:?}");
        assert_eq!(p2, k.sw_private(&c));
    }
}

#[test]
fn rsa_equals_libcrypto_every_size_v2() {
    for bits in [1024, 2048, 3072, 4096] {
        check_all_forms(ApiVersion::V2, bits);
    }
}

#[test]
fn rsa_equals_libcrypto_every_size_v3() {
    for bits in [1024, 2048, 3072, 4096] {
        check_all_forms(ApiVersion::V3, bits);
    }
}

#[test]
fn fresh_random_keys_every_size_crt_and_plain() {
    // A new key each run, beyond the cached ones: random keys of every size.
    let m = model(ApiVersion::V3);
    let mut q = hisi_hpre::open_queue(&m.device, policy(10_000)).unwrap();
    for bits in [1024, 2048, 3072] {
        let k = Parts::of(openssl::rsa::Rsa::generate(bits).unwrap());
        let msg = k.message();
        let c = hisi_hpre::rsa(&mut q, &k.public(), &msg).unwrap();
        assert_eq!(c, k.sw_public(&msg));
        assert_eq!(hisi_hpre::rsa(&mut q, &k.crt(), &c).unwrap(), msg);
        assert_eq!(hisi_hpre::rsa(&mut q, &k.private(), &c).unwrap(), msg);
    }
}

#[test]
fn unsupported_key_sizes_are_a_typed_error() {
    let m = model(ApiVersion::V2);
    let mut q = hisi_hpre::open_queue(&m.device, policy(2_000)).unwrap();
    for bits in [512, 1536] {
        let k = key(bits);
        let msg = k.message();
        let e = hisi_hpre::rsa(&mut q, &k.public(), &msg).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{bits}: {e}");
        assert!(!hisi_hpre::supported_key_bytes(k.bytes()));
    }
    // The queue is still good afterwards.
    let k = key(1024);
    let msg = k.message();
    assert_eq!(
        hisi_hpre::rsa(&mut q, &k.public(), &msg).unwrap(),
        k.sw_public(&msg)
    );
}

#[test]
fn oversized_input_is_rejected_before_the_device() {
    let m = model(ApiVersion::V2);
    let mut q = hisi_hpre::open_queue(&m.device, policy(2_000)).unwrap();
    let k = key(1024);
    let e = hisi_hpre::rsa(&mut q, &k.public(), &[1u8; 129]).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

/// Many more requests than the ring depth, up to 64 in flight: every completion arrives
/// once, matched to its own request, across several phase flips.
#[test]
fn wrap_around_with_many_in_flight() {
    for api in [ApiVersion::V2, ApiVersion::V3] {
        let m = model_with(api, |c| {
            c.depth = 64;
            c.engines = 2;
        });
        let mut q = hisi_hpre::open_queue(&m.device, policy(10_000)).unwrap();
        assert_eq!(q.queue().info().sq_depth, 64);
        let k = cheap_key();
        let total = 64 * 40;
        let msgs: Vec<Vec<u8>> = (0..total).map(|_| k.message()).collect();
        let mut seen = vec![false; total];
        let (mut sent, mut done) = (0usize, 0usize);
        let mut pending: Option<hisi_hpre::RsaJob> = None;
        while done < total {
            while sent < total && q.in_flight() < 63 {
                let job = match pending.take() {
                    Some(j) => j,
                    None => {
                        let mut j =
                            hisi_hpre::RsaJob::new(q.driver(), &k.public(), &msgs[sent]).unwrap();
                        j.set_user_data(sent as u64);
                        j
                    }
                };
                match q.send(job) {
                    Ok(()) => sent += 1,
                    // Completions can come out of order (two engines): the slot the ring
                    // would reuse may still be busy. Receive first, then resend.
                    Err(e) => {
                        assert!(matches!(e.error, Error::RingFull), "{}", e.error);
                        pending = Some(e.msg);
                        break;
                    }
                }
            }
            let job = q.recv_sync().unwrap();
            let i = job.user_data() as usize;
            assert!(!seen[i], "request {i} completed twice");
            seen[i] = true;
            let want = common::modexp(&msgs[i], &k.e, &k.n, k.bytes());
            assert_eq!(job.result().unwrap(), want, "request {i}");
            done += 1;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(q.in_flight(), 0);
    }
}

#[test]
fn a_full_ring_keeps_one_slot_free_and_says_so() {
    let m = model_with(ApiVersion::V2, |c| {
        c.depth = 32;
        c.faults.stall = true;
    });
    let mut q = hisi_hpre::open_queue(&m.device, policy(300)).unwrap();
    let k = cheap_key();
    let mut accepted = 0;
    loop {
        let job = hisi_hpre::RsaJob::new(q.driver(), &k.public(), &k.message()).unwrap();
        match q.send(job) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(matches!(e.error, Error::RingFull), "{}", e.error);
                break;
            }
        }
        assert!(accepted < 32, "ring accepted more than depth - 1");
    }
    assert_eq!(accepted, 31, "one slot always free");
    // A stalled device is reported as such, within the timeout.
    let t = std::time::Instant::now();
    let e = q.recv_sync().unwrap_err();
    assert!(matches!(e, Error::Stalled(_)), "{e}");
    assert!(t.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn stalled_engine_times_out_with_a_typed_error() {
    let m = model_with(ApiVersion::V3, |c| c.faults.stall = true);
    let mut q = hisi_hpre::open_queue(&m.device, policy(200)).unwrap();
    let k = key(2048);
    let t = std::time::Instant::now();
    let e = hisi_hpre::rsa(&mut q, &k.crt(), &k.message()).unwrap_err();
    assert!(matches!(e, Error::Stalled(_)), "{e}");
    let took = t.elapsed();
    assert!(took >= std::time::Duration::from_millis(200), "{took:?}");
    assert!(took < std::time::Duration::from_millis(1500), "{took:?}");
}

#[test]
fn stop_words_give_a_clear_error() {
    let m = model(ApiVersion::V2);
    let mut q = hisi_hpre::open_queue(&m.device, policy(1_000)).unwrap();
    let k = key(1024);
    m.backend.set_faults(FaultConfig {
        tx_stop: true,
        ..FaultConfig::default()
    });
    let e = hisi_hpre::rsa(&mut q, &k.public(), &k.message()).unwrap_err();
    assert!(matches!(e, Error::QueueStopped(StopWord::Tx)), "{e}");
    assert!(e.to_string().contains("TX") || e.to_string().contains("Tx"));

    let m = model(ApiVersion::V3);
    let mut q = hisi_hpre::open_queue(&m.device, policy(1_000)).unwrap();
    m.backend.set_faults(FaultConfig {
        rx_stop: true,
        ..FaultConfig::default()
    });
    let e = hisi_hpre::rsa(&mut q, &k.public(), &k.message()).unwrap_err();
    assert!(matches!(e, Error::QueueStopped(StopWord::Rx)), "{e}");
}

#[test]
fn device_error_status_is_reported_per_request() {
    let m = model_with(ApiVersion::V2, |c| c.faults.error_every = 2);
    let mut q = hisi_hpre::open_queue(&m.device, policy(2_000)).unwrap();
    let k = key(1024);
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..20 {
        let msg = k.message();
        match hisi_hpre::rsa(&mut q, &k.public(), &msg) {
            Ok(c) => {
                assert_eq!(c, k.sw_public(&msg), "a completed request is right");
                ok += 1;
            }
            Err(Error::Device(_)) => failed += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, failed), (10, 10));
}

#[test]
fn queues_are_bounded_by_available_instances() {
    let m = model_with(ApiVersion::V2, |c| c.queues = 2);
    assert_eq!(m.device.available_instances().unwrap(), 2);
    let a = hisi_hpre::open_queue(&m.device, policy(1_000)).unwrap();
    let b = hisi_hpre::open_queue(&m.device, policy(1_000)).unwrap();
    assert_eq!(m.device.available_instances().unwrap(), 0);
    let e = hisi_hpre::open_queue(&m.device, policy(1_000)).unwrap_err();
    assert!(matches!(e, Error::NoFreeQueue(_)), "{e}");
    drop(a);
    assert_eq!(m.device.available_instances().unwrap(), 1);
    drop(b);
    assert_eq!(m.device.available_instances().unwrap(), 2);
}
