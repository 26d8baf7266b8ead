//! wd-core: the WarpDrive user-space accelerator core.
//!
//! A process asks for a [`Queue`] on an accelerator [`Device`]; the queue owns the device's
//! MMIO doorbell page and its ring memory (both [`Region`]s), and memory shared with the
//! device for DMA ([`dma::DmaPool`], [`Queue::mem_share`]). A per-hardware [`UserDriver`]
//! speaks the ring protocol on top; [`DriverQueue`] gives the WarpDrive user API
//! (`send`, `recv`, `recv_sync`) and [`pool::QueuePool`] hands each thread its own queue.
//!
//! Backends ([`backend::Backend`]) provide queues: the uacce char devices of Linux, and
//! devices registered at run time (the device model). Drivers never learn which one they use;
//! [`select`] is the one place that decides which backends a process uses.

pub mod backend;
pub mod barrier;
pub mod counters;
pub mod device;
pub mod dma;
pub mod driver;
pub mod error;
pub mod fork;
pub mod log;
pub mod pool;
pub mod queue;
pub mod region;
pub mod registry;
pub mod select;
pub mod uacce;
pub mod vfio;
pub mod wait;

pub use backend::{Backend, QueueBackend, QueueInfo, QueueRequest};
pub use device::{AddressMode, Device, DeviceInfo};
pub use dma::{DmaBuf, DmaPool, Iova};
pub use driver::{DriverQueue, UserDriver};
pub use error::{Error, Result};
pub use queue::Queue;
pub use region::{MmioHook, Region};
