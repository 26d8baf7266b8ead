//! `QmRing`: the user side of one QM queue pair (docs/hardware-interface.md §3.3, §3.6,
//! §3.7).
//!
//! The SQ sits at the start of the DUS region, the CQ right after it, and the last two
//! words of the region are the kernel's stop flags (TX at `size-4`, RX at `size-8`).
//! Submission copies SQEs into the slot at `sq_tail` and rings the SQ doorbell with the new
//! tail; one slot is always left free. Completion reads the CQE at `cq_head` while its phase
//! bit matches ours, names the SQ slot whose SQE now holds the results, and rings the CQ
//! doorbell with the new head.
//!
//! Beyond the kernel's bookkeeping the ring remembers which slots are in flight, so a
//! completion for a slot that holds no request (a duplicated or stray CQE) is reported as a
//! protocol error, and a slot whose request has not completed is never overwritten even if
//! the device completes out of order.

#![forbid(unsafe_code)]

use wd_core::barrier::{mb, rmb};
use wd_core::error::StopWord;
use wd_core::{Error, Queue, QueueInfo, Region, Result};

use crate::cqe::{self, CQE_SIZE};
use crate::doorbell::{DoorbellCmd, DoorbellFormat};
use crate::version::ApiVersion;

/// Offset of the TX-stop word from the end of the DUS region.
pub const TX_STOP_FROM_END: usize = 4;
/// Offset of the RX-stop word from the end of the DUS region.
pub const RX_STOP_FROM_END: usize = 8;

/// Doorbell priority that re-arms the completion interrupt when ringing the CQ doorbell.
const PRIORITY_ARM: u16 = 1;

/// One QM queue pair as user space drives it.
#[derive(Debug)]
pub struct QmRing {
    mmio: Region,
    dus: Region,
    version: ApiVersion,
    db: DoorbellFormat,
    qid: u16,
    sqe_size: usize,
    sq_depth: u16,
    cq_depth: u16,
    cq_base: usize,
    tx_stop: usize,
    rx_stop: usize,
    sq_tail: u16,
    used: u16,
    cq_head: u16,
    phase: bool,
    busy: Vec<bool>,
}

impl QmRing {
    /// The ring of an opened queue: its regions, api string and geometry.
    pub fn new(queue: &Queue) -> Result<QmRing> {
        QmRing::from_parts(
            queue.api(),
            queue.info(),
            queue.mmio().clone(),
            queue.dus().clone(),
        )
    }

    /// The ring over explicit parts (what [`QmRing::new`] takes from a queue). Checks that
    /// the geometry fits the regions and the queue number fits the doorbell.
    pub fn from_parts(api: &str, info: QueueInfo, mmio: Region, dus: Region) -> Result<QmRing> {
        let version = ApiVersion::parse(api)?;
        let db = version.doorbell();
        let bad = |what: String| Err(Error::Unsupported(format!("QM queue {}: {what}", info.qid)));
        let sqe_size = info.sqe_size as usize;
        if sqe_size == 0 || !sqe_size.is_multiple_of(4) {
            return bad(format!(
                "SQE size {sqe_size} is not a whole number of words"
            ));
        }
        if info.sq_depth < 2 || info.cq_depth < 2 {
            return bad(format!(
                "ring depths {}/{} below 2",
                info.sq_depth, info.cq_depth
            ));
        }
        if info.qid > db.max_qn() {
            return bad(format!("queue number does not fit the {db:?} doorbell"));
        }
        if mmio.len() < db.offset() + 8 {
            return bad(format!(
                "MMIO region of {:#x} bytes has no doorbell at {:#x}",
                mmio.len(),
                db.offset()
            ));
        }
        let cq_base = sqe_size * info.sq_depth as usize;
        let cq_end = cq_base + CQE_SIZE * info.cq_depth as usize;
        if dus.len() < cq_end + RX_STOP_FROM_END {
            return bad(format!(
                "DUS region of {:#x} bytes cannot hold SQ, CQ ({cq_end:#x}) and stop words",
                dus.len()
            ));
        }
        Ok(QmRing {
            tx_stop: dus.len() - TX_STOP_FROM_END,
            rx_stop: dus.len() - RX_STOP_FROM_END,
            mmio,
            dus,
            version,
            db,
            qid: info.qid,
            sqe_size,
            sq_depth: info.sq_depth,
            cq_depth: info.cq_depth,
            cq_base,
            sq_tail: 0,
            used: 0,
            cq_head: 0,
            phase: true,
            busy: vec![false; info.sq_depth as usize],
        })
    }

