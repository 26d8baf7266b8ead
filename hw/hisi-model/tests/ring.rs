//! The ring protocol end to end: wrap-around with phase flips, several engines, the v1
//! doorbell, and what the devices report.

mod common;

use std::collections::HashMap;

use common::*;
use hisi_model::ApiVersion;
use openssl::rsa::{Padding, Rsa};
use wd_core::region::page_size;
use wd_core::Backend;

#[test]
fn three_thousand_requests_wrap_a_1024_deep_ring_with_phase_flips() {
    let rsa = Rsa::generate(1024).unwrap();
    let kb = key_blocks(&rsa);
    let k = kb.k;
    let m = model();
    let mut r = m.open(0);
    assert_eq!(r.depth, 1024);
    let depth = usize::from(r.depth);
    let key = r.map(kb.public.len());
    key.write(0, &kb.public);
    // One input and one output buffer per SQ slot.
    let inb = r.map(depth * k);
    let out = r.map(depth * k);
    let mut want: HashMap<u8, Vec<u8>> = HashMap::new();
    for seed in 0..=255u8 {
        let msg = message(k, seed);
        let mut w = vec![0u8; k];
        rsa.public_encrypt(&msg, &mut w, Padding::NONE).unwrap();
        want.insert(seed, w);
    }
    let total = 3000usize;
    let mut sent = 0usize;
    let mut done = 0usize;
    let mut in_flight: HashMap<u16, u8> = HashMap::new();
    let mut flips = 0;
    let mut expect_next: u16 = 0;
    while done < total {
        // Keep up to 300 in flight, ringing once per batch.
        let mut batch = 0;
        while sent < total && in_flight.len() < 300 && batch < 50 {
            let slot = r.sq_tail;
            let seed = (sent % 251) as u8;
            let off = usize::from(slot) * k;
            inb.write(off, &message(k, seed));
            r.put(&hpre_sqe(
                0,
                k,
                key.iova,
                inb.iova + off as u64,
                out.iova + off as u64,
                sent as u64,
            ));
            in_flight.insert(slot, seed);
            sent += 1;
            batch += 1;
        }
        if batch > 0 {
            r.kick();
        }
        let phase_before = r.phase;
        let c = r.wait_cqe(WAIT).expect("completion");
        if r.phase != phase_before {
            flips += 1;
        }
        assert_eq!(c.sq_num, r.qid);
        assert_eq!(c.sq_head, expect_next, "one engine completes in order");
        expect_next = (expect_next + 1) % r.depth;
        let seed = in_flight.remove(&c.sq_head).expect("a slot in flight");
        let (_, etype, _, d) = split_dw0(r.dw0(c.sq_head));
        assert_eq!((etype, d), (0, 3));
        let off = usize::from(c.sq_head) * k;
        assert_eq!(
            &out.read(off, k),
            &want[&seed],
            "request in slot {}",
            c.sq_head
        );
        done += 1;
    }
    assert_eq!(flips, 2, "3000 completions wrap a 1024-entry CQ twice");
    // In memory: CQEs 0..952 carry phase 1 (third pass), 952..1024 phase 0 (second pass).
    let cq = 64 * depth;
    let tail = total % depth;
    for i in 0..depth {
        let p = r.q.dus().read_u16(cq + 16 * i + 14) & 1;
        assert_eq!(p, u16::from(i < tail), "CQE {i}");
    }
    let s = m.backend.stats();
    assert_eq!(s.cqes_written, total as u64);
    assert_eq!(s.completed_ok, total as u64);
}

#[test]
fn several_engines_complete_every_request_once() {
    let small = Rsa::generate(1024).unwrap();
    let big = Rsa::generate(4096).unwrap();
    let (ks, kbig) = (key_blocks(&small), key_blocks(&big));
    let m = model_with(|c| c.engines = 3);
    let mut r = m.open(0);
    let key_s = r.map(ks.public.len());
    key_s.write(0, &ks.public);
    let key_b = r.map(kbig.crt.len());
    key_b.write(0, &kbig.crt);
    let inb = r.map(512);
    inb.write(0, &message(512, 0));
    let outs = r.map(1024 * 512);
    let mut in_flight: HashMap<u16, u64> = HashMap::new();
    let mut out_of_order = 0;
    let mut last: Option<u16> = None;
    let total = 400u64;
    let mut sent = 0u64;
    let mut done = 0u64;
    while done < total {
        while sent < total && in_flight.len() < 64 {
            let slot = r.sq_tail;
            let o = outs.iova + u64::from(slot) * 512;
            // Every 8th request is a slow 4096-bit CRT op.
            let sqe = if sent.is_multiple_of(8) {
                hpre_sqe(1, 512, key_b.iova, inb.iova, o, 1000 + sent)
            } else {
                hpre_sqe(0, 128, key_s.iova, inb.iova + 384, o, 1000 + sent)
            };
            r.put(&sqe);
            in_flight.insert(slot, 1000 + sent);
            sent += 1;
        }
        r.kick();
        let c = r.wait_cqe(WAIT).expect("completion");
        let tag = in_flight
            .remove(&c.sq_head)
            .expect("each slot completes once");
        assert_eq!(r.tag(c.sq_head), tag);
        let (_, etype, _, d) = split_dw0(r.dw0(c.sq_head));
        assert_eq!((etype, d), (0, 3));
        if let Some(l) = last {
            if c.sq_head != (l + 1) % r.depth {
                out_of_order += 1;
            }
        }
        last = Some(c.sq_head);
        done += 1;
    }
    assert!(r.wait_cqe(std::time::Duration::from_millis(50)).is_none());
    eprintln!("{out_of_order} completions out of submission order");
}

