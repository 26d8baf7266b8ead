//! Offload or software? The one routine every RSA operation ends in: the raw modular
//! exponentiation, on an HPRE queue of the per-process pool when it can, checked by the
//! fault-attack guard, and otherwise (or after any device failure) in software through the
//! child library context. Every route is counted.
//!
//! The device side is set up lazily once per process: nginx loads the provider in its
//! master and forks workers; a worker opens its own queues (and, on the model, starts its own
//! device model) on its first request, never touching what the parent opened.

use std::sync::{Arc, Mutex};

use hisi_hpre::Hpre;
use wd_core::fork::Epoch;
use wd_core::pool::QueuePool;
use wd_core::wait::{thread_cpu, WaitPolicy};

use crate::config::{Config, Devices};
use crate::error::{fail, Error, Reason, Result};
use crate::key::{be_cmp, RsaKey};
use crate::stats::{self, Counter};

/// Why a request ran in software.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No device configured or found.
    NoDevice,
    /// No free queue.
    NoQueue,
    /// Key size not offloadable.
    KeySize,
    /// The device failed the request.
    DeviceError,
    /// Configuration policy (public-key offload off).
    Policy,
}

impl Why {
    fn counter(self) -> Counter {
        match self {
            Why::NoDevice => Counter::FallbackNoDevice,
            Why::NoQueue => Counter::FallbackNoQueue,
            Why::KeySize => Counter::FallbackKeySize,
            Why::DeviceError => Counter::FallbackDeviceError,
            Why::Policy => Counter::SoftwarePolicy,
        }
    }
}

/// The device side of one process.
struct Engine {
    pool: QueuePool<Hpre>,
}

enum Slot {
    Ready(Epoch, Arc<Engine>),
    Unavailable(Epoch, String),
}

static ENGINE: Mutex<Option<Slot>> = Mutex::new(None);

fn open_engine(cfg: &Config) -> std::result::Result<Engine, String> {
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
    Ok(Engine {
        pool: QueuePool::new("wd-provider-rsa", cfg.queues, opener),
    })
}

/// This process's engine, set up on first use (again in a forked child).
fn engine(cfg: &Config) -> std::result::Result<Arc<Engine>, String> {
    let mut g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    match g.as_ref() {
        Some(Slot::Ready(ep, e)) if ep.is_current() => return Ok(e.clone()),
        Some(Slot::Unavailable(ep, why)) if ep.is_current() => return Err(why.clone()),
        _ => {}
    }
    if let Some(Slot::Ready(_, old)) = g.take() {
        // The parent's queues: never touched, never dropped here.
        std::mem::forget(old);
    }
    let slot = match open_engine(cfg) {
        Ok(e) => Slot::Ready(Epoch::current(), Arc::new(e)),
        Err(why) => {
            wd_core::wd_log!(Info, "wd provider: no offload in this process: {why}");
            Slot::Unavailable(Epoch::current(), why)
        }
    };
    let r = match &slot {
        Slot::Ready(_, e) => Ok(e.clone()),
        Slot::Unavailable(_, w) => Err(w.clone()),
    };
    *g = Some(slot);
    r
}

/// A thread measures its CPU time in every this many offloaded operations (a measurement
/// is two system calls, a few per cent of an operation's own cost); each sample stands for
/// all of them in the `offload_cpu_ns` counter.
const CPU_SAMPLE_EVERY: u32 = 8;

thread_local! {
    static CPU_TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The thread's CPU time now if this operation is a sampled one.
fn cpu_sample_start() -> Option<std::time::Duration> {
    CPU_TICK.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1));
        (n % CPU_SAMPLE_EVERY == 0).then(thread_cpu)
    })
}

/// What the device gave back.
enum DeviceResult {
    Done(Vec<u8>),
    Fallback(Why, String),
}

