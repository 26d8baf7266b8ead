//! Many requests in flight from one thread (design §5a): an RSA operation called inside an
//! OpenSSL ASYNC job is sent to the thread's queue without waiting, and the job pauses until
//! its completion is in. Whoever runs next on the thread reaps every completion the queue
//! holds and routes each, by tag, to the job that sent it (writing that job's descriptor).
//!
//! Nothing polls in the background: one paused job of the thread, the *watcher*, has the
//! thread's device watch (an epoll instance holding the queue's completion descriptor —
//! uacce: the queue fd; the model: its eventfd — and the thread's stall timer) switched on
//! in the descriptor its application polls, so the device's completion event resumes it. When the watcher's own request is done it hands the role to
//! another paused job. The stall timer is armed to the watcher's deadline: a stalled engine
//! resumes it to time out, and the thread's queue is dropped (its requests go to software).
//! With many requests in flight the watcher waits for a batch of completions instead of
//! each one (coalesce.rs): the timer wakes it, the queue's event is switched off meanwhile.
//!
//! A paused job may never be resumed (its wait ctx freed, the process forked): nothing here
//! holds a lock or a borrow across a pause, and every request's DMA block belongs to the
//! queue, so a completion nobody waits for any more is dropped when it comes.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use wd_core::fork::Epoch;
use wd_core::Error;

use crate::async_job::{CtxWaiter, DeviceWatch, Job};
use crate::coalesce::Pace;
use crate::offload::{Completion, DeviceSide, QueueEvent};
use crate::stats::{self, Counter};

/// One request in flight.
struct Pending {
    waiter: Arc<CtxWaiter>,
    done: Option<wd_core::Result<Vec<u8>>>,
    deadline: Instant,
}

/// The paused job that watches the device for the thread.
struct Watch {
    waiter: Arc<CtxWaiter>,
    queue: QueueEvent,
}

/// The thread's requests in flight.
struct Table {
    epoch: Epoch,
    next_tag: u64,
    pending: HashMap<u64, Pending>,
    /// Jobs waiting for a free ring slot, with their deadlines.
    slot_waiters: VecDeque<(Arc<CtxWaiter>, Instant)>,
    watcher: Option<Watch>,
    /// The queue's completion descriptor and the stall timer, made on first use.
    device: Option<DeviceWatch>,
    /// When the stall timer fires (None: disarmed). A hand-over to a watcher whose deadline
    /// is later leaves it alone: it then fires early, and the watcher resumed by it re-arms
    /// it to its own deadline (`plan_wait`).
    timer_at: Option<Instant>,
    /// The pace of completions, for coalesced waits.
    pace: Pace,
    /// The longest coalesced wait (`async_coalesce_us`; zero: never).
    coalesce: Duration,
}

type Shared = Arc<Mutex<Table>>;

thread_local! {
    static TABLE: RefCell<Option<Shared>> = const { RefCell::new(None) };
}

fn new_table() -> Shared {
    Arc::new(Mutex::new(Table {
        epoch: Epoch::current(),
        next_tag: 1,
        pending: HashMap::new(),
        slot_waiters: VecDeque::new(),
        watcher: None,
        device: None,
        timer_at: None,
        pace: Pace::default(),
        coalesce: Duration::ZERO,
    }))
}

/// The calling thread's table (a fresh one in a forked child: the parent's is forgotten,
/// never touched).
fn table() -> Shared {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if let Some(s) = t.as_ref() {
            if lock(s).epoch.is_current() {
                return s.clone();
            }
            std::mem::forget(t.take());
        }
        let s = new_table();
        *t = Some(s.clone());
        s
    })
}

