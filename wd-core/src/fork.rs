//! Fork detection: a process-wide epoch that changes in every forked child.
//!
//! One `pthread_atfork` child handler, registered once, bumps a generation counter; a pid
//! check catches children made without the handler running. State tagged with an
//! [`Epoch`] that is no longer current belongs to a parent process and must not be touched.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

extern "C" fn on_fork_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: registering a handler that only touches an atomic is async-signal-safe
        // and valid for the life of the process (this library is never unloaded while
        // the handler could run: the provider pins itself, see provider/).
        unsafe {
            libc::pthread_atfork(None, None, Some(on_fork_child));
        }
    });
}

/// Which process incarnation some state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    pid: u32,
    generation: u64,
}

impl Epoch {
    /// The epoch of the calling process now.
    pub fn current() -> Epoch {
        install();
        Epoch {
            pid: std::process::id(),
            generation: GENERATION.load(Ordering::SeqCst),
        }
    }

    /// True if state of this epoch belongs to the calling process.
    pub fn is_current(&self) -> bool {
        *self == Epoch::current()
    }

    /// The process id of this epoch.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}
