//! The software path: a child library context of the application's, with the default
//! provider in it, used through public EVP calls only and always with the explicit
//! property query `provider=default`, so that nothing done here can come back into wd.

use std::ffi::{c_void, CStr};
use std::ptr;
use std::sync::Mutex;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl_sys as sys;

use crate::error::{fail, Reason, Result};
use crate::ffi;
use crate::ossl::{check, cstr, nonnull, Md, ParamBld, ParamsRef, Pkey, PkeyCtx, PkeyRef, RandCtx};
use crate::params::Request;

/// Every fetch of the software path.
pub const PROPQ: &CStr = c"provider=default";

/// The child library contexts this process's wd instances made, as addresses. The core
/// loads a copy of wd into each of them; a copy must not offer the random generator (the
/// child's own DRBG comes from the default provider there).
static CHILD_CONTEXTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Whether `libctx` is the child context of one of this process's wd instances.
pub fn is_child_context(libctx: *const c_void) -> bool {
    let g = CHILD_CONTEXTS.lock().unwrap_or_else(|e| e.into_inner());
    g.contains(&(libctx as usize))
}

/// The child library context and the default provider in it.
pub struct Software {
    libctx: *mut sys::OSSL_LIB_CTX,
    loaded_default: *mut sys::OSSL_PROVIDER,
}

// SAFETY: the two pointers are a library context and a provider that `Software` owns and
// frees once in `drop`; neither is tied to the thread that made it.
unsafe impl Send for Software {}
// SAFETY: through `&Software` the context is only fetched from and used to create new
// objects, which libcrypto allows from any number of threads at once (its stores are
// locked); nothing is changed or freed but in `drop`.
unsafe impl Sync for Software {}

impl std::fmt::Debug for Software {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Software")
            .field("loaded_default", &!self.loaded_default.is_null())
            .finish()
    }
}

impl Software {
    /// Creates the child library context of the provider instance `handle`.
    ///
    /// # Safety
    /// `handle` and `core_in` are what the core passed to `OSSL_provider_init` of a provider
    /// instance still loaded.
    pub unsafe fn new(
        handle: *const ffi::OSSL_CORE_HANDLE,
        core_in: *const ffi::OSSL_DISPATCH,
    ) -> Result<Software> {
        // SAFETY: per this function's contract, the handle and dispatch table of a loaded
        // instance, as OSSL_LIB_CTX_new_child requires.
        let libctx = unsafe { ffi::OSSL_LIB_CTX_new_child(handle, core_in) };
        let libctx = nonnull(libctx, "OSSL_LIB_CTX_new_child")?;
        CHILD_CONTEXTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(libctx as usize);
        let mut sw = Software {
            libctx,
            loaded_default: ptr::null_mut(),
        };
        // The application may not have loaded the default provider (`-provider wd` alone):
        // load it into the child context ourselves.
        // SAFETY: the context made just above, and a NUL-terminated name.
        let have = unsafe { ffi::OSSL_PROVIDER_available(libctx, c"default".as_ptr()) };
        if have != 1 {
            // SAFETY: as for OSSL_PROVIDER_available; the provider loaded is owned by `sw`,
            // which unloads it once, before freeing the context.
            let p = unsafe { sys::OSSL_PROVIDER_load(libctx, c"default".as_ptr()) };
            sw.loaded_default = nonnull(p, "loading the default provider into the child context")?;
        }
        Ok(sw)
    }

    /// The default provider's CTR-DRBG (the random generator wd offers in its place).
    pub fn drbg(&self) -> Result<Rand> {
        // SAFETY: our live context and NUL-terminated strings; the method fetched is owned
        // by the `Rand` made from it.
        let p = unsafe { ffi::EVP_RAND_fetch(self.libctx, c"CTR-DRBG".as_ptr(), PROPQ.as_ptr()) };
        Ok(Rand(nonnull(p, "EVP_RAND_fetch(CTR-DRBG)")?))
    }

