//! Owned libcrypto objects (foreign-types wrappers over openssl-sys pointers) and the few
//! bignum and parameter helpers the provider needs. Every libcrypto call the provider
//! makes outside the FFI module goes through here or through the operation files.

use std::ffi::{c_int, c_uint, CStr, CString};
use std::ptr;

use foreign_types::{foreign_type, ForeignType, ForeignTypeRef};
use openssl_sys as sys;

use crate::error::{fail, Error, Reason, Result};
use crate::ffi;

foreign_type! {
    type CType = sys::BIGNUM;
    fn drop = sys::BN_clear_free;
    /// A bignum (cleared on free).
    pub struct Bn;
    /// Borrowed [`Bn`].
    pub struct BnRef;
}

foreign_type! {
    type CType = sys::BN_CTX;
    fn drop = sys::BN_CTX_free;
    /// Scratch space for bignum arithmetic.
    pub struct BnCtx;
    /// Borrowed [`BnCtx`].
    pub struct BnCtxRef;
}

foreign_type! {
    type CType = ffi::BN_MONT_CTX;
    fn drop = ffi::BN_MONT_CTX_free;
    /// Montgomery context of a modulus (read-only once set: shareable between threads).
    pub struct Mont;
    /// Borrowed [`Mont`].
    pub struct MontRef;
}

foreign_type! {
    type CType = sys::EVP_PKEY;
    fn drop = sys::EVP_PKEY_free;
    /// A key of the software path (owned by the default provider in the child context).
    pub struct Pkey;
    /// Borrowed [`Pkey`].
    pub struct PkeyRef;
}

foreign_type! {
    type CType = sys::EVP_PKEY_CTX;
    fn drop = sys::EVP_PKEY_CTX_free;
    /// An operation context of the software path.
    pub struct PkeyCtx;
    /// Borrowed [`PkeyCtx`].
    pub struct PkeyCtxRef;
}

foreign_type! {
    type CType = sys::EVP_MD;
    fn drop = sys::EVP_MD_free;
    /// A fetched digest.
    pub struct Md;
    /// Borrowed [`Md`].
    pub struct MdRef;
}

foreign_type! {
    type CType = sys::EVP_MD_CTX;
    fn drop = sys::EVP_MD_CTX_free;
    /// A digest in progress.
    pub struct MdCtx;
    /// Borrowed [`MdCtx`].
    pub struct MdCtxRef;
}

foreign_type! {
    type CType = sys::RSA;
    fn drop = sys::RSA_free;
    /// A public-only RSA object, used only to tell libcrypto's padding functions the
    /// modulus size.
    pub struct Rsa;
    /// Borrowed [`Rsa`].
    pub struct RsaRef;
}

foreign_type! {
    type CType = ffi::EVP_RAND_CTX;
    fn drop = ffi::EVP_RAND_CTX_free;
    /// A random generator instance (of the software path's DRBG).
    pub struct RandCtx;
    /// Borrowed [`RandCtx`].
    pub struct RandCtxRef;
}

foreign_type! {
    type CType = sys::OSSL_PARAM;
    fn drop = sys::OSSL_PARAM_free;
    /// A parameter list made by [`ParamBld`].
    pub struct Params;
    /// Borrowed [`Params`].
    pub struct ParamsRef;
}

// SAFETY: a BIGNUM is a heap object with no tie to the thread that made it; a `Bn` owns
// its BIGNUM alone, so moving the `Bn` moves all access to it.
unsafe impl Send for Bn {}
// SAFETY: through `&Bn` (a `&BnRef`) this module only ever reads the number: every method
// that writes a bignum takes it by `&mut` or writes a fresh one it returns.
unsafe impl Sync for Bn {}
// SAFETY: a BN_MONT_CTX has no tie to the thread that made it and a `Mont` owns it alone.
unsafe impl Send for Mont {}
// SAFETY: the context is written only by `Mont::new`, before anyone else can see it;
// through `&Mont` it is only read (as libcrypto's own RSA shares its cached contexts).
unsafe impl Sync for Mont {}
// SAFETY: an EVP_PKEY has no tie to the thread that made it; `Pkey` holds one reference.
unsafe impl Send for Pkey {}
// SAFETY: a built EVP_PKEY may be used by several operations on several threads at once
// (its reference count and caches are locked inside libcrypto); we never modify one after
// building it.
unsafe impl Sync for Pkey {}
// SAFETY: an EVP_MD is a method object with no tie to the thread that fetched it; `Md`
// holds one reference (counted atomically).
unsafe impl Send for Md {}
// SAFETY: a fetched EVP_MD is immutable; through `&Md` it is only read or up-referenced,
// which libcrypto does atomically.
unsafe impl Sync for Md {}
// SAFETY: an RSA object has no tie to the thread that made it and an `Rsa` owns it alone.
unsafe impl Send for Rsa {}
// SAFETY: our RSA objects hold only n and e, set in `Rsa::public` before anyone else sees
// them; the padding functions given `&Rsa` only read them.
unsafe impl Sync for Rsa {}

