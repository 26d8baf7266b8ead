//! The WarpDrive queue API for C (include/wd/queue.h): the user API of the 2018 RFC —
//! `wd_request_queue`, `wd_release_queue`, `wd_send`, `wd_recv`, `wd_recv_sync`,
//! `wd_mem_share`, `wd_mem_unshare` — over wd-core queues and the HPRE driver.
//!
//! A queue is requested for an algorithm; for `"rsa"` it is an HPRE queue and `void *req`
//! is a `struct wd_rsa_req` ([`WdRsaReq`]). Requests are asynchronous: `wd_send` copies the
//! key and input into the queue's DMA memory and returns; the same `req` pointer comes back
//! from `wd_recv`/`wd_recv_sync` with `status` and `out` filled. Where queues come from is
//! `WD_DEVICES`, as everywhere in wd (`wd_core::select`): `auto`/`uacce` (the kernel's uacce
//! devices), `model` (the device model, `WD_MODEL_*` knobs; builds with the `model`
//! feature), `none`, or — for tests only — `fake-uacce:<fixture dir>` (the uacce backend on
//! the fake kernel over a fixture sysfs tree, queues backed by the model).

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use hisi_hpre::{Hpre, RsaJob, RsaKey};
use wd_core::wait::WaitPolicy;
use wd_core::{DriverQueue, Error, Iova, Region, Result};

use crate::{guard, status};

/// `WD_RSA_PUBLIC`: `out = in^e mod n` (key: `n`, `e`).
pub const WD_RSA_PUBLIC: c_int = 0;
/// `WD_RSA_PRIVATE`: `out = in^d mod n` (key: `n`, `d`).
pub const WD_RSA_PRIVATE: c_int = 1;
/// `WD_RSA_PRIVATE_CRT`: CRT private key (`n_len` = modulus bytes; `p`, `q`, `dp`, `dq`,
/// `qinv`).
pub const WD_RSA_PRIVATE_CRT: c_int = 2;

/// `struct wd_rsa_req`: one RSA modular exponentiation (see queue.h). Numbers are
/// big-endian byte strings; leading zeros are allowed.
#[repr(C)]
#[derive(Debug)]
pub struct WdRsaReq {
    /// `WD_RSA_PUBLIC`, `WD_RSA_PRIVATE` or `WD_RSA_PRIVATE_CRT`.
    pub op: c_int,
    /// Modulus (may be NULL for CRT).
    pub n: *const u8,
    /// Bytes of `n`; for CRT the modulus size.
    pub n_len: usize,
    /// Public exponent.
    pub e: *const u8,
    /// Bytes of `e`.
    pub e_len: usize,
    /// Private exponent.
    pub d: *const u8,
    /// Bytes of `d`.
    pub d_len: usize,
    /// First prime (CRT).
    pub p: *const u8,
    /// Bytes of `p`.
    pub p_len: usize,
    /// Second prime (CRT).
    pub q: *const u8,
    /// Bytes of `q`.
    pub q_len: usize,
    /// `d mod (p-1)` (CRT).
    pub dp: *const u8,
    /// Bytes of `dp`.
    pub dp_len: usize,
    /// `d mod (q-1)` (CRT).
    pub dq: *const u8,
    /// Bytes of `dq`.
    pub dq_len: usize,
    /// `q^-1 mod p` (CRT).
    pub qinv: *const u8,
    /// Bytes of `qinv`.
    pub qinv_len: usize,
    /// Input, at most the modulus size.
    pub input: *const u8,
    /// Bytes of `input`.
    pub in_len: usize,
    /// Output buffer, at least the modulus size.
    pub out: *mut u8,
    /// Bytes of `out`.
    pub out_len: usize,
    /// Set when the request comes back: 0, or a negative errno.
    pub status: c_int,
    /// Set when the request comes back: bytes written to `out` (the modulus size; leading
    /// zeros kept).
    pub out_bytes: usize,
    /// The caller's, never touched.
    pub opaque: *mut c_void,
}

