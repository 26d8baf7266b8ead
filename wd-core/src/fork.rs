//! Fork detection: a process-wide epoch that changes in every forked child.
//!
//! One `pthread_atfork` child handler, registered once, bumps a generation counter and
//! records the child's pid; state tagged with an [`Epoch`] that is no longer current belongs
//! to a parent process and must not be touched.
//!
//! [`Epoch::current`] is two atomic loads, no system call: the hot paths ask it many times
//! per request (the provider's ASYNC path about twenty times per RSA operation, which cost
//! ~14 `getpid` calls per signature before the pid was cached). A child made without the
//! handler running (a raw `clone` system call, glibc's `_Fork`) is not detected; `fork()`,
//! `posix_spawn` followed by `exec`, and every language runtime's fork run the handlers.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
/// The calling process's pid, as of the last fork the handler saw (0 before `install`).
static PID: AtomicU32 = AtomicU32::new(0);
static INSTALL: Once = Once::new();

extern "C" fn on_fork_child() {
    // SAFETY: getpid has no preconditions and is async-signal-safe (the child of a
    // multi-threaded process may only make such calls here).
    let pid = unsafe { libc::getpid() } as u32;
    PID.store(pid, Ordering::SeqCst);
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn install() {
    INSTALL.call_once(|| {
        PID.store(std::process::id(), Ordering::SeqCst);
        // SAFETY: registering a handler that only calls getpid and touches atomics is
        // async-signal-safe and valid for the life of the process (this library is never
        // unloaded while the handler could run: the provider pins itself, see provider/).
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
    /// The epoch of the calling process now (no system call).
    pub fn current() -> Epoch {
        install();
        // Generation first: a fork between the two loads is then seen as the child's pid
        // with the parent's generation, which matches neither epoch (never a false match).
        let generation = GENERATION.load(Ordering::SeqCst);
        Epoch {
            pid: PID.load(Ordering::SeqCst),
            generation,
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

#[cfg(test)]
mod tests {
    use super::Epoch;

    #[test]
    fn a_forked_child_has_a_new_epoch_with_its_own_pid() {
        let parent = Epoch::current();
        assert_eq!(parent.pid(), std::process::id());
        assert!(parent.is_current());
        // SAFETY: fork has no preconditions; the child only reads atomics and calls getpid
        // and _exit (async-signal-safe) before it ends.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let child = Epoch::current();
            // SAFETY: getpid has no preconditions.
            let pid = unsafe { libc::getpid() } as u32;
            let ok = !parent.is_current() && child.is_current() && child.pid() == pid;
            // SAFETY: ends the child without running the parent's atexit state.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; status is a valid out-param.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert!(parent.is_current(), "the parent's epoch changed");
    }
}