    /// The api version the doorbell follows.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// Queue number (the doorbells' qn).
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Bytes per SQE.
    pub fn sqe_size(&self) -> usize {
        self.sqe_size
    }

    /// SQ entries.
    pub fn sq_depth(&self) -> u16 {
        self.sq_depth
    }

    /// CQ entries.
    pub fn cq_depth(&self) -> u16 {
        self.cq_depth
    }

    /// SQEs sent and not yet completed.
    pub fn used(&self) -> u16 {
        self.used
    }

    /// How many more SQEs fit now (one slot is always kept free).
    pub fn free_slots(&self) -> u16 {
        self.sq_depth - 1 - self.used
    }

    /// Next SQ slot to be written.
    pub fn sq_tail(&self) -> u16 {
        self.sq_tail
    }

    /// Next CQ entry to be read.
    pub fn cq_head(&self) -> u16 {
        self.cq_head
    }

    /// Phase bit that marks a new CQE at `cq_head`.
    pub fn phase(&self) -> bool {
        self.phase
    }

    fn sqe_off(&self, slot: u16) -> usize {
        slot as usize * self.sqe_size
    }

    fn ring(&self, cmd: DoorbellCmd, index: u16, priority: u16) {
        let word = self.db.encode(self.qid, cmd, index, priority);
        self.mmio.write_u64(self.db.offset(), word);
    }

    fn check_sqe(&self, sqe: &[u32]) -> Result<()> {
        if sqe.len() * 4 != self.sqe_size {
            return Err(Error::InvalidArgument(format!(
                "SQE of {} bytes for a ring of {}-byte SQEs",
                sqe.len() * 4,
                self.sqe_size
            )));
        }
        Ok(())
    }

    /// Sends one SQE: copies it into the slot at `sq_tail` and rings the SQ doorbell.
    /// Returns the slot, where the device writes the results back.
    ///
    /// [`Error::RingFull`] when only the one always-free slot is left (or the next slot's
    /// request has not completed yet); [`Error::QueueStopped`] when the kernel stopped
    /// submission. On any error nothing is sent and the ring is unchanged.
    pub fn send(&mut self, sqe: &[u32]) -> Result<u16> {
        self.send_batch(&[sqe])
    }

    /// Sends several SQEs with one doorbell. They go into consecutive slots (modulo the
    /// depth) starting at the returned one. All or nothing: if they do not all fit, none is
    /// sent.
    pub fn send_batch(&mut self, sqes: &[&[u32]]) -> Result<u16> {
        let n = sqes.len();
        if n == 0 {
            return Err(Error::InvalidArgument("empty SQE batch".into()));
        }
        for sqe in sqes {
            self.check_sqe(sqe)?;
        }
        if n > self.free_slots() as usize {
            return Err(Error::RingFull);
        }
        let depth = self.sq_depth as usize;
        let first = self.sq_tail;
        let slot_at = |i: usize| ((first as usize + i) % depth) as u16;
        if (0..n).any(|i| self.busy[slot_at(i) as usize]) {
            // The device completed out of order and the oldest request is still in the slot.
            return Err(Error::RingFull);
        }
        for (i, sqe) in sqes.iter().enumerate() {
            self.dus.write_words(self.sqe_off(slot_at(i)), sqe);
        }
        if self.dus.read_u32(self.tx_stop) == 1 {
            return Err(Error::QueueStopped(StopWord::Tx));
        }
        let new_tail = slot_at(n);
        // The SQEs must be visible to the device before it sees the doorbell.
        mb();
        self.ring(DoorbellCmd::Sq, new_tail, 0);
        for i in 0..n {
            self.busy[slot_at(i) as usize] = true;
        }
        self.sq_tail = new_tail;
        self.used += n as u16;
        Ok(first)
    }

