//! Driver tests against a fake queue whose device side this code plays: it reads SQEs with
//! the raw offsets of docs/hardware-interface.md, reaches operands through their IOVAs,
//! writes a result and a CQE. The fake "engine" does no RSA: it writes the input reversed,
//! which is enough to show each result came from its own request's buffers. RSA itself is
//! tested end to end elsewhere.

use std::sync::Arc;

use hisi_qm::testing::{fake_device, FakeHw};
use wd_core::backend::QueueRequest;
use wd_core::wait::WaitPolicy;
use wd_core::{DriverQueue, Error, Queue, QueueInfo, UserDriver};

use crate::key::{IN_OFF, KEY_OFF, OUT_OFF};
use crate::{open_queue, rsa, Hpre, RsaJob, RsaKey};

fn info(depth: u16) -> QueueInfo {
    QueueInfo {
        qid: 2,
        sqe_size: 64,
        sq_depth: depth,
        cq_depth: depth,
    }
}

fn hpre(api: &str, depth: u16) -> (DriverQueue<Hpre>, Arc<FakeHw>) {
    let (dev, hw) = fake_device("hisi_hpre", api, info(depth), &["rsa"]);
    (open_queue(&dev, WaitPolicy::default()).unwrap(), hw)
}

/// Raw SQE fields, read with hardware-interface §5.1 positions.
#[derive(Debug, Clone, Copy)]
struct Raw {
    alg: u32,
    etype: u32,
    etype1: u32,
    done: u32,
    task_len1: u32,
    key: u64,
    input: u64,
    output: u64,
    tag: u16,
}

fn raw(w: &[u32]) -> Raw {
    Raw {
        alg: w[0] & 0x1f,
        etype: (w[0] >> 5) & 0x7ff,
        etype1: (w[0] >> 16) & 0x3fff,
        done: w[0] >> 30,
        task_len1: w[1] & 0xff,
        key: w[2] as u64 | (w[3] as u64) << 32,
        input: w[4] as u64 | (w[5] as u64) << 32,
        output: w[6] as u64 | (w[7] as u64) << 32,
        tag: w[8] as u16,
    }
}

/// What the fake engine does with a request.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    Ok,
    Untouched,
    Error { etype: u32, etype1: u32 },
}

/// Plays the engine on `slot`: result = input reversed, `done` = 3 (or the verdict), CQE.
fn process(hw: &FakeHw, slot: u16, verdict: Verdict) {
    let mut w = hw.sqe(slot);
    let r = raw(&w);
    let kb = (r.task_len1 as usize + 1) * 8;
    let mut key = vec![0u8; kb];
    let mut input = vec![0u8; kb];
    assert!(hw.read_dma(r.key, &mut key), "key at unshared {:#x}", r.key);
    assert!(
        hw.read_dma(r.input, &mut input),
        "input at unshared {:#x}",
        r.input
    );
    match verdict {
        Verdict::Ok => {
            input.reverse();
            assert!(hw.write_dma(r.output, &input));
            w[0] = (w[0] & !(3 << 30)) | 3 << 30;
        }
        Verdict::Untouched => {}
        Verdict::Error { etype, etype1 } => {
            w[0] = (w[0] & 0x1f) | etype << 5 | etype1 << 16 | 3 << 30;
        }
    }
    hw.write_sqe(slot, &w);
    hw.post_cqe(slot);
}

/// Makes the fake answer every SQ doorbell at once (both doorbell formats).
fn auto_respond(hw: &FakeHw, depth: u16) {
    let v1 = hw.api() == "hisi_qm_v1";
    let mut tail = 0u16;
    hw.on_doorbell(move |hw, _off, w| {
        let cmd = if v1 {
            (w >> 16) & 0xffff
        } else {
            (w >> 12) & 0xf
        };
        if cmd != 0 {
            return;
        }
        let new_tail = ((w >> 32) & 0xffff) as u16;
        while tail != new_tail {
            process(hw, tail, Verdict::Ok);
            tail = (tail + 1) % depth;
        }
    });
}

fn modulus(kb: usize) -> Vec<u8> {
    (0..kb).map(|i| (i as u8).wrapping_mul(7) | 0x81).collect()
}

fn message(kb: usize, seed: u8) -> Vec<u8> {
    (0..kb - 1).map(|i| seed ^ i as u8).collect()
}

fn block(job: &RsaJob, off: usize, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    job.block().read(off, &mut b);
    b
}

