//! `TaggedRing`: a [`QmRing`] and the [`TagTable`] of its requests, the send/receive path an
//! engine driver shares. The driver still owns its SQE layout: it builds the SQE words for a
//! tag on submit and says where the tag sits in the words read back on completion.

#![forbid(unsafe_code)]

use wd_core::driver::SendError;
use wd_core::Result;

use crate::ring::QmRing;
use crate::tags::TagTable;

/// One completion: the request, the SQ slot it was sent in, its tag and the SQE the device
/// wrote back into that slot.
#[derive(Debug)]
pub struct Completion<T, const N: usize> {
    /// The request sent with `tag` in `slot`.
    pub msg: T,
    /// The SQ slot the CQE named.
    pub slot: u16,
    /// The tag read back from the SQE.
    pub tag: u16,
    /// The SQE words read back from `slot`.
    pub sqe: [u32; N],
}

/// A ring whose requests are matched to completions by tag and slot.
#[derive(Debug)]
pub struct TaggedRing<T> {
    ring: QmRing,
    tags: TagTable<T>,
}

impl<T> TaggedRing<T> {
    /// The ring with one tag per SQ slot.
    pub fn new(ring: QmRing) -> TaggedRing<T> {
        TaggedRing {
            tags: TagTable::new(ring.sq_depth() as usize),
            ring,
        }
    }

    /// The ring (geometry, state).
    pub fn ring(&self) -> &QmRing {
        &self.ring
    }