/// A null-checked pointer from a constructor, or an error naming what failed.
#[track_caller]
pub fn nonnull<T>(p: *mut T, what: &str) -> Result<*mut T> {
    if p.is_null() {
        fail(
            Reason::Software,
            format!("{what} failed{}", last_error_text()),
        )
    } else {
        Ok(p)
    }
}

/// Text of the newest error on the thread's queue (without removing it), for messages.
pub fn last_error_text() -> String {
    // SAFETY: no arguments; reads the calling thread's error queue without changing it.
    let code = unsafe { ffi::ERR_peek_last_error() };
    if code == 0 {
        return String::new();
    }
    let mut buf = [0 as std::ffi::c_char; 256];
    // SAFETY: `buf` is writable for `buf.len()` bytes, which ERR_error_string_n does not
    // exceed, NUL terminator included.
    unsafe { ffi::ERR_error_string_n(code, buf.as_mut_ptr(), buf.len()) };
    // SAFETY: `buf` holds a NUL-terminated string (written just above) and outlives `s`.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    format!(": {}", s.to_string_lossy())
}

/// Checks a libcrypto 1-is-success return.
#[track_caller]
pub fn check(r: c_int, what: &str) -> Result<()> {
    if r > 0 {
        Ok(())
    } else {
        fail(
            Reason::Software,
            format!("{what} failed{}", last_error_text()),
        )
    }
}

impl Bn {
    /// A new bignum, zero.
    pub fn new() -> Result<Bn> {
        // SAFETY: a constructor without arguments.
        let p = unsafe { sys::BN_new() };
        // SAFETY: a fresh BIGNUM that nothing else owns; `Bn` frees it once.
        Ok(unsafe { Bn::from_ptr(nonnull(p, "BN_new")?) })
    }

    /// A bignum from big-endian bytes.
    pub fn from_be(bytes: &[u8]) -> Result<Bn> {
        let len = c_int::try_from(bytes.len())
            .map_err(|_| Error::new(Reason::InvalidParameter, "number too long"))?;
        // SAFETY: `bytes` is readable for `len` bytes; a NULL `ret` asks for a new BIGNUM.
        let p = unsafe { sys::BN_bin2bn(bytes.as_ptr(), len, ptr::null_mut()) };
        // SAFETY: a fresh BIGNUM that nothing else owns; `Bn` frees it once.
        Ok(unsafe { Bn::from_ptr(nonnull(p, "BN_bin2bn")?) })
    }

    /// 2^`bit`.
    pub fn power_of_two(bit: u32) -> Result<Bn> {
        let r = Bn::new()?;
        let bit = c_int::try_from(bit)
            .map_err(|_| Error::new(Reason::Internal, "bit index too large"))?;
        check(
            // SAFETY: a valid, owned BIGNUM; BN_set_bit grows it as needed for any
            // non-negative index (and fails cleanly without memory).
            unsafe { sys::BN_set_bit(r.as_ptr(), bit) },
            "BN_set_bit",
        )?;
        Ok(r)
    }
}

impl BnRef {
    /// Significant bits.
    pub fn bits(&self) -> u32 {
        // SAFETY: reads a valid BIGNUM.
        unsafe { sys::BN_num_bits(self.as_ptr()) as u32 }
    }

