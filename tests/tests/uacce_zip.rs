//! Compression through the uacce backend on the fake kernel, queues backed by the model's
//! ZIP engine: a compress queue (qc_type 0) and a decompress queue (qc_type 1) on the
//! fixture's hisi_zip device, driven through the QM ring with SQEs built here from
//! docs/hardware-interface.md §4 (the hisi-zip user driver is not in the tree yet). Shows
//! the kernel latching each queue's class: compression work on the decompress queue fails.

mod common;

use common::uacce::{host, run, zip_sqe};
use hisi_model::layout::zip::*;
use hisi_model::uacce_fake::SideConfig;
use hisi_qm::QmRing;
use wd_core::backend::QueueRequest;
use wd_core::{Queue, Region};

const ZLIB_HEADER: [u8; 2] = [0x78, 0x9c];

struct Bufs {
    src: Region,
    dst: Region,
    ctx: Region,
}

fn bufs(q: &Queue, size: usize) -> (Bufs, [u64; 3]) {
    let b = Bufs {
        src: Region::anonymous(size).unwrap(),
        dst: Region::anonymous(size).unwrap(),
        ctx: Region::anonymous(CTX_SIZE).unwrap(),
    };
    let a = [
        q.mem_share(&b.src).unwrap().0,
        q.mem_share(&b.dst).unwrap().0,
        q.mem_share(&b.ctx).unwrap().0,
    ];
    // SVA: the device address is the virtual address.
    assert_eq!(a[0], b.src.as_ptr() as u64);
    (b, a)
}

fn zlib_roundtrip(fixture: &str, dev: &str, v3: bool) {
    let h = host(fixture, SideConfig::default(), None);
    let device = h.device(dev);
    assert!(device.info().supports("zlib"));
    let cq = Queue::request(&device, QueueRequest { qc_type: 0 }).unwrap();
    let dq = Queue::request(&device, QueueRequest { qc_type: 1 }).unwrap();
    assert_eq!(cq.info().sqe_size, 128);
    let mut cring = QmRing::new(&cq).unwrap();
    let mut dring = QmRing::new(&dq).unwrap();

    let data: Vec<u8> = (0..200_000u32)
        .map(|i| b"kunpeng zip queue over uacce "[(i % 29) as usize] ^ ((i / 997) as u8 & 1))
        .collect();
    let size = 256 << 10;
    let (cb, ca) = bufs(&cq, size);
    cb.src.write_bytes(0, &data);
    let w = run(
        &mut cring,
        &zip_sqe(v3, ca, REQ_ZLIB, data.len(), size, FLUSH_FINISH),
    );
    assert_eq!(
        w[DW_STATUS] & STATUS_MASK,
        u32::from(ST_OK),
        "compress status"
    );
    assert_eq!(w[DW_CONSUMED] as usize, data.len());
    let produced = w[DW_PRODUCED] as usize;
    assert!(
        produced > 6 && produced < data.len() / 4,
        "compressed {produced}"
    );
    let mut body = vec![0u8; produced];
    cb.dst.read_bytes(0, &mut body);
    let stream: Vec<u8> = ZLIB_HEADER
        .iter()
        .copied()
        .chain(body.iter().copied())
        .collect();

    // Decompress on the qc_type 1 queue: the payload and trailer, the header skipped.
    let (db, da) = bufs(&dq, size);
    let payload = &stream[2..];
    db.src.write_bytes(0, payload);
    let w = run(
        &mut dring,
        &zip_sqe(
            v3,
            da,
            REQ_ZLIB,
            payload.len(),
            size,
            STREAM_MODE | NEW_STREAM,
        ),
    );
    assert_eq!(
        w[DW_STATUS] & STATUS_MASK,
        u32::from(ST_DECOMP_END),
        "decompress status"
    );
    let mut back = vec![0u8; w[DW_PRODUCED] as usize];
    db.dst.read_bytes(0, &mut back);
    assert_eq!(
        back, data,
        "{fixture}: zlib round trip through the fake kernel"
    );

    // Compression work on the decompress queue: the class latched at START_Q refuses it.
    db.src.write_bytes(0, &data[..1000]);
    let w = run(
        &mut dring,
        &zip_sqe(v3, da, REQ_ZLIB, 1000, size, FLUSH_FINISH),
    );
    assert_ne!(w[DW_STATUS] & STATUS_MASK, u32::from(ST_OK));
    let s = h.side.stats();
    assert_eq!((s.completed_ok, s.completed_error), (2, 1));
    assert!(h.kernel.violations().is_empty());
}

#[test]
fn zlib_on_kunpeng920_v2() {
    zlib_roundtrip("kunpeng920", "hisi_zip-2", false);
}

#[test]
fn zlib_on_kunpeng930_v3() {
    zlib_roundtrip("kunpeng930-v3", "hisi_zip-1", true);
}

#[test]
fn zlib_on_64k_pages() {
    zlib_roundtrip("pagesize-64k", "hisi_zip-0", false);
}