fn right_aligned(width: usize, v: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; width - v.len()];
    out.extend_from_slice(v);
    out
}

#[test]
fn public_and_private_operands_are_big_endian_right_aligned() {
    let (q, _hw) = hpre("hisi_qm_v2", 16);
    for kb in [128, 256, 384, 512] {
        let n = modulus(kb);
        let d: Vec<u8> = (0..kb - 3).map(|i| i as u8 | 1).collect();
        let input = [0u8, 0, 0x12, 0x34]; // leading zeros do not count
        let public = RsaJob::new(
            q.driver(),
            &RsaKey::Public {
                n: &n,
                e: &[1, 0, 1],
            },
            &input,
        )
        .unwrap();
        assert_eq!(public.key_bytes(), kb);
        assert_eq!(block(&public, KEY_OFF, kb), right_aligned(kb, &[1, 0, 1]));
        assert_eq!(block(&public, KEY_OFF + kb, kb), n);
        assert_eq!(block(&public, IN_OFF, kb), right_aligned(kb, &[0x12, 0x34]));
        assert_eq!(block(&public, OUT_OFF, kb), vec![0; kb]);
        assert!(format!("{:?}", public.block()).contains("sensitive: 0..0"));

        let private = RsaJob::new(q.driver(), &RsaKey::Private { n: &n, d: &d }, &n).unwrap();
        assert_eq!(block(&private, KEY_OFF, kb), right_aligned(kb, &d));
        assert_eq!(block(&private, KEY_OFF + kb, kb), n);
        assert_eq!(block(&private, IN_OFF, kb), n);
        let wiped = format!("sensitive: 0..{}", 2 * kb);
        assert!(format!("{:?}", private.block()).contains(&wiped));
    }
}

#[test]
fn crt_key_block_is_dq_dp_q_p_qinv() {
    let (q, _hw) = hpre("hisi_qm_v3", 16);
    for kb in [128, 256, 384, 512] {
        let h = kb / 2;
        let part = |tag: u8, len: usize| -> Vec<u8> { (0..len).map(|_| tag).collect() };
        let (p, qq, dp, dq, qinv) = (
            part(0xa1, h),
            part(0xb2, h),
            part(0xc3, h - 1),
            part(0xd4, h - 2),
            part(0xe5, 3),
        );
        let key = RsaKey::PrivateCrt {
            n_bytes: kb,
            p: &p,
            q: &qq,
            dp: &dp,
            dq: &dq,
            qinv: &qinv,
        };
        let job = RsaJob::new(q.driver(), &key, &[5]).unwrap();
        assert_eq!(block(&job, KEY_OFF, h), right_aligned(h, &dq));
        assert_eq!(block(&job, KEY_OFF + h, h), right_aligned(h, &dp));
        assert_eq!(block(&job, KEY_OFF + 2 * h, h), qq);
        assert_eq!(block(&job, KEY_OFF + 3 * h, h), p);
        assert_eq!(block(&job, KEY_OFF + 4 * h, h), right_aligned(h, &qinv));
        assert_eq!(block(&job, IN_OFF, kb), right_aligned(kb, &[5]));
        let wiped = format!("sensitive: 0..{}", 5 * h);
        assert!(format!("{:?}", job.block()).contains(&wiped));
    }
}

#[test]
fn sizes_and_widths_are_checked_before_anything_is_sent() {
    let (q, _hw) = hpre("hisi_qm_v2", 16);
    let n = modulus(256);
    let k = RsaKey::Public { n: &n, e: &[3] };
    let wide: Vec<u8> = vec![1; 257];
    assert!(matches!(
        RsaJob::new(q.driver(), &k, &wide),
        Err(Error::InvalidArgument(_))
    ));
    let mut padded = vec![0u8; 1];
    padded.extend(&n);
    assert!(RsaJob::new(q.driver(), &k, &padded).is_ok());
    for bits in [512, 1536, 8192] {
        let n = modulus(bits / 8);
        let e = RsaJob::new(q.driver(), &RsaKey::Public { n: &n, e: &[3] }, &[1]).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{bits}: {e}");
        assert!(e.to_string().contains(&format!("RSA-{bits}")), "{e}");
    }
}

