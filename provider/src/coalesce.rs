//! Completion coalescing for a thread's ASYNC requests (interrupt moderation).
//!
//! With many requests in flight, waking the application at every completion costs it a
//! context switch and a round of its poll per request, which is most of what an offloaded
//! operation costs the application thread (docs/architecture.md §9). When enough requests
//! are in flight that the device stays busy anyway, the watching job instead waits for a
//! *batch*: the stall timer is set to about the time `batch` completions take, and the
//! queue's completion event does not wake it meanwhile. The batch is a third of the
//! thread's requests (rounded up), so about two thirds are still queued or in service while
//! the application sleeps; fewer than six are never held back. The count is usually taken
//! when the watcher's role is handed over, because the watcher's own request is done: the
//! job handing it over is about to send its next request, so the count is one short (7 at
//! `-async_jobs 8`: a batch of 3, where a quarter rounded to nearest gave 2 and 0.46
//! wake-ups per sign instead of 0.32).
//!
//! The time between completions is learnt from the reaps themselves (a smoothed mean of
//! elapsed time over completions reaped, counted only while requests were in flight). A
//! coalesced wait that found nothing switches the next wait to the completion event, so a
//! wrong estimate costs one extra wake-up, never a lost one; a wait longer than the
//! configured bound (`async_coalesce_us`) is never taken.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// The batch is the thread's requests divided by this, rounded up.
const BATCH_DIVISOR: usize = 3;
/// Fewer requests than this are never held back (their batch, two, would leave fewer
/// than four to keep the engines busy).
const MIN_REQUESTS: usize = 6;
/// A wait shorter than this is not worth a timer: the event is as cheap.
const MIN_WAIT: Duration = Duration::from_micros(20);

/// What the thread has learnt of its device's pace, and the last wait's outcome.
#[derive(Debug, Default)]
pub struct Pace {
    /// Smoothed time between completions while requests were in flight (ns).
    gap_ns: Option<f64>,
    /// When the last completion was reaped, or the busy stretch began; None while idle.
    since: Option<Instant>,
    /// The last coalesced wait reaped nothing: the next one waits on the event.
    missed: bool,
    /// The watcher's current wait is a coalesced one.
    coalescing: bool,
}

impl Pace {
    /// A request was sent with `in_flight_before` others in flight.
    pub fn sent(&mut self, in_flight_before: usize, now: Instant) {
        if in_flight_before == 0 || self.since.is_none() {
            self.since = Some(now);
        }
    }

    /// A reap took `reaped` completions, leaving `in_flight` requests; `watcher` says
    /// whether the watching job did it (its empty reap after a coalesced wait is a miss).
    pub fn reaped(&mut self, reaped: usize, in_flight: usize, watcher: bool, now: Instant) {
        if reaped == 0 {
            if watcher && self.coalescing {
                self.missed = true;
            }
            return;
        }
        self.missed = false;
        if let Some(since) = self.since {
            let mut sample = now.saturating_duration_since(since).as_nanos() as f64 / reaped as f64;
            if in_flight == 0 {
                // Everything finished before anyone looked: the device idled for an unknown
                // part of the time, so the sample is only an upper bound.
                sample /= 2.0;
            }
            self.gap_ns = Some(match self.gap_ns {
                Some(g) => g + (sample - g) / 8.0,
                None => sample,
            });
        }
        self.since = (in_flight > 0).then_some(now);
    }

    /// How long the watcher may wait for a batch when the thread has `requests` (in
    /// flight, or done and not yet taken by their jobs, which send their next ones when
    /// they run), at most `bound`; None: wait on the completion event. Remembers which it
    /// was.
    pub fn wait(&mut self, requests: usize, bound: Duration) -> Option<Duration> {
        let batch = requests.div_ceil(BATCH_DIVISOR);
        let t = match self.gap_ns {
            Some(g) if !self.missed && requests >= MIN_REQUESTS && !bound.is_zero() => {
                Duration::from_nanos((g * batch as f64) as u64).min(bound)
            }
            _ => Duration::ZERO,
        };
        self.coalescing = t >= MIN_WAIT;
        self.coalescing.then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_millis(1);

    fn at(base: Instant, us: u64) -> Instant {
        base + Duration::from_micros(us)
    }

    #[test]
    fn few_requests_in_flight_are_never_held_back() {
        let t0 = Instant::now();
        let mut p = Pace::default();
        p.sent(0, t0);
        p.reaped(1, 6, false, at(t0, 100));
        assert_eq!(p.wait(5, BOUND), None);
        assert!(p.wait(6, BOUND).is_some());
    }

    #[test]
    fn nothing_learnt_means_the_event() {
        let mut p = Pace::default();
        assert_eq!(p.wait(64, BOUND), None);
    }

    #[test]
    fn the_wait_is_a_third_of_the_flight_at_the_learnt_pace() {
        let t0 = Instant::now();
        let mut p = Pace::default();
        p.sent(0, t0);
        // One completion every 100 us, steadily.
        for i in 1..=40 {
            p.reaped(1, 8, false, at(t0, 100 * i));
        }
        // 8 requests: a batch of 3 (a third, rounded up).
        let w = p.wait(8, BOUND).expect("coalesced");
        assert!((290..=310).contains(&w.as_micros()), "{w:?}");
        let w = p.wait(7, BOUND).expect("coalesced");
        assert!((290..=310).contains(&w.as_micros()), "{w:?}");
        // Batches of two in 200 us teach the same pace.
        for i in 1..=40 {
            p.reaped(2, 8, true, at(t0, 4000 + 200 * i));
        }
        let w = p.wait(15, BOUND).expect("coalesced");
        assert!((490..=510).contains(&w.as_micros()), "{w:?}");
        // Never beyond the bound.
        assert_eq!(p.wait(4096, BOUND), Some(BOUND));
        assert_eq!(p.wait(64, Duration::ZERO), None);
    }

    #[test]
    fn a_coalesced_wait_that_found_nothing_is_followed_by_the_event() {
        let t0 = Instant::now();
        let mut p = Pace::default();
        p.sent(0, t0);
        p.reaped(1, 8, false, at(t0, 100));
        assert!(p.wait(8, BOUND).is_some());
        p.reaped(0, 8, true, at(t0, 300));
        assert_eq!(p.wait(8, BOUND), None);
        // The event's wake-up reaps: coalescing resumes.
        p.reaped(1, 8, true, at(t0, 400));
        assert!(p.wait(8, BOUND).is_some());
        // A job that is not the watcher finding nothing is no miss.
        p.reaped(0, 8, false, at(t0, 450));
        assert!(p.wait(8, BOUND).is_some());
    }

    #[test]
    fn idle_time_is_not_learnt_as_pace() {
        let t0 = Instant::now();
        let mut p = Pace::default();
        p.sent(0, t0);
        p.reaped(1, 0, false, at(t0, 100));
        // Idle for a second, then busy again.
        p.sent(0, at(t0, 1_000_100));
        p.reaped(1, 8, false, at(t0, 1_000_200));
        let w = p.wait(8, BOUND).expect("coalesced");
        assert!(w.as_micros() < 200, "{w:?}");
    }

    #[test]
    fn a_drained_flight_teaches_a_faster_pace() {
        let t0 = Instant::now();
        let mut p = Pace::default();
        p.sent(0, t0);
        // All 8 done within 800 us: at most 100 us each, learnt as 50.
        p.reaped(8, 0, true, at(t0, 800));
        p.sent(0, at(t0, 900));
        let w = p.wait(8, BOUND).expect("coalesced");
        assert_eq!(w.as_micros(), 150);
    }
}