struct Share {
    len: usize,
    iova: Iova,
    _region: Region,
}

struct Inner {
    q: DriverQueue<Hpre>,
    shares: BTreeMap<usize, Share>,
}

/// `struct wd_queue`: opaque to C.
pub struct WdQueue {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for WdQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.try_lock() {
            Ok(i) => f
                .debug_struct("WdQueue")
                .field("queue", i.q.queue())
                .field("shares", &i.shares.len())
                .finish(),
            Err(_) => f.write_str("WdQueue { <busy> }"),
        }
    }
}

fn lock(q: &WdQueue) -> std::sync::MutexGuard<'_, Inner> {
    q.inner.lock().unwrap_or_else(|e| e.into_inner())
}

fn request(alg: &str, dev: Option<&str>) -> Result<WdQueue> {
    if alg != hisi_hpre::ALGORITHM {
        return Err(Error::Unsupported(format!(
            "algorithm {alg:?}: queues of this API do \"rsa\" (compression: wd/comp.h)"
        )));
    }
    crate::plug_devices();
    let (devices, backends) = wd_core::select::activate_process()?;
    if backends.is_empty() {
        return Err(Error::NoDevice(format!("WD_DEVICES={devices}")));
    }
    let found = wd_core::registry::find(hisi_hpre::DRIVER, alg, backends)?;
    let mut last = None;
    for d in found
        .iter()
        .filter(|d| dev.is_none_or(|n| d.info().name == n))
    {
        match hisi_hpre::open_queue(d, WaitPolicy::default()) {
            Ok(q) => {
                return Ok(WdQueue {
                    inner: Mutex::new(Inner {
                        q,
                        shares: BTreeMap::new(),
                    }),
                })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::NoDevice(format!("no device {} offering {alg}", dev.unwrap_or("")))
    }))
}

/// A C string argument, or `None` for NULL.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn c_str<'a>(p: *const c_char) -> std::result::Result<Option<&'a str>, c_int> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map(Some)
        .map_err(|_| -libc::EINVAL)
}

/// Requests a queue for `alg` (`"rsa"`), on device `dev` or (NULL) any device offering it,
/// most free queues first. 0 and `*q` set, or: -EINVAL (NULL `q`, bad string), -EOPNOTSUPP
/// (algorithm), -ENODEV (no device), -EBUSY (every queue in use: fall back to software),
/// another negative errno from the kernel.
///
/// # Safety
/// `q` must be writable; `alg` and `dev` NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn wd_request_queue(
    q: *mut *mut WdQueue,
    alg: *const c_char,
    dev: *const c_char,
) -> c_int {
    guard(|| {
        if q.is_null() || alg.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: the caller's contract for `alg` and `dev`.
        let (alg, dev) = match unsafe { (c_str(alg), c_str(dev)) } {
            (Ok(Some(a)), Ok(d)) => (a, d),
            _ => return -libc::EINVAL,
        };
        match request(alg, dev) {
            Ok(w) => {
                // SAFETY: `q` is non-NULL and writable by the caller's contract.
                unsafe { *q = Box::into_raw(Box::new(w)) };
                0
            }
            Err(e) => {
                wd_core::wd_log!(Info, "libwd: wd_request_queue({alg}): {e}");
                status(&e)
            }
        }
    })
}

/// Releases a queue (NULL is allowed). Requests still in flight are dropped: their
/// `req` structs are never returned. Shared memory is unshared.
///
/// # Safety
/// `q` is NULL or a queue from `wd_request_queue` not yet released; no other thread uses it.
#[no_mangle]
pub unsafe extern "C" fn wd_release_queue(q: *mut WdQueue) {
    let _ = guard(|| {
        if !q.is_null() {
            // SAFETY: made by Box::into_raw in wd_request_queue, released once.
            drop(unsafe { Box::from_raw(q) });
        }
        0
    });
}

