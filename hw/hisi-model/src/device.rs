//! The device side of the QM: per-queue ring state as the hardware keeps it, the doorbell
//! handling, and the engine threads that fetch SQEs, run them through an [`Engine`] and
//! post CQEs.
//!
//! Threads block on a condition variable while every queue is idle and spin only briefly
//! after a completion. The doorbell path (the caller's thread) stores the new tail and
//! takes the lock only when an engine is asleep.

#![forbid(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use wd_core::Region;

use crate::config::{ApiVersion, FaultConfig};
use crate::engine::{Engine, Failure, Job, Outcome, MAX_SQE_WORDS};
use crate::iommu::{Iommu, IovaAllocator};
use crate::layout::qm::{
    Doorbell, DoorbellFormat, DusLayout, CMD_CQ, CMD_SQ, CQE_PHASE, CQE_SQ_HEAD, CQE_SQ_NUM, CQE_W7,
};
use crate::stats::Counters;
use crate::sys::EventFd;

/// `sq_head` of a corrupted CQE: out of range for every depth.
pub const CORRUPT_SQ_HEAD: u16 = u16::MAX;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fault knobs readable without a lock on every request.
#[derive(Debug, Default)]
pub(crate) struct LiveFaults {
    error_every: AtomicU32,
    error_ratio: AtomicU64,
    stall: AtomicBool,
    stall_after: AtomicU64,
    lost_doorbell_every: AtomicU32,
    corrupt_cqe_every: AtomicU32,
    tx_stop: AtomicBool,
    rx_stop: AtomicBool,
}

impl LiveFaults {
    pub fn set(&self, f: &FaultConfig) {
        let r = Ordering::Relaxed;
        self.error_every.store(f.error_every, r);
        self.error_ratio
            .store(f.error_ratio.clamp(0.0, 1.0).to_bits(), r);
        self.stall.store(f.stall, r);
        self.stall_after.store(f.stall_after, r);
        self.lost_doorbell_every.store(f.lost_doorbell_every, r);
        self.corrupt_cqe_every.store(f.corrupt_cqe_every, r);
        self.tx_stop.store(f.tx_stop, r);
        self.rx_stop.store(f.rx_stop, Ordering::SeqCst);
    }

    pub fn get(&self) -> FaultConfig {
        let r = Ordering::Relaxed;
        FaultConfig {
            error_every: self.error_every.load(r),
            error_ratio: f64::from_bits(self.error_ratio.load(r)),
            stall: self.stall.load(r),
            stall_after: self.stall_after.load(r),
            lost_doorbell_every: self.lost_doorbell_every.load(r),
            corrupt_cqe_every: self.corrupt_cqe_every.load(r),
            tx_stop: self.tx_stop.load(r),
            rx_stop: self.rx_stop.load(r),
        }
    }
}

/// True for every `every`-th call while the knob is on (0 = off: no shared write at all).
fn nth(counter: &AtomicU64, every: u32) -> bool {
    if every == 0 {
        return false;
    }
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    n.is_multiple_of(u64::from(every))
}

/// State shared by all devices of a backend, across forks.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub faults: LiveFaults,
    pub stats: Counters,
    pub iova: IovaAllocator,
}

#[derive(Debug)]
struct CqState {
    tail: u32,
    phase: bool,
}