    /// Takes one completion if there is one: returns the SQ slot the CQE names, whose SQE
    /// now holds the results (read them with [`QmRing::read_sqe`] before the slot is reused
    /// by a later send). Rings the CQ doorbell with the new head.
    ///
    /// [`Error::Protocol`] for a CQE naming a slot beyond the SQ or a slot with no request
    /// in flight: the CQE is consumed (so the ring keeps step with the device's CQ) but no
    /// request counts as completed, so `used` stays equal to the slots in flight;
    /// [`Error::QueueStopped`] when the kernel stopped completion (nothing consumed).
    pub fn poll(&mut self) -> Result<Option<u16>> {
        let off = self.cq_base + self.cq_head as usize * CQE_SIZE;
        if cqe::read_phase(&self.dus, off) != self.phase {
            return Ok(None);
        }
        // Read the rest of the CQE, and later the SQE, only after seeing the phase.
        rmb();
        let entry = cqe::read(&self.dus, off);
        if self.dus.read_u32(self.rx_stop) == 1 {
            return Err(Error::QueueStopped(StopWord::Rx));
        }
        let slot = entry.sq_head;
        let verdict = if slot >= self.sq_depth {
            Err(Error::Protocol(format!(
                "queue {}: CQE {} names SQ slot {slot} of a {}-deep SQ",
                self.qid, self.cq_head, self.sq_depth
            )))
        } else if !self.busy[slot as usize] {
            Err(Error::Protocol(format!(
                "queue {}: CQE {} completes SQ slot {slot}, which has no request in flight",
                self.qid, self.cq_head
            )))
        } else {
            self.busy[slot as usize] = false;
            self.used -= 1;
            Ok(Some(slot))
        };
        if self.cq_head == self.cq_depth - 1 {
            self.cq_head = 0;
            self.phase = !self.phase;
        } else {
            self.cq_head += 1;
        }
        // Our reads of the CQE are done before the device may reuse it.
        mb();
        self.ring(DoorbellCmd::Cq, self.cq_head, 0);
        verdict
    }

    /// Re-arms the completion event before the caller blocks on it: a CQ doorbell with the
    /// current head and priority 1.
    pub fn arm(&self) {
        mb();
        self.ring(DoorbellCmd::Cq, self.cq_head, PRIORITY_ARM);
    }