    /// Whether bit `i` is set (false beyond the number's length).
    pub fn bit(&self, i: u32) -> bool {
        let Ok(i) = c_int::try_from(i) else {
            return false;
        };
        // SAFETY: reads a valid BIGNUM; any index is allowed (out of range reads as 0).
        unsafe { sys::BN_is_bit_set(self.as_ptr(), i) == 1 }
    }

    /// A copy.
    pub fn dup(&self) -> Result<Bn> {
        // SAFETY: reads a valid BIGNUM into a new one.
        let p = unsafe { ffi::BN_dup(self.as_ptr()) };
        // SAFETY: a fresh BIGNUM that nothing else owns; `Bn` frees it once.
        Ok(unsafe { Bn::from_ptr(nonnull(p, "BN_dup")?) })
    }

    /// Minimal big-endian bytes (empty for zero).
    pub fn to_be(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.bits().div_ceil(8) as usize];
        // SAFETY: BN_bn2bin writes BN_num_bytes(self) bytes, which is `v`'s length.
        let n = unsafe { sys::BN_bn2bin(self.as_ptr(), v.as_mut_ptr()) };
        v.truncate(n.max(0) as usize);
        v
    }

    /// Big-endian bytes left-padded to `len`.
    pub fn to_be_padded(&self, len: usize) -> Result<Vec<u8>> {
        let tolen =
            c_int::try_from(len).map_err(|_| Error::new(Reason::Internal, "field too long"))?;
        let mut v = vec![0u8; len];
        // SAFETY: BN_bn2binpad writes exactly `tolen` = `v.len()` bytes, or nothing (and
        // -1) when the number does not fit.
        let n = unsafe { sys::BN_bn2binpad(self.as_ptr(), v.as_mut_ptr(), tolen) };
        if n < 0 {
            return fail(Reason::Internal, "number longer than its field");
        }
        Ok(v)
    }
}

impl BnCtx {
    /// A new scratch context.
    pub fn new() -> Result<BnCtx> {
        // SAFETY: a constructor without arguments.
        let p = unsafe { sys::BN_CTX_new() };
        // SAFETY: a fresh BN_CTX that nothing else owns; `BnCtx` frees it once.
        Ok(unsafe { BnCtx::from_ptr(nonnull(p, "BN_CTX_new")?) })
    }
}

impl Mont {
    /// The Montgomery context of odd modulus `m`.
    pub fn new(m: &BnRef) -> Result<Mont> {
        let ctx = BnCtx::new()?;
        // SAFETY: a constructor without arguments.
        let p = unsafe { ffi::BN_MONT_CTX_new() };
        // SAFETY: a fresh BN_MONT_CTX that nothing else owns; `Mont` frees it once.
        let mont = unsafe { Mont::from_ptr(nonnull(p, "BN_MONT_CTX_new")?) };
        check(
            // SAFETY: three valid objects, `mont` not yet shared; an even or zero `m` makes
            // BN_MONT_CTX_set fail, not misbehave.
            unsafe { ffi::BN_MONT_CTX_set(mont.as_ptr(), m.as_ptr(), ctx.as_ptr()) },
            "BN_MONT_CTX_set",
        )?;
        Ok(mont)
    }
}

impl MontRef {
    /// `a·b·R⁻¹ mod m`, a Montgomery product modulo this context's `m`.
    pub fn mul(&self, a: &BnRef, b: &BnRef, ctx: &BnCtxRef) -> Result<Bn> {
        let mut r = Bn::new()?;
        self.mul_assign(&mut r, a, b, ctx)?;
        Ok(r)
    }

    /// `r = r·b·R⁻¹ mod m`, in place.
    pub fn mul_in_place(&self, r: &mut BnRef, b: &BnRef, ctx: &BnCtxRef) -> Result<()> {
        let rp = r.as_ptr();
        check(
            // SAFETY: valid bignums and contexts, `r` borrowed uniquely (so not `b`);
            // BN_mod_mul_montgomery allows its result to be its first factor and only reads
            // the Montgomery context, which may be shared.
            unsafe { ffi::BN_mod_mul_montgomery(rp, rp, b.as_ptr(), self.as_ptr(), ctx.as_ptr()) },
            "BN_mod_mul_montgomery",
        )
    }

