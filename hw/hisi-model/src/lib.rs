//! Device model of the HiSilicon QM, HPRE and ZIP engines.
//!
//! The model is the device side of docs/hardware-interface.md and speaks nothing else: each
//! queue is a DUS region laid out as the kernel lays it out (SQ, CQ, status page with the
//! TX/RX-stop words) and an MMIO region whose 64-bit doorbell stores reach the device
//! through a [`wd_core::MmioHook`]. Engine threads fetch SQEs up to the doorbell's tail,
//! compute for real (RSA through libcrypto's bignums), write the result back into the SQE
//! slot and post a CQE with the phase bit, raising the queue's eventfd if the driver armed
//! it. Every DMA address goes through the model's IOMMU; a stray one fails the request like
//! hardware.
//!
//! It shares no code with the user drivers: [`layout`] is the model's own reading of every
//! descriptor, pinned by tests to hardware-interface's offsets.
//!
//! A program that carries the model plugs it into wd-core's device selection with
//! [`plug()`]; then `WD_DEVICES=model` (or the provider's `devices = model`) starts it on
//! first use. Tests may also make and register a backend directly:
//!
//! ```no_run
//! let backend = hisi_model::register(hisi_model::ModelConfig::from_env()?)?;
//! # Ok::<(), wd_core::Error>(())
//! ```

pub mod backend;
mod bn;
pub mod config;
mod device;
pub mod engine;
pub mod hpre;
pub mod iommu;
pub mod layout;
pub mod mailbox;
mod plug;
pub mod queue;
pub mod stats;
mod sys;
pub mod uacce_fake;
pub mod vfio_fake;
pub mod zip;

pub use backend::{register, ModelBackend, FIRST_DEVICE_INDEX};
pub use config::{ApiVersion, FaultConfig, ModelConfig};
pub use device::CORRUPT_SQ_HEAD;
pub use engine::{DmaAccess, DmaFault, Engine, Failure, Job, Outcome};
pub use hpre::{hpre_compute, HpreEngine, HpreError};
pub use plug::plug;
pub use queue::ModelQueue;
pub use stats::ModelStats;
pub use zip::ZipEngine;