/// One queue as the device sees it.
#[derive(Debug)]
pub(crate) struct HwQueue {
    pub qid: u16,
    pub qc_type: u16,
    pub layout: DusLayout,
    pub dus: Region,
    pub iommu: Iommu,
    /// The fake uacce kernel's translation replacing `iommu`: SVA, or the no-SVA
    /// static-share region.
    pub uacce_dma: std::sync::OnceLock<crate::uacce_fake::UacceDma>,
    pub event: EventFd,
    /// Last SQ tail announced by a doorbell.
    sq_tail: AtomicU32,
    /// Next slot the device fetches; written only under `fetch`.
    fetch: Mutex<u32>,
    fetch_pos: AtomicU32,
    /// Last CQ head announced by a doorbell.
    cq_head: AtomicU32,
    /// Where the engines write CQEs (one at a time); never taken on the doorbell path.
    cq: Mutex<CqState>,
    /// `cq.tail` once its CQE is written, for the arm doorbell to read without the lock.
    cq_posted: AtomicU32,
    /// The driver asked for a completion event (CQ doorbell with the priority bit); the
    /// next posted CQE, or a CQ found non-empty at the arm, raises `event` once. Set and
    /// taken without a lock: the arm stores it and then reads `cq_posted`, an engine stores
    /// `cq_posted` and then takes it (both sequentially consistent), so a CQE posted around
    /// an arm is always seen by one of the two (rarely by both: one spurious event).
    cq_armed: AtomicBool,
    /// False once released; engines hold it for reading while they work on the queue.
    live: RwLock<bool>,
    pub released: AtomicBool,
    /// Stopped by the device itself (CQ overflow).
    stopped: AtomicBool,
}

impl HwQueue {
    pub fn new(qid: u16, qc_type: u16, layout: DusLayout, dus: Region, event: EventFd) -> Self {
        HwQueue {
            qid,
            qc_type,
            layout,
            dus,
            iommu: Iommu::default(),
            uacce_dma: std::sync::OnceLock::new(),
            event,
            sq_tail: AtomicU32::new(0),
            fetch: Mutex::new(0),
            fetch_pos: AtomicU32::new(0),
            cq_head: AtomicU32::new(0),
            cq: Mutex::new(CqState {
                tail: 0,
                phase: true,
            }),
            cq_posted: AtomicU32::new(0),
            cq_armed: AtomicBool::new(false),
            live: RwLock::new(true),
            released: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }
    }

    fn ready(&self) -> bool {
        !self.released.load(Ordering::Relaxed)
            && !self.stopped.load(Ordering::Relaxed)
            && self.fetch_pos.load(Ordering::Acquire) != self.sq_tail.load(Ordering::SeqCst)
    }

    /// Fetches the next announced SQE: its slot and words.
    fn take(&self) -> Option<(u32, [u32; MAX_SQE_WORDS])> {
        if !self.ready() {
            return None;
        }
        let mut fetch = lock(&self.fetch);
        let slot = *fetch;
        if slot == self.sq_tail.load(Ordering::SeqCst) {
            return None;
        }
        let mut words = [0u32; MAX_SQE_WORDS];
        let n = self.layout.sqe_size / 4;
        self.dus
            .read_words(self.layout.sqe(slot as usize), &mut words[..n]);
        *fetch = (slot + 1) % self.layout.sq_depth as u32;
        self.fetch_pos.store(*fetch, Ordering::Release);
        Some((slot, words))
    }

    /// Writes the stop words: TX as given, RX as given or if the device stopped the queue.
    pub fn set_stop_words(&self, tx: bool, rx: bool) {
        let _cq = lock(&self.cq);
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        let rx = rx || self.stopped.load(Ordering::SeqCst);
        self.dus.write_u32(self.layout.tx_stop(), u32::from(tx));
        self.dus.write_u32(self.layout.rx_stop(), u32::from(rx));
    }

    /// Marks the queue released and waits until no engine works on it any more.
    pub fn shut(&self) {
        self.released.store(true, Ordering::SeqCst);
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = false;
        self.iommu.clear();
    }
}

/// Per-thread random numbers for the error-ratio knob (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng((t ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One device of this process: its queues and what its engine threads share.
#[derive(Debug)]
pub(crate) struct DeviceCore {
    pub name: String,
    pub engine: Arc<dyn Engine>,
    pub api: ApiVersion,
    pub shared: Arc<Shared>,
    latency: Duration,
    spin: Duration,
    queues: RwLock<Arc<Vec<Arc<HwQueue>>>>,
    sched: Mutex<()>,
    wake: Condvar,
    sleepers: AtomicUsize,
    shutdown: AtomicBool,
    rr: AtomicUsize,
    requests: AtomicU64,
    /// Requests taken, counted while `stall_after` is set.
    taken: AtomicU64,
    sq_doorbells: AtomicU64,
    cqes: AtomicU64,
    /// When the last SQ doorbell rang, in ns since `born` (for the engines' spin budget).
    last_sq_doorbell: AtomicU64,
    born: Instant,
}