    /// `r = r²·R⁻¹ mod m`, in place.
    pub fn square_in_place(&self, r: &mut BnRef, ctx: &BnCtxRef) -> Result<()> {
        let rp = r.as_ptr();
        check(
            // SAFETY: a valid bignum borrowed uniquely and valid contexts;
            // BN_mod_mul_montgomery allows result and factors to be one number (it squares
            // so itself) and only reads the Montgomery context.
            unsafe { ffi::BN_mod_mul_montgomery(rp, rp, rp, self.as_ptr(), ctx.as_ptr()) },
            "BN_mod_mul_montgomery",
        )
    }

    fn mul_assign(&self, r: &mut BnRef, a: &BnRef, b: &BnRef, ctx: &BnCtxRef) -> Result<()> {
        check(
            // SAFETY: valid bignums and contexts, `r` borrowed uniquely (so neither `a` nor
            // `b`); the Montgomery context is only read.
            unsafe {
                ffi::BN_mod_mul_montgomery(
                    r.as_ptr(),
                    a.as_ptr(),
                    b.as_ptr(),
                    self.as_ptr(),
                    ctx.as_ptr(),
                )
            },
            "BN_mod_mul_montgomery",
        )
    }

    /// `x·R⁻¹ mod m`, one Montgomery reduction (exact for `x < m·R`).
    pub fn reduce(&self, x: &BnRef, ctx: &BnCtxRef) -> Result<Bn> {
        let r = Bn::new()?;
        check(
            // SAFETY: valid bignums and contexts, `r` our own; the Montgomery context is
            // only read. A wider `x` gives a wrong number, not a memory error: libcrypto
            // works on a copy of `x` grown to at least twice the modulus's words.
            unsafe { ffi::BN_from_montgomery(r.as_ptr(), x.as_ptr(), self.as_ptr(), ctx.as_ptr()) },
            "BN_from_montgomery",
        )?;
        Ok(r)
    }
}

/// `base^exp mod m` with `mont`, the Montgomery context of `m`.
pub fn mod_exp(base: &BnRef, exp: &BnRef, m: &BnRef, mont: &MontRef) -> Result<Bn> {
    let ctx = BnCtx::new()?;
    let r = Bn::new()?;
    check(
        // SAFETY: valid bignums and contexts, `r` our own; BN_mod_exp_mont only reads the
        // Montgomery context, which the caller made for `m` (a wrong one gives a wrong
        // number, not a memory error).
        unsafe {
            ffi::BN_mod_exp_mont(
                r.as_ptr(),
                base.as_ptr(),
                exp.as_ptr(),
                m.as_ptr(),
                ctx.as_ptr(),
                mont.as_ptr(),
            )
        },
        "BN_mod_exp_mont",
    )?;
    Ok(r)
}

/// `a mod m`, non-negative.
pub fn nnmod(a: &BnRef, m: &BnRef) -> Result<Bn> {
    let ctx = BnCtx::new()?;
    let r = Bn::new()?;
    check(
        // SAFETY: valid bignums and context, `r` our own; a zero `m` makes BN_nnmod fail.
        unsafe { sys::BN_nnmod(r.as_ptr(), a.as_ptr(), m.as_ptr(), ctx.as_ptr()) },
        "BN_nnmod",
    )?;
    Ok(r)
}

/// `a * b`.
pub fn mul(a: &BnRef, b: &BnRef) -> Result<Bn> {
    let ctx = BnCtx::new()?;
    let r = Bn::new()?;
    check(
        // SAFETY: valid bignums and context, `r` our own and distinct from `a` and `b`.
        unsafe { sys::BN_mul(r.as_ptr(), a.as_ptr(), b.as_ptr(), ctx.as_ptr()) },
        "BN_mul",
    )?;
    Ok(r)
}

/// `a == b`.
pub fn bn_eq(a: &BnRef, b: &BnRef) -> bool {
    // SAFETY: reads two valid bignums.
    unsafe { sys::BN_cmp(a.as_ptr(), b.as_ptr()) == 0 }
}

/// Wipes `buf` (a write the compiler may not drop, as libcrypto wipes its own secrets).
pub fn cleanse(buf: &mut [u8]) {
    if !buf.is_empty() {
        // SAFETY: `buf` is writable for its length.
        unsafe { ffi::OPENSSL_cleanse(buf.as_mut_ptr().cast(), buf.len()) }
    }
}

