//! `ProvCtx`: one loaded instance of the provider (the `provctx` the core hands back to
//! every call), with its configuration and its software path. Made by `OSSL_provider_init`
//! in provider.rs, borrowed by the operations.

use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::Config;
use crate::error::{fail, Reason, Result};
use crate::ffi::{OSSL_CORE_HANDLE, OSSL_DISPATCH};
use crate::software::Software;

/// One loaded instance of the provider.
pub struct ProvCtx {
    handle: *const OSSL_CORE_HANDLE,
    /// The library context this instance lives in (the core's `get_libctx`; NULL is the
    /// process's default context).
    libctx: *mut c_void,
    core_in: *const OSSL_DISPATCH,
    config: Config,
    sw: OnceLock<Software>,
    sw_init: Mutex<()>,
}

// SAFETY: the raw pointers are the core's handle, library context and dispatch table:
// opaque tokens that stay valid while the instance is loaded, never written through by us,
// and usable from any thread (the core's upcalls are thread-safe). The other fields are
// `Send`.
unsafe impl Send for ProvCtx {}
// SAFETY: shared access only reads the three tokens (see `Send`) and the configuration;
// the software path is set once behind `OnceLock` and `sw_init`, and `Software` is `Sync`.
unsafe impl Sync for ProvCtx {}

impl ProvCtx {
    /// The instance the core's `OSSL_provider_init` call describes.
    pub fn new(
        handle: *const OSSL_CORE_HANDLE,
        libctx: *mut c_void,
        core_in: *const OSSL_DISPATCH,
        config: Config,
    ) -> ProvCtx {
        ProvCtx {
            handle,
            libctx,
            core_in,
            config,
            sw: OnceLock::new(),
            sw_init: Mutex::new(()),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The core's handle of this instance.
    pub fn handle(&self) -> *const OSSL_CORE_HANDLE {
        self.handle
    }

    /// The library context the instance was loaded into.
    pub fn libctx(&self) -> *mut c_void {
        self.libctx
    }

    /// The software path, created on first use. (Created lazily rather than in init: the
    /// child context loads a copy of every provider of the parent, wd included, and that
    /// copy must not build a context of its own in turn.)
    pub fn software(&self) -> Result<&Software> {
        if let Some(s) = self.sw.get() {
            return Ok(s);
        }
        let _g = self.sw_init.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.sw.get() {
            return Ok(s);
        }
        // SAFETY: `handle` and `core_in` are what the core passed to our init, and the
        // instance is still loaded: a method of it is running, and teardown keeps the
        // instance (see provider.rs) while anything of it, this borrow included, is alive.
        let s = unsafe { Software::new(self.handle, self.core_in) }?;
        Ok(self.sw.get_or_init(|| s))
    }

    /// Borrows the instance behind a `provctx` pointer.
    ///
    /// # Safety
    /// `p` is a provctx this provider returned from init and not yet torn down, or NULL.
    pub unsafe fn from_ptr(p: *mut c_void) -> Result<Arc<ProvCtx>> {
        if p.is_null() {
            return fail(Reason::Internal, "NULL provider context");
        }
        let p = p as *const ProvCtx;
        // SAFETY: per the contract, `p` came from `Arc::into_raw` in init and that
        // reference is still held (teardown has not run), so the count is at least one
        // and the new reference made here is balanced by the returned Arc's drop.
        unsafe {
            Arc::increment_strong_count(p);
            Ok(Arc::from_raw(p))
        }
    }
}
