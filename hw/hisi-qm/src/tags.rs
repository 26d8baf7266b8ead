//! Tag-to-request matching: a table indexed by the tag a driver writes into its SQE, with a
//! free list. Each entry remembers the SQ slot its request was sent in, so a completion is
//! accepted only if the tag read back from slot S is in flight *and* was sent in S: a
//! corrupted or misdirected completion becomes a protocol error, never a wrong result.

#![forbid(unsafe_code)]

use wd_core::{Error, Result};

#[derive(Debug)]
enum Entry<T> {
    Free,
    Reserved,
    InFlight { slot: u16, req: T },
}

/// Requests in flight, by tag.
#[derive(Debug)]
pub struct TagTable<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u16>,
    in_flight: usize,
}

impl<T> TagTable<T> {
    /// A table of `capacity` tags, `0..capacity` (at most 65536).
    pub fn new(capacity: usize) -> TagTable<T> {
        assert!(
            capacity <= u16::MAX as usize + 1,
            "tags are 16 bits wide; {capacity} requested"
        );
        TagTable {
            entries: (0..capacity).map(|_| Entry::Free).collect(),
            // Lowest tag handed out first.
            free: (0..capacity).rev().map(|t| t as u16).collect(),
            in_flight: 0,
        }
    }

    /// Number of tags.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Requests sent and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Tags neither reserved nor in flight.
    pub fn free_tags(&self) -> usize {
        self.free.len()
    }

    /// Reserves a tag to put in an SQE; [`Error::RingFull`] when every tag is taken.
    pub fn reserve(&mut self) -> Result<u16> {
        let tag = self.free.pop().ok_or(Error::RingFull)?;
        self.entries[tag as usize] = Entry::Reserved;
        Ok(tag)
    }

    /// Gives back a reserved tag whose request was not sent.
    pub fn cancel(&mut self, tag: u16) {
        if let Some(e @ Entry::Reserved) = self.entries.get_mut(tag as usize) {
            *e = Entry::Free;
            self.free.push(tag);
        }
    }

    /// Records that the request with reserved `tag` was sent in SQ `slot`.
    pub fn commit(&mut self, tag: u16, slot: u16, req: T) {
        let e = &mut self.entries[tag as usize];
        assert!(
            matches!(e, Entry::Reserved),
            "commit of tag {tag}, which was not reserved"
        );
        *e = Entry::InFlight { slot, req };
        self.in_flight += 1;
    }

    /// Takes the request completed in SQ `slot` whose SQE carries `tag`. A tag out of range,
    /// not in flight, or sent in another slot is [`Error::Protocol`]; the table is then
    /// unchanged.
    pub fn complete(&mut self, tag: u16, slot: u16) -> Result<T> {
        let sent_in = match self.entries.get(tag as usize) {
            Some(Entry::InFlight { slot, .. }) => *slot,
            Some(_) => {
                return Err(Error::Protocol(format!(
                    "completion in SQ slot {slot} carries tag {tag}, which is not in flight"
                )))
            }
            None => {
                return Err(Error::Protocol(format!(
                    "completion in SQ slot {slot} carries tag {tag}, beyond the {} tags",
                    self.entries.len()
                )))
            }
        };
        if sent_in != slot {
            return Err(Error::Protocol(format!(
                "completion in SQ slot {slot} carries tag {tag}, which was sent in slot {sent_in}"
            )));
        }
        match std::mem::replace(&mut self.entries[tag as usize], Entry::Free) {
            Entry::InFlight { req, .. } => {
                self.free.push(tag);
                self.in_flight -= 1;
                Ok(req)
            }
            _ => unreachable!("entry checked to be in flight"),
        }
    }

    /// Takes every request still in flight (queue teardown), freeing all tags.
    pub fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        for (tag, e) in self.entries.iter_mut().enumerate() {
            match std::mem::replace(e, Entry::Free) {
                Entry::InFlight { req, .. } => out.push(req),
                Entry::Reserved => {}
                Entry::Free => continue,
            }
            self.free.push(tag as u16);
        }
        self.in_flight = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_ring_full_and_tags_come_back() {
        let mut t: TagTable<&str> = TagTable::new(3);
        let a = t.reserve().unwrap();
        let b = t.reserve().unwrap();
        let c = t.reserve().unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        assert!(matches!(t.reserve(), Err(Error::RingFull)));
        t.cancel(b);
        assert_eq!(t.reserve().unwrap(), b);
        t.commit(a, 7, "a");
        t.commit(b, 8, "b");
        assert_eq!(t.in_flight(), 2);
        assert_eq!(t.complete(a, 7).unwrap(), "a");
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.reserve().unwrap(), a);
    }

    #[test]
    fn mismatches_are_protocol_errors_and_change_nothing() {
        let mut t: TagTable<u32> = TagTable::new(4);
        let a = t.reserve().unwrap();
        t.commit(a, 5, 50);
        let r = t.reserve().unwrap(); // reserved, not sent
        for (tag, slot, why) in [
            (a, 6, "sent in slot 5"),
            (r, 5, "not in flight"),
            (3, 5, "not in flight"),
            (9, 5, "beyond"),
        ] {
            match t.complete(tag, slot) {
                Err(Error::Protocol(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("tag {tag} slot {slot}: {other:?}"),
            }
        }
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.complete(a, 5).unwrap(), 50);
        // A second completion of the same tag is caught too.
        assert!(matches!(t.complete(a, 5), Err(Error::Protocol(_))));
    }

    #[test]
    fn drain_returns_everything_in_flight() {
        let mut t: TagTable<u8> = TagTable::new(4);
        for i in 0..3u8 {
            let tag = t.reserve().unwrap();
            t.commit(tag, i as u16, i);
        }
        let _reserved = t.reserve().unwrap();
        let mut got = t.drain();
        got.sort();
        assert_eq!(got, vec![0, 1, 2]);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.free_tags(), 4);
    }
}