/// The security strength in bits of an RSA (or finite-field) key of `bits` bits.
pub fn security_bits(bits: u32) -> i32 {
    let bits = c_int::try_from(bits).unwrap_or(c_int::MAX);
    // SAFETY: a pure function of two integers.
    unsafe { ffi::BN_security_bits(bits, -1) }
}

/// A C string for libcrypto from Rust text.
pub fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(Reason::InvalidParameter, "string with a NUL byte"))
}

impl Rsa {
    /// A public RSA object (n, e) for the padding functions.
    pub fn public(n: &[u8], e: &[u8]) -> Result<Rsa> {
        let n = Bn::from_be(n)?;
        let e = Bn::from_be(e)?;
        // SAFETY: a constructor without arguments.
        let p = unsafe { sys::RSA_new() };
        // SAFETY: a fresh RSA object that nothing else owns; `Rsa` frees it once.
        let r = unsafe { Rsa::from_ptr(nonnull(p, "RSA_new")?) };
        check(
            // SAFETY: valid objects; on success RSA_set0_key takes over `n` and `e` (they
            // are forgotten below, so freed once, with `r`); on failure it takes nothing and
            // they are freed here.
            unsafe { sys::RSA_set0_key(r.as_ptr(), n.as_ptr(), e.as_ptr(), ptr::null_mut()) },
            "RSA_set0_key",
        )?;
        std::mem::forget(n);
        std::mem::forget(e);
        Ok(r)
    }
}

impl RsaRef {
    /// The modulus length in bytes.
    pub fn size(&self) -> usize {
        // SAFETY: reads a valid RSA object that has its modulus (set in `Rsa::public`).
        unsafe { sys::RSA_size(self.as_ptr()).max(0) as usize }
    }
}

impl PkeyRef {
    /// The key's bignum parameter `name` (big-endian, minimal), if it has one.
    pub fn bn_param(&self, name: &CStr) -> Option<Vec<u8>> {
        let mut b: *mut sys::BIGNUM = ptr::null_mut();
        // SAFETY: a valid key and NUL-terminated name; `b` is a live local that receives a
        // new BIGNUM only on success.
        let r = unsafe { sys::EVP_PKEY_get_bn_param(self.as_ptr(), name.as_ptr(), &mut b) };
        if r != 1 || b.is_null() {
            return None;
        }
        // SAFETY: a fresh BIGNUM that EVP_PKEY_get_bn_param handed over; `Bn` frees it once.
        let b = unsafe { Bn::from_ptr(b) };
        Some(b.to_be())
    }
}

impl MdRef {
    /// Output size in bytes.
    pub fn size(&self) -> usize {
        // SAFETY: reads a valid fetched digest.
        unsafe { sys::EVP_MD_get_size(self.as_ptr()).max(0) as usize }
    }

    /// The digest's NID.
    pub fn nid(&self) -> c_int {
        // SAFETY: reads a valid fetched digest.
        unsafe { sys::EVP_MD_get_type(self.as_ptr()) }
    }
}

impl Clone for Md {
    fn clone(&self) -> Md {
        // SAFETY: a valid digest; the up-reference made here is the one the new `Md` owns
        // and frees, so the count stays balanced.
        unsafe {
            ffi::EVP_MD_up_ref(self.as_ptr());
            Md::from_ptr(self.as_ptr())
        }
    }
}

impl MdCtx {
    fn new() -> Result<MdCtx> {
        // SAFETY: a constructor without arguments.
        let p = unsafe { sys::EVP_MD_CTX_new() };
        // SAFETY: a fresh digest context that nothing else owns; `MdCtx` frees it once.
        Ok(unsafe { MdCtx::from_ptr(nonnull(p, "EVP_MD_CTX_new")?) })
    }

    /// A digest context started with `md`.
    pub fn start(md: &MdRef) -> Result<MdCtx> {
        let c = MdCtx::new()?;
        check(
            // SAFETY: a valid, unshared digest context and a valid digest; NULL parameters
            // are allowed.
            unsafe { ffi::EVP_DigestInit_ex2(c.as_ptr(), md.as_ptr(), ptr::null()) },
            "EVP_DigestInit_ex2",
        )?;
        Ok(c)
    }

