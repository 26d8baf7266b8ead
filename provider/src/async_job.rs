//! The OpenSSL ASYNC plumbing (design §5a): the current job, its wait ctx, and the wait
//! descriptors the provider hands the application through it. Only the C calls and the
//! descriptors live here; which job waits for what, and who wakes whom, is `inflight`'s.
//!
//! Each wait ctx gets one [`CtxWaiter`], filed in the ctx when its job first pauses and kept
//! with the ctx (its cleanup callback frees it): an eventfd that whoever reaps the job's
//! completion writes, inside an epoll instance that is the descriptor the application polls.
//! The epoll instance lets the one paused job that watches the device (see `inflight`) have
//! the thread's [`DeviceWatch`] (itself an epoll instance holding the queue's completion
//! descriptor and the stall timer) switched on in what its application polls, without the
//! descriptor the application knows ever changing (`openssl speed` allows one per ctx;
//! HAProxy registers them once). Handing the role from one job to another is two
//! `EPOLL_CTL_MOD` calls: a ctx's entry for the device watch, once added, is switched on
//! and off, never taken out and put back.
//!
//! Frames here stay small: this runs on the job's 32 KiB fibre stack.

use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use wd_core::fork::Epoch;

use crate::error::entry_void;
use crate::ffi::{self, ASYNC_WAIT_CTX};
use crate::offload::QueueEvent;

/// The key our descriptor is filed under in every wait ctx (its address is the key).
static KEY: u8 = 0;

fn key() -> *const c_void {
    (&KEY as *const u8).cast()
}

/// The ASYNC job the calling code runs in, if any.
pub struct Job {
    wait_ctx: *mut ASYNC_WAIT_CTX,
}

/// The job the caller runs inside, with its wait ctx; None outside a job (or a job started
/// without a wait ctx, which cannot be given a descriptor: such a job is served
/// synchronously).
pub fn current() -> Option<Job> {
    // SAFETY: ASYNC_get_current_job has no preconditions; it reads a thread-local.
    let job = unsafe { ffi::ASYNC_get_current_job() };
    if job.is_null() {
        return None;
    }
    // SAFETY: `job` is the live current job (non-null, just returned for this thread).
    let wait_ctx = unsafe { ffi::ASYNC_get_wait_ctx(job) };
    (!wait_ctx.is_null()).then_some(Job { wait_ctx })
}

impl Job {
    /// This job's waiter: the one its wait ctx already holds, else a new one filed in it.
    pub fn waiter(&self) -> io::Result<Arc<CtxWaiter>> {
        let mut fd: c_int = -1;
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: wait_ctx is the current job's live ctx; fd and data are valid out-params.
        let found = unsafe { ffi::ASYNC_WAIT_CTX_get_fd(self.wait_ctx, key(), &mut fd, &mut data) };
        if found == 1 && !data.is_null() {
            let ptr = data as *const CtxWaiter;
            // SAFETY: only this module files data under KEY, always an Arc<CtxWaiter> from
            // Arc::into_raw whose count the ctx holds until the cleanup callback drops it;
            // the ctx is alive, so the count is at least one and we may add one.
            let w = unsafe {
                Arc::increment_strong_count(ptr);
                Arc::from_raw(ptr)
            };
            if w.epoch.is_current() {
                return Ok(w);
            }
            // Inherited across fork: its descriptors are shared with the parent's, so the
            // child never touches them. Unfile it (the parent's copy keeps working); the
            // ctx's reference is left to leak in this process.
            // SAFETY: live ctx, our key.
            unsafe { ffi::ASYNC_WAIT_CTX_clear_fd(self.wait_ctx, key()) };
        }
        // Filed in the ctx only when the job first pauses: an application learns of wait
        // descriptors when a job pauses (HAProxy registers them then, and takes every
        // descriptor of the ctx out of its poller when the connection closes).
        Ok(Arc::new(CtxWaiter::new(self.wait_ctx)?))
    }

    /// Files `w`'s descriptor in the wait ctx (once), with the cleanup callback that frees
    /// it with the ctx.
    fn file(&self, w: &Arc<CtxWaiter>) -> io::Result<()> {
        if w.filed.load(Ordering::Acquire) {
            return Ok(());
        }
        let epfd = w
            .poll_fd()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        let raw = Arc::into_raw(w.clone());
        // SAFETY: live ctx; `raw` is an Arc reference the ctx now owns, released by
        // `cleanup` (called by libcrypto when the ctx is freed).
        let ok = unsafe {
            ffi::ASYNC_WAIT_CTX_set_wait_fd(
                self.wait_ctx,
                key(),
                epfd,
                raw as *mut c_void,
                Some(cleanup),
            )
        };
        if ok != 1 {
            // SAFETY: the ctx did not take the reference: take it back.
            drop(unsafe { Arc::from_raw(raw) });
            return Err(io::Error::other("ASYNC_WAIT_CTX_set_wait_fd failed"));
        }
        w.filed.store(true, Ordering::Release);
        Ok(())
    }

