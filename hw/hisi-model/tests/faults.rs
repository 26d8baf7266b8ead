//! Malformed requests, stray addresses, bad doorbells and injected faults: each gives the
//! error hardware would give (or is ignored, for doorbells), never a panic or a success.

mod common;

use std::time::Duration;

use common::*;
use hisi_model::FaultConfig;
use openssl::rsa::Rsa;
use wd_core::{Backend, Error, QueueRequest};

struct Req {
    k: usize,
    key: Dma,
    crt: Dma,
    inb: Dma,
    out: Dma,
    msg: Vec<u8>,
}

fn setup(r: &TestRing, rsa: &Rsa<openssl::pkey::Private>) -> Req {
    let kb = key_blocks(rsa);
    let k = kb.k;
    let key = r.map(kb.public.len());
    key.write(0, &kb.public);
    let crt = r.map(kb.crt.len());
    crt.write(0, &kb.crt);
    let inb = r.map(k);
    let msg = message(k, 1);
    inb.write(0, &msg);
    let out = r.map(k);
    Req {
        k,
        key,
        crt,
        inb,
        out,
        msg,
    }
}

fn rsa1024() -> Rsa<openssl::pkey::Private> {
    Rsa::generate(1024).unwrap()
}

/// Submits `sqe`, waits for its CQE, returns (etype, etype1, done).
fn expect_completion(r: &mut TestRing, sqe: &[u8; 64]) -> (u32, u32, u32) {
    let slot = r.submit(sqe);
    let c = r
        .wait_cqe(WAIT)
        .expect("a completion, even for a bad request");
    assert_eq!(c.sq_head, slot);
    let (_, etype, etype1, done) = split_dw0(r.dw0(slot));
    (etype, etype1, done)
}

#[test]
fn stray_dma_addresses_complete_with_an_address_error() {
    let m = model();
    let mut r = m.open(0);
    let rq = setup(&r, &rsa1024());
    let k = rq.k;
    let host = rq.out.region.as_ptr() as u64;
    let cases = [
        ("unmapped key", 0xdead_0000u64, rq.inb.iova, rq.out.iova),
        ("unmapped input", rq.key.iova, 0x1000, rq.out.iova),
        ("unmapped output", rq.key.iova, rq.inb.iova, 0),
        ("host address as output", rq.key.iova, rq.inb.iova, host),
        (
            "output straddles the mapping end",
            rq.key.iova,
            rq.inb.iova,
            rq.out.iova + 1,
        ),
        (
            "key block too long for its mapping",
            rq.key.iova + 8,
            rq.inb.iova,
            rq.out.iova,
        ),
        (
            "input from another mapping's tail",
            rq.key.iova,
            rq.key.iova + (2 * k - 64) as u64,
            rq.out.iova,
        ),
    ];
    for (what, key, input, out) in cases {
        let (etype, etype1, done) = expect_completion(&mut r, &hpre_sqe(0, k, key, input, out, 1));
        assert_eq!(done, 3, "{what}");
        assert_ne!(etype, 0, "{what}");
        assert_ne!(etype1 & (1 << 5), 0, "{what}: etype1 bit 5");
    }
    assert_eq!(
        rq.out.read(0, k),
        vec![0u8; k],
        "nothing written on a fault"
    );
    // An unmapped buffer faults too.
    let gone = r.map(k);
    let gone_iova = gone.iova;
    r.q.unmap_dma(wd_core::Iova(gone_iova), k).unwrap();
    let (etype, _, _) = expect_completion(
        &mut r,
        &hpre_sqe(0, k, rq.key.iova, rq.inb.iova, gone_iova, 1),
    );
    assert_ne!(etype, 0);
    let s = m.backend.stats();
    assert_eq!(s.address_faults, cases.len() as u64 + 1);
    assert_eq!(s.completed_error, s.address_faults);
    assert_eq!(s.completed_ok, 0);
    // The same queue still works.
    let (etype, etype1, done) = expect_completion(
        &mut r,
        &hpre_sqe(0, k, rq.key.iova, rq.inb.iova, rq.out.iova, 1),
    );
    assert_eq!((etype, etype1, done), (0, 0, 3));
}