    /// A copy of the state.
    pub fn duplicate(&self) -> Result<MdCtx> {
        let c = MdCtx::new()?;
        check(
            // SAFETY: two valid digest contexts, distinct (`c` is fresh); `self` is only read.
            unsafe { sys::EVP_MD_CTX_copy_ex(c.as_ptr(), self.as_ptr()) },
            "EVP_MD_CTX_copy_ex",
        )?;
        Ok(c)
    }
}

impl MdCtxRef {
    /// Hashes more data.
    pub fn update(&self, data: &[u8]) -> Result<()> {
        check(
            // SAFETY: a valid digest context, not `Send`/`Sync` so used by no other call
            // meanwhile; `data` readable for its length.
            unsafe { sys::EVP_DigestUpdate(self.as_ptr(), data.as_ptr().cast(), data.len()) },
            "EVP_DigestUpdate",
        )
    }

    /// Finishes the digest.
    pub fn finish(&self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; sys::EVP_MAX_MD_SIZE as usize];
        let mut len: std::ffi::c_uint = 0;
        check(
            // SAFETY: a valid digest context used by no other call meanwhile (as in
            // `update`); `out` has EVP_MAX_MD_SIZE bytes, the most any digest writes.
            unsafe { sys::EVP_DigestFinal_ex(self.as_ptr(), out.as_mut_ptr(), &mut len) },
            "EVP_DigestFinal_ex",
        )?;
        out.truncate(len as usize);
        Ok(out)
    }
}

/// A parameter list to hand to libcrypto (`OSSL_PARAM_BLD`), built from Rust values.
///
/// The builder keeps pointers to what is pushed until [`ParamBld::to_params`] copies it out,
/// so it owns a copy of every bignum, string and byte string pushed; keys are `'static` (the
/// finished list points at them).
pub struct ParamBld {
    /// The builder, owned (freed on drop).
    raw: *mut sys::OSSL_PARAM_BLD,
    bns: Vec<Bn>,
    strings: Vec<CString>,
    octets: Vec<Vec<u8>>,
}

impl ParamBld {
    /// A new builder.
    pub fn new() -> Result<ParamBld> {
        // SAFETY: a constructor without arguments.
        let p = unsafe { sys::OSSL_PARAM_BLD_new() };
        Ok(ParamBld {
            raw: nonnull(p, "OSSL_PARAM_BLD_new")?,
            bns: Vec::new(),
            strings: Vec::new(),
            octets: Vec::new(),
        })
    }

    /// Adds a bignum (kept by the builder until the list is made).
    pub fn push_bn(&mut self, key: &'static CStr, bn: Bn) -> Result<()> {
        check(
            // SAFETY: a valid builder; `key` is 'static; `bn` is moved into `self.bns` below,
            // so it lives (at an unchanged heap address) until `to_params` reads it.
            unsafe { sys::OSSL_PARAM_BLD_push_BN(self.raw, key.as_ptr(), bn.as_ptr()) },
            "OSSL_PARAM_BLD_push_BN",
        )?;
        self.bns.push(bn);
        Ok(())
    }

    /// Adds a bignum given as big-endian bytes.
    pub fn push_be(&mut self, key: &'static CStr, bytes: &[u8]) -> Result<()> {
        self.push_bn(key, Bn::from_be(bytes)?)
    }

    /// Adds a C `int`.
    pub fn push_int(&mut self, key: &'static CStr, v: c_int) -> Result<()> {
        check(
            // SAFETY: a valid builder; `key` is 'static; the value is copied at once.
            unsafe { sys::OSSL_PARAM_BLD_push_int(self.raw, key.as_ptr(), v) },
            "OSSL_PARAM_BLD_push_int",
        )
    }

    /// Adds a C `unsigned int`.
    pub fn push_uint(&mut self, key: &'static CStr, v: c_uint) -> Result<()> {
        check(
            // SAFETY: a valid builder; `key` is 'static; the value is copied at once.
            unsafe { sys::OSSL_PARAM_BLD_push_uint(self.raw, key.as_ptr(), v) },
            "OSSL_PARAM_BLD_push_uint",
        )
    }