    /// Pauses the job until the application resumes it, `w`'s descriptor filed in its wait
    /// ctx first.
    pub fn pause(&self, w: &Arc<CtxWaiter>) -> io::Result<()> {
        self.file(w)?;
        // SAFETY: called inside the current job (checked when `self` was made, and a job
        // resumes on the thread that paused it); no lock or RefCell borrow is held here.
        if unsafe { ffi::ASYNC_pause_job() } != 1 {
            return Err(io::Error::other("ASYNC_pause_job failed"));
        }
        Ok(())
    }
}

/// The cleanup callback libcrypto calls for our descriptor when the wait ctx is freed:
/// closes the descriptors, wakes nobody, drops the ctx's reference.
unsafe extern "C" fn cleanup(
    _ctx: *mut ASYNC_WAIT_CTX,
    _key: *const c_void,
    _fd: c_int,
    data: *mut c_void,
) {
    entry_void(c"wd_async_wait_ctx_cleanup", || {
        if data.is_null() {
            return;
        }
        // SAFETY: `data` is the Arc reference filed by Job::waiter, handed back exactly
        // once by libcrypto here.
        let w = unsafe { Arc::from_raw(data as *const CtxWaiter) };
        w.close();
        let hook = w.on_close.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(hook) = hook {
            hook(&w);
        }
    });
}

/// The descriptors of one wait ctx.
struct Fds {
    /// What the application polls: an epoll instance holding `event` (and, once this ctx's
    /// job has watched the device, the thread's device watch: switched on while it does).
    poll: OwnedFd,
    /// Written by whoever reaps this job's completion.
    event: OwnedFd,
    /// The device watch descriptor in `poll`, and whether it is switched on.
    device: Option<(RawFd, bool)>,
}

/// What is called when a wait ctx goes away with its job (set by `inflight`).
pub type CloseHook = Box<dyn FnOnce(&CtxWaiter) + Send>;

/// One wait ctx's side of the provider: its descriptors, while the ctx lives.
pub struct CtxWaiter {
    fds: Mutex<Option<Fds>>,
    /// The ctx, to read the application's callback (only while `fds` is Some, under the
    /// lock: the cleanup callback, which runs before libcrypto frees the ctx, clears it).
    ctx: usize,
    epoch: Epoch,
    /// Filed in the ctx (which then holds a reference).
    filed: AtomicBool,
    /// `event` was written since the last [`CtxWaiter::clear`] (set after the write, so a
    /// clear that misses it leaves the descriptor readable: one spurious resume, never a
    /// lost one): a resume that nobody notified reads nothing.
    notified: AtomicBool,
    /// Set by `inflight`: what to do for this thread's requests when the ctx goes away.
    pub on_close: Mutex<Option<CloseHook>>,
}

fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn epoll_ctl(ep: RawFd, op: c_int, fd: RawFd) -> io::Result<()> {
    epoll_ctl_events(ep, op, fd, libc::EPOLLIN as u32)
}

/// `epoll_ctl` with the events to report (0: the entry stays, and wakes nobody).
fn epoll_ctl_events(ep: RawFd, op: c_int, fd: RawFd, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a valid event for the call; epoll_ctl checks both descriptors.
    cvt(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) }).map(drop)
}

impl CtxWaiter {
    fn new(ctx: *mut ASYNC_WAIT_CTX) -> io::Result<CtxWaiter> {
        // SAFETY: no pointers; the result is checked.
        let ev = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `ev` is a new descriptor we own.
        let event = unsafe { OwnedFd::from_raw_fd(ev) };
        // SAFETY: no pointers; the result is checked.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `ep` is a new descriptor we own.
        let poll = unsafe { OwnedFd::from_raw_fd(ep) };
        epoll_ctl(poll.as_raw_fd(), libc::EPOLL_CTL_ADD, event.as_raw_fd())?;
        Ok(CtxWaiter {
            fds: Mutex::new(Some(Fds {
                poll,
                event,
                device: None,
            })),
            ctx: ctx as usize,
            epoch: Epoch::current(),
            filed: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            on_close: Mutex::new(None),
        })
    }

    fn fds(&self) -> MutexGuard<'_, Option<Fds>> {
        self.fds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The descriptor the application polls, while the ctx lives.
    fn poll_fd(&self) -> Option<RawFd> {
        self.fds().as_ref().map(|f| f.poll.as_raw_fd())
    }

    /// True while the wait ctx lives (and was made in this process).
    pub fn alive(&self) -> bool {
        self.epoch.is_current() && self.fds().is_some()
    }