/// A borrowed big-endian number of a request; NULL with length 0 is the empty number.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> std::result::Result<&'a [u8], c_int> {
    match (p.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(-libc::EINVAL),
        // SAFETY: the caller's contract.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(p, len) }),
    }
}

/// The key of `r`, validated.
///
/// # Safety
/// The pointers of `r` point to their lengths of readable bytes (or are NULL).
unsafe fn key_of(r: &WdRsaReq) -> std::result::Result<RsaKey<'_>, c_int> {
    let need = |p: *const u8, len: usize| -> std::result::Result<&[u8], c_int> {
        if p.is_null() || len == 0 {
            return Err(-libc::EINVAL);
        }
        // SAFETY: the caller's contract on `r`: `p` points to `len` readable bytes.
        unsafe { bytes(p, len) }
    };
    Ok(match r.op {
        WD_RSA_PUBLIC => RsaKey::Public {
            n: need(r.n, r.n_len)?,
            e: need(r.e, r.e_len)?,
        },
        WD_RSA_PRIVATE => RsaKey::Private {
            n: need(r.n, r.n_len)?,
            d: need(r.d, r.d_len)?,
        },
        WD_RSA_PRIVATE_CRT => RsaKey::PrivateCrt {
            n_bytes: r.n_len,
            p: need(r.p, r.p_len)?,
            q: need(r.q, r.q_len)?,
            dp: need(r.dp, r.dp_len)?,
            dq: need(r.dq, r.dq_len)?,
            qinv: need(r.qinv, r.qinv_len)?,
        },
        _ => return Err(-libc::EINVAL),
    })
}

/// Sends one request. 0, or: -EINVAL (NULL or malformed request, `out_len` below the
/// modulus size), -EOPNOTSUPP (key size other than 1024/2048/3072/4096 bits), -EAGAIN
/// (ring full: receive, then retry), -ENXIO (device gone), another negative errno. On
/// failure the request is not queued and will not come back.
///
/// # Safety
/// `q` is a live queue; `req` points to a `struct wd_rsa_req` whose pointers are valid for
/// their lengths. `req` and its `out` buffer must stay valid until the request comes back
/// from `wd_recv`/`wd_recv_sync` (the key and input are copied at send).
#[no_mangle]
pub unsafe extern "C" fn wd_send(q: *mut WdQueue, req: *mut c_void) -> c_int {
    guard(|| {
        let (Some(q), Some(req)) = (NonNull::new(q), NonNull::new(req.cast::<WdRsaReq>())) else {
            return -libc::EINVAL;
        };
        // SAFETY: live queue and valid request by the caller's contract.
        let (q, r) = unsafe { (q.as_ref(), req.as_ref()) };
        // SAFETY: the caller's contract on the request's pointers.
        let key = match unsafe { key_of(r) } {
            Ok(k) => k,
            Err(e) => return e,
        };
        // SAFETY: as above.
        let input = match unsafe { bytes(r.input, r.in_len) } {
            Ok(b) if !b.is_empty() => b,
            _ => return -libc::EINVAL,
        };
        if r.out.is_null() {
            return -libc::EINVAL;
        }
        let mut inner = lock(q);
        let mut job = match RsaJob::new(inner.q.driver(), &key, input) {
            Ok(j) => j,
            Err(e) => return status(&e),
        };
        if r.out_len < job.key_bytes() {
            return -libc::EINVAL;
        }
        job.set_user_data(req.as_ptr() as usize as u64);
        match inner.q.send(job) {
            Ok(()) => 0,
            Err(e) => status(&e.error),
        }
    })
}

/// Fills the request a job came from and hands its pointer out.
fn complete(job: RsaJob, out_req: *mut *mut c_void) -> c_int {
    let req = job.user_data() as usize as *mut WdRsaReq;
    // SAFETY: `req` is the pointer given to wd_send, valid until it comes back (the
    // caller's contract of wd_send); its `out` holds at least key_bytes (checked at send).
    unsafe {
        match job.result() {
            Ok(v) => {
                std::ptr::copy_nonoverlapping(v.as_ptr(), (*req).out, v.len());
                (*req).out_bytes = v.len();
                (*req).status = 0;
            }
            Err(e) => {
                (*req).out_bytes = 0;
                (*req).status = status(&e);
            }
        }
        *out_req = req.cast();
    }
    1
}