    /// Adds a `size_t`.
    pub fn push_size(&mut self, key: &'static CStr, v: usize) -> Result<()> {
        check(
            // SAFETY: a valid builder; `key` is 'static; the value is copied at once.
            unsafe { sys::OSSL_PARAM_BLD_push_size_t(self.raw, key.as_ptr(), v) },
            "OSSL_PARAM_BLD_push_size_t",
        )
    }

    /// Adds a UTF-8 string (copied; kept by the builder until the list is made).
    pub fn push_utf8(&mut self, key: &'static CStr, v: &str) -> Result<()> {
        let c = cstr(v)?;
        check(
            // SAFETY: a valid builder; `key` is 'static; `c` is NUL-terminated (length 0
            // asks libcrypto to measure it) and moved into `self.strings` below, its heap
            // buffer unmoved, so it lives until `to_params` copies it.
            unsafe { sys::OSSL_PARAM_BLD_push_utf8_string(self.raw, key.as_ptr(), c.as_ptr(), 0) },
            "OSSL_PARAM_BLD_push_utf8_string",
        )?;
        self.strings.push(c);
        Ok(())
    }

    /// Adds an octet string (copied; kept by the builder until the list is made).
    pub fn push_octets(&mut self, key: &'static CStr, v: &[u8]) -> Result<()> {
        let v = v.to_vec();
        check(
            // SAFETY: a valid builder; `key` is 'static; `v` is readable for its length and
            // moved into `self.octets` below, its heap buffer unmoved, so it lives until
            // `to_params` copies it.
            unsafe {
                sys::OSSL_PARAM_BLD_push_octet_string(
                    self.raw,
                    key.as_ptr(),
                    v.as_ptr().cast(),
                    v.len(),
                )
            },
            "OSSL_PARAM_BLD_push_octet_string",
        )?;
        self.octets.push(v);
        Ok(())
    }

    /// The finished parameter list (a copy of everything pushed: the builder and what it
    /// kept are freed).
    pub fn to_params(self) -> Result<Params> {
        // SAFETY: a valid builder whose pushed values are all alive in `self`.
        let p = unsafe { sys::OSSL_PARAM_BLD_to_param(self.raw) };
        // SAFETY: a fresh list that nothing else owns; `Params` frees it once with
        // OSSL_PARAM_free. It points only at its own copies and at the 'static keys.
        Ok(unsafe { Params::from_ptr(nonnull(p, "OSSL_PARAM_BLD_to_param")?) })
    }
}

impl Drop for ParamBld {
    fn drop(&mut self) {
        // SAFETY: `raw` is the builder `new` made, owned by this value alone and freed only
        // here; the values it points at are dropped after it (fields drop after `drop`).
        unsafe { sys::OSSL_PARAM_BLD_free(self.raw) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::input_of;

    #[test]
    fn param_builder_round_trips_every_kind_it_takes() {
        let mut b = ParamBld::new().unwrap();
        b.push_int(c"i", -7).unwrap();
        b.push_uint(c"u", 7).unwrap();
        b.push_size(c"z", 1 << 40).unwrap();
        b.push_utf8(c"s", "pkcs1-tls").unwrap();
        b.push_octets(c"o", &[1, 2, 3]).unwrap();
        b.push_be(c"n", &[0x01, 0x00, 0x01]).unwrap();
        // Pushed values are owned by the builder: nothing of the caller's need outlive it.
        let params = {
            let s = String::from("SHA256");
            b.push_utf8(c"d", &s).unwrap();
            drop(s);
            b.to_params().unwrap()
        };
        let p = input_of(&params);
        assert_eq!(p.get(c"i").unwrap().int().unwrap(), -7);
        assert_eq!(p.get(c"u").unwrap().uint().unwrap(), 7);
        assert_eq!(p.get(c"z").unwrap().size().unwrap(), 1 << 40);
        assert_eq!(p.get(c"s").unwrap().utf8().unwrap(), "pkcs1-tls");
        assert_eq!(p.get(c"d").unwrap().utf8().unwrap(), "SHA256");
        assert_eq!(p.get(c"o").unwrap().octets().unwrap(), [1, 2, 3]);
        assert_eq!(
            p.get(c"n").unwrap().bn().unwrap().to_be(),
            [0x01, 0x00, 0x01]
        );
        assert!(p.get(c"absent").is_none());
    }
}
