//! The random generator `CTR-DRBG`, offered so that wd can be an application's only
//! provider (`openssl speed -provider wd rsa2048`, `openssl rand -provider wd`): libcrypto
//! itself draws random numbers from a CTR-DRBG of the application's library context, and
//! without a provider offering one it cannot even start.
//!
//! wd has no random-number hardware to offer, so each wd generator is the default
//! provider's own CTR-DRBG (NIST SP 800-90A, AES-256-CTR unless configured otherwise),
//! created in wd's child library context and used through public `EVP_RAND` calls only.
//! Every parameter the core sets or asks for is passed to it unchanged. It seeds itself from
//! the operating system rather than from a parent generator, and it can seed children of its
//! own (`get_seed`). wd's copies inside its child contexts do not offer it (see
//! `software::is_child_context`), so nothing here comes back into wd.
//!
//! This file is the generator object, in safe code; `ffi.rs` holds the C entry points
//! (which hand every call to the inner generator) and the dispatch table.

// `deny`, not `forbid`: a forbid would extend to the child `ffi`, which must use unsafe.
#![deny(unsafe_code)]

pub mod ffi;

use std::sync::{Arc, Condvar, Mutex};

use crate::ctx::ProvCtx;
use crate::error::{fail, Reason, Result};
use crate::ossl::RandCtx;

/// One wd generator: the default provider's DRBG inside, and the lock the core asks for.
struct Drbg {
    /// Freed first (fields drop in order), while `_prov` still keeps its context alive.
    inner: RandCtx,
    lock: CoreLock,
    /// Keeps the provider instance, and with it the child context `inner` lives in, alive
    /// until the generator is freed, whatever order the core tears things down in.
    _prov: Arc<ProvCtx>,
}

impl Drbg {
    /// A new, uninstantiated generator of the provider instance `prov`.
    fn new(prov: Arc<ProvCtx>) -> Result<Drbg> {
        let inner = prov.software()?.drbg()?.new_ctx()?;
        Ok(Drbg {
            inner,
            lock: CoreLock::default(),
            _prov: prov,
        })
    }
}

/// The lock of the core's `lock`/`unlock` calls: taken in one call and released in a later
/// one (so no guard can span it), by any thread.
#[derive(Default)]
struct CoreLock {
    held: Mutex<bool>,
    released: Condvar,
}

impl CoreLock {
    /// Waits until the lock is free and takes it.
    fn lock(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held {
            held = self.released.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        *held = true;
    }

    /// Releases the lock (the core unlocks only what it locked).
    fn unlock(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.released.notify_one();
    }
}

/// The length of a seed of at least `entropy` bits within `min_len..=max_len` bytes.
fn seed_len(entropy: i32, min_len: usize, max_len: usize) -> Result<usize> {
    let want = usize::try_from(entropy.max(0)).unwrap_or(0).div_ceil(8);
    let len = want.max(min_len);
    if len > max_len || len == 0 {
        return fail(
            Reason::InvalidParameter,
            format!("seed of {len} bytes asked for within {min_len}..={max_len}"),
        );
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_length_covers_the_entropy_within_the_bounds() {
        assert_eq!(seed_len(256, 16, 64).unwrap(), 32);
        assert_eq!(seed_len(8, 16, 64).unwrap(), 16);
        assert_eq!(
            seed_len(-1, 0, 64).map_err(|e| e.reason),
            Err(Reason::InvalidParameter)
        );
        assert!(seed_len(1024, 16, 64).is_err());
    }

    #[test]
    fn the_core_lock_excludes_across_calls_and_threads() {
        let l = Arc::new(CoreLock::default());
        l.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = {
            let l = l.clone();
            std::thread::spawn(move || {
                l.lock();
                tx.send(()).unwrap();
                l.unlock();
            })
        };
        // The other thread waits while the lock is held.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(50))
            .is_err());
        l.unlock();
        rx.recv().unwrap();
        t.join().unwrap();
    }
}