    /// Copies the SQE in `slot` (the results the device wrote back) into `out`, which may be
    /// shorter than an SQE.
    pub fn read_sqe(&self, slot: u16, out: &mut [u32]) -> Result<()> {
        if slot >= self.sq_depth || out.len() * 4 > self.sqe_size {
            return Err(Error::InvalidArgument(format!(
                "read of {} words from SQ slot {slot} (depth {}, {}-byte SQEs)",
                out.len(),
                self.sq_depth,
                self.sqe_size
            )));
        }
        self.dus.read_words(self.sqe_off(slot), out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{fake_queue, FakeHw};
    use std::sync::Arc;

    const SQ: u64 = 0;
    const CQ: u64 = 1;

    fn info(qid: u16, depth: u16) -> QueueInfo {
        QueueInfo {
            qid,
            sqe_size: 64,
            sq_depth: depth,
            cq_depth: depth,
        }
    }

    fn ring(api: &str, qid: u16, depth: u16) -> (QmRing, Arc<FakeHw>) {
        let hw = FakeHw::new(api, info(qid, depth));
        let r = QmRing::from_parts(api, hw.info(), hw.mmio().clone(), hw.dus().clone()).unwrap();
        (r, hw)
    }

    fn sqe(marker: u32) -> [u32; 16] {
        let mut w = [0u32; 16];
        w[0] = marker;
        w[15] = !marker;
        w
    }

    /// Doorbell word decoded with hardware-interface's bit positions: (qn, cmd, rand,
    /// index, prio).
    fn v1_fields(w: u64) -> (u64, u64, u64, u64) {
        (w & 0xffff, (w >> 16) & 0xffff, (w >> 32) & 0xffff, w >> 48)
    }

    fn v2_fields(w: u64) -> (u64, u64, u64, u64, u64) {
        (
            w & 0xfff,
            (w >> 12) & 0xf,
            (w >> 16) & 0xffff,
            (w >> 32) & 0xffff,
            w >> 48,
        )
    }

    #[test]
    fn one_slot_is_always_free() {
        let (mut r, hw) = ring("hisi_qm_v2", 3, 8);
        for i in 0..7u16 {
            assert_eq!(r.send(&sqe(i as u32)).unwrap(), i);
        }
        assert_eq!(r.used(), 7);
        assert_eq!(r.free_slots(), 0);
        assert!(matches!(r.send(&sqe(99)), Err(Error::RingFull)));
        assert_eq!((r.sq_tail(), r.used()), (7, 7));
        assert_eq!(hw.doorbells().len(), 7);
        // The refused SQE was not written into the free slot.
        assert_eq!(hw.sqe(7), vec![0; 16]);
        // One completion frees one slot.
        hw.post_cqe(0);
        assert_eq!(r.poll().unwrap(), Some(0));
        assert_eq!(r.send(&sqe(7)).unwrap(), 7);
        assert!(matches!(r.send(&sqe(8)), Err(Error::RingFull)));
    }

    #[test]
    fn wraps_three_times_with_phase_flips() {
        let depth = 4u16;
        let (mut r, hw) = ring("hisi_qm_v3", 1, depth);
        let mut flips = 0;
        let mut n = 0u32;
        // Alternate one and three requests in flight to exercise both wrap positions.
        while n < 3 * depth as u32 * 2 {
            let batch = if n.is_multiple_of(2) { 1 } else { 3 };
            let mut slots = Vec::new();
            for k in 0..batch {
                let s = r.send(&sqe(n + k)).unwrap();
                assert_eq!(s as u32, (n + k) % depth as u32);
                slots.push(s);
            }
            for s in slots {
                assert_eq!(r.poll().unwrap(), None, "nothing posted yet");
                hw.post_cqe(s);
                let phase = r.phase();
                assert_eq!(r.poll().unwrap(), Some(s));
                if r.phase() != phase {
                    flips += 1;
                    assert_eq!(r.cq_head(), 0);
                }
                let (_, w) = *hw.doorbells().last().unwrap();
                let (qn, cmd, rand, index, prio) = v2_fields(w);
                assert_eq!(
                    (qn, cmd, rand, index, prio),
                    (1, CQ, 0, r.cq_head() as u64, 0)
                );
            }
            n += batch;
        }
        assert!(flips >= 3, "only {flips} phase flips");
        assert_eq!(r.used(), 0);
        // The SQ doorbells carried every new tail in order.
        let tails: Vec<u64> = hw
            .doorbells()
            .iter()
            .filter(|(_, w)| (w >> 12) & 0xf == SQ)
            .map(|(_, w)| (w >> 32) & 0xffff)
            .collect();
        let expect: Vec<u64> = (1..=n as u64).map(|i| i % depth as u64).collect();
        assert_eq!(tails, expect);
    }

    #[test]
    fn sq_head_beyond_the_ring_is_a_protocol_error() {
        let (mut r, hw) = ring("hisi_qm_v2", 0, 8);
        r.send(&sqe(1)).unwrap();
        hw.post_cqe(8);
        match r.poll() {
            Err(Error::Protocol(m)) => assert!(m.contains("slot 8"), "{m}"),
            other => panic!("{other:?}"),
        }
        // The bad CQE was consumed; the real request is still in flight.
        assert_eq!((r.cq_head(), r.used()), (1, 1));
        assert_eq!(r.poll().unwrap(), None);
        hw.post_cqe(0);
        assert_eq!(r.poll().unwrap(), Some(0));
    }

    #[test]
    fn completion_of_an_idle_slot_is_a_protocol_error() {
        let (mut r, hw) = ring("hisi_qm_v2", 0, 8);
        r.send(&sqe(1)).unwrap();
        hw.post_cqe(0);
        hw.post_cqe(0); // duplicated
        assert_eq!(r.poll().unwrap(), Some(0));
        match r.poll() {
            Err(Error::Protocol(m)) => assert!(m.contains("no request in flight"), "{m}"),
            other => panic!("{other:?}"),
        }
        hw.post_cqe(5); // never sent
        assert!(matches!(r.poll(), Err(Error::Protocol(_))));
        assert_eq!(r.used(), 0);
    }

    #[test]
    fn out_of_order_completion_never_overwrites_a_busy_slot() {
        let (mut r, hw) = ring("hisi_qm_v2", 0, 4);
        for i in 0..3 {
            r.send(&sqe(i)).unwrap();
        }
        hw.post_cqe(1);
        hw.post_cqe(2);
        assert_eq!(r.poll().unwrap(), Some(1));
        assert_eq!(r.poll().unwrap(), Some(2));
        assert_eq!(r.send(&sqe(3)).unwrap(), 3);
        // The tail is at slot 0, whose request is still in flight.
        assert!(matches!(r.send(&sqe(4)), Err(Error::RingFull)));
        assert_eq!(hw.sqe(0)[0], 0);
        hw.post_cqe(0);
        assert_eq!(r.poll().unwrap(), Some(0));
        assert_eq!(r.send(&sqe(4)).unwrap(), 0);
    }

    #[test]
    fn stop_words_refuse_work_clearly() {
        let (mut r, hw) = ring("hisi_qm_v2", 0, 8);
        hw.set_stop(StopWord::Tx, true);
        assert!(matches!(
            r.send(&sqe(1)),
            Err(Error::QueueStopped(StopWord::Tx))
        ));
        assert!(hw.doorbells().is_empty());
        assert_eq!((r.sq_tail(), r.used()), (0, 0));
        hw.set_stop(StopWord::Tx, false);
        assert_eq!(r.send(&sqe(1)).unwrap(), 0);

        hw.set_stop(StopWord::Rx, true);
        hw.post_cqe(0);
        let e = r.poll().unwrap_err();
        assert!(matches!(e, Error::QueueStopped(StopWord::Rx)));
        assert!(e.to_string().contains("Rx-stop"), "{e}");
        assert_eq!(hw.doorbells().len(), 1, "no CQ doorbell on a stopped queue");
        hw.set_stop(StopWord::Rx, false);
        assert_eq!(r.poll().unwrap(), Some(0));
    }

    #[test]
    fn v1_doorbell_words_are_exact() {
        let (mut r, hw) = ring("hisi_qm_v1", 0x1234, 8);
        r.send(&sqe(1)).unwrap();
        hw.post_cqe(0);
        r.poll().unwrap();
        r.arm();
        let db = hw.doorbells();
        assert!(db.iter().all(|(off, _)| *off == 0x340));
        let f: Vec<_> = db.iter().map(|(_, w)| v1_fields(*w)).collect();
        assert_eq!(
            f,
            vec![(0x1234, SQ, 1, 0), (0x1234, CQ, 1, 0), (0x1234, CQ, 1, 1)]
        );
        assert_eq!(db[0].1, 0x0000_0001_0000_1234);
        assert_eq!(db[1].1, 0x0000_0001_0001_1234);
        assert_eq!(db[2].1, 0x0001_0001_0001_1234);
    }

    #[test]
    fn v2_and_v3_doorbell_words_are_exact() {
        for api in ["hisi_qm_v2", "hisi_qm_v3", "hisi_qm_v5"] {
            let (mut r, hw) = ring(api, 0x3a5, 8);
            r.send_batch(&[&sqe(1), &sqe(2)]).unwrap();
            hw.post_cqe(0);
            r.poll().unwrap();
            r.arm();
            let db = hw.doorbells();
            assert!(db.iter().all(|(off, _)| *off == 0x1000), "{api}");
            let f: Vec<_> = db.iter().map(|(_, w)| v2_fields(*w)).collect();
            assert_eq!(
                f,
                vec![
                    (0x3a5, SQ, 0, 2, 0),
                    (0x3a5, CQ, 0, 1, 0),
                    (0x3a5, CQ, 0, 1, 1)
                ],
                "{api}"
            );
            assert_eq!(db[0].1, 0x0000_0002_0000_03a5);
            assert_eq!(db[1].1, 0x0000_0001_0000_13a5);
            assert_eq!(db[2].1, 0x0001_0001_0000_13a5);
        }
    }

    #[test]
    fn batch_is_all_or_nothing_with_one_doorbell() {
        let (mut r, hw) = ring("hisi_qm_v2", 0, 4);
        assert_eq!(r.send_batch(&[&sqe(1), &sqe(2)]).unwrap(), 0);
        assert_eq!(hw.doorbells().len(), 1);
        assert_eq!((hw.sqe(0)[0], hw.sqe(1)[0]), (1, 2));
        assert!(matches!(
            r.send_batch(&[&sqe(3), &sqe(4)]),
            Err(Error::RingFull)
        ));
        assert_eq!(hw.sqe(2)[0], 0);
        assert!(matches!(r.send_batch(&[]), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn results_are_read_back_from_the_named_slot() {
        let (mut r, hw) = ring("hisi_qm_v2", 0, 8);
        r.send(&sqe(1)).unwrap();
        let s = r.send(&sqe(2)).unwrap();
        let mut done = sqe(2);
        done[3] = 0xdead_beef;
        hw.write_sqe(s, &done);
        hw.post_cqe(s);
        assert_eq!(r.poll().unwrap(), Some(s));
        let mut back = [0u32; 16];
        r.read_sqe(s, &mut back).unwrap();
        assert_eq!(back, done);
        let mut head = [0u32; 4];
        r.read_sqe(s, &mut head).unwrap();
        assert_eq!(head[3], 0xdead_beef);
        assert!(r.read_sqe(8, &mut head).is_err());
        assert!(r.read_sqe(0, &mut [0u32; 17]).is_err());
    }

    #[test]
    fn bad_geometry_and_sqe_sizes_are_refused() {
        let hw = FakeHw::new("hisi_qm_v2", info(0x1000, 8));
        let r = QmRing::from_parts("hisi_qm_v2", hw.info(), hw.mmio().clone(), hw.dus().clone());
        assert!(
            matches!(r, Err(Error::Unsupported(_))),
            "qn wider than 12 bits"
        );
        let hw = FakeHw::new("hisi_qm_v2", info(0, 8));
        let mut big = hw.info();
        big.sq_depth = 1024;
        let r = QmRing::from_parts("hisi_qm_v2", big, hw.mmio().clone(), hw.dus().clone());
        assert!(matches!(r, Err(Error::Unsupported(_))), "rings beyond DUS");
        let mut odd = hw.info();
        odd.sqe_size = 62;
        let r = QmRing::from_parts("hisi_qm_v2", odd, hw.mmio().clone(), hw.dus().clone());
        assert!(matches!(r, Err(Error::Unsupported(_))));
        let small_mmio = Region::anonymous(0x1000).unwrap();
        let r = QmRing::from_parts("hisi_qm_v2", hw.info(), small_mmio, hw.dus().clone());
        assert!(
            matches!(r, Err(Error::Unsupported(_))),
            "no room for doorbell"
        );
        // An unknown api suffix is refused (the no-SVA one is the same ring: accepted).
        let r = QmRing::from_parts(
            "hisi_qm_v2_sideways",
            hw.info(),
            hw.mmio().clone(),
            hw.dus().clone(),
        );
        assert!(matches!(r, Err(Error::Unsupported(_))));
        QmRing::from_parts(
            "hisi_qm_v2_noiommu",
            hw.info(),
            hw.mmio().clone(),
            hw.dus().clone(),
        )
        .unwrap();

        let mut r =
            QmRing::from_parts("hisi_qm_v2", hw.info(), hw.mmio().clone(), hw.dus().clone())
                .unwrap();
        assert!(matches!(r.send(&[0u32; 8]), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn built_from_an_opened_queue() {
        let (q, hw) = fake_queue("hisi_qm_v3", info(7, 16), 0);
        let mut r = QmRing::new(&q).unwrap();
        assert_eq!((r.qid(), r.sq_depth(), r.sqe_size()), (7, 16, 64));
        assert_eq!(r.version().number(), 3);
        r.send(&sqe(5)).unwrap();
        assert_eq!(hw.sqe(0)[0], 5);
        assert_eq!(hw.doorbells()[0], (0x1000, (1 << 32) | 7));
    }
}