impl DeviceCore {
    pub fn new(
        name: String,
        engine: Arc<dyn Engine>,
        api: ApiVersion,
        shared: Arc<Shared>,
        latency: Duration,
        spin: Duration,
    ) -> Self {
        DeviceCore {
            name,
            engine,
            api,
            shared,
            latency,
            spin,
            queues: RwLock::new(Arc::new(Vec::new())),
            sched: Mutex::new(()),
            wake: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            rr: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            sq_doorbells: AtomicU64::new(0),
            cqes: AtomicU64::new(0),
            last_sq_doorbell: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    fn since_born(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.born).as_nanos() as u64
    }

    fn queues(&self) -> Arc<Vec<Arc<HwQueue>>> {
        self.queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The queues open on this device now.
    pub fn open_queues(&self) -> Vec<Arc<HwQueue>> {
        self.queues().as_ref().clone()
    }

    pub fn add_queue(&self, q: Arc<HwQueue>) {
        let mut g = self.queues.write().unwrap_or_else(|e| e.into_inner());
        let mut v = g.as_ref().clone();
        v.push(q);
        *g = Arc::new(v);
    }

    pub fn remove_queue(&self, q: &Arc<HwQueue>) {
        let mut g = self.queues.write().unwrap_or_else(|e| e.into_inner());
        let v: Vec<_> = g.iter().filter(|x| !Arc::ptr_eq(x, q)).cloned().collect();
        *g = Arc::new(v);
    }

    fn wake_one(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            // The work was published before `sleepers` was read. A sleeper that counted
            // itself checks for work and waits under `sched`: once we have held it, that
            // sleeper either saw the work or is waiting, and the notification reaches it.
            // Notifying after the lock is released spares the woken engine from blocking
            // again on the lock we still hold (a second futex call on the ringing thread,
            // which is the application's; a real doorbell is one posted store).
            drop(lock(&self.sched));
            self.wake.notify_one();
        }
    }

    /// Restarts the every-Nth fault counters (new knobs count from now).
    pub fn reset_fault_counters(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.taken.store(0, Ordering::Relaxed);
        self.sq_doorbells.store(0, Ordering::Relaxed);
        self.cqes.store(0, Ordering::Relaxed);
    }

    /// Stops the engine threads (they exit at their next look at the flag).
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _g = lock(&self.sched);
        self.wake.notify_all();
    }

    /// A 64-bit store into queue `q`'s MMIO region at `offset` (the doorbell hook).
    pub fn mmio_write(&self, q: &HwQueue, format: DoorbellFormat, offset: usize, value: u64) {
        let stats = &self.shared.stats;
        if offset != format.offset() || q.released.load(Ordering::Relaxed) {
            Counters::bump(&stats.bad_doorbells);
            return;
        }
        let db = Doorbell::decode(format, value);
        if db.qn != q.qid {
            Counters::bump(&stats.bad_doorbells);
            return;
        }
        match db.cmd {
            CMD_SQ if usize::from(db.index) < q.layout.sq_depth => {
                Counters::bump(&stats.doorbells);
                if nth(
                    &self.sq_doorbells,
                    self.shared
                        .faults
                        .lost_doorbell_every
                        .load(Ordering::Relaxed),
                ) {
                    Counters::bump(&stats.lost_doorbells);
                    return;
                }
                q.sq_tail.store(u32::from(db.index), Ordering::SeqCst);
                self.last_sq_doorbell
                    .store(self.since_born(Instant::now()), Ordering::Relaxed);
                self.wake_one();
            }
            CMD_CQ if usize::from(db.index) < q.layout.cq_depth => {
                Counters::bump(&stats.doorbells);
                let head = u32::from(db.index);
                q.cq_head.store(head, Ordering::SeqCst);
                if db.priority == 1 {
                    // No lock shared with the engines (the submitting thread arms on every
                    // reap of an ASYNC watcher: taking the CQ lock there contended with the
                    // engines posting CQEs).
                    q.cq_armed.store(true, Ordering::SeqCst);
                    if q.cq_posted.load(Ordering::SeqCst) != head
                        && q.cq_armed.swap(false, Ordering::SeqCst)
                    {
                        // Completions the driver has not consumed yet: raise the event
                        // now, as uacce's poll() does for a non-empty CQ.
                        let _ = q.event.signal();
                    }
                }
            }
            _ => Counters::bump(&stats.bad_doorbells),
        }
    }

