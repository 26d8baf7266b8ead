//! The device side of one process: the pool of HPRE queues, opened lazily once per process,
//! and the call of one raw RSA operation on it. Whether a request goes here at all, and
//! what happens when the device fails it, is the offload policy's (policy.rs).
//!
//! nginx loads the provider in its master and forks workers; a worker opens its own queues
//! (and, on the model, starts its own device model) on its first request, never touching
//! what the parent opened.

#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex};

use hisi_hpre::Hpre;
use wd_core::fork::Epoch;
use wd_core::pool::QueuePool;
use wd_core::wait::WaitPolicy;

use crate::config::{Config, Devices};
use crate::key::{Crt, KeyMaterial};

/// The device side of one process: its HPRE queues.
pub struct DeviceSide {
    pool: QueuePool<Hpre>,
}

/// What this process has: its device side, or why it has none (each from one fork epoch).
enum SideState {
    Ready(Epoch, Arc<DeviceSide>),
    Unavailable(Epoch, String),
}

static DEVICE_SIDE: Mutex<Option<SideState>> = Mutex::new(None);

fn open_device_side(cfg: &Config) -> std::result::Result<DeviceSide, String> {
    if cfg.devices == Devices::None {
        return Err("devices = none".into());
    }
    // Starts the model once per process tree when it is selected (the registry entry is
    // inherited by forked children, and the model rebuilds its device threads there).
    let backends =
        wd_core::select::activate(&cfg.devices, &cfg.model).map_err(|e| e.to_string())?;
    let backend = backends.join(",");
    let found = wd_core::registry::find(hisi_hpre::DRIVER, hisi_hpre::ALGORITHM, backends)
        .map_err(|e| e.to_string())?;
    wd_core::wd_log!(
        Info,
        "wd provider: {} HPRE device(s) on {backend}: {}",
        found.len(),
        found
            .iter()
            .map(|d| d.info().name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let policy = WaitPolicy {
        mode: cfg.poll_mode,
        timeout: cfg.timeout,
        spin: cfg.poll_spin,
        margin: cfg.poll_margin,
        ..WaitPolicy::default()
    };
    let opener = Box::new(move || {
        // Most free instances first; the next device when one refuses.
        let devices = wd_core::registry::find(hisi_hpre::DRIVER, hisi_hpre::ALGORITHM, backends)?;
        let mut last = None;
        for d in &devices {
            match hisi_hpre::open_queue(d, policy) {
                Ok(q) => return Ok(q),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| wd_core::Error::NoDevice("no HPRE device".into())))
    });
    Ok(DeviceSide {
        pool: QueuePool::new("wd-provider-rsa", cfg.queues, opener),
    })
}

/// This process's device side, set up on first use (again in a forked child); the reason
/// there is none otherwise.
pub fn device_side(cfg: &Config) -> std::result::Result<Arc<DeviceSide>, String> {
    let mut g = DEVICE_SIDE.lock().unwrap_or_else(|e| e.into_inner());
    match g.as_ref() {
        Some(SideState::Ready(ep, d)) if ep.is_current() => return Ok(d.clone()),
        Some(SideState::Unavailable(ep, why)) if ep.is_current() => return Err(why.clone()),
        _ => {}
    }
    if let Some(SideState::Ready(_, old)) = g.take() {
        // The parent's queues: never touched, never dropped here.
        std::mem::forget(old);
    }
    let state = match open_device_side(cfg) {
        Ok(d) => SideState::Ready(Epoch::current(), Arc::new(d)),
        Err(why) => {
            wd_core::wd_log!(Info, "wd provider: no offload in this process: {why}");
            SideState::Unavailable(Epoch::current(), why)
        }
    };
    let r = match &state {
        SideState::Ready(_, d) => Ok(d.clone()),
        SideState::Unavailable(_, w) => Err(w.clone()),
    };
    *g = Some(state);
    r
}

/// The key as the device takes it: public (n, e), or private in CRT form for a two-prime
/// key, else (n, d). None for a private operation on a key without a private part.
pub fn hpre_key(key: &KeyMaterial, private: bool) -> Option<hisi_hpre::RsaKey<'_>> {
    if !private {
        return Some(hisi_hpre::RsaKey::Public {
            n: &key.n,
            e: &key.e,
        });
    }
    let p = key.private.as_ref()?;
    // The CRT exponents reduced (key.rs); an inconsistent key never gets here (policy.rs).
    Some(match (key.crt2(), key.crt()) {
        (Some(crt), Ok(Some(Crt::Reduced { dp, dq, qinv }))) => hisi_hpre::RsaKey::PrivateCrt {
            n_bytes: key.size(),
            p: crt.factors[0].bytes(),
            q: crt.factors[1].bytes(),
            dp: dp.bytes(),
            dq: dq.bytes(),
            qinv: qinv.bytes(),
        },
        _ => hisi_hpre::RsaKey::Private {
            n: &key.n,
            d: p.d.bytes(),
        },
    })
}

/// A completion taken from the thread's queue: the request's tag and its result.
pub type Completion = (u64, wd_core::Result<Vec<u8>>);

/// The completion descriptor of a thread's queue, and which queue it is: a descriptor
/// number comes back once its queue is closed, a queue's serial never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueEvent {
    /// What `poll()` reports readable on a completion.
    pub fd: std::os::fd::RawFd,
    /// [`wd_core::Queue::serial`].
    pub queue: u64,
}

