//! Test-side driver for the model: its own encoders of SQEs and doorbells and its own CQE
//! reader, written from the numbers of docs/hardware-interface.md (not from the model's
//! `layout` module), so the tests drive the model only through its regions and doorbells.

#![allow(dead_code)]

use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hisi_model::{ApiVersion, ModelBackend, ModelConfig};
use openssl::bn::BigNumRef;
use openssl::pkey::Private;
use openssl::rsa::Rsa;
use wd_core::{Backend, DeviceInfo, QueueBackend, QueueRequest, Region};

pub const SQE: usize = 64;

/// A backend over a private instance directory.
pub struct Model {
    pub backend: Arc<ModelBackend>,
    pub dev: DeviceInfo,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &tempfile::TempDir) -> ModelConfig {
    ModelConfig {
        instance_dir: dir.path().to_path_buf(),
        ..ModelConfig::default()
    }
}

pub fn model_with(f: impl FnOnce(&mut ModelConfig)) -> Model {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    f(&mut cfg);
    let backend = ModelBackend::new(cfg).unwrap();
    let dev = backend.devices().unwrap().remove(0);
    Model { backend, dev, dir }
}

pub fn model() -> Model {
    model_with(|_| {})
}

impl Model {
    pub fn open(&self, qc_type: u16) -> TestRing {
        let q = self
            .backend
            .open_queue(&self.dev, QueueRequest { qc_type })
            .unwrap();
        TestRing::new(q, &self.dev.api)
    }
}

/// hardware-interface §3.4 doorbell words.
pub fn doorbell_v1(qn: u16, cmd: u16, index: u16, priority: u16) -> u64 {
    u64::from(qn) | (u64::from(cmd) << 16) | (u64::from(index) << 32) | (u64::from(priority) << 48)
}

pub fn doorbell_v2(qn: u16, cmd: u16, index: u16, priority: u16) -> u64 {
    u64::from(qn & 0xfff)
        | (u64::from(cmd & 0xf) << 12)
        | (u64::from(index) << 32)
        | (u64::from(priority) << 48)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cqe {
    pub sq_head: u16,
    pub sq_num: u16,
}

/// The user side of one queue: sq_tail, cq_head, phase.
pub struct TestRing {
    pub q: Box<dyn QueueBackend>,
    pub v1: bool,
    pub qid: u16,
    pub depth: u16,
    pub sq_tail: u16,
    pub cq_head: u16,
    pub phase: u16,
    pub cq_base: usize,
    pub ring_cq_doorbell: bool,
}

impl TestRing {
    pub fn new(q: Box<dyn QueueBackend>, api: &str) -> TestRing {
        let info = q.info();
        assert_eq!(info.sqe_size, 64);
        TestRing {
            v1: api == "hisi_qm_v1",
            qid: info.qid,
            depth: info.sq_depth,
            sq_tail: 0,
            cq_head: 0,
            phase: 1,
            cq_base: 64 * usize::from(info.sq_depth),
            ring_cq_doorbell: true,
            q,
        }
    }

    pub fn doorbell_word(&self, qn: u16, cmd: u16, index: u16, priority: u16) -> u64 {
        if self.v1 {
            doorbell_v1(qn, cmd, index, priority)
        } else {
            doorbell_v2(qn, cmd, index, priority)
        }
    }

    pub fn doorbell_offset(&self) -> usize {
        if self.v1 {
            0x340
        } else {
            0x1000
        }
    }

    pub fn ring_raw(&self, word: u64) {
        self.q.mmio().write_u64(self.doorbell_offset(), word);
    }

    pub fn ring(&self, cmd: u16, index: u16, priority: u16) {
        self.ring_raw(self.doorbell_word(self.qid, cmd, index, priority));
    }

    /// Writes an SQE into the next slot without ringing; returns the slot.
    pub fn put(&mut self, sqe: &[u8; SQE]) -> u16 {
        let slot = self.sq_tail;
        self.q.dus().write_bytes(usize::from(slot) * SQE, sqe);
        self.sq_tail = (self.sq_tail + 1) % self.depth;
        slot
    }

    /// Writes an SQE and rings the SQ doorbell with the new tail.
    pub fn submit(&mut self, sqe: &[u8; SQE]) -> u16 {
        let slot = self.put(sqe);
        self.kick();
        slot
    }

    pub fn kick(&self) {
        fence(Ordering::SeqCst);
        self.ring(0, self.sq_tail, 0);
    }

    /// Takes one CQE if its phase matches; rings the CQ doorbell after consuming.
    pub fn poll(&mut self) -> Option<Cqe> {
        let off = self.cq_base + 16 * usize::from(self.cq_head);
        let w7 = self.q.dus().read_u16(off + 14);
        if w7 & 1 != self.phase {
            return None;
        }
        fence(Ordering::Acquire);
        let cqe = Cqe {
            sq_head: self.q.dus().read_u16(off + 8),
            sq_num: self.q.dus().read_u16(off + 10),
        };
        if self.cq_head == self.depth - 1 {
            self.cq_head = 0;
            self.phase ^= 1;
        } else {
            self.cq_head += 1;
        }
        if self.ring_cq_doorbell {
            self.ring(1, self.cq_head, 0);
        }
        Some(cqe)
    }

    pub fn wait_cqe(&mut self, timeout: Duration) -> Option<Cqe> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(c) = self.poll() {
                return Some(c);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::yield_now();
        }
    }

    pub fn dw0(&self, slot: u16) -> u32 {
        self.q.dus().read_u32(usize::from(slot) * SQE)
    }

    pub fn tag(&self, slot: u16) -> u64 {
        self.q.dus().read_u64(usize::from(slot) * SQE + 32)
    }

    pub fn tx_stop(&self) -> u32 {
        let d = self.q.dus();
        d.read_u32(d.len() - 4)
    }

    pub fn rx_stop(&self) -> u32 {
        let d = self.q.dus();
        d.read_u32(d.len() - 8)
    }

    pub fn map(&self, len: usize) -> Dma {
        let region = Region::anonymous(len).unwrap();
        let iova = self.q.map_dma(&region).unwrap().0;
        Dma { region, iova }
    }
}