#[test]
fn private_blocks_are_wiped_and_public_operands_cleared_on_drop() {
    let (q, _hw) = hpre("hisi_qm_v2", 16);
    let n = modulus(128);
    let job = RsaJob::new(q.driver(), &RsaKey::Private { n: &n, d: &n }, &n).unwrap();
    let iova = job.block().iova();
    drop(job);
    // The pool hands the most recently returned block out first.
    let again = q.driver().pool().alloc().unwrap();
    assert_eq!(again.iova(), iova);
    let mut all = vec![0xffu8; again.len()];
    again.read(0, &mut all);
    assert!(all.iter().all(|&b| b == 0), "private key block not wiped");
    drop(again);

    let job = RsaJob::new(q.driver(), &RsaKey::Public { n: &n, e: &[3] }, &n).unwrap();
    drop(job);
    let again = q.driver().pool().alloc().unwrap();
    let mut b = vec![0u8; 128];
    again.read(IN_OFF, &mut b);
    assert_eq!(b, vec![0; 128], "public input left behind");
}

#[test]
fn sqe_as_the_device_reads_it() {
    for (kb, len1) in [(128, 15), (256, 31), (384, 47), (512, 63)] {
        let (mut q, hw) = hpre("hisi_qm_v2", 16);
        let n = modulus(kb);
        let keys = [
            (RsaKey::Public { n: &n, e: &[3] }, 0),
            (RsaKey::Private { n: &n, d: &n[1..] }, 0),
        ];
        for (i, (key, alg)) in keys.iter().enumerate() {
            let job = RsaJob::new(q.driver(), key, &[9]).unwrap();
            let base = job.block().iova().0;
            q.send(job).map_err(|e| e.error).unwrap();
            let r = raw(&hw.sqe(i as u16));
            assert_eq!((r.alg, r.done, r.etype, r.etype1), (*alg, 1, 0, 0));
            assert_eq!(r.task_len1, len1);
            assert_eq!(
                (r.key, r.input, r.output),
                (base, base + IN_OFF as u64, base + OUT_OFF as u64)
            );
            assert!(hw.dma(r.key, 2 * kb).is_some());
            assert!(hw.dma(r.output, kb).is_some());
            assert!((r.tag as usize) < 16);
            // Everything past the tag is zero.
            assert_eq!(&hw.sqe(i as u16)[9..], &[0u32; 7]);
        }
        let h = kb / 2;
        let half = vec![0x55u8; h];
        let crt = RsaKey::PrivateCrt {
            n_bytes: kb,
            p: &half,
            q: &half,
            dp: &half,
            dq: &half,
            qinv: &half,
        };
        q.send(RsaJob::new(q.driver(), &crt, &[9]).unwrap())
            .map_err(|e| e.error)
            .unwrap();
        let r = raw(&hw.sqe(2));
        assert_eq!((r.alg, r.task_len1), (1, len1));
        assert!(hw.dma(r.key, 5 * h).is_some());
    }
}

#[test]
fn synchronous_rsa_on_every_doorbell_format() {
    for api in ["hisi_qm_v1", "hisi_qm_v2", "hisi_qm_v3"] {
        let (mut q, hw) = hpre(api, 8);
        auto_respond(&hw, 8);
        let n = modulus(256);
        // More operations than slots: the ring wraps.
        for i in 0..20u8 {
            let m = message(256, i);
            let out = rsa(&mut q, &RsaKey::Public { n: &n, e: &[3] }, &m).unwrap();
            let mut expect = right_aligned(256, &m);
            expect.reverse();
            assert_eq!(out, expect, "{api} op {i}");
        }
        assert_eq!(q.in_flight(), 0);
    }
}