impl DeviceSide {
    /// The raw RSA operation with `key` on `input`, on a queue of the pool.
    pub fn run(&self, key: &hisi_hpre::RsaKey<'_>, input: &[u8]) -> wd_core::Result<Vec<u8>> {
        self.pool.with(|q| hisi_hpre::rsa(q, key, input))
    }

    /// Sends the operation to the thread's queue without waiting, tagged `tag`
    /// ([`wd_core::Error::RingFull`]: reap, then try again).
    pub fn submit(
        &self,
        key: &hisi_hpre::RsaKey<'_>,
        input: &[u8],
        tag: u64,
    ) -> wd_core::Result<()> {
        self.pool.with(|q| {
            let mut job = hisi_hpre::RsaJob::new(q.driver(), key, input)?;
            job.set_user_data(tag);
            q.send(job).map_err(|e| e.error)
        })
    }

    /// Takes every completion the thread's queue holds into `out`; for the job that waits
    /// on the queue's completion event (`watch`), clears the event first and re-arms it
    /// after. Returns the queue's event (None if the backend has no descriptor).
    pub fn reap(
        &self,
        watch: bool,
        out: &mut Vec<Completion>,
    ) -> wd_core::Result<Option<QueueEvent>> {
        self.pool.with(|q| {
            if watch {
                q.queue().wait_event(std::time::Duration::ZERO)?;
            }
            while let Some(job) = q.recv()? {
                out.push((job.user_data(), job.result()));
            }
            if watch {
                q.arm()?;
            }
            let serial = q.queue().serial();
            Ok(q.queue()
                .event_fd()
                .map(|fd| QueueEvent { fd, queue: serial }))
        })
    }

    /// Asks the thread's queue for a completion event (a job starts waiting on it).
    pub fn arm(&self) -> wd_core::Result<()> {
        self.pool.with(|q| q.arm())
    }

    /// Waits (as a synchronous caller does) for the next completion of the thread's
    /// queue, then takes every other one there into `out`.
    pub fn reap_blocking(&self, out: &mut Vec<Completion>) -> wd_core::Result<()> {
        self.pool.with(|q| {
            let job = q.recv_sync()?;
            out.push((job.user_data(), job.result()));
            while let Some(job) = q.recv()? {
                out.push((job.user_data(), job.result()));
            }
            Ok(())
        })
    }

    /// Requests in flight on the thread's queue (0 when it has none).
    pub fn in_flight(&self) -> usize {
        self.pool.with(|q| Ok(q.in_flight())).unwrap_or(0)
    }

    /// Gives the thread's queue up after `e` (a stall): the pool releases it, and what was
    /// in flight on it is lost. Returns `e`.
    pub fn drop_thread_queue(&self, e: wd_core::Error) -> wd_core::Error {
        let mut e = Some(e);
        let r = self
            .pool
            .with(|_| Err::<(), _>(e.take().expect("taken once")));
        // If the thread had no queue and none could be had, `e` was never taken.
        match (e, r) {
            (Some(e), _) | (None, Err(e)) => e,
            (None, Ok(())) => wd_core::Error::Device("thread queue dropped".into()),
        }
    }
}