fn lock(s: &Shared) -> MutexGuard<'_, Table> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl Table {
    /// Records the completions; returns the jobs to wake (other than `me`).
    fn route(&mut self, done: Vec<Completion>, me: &Arc<CtxWaiter>) -> Vec<Arc<CtxWaiter>> {
        let mut wake = Vec::new();
        let freed = done.len();
        for (tag, result) in done {
            // A tag nobody waits for any more (timed out, job freed): dropped.
            if let Some(p) = self.pending.get_mut(&tag) {
                p.done = Some(result);
                if !Arc::ptr_eq(&p.waiter, me) {
                    wake.push(p.waiter.clone());
                }
            }
        }
        for _ in 0..freed {
            match self.slot_waiters.pop_front() {
                Some((w, _)) if !Arc::ptr_eq(&w, me) => wake.push(w),
                Some(_) => {}
                None => break,
            }
        }
        wake
    }

    /// Every request in flight failed with the queue (it was dropped): each gets `why`.
    fn fail_all(&mut self, why: &str) -> Vec<Arc<CtxWaiter>> {
        let mut wake = Vec::new();
        for p in self.pending.values_mut().filter(|p| p.done.is_none()) {
            p.done = Some(Err(Error::Device(why.to_string())));
            wake.push(p.waiter.clone());
        }
        wake.extend(self.slot_waiters.drain(..).map(|(w, _)| w));
        if let Some(w) = self.watcher.take() {
            w.waiter.unwatch();
        }
        // The queue is gone; its successor is added anew even if its number is the same.
        if let Some(d) = &mut self.device {
            d.forget_queue();
        }
        wake
    }

    fn is_watcher(&self, me: &Arc<CtxWaiter>) -> bool {
        self.watcher
            .as_ref()
            .is_some_and(|w| Arc::ptr_eq(&w.waiter, me))
    }

    /// The deadline `w` waits under (its request's, or its slot wait's).
    fn deadline_of(&self, w: &Arc<CtxWaiter>) -> Option<Instant> {
        self.pending
            .values()
            .filter(|p| p.done.is_none() && Arc::ptr_eq(&p.waiter, w))
            .map(|p| p.deadline)
            .chain(
                self.slot_waiters
                    .iter()
                    .filter(|(x, _)| Arc::ptr_eq(x, w))
                    .map(|(_, d)| *d),
            )
            .min()
    }

    /// Makes `w` the watcher of `queue` (its deadline arms the stall timer).
    fn set_watcher(&mut self, w: Arc<CtxWaiter>, queue: QueueEvent) -> std::io::Result<()> {
        if self.device.is_none() {
            self.device = Some(DeviceWatch::new()?);
        }
        let device = self.device.as_mut().expect("made above");
        device.set_queue(queue)?;
        w.watch(device.fd())?;
        self.watcher = Some(Watch {
            waiter: w.clone(),
            queue,
        });
        self.plan_wait(&w)
    }

    /// Requests in flight (sent, completion not yet reaped).
    fn in_flight(&self) -> usize {
        self.pending.values().filter(|p| p.done.is_none()).count()
    }

    /// Sets up how the watcher `me` is woken, each time it pauses: for a batch of
    /// completions (the stall timer set to the batch's time, or to its deadline if sooner,
    /// and the queue's event switched off) when enough requests are about, else by the
    /// queue's event, with the stall timer at its deadline. A timer armed already to fire
    /// between now and that deadline (an earlier watcher's, or a batch's) is left alone:
    /// the watcher it resumes early plans again.
    fn plan_wait(&mut self, me: &Arc<CtxWaiter>) -> std::io::Result<()> {
        let now = Instant::now();
        let deadline = self.deadline_of(me).unwrap_or(now);
        let batch = self.pace.wait(self.pending.len(), self.coalesce);
        let Some(device) = self.device.as_mut() else {
            return Ok(());
        };
        match batch {
            Some(t) => {
                let at = (now + t).min(deadline);
                device.queue_events(false)?;
                device.timer().arm(at.saturating_duration_since(now))?;
                self.timer_at = Some(at);
                stats::bump(Counter::AsyncCoalescedWaits);
            }
            None => {
                device.queue_events(true)?;
                if !self.timer_at.is_some_and(|t| t > now && t <= deadline) {
                    device
                        .timer()
                        .arm(deadline.saturating_duration_since(now))?;
                    self.timer_at = Some(deadline);
                }
            }
        }
        Ok(())
    }

    /// `me` stops watching; the role passes to another paused job still waiting: the one
    /// whose request was sent first (an engine takes requests in order, so the next
    /// completion is most likely its own and wakes the job it is for, without a second
    /// wake-up routed through another job).
    fn resign(&mut self, me: &Arc<CtxWaiter>) {
        if !self.is_watcher(me) {
            return;
        }
        let w = self.watcher.take().expect("checked");
        w.waiter.unwatch();
        let next = self
            .pending
            .iter()
            .filter(|(_, p)| p.done.is_none() && !Arc::ptr_eq(&p.waiter, me) && p.waiter.alive())
            .min_by_key(|(tag, _)| **tag)
            .map(|(_, p)| &p.waiter)
            .or_else(|| {
                self.slot_waiters
                    .iter()
                    .map(|(w, _)| w)
                    .find(|x| !Arc::ptr_eq(x, me) && x.alive())
            })
            .cloned();
        if let Some(next) = next {
            if let Err(e) = self.set_watcher(next.clone(), w.queue) {
                // Without a watcher no completion event reaches the application: wake
                // the job so it reaps (and watches) itself when it runs.
                wd_core::wd_log!(Warn, "wd provider: async watcher hand-over: {e}");
                next.notify();
            }
        }
    }

    /// Forgets everything of a wait ctx that went away.
    fn drop_waiter(&mut self, w: &CtxWaiter) {
        self.pending
            .retain(|_, p| !std::ptr::eq(Arc::as_ptr(&p.waiter), w));
        self.slot_waiters
            .retain(|(x, _)| !std::ptr::eq(Arc::as_ptr(x), w));
        if let Some(me) = self
            .watcher
            .as_ref()
            .filter(|x| std::ptr::eq(Arc::as_ptr(&x.waiter), w))
            .map(|x| x.waiter.clone())
        {
            self.resign(&me);
        }
    }
}