/// Takes one completed request without waiting: 1 and `*req` set (its `status` says how
/// it went), 0 if none is ready, or a negative errno (-EINVAL for NULL arguments, -EIO /
/// -EPROTO for a queue the device broke, -ENXIO device gone).
///
/// # Safety
/// `q` is a live queue and `req` writable.
#[no_mangle]
pub unsafe extern "C" fn wd_recv(q: *mut WdQueue, req: *mut *mut c_void) -> c_int {
    guard(|| {
        let Some(q) = NonNull::new(q) else {
            return -libc::EINVAL;
        };
        if req.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live queue by the caller's contract.
        let q = unsafe { q.as_ref() };
        match lock(q).q.recv() {
            Ok(Some(job)) => complete(job, req),
            Ok(None) => 0,
            Err(e) => status(&e),
        }
    })
}

/// Waits for one completed request (spinning briefly, then sleeping on the queue's
/// interrupt): 1 and `*req` set, or -EINVAL (NULL arguments, nothing in flight),
/// -ETIMEDOUT (the device did not answer within 5 s), another negative errno.
///
/// # Safety
/// As `wd_recv`.
#[no_mangle]
pub unsafe extern "C" fn wd_recv_sync(q: *mut WdQueue, req: *mut *mut c_void) -> c_int {
    guard(|| {
        let Some(q) = NonNull::new(q) else {
            return -libc::EINVAL;
        };
        if req.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live queue by the caller's contract.
        let q = unsafe { q.as_ref() };
        match lock(q).q.recv_sync() {
            Ok(job) => complete(job, req),
            Err(e) => status(&e),
        }
    })
}

/// Shares `size` bytes at `addr` with the queue's device, so their device address can go
/// into requests of drivers that take caller memory (`wd_mem_dev_addr`). `flags` must be
/// 0. 0, or -EINVAL (NULL, zero size, flags), -EEXIST (overlaps a range already shared),
/// another negative errno. With SVA the device address is `addr` itself.
///
/// # Safety
/// `q` is a live queue; `addr..addr+size` is readable and writable memory that stays
/// mapped until `wd_mem_unshare` or `wd_release_queue`.
#[no_mangle]
pub unsafe extern "C" fn wd_mem_share(
    q: *mut WdQueue,
    addr: *const c_void,
    size: usize,
    flags: c_int,
) -> c_int {
    guard(|| {
        let (Some(q), Some(base)) = (NonNull::new(q), NonNull::new(addr as *mut u8)) else {
            return -libc::EINVAL;
        };
        if size == 0 || flags != 0 {
            return -libc::EINVAL;
        }
        let start = base.as_ptr() as usize;
        let Some(end) = start.checked_add(size) else {
            return -libc::EINVAL;
        };
        // SAFETY: live queue by the caller's contract.
        let q = unsafe { q.as_ref() };
        let mut inner = lock(q);
        let overlaps = inner
            .shares
            .range(..end)
            .next_back()
            .is_some_and(|(s, sh)| s + sh.len > start);
        if overlaps {
            return -libc::EEXIST;
        }
        // SAFETY: the caller guarantees the range stays mapped read-write until unshared;
        // the region is dropped at unshare or release.
        let region = unsafe { Region::from_raw(base, size, Arc::new(())) };
        match inner.q.queue().mem_share(&region) {
            Ok(iova) => {
                inner.shares.insert(
                    start,
                    Share {
                        len: size,
                        iova,
                        _region: region,
                    },
                );
                0
            }
            Err(e) => status(&e),
        }
    })
}