#[test]
fn unmap_must_match_a_mapping() {
    let m = model();
    let r = m.open(0);
    let d = r.map(8192);
    assert!(r.q.unmap_dma(wd_core::Iova(d.iova), 4096).is_err());
    assert!(r.q.unmap_dma(wd_core::Iova(d.iova + 4096), 4096).is_err());
    r.q.unmap_dma(wd_core::Iova(d.iova), 8192).unwrap();
    assert!(r.q.unmap_dma(wd_core::Iova(d.iova), 8192).is_err());
    // IOVAs are the model's own, not host addresses, and distinct.
    let a = r.map(100);
    let b = r.map(100);
    assert_ne!(a.iova, a.region.as_ptr() as u64);
    assert!(b.iova >= a.iova + 100);
}

#[test]
fn malformed_requests_complete_with_a_parameter_error() {
    let m = model();
    let mut r = m.open(0);
    let rq = setup(&r, &rsa1024());
    let k = rq.k;
    let good = hpre_sqe(0, k, rq.key.iova, rq.inb.iova, rq.out.iova, 9);
    let with_dw0 = |f: &dyn Fn(u32) -> u32| {
        let mut s = good;
        let dw0 = u32::from_le_bytes(s[0..4].try_into().unwrap());
        s[0..4].copy_from_slice(&f(dw0).to_le_bytes());
        s
    };
    let with_len1 = |len1: u8| {
        let mut s = good;
        s[4] = len1;
        s
    };
    let n_big = {
        let b = r.map(k);
        b.write(0, &rq.key.read(k, k)); // n itself: not below the modulus
        b
    };
    let cases: Vec<(&str, [u8; 64])> = vec![
        ("done = 0", with_dw0(&|d| d & !(3 << 30))),
        ("done = 3", with_dw0(&|d| d | (3 << 30))),
        ("done = 2", with_dw0(&|d| (d & !(3 << 30)) | (2 << 30))),
        ("alg 5 (DH, not modelled)", with_dw0(&|d| d | 5)),
        ("alg 0x1f", with_dw0(&|d| d | 0x1f)),
        ("keygen alg 2", with_dw0(&|d| d | 2)),
        ("512-bit key", with_len1(7)),
        ("1536-bit key", with_len1(23)),
        ("task_len1 255", with_len1(255)),
        (
            "input = modulus",
            hpre_sqe(0, k, rq.key.iova, n_big.iova, rq.out.iova, 9),
        ),
        (
            "CRT input = modulus",
            hpre_sqe(1, k, rq.crt.iova, n_big.iova, rq.out.iova, 9),
        ),
        ("zero key block", {
            // The IOMMU keeps the mapped memory alive; the test's handle may go.
            let z = r.map(2 * k);
            hpre_sqe(0, k, z.iova, rq.inb.iova, rq.out.iova, 9)
        }),
    ];
    for (what, sqe) in &cases {
        let (etype, etype1, done) = expect_completion(&mut r, sqe);
        assert_eq!(done, 3, "{what}");
        assert_ne!(etype, 0, "{what}");
        assert_eq!(etype1 & (1 << 5), 0, "{what}: not an address error");
    }
    assert_eq!(
        rq.out.read(0, k),
        vec![0u8; k],
        "nothing written on an error"
    );
    let s = m.backend.stats();
    assert_eq!(s.completed_error, cases.len() as u64);
    assert_eq!(s.address_faults, 0);
    let (etype, _, done) = expect_completion(&mut r, &good);
    assert_eq!((etype, done), (0, 3));
    assert_ne!(rq.out.read(0, k), rq.msg);
}