fn wake(jobs: Vec<Arc<CtxWaiter>>) {
    for w in jobs {
        w.notify();
    }
}

/// When a wait ctx is freed with its job paused, the thread forgets its requests and the
/// watcher role moves on.
fn install_close_hook(me: &Arc<CtxWaiter>, shared: &Shared) {
    let mut hook = me.on_close.lock().unwrap_or_else(|e| e.into_inner());
    if hook.is_some() {
        return;
    }
    let weak: Weak<Mutex<Table>> = Arc::downgrade(shared);
    *hook = Some(Box::new(move |w: &CtxWaiter| {
        if let Some(s) = weak.upgrade() {
            lock(&s).drop_waiter(w);
        }
    }));
}

/// Reaps the thread's queue and routes what it held; on a queue-level failure every
/// request in flight fails with it (the pool has released the queue).
fn reap(side: &DeviceSide, shared: &Shared, me: &Arc<CtxWaiter>) -> Option<QueueEvent> {
    let clear = lock(shared).is_watcher(me);
    let mut done = Vec::new();
    let r = side.reap(clear, &mut done);
    let wake_list = {
        let mut t = lock(shared);
        let reaped = done.len();
        let mut w = t.route(done, me);
        let in_flight = t.in_flight();
        t.pace.reaped(reaped, in_flight, clear, Instant::now());
        if let Err(e) = &r {
            w.extend(t.fail_all(&format!("the thread's HPRE queue failed: {e}")));
        }
        w
    };
    wake(wake_list);
    r.ok().flatten()
}

/// Makes sure a paused job watches the device before `me` pauses: `me` if none does (then
/// the queue is armed: only the watcher's reaps arm it). False when none can (the queue has
/// no pollable descriptor).
fn ensure_watcher(
    side: &DeviceSide,
    shared: &Shared,
    me: &Arc<CtxWaiter>,
    queue: Option<QueueEvent>,
) -> bool {
    let Some(queue) = queue else { return false };
    let mut t = lock(shared);
    if let Some(w) = &t.watcher {
        if w.queue == queue && w.waiter.alive() {
            if t.is_watcher(me) {
                if let Err(e) = t.plan_wait(me) {
                    wd_core::wd_log!(Warn, "wd provider: re-arming the ASYNC stall timer: {e}");
                }
            }
            return true;
        }
        let old = t.watcher.take().expect("checked");
        old.waiter.unwatch();
    }
    match t.set_watcher(me.clone(), queue) {
        Ok(()) => {
            drop(t);
            // A failed arm is the queue failing: the next reap sees it.
            let _ = side.arm();
            true
        }
        Err(e) => {
            wd_core::wd_log!(
                Warn,
                "wd provider: cannot watch the queue (descriptor {}) for ASYNC jobs: {e}",
                queue.fd
            );
            false
        }
    }
}

/// True in a forked child for a table of the parent's.
fn forked(shared: &Shared) -> bool {
    !lock(shared).epoch.is_current()
}

/// Pauses `job` (counted) and consumes its notification when it runs again. A job resumed
/// in a forked child finds its request (and the table and the queue) the parent's: it is
/// not the child's to wait for, and goes to software at once.
fn pause(job: &Job, me: &Arc<CtxWaiter>, shared: &Shared) -> wd_core::Result<()> {
    stats::bump(Counter::AsyncPauses);
    job.pause(me).map_err(|e| Error::io("ASYNC job", e))?;
    if forked(shared) {
        return Err(Error::Device(
            "the process forked while the request was in flight: it is the parent's".into(),
        ));
    }
    me.clear();
    Ok(())
}