    fn close(&self) {
        self.fds().take();
    }

    /// Tells the job its completion is in: the application's callback if it set one
    /// (`ASYNC_WAIT_CTX_set_callback`), else the job's descriptor becomes readable.
    pub fn notify(&self) {
        let g = self.fds();
        let Some(f) = g.as_ref() else { return };
        if !self.epoch.is_current() {
            return;
        }
        let mut cb: Option<ffi::AsyncCallback> = None;
        let mut arg: *mut c_void = std::ptr::null_mut();
        let ctx = self.ctx as *mut ASYNC_WAIT_CTX;
        // SAFETY: the ctx lives while `fds` is Some (its cleanup clears it under this lock
        // before libcrypto frees the ctx); cb and arg are valid out-params.
        let has_cb = unsafe { ffi::ASYNC_WAIT_CTX_get_callback(ctx, &mut cb, &mut arg) } == 1;
        if let (true, Some(cb)) = (has_cb, cb) {
            // SAFETY: as above; the callback and its argument are the application's,
            // called as ASYNC_WAIT_CTX_set_callback documents.
            unsafe {
                ffi::ASYNC_WAIT_CTX_set_status(ctx, ffi::ASYNC_STATUS_OK);
                cb(arg);
            }
            return;
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd; EAGAIN (counter at its
        // maximum) leaves it readable anyway.
        let _ = unsafe { libc::write(f.event.as_raw_fd(), (&one as *const u64).cast(), 8) };
        self.notified.store(true, Ordering::Release);
    }

    /// Consumes a notification (the job is running again); no system call when there was
    /// none.
    pub fn clear(&self) {
        if !self.notified.swap(false, Ordering::Acquire) {
            return;
        }
        let g = self.fds();
        let Some(f) = g.as_ref() else { return };
        if !self.epoch.is_current() {
            return;
        }
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd (EAGAIN when
        // nothing was written).
        let _ = unsafe { libc::read(f.event.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    /// Switches the thread's device watch `fd` on in what the application polls for this
    /// job (added the first time, or when the ctx last had another device watch).
    pub fn watch(&self, fd: RawFd) -> io::Result<()> {
        let mut g = self.fds();
        let f = g
            .as_mut()
            .filter(|_| self.epoch.is_current())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        let ep = f.poll.as_raw_fd();
        match f.device {
            Some((d, true)) if d == fd => return Ok(()),
            Some((d, false)) if d == fd => {
                match epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd) {
                    Ok(()) => {
                        f.device = Some((fd, true));
                        return Ok(());
                    }
                    // Closed since (the thread's watch went away and its number came back):
                    // the entry left with it; add it anew below.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(e),
                }
            }
            Some((d, _)) => {
                let _ = epoll_ctl(ep, libc::EPOLL_CTL_DEL, d);
            }
            None => {}
        }
        f.device = None;
        match epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
            _ => {}
        }
        f.device = Some((fd, true));
        Ok(())
    }

    /// Switches the device watch off for this job (its entry stays, reporting nothing).
    pub fn unwatch(&self) {
        let mut g = self.fds();
        if let Some(f) = g.as_mut().filter(|_| self.epoch.is_current()) {
            if let Some((d, true)) = f.device {
                let ep = f.poll.as_raw_fd();
                if epoll_ctl_events(ep, libc::EPOLL_CTL_MOD, d, 0).is_err() {
                    // Gone with its descriptor, or not to be switched off: take it out.
                    let _ = epoll_ctl(ep, libc::EPOLL_CTL_DEL, d);
                    f.device = None;
                } else {
                    f.device = Some((d, false));
                }
            }
        }
    }
}

/// The thread's device watch: an epoll instance holding the completion descriptor of the
/// thread's queue and the stall timer, which the watching job's ctx has switched on.
pub struct DeviceWatch {
    poll: OwnedFd,
    timer: StallTimer,
    /// The queue whose descriptor is in `poll`, and whether its completions wake the
    /// watcher (off while it waits for a batch: the timer alone wakes it).
    queue: Option<QueueEvent>,
    queue_on: bool,
}

impl DeviceWatch {
    /// A new watch holding the (disarmed) stall timer, no queue yet.
    pub fn new() -> io::Result<DeviceWatch> {
        // SAFETY: no pointers; the result is checked.
        let ep = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `ep` is a new descriptor we own.
        let poll = unsafe { OwnedFd::from_raw_fd(ep) };
        let timer = StallTimer::new()?;
        epoll_ctl(poll.as_raw_fd(), libc::EPOLL_CTL_ADD, timer.fd())
            .map_err(|e| io::Error::new(e.kind(), format!("stall timer: {e}")))?;
        Ok(DeviceWatch {
            poll,
            timer,
            queue: None,
            queue_on: true,
        })
    }

    /// The descriptor a watching job's ctx polls.
    pub fn fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    /// The stall timer.
    pub fn timer(&self) -> &StallTimer {
        &self.timer
    }

    /// Watches `queue` (the thread's queue now). A new queue whose descriptor has the
    /// number of a dropped one is added anew: the entry of the closed one left the epoll
    /// instance with it.
    pub fn set_queue(&mut self, queue: QueueEvent) -> io::Result<()> {
        if self.queue == Some(queue) {
            return Ok(());
        }
        self.forget_queue();
        let (ep, fd) = (self.poll.as_raw_fd(), queue.fd);
        match epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("queue descriptor {fd}: {e}"),
                ))
            }
            _ => {}
        }
        self.queue = Some(queue);
        self.queue_on = true;
        Ok(())
    }