/// Stops sharing a range shared by `wd_mem_share` (same `addr` and `size`). 0, or -EINVAL.
///
/// # Safety
/// `q` is a live queue.
#[no_mangle]
pub unsafe extern "C" fn wd_mem_unshare(
    q: *mut WdQueue,
    addr: *const c_void,
    size: usize,
) -> c_int {
    guard(|| {
        let Some(q) = NonNull::new(q) else {
            return -libc::EINVAL;
        };
        // SAFETY: live queue by the caller's contract.
        let q = unsafe { q.as_ref() };
        let mut inner = lock(q);
        let start = addr as usize;
        match inner.shares.get(&start) {
            Some(s) if s.len == size => {}
            _ => return -libc::EINVAL,
        }
        let s = inner.shares.remove(&start).expect("checked above");
        match inner.q.queue().mem_unshare(s.iova, s.len) {
            Ok(()) => 0,
            Err(e) => status(&e),
        }
    })
}

/// The device address of `addr`, which must lie in a range shared with `wd_mem_share`.
/// 0 and `*dev_addr` set, or -EINVAL.
///
/// # Safety
/// `q` is a live queue; `dev_addr` writable.
#[no_mangle]
pub unsafe extern "C" fn wd_mem_dev_addr(
    q: *mut WdQueue,
    addr: *const c_void,
    dev_addr: *mut u64,
) -> c_int {
    guard(|| {
        let Some(q) = NonNull::new(q) else {
            return -libc::EINVAL;
        };
        if dev_addr.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: live queue by the caller's contract.
        let q = unsafe { q.as_ref() };
        let inner = lock(q);
        let a = addr as usize;
        match inner.shares.range(..=a).next_back() {
            Some((s, sh)) if a < s + sh.len => {
                // SAFETY: `dev_addr` is non-NULL and writable by the caller's contract.
                unsafe { *dev_addr = sh.iova.offset(a - s).0 };
                0
            }
            _ => -libc::EINVAL,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn rsa_req_layout_is_what_queue_h_declares() {
        // x86-64 / arm64 LP64 C layout of struct wd_rsa_req.
        assert_eq!(offset_of!(WdRsaReq, op), 0);
        assert_eq!(offset_of!(WdRsaReq, n), 8);
        assert_eq!(offset_of!(WdRsaReq, n_len), 16);
        assert_eq!(offset_of!(WdRsaReq, qinv_len), 128);
        assert_eq!(offset_of!(WdRsaReq, input), 136);
        assert_eq!(offset_of!(WdRsaReq, out_len), 160);
        assert_eq!(offset_of!(WdRsaReq, status), 168);
        assert_eq!(offset_of!(WdRsaReq, out_bytes), 176);
        assert_eq!(offset_of!(WdRsaReq, opaque), 184);
        assert_eq!(size_of::<WdRsaReq>(), 192);
    }

    #[test]
    fn null_arguments_are_einval() {
        // SAFETY: every pointer is NULL, which each function checks first.
        unsafe {
            assert_eq!(
                wd_request_queue(std::ptr::null_mut(), std::ptr::null(), std::ptr::null()),
                -libc::EINVAL
            );
            wd_release_queue(std::ptr::null_mut());
            assert_eq!(
                wd_send(std::ptr::null_mut(), std::ptr::null_mut()),
                -libc::EINVAL
            );
            assert_eq!(
                wd_recv(std::ptr::null_mut(), std::ptr::null_mut()),
                -libc::EINVAL
            );
            assert_eq!(
                wd_recv_sync(std::ptr::null_mut(), std::ptr::null_mut()),
                -libc::EINVAL
            );
            assert_eq!(
                wd_mem_share(std::ptr::null_mut(), std::ptr::null(), 1, 0),
                -libc::EINVAL
            );
            assert_eq!(
                wd_mem_unshare(std::ptr::null_mut(), std::ptr::null(), 1),
                -libc::EINVAL
            );
            assert_eq!(
                wd_mem_dev_addr(std::ptr::null_mut(), std::ptr::null(), std::ptr::null_mut()),
                -libc::EINVAL
            );
        }
    }
}
