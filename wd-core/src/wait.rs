//! Waiting for a completion without burning the core that offload exists to free.
//!
//! Hybrid polling, as the Linux block layer does it: keep a running estimate of the service
//! time of each kind of request; sleep for most of it (with the thread's timer slack briefly
//! set to 1 ns so the sleep does not overshoot by ~90 µs), spin for the remainder, and for
//! long or unknown waits block on the queue's completion event. A timeout reports a
//! stalled device.

use std::time::{Duration, Instant};

/// What a waiter does while its request is in the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitMode {
    /// Sleep for most of the expected service time, spin for the rest, block on the
    /// completion event past that: the lowest latency that does not spin throughout.
    #[default]
    Hybrid,
    /// Block on the completion event (the queue's interrupt) at once: one wake-up per
    /// request and no spinning, the least CPU where sleeping is dear (virtual machines),
    /// for the wake-up's latency.
    Event,
}

/// How a queue waits. Configurable per pool (provider config, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Hybrid polling or the completion event alone.
    pub mode: WaitMode,
    /// Give up and report the device stalled after this long.
    pub timeout: Duration,
    /// Wake this long before the expected completion and spin for the rest.
    pub margin: Duration,
    /// Spin at most this long past the expected completion before blocking on the event.
    pub spin: Duration,
    /// Never sleep for less than this (a shorter sleep costs more than it saves).
    pub min_sleep: Duration,
    /// Longest single block on the completion event before re-checking the ring.
    pub event_slice: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            mode: WaitMode::Hybrid,
            timeout: Duration::from_secs(5),
            margin: Duration::from_micros(25),
            spin: Duration::from_micros(50),
            min_sleep: Duration::from_micros(40),
            event_slice: Duration::from_millis(20),
        }
    }
}

/// Number of request classes an estimator tracks.
pub const CLASSES: usize = 64;

/// Per-class running estimate of a queue's service time, in nanoseconds.
#[derive(Debug, Clone)]
pub struct ServiceEstimate {
    ns: [u64; CLASSES],
}

impl Default for ServiceEstimate {
    fn default() -> Self {
        ServiceEstimate { ns: [0; CLASSES] }
    }
}

impl ServiceEstimate {
    /// The estimate for `class` (zero if unknown).
    pub fn get(&self, class: usize) -> Duration {
        Duration::from_nanos(self.ns[class % CLASSES])
    }

    /// A precise observation: the completion appeared while we were watching.
    pub fn observe(&mut self, class: usize, took: Duration) {
        let e = &mut self.ns[class % CLASSES];
        let t = took.as_nanos().min(u64::MAX as u128) as u64;
        *e = if *e == 0 { t } else { (*e * 7 + t) / 8 };
    }

    /// The completion was already there when we woke: we slept too long. Shrink a little,
    /// so that a later wait wakes early and observes precisely.
    pub fn overslept(&mut self, class: usize) {
        let e = &mut self.ns[class % CLASSES];
        *e -= *e / 32;
    }
}

/// What the waiter should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Sleep this long, then poll once.
    Sleep(Duration),
    /// Poll again soon (spin).
    Spin,
    /// Block on the queue's completion event for up to this long.
    Block(Duration),
    /// The timeout passed.
    TimedOut,
}

/// Decides the next step of a wait that began `elapsed` ago for a request expected to take
/// `expected` (zero = unknown).
pub fn next_step(policy: &WaitPolicy, expected: Duration, elapsed: Duration) -> Step {
    if elapsed >= policy.timeout {
        return Step::TimedOut;
    }
    let left = policy.timeout - elapsed;
    if policy.mode == WaitMode::Event {
        return Step::Block(policy.event_slice.min(left));
    }
    if !expected.is_zero() {
        let wake = expected.saturating_sub(policy.margin);
        if wake > elapsed && wake - elapsed >= policy.min_sleep {
            return Step::Sleep((wake - elapsed).min(left));
        }
        if elapsed < expected + policy.spin {
            return Step::Spin;
        }
    } else if elapsed < policy.spin {
        return Step::Spin;
    }
    Step::Block(policy.event_slice.min(left))
}