#[test]
fn many_in_flight_complete_out_of_order() {
    let depth = 8u16;
    let (mut q, hw) = hpre("hisi_qm_v2", depth);
    let n = modulus(128);
    let key = RsaKey::Private { n: &n, d: &n[2..] };
    for i in 0..depth as u64 - 1 {
        let mut job = RsaJob::new(q.driver(), &key, &message(128, i as u8)).unwrap();
        job.set_user_data(i);
        q.send(job).map_err(|e| e.error).unwrap();
    }
    assert_eq!(q.in_flight(), 7);
    // The ring keeps one slot free: the job comes back untouched.
    let mut extra = RsaJob::new(q.driver(), &key, &[1]).unwrap();
    extra.set_user_data(99);
    let back = q.send(extra).unwrap_err();
    assert!(matches!(back.error, Error::RingFull));
    assert_eq!(back.msg.user_data(), 99);
    assert!(!back.msg.is_complete());
    drop(back);

    for slot in (0..depth - 1).rev() {
        process(&hw, slot, Verdict::Ok);
    }
    let mut seen = Vec::new();
    while let Some(job) = q.recv().unwrap() {
        let i = job.user_data();
        let mut expect = right_aligned(128, &message(128, i as u8));
        expect.reverse();
        assert_eq!(job.result().unwrap(), expect, "job {i}");
        seen.push(i);
    }
    assert_eq!(seen, vec![6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn a_tag_that_does_not_match_its_slot_is_a_protocol_error() {
    let (mut q, hw) = hpre("hisi_qm_v2", 8);
    let n = modulus(128);
    let key = RsaKey::Public { n: &n, e: &[3] };
    for _ in 0..3 {
        q.send(RsaJob::new(q.driver(), &key, &[7]).unwrap())
            .map_err(|e| e.error)
            .unwrap();
    }
    // Slot 0 comes back carrying slot 1's tag.
    let mut w = hw.sqe(0);
    let other = raw(&hw.sqe(1)).tag;
    w[8] = (w[8] & !0xffff) | other as u32;
    w[0] |= 3 << 30;
    hw.write_sqe(0, &w);
    hw.post_cqe(0);
    match q.recv() {
        Err(Error::Protocol(m)) => assert!(m.contains("sent in slot 1"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A tag that was never handed out.
    let mut w = hw.sqe(2);
    w[8] = (w[8] & !0xffff) | 5;
    hw.write_sqe(2, &w);
    hw.post_cqe(2);
    match q.recv() {
        Err(Error::Protocol(m)) => assert!(m.contains("not in flight"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The real job of slot 1 still completes with its own result.
    process(&hw, 1, Verdict::Ok);
    let job = q.recv().unwrap().unwrap();
    let mut expect = right_aligned(128, &[7]);
    expect.reverse();
    assert_eq!(job.result().unwrap(), expect);
    assert_eq!(
        q.in_flight(),
        2,
        "the two misreported jobs were never completed"
    );
}

#[test]
fn an_sqe_with_foreign_addresses_is_a_protocol_error() {
    let (mut q, hw) = hpre("hisi_qm_v2", 8);
    let n = modulus(128);
    q.send(RsaJob::new(q.driver(), &RsaKey::Public { n: &n, e: &[3] }, &[7]).unwrap())
        .map_err(|e| e.error)
        .unwrap();
    let mut w = hw.sqe(0);
    w[6] = w[6].wrapping_add(0x1000); // out address moved
    w[0] |= 3 << 30;
    hw.write_sqe(0, &w);
    hw.post_cqe(0);
    assert!(matches!(q.recv(), Err(Error::Protocol(_))));
}

#[test]
fn device_errors_are_recorded_in_the_job() {
    let (mut q, hw) = hpre("hisi_qm_v2", 8);
    let n = modulus(128);
    let key = RsaKey::Public { n: &n, e: &[3] };
    let cases = [
        (Verdict::Untouched, "did not process"),
        (
            Verdict::Error {
                etype: 0x2a,
                etype1: 0,
            },
            "etype 0x2a",
        ),
        (
            Verdict::Error {
                etype: 0,
                etype1: 0x20,
            },
            "etype1 0x20",
        ),
    ];
    for (i, (verdict, want)) in cases.iter().enumerate() {
        q.send(RsaJob::new(q.driver(), &key, &[7]).unwrap())
            .map_err(|e| e.error)
            .unwrap();
        process(&hw, i as u16, *verdict);
        let job = q.recv().unwrap().unwrap();
        assert!(job.is_complete());
        match job.result() {
            Err(Error::Device(m)) => assert!(m.contains(want), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    // A completion with done = 2 is an error too, whatever the error fields say.
    q.send(RsaJob::new(q.driver(), &key, &[7]).unwrap())
        .map_err(|e| e.error)
        .unwrap();
    let mut w = hw.sqe(3);
    w[0] = (w[0] & !(3 << 30)) | 2 << 30;
    hw.write_sqe(3, &w);
    hw.post_cqe(3);
    let job = q.recv().unwrap().unwrap();
    assert!(matches!(job.result(), Err(Error::Device(m)) if m.contains("done 2")));
}

#[test]
fn pending_job_has_no_result() {
    let (q, _hw) = hpre("hisi_qm_v2", 8);
    let n = modulus(128);
    let job = RsaJob::new(q.driver(), &RsaKey::Public { n: &n, e: &[3] }, &[7]).unwrap();
    assert!(matches!(job.result(), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_job_built_for_another_queue_is_refused() {
    let (q1, _hw1) = hpre("hisi_qm_v2", 8);
    let (mut q2, hw2) = hpre("hisi_qm_v2", 8);
    let n = modulus(128);
    let job = RsaJob::new(q1.driver(), &RsaKey::Public { n: &n, e: &[3] }, &[7]).unwrap();
    let back = q2.send(job).unwrap_err();
    assert!(matches!(back.error, Error::InvalidArgument(_)));
    assert!(hw2.doorbells().is_empty());
}

#[test]
fn open_requires_rsa_class_and_64_byte_sqes() {
    let (dev, _hw) = fake_device("hisi_hpre", "hisi_qm_v2", info(8), &["rsa"]);
    let ecc = Queue::request(&dev, QueueRequest { qc_type: 1 }).unwrap();
    assert!(matches!(
        DriverQueue::<Hpre>::open(ecc, WaitPolicy::default()),
        Err(Error::Unsupported(_))
    ));
    let mut big = info(8);
    big.sqe_size = 128;
    let (dev, _hw) = fake_device("hisi_hpre", "hisi_qm_v2", big, &["rsa"]);
    assert!(matches!(
        open_queue(&dev, WaitPolicy::default()),
        Err(Error::Unsupported(m)) if m.contains("128-byte")
    ));
    // A no-SVA api is the same ring: the driver opens; where its DMA memory comes from
    // (the static-share region) is the queue's business.
    let (dev, _hw) = fake_device("hisi_hpre", "hisi_qm_v2_noiommu", info(8), &["rsa"]);
    open_queue(&dev, WaitPolicy::default()).unwrap();
    let (dev, _hw) = fake_device("hisi_hpre", "hisi_qm_v2_sideways", info(8), &["rsa"]);
    assert!(matches!(
        open_queue(&dev, WaitPolicy::default()),
        Err(Error::Unsupported(m)) if m.contains("suffix")
    ));
}

#[test]
fn service_classes_are_distinct_per_kind_and_size() {
    let (q, _hw) = hpre("hisi_qm_v2", 8);
    let mut classes = Vec::new();
    for kb in [128, 256, 384, 512] {
        let n = modulus(kb);
        let h = vec![1u8; kb / 2];
        let keys = [
            RsaKey::Public { n: &n, e: &[3] },
            RsaKey::Private { n: &n, d: &n[1..] },
            RsaKey::PrivateCrt {
                n_bytes: kb,
                p: &h,
                q: &h,
                dp: &h,
                dq: &h,
                qinv: &h,
            },
        ];
        for k in &keys {
            classes.push(Hpre::class(&RsaJob::new(q.driver(), k, &[1]).unwrap()));
        }
    }
    let mut uniq = classes.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 12, "{classes:?}");
    assert!(classes.iter().all(|&c| c < wd_core::wait::CLASSES));
}

#[test]
fn arm_rings_the_cq_doorbell_with_priority_one() {
    let (mut q, hw) = hpre("hisi_qm_v3", 8);
    q.driver_mut().arm(&dummy_queue()).unwrap();
    let (off, w) = hw.doorbells()[0];
    assert_eq!((off, w), (0x1000, (1 << 48) | (1 << 12) | 2));
}

/// `arm` ignores its queue argument (the ring holds the regions); any queue will do.
fn dummy_queue() -> Queue {
    let (dev, _hw) = fake_device("hisi_hpre", "hisi_qm_v2", info(8), &["rsa"]);
    Queue::request(&dev, QueueRequest { qc_type: 0 }).unwrap()
}

#[test]
fn close_with_requests_in_flight_returns_their_blocks() {
    let (mut q, hw) = hpre("hisi_qm_v2", 8);
    let n = modulus(128);
    for _ in 0..3 {
        q.send(RsaJob::new(q.driver(), &RsaKey::Private { n: &n, d: &n }, &[7]).unwrap())
            .map_err(|e| e.error)
            .unwrap();
    }
    assert!(hw.mapped_bytes() > 0);
    drop(q);
    assert!(hw.released());
    // The jobs and the pool went with the driver; nothing is left shared with the device.
    assert_eq!(hw.mapped_bytes(), 0);
}