/// dw0 fields as hardware-interface §5.1 places them: (alg, etype, etype1, done).
pub fn split_dw0(dw0: u32) -> (u32, u32, u32, u32) {
    (
        dw0 & 0x1f,
        (dw0 >> 5) & 0x7ff,
        (dw0 >> 16) & 0x3fff,
        dw0 >> 30,
    )
}

/// An HPRE SQE per hardware-interface §5.1, with `done` = 1 and etype 0.
pub fn hpre_sqe(alg: u8, key_sz: usize, key: u64, input: u64, out: u64, tag: u64) -> [u8; SQE] {
    let mut b = [0u8; SQE];
    let dw0: u32 = u32::from(alg & 0x1f) | (1 << 30);
    b[0..4].copy_from_slice(&dw0.to_le_bytes());
    let dw1: u32 = (key_sz / 8 - 1) as u32;
    b[4..8].copy_from_slice(&dw1.to_le_bytes());
    b[8..16].copy_from_slice(&key.to_le_bytes());
    b[16..24].copy_from_slice(&input.to_le_bytes());
    b[24..32].copy_from_slice(&out.to_le_bytes());
    b[32..40].copy_from_slice(&tag.to_le_bytes());
    b
}

/// Memory shared with a queue.
pub struct Dma {
    pub region: Region,
    pub iova: u64,
}

impl Dma {
    pub fn write(&self, off: usize, data: &[u8]) {
        self.region.write_bytes(off, data);
    }
    pub fn read(&self, off: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.region.read_bytes(off, &mut v);
        v
    }
}

pub fn pad(b: &BigNumRef, w: usize) -> Vec<u8> {
    b.to_vec_padded(w as i32).unwrap()
}

/// Key blocks of hardware-interface §5.3 for `rsa`.
pub struct KeyBlocks {
    pub k: usize,
    pub public: Vec<u8>,
    pub private: Vec<u8>,
    pub crt: Vec<u8>,
}

pub fn key_blocks(rsa: &Rsa<Private>) -> KeyBlocks {
    let k = rsa.size() as usize;
    let h = k / 2;
    let mut public = pad(rsa.e(), k);
    public.extend(pad(rsa.n(), k));
    let mut private = pad(rsa.d(), k);
    private.extend(pad(rsa.n(), k));
    let mut crt = Vec::new();
    for part in [rsa.dmq1(), rsa.dmp1(), rsa.q(), rsa.p(), rsa.iqmp()] {
        crt.extend(pad(part.unwrap(), h));
    }
    KeyBlocks {
        k,
        public,
        private,
        crt,
    }
}

/// A message below the modulus: 0x00 then bytes.
pub fn message(k: usize, seed: u8) -> Vec<u8> {
    let mut m = vec![0u8; k];
    for (i, b) in m.iter_mut().enumerate().skip(1) {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    m
}

pub const WAIT: Duration = Duration::from_secs(10);

pub fn api_versions() -> [ApiVersion; 2] {
    [ApiVersion::V2, ApiVersion::V3]
}
