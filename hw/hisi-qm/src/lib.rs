//! User side of the HiSilicon QM queue ring: SQ/CQ, phase bit, doorbells
//! (docs/hardware-interface.md §3).
//!
//! - [`ApiVersion`]: the QM interface version from the device's `api` string, which picks
//!   the doorbell format and offset ([`DoorbellFormat`]).
//! - [`QmRing`]: one queue pair: `send` SQEs, `poll` CQEs, `arm` the completion event,
//!   `read_sqe` results written back into the SQ slot.
//! - [`TagTable`]: matches completions to requests by the tag a driver puts in its SQE and
//!   the slot it was sent in.
//! - [`TaggedRing`]: a ring and its tag table, the send/receive path engine drivers share.
//! - [`words`]: bit-field accessors for SQE words (no layouts: those are the drivers').
//! - [`mailbox`], [`vfio_bringup`]: the QM brought up from user space on a VF bound to
//!   vfio-pci (mailbox, SQC/CQC contexts), plugged into wd-core's VFIO backend with
//!   [`vfio_bringup::plug`].
//! - [`testing`] (feature `testing`): a fake queue made of anonymous regions, for driver
//!   unit tests that play the device themselves.
//!
//! Engine drivers (HPRE, ZIP) define their SQE layouts themselves; this crate only moves
//! whole SQEs.

#![forbid(unsafe_code)]

pub mod cqe;
pub mod doorbell;
pub mod mailbox;
pub mod ring;
pub mod tagged;
pub mod tags;
pub mod version;
pub mod vfio_bringup;
pub mod words;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use doorbell::{DoorbellCmd, DoorbellFormat};
pub use ring::QmRing;
pub use tagged::{Completion, TaggedRing};
pub use tags::TagTable;
pub use version::ApiVersion;