    /// Lets the queue's completions wake the watcher (`on`), or not: the stall timer alone
    /// does while the watcher waits for a batch (coalesce.rs). One `EPOLL_CTL_MOD` when
    /// it changes.
    pub fn queue_events(&mut self, on: bool) -> io::Result<()> {
        let Some(QueueEvent { fd, .. }) = self.queue else {
            return Ok(());
        };
        if self.queue_on == on {
            return Ok(());
        }
        let events = if on { libc::EPOLLIN as u32 } else { 0 };
        epoll_ctl_events(self.poll.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, events)?;
        self.queue_on = on;
        Ok(())
    }

    /// Stops watching the queue (it failed or was dropped: a later queue may get the same
    /// descriptor number, and must be added anew).
    pub fn forget_queue(&mut self) {
        if let Some(QueueEvent { fd: old, .. }) = self.queue.take() {
            // Already closed: it left by itself.
            let _ = epoll_ctl(self.poll.as_raw_fd(), libc::EPOLL_CTL_DEL, old);
        }
    }
}

/// A per-thread stall timer: a timerfd the watching job polls, armed to the oldest
/// deadline, so a stalled engine resumes the job to time out (it never fires otherwise).
pub struct StallTimer {
    fd: OwnedFd,
}

impl StallTimer {
    /// A new, disarmed timer.
    pub fn new() -> io::Result<StallTimer> {
        // SAFETY: no pointers; the result is checked.
        let fd = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            )
        })?;
        // SAFETY: `fd` is a new descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(StallTimer { fd })
    }

    /// The descriptor to watch.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Fires once, `after` from now (at once for zero); re-arming clears a past expiry.
    pub fn arm(&self, after: std::time::Duration) -> io::Result<()> {
        let after = after.max(std::time::Duration::from_micros(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: valid itimerspec for the call, no old value asked for.
        cvt(unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    fn eventfd() -> OwnedFd {
        // SAFETY: no pointers; the result is checked.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }).unwrap();
        // SAFETY: `fd` is a new descriptor we own.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn signal(fd: &OwnedFd) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
        let n = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        assert_eq!(n, 8);
    }

    /// True if the watch's descriptor reports something readable now.
    fn readable(w: &DeviceWatch) -> bool {
        let mut p = libc::pollfd {
            fd: w.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 1 && p.revents & libc::POLLIN != 0
    }

    /// A queue dropped and replaced by one whose descriptor has the same number (the
    /// kernel hands out the lowest free one) is watched anew: its completions wake the
    /// watcher. Keyed by the descriptor number alone, the replacement was never added, and
    /// the watcher slept until its stall timer.
    #[test]
    fn a_replacement_queue_with_the_same_descriptor_number_is_watched() {
        let mut w = DeviceWatch::new().unwrap();
        let old = eventfd();
        let n = old.as_raw_fd();
        w.set_queue(QueueEvent { fd: n, queue: 1 }).unwrap();
        signal(&old);
        assert!(readable(&w));
        // The old queue's file closes and another takes its number: dup2 does both at once,
        // so no other test thread can take the number in between.
        let other = eventfd();
        // SAFETY: both descriptors are open; `n` is given up by `old` (into_raw_fd), and
        // after dup2 it is owned by `new` alone.
        let new = unsafe {
            let n = old.into_raw_fd();
            cvt(libc::dup2(other.as_raw_fd(), n)).unwrap();
            OwnedFd::from_raw_fd(n)
        };
        drop(other);
        assert!(!readable(&w), "the closed file left the epoll set");
        w.set_queue(QueueEvent { fd: n, queue: 2 }).unwrap();
        signal(&new);
        assert!(
            readable(&w),
            "the replacement queue's completions wake the watcher"
        );
        // The same queue again: nothing to do, still watched.
        w.set_queue(QueueEvent { fd: n, queue: 2 }).unwrap();
        assert!(readable(&w));
    }
}