#[test]
fn rsa_on_a_qc_type_1_queue_fails_and_bad_qc_types_are_refused() {
    let m = model();
    let mut r = m.open(1);
    let rq = setup(&r, &rsa1024());
    let (etype, _, done) = expect_completion(
        &mut r,
        &hpre_sqe(0, rq.k, rq.key.iova, rq.inb.iova, rq.out.iova, 1),
    );
    assert_eq!(done, 3);
    assert_ne!(etype, 0);
    let e = m
        .backend
        .open_queue(&m.dev, QueueRequest { qc_type: 3 })
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn doorbells_with_wrong_qn_cmd_offset_or_index_are_ignored() {
    let m = model();
    let mut r = m.open(0);
    let rq = setup(&r, &rsa1024());
    let slot = r.put(&hpre_sqe(0, rq.k, rq.key.iova, rq.inb.iova, rq.out.iova, 5));
    let tail = r.sq_tail;
    r.ring_raw(doorbell_v2(r.qid + 1, 0, tail, 0)); // another queue's number
    r.ring_raw(doorbell_v2(r.qid, 2, tail, 0)); // EQ command
    r.ring_raw(doorbell_v2(r.qid, 3, tail, 0)); // AEQ command
    r.ring_raw(doorbell_v2(r.qid, 0, r.depth, 0)); // index out of range
    r.q.mmio().write_u64(0x1008, doorbell_v2(r.qid, 0, tail, 0)); // wrong register
    r.q.mmio().write_u64(0x340, doorbell_v1(r.qid, 0, tail, 0)); // v1 register on v2
    assert!(r.wait_cqe(Duration::from_millis(150)).is_none());
    let s = m.backend.stats();
    assert_eq!(s.bad_doorbells, 6);
    assert_eq!(s.doorbells, 0);
    r.kick();
    let c = r.wait_cqe(WAIT).unwrap();
    assert_eq!(c.sq_head, slot);
    assert_eq!(split_dw0(r.dw0(slot)).1, 0);
}

#[test]
fn error_every_and_error_ratio() {
    let m = model_with(|c| c.faults.error_every = 3);
    let mut r = m.open(0);
    let rq = setup(&r, &rsa1024());
    let sqe = hpre_sqe(0, rq.k, rq.key.iova, rq.inb.iova, rq.out.iova, 1);
    let mut errors = vec![];
    for i in 1..=9 {
        let (etype, _, done) = expect_completion(&mut r, &sqe);
        assert_eq!(done, 3);
        if etype != 0 {
            errors.push(i);
        }
    }
    assert_eq!(errors, vec![3, 6, 9]);
    m.backend.set_faults(FaultConfig {
        error_ratio: 1.0,
        ..FaultConfig::default()
    });
    for _ in 0..3 {
        assert_ne!(expect_completion(&mut r, &sqe).0, 0);
    }
    m.backend.set_faults(FaultConfig::default());
    for _ in 0..3 {
        assert_eq!(expect_completion(&mut r, &sqe).0, 0);
    }
    // Switched on at run time, error_every counts from the switch.
    m.backend.set_faults(FaultConfig {
        error_every: 2,
        ..FaultConfig::default()
    });
    let got: Vec<bool> = (0..4)
        .map(|_| expect_completion(&mut r, &sqe).0 != 0)
        .collect();
    assert_eq!(got, vec![false, true, false, true]);
    let s = m.backend.stats();
    assert_eq!((s.completed_ok, s.completed_error), (11, 8));
}

#[test]
fn stalled_engine_takes_requests_and_never_completes_them() {
    let m = model_with(|c| c.faults.stall = true);
    let mut r = m.open(0);
    let rq = setup(&r, &rsa1024());
    let sqe = hpre_sqe(0, rq.k, rq.key.iova, rq.inb.iova, rq.out.iova, 1);
    r.submit(&sqe);
    assert!(r.wait_cqe(Duration::from_millis(200)).is_none());
    assert_eq!(m.backend.stats().stalled, 1);
    m.backend.set_faults(FaultConfig::default());
    let slot = r.submit(&sqe);
    let c = r.wait_cqe(WAIT).unwrap();
    assert_eq!(c.sq_head, slot, "only the new request completes");
    assert!(r.wait_cqe(Duration::from_millis(50)).is_none());
}

#[test]
fn lost_doorbell_is_covered_by_the_next_one() {
    let m = model_with(|c| c.faults.lost_doorbell_every = 2);
    let mut r = m.open(0);
    let rq = setup(&r, &rsa1024());
    let sqe = hpre_sqe(0, rq.k, rq.key.iova, rq.inb.iova, rq.out.iova, 1);
    let a = r.submit(&sqe);
    assert_eq!(r.wait_cqe(WAIT).unwrap().sq_head, a);
    let b = r.submit(&sqe); // 2nd SQ doorbell: dropped
    assert!(r.wait_cqe(Duration::from_millis(150)).is_none());
    let c = r.submit(&sqe); // 3rd: index covers b and c
    let mut got = vec![
        r.wait_cqe(WAIT).unwrap().sq_head,
        r.wait_cqe(WAIT).unwrap().sq_head,
    ];
    got.sort();
    assert_eq!(got, vec![b, c]);
    assert_eq!(m.backend.stats().lost_doorbells, 1);
}

#[test]
fn corrupted_cqe_has_an_out_of_range_sq_head() {
    let m = model_with(|c| c.faults.corrupt_cqe_every = 2);
    let mut r = m.open(0);
    let rq = setup(&r, &rsa1024());
    let sqe = hpre_sqe(0, rq.k, rq.key.iova, rq.inb.iova, rq.out.iova, 1);
    let a = r.submit(&sqe);
    assert_eq!(r.wait_cqe(WAIT).unwrap().sq_head, a);
    r.submit(&sqe);
    let bad = r.wait_cqe(WAIT).unwrap();
    assert!(bad.sq_head >= r.depth, "sq_head {}", bad.sq_head);
    assert_eq!(m.backend.stats().corrupted_cqes, 1);
}

#[test]
fn tx_and_rx_stop_knobs_set_the_status_words() {
    let m = model();
    let r = m.open(0);
    assert_eq!((r.tx_stop(), r.rx_stop()), (0, 0));
    m.backend.set_faults(FaultConfig {
        tx_stop: true,
        ..FaultConfig::default()
    });
    assert_eq!((r.tx_stop(), r.rx_stop()), (1, 0));
    m.backend.set_faults(FaultConfig {
        rx_stop: true,
        ..FaultConfig::default()
    });
    assert_eq!((r.tx_stop(), r.rx_stop()), (0, 1));
    m.backend.set_faults(FaultConfig {
        tx_stop: true,
        rx_stop: true,
        ..FaultConfig::default()
    });
    // Words are exactly at dus_size-4 (TX) and dus_size-8 (RX); nothing else was written.
    let d = r.q.dus();
    assert_eq!(d.len(), m.dev.dus_size);
    assert_eq!(d.read_u32(d.len() - 4), 1);
    assert_eq!(d.read_u32(d.len() - 8), 1);
    assert_eq!(d.read_u32(d.len() - 12), 0);
    // A queue opened while the knobs are on starts with them set.
    let r2 = m.open(0);
    assert_eq!((r2.tx_stop(), r2.rx_stop()), (1, 1));
    m.backend.set_faults(FaultConfig::default());
    assert_eq!((r.tx_stop(), r.rx_stop()), (0, 0));
    assert_eq!((r2.tx_stop(), r2.rx_stop()), (0, 0));
}

#[test]
fn cq_overflow_sets_rx_stop_and_stops_the_queue() {
    let m = model_with(|c| c.depth = 8);
    let mut r = m.open(0);
    assert_eq!(r.depth, 8);
    r.ring_cq_doorbell = false; // a driver that never tells the device it consumed CQEs
    let rq = setup(&r, &rsa1024());
    let sqe = hpre_sqe(0, rq.k, rq.key.iova, rq.inb.iova, rq.out.iova, 1);
    for _ in 0..7 {
        r.submit(&sqe);
        assert!(r.wait_cqe(WAIT).is_some());
    }
    assert_eq!(r.rx_stop(), 0);
    r.submit(&sqe);
    assert!(r.wait_cqe(Duration::from_millis(200)).is_none());
    assert_eq!(r.rx_stop(), 1);
    assert_eq!(m.backend.stats().cq_overflows, 1);
    // Clearing the RX-stop knob does not clear a stop the device made itself.
    m.backend.set_faults(FaultConfig::default());
    assert_eq!(r.rx_stop(), 1);
}

#[test]
fn released_queue_ignores_doorbells_and_refuses_mappings() {
    let m = model();
    let mut r = m.open(0);
    let rq = setup(&r, &rsa1024());
    let sqe = hpre_sqe(0, rq.k, rq.key.iova, rq.inb.iova, rq.out.iova, 1);
    r.q.release().unwrap();
    r.q.release().unwrap();
    r.put(&sqe);
    r.kick();
    assert!(r.wait_cqe(Duration::from_millis(100)).is_none());
    assert!(r.q.map_dma(&rq.out.region).is_err());
    assert!(r.q.wait(Duration::ZERO).is_err());
    assert_eq!(rq.out.read(0, rq.k), vec![0u8; rq.k]);
}