    /// Fetches digest `name` from the default provider.
    pub fn digest(&self, name: &str) -> Result<Md> {
        let c = cstr(name)?;
        // SAFETY: our live context and NUL-terminated strings.
        let p = unsafe { sys::EVP_MD_fetch(self.libctx, c.as_ptr(), PROPQ.as_ptr()) };
        if p.is_null() {
            return fail(Reason::InvalidParameter, format!("unknown digest {name:?}"));
        }
        // SAFETY: a non-NULL digest just fetched, whose one reference `Md` owns and frees.
        Ok(unsafe { Md::from_ptr(p) })
    }

    fn ctx_from_name(&self) -> Result<PkeyCtx> {
        // SAFETY: our live context and NUL-terminated strings.
        let p = unsafe {
            sys::EVP_PKEY_CTX_new_from_name(self.libctx, c"RSA".as_ptr(), PROPQ.as_ptr())
        };
        // SAFETY: a fresh operation context that nothing else owns; `PkeyCtx` frees it once.
        Ok(unsafe { PkeyCtx::from_ptr(nonnull(p, "EVP_PKEY_CTX_new_from_name(RSA)")?) })
    }

    fn ctx_for(&self, key: &PkeyRef) -> Result<PkeyCtx> {
        // SAFETY: our live context, a valid key (up-referenced by the new context, not taken)
        // and a NUL-terminated string.
        let p =
            unsafe { ffi::EVP_PKEY_CTX_new_from_pkey(self.libctx, key.as_ptr(), PROPQ.as_ptr()) };
        // SAFETY: a fresh operation context that nothing else owns; `PkeyCtx` frees it once.
        Ok(unsafe { PkeyCtx::from_ptr(nonnull(p, "EVP_PKEY_CTX_new_from_pkey")?) })
    }

    /// A default-provider key from parameters.
    pub fn key_from_params(&self, params: &ParamsRef, private: bool) -> Result<Pkey> {
        let ctx = self.ctx_from_name()?;
        check(
            // SAFETY: a valid operation context of ours, used by this call alone.
            unsafe { sys::EVP_PKEY_fromdata_init(ctx.as_ptr()) },
            "EVP_PKEY_fromdata_init",
        )?;
        let selection = if private {
            sys::EVP_PKEY_KEYPAIR
        } else {
            sys::EVP_PKEY_PUBLIC_KEY
        };
        let mut out: *mut sys::EVP_PKEY = ptr::null_mut();
        // SAFETY: a valid operation context of ours; a terminated list that outlives the
        // call; `out` a live local that receives a new key only on success.
        let r =
            unsafe { sys::EVP_PKEY_fromdata(ctx.as_ptr(), &mut out, selection, params.as_ptr()) };
        check(r, "EVP_PKEY_fromdata")?;
        // SAFETY: a fresh key handed over by EVP_PKEY_fromdata; `Pkey` frees it once.
        Ok(unsafe { Pkey::from_ptr(nonnull(out, "EVP_PKEY_fromdata")?) })
    }

    /// Raw RSA (no padding) in software: `input^d mod n` (private) or `input^e mod n`.
    /// `input` is exactly the modulus length and below n (checked by the caller).
    pub fn raw(&self, key: &PkeyRef, private: bool, input: &[u8], k: usize) -> Result<Vec<u8>> {
        let ctx = self.ctx_for(key)?;
        // SAFETY: a valid operation context of ours, used by this call alone.
        let r = unsafe {
            if private {
                sys::EVP_PKEY_decrypt_init(ctx.as_ptr())
            } else {
                sys::EVP_PKEY_encrypt_init(ctx.as_ptr())
            }
        };
        check(r, "EVP_PKEY_{de,en}crypt_init")?;
        check(
            // SAFETY: a valid operation context of ours, initialised just above.
            unsafe { sys::EVP_PKEY_CTX_set_rsa_padding(ctx.as_ptr(), ffi::RSA_NO_PADDING) },
            "EVP_PKEY_CTX_set_rsa_padding",
        )?;
        let mut out = vec![0u8; k];
        let mut outlen = out.len();
        // SAFETY: a valid, initialised operation context of ours; `out` is writable for
        // `outlen` bytes (which libcrypto does not exceed), `input` readable for its length.
        let r = unsafe {
            if private {
                sys::EVP_PKEY_decrypt(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut outlen,
                    input.as_ptr(),
                    input.len(),
                )
            } else {
                sys::EVP_PKEY_encrypt(
                    ctx.as_ptr(),
                    out.as_mut_ptr(),
                    &mut outlen,
                    input.as_ptr(),
                    input.len(),
                )
            }
        };
        check(
            r,
            if private {
                "software RSA private operation"
            } else {
                "software RSA public operation"
            },
        )?;
        if outlen != k {
            // Left-pad a short result (cannot happen with no padding, but be exact).
            let mut v = vec![0u8; k - outlen.min(k)];
            v.extend_from_slice(&out[..outlen.min(k)]);
            return Ok(v);
        }
        Ok(out)
    }