    /// Requests sent and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.tags.in_flight()
    }

    /// Re-arms the completion event ([`QmRing::arm`]).
    pub fn arm(&self) {
        self.ring.arm();
    }

    /// Sends `msg` in the SQE `sqe(&msg, tag)` builds for a reserved tag. On any error (no
    /// tag, [`QmRing::send`] refused) the tag is given back and `msg` is handed back
    /// untouched.
    pub fn submit<S: AsRef<[u32]>>(
        &mut self,
        msg: T,
        sqe: impl FnOnce(&T, u16) -> S,
    ) -> Result<(), SendError<T>> {
        let tag = match self.tags.reserve() {
            Ok(t) => t,
            Err(error) => return Err(SendError { error, msg }),
        };
        let words = sqe(&msg, tag);
        match self.ring.send(words.as_ref()) {
            Ok(slot) => {
                self.tags.commit(tag, slot, msg);
                Ok(())
            }
            Err(error) => {
                self.tags.cancel(tag);
                Err(SendError { error, msg })
            }
        }
    }

    /// Takes one completion if there is one: polls the ring, reads the first `N` SQE words
    /// back from the slot the CQE names, takes the tag out of them with `tag_of(slot, words)`
    /// and matches it to the request sent in that slot ([`Error::Protocol`] if it was not,
    /// and the table is then unchanged). An error from `tag_of` is returned as is, before
    /// any request is taken.
    ///
    /// [`Error::Protocol`]: wd_core::Error::Protocol
    pub fn complete<const N: usize>(
        &mut self,
        tag_of: impl FnOnce(u16, &[u32; N]) -> Result<u16>,
    ) -> Result<Option<Completion<T, N>>> {
        let Some(slot) = self.ring.poll()? else {
            return Ok(None);
        };
        let mut sqe = [0u32; N];
        self.ring.read_sqe(slot, &mut sqe)?;
        let tag = tag_of(slot, &sqe)?;
        let msg = self.tags.complete(tag, slot)?;
        Ok(Some(Completion {
            msg,
            slot,
            tag,
            sqe,
        }))
    }

    /// Takes every request still in flight (queue teardown), freeing all tags.
    pub fn drain(&mut self) -> Vec<T> {
        self.tags.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHw;
    use std::sync::Arc;
    use wd_core::error::StopWord;
    use wd_core::{Error, QueueInfo};

    /// A request: its marker goes in word 0, its tag in word 5.
    #[derive(Debug, PartialEq, Eq)]
    struct Req(u32);

    const TAG_DW: usize = 5;

    fn sqe(r: &Req, tag: u16) -> [u32; 16] {
        let mut w = [0u32; 16];
        w[0] = r.0;
        w[TAG_DW] = tag as u32;
        w
    }

    fn tag_of(_slot: u16, w: &[u32; 16]) -> Result<u16> {
        Ok(w[TAG_DW] as u16)
    }

    fn tagged(depth: u16) -> (TaggedRing<Req>, Arc<FakeHw>) {
        let info = QueueInfo {
            qid: 0,
            sqe_size: 64,
            sq_depth: depth,
            cq_depth: depth,
        };
        let hw = FakeHw::new("hisi_qm_v2", info);
        let r = QmRing::from_parts("hisi_qm_v2", hw.info(), hw.mmio().clone(), hw.dus().clone())
            .unwrap();
        (TaggedRing::new(r), hw)
    }

    #[test]
    fn round_trip_matches_tag_and_slot() {
        let (mut t, hw) = tagged(8);
        assert_eq!(t.tags.capacity(), 8);
        t.submit(Req(10), sqe).unwrap();
        t.submit(Req(11), sqe).unwrap();
        assert_eq!(t.in_flight(), 2);
        assert_eq!((hw.sqe(1)[0], hw.sqe(1)[TAG_DW]), (11, 1));
        assert!(t.complete(tag_of).unwrap().is_none());
        let mut back = sqe(&Req(11), 1);
        back[3] = 0xdead_beef;
        hw.write_sqe(1, &back);
        hw.post_cqe(1);
        let c = t.complete(tag_of).unwrap().unwrap();
        assert_eq!((c.msg, c.slot, c.tag, c.sqe), (Req(11), 1, 1, back));
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.drain(), vec![Req(10)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn tag_mismatch_is_a_protocol_error_and_takes_nothing() {
        let (mut t, hw) = tagged(8);
        // Tag 0 in slot 0, tag 1 in slot 1.
        t.submit(Req(1), sqe).unwrap();
        t.submit(Req(2), sqe).unwrap();
        // Slot 0 comes back carrying the tag sent in slot 1.
        hw.write_sqe(0, &sqe(&Req(1), 1));
        hw.post_cqe(0);
        match t.complete(tag_of) {
            Err(Error::Protocol(m)) => assert!(m.contains("sent in slot 1"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.in_flight(), 2);
        // An error of the driver's own tag reading is passed through, nothing taken.
        hw.post_cqe(1);
        let e = t
            .complete(|slot, _: &[u32; 16]| Err(Error::Protocol(format!("bad SQE in {slot}"))))
            .unwrap_err();
        assert!(
            matches!(e, Error::Protocol(ref m) if m == "bad SQE in 1"),
            "{e}"
        );
        assert_eq!(t.in_flight(), 2);
        let mut left = t.drain();
        left.sort_by_key(|r| r.0);
        assert_eq!(left, vec![Req(1), Req(2)]);
    }

    #[test]
    fn ring_full_hands_the_message_back_untouched() {
        let (mut t, hw) = tagged(4);
        for i in 0..3 {
            t.submit(Req(i), sqe).unwrap();
        }
        let free = t.tags.free_tags();
        let mut built = 0;
        let e = t
            .submit(Req(99), |r, tag| {
                built += 1;
                sqe(r, tag)
            })
            .unwrap_err();
        assert_eq!(built, 1);
        assert!(matches!(e.error, Error::RingFull));
        assert_eq!(e.msg, Req(99));
        // The tag came back, nothing was written or rung.
        assert_eq!((t.tags.free_tags(), t.in_flight()), (free, 3));
        assert_eq!(hw.sqe(3), vec![0; 16]);
        assert_eq!(hw.doorbells().len(), 3);
    }

    #[test]
    fn no_free_tag_is_ring_full_without_building_an_sqe() {
        let (mut t, _hw) = tagged(4);
        let reserved: Vec<u16> = (0..4).map(|_| t.tags.reserve().unwrap()).collect();
        assert_eq!(reserved, vec![0, 1, 2, 3]);
        let e = t
            .submit(Req(7), |_, _| -> [u32; 16] {
                panic!("SQE built without a tag")
            })
            .unwrap_err();
        assert!(matches!(e.error, Error::RingFull));
        assert_eq!(e.msg, Req(7));
    }

    #[test]
    fn send_failure_cancels_the_tag() {
        let (mut t, hw) = tagged(8);
        hw.set_stop(StopWord::Tx, true);
        let e = t.submit(Req(5), sqe).unwrap_err();
        assert!(matches!(e.error, Error::QueueStopped(StopWord::Tx)));
        assert_eq!(e.msg, Req(5));
        assert_eq!((t.in_flight(), t.tags.free_tags()), (0, 8));
        // An SQE of the wrong size is refused the same way.
        let e = t.submit(Req(6), |_, _| [0u32; 8]).unwrap_err();
        assert!(matches!(e.error, Error::InvalidArgument(_)));
        assert_eq!((e.msg, t.tags.free_tags()), (Req(6), 8));
        hw.set_stop(StopWord::Tx, false);
        // The cancelled tag is the first handed out again.
        t.submit(Req(5), sqe).unwrap();
        assert_eq!(hw.sqe(0)[TAG_DW], 0);
        assert_eq!(t.in_flight(), 1);
    }
}