/// Sleeps `d` with the calling thread's timer slack set to 1 ns, then restores it.
pub fn precise_sleep(d: Duration) {
    // SAFETY: PR_GET/SET_TIMERSLACK only read or set a per-thread scalar.
    let old = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    std::thread::sleep(d);
    if old > 0 {
        // SAFETY: as above; restores the caller's setting.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, old as libc::c_ulong, 0, 0, 0) };
    }
}

/// CPU time the calling thread has used (what offload exists to save; benchmarks and the
/// provider's `offload_cpu_ns` counter measure waits with it).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-parameter; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A wait in progress, for the bookkeeping of [`ServiceEstimate`].
#[derive(Debug)]
pub struct Wait {
    start: Instant,
    last: Option<Step>,
}

impl Wait {
    /// Starts timing a request sent at `start`.
    pub fn since(start: Instant) -> Self {
        Wait { start, last: None }
    }

    /// Time since the request was sent.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records the step taken before the next poll.
    pub fn took(&mut self, step: Step) {
        self.last = Some(step);
    }

    /// Feeds what the finished wait says into the estimate.
    pub fn finish(&self, est: &mut ServiceEstimate, class: usize) {
        match self.last {
            Some(Step::Sleep(_)) => est.overslept(class),
            Some(Step::Spin) | None => est.observe(class, self.elapsed()),
            Some(Step::Block(_)) | Some(Step::TimedOut) => {
                // An interrupt wake-up adds its own latency: only an upper bound.
                if est.get(class).is_zero() || self.elapsed() < est.get(class) {
                    est.observe(class, self.elapsed());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn sleeps_for_most_of_a_known_service_time_then_spins() {
        let p = WaitPolicy::default();
        assert_eq!(next_step(&p, us(700), us(0)), Step::Sleep(us(675)));
        assert_eq!(next_step(&p, us(700), us(680)), Step::Spin);
        assert_eq!(next_step(&p, us(700), us(749)), Step::Spin);
        assert_eq!(next_step(&p, us(700), us(751)), Step::Block(p.event_slice));
    }

    #[test]
    fn short_requests_only_spin() {
        let p = WaitPolicy::default();
        assert_eq!(next_step(&p, us(15), us(0)), Step::Spin);
    }

    #[test]
    fn unknown_service_time_spins_briefly_then_blocks() {
        let p = WaitPolicy::default();
        assert_eq!(next_step(&p, Duration::ZERO, us(10)), Step::Spin);
        assert_eq!(
            next_step(&p, Duration::ZERO, us(60)),
            Step::Block(p.event_slice)
        );
    }

    #[test]
    fn event_mode_blocks_at_once_and_never_sleeps_or_spins() {
        let p = WaitPolicy {
            mode: WaitMode::Event,
            timeout: Duration::from_millis(30),
            ..WaitPolicy::default()
        };
        for (expected, elapsed) in [
            (us(700), us(0)),
            (us(700), us(690)),
            (Duration::ZERO, us(0)),
        ] {
            assert_eq!(next_step(&p, expected, elapsed), Step::Block(p.event_slice));
        }
        assert_eq!(
            next_step(&p, us(700), Duration::from_millis(25)),
            Step::Block(Duration::from_millis(5))
        );
        assert_eq!(
            next_step(&p, us(700), Duration::from_millis(30)),
            Step::TimedOut
        );
    }

    #[test]
    fn timeout_is_reported_and_blocks_never_pass_it() {
        let p = WaitPolicy {
            timeout: Duration::from_millis(30),
            ..WaitPolicy::default()
        };
        assert_eq!(
            next_step(&p, Duration::ZERO, Duration::from_millis(25)),
            Step::Block(Duration::from_millis(5))
        );
        assert_eq!(
            next_step(&p, Duration::ZERO, Duration::from_millis(30)),
            Step::TimedOut
        );
    }

    #[test]
    fn estimate_learns_and_shrinks_after_oversleeping() {
        let mut e = ServiceEstimate::default();
        e.observe(3, us(800));
        assert_eq!(e.get(3), us(800));
        e.observe(3, us(640));
        assert_eq!(e.get(3), us(780));
        e.overslept(3);
        assert!(e.get(3) < us(780));
        assert_eq!(e.get(4), Duration::ZERO);
    }
}
