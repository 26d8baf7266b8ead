//! What waiting costs on this machine, whatever the waiter does: the calling thread's CPU
//! time and the lateness of (a) one timed sleep of `SLEEP_US` (timer slack 1 ns, as the
//! hybrid wait sleeps) and (b) one block on a futex that another thread wakes after
//! `SLEEP_US` of work (an interrupt-driven completion). No waiting strategy spends less
//! CPU per operation than the cheaper of the two, unless it never sleeps (and then it
//! spins for the whole operation).
//!
//! `cargo run --release -p wd-bench --example wake_floor [SLEEP_US] [OPS]` (defaults 250,
//! 2000). Prints one line per kind, in microseconds.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wd_core::wait::thread_cpu;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT on a live, aligned u32 with no timeout; returns when woken, on a
    // signal, or at once if the word no longer holds `expected`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live, aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
}

fn main() {
    let mut args = std::env::args().skip(1);
    let work_us: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(250);
    let ops: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let work = Duration::from_micros(work_us);

    // (a) Timed sleeps, as wd_core::wait::precise_sleep makes them.
    let mut late = Vec::with_capacity(ops);
    let c0 = thread_cpu();
    for _ in 0..ops {
        let t = Instant::now();
        wd_core::wait::precise_sleep(work);
        late.push((t.elapsed().as_secs_f64() - work.as_secs_f64()) * 1e6);
    }
    let cpu = (thread_cpu() - c0).as_secs_f64() * 1e6 / ops as f64;
    println!(
        "timed sleep of {work_us} us: caller CPU {cpu:.1} us per sleep, woken {:.1} us late (median)",
        median(&mut late)
    );

    // (b) A futex block, woken by a "device" thread after `work` of busy work.
    let req = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let (r2, d2) = (req.clone(), done.clone());
    let device = std::thread::spawn(move || {
        for i in 1..=ops as u32 {
            while r2.load(Ordering::Acquire) < i {
                std::hint::spin_loop();
            }
            let t = Instant::now();
            while t.elapsed() < work {
                std::hint::spin_loop();
            }
            d2.store(i, Ordering::Release);
            futex_wake(&d2);
        }
    });
    let mut wall = Vec::with_capacity(ops);
    let c0 = thread_cpu();
    for i in 1..=ops as u32 {
        let t = Instant::now();
        req.store(i, Ordering::Release);
        loop {
            let d = done.load(Ordering::Acquire);
            if d >= i {
                break;
            }
            futex_wait(&done, d);
        }
        wall.push((t.elapsed().as_secs_f64() - work.as_secs_f64()) * 1e6);
    }
    let cpu = (thread_cpu() - c0).as_secs_f64() * 1e6 / ops as f64;
    device.join().expect("device thread");
    println!(
        "futex block, woken after {work_us} us: caller CPU {cpu:.1} us per wait, completion seen {:.1} us late (median)",
        median(&mut wall)
    );
}