fn on_device(engine: &Engine, key: &RsaKey, private: bool, input: &[u8]) -> DeviceResult {
    let crt;
    let hk = if private {
        let Some(p) = &key.private else {
            return DeviceResult::Fallback(Why::Policy, "no private key".into());
        };
        match key.crt2() {
            Some(c) => {
                crt = c;
                hisi_hpre::RsaKey::PrivateCrt {
                    n_bytes: key.size(),
                    p: crt.factors[0].bytes(),
                    q: crt.factors[1].bytes(),
                    dp: crt.exponents[0].bytes(),
                    dq: crt.exponents[1].bytes(),
                    qinv: crt.coefficients[0].bytes(),
                }
            }
            None => hisi_hpre::RsaKey::Private {
                n: &key.n,
                d: p.d.bytes(),
            },
        }
    } else {
        hisi_hpre::RsaKey::Public {
            n: &key.n,
            e: &key.e,
        }
    };
    match engine.pool.with(|q| hisi_hpre::rsa(q, &hk, input)) {
        Ok(out) => DeviceResult::Done(out),
        Err(e) => {
            use wd_core::Error as E;
            let why = match &e {
                E::NoFreeQueue(_) => Why::NoQueue,
                E::NoDevice(_) => Why::NoDevice,
                E::Unsupported(_) => Why::KeySize,
                E::Stalled(_) => {
                    stats::bump(Counter::Timeouts);
                    stats::bump(Counter::DeviceErrors);
                    Why::DeviceError
                }
                _ => {
                    stats::bump(Counter::DeviceErrors);
                    Why::DeviceError
                }
            };
            DeviceResult::Fallback(why, e.to_string())
        }
    }
}

/// The raw RSA operation on `input` (exactly the modulus length, below n): the private
/// exponentiation when `private`, else the public one.
pub fn raw(key: &RsaKey, private: bool, input: &[u8]) -> Result<Vec<u8>> {
    let k = key.size();
    if input.len() != k {
        return fail(
            Reason::WrongInputLength,
            format!("raw RSA input is {} bytes, the key needs {k}", input.len()),
        );
    }
    if be_cmp(input, &key.n).is_ge() {
        return fail(Reason::DataTooLarge, "input is not below the modulus");
    }
    if private && key.private.is_none() {
        return fail(
            Reason::InvalidKey,
            "a private-key operation needs a private key",
        );
    }
    let cfg = key.prov.config();
    let why: (Why, String) =
        if !hisi_hpre::supported_key_bytes(k) || key.bits < cfg.min_bits || key.bits > cfg.max_bits
        {
            (
                Why::KeySize,
                format!("{}-bit key outside the offloaded range", key.bits),
            )
        } else if !private && !cfg.offload_public {
            (Why::Policy, "offload_public = off".into())
        } else {
            match engine(cfg) {
                Err(why) => (Why::NoDevice, why),
                Ok(engine) => {
                    let t0 = cpu_sample_start();
                    let r = on_device(&engine, key, private, input);
                    let r = match r {
                        DeviceResult::Done(out) if private => {
                            match key.result_checks_out(input, &out) {
                                Ok(true) => DeviceResult::Done(out),
                                Ok(false) => {
                                    stats::bump(Counter::FaultGuardTrips);
                                    stats::bump(Counter::DeviceErrors);
                                    wd_core::wd_log!(
                                        Warn,
                                        "wd provider: fault guard rejected a device result"
                                    );
                                    DeviceResult::Fallback(
                                        Why::DeviceError,
                                        "device result failed the public-exponent check".into(),
                                    )
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        other => other,
                    };
                    match r {
                        DeviceResult::Done(out) => {
                            stats::bump(if private {
                                Counter::OffloadPrivate
                            } else {
                                Counter::OffloadPublic
                            });
                            if let Some(t0) = t0 {
                                let ns = thread_cpu().saturating_sub(t0).as_nanos() as u64;
                                stats::add(Counter::OffloadCpuNs, ns * u64::from(CPU_SAMPLE_EVERY));
                            }
                            return Ok(out);
                        }
                        DeviceResult::Fallback(w, msg) => (w, msg),
                    }
                }
            }
        };
    let (why, msg) = why;
    // Public-key work kept in software by configuration is not a fallback to refuse.
    if !cfg.fallback && why != Why::Policy {
        stats::bump(Counter::Refused);
        let reason = if why == Why::DeviceError {
            Reason::DeviceFailed
        } else {
            Reason::NotOffloaded
        };
        return Err(Error::new(reason, format!("fallback = off: {msg}")));
    }
    wd_core::wd_log!(Debug, "wd provider: software RSA ({why:?}): {msg}");
    stats::bump(why.counter());
    let sw = key.prov.software()?;
    sw.raw(key.software()?, private, input, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_sampled_in_one_operation_of_eight_per_thread() {
        let sampled = |n: u32| (0..n).filter(|_| cpu_sample_start().is_some()).count();
        assert_eq!(sampled(8 * CPU_SAMPLE_EVERY), 8);
        // Another thread keeps its own count and samples its first operation.
        assert_eq!(std::thread::spawn(move || sampled(1)).join().unwrap(), 1);
    }
}
