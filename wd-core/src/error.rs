//! The one error type of wd-core, with its mapping to errno for C callers.

use std::time::Duration;

/// Which stop word of a queue's status page was found set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopWord {
    /// The kernel stopped submission (TX-stop, `dus_size - 4`).
    Tx,
    /// The kernel stopped completion (RX-stop, `dus_size - 8`).
    Rx,
}

/// Errors of the WarpDrive core and of the user drivers built on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No device offers what was asked for.
    #[error("no accelerator device found: {0}")]
    NoDevice(String),
    /// Every queue of the device (or of the pool's bound) is in use; fall back to software.
    #[error("no free queue on {0}")]
    NoFreeQueue(String),
    /// The submission ring is full; try again after receiving completions.
    #[error("submission queue full")]
    RingFull,
    /// The device was removed or the queue was torn down under us.
    #[error("device gone: {0}")]
    DeviceGone(String),
    /// The kernel set a stop word in the queue's status page (reset, disable, error).
    #[error("queue stopped by the kernel ({0:?}-stop word set)")]
    QueueStopped(StopWord),
    /// No completion arrived within the timeout: the device stalled.
    #[error("device stalled: no completion within {0:?}")]
    Stalled(Duration),
    /// The device completed a request with an error status.
    #[error("device reported an error: {0}")]
    Device(String),
    /// The device broke the ring protocol (unknown tag, bad slot index, duplicated completion).
    #[error("ring protocol violation: {0}")]
    Protocol(String),
    /// The request cannot be done by this device (key size, algorithm, hardware version).
    #[error("unsupported by the device: {0}")]
    Unsupported(String),
    /// The caller passed something invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A DMA address was not inside memory shared with the queue.
    #[error("DMA address not shared with the device: {0}")]
    DmaFault(String),
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an OS error with what was being done.
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    /// Wraps the calling thread's last OS error.
    pub fn last_os(op: impl Into<String>) -> Self {
        Self::io(op, std::io::Error::last_os_error())
    }

    /// The errno a C caller sees for this error (positive value).
    pub fn errno(&self) -> i32 {
        match self {
            Error::NoDevice(_) => libc::ENODEV,
            Error::NoFreeQueue(_) => libc::EBUSY,
            Error::RingFull => libc::EAGAIN,
            Error::DeviceGone(_) => libc::ENXIO,
            Error::QueueStopped(_) => libc::EIO,
            Error::Stalled(_) => libc::ETIMEDOUT,
            Error::Device(_) => libc::EIO,
            Error::Protocol(_) => libc::EPROTO,
            Error::Unsupported(_) => libc::EOPNOTSUPP,
            Error::InvalidArgument(_) => libc::EINVAL,
            Error::DmaFault(_) => libc::EFAULT,
            Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Error::Config(_) => libc::EINVAL,
        }
    }

    /// True where software should redo the work: the device could not or did not do it,
    /// but the request itself is fine.
    pub fn wants_fallback(&self) -> bool {
        !matches!(self, Error::InvalidArgument(_))
    }
}