    /// TLS RSA key-exchange decryption (`RSA_PKCS1_WITH_TLS_PADDING`), done wholly by the
    /// default provider: its implicit-rejection logic must stay constant time.
    pub fn decrypt_tls(
        &self,
        key: &PkeyRef,
        input: &[u8],
        client_version: u32,
        negotiated_version: u32,
        out: &mut [u8],
    ) -> Result<usize> {
        let ctx = self.ctx_for(key)?;
        check(
            // SAFETY: a valid operation context of ours, used by this call alone.
            unsafe { sys::EVP_PKEY_decrypt_init(ctx.as_ptr()) },
            "EVP_PKEY_decrypt_init",
        )?;
        let mut bld = ParamBld::new()?;
        bld.push_utf8(c"pad-mode", "pkcs1-tls")?;
        bld.push_uint(c"tls-client-version", client_version)?;
        bld.push_uint(c"tls-negotiated-version", negotiated_version)?;
        let params = bld.to_params()?;
        check(
            // SAFETY: a valid, initialised operation context of ours and a terminated list
            // that outlives the call (libcrypto copies what it keeps).
            unsafe { sys::EVP_PKEY_CTX_set_params(ctx.as_ptr(), params.as_ptr()) },
            "EVP_PKEY_CTX_set_params",
        )?;
        let mut outlen = out.len();
        // SAFETY: a valid, initialised operation context of ours; `out` is writable for
        // `outlen` bytes (which libcrypto does not exceed), `input` readable for its length.
        let r = unsafe {
            sys::EVP_PKEY_decrypt(
                ctx.as_ptr(),
                out.as_mut_ptr(),
                &mut outlen,
                input.as_ptr(),
                input.len(),
            )
        };
        check(r, "TLS premaster decryption")?;
        Ok(outlen)
    }

    /// Generates a key in software.
    pub fn generate(&self, bits: u32, primes: u32, e: Option<&[u8]>) -> Result<Pkey> {
        let ctx = self.ctx_from_name()?;
        check(
            // SAFETY: a valid operation context of ours, used by this call alone.
            unsafe { sys::EVP_PKEY_keygen_init(ctx.as_ptr()) },
            "EVP_PKEY_keygen_init",
        )?;
        let mut bld = ParamBld::new()?;
        bld.push_size(c"bits", bits as usize)?;
        bld.push_size(c"primes", primes as usize)?;
        if let Some(e) = e {
            bld.push_be(c"e", e)?;
        }
        let params = bld.to_params()?;
        check(
            // SAFETY: a valid, initialised operation context of ours and a terminated list
            // that outlives the call (libcrypto copies what it keeps).
            unsafe { sys::EVP_PKEY_CTX_set_params(ctx.as_ptr(), params.as_ptr()) },
            "setting key generation parameters",
        )?;
        let mut out: *mut sys::EVP_PKEY = ptr::null_mut();
        check(
            // SAFETY: a valid, initialised operation context of ours; `out` a live local
            // that receives a new key only on success.
            unsafe { sys::EVP_PKEY_generate(ctx.as_ptr(), &mut out) },
            "RSA key generation",
        )?;
        // SAFETY: a fresh key handed over by EVP_PKEY_generate; `Pkey` frees it once.
        Ok(unsafe { Pkey::from_ptr(nonnull(out, "EVP_PKEY_generate")?) })
    }