/// The raw RSA operation inside `job`: sent without waiting, the job paused until its
/// completion is in (or `timeout` passes: [`Error::Stalled`], after which the thread's queue
/// is dropped). Any error goes to software in the caller, as a synchronous one would.
pub fn run(
    side: &DeviceSide,
    job: &Job,
    key: &hisi_hpre::RsaKey<'_>,
    input: &[u8],
    timeout: Duration,
    coalesce: Duration,
) -> wd_core::Result<Vec<u8>> {
    let me = job
        .waiter()
        .map_err(|e| Error::io("ASYNC wait ctx descriptor", e))?;
    let shared = table();
    install_close_hook(&me, &shared);
    let deadline = Instant::now() + timeout;
    let tag = {
        let mut t = lock(&shared);
        t.coalesce = coalesce;
        let tag = t.next_tag;
        t.next_tag = t.next_tag.wrapping_add(1).max(1);
        tag
    };
    // Submit; a full ring pauses the job until a completion frees a slot.
    loop {
        match side.submit(key, input, tag) {
            Ok(()) => break,
            Err(Error::RingFull) => {
                stats::bump(Counter::AsyncRingFull);
                let fd = reap(side, &shared, &me);
                if side.submit(key, input, tag).is_ok() {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::Stalled(timeout));
                }
                lock(&shared).slot_waiters.push_back((me.clone(), deadline));
                if !ensure_watcher(side, &shared, &me, fd) {
                    me.notify();
                }
                let r = pause(job, &me, &shared);
                if r.is_err() && forked(&shared) {
                    return r.map(|()| Vec::new());
                }
                let mut t = lock(&shared);
                t.slot_waiters.retain(|(w, _)| !Arc::ptr_eq(w, &me));
                t.resign(&me);
                drop(t);
                r?;
            }
            Err(e) => return Err(e),
        }
    }
    stats::bump(Counter::AsyncSubmitted);
    {
        let mut t = lock(&shared);
        let before = t.in_flight();
        t.pace.sent(before, Instant::now());
        t.pending.insert(
            tag,
            Pending {
                waiter: me.clone(),
                done: None,
                deadline,
            },
        );
    }
    loop {
        let fd = reap(side, &shared, &me);
        let mut t = lock(&shared);
        let finished = match t.pending.get(&tag) {
            Some(p) if p.done.is_some() => t.pending.remove(&tag).and_then(|p| p.done),
            Some(_) => None,
            None => Some(Err(Error::Device(
                "the request in flight was lost with its queue".into(),
            ))),
        };
        if let Some(done) = finished {
            t.resign(&me);
            return done;
        }
        if Instant::now() >= deadline {
            t.pending.remove(&tag);
            t.resign(&me);
            drop(t);
            // A stalled engine: the queue is not trusted again, and the others' requests
            // on it go to software now rather than each after its own timeout.
            let e = side.drop_thread_queue(Error::Stalled(timeout));
            let w = lock(&shared).fail_all(&format!("the thread's HPRE queue stalled: {e}"));
            wake(w);
            return Err(e);
        }
        drop(t);
        if !ensure_watcher(side, &shared, &me, fd) {
            // No descriptor to hand the application (a test twin of the kernel): run the
            // job again at once, as a poll.
            me.notify();
        }
        if let Err(e) = pause(job, &me, &shared) {
            if forked(&shared) {
                // Nothing of the parent's (its table, descriptors, timer) is touched.
                return Err(e);
            }
            let mut t = lock(&shared);
            t.pending.remove(&tag);
            t.resign(&me);
            return Err(e);
        }
    }
}

/// A synchronous request on a thread whose queue has requests of paused jobs in flight:
/// sent tagged, and the thread waits as a synchronous caller does, routing the other
/// completions it reaps to their jobs.
pub fn run_alongside(
    side: &DeviceSide,
    key: &hisi_hpre::RsaKey<'_>,
    input: &[u8],
) -> wd_core::Result<Vec<u8>> {
    let shared = table();
    let tag = {
        let mut t = lock(&shared);
        let tag = t.next_tag;
        t.next_tag = t.next_tag.wrapping_add(1).max(1);
        tag
    };
    side.submit(key, input, tag)?;
    let mut ours = None;
    while ours.is_none() {
        let mut done = Vec::new();
        let r = side.reap_blocking(&mut done);
        let mut wake_list = Vec::new();
        {
            let mut t = lock(&shared);
            for (t_, res) in done {
                if t_ == tag {
                    ours = Some(res);
                    continue;
                }
                if let Some(p) = t.pending.get_mut(&t_) {
                    p.done = Some(res);
                    wake_list.push(p.waiter.clone());
                }
            }
            if let Err(e) = &r {
                wake_list.extend(t.fail_all(&format!("the thread's HPRE queue failed: {e}")));
            }
        }
        wake(wake_list);
        r?;
    }
    ours.expect("loop ends with our completion")
}

/// The device call of one raw RSA operation: inside an ASYNC job, in flight while the job
/// pauses; outside one, synchronous as always (routing what it reaps when the thread's
/// queue also carries paused jobs' requests).
pub fn call(
    side: &DeviceSide,
    key: &hisi_hpre::RsaKey<'_>,
    input: &[u8],
    timeout: Duration,
    coalesce: Duration,
) -> wd_core::Result<Vec<u8>> {
    match crate::async_job::current() {
        Some(job) => run(side, &job, key, input, timeout, coalesce),
        None if side.in_flight() != 0 => run_alongside(side, key, input),
        None => side.run(key, input),
    }
}
