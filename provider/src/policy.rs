//! Offload or software, and why: the one routine every RSA operation ends in, the raw
//! modular exponentiation. It goes to the device (offload.rs) when the key size, the
//! configuration and the process's device side allow it, a private result passing the
//! fault-attack guard (guard.rs); otherwise, or after any device failure, it runs in software
//! through the child library context, unless `fallback = off` refuses. Every route is
//! counted.

#![forbid(unsafe_code)]

use wd_core::wait::thread_cpu;

use crate::config::Config;
use crate::error::{fail, Error, Reason, Result};
use crate::key::{Crt, KeyMaterial};
use crate::magnitude::be_cmp;
use crate::offload;
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
    /// The key's CRT parameters are inconsistent: not for the device.
    KeyError,
}

impl Why {
    fn counter(self) -> Counter {
        match self {
            Why::NoDevice => Counter::FallbackNoDevice,
            Why::NoQueue => Counter::FallbackNoQueue,
            Why::KeySize => Counter::FallbackKeySize,
            Why::DeviceError => Counter::FallbackDeviceError,
            Why::Policy => Counter::SoftwarePolicy,
            Why::KeyError => Counter::KeyErrors,
        }
    }
}

/// A request kept from the device: why, and the detail for the log or the refusal.
type Kept = (Why, String);

/// Whether the configuration lets a request with a `bits`-bit key of `bytes` bytes go to
/// the device at all (before any device is asked).
fn eligible(cfg: &Config, bits: u32, bytes: usize, private: bool) -> Result<(), Kept> {
    if !hisi_hpre::supported_key_bytes(bytes) || bits < cfg.min_bits || bits > cfg.max_bits {
        return Err((
            Why::KeySize,
            format!("{bits}-bit key outside the offloaded range"),
        ));
    }
    if !private && !cfg.offload_public {
        return Err((Why::Policy, "offload_public = off".into()));
    }
    Ok(())
}

/// Why a failed device request goes to software; device failures are counted.
fn why_failed(e: &wd_core::Error) -> Why {
    use wd_core::Error as E;
    match e {
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
    }
}

/// The error `fallback = off` answers a kept request with; None when software may take it.
/// (Public-key work kept in software by configuration is not a fallback to refuse.)
fn refusal(cfg: &Config, why: Why, msg: &str) -> Option<Error> {
    if cfg.fallback || why == Why::Policy {
        return None;
    }
    let reason = match why {
        Why::DeviceError => Reason::DeviceFailed,
        Why::KeyError => Reason::InconsistentKey,
        _ => Reason::NotOffloaded,
    };
    Some(Error::new(reason, format!("fallback = off: {msg}")))
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

/// The request on the device: its result, or why it goes to software. An error is ours
/// to report (the guard could not run), not a device failure.
fn on_device(
    cfg: &Config,
    key: &KeyMaterial,
    private: bool,
    input: &[u8],
) -> Result<Result<Vec<u8>, Kept>> {
    let side = match offload::device_side(cfg) {
        Ok(side) => side,
        Err(why) => return Ok(Err((Why::NoDevice, why))),
    };
    // Inside an ASYNC job the thread's CPU time across the pause is other jobs' work: not
    // sampled there.
    let t0 = crate::async_job::current()
        .is_none()
        .then(cpu_sample_start)
        .flatten();
    let Some(hk) = offload::hpre_key(key, private) else {
        return Ok(Err((Why::Policy, "no private key".into())));
    };
    let out = match crate::inflight::call(&side, &hk, input, cfg.timeout, cfg.async_coalesce) {
        Ok(out) => out,
        Err(e) => return Ok(Err((why_failed(&e), e.to_string()))),
    };
    if private && !key.fault_guard()?.admit(input, &out)? {
        return Ok(Err((
            Why::DeviceError,
            "device result failed the public-exponent check".into(),
        )));
    }
    stats::bump(if private {
        Counter::OffloadPrivate
    } else {
        Counter::OffloadPublic
    });
    if let Some(t0) = t0 {
        let ns = thread_cpu().saturating_sub(t0).as_nanos() as u64;
        stats::add(Counter::OffloadCpuNs, ns * u64::from(CPU_SAMPLE_EVERY));
    }
    Ok(Ok(out))
}

/// Why the key's CRT parameters cannot be used (checked once per key, see key.rs), if so.
fn inconsistent_crt(key: &KeyMaterial) -> Result<Option<String>> {
    Ok(match key.crt()? {
        Some(Crt::Inconsistent(why)) => Some(why.clone()),
        _ => None,
    })
}

/// The raw RSA operation on `input` (exactly the modulus length, below n): the private
/// exponentiation when `private`, else the public one.
pub fn raw(key: &KeyMaterial, private: bool, input: &[u8]) -> Result<Vec<u8>> {
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
    let kept = match eligible(cfg, key.bits, k, private) {
        Err(kept) => kept,
        Ok(()) if private && inconsistent_crt(key)?.is_some() => {
            let why = inconsistent_crt(key)?.unwrap_or_default();
            (Why::KeyError, format!("inconsistent CRT parameters: {why}"))
        }
        Ok(()) => match on_device(cfg, key, private, input)? {
            Ok(out) => return Ok(out),
            Err(kept) => kept,
        },
    };
    let (why, msg) = kept;
    if let Some(e) = refusal(cfg, why, &msg) {
        stats::bump(Counter::Refused);
        return Err(e);
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

    #[test]
    fn key_size_and_public_offload_decide_before_the_device() {
        let mut cfg = Config::defaults().unwrap();
        assert_eq!(eligible(&cfg, 2048, 256, true), Ok(()));
        // 1536 bits: a size the engine does not do.
        assert_eq!(eligible(&cfg, 1536, 192, true).unwrap_err().0, Why::KeySize);
        cfg.min_bits = 3072;
        assert_eq!(eligible(&cfg, 2048, 256, true).unwrap_err().0, Why::KeySize);
        cfg.min_bits = 1024;
        cfg.offload_public = false;
        assert_eq!(eligible(&cfg, 2048, 256, false).unwrap_err().0, Why::Policy);
        assert_eq!(eligible(&cfg, 2048, 256, true), Ok(()));
    }

    #[test]
    fn fallback_off_refuses_all_but_policy() {
        let mut cfg = Config::defaults().unwrap();
        cfg.fallback = true;
        assert!(refusal(&cfg, Why::DeviceError, "x").is_none());
        cfg.fallback = false;
        assert!(refusal(&cfg, Why::Policy, "x").is_none());
        let e = refusal(&cfg, Why::DeviceError, "bad").unwrap();
        assert_eq!(
            (e.reason, e.msg.as_str()),
            (Reason::DeviceFailed, "fallback = off: bad")
        );
        let e = refusal(&cfg, Why::NoQueue, "busy").unwrap();
        assert_eq!(e.reason, Reason::NotOffloaded);
    }

    #[test]
    fn device_errors_map_to_reasons() {
        use wd_core::Error as E;
        assert_eq!(why_failed(&E::NoFreeQueue("q".into())), Why::NoQueue);
        assert_eq!(why_failed(&E::NoDevice("d".into())), Why::NoDevice);
        assert_eq!(why_failed(&E::Unsupported("k".into())), Why::KeySize);
        assert_eq!(
            why_failed(&E::Stalled(std::time::Duration::from_secs(1))),
            Why::DeviceError
        );
    }
}
