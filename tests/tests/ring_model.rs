//! The QM ring against the device model, below the HPRE driver: what the device does with
//! a request the driver would never send.

mod common;

use std::time::{Duration, Instant};

use common::model;
use hisi_model::ApiVersion;
use hisi_qm::QmRing;
use wd_core::{Queue, QueueRequest};

/// A 64-byte HPRE SQE for alg 0 (mod-exp), 1024-bit, with the given addresses, encoded here
/// from docs/hardware-interface.md §5.1 (dw0 alg[4:0] done[31:30]; dw1 task_len1;
/// key/in/out u64 at 8/16/24; tag u16 at 32).
fn hpre_sqe(key: u64, input: u64, out: u64, tag: u16) -> [u32; 16] {
    let mut w = [0u32; 16];
    w[0] = 1 << 30;
    w[1] = 15;
    w[2] = key as u32;
    w[3] = (key >> 32) as u32;
    w[4] = input as u32;
    w[5] = (input >> 32) as u32;
    w[6] = out as u32;
    w[7] = (out >> 32) as u32;
    w[8] = tag as u32;
    w
}

fn wait_completion(ring: &mut QmRing) -> u16 {
    let t = Instant::now();
    loop {
        if let Some(slot) = ring.poll().unwrap() {
            return slot;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "no completion");
        std::thread::yield_now();
    }
}

#[test]
fn a_stray_dma_address_gives_an_error_completion_not_a_crash() {
    for api in [ApiVersion::V2, ApiVersion::V3] {
        let m = model(api);
        let q = Queue::request(&m.device, QueueRequest { qc_type: 0 }).unwrap();
        let mut ring = QmRing::new(&q).unwrap();
        // Host addresses never shared with the device, and an IOVA nobody mapped.
        let host = Box::new([0u8; 4096]);
        let va = host.as_ptr() as u64;
        for (i, (k, inp, out)) in [
            (va, va + 1024, va + 2048),
            (0xdead_0000, 0xdead_1000, 0xdead_2000),
        ]
        .into_iter()
        .enumerate()
        {
            let slot = ring.send(&hpre_sqe(k, inp, out, i as u16)).unwrap();
            let done = wait_completion(&mut ring);
            assert_eq!(done, slot, "completion names the slot sent");
            let mut back = [0u32; 16];
            ring.read_sqe(done, &mut back).unwrap();
            let (st, etype, etype1) = (
                back[0] >> 30,
                (back[0] >> 5) & 0x7ff,
                (back[0] >> 16) & 0x3fff,
            );
            assert_eq!(st, 3, "device marks the request done");
            assert!(etype != 0 || etype1 != 0, "and failed: dw0={:#x}", back[0]);
        }
        assert!(host.iter().all(|&b| b == 0), "model wrote host memory");
    }
}

#[test]
fn a_request_not_marked_for_submission_is_refused() {
    let m = model(ApiVersion::V3);
    let q = Queue::request(&m.device, QueueRequest { qc_type: 0 }).unwrap();
    let mut ring = QmRing::new(&q).unwrap();
    let mut sqe = hpre_sqe(0, 0, 0, 7);
    sqe[0] = 0; // done = 0: not a submitted task
    ring.send(&sqe).unwrap();
    let slot = wait_completion(&mut ring);
    let mut back = [0u32; 16];
    ring.read_sqe(slot, &mut back).unwrap();
    assert!(
        (back[0] >> 5) & 0x7ff != 0 || (back[0] >> 16) & 0x3fff != 0,
        "dw0={:#x}",
        back[0]
    );
}

/// Lays out e‖n and a message in memory shared with `q` through `mem_share`, sends a raw
/// 1024-bit alg-0 SQE, and returns the SQE as the device left it plus the output bytes.
fn raw_public_op(q: &Queue, k: &common::Parts, msg: &[u8]) -> ([u32; 16], Vec<u8>) {
    let mem = wd_core::Region::anonymous(4096).unwrap();
    let iova = q.mem_share(&mem).unwrap();
    let w = k.bytes();
    let pad = |v: &[u8]| [vec![0u8; w - v.len()], v.to_vec()].concat();
    mem.write_bytes(0, &pad(&k.e));
    mem.write_bytes(w, &pad(&k.n));
    mem.write_bytes(2048, msg);
    let mut ring = QmRing::new(q).unwrap();
    ring.send(&hpre_sqe(iova.0, iova.0 + 2048, iova.0 + 3072, 1))
        .unwrap();
    let slot = wait_completion(&mut ring);
    let mut back = [0u32; 16];
    ring.read_sqe(slot, &mut back).unwrap();
    let mut out = vec![0u8; w];
    mem.read_bytes(3072, &mut out);
    q.mem_unshare(iova, 4096).unwrap();
    (back, out)
}

#[test]
fn memory_shared_with_mem_share_serves_a_raw_request() {
    let m = model(ApiVersion::V2);
    let q = Queue::request(&m.device, QueueRequest { qc_type: 0 }).unwrap();
    let k = common::cheap_key();
    let msg = k.message();
    let (sqe, out) = raw_public_op(&q, k, &msg);
    assert_eq!(sqe[0] >> 30, 3, "done");
    assert_eq!((sqe[0] >> 5) & 0x7ff, 0, "no error: dw0={:#x}", sqe[0]);
    assert_eq!(out, k.sw_public(&msg));
}

#[test]
fn rsa_on_an_ecc_class_queue_is_refused_by_the_device() {
    let m = model(ApiVersion::V2);
    let q = Queue::request(&m.device, QueueRequest { qc_type: 1 }).unwrap();
    // The HPRE driver refuses a queue of the wrong class up front...
    assert!(<hisi_hpre::Hpre as wd_core::UserDriver>::open(&q).is_err());
    // ...and the device refuses RSA work sent on it anyway.
    let k = common::cheap_key();
    let (sqe, out) = raw_public_op(&q, k, &k.message());
    assert_eq!(sqe[0] >> 30, 3, "done");
    assert!(
        (sqe[0] >> 5) & 0x7ff != 0 || (sqe[0] >> 16) & 0x3fff != 0,
        "error expected: dw0={:#x}",
        sqe[0]
    );
    assert!(out.iter().all(|&b| b == 0), "no result written");
}