    /// Key validation by the default provider: public, private, or pairwise checks.
    pub fn validate(&self, key: &PkeyRef, public: bool, private: bool) -> Result<bool> {
        let ctx = self.ctx_for(key)?;
        // SAFETY: a valid operation context of ours for the key, used by this call alone.
        let ok = unsafe {
            let mut ok = true;
            if public && private {
                ok &= ffi::EVP_PKEY_pairwise_check(ctx.as_ptr()) == 1;
            } else if public {
                ok &= sys::EVP_PKEY_public_check(ctx.as_ptr()) == 1;
            } else if private {
                ok &= ffi::EVP_PKEY_private_check(ctx.as_ptr()) == 1;
            }
            ok
        };
        Ok(ok)
    }

    /// Asks the default provider for a signature context parameter (`algorithm-id`) under
    /// the given settings, so that what we report is byte-identical to its own.
    pub fn signature_param(
        &self,
        key: &PkeyRef,
        settings: &ParamsRef,
        name: &CStr,
    ) -> Result<Vec<u8>> {
        let ctx = self.ctx_for(key)?;
        check(
            // SAFETY: a valid operation context of ours, used by this call alone.
            unsafe { sys::EVP_PKEY_sign_init(ctx.as_ptr()) },
            "EVP_PKEY_sign_init",
        )?;
        check(
            // SAFETY: a valid, initialised operation context of ours and the caller's
            // terminated list, alive across the call.
            unsafe { sys::EVP_PKEY_CTX_set_params(ctx.as_ptr(), settings.as_ptr()) },
            "EVP_PKEY_CTX_set_params",
        )?;
        let mut req = Request::new();
        let i = req.octets(name, 1024);
        // SAFETY: a valid context; EVP_PKEY_CTX_get_params answers a terminated list as a
        // get_params does (octet strings copied within each entry's size), as `ask` needs.
        let r = unsafe { req.ask(|list| sys::EVP_PKEY_CTX_get_params(ctx.as_ptr(), list)) };
        check(r, "EVP_PKEY_CTX_get_params")?;
        match req.octets_answer(i) {
            Some(v) => Ok(v.to_vec()),
            None => fail(
                Reason::Software,
                format!("default provider gave no {}", name.to_string_lossy()),
            ),
        }
    }
}

/// A fetched random generator (`EVP_RAND`), freed on drop.
#[derive(Debug)]
pub struct Rand(*mut ffi::EVP_RAND);

impl Rand {
    /// A new, uninstantiated generator of this kind with no parent: it seeds itself from
    /// the operating system.
    pub fn new_ctx(&self) -> Result<RandCtx> {
        // SAFETY: our fetched method (the new context up-references it); a NULL parent is
        // allowed.
        let c = unsafe { ffi::EVP_RAND_CTX_new(self.0, ptr::null_mut()) };
        // SAFETY: a fresh generator that nothing else owns; `RandCtx` frees it once.
        Ok(unsafe { RandCtx::from_ptr(nonnull(c, "EVP_RAND_CTX_new")?) })
    }

    /// The generator's gettable context parameters (static in the default provider).
    pub fn gettable_ctx_params(&self) -> *const ffi::OSSL_PARAM {
        // SAFETY: reads our fetched method, alive while `self` is.
        unsafe { ffi::EVP_RAND_gettable_ctx_params(self.0) }
    }

    /// The generator's settable context parameters (static in the default provider).
    pub fn settable_ctx_params(&self) -> *const ffi::OSSL_PARAM {
        // SAFETY: reads our fetched method, alive while `self` is.
        unsafe { ffi::EVP_RAND_settable_ctx_params(self.0) }
    }
}

impl Drop for Rand {
    fn drop(&mut self) {
        // SAFETY: the method `drbg` fetched, owned by this `Rand` alone and freed only here.
        unsafe { ffi::EVP_RAND_free(self.0) }
    }
}

impl Drop for Software {
    fn drop(&mut self) {
        CHILD_CONTEXTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| *c != self.libctx as usize);
        // SAFETY: both are ours alone and freed only here (`drop` runs once); the provider
        // is unloaded before the context it lives in is freed.
        unsafe {
            if !self.loaded_default.is_null() {
                sys::OSSL_PROVIDER_unload(self.loaded_default);
            }
            sys::OSSL_LIB_CTX_free(self.libctx);
        }
    }
}
