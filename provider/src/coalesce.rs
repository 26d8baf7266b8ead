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
//!
//! Holding a batch back pays only while the device has more requests than engines: on a
//! device with about as many engines as the thread has requests, each finished request's
//! engine idles until the batch is taken (measured on the model with 8 engines of 5 ms
//! latency and `-async_jobs 8`: 26% fewer signs per second). The device's engine count is
//! not known, so the thread checks the effect instead ([`Check`]): it times windows of
//! its completions with batches and without, adjacent, and gives batches up when they are
//! slower (by more than 8%) twice in a row. Without batches it tries them again after a
//! growing number of windows; with them it times a window without, at first every 32nd,
//! then less often each time batches pass, down to one in 128.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::stats::{self, Counter};

/// The batch is the thread's requests divided by this, rounded up.
const BATCH_DIVISOR: usize = 3;
/// Fewer requests than this are never held back (their batch, two, would leave fewer
/// than four to keep the engines busy).
const MIN_REQUESTS: usize = 6;
/// A wait shorter than this is not worth a timer: the event is as cheap.
const MIN_WAIT: Duration = Duration::from_micros(20);
/// Completions in a window of the check, at least (and at least two flights' worth).
const WINDOW: usize = 64;
/// Batching is kept while its rate is at least this share of the event's.
const KEEP: f64 = 0.92;
/// While batching pays, one window in this many is without (to follow the device): at
/// first, doubled each time batches pass the comparison, up to the most.
const PROBE_EVERY: u32 = 32;
const PROBE_EVERY_MOST: u32 = 128;
/// Comparisons in a row that batches must lose before they are given up.
const STRIKES: u32 = 2;
/// The most windows without batches before they are tried again.
const MAX_BACKOFF: u32 = 32;

/// Whether holding batches back costs the device throughput. Windows of completions are
/// timed with batches and without, and each run of batch windows begins right after a
/// window without, the two compared (adjacent, so that a machine's drift between them is
/// small). Batches that come out slower twice in a row are given up for a number of
/// windows that doubles each time they lose again; a comparison they pass resets it.
/// After each switch the first flight's worth of completions is not counted (requests
/// sent under the other kind are still finishing).
#[derive(Debug)]
struct Check {
    /// This window allows batches.
    batching: bool,
    /// Completions still to skip after a switch, then counted in this window.
    settle: usize,
    counted: usize,
    /// When counting began.
    start: Option<Instant>,
    /// The rate (completions per second) of the window without batches just before this
    /// batch window, to compare it with.
    paired: Option<f64>,
    /// Windows of the current kind left, this one included.
    left: u32,
    /// Comparisons in a row that batches lost.
    strikes: u32,
    /// How many windows without batches follow when batches are given up.
    backoff: u32,
    /// One window in this many is without batches while they pay.
    probe_every: u32,
}

impl Default for Check {
    fn default() -> Check {
        // The first window times the event; batches come next.
        Check {
            batching: false,
            settle: 0,
            counted: 0,
            start: None,
            paired: None,
            left: 1,
            strikes: 0,
            backoff: 1,
            probe_every: PROBE_EVERY,
        }
    }
}

impl Check {
    /// `n` completions were reaped at `now` with `requests` about; `idle`: the thread has
    /// nothing in flight (its rate then measures its callers, not the device: the window
    /// starts over).
    fn reaped(&mut self, n: usize, requests: usize, idle: bool, now: Instant) {
        if idle {
            self.restart(None);
            return;
        }
        if self.settle > 0 {
            self.settle = self.settle.saturating_sub(n);
            if self.settle == 0 {
                self.start = Some(now);
            }
            return;
        }
        let Some(start) = self.start else {
            self.start = Some(now);
            return;
        };
        self.counted += n;
        if self.counted < WINDOW.max(2 * requests) {
            return;
        }
        let secs = now.saturating_duration_since(start).as_secs_f64();
        if secs > 0.0 {
            self.ended(self.counted as f64 / secs, requests);
        } else {
            self.restart(Some(now));
        }
    }

    /// The window starts over: nothing counted, counting from `start` (None: from the
    /// next reap).
    fn restart(&mut self, start: Option<Instant>) {
        self.counted = 0;
        self.start = start;
    }