#[test]
fn v1_device_uses_the_v1_doorbell_at_0x340() {
    let rsa = Rsa::generate(1024).unwrap();
    let kb = key_blocks(&rsa);
    let m = model_with(|c| c.api = ApiVersion::V1);
    assert_eq!(m.dev.api, "hisi_qm_v1");
    assert_eq!(m.dev.mmio_size, page_size());
    let mut r = m.open(0);
    assert!(r.v1);
    assert_eq!(r.q.mmio().len(), page_size());
    let key = r.map(2 * kb.k);
    key.write(0, &kb.public);
    let inb = r.map(kb.k);
    inb.write(0, &message(kb.k, 2));
    let out = r.map(kb.k);
    let slot = r.put(&hpre_sqe(0, kb.k, key.iova, inb.iova, out.iova, 1));
    // A v2-format word at the v2 offset does nothing here.
    r.q.mmio()
        .write_u64(0x1000 % page_size(), doorbell_v2(r.qid, 0, r.sq_tail, 0));
    assert!(r.wait_cqe(std::time::Duration::from_millis(100)).is_none());
    r.kick();
    assert_eq!(r.wait_cqe(WAIT).unwrap().sq_head, slot);
    let mut want = vec![0u8; kb.k];
    rsa.public_encrypt(&message(kb.k, 2), &mut want, Padding::NONE)
        .unwrap();
    assert_eq!(out.read(0, kb.k), want);
}

#[test]
fn devices_and_queues_report_hw_spec_geometry() {
    for api in api_versions() {
        let m = model_with(|c| {
            c.api = api;
            c.hpre_devices = 2;
        });
        assert_eq!(m.backend.name(), "model");
        assert!(m.backend.is_model());
        let devs = m.backend.devices().unwrap();
        let page = page_size();
        let names: Vec<_> = devs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["hisi_hpre-9000", "hisi_hpre-9001"]);
        for d in &devs {
            assert_eq!(d.driver(), "hisi_hpre");
            assert_eq!(d.api, api.as_str());
            assert_eq!(d.algorithms, vec!["rsa".to_string()]);
            assert_eq!((d.flags, d.numa_node, d.isolated), (0, 0, false));
            assert_eq!(d.mmio_size, (1 + 0x1000 / page) * page);
            let rings: usize = 64 * 1024 + 16 * 1024;
            assert_eq!(d.dus_size, rings.div_ceil(page) * page + page);
            assert_eq!(m.backend.available_instances(d).unwrap(), 16);
        }
        let q = m
            .backend
            .open_queue(&devs[1], wd_core::QueueRequest { qc_type: 0 })
            .unwrap();
        let info = q.info();
        assert_eq!(
            (info.sqe_size, info.sq_depth, info.cq_depth),
            (64, 1024, 1024)
        );
        assert_eq!(q.dus().len(), devs[1].dus_size);
        assert_eq!(q.mmio().len(), devs[1].mmio_size);
        assert_eq!(m.backend.available_instances(&devs[0]).unwrap(), 16);
        assert_eq!(m.backend.available_instances(&devs[1]).unwrap(), 15);
    }
}

#[test]
fn no_lost_wakeups_with_many_queues_and_no_engine_spin() {
    // spin 0: an engine goes back to sleep after every request, so every doorbell races
    // with an engine falling asleep.
    let rsa = Rsa::generate(1024).unwrap();
    let kb = std::sync::Arc::new(key_blocks(&rsa));
    let m = std::sync::Arc::new(model_with(|c| {
        c.engines = 2;
        c.spin = std::time::Duration::ZERO;
    }));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (m, kb) = (m.clone(), kb.clone());
            std::thread::spawn(move || {
                let mut r = m.open(0);
                let key = r.map(kb.public.len());
                key.write(0, &kb.public);
                let inb = r.map(kb.k);
                inb.write(0, &message(kb.k, 4));
                let out = r.map(kb.k);
                for i in 0..500u64 {
                    let slot = r.submit(&hpre_sqe(0, kb.k, key.iova, inb.iova, out.iova, i));
                    let c = r.wait_cqe(WAIT).expect("no completion: lost wake-up?");
                    assert_eq!(c.sq_head, slot);
                    assert_eq!(c.sq_num, r.qid);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(m.backend.stats().completed_ok, 2000);
}
