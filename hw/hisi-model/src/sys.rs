//! The model's system-call seam: the completion eventfd, instance slot locks (`flock`) and
//! the user id. Every `unsafe` block of the crate's OS use lives here.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The calling process's real user id.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// A queue's completion event: an `eventfd` the device writes and `wait` polls.
///
/// The descriptor is held in an atomic so a forked child can close its copy through a
/// shared reference ([`EventFd::close`]); after that every operation fails with `EBADF`.
#[derive(Debug)]
pub struct EventFd {
    fd: AtomicI32,
}

impl EventFd {
    /// A new non-blocking, close-on-exec eventfd with count 0.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EventFd {
            fd: AtomicI32::new(fd),
        })
    }

    fn raw(&self) -> io::Result<RawFd> {
        match self.fd.load(Ordering::Acquire) {
            fd if fd >= 0 => Ok(fd),
            _ => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    /// The descriptor while open (for an outside event loop to poll; still owned here).
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.raw().ok()
    }

    /// Clears the event without waiting: one non-blocking read (an ASYNC watcher clears it
    /// on every reap, so no poll first). True if it was raised.
    fn take(&self, fd: RawFd) -> io::Result<bool> {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
        let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
        if n == 8 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(false),
            _ => Err(e),
        }
    }

    /// Raises the event (adds 1 to the counter).
    pub fn signal(&self) -> io::Result<()> {
        let fd = self.raw()?;
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an fd we own.
        let n = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
        if n == 8 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        // EAGAIN: the counter is at its maximum, so the event is pending anyway.
        if e.raw_os_error() == Some(libc::EAGAIN) {
            Ok(())
        } else {
            Err(e)
        }
    }

    /// Waits up to `timeout` for the event, then clears it. True if it was raised.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let fd = self.raw()?;
        if timeout.is_zero() {
            return self.take(fd);
        }
        // A timeout too large for an Instant means: wait for the event (in year-long polls).
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(365 * 24 * 3600),
            };
            let ts = libc::timespec {
                tv_sec: left.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            };
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd and a valid timespec, both live for the call.
            let r = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            if r > 0 && pfd.revents & libc::POLLIN != 0 {
                let mut v: u64 = 0;
                // SAFETY: reads 8 bytes into a live u64; the fd is non-blocking, so a
                // concurrent reader that emptied it gives EAGAIN, which is fine.
                let _ = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
                return Ok(true);
            }
            if r > 0 {
                return Err(io::Error::other(format!(
                    "eventfd poll revents {:#x}",
                    pfd.revents
                )));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// Closes the descriptor (idempotent).
    pub fn close(&self) {
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: we owned `fd` and nobody else can obtain it any more (swapped out).
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        self.close();
    }
}

/// An exclusive `flock` on an instance slot file, held while the descriptor is open.
#[derive(Debug)]
pub struct SlotLock {
    _fd: OwnedFd,
}

fn open_slot(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

fn try_flock(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor we own; no pointers.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

/// Takes the slot at `path` if no open file description holds it. `None` if taken.
pub fn try_lock_slot(path: &Path) -> io::Result<Option<SlotLock>> {
    let file = open_slot(path)?;
    if try_flock(&file)? {
        Ok(Some(SlotLock { _fd: file.into() }))
    } else {
        Ok(None)
    }
}

/// True if the slot at `path` could be taken right now (it is locked and released again).
pub fn slot_is_free(path: &Path) -> io::Result<bool> {
    // Dropping the lock closes the descriptor, which releases the flock.
    Ok(try_lock_slot(path)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_signal_then_wait() {
        let e = EventFd::new().unwrap();
        assert!(!e.wait(Duration::from_millis(5)).unwrap());
        e.signal().unwrap();
        e.signal().unwrap();
        assert!(e.wait(Duration::MAX).unwrap());
        // Reading cleared it.
        assert!(!e.wait(Duration::ZERO).unwrap());
        e.close();
        e.close();
        assert!(e.signal().is_err());
        assert!(e.wait(Duration::ZERO).is_err());
    }

    #[test]
    fn slot_lock_excludes_other_descriptions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("slot-0");
        assert!(slot_is_free(&p).unwrap());
        let held = try_lock_slot(&p).unwrap().unwrap();
        assert!(!slot_is_free(&p).unwrap());
        assert!(try_lock_slot(&p).unwrap().is_none());
        drop(held);
        assert!(slot_is_free(&p).unwrap());
    }
}