    /// A window ended at `rate`: which kind comes next.
    fn ended(&mut self, rate: f64, requests: usize) {
        self.left = self.left.saturating_sub(1);
        let batching = if !self.batching {
            if self.left > 0 {
                false
            } else {
                // The next window, with batches, is compared with this one.
                self.paired = Some(rate);
                self.left = 1;
                true
            }
        } else {
            match self.paired.take().map(|event| rate >= event * KEEP) {
                Some(false) => {
                    self.strikes += 1;
                    // Batches that were paying get a second look before they are given
                    // up (one slow window may be the machine's); a retry after they were
                    // given up gets none.
                    let needed = if self.backoff == 1 { STRIKES } else { 1 };
                    self.probe_every = PROBE_EVERY;
                    if self.strikes >= needed {
                        // Given up for a while, longer each time.
                        stats::bump(Counter::AsyncBatchesGivenUp);
                        self.strikes = 0;
                        self.left = self.backoff;
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    } else {
                        // A second look: one window without, then batches again.
                        self.left = 1;
                    }
                    false
                }
                // Batches pay: more windows of them before the next look, more each time.
                Some(true) => {
                    self.strikes = 0;
                    self.backoff = 1;
                    self.left = self.probe_every - 1;
                    self.probe_every = (self.probe_every * 2).min(PROBE_EVERY_MOST);
                    true
                }
                None if self.left > 0 => true,
                // A look at the event's rate now and then.
                None => {
                    self.left = 1;
                    false
                }
            }
        };
        if batching != self.batching {
            self.settle = requests.max(1);
        }
        self.batching = batching;
        self.restart(None);
    }
}

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
    /// Whether batches cost the device throughput.
    check: Check,
    /// The requests the last wait was planned for.
    requests: usize,
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
        self.check
            .reaped(reaped, self.requests, in_flight == 0, now);
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
        self.requests = requests;
        let batch = requests.div_ceil(BATCH_DIVISOR);
        let t = match self.gap_ns {
            Some(g)
                if !self.missed
                    && self.check.batching
                    && requests >= MIN_REQUESTS
                    && !bound.is_zero() =>
            {
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

    impl Pace {
        /// A thread that has found batches to pay.
        fn batching() -> Pace {
            let mut p = Pace::default();
            p.check.batching = true;
            p.check.left = PROBE_EVERY_MOST;
            p.check.paired = None;
            p
        }
    }

    fn at(base: Instant, us: u64) -> Instant {
        base + Duration::from_micros(us)
    }

    #[test]
    fn few_requests_in_flight_are_never_held_back() {
        let t0 = Instant::now();
        let mut p = Pace::batching();
        p.sent(0, t0);
        p.reaped(1, 6, false, at(t0, 100));
        assert_eq!(p.wait(5, BOUND), None);
        assert!(p.wait(6, BOUND).is_some());
    }

    #[test]
    fn nothing_learnt_means_the_event() {
        let mut p = Pace::batching();
        assert_eq!(p.wait(64, BOUND), None);
    }

    #[test]
    fn the_wait_is_a_third_of_the_flight_at_the_learnt_pace() {
        let t0 = Instant::now();
        let mut p = Pace::batching();
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
        let mut p = Pace::batching();
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
        let mut p = Pace::batching();
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
        let mut p = Pace::batching();
        p.sent(0, t0);
        // All 8 done within 800 us: at most 100 us each, learnt as 50.
        p.reaped(8, 0, true, at(t0, 800));
        p.sent(0, at(t0, 900));
        let w = p.wait(8, BOUND).expect("coalesced");
        assert_eq!(w.as_micros(), 150);
    }

    /// Drives `p` through `completions` completions, one per reap, with 8 requests about,
    /// `gap_us(batching)` apart; returns how many of the waits planned were batches.
    fn drive(p: &mut Pace, t: &mut Instant, completions: usize, gap_us: fn(bool) -> u64) -> usize {
        let mut batches = 0;
        for _ in 0..completions {
            let batching = p.wait(8, BOUND).is_some();
            batches += usize::from(batching);
            *t += Duration::from_micros(gap_us(batching));
            p.reaped(1, 8, false, *t);
        }
        batches
    }

    #[test]
    fn batches_that_do_not_slow_the_device_are_kept() {
        let mut t = Instant::now();
        let mut p = Pace::default();
        p.sent(0, t);
        // The first window measures the event's rate.
        assert_eq!(drive(&mut p, &mut t, 64, |_| 100), 0);
        let batches = drive(&mut p, &mut t, 5000, |_| 100);
        assert!(batches > 4000, "{batches} of 5000 waits were batches");
        // And the event's rate is looked at now and then.
        assert!(batches < 5000);
    }

    /// A device with about as many engines as the thread's requests: while batches are
    /// held back, finished requests' engines idle, and completions come 40% further apart.
    #[test]
    fn batches_that_slow_the_device_are_given_up_and_tried_again_later() {
        let mut t = Instant::now();
        let mut p = Pace::default();
        p.sent(0, t);
        let slow = |batching| if batching { 140 } else { 100 };
        let early = drive(&mut p, &mut t, 2000, slow);
        assert!(early > 0, "batches were tried");
        let late = drive(&mut p, &mut t, 4000, slow);
        assert!(late < 600, "{late} of 4000 waits were batches");
        assert!(late > 0, "batches are tried again now and then");
        // When the device stops minding them, batches come back.
        let after = drive(&mut p, &mut t, 20000, |_| 100);
        assert!(after > 12000, "{after} of 20000 waits were batches");
    }

    #[test]
    fn an_idle_thread_measures_no_rate() {
        let mut c = Check::default();
        let t0 = Instant::now();
        c.reaped(1, 8, false, t0);
        for i in 1..40 {
            c.reaped(1, 8, false, at(t0, 100 * i));
        }
        // Idle for a second: the window starts over, and no rate spans the gap.
        c.reaped(1, 8, true, at(t0, 4000));
        c.reaped(1, 8, false, at(t0, 1_004_000));
        for i in 1..=64 {
            c.reaped(1, 8, false, at(t0, 1_004_000 + 100 * i));
        }
        let rate = c.paired.expect("a window ended");
        assert!((9000.0..11000.0).contains(&rate), "{rate} per second");
    }
}
