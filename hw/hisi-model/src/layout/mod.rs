//! The device side's own reading of every descriptor it touches
//! (docs/hardware-interface.md §3 and §5).
//!
//! Defined here independently of the user drivers on purpose: both sides are pinned by
//! tests to hardware-interface's byte offsets and bit positions, so a shared mistake cannot
//! hide behind a shared definition. Pure arithmetic; no memory access.

#![forbid(unsafe_code)]

pub mod hpre;
pub mod qm;
pub mod zip;