    fn has_work(&self) -> bool {
        self.queues().iter().any(|q| q.ready())
    }

    fn take_job(&self) -> Option<(Arc<HwQueue>, u32, [u32; MAX_SQE_WORDS])> {
        let qs = self.queues();
        let n = qs.len();
        if n == 0 {
            return None;
        }
        let start = self.rr.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).find_map(|k| {
            let q = &qs[(start + k) % n];
            q.take().map(|(slot, words)| (q.clone(), slot, words))
        })
    }

    /// The body of an engine thread.
    pub fn engine_loop(&self, id: usize) {
        let mut rng = Rng::new(id as u64 + 1);
        let mut last_done: Option<Instant> = None;
        // How long to spin after a completion: the configured `spin` while spinning keeps
        // catching the next request, halved each time the engine had to block after all
        // and the next request came later than `spin` would have waited. On a machine whose
        // cores the application needs too, spinning for requests that come rarely only
        // takes CPU away from it.
        let mut budget = self.spin;
        loop {
            if self.shutdown.load(Ordering::SeqCst) {
                return;
            }
            if let Some((q, slot, words)) = self.take_job() {
                if self.sleepers.load(Ordering::SeqCst) > 0 && self.has_work() {
                    self.wake_one();
                }
                self.run(&q, slot, words, &mut rng);
                last_done = Some(Instant::now());
                continue;
            }
            let Some(done) = last_done else {
                self.block();
                continue;
            };
            if done.elapsed() < budget {
                std::hint::spin_loop();
                continue;
            }
            last_done = None;
            self.block();
            // The gap to the doorbell that woke us, not to the wake-up (which adds the
            // scheduler's latency).
            let rang = self.last_sq_doorbell.load(Ordering::Relaxed);
            let gap = Duration::from_nanos(rang.saturating_sub(self.since_born(done)));
            budget = spin_budget(budget, self.spin, gap);
        }
    }

    /// Blocks until there is work or the device shuts down.
    fn block(&self) {
        let mut g = lock(&self.sched);
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        while !self.shutdown.load(Ordering::SeqCst) && !self.has_work() {
            g = self.wake.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    fn run(&self, q: &HwQueue, slot: u32, fetched: [u32; MAX_SQE_WORDS], rng: &mut Rng) {
        let live = q.live.read().unwrap_or_else(|e| e.into_inner());
        if !*live {
            return;
        }
        let faults = &self.shared.faults;
        let stats = &self.shared.stats;
        let r = Ordering::Relaxed;
        let stall_after = faults.stall_after.load(r);
        if faults.stall.load(r)
            || (stall_after > 0 && self.taken.fetch_add(1, r) + 1 >= stall_after)
        {
            Counters::bump(&stats.stalled);
            return;
        }
        let n = q.layout.sqe_size / 4;
        let mut words = fetched;
        let ratio = f64::from_bits(faults.error_ratio.load(r));
        let injected =
            nth(&self.requests, faults.error_every.load(r)) || (ratio > 0.0 && rng.unit() < ratio);
        let outcome = if injected {
            self.engine.fail(&mut words[..n], Failure::Injected);
            Outcome::Error
        } else {
            let job = Job {
                qc_type: q.qc_type,
                api: self.api,
                dma: match q.uacce_dma.get() {
                    Some(d) => d,
                    None => &q.iommu,
                },
            };
            let engine = &self.engine;
            match catch_unwind(AssertUnwindSafe(|| engine.process(&job, &mut words[..n]))) {
                Ok(o) => o,
                Err(_) => {
                    wd_core::wd_log!(Error, "{}: engine panicked; failing the request", self.name);
                    words = fetched;
                    self.engine.fail(&mut words[..n], Failure::Internal);
                    Outcome::Error
                }
            }
        };
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        self.complete(q, slot, &fetched[..n], &words[..n], outcome);
        drop(live);
    }

    /// Writes the result into SQE slot `slot`, then the CQE (phase word last), then raises
    /// the completion event if armed.
    fn complete(&self, q: &HwQueue, slot: u32, before: &[u32], after: &[u32], outcome: Outcome) {
        let stats = &self.shared.stats;
        let mut cq = lock(&q.cq);
        if q.stopped.load(Ordering::SeqCst) {
            return;
        }
        let depth = q.layout.cq_depth as u32;
        let head = q.cq_head.load(Ordering::SeqCst);
        if (cq.tail + 1) % depth == head {
            // No free CQ slot (the device keeps one free, as the driver keeps one SQ slot
            // free): hardware reports CQ overflow and the queue stops.
            q.stopped.store(true, Ordering::SeqCst);
            q.dus.write_u32(q.layout.rx_stop(), 1);
            Counters::bump(&stats.cq_overflows);
            wd_core::wd_log!(Warn, "{}: queue {} CQ overflow", self.name, q.qid);
            return;
        }
        let base = q.layout.sqe(slot as usize);
        for (i, (b, a)) in before.iter().zip(after).enumerate() {
            if b != a {
                q.dus.write_u32(base + 4 * i, *a);
            }
        }
        let corrupt = nth(
            &self.cqes,
            self.shared.faults.corrupt_cqe_every.load(Ordering::Relaxed),
        );
        let sq_head = if corrupt {
            Counters::bump(&stats.corrupted_cqes);
            CORRUPT_SQ_HEAD
        } else {
            slot as u16
        };
        let off = q.layout.cqe(cq.tail as usize);
        q.dus.write_u32(off, 0);
        q.dus.write_u16(off + 4, 0);
        q.dus.write_u16(off + 6, 0);
        q.dus.write_u16(off + CQE_SQ_HEAD, sq_head);
        q.dus.write_u16(off + CQE_SQ_NUM, q.qid);
        q.dus.write_u16(off + 12, 0);
        // The counters too, so that whoever sees this CQE sees them count it.
        Counters::bump(&stats.cqes_written);
        match outcome {
            Outcome::Ok => Counters::bump(&stats.completed_ok),
            Outcome::Error => Counters::bump(&stats.completed_error),
            Outcome::AddressFault => {
                Counters::bump(&stats.completed_error);
                Counters::bump(&stats.address_faults);
            }
        }
        // Everything above (result in the SQE slot, CQE payload, counters) before the
        // phase word.
        fence(Ordering::Release);
        q.dus
            .write_u16(off + CQE_W7, if cq.phase { CQE_PHASE } else { 0 });
        cq.tail += 1;
        if cq.tail == depth {
            cq.tail = 0;
            cq.phase = !cq.phase;
        }
        q.cq_posted.store(cq.tail, Ordering::SeqCst);
        drop(cq);
        if q.cq_armed.load(Ordering::SeqCst) && q.cq_armed.swap(false, Ordering::SeqCst) {
            let _ = q.event.signal();
        }
    }
}

/// The next post-completion spin budget, after the engine blocked and the next request
/// came `gap` after the last completion: back to the full `spin` if spinning that long would
/// have caught it, else half of the current budget (down to nothing).
fn spin_budget(current: Duration, spin: Duration, gap: Duration) -> Duration {
    if gap <= spin {
        spin
    } else {
        current / 2
    }
}

#[cfg(test)]
mod spin_tests {
    use super::spin_budget;
    use std::time::Duration;

    #[test]
    fn spin_budget_shrinks_for_rare_requests_and_recovers_for_frequent_ones() {
        let us = Duration::from_micros;
        assert_eq!(spin_budget(us(50), us(50), us(900)), us(25));
        assert_eq!(
            spin_budget(us(25), us(50), us(900)),
            us(12) + Duration::from_nanos(500)
        );
        assert_eq!(spin_budget(us(1), us(50), us(30)), us(50));
        assert_eq!(spin_budget(Duration::ZERO, us(50), us(900)), Duration::ZERO);
    }
}
