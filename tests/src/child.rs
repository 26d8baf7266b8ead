//! A check run in a forked child: the fork tests' one way to fork, catch a panic in the
//! child, leave it with `_exit` and read its verdict.
//!
//! Forking a process that has other threads is sound only if the child touches nothing
//! those threads may hold locked; the tests that use this run one test per binary.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// How the child ended, when it did not pass.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildFailure {
    /// The check returned `false`.
    Failed,
    /// The check panicked.
    Panicked,
    /// The child was killed by this signal (e.g. it touched memory it must not).
    Signalled(i32),
    /// `fork` or `waitpid` failed with this errno.
    Os(i32),
}

const PASSED: i32 = 0;
const FAILED: i32 = 1;
const PANICKED: i32 = 2;

/// Runs `check` in a forked child and waits for it. The parent's state is untouched by
/// whatever the child does; the child leaves with `_exit`, running neither the parent's
/// atexit handlers nor destructors.
pub fn run_in_child(check: impl FnOnce() -> bool) -> Result<(), ChildFailure> {
    // SAFETY: fork has no memory-safety preconditions of its own; the child runs only
    // `check` (the caller's test code, in a binary with no other test thread) and leaves
    // with `_exit` below.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ChildFailure::Os(errno()));
    }
    if pid == 0 {
        let code = match catch_unwind(AssertUnwindSafe(check)) {
            Ok(true) => PASSED,
            Ok(false) => FAILED,
            Err(_) => PANICKED,
        };
        // SAFETY: ends the child at once; nothing of the parent's runs in it.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our own child and `status` a valid out-pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(ChildFailure::Os(errno()));
    }
    if libc::WIFSIGNALED(status) {
        return Err(ChildFailure::Signalled(libc::WTERMSIG(status)));
    }
    match libc::WEXITSTATUS(status) {
        PASSED => Ok(()),
        FAILED => Err(ChildFailure::Failed),
        _ => Err(ChildFailure::Panicked),
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_come_back_from_the_child() {
        assert_eq!(run_in_child(|| true), Ok(()));
        assert_eq!(run_in_child(|| false), Err(ChildFailure::Failed));
        assert_eq!(
            run_in_child(|| panic!("in the child")),
            Err(ChildFailure::Panicked)
        );
        assert_eq!(
            run_in_child(|| {
                // SAFETY: raising a signal at ourselves; the child dies of it.
                unsafe { libc::raise(libc::SIGKILL) };
                true
            }),
            Err(ChildFailure::Signalled(libc::SIGKILL))
        );
    }
}
