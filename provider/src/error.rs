//! The provider's one error type, its OpenSSL reason codes, and the raise helper that puts
//! an error on OpenSSL's error queue through the core's upcalls (with file, line and
//! function) and mirrors it to the debug log.

use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::Location;
use std::sync::RwLock;

use crate::ffi;

/// Error categories; each is one reason code registered with the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[repr(u32)]
pub enum Reason {
    /// A key lacks what the operation needs, or its parameters are malformed.
    InvalidKey = 1,
    /// Key parameters contradict each other.
    InconsistentKey = 2,
    /// A required parameter was not given.
    MissingParameter = 3,
    /// A parameter has a wrong type or value.
    InvalidParameter = 4,
    /// The input has the wrong length for the operation.
    WrongInputLength = 5,
    /// The input is too large for the key.
    DataTooLarge = 6,
    /// The caller's output buffer is too small.
    BufferTooSmall = 7,
    /// Decryption padding check failed.
    PaddingCheckFailed = 8,
    /// A signature did not verify.
    BadSignature = 9,
    /// A mode or algorithm this provider does not implement.
    Unsupported = 10,
    /// The accelerator failed a request and the fallback policy is off.
    DeviceFailed = 11,
    /// No accelerator could take the request and the fallback policy is off.
    NotOffloaded = 12,
    /// The software path (default provider in the child library context) failed.
    Software = 13,
    /// The provider configuration is invalid.
    Config = 14,
    /// A bug: an invariant broke or a panic was caught at the C boundary.
    Internal = 15,
    /// An operation was called before its init.
    NotInitialized = 16,
}

/// Reason strings, as `get_reason_strings` hands them to the core.
pub const REASON_STRINGS: &[(Reason, &CStr)] = &[
    (Reason::InvalidKey, c"invalid key"),
    (Reason::InconsistentKey, c"inconsistent key parameters"),
    (Reason::MissingParameter, c"missing parameter"),
    (Reason::InvalidParameter, c"invalid parameter"),
    (Reason::WrongInputLength, c"wrong input length"),
    (Reason::DataTooLarge, c"data too large for key size"),
    (Reason::BufferTooSmall, c"output buffer too small"),
    (Reason::PaddingCheckFailed, c"padding check failed"),
    (Reason::BadSignature, c"bad signature"),
    (Reason::Unsupported, c"not supported by wd"),
    (
        Reason::DeviceFailed,
        c"accelerator failed and fallback is off",
    ),
    (
        Reason::NotOffloaded,
        c"request not offloadable and fallback is off",
    ),
    (Reason::Software, c"software fallback failed"),
    (Reason::Config, c"invalid wd configuration"),
    (Reason::Internal, c"internal error"),
    (Reason::NotInitialized, c"operation not initialized"),
];

/// An error with its reason, a message, and where it was made.
#[derive(Debug, Clone)]
pub struct Error {
    /// The category (reason code).
    pub reason: Reason,
    /// Human-readable detail.
    pub msg: String,
    /// Where in our source it was made.
    pub location: &'static Location<'static>,
}

impl Error {
    /// Makes an error, remembering the caller's file and line.
    #[track_caller]
    pub fn new(reason: Reason, msg: impl Into<String>) -> Self {
        Error {
            reason,
            msg: msg.into(),
            location: Location::caller(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.reason, self.msg)
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand: `Err(Error::new(reason, msg))`.
#[track_caller]
pub fn fail<T>(reason: Reason, msg: impl Into<String>) -> Result<T> {
    Err(Error::new(reason, msg))
}

/// The core's error upcalls and the handle of the provider instance they belong to.
#[derive(Clone, Copy)]
pub struct CoreErr {
    pub handle: *const ffi::OSSL_CORE_HANDLE,
    pub new_error: ffi::CoreNewErrorFn,
    pub set_error_debug: ffi::CoreSetErrorDebugFn,
    pub vset_error: ffi::CoreVsetErrorFn,
}

// SAFETY: the handle is an opaque token the core hands out for the instance's life, never
// dereferenced by us, and the three upcalls may be called from any thread (each writes the
// calling thread's error queue).
unsafe impl Send for CoreErr {}
// SAFETY: a `CoreErr` is plain copyable data that is never written after it is made; shared
// use only copies it or calls the thread-safe upcalls (see `Send`).
unsafe impl Sync for CoreErr {}

/// The upcalls errors are raised through. The first provider instance sets them; its
/// teardown clears them (later errors then use the generic `ERR_LIB_PROV`).
static CORE: RwLock<Option<CoreErr>> = RwLock::new(None);

/// Installs the error upcalls of a provider instance unless some are installed already.
pub fn install(core: CoreErr) {
    let mut g = CORE.write().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        *g = Some(core);
    }
}

/// Forgets the upcalls if they belong to `handle` (at its teardown).
pub fn uninstall(handle: *const ffi::OSSL_CORE_HANDLE) {
    let mut g = CORE.write().unwrap_or_else(|e| e.into_inner());
    if g.is_some_and(|c| std::ptr::eq(c.handle, handle)) {
        *g = None;
    }
}

fn cstring_lossy(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Puts `err` on OpenSSL's error queue, attributed to `func`.
pub fn raise(err: &Error, func: &CStr) {
    wd_core::wd_log!(
        Debug,
        "error in {}: {} ({}:{})",
        func.to_string_lossy(),
        err,
        err.location.file(),
        err.location.line()
    );
    let file = cstring_lossy(err.location.file());
    let line = err.location.line() as i32;
    let core = *CORE.read().unwrap_or_else(|e| e.into_inner());
    match core {
        Some(c) => {
            // Through the core the message is the format string: '%' is escaped so that no
            // conversion reads the (absent) variable arguments.
            let fmt = cstring_lossy(&err.msg.replace('%', "%%"));
            // Never read: the format has no conversions. Sized and aligned for any ABI's
            // va_list object (see `ffi::CoreVsetErrorFn`).
            let mut no_args = [0u64; 8];
            // SAFETY: the upcalls are the core's, valid while the provider is loaded; the
            // strings are NUL-terminated and live across the calls; the va_list stand-in
            // is never dereferenced because `fmt` holds no conversion specifiers.
            unsafe {
                (c.new_error)(c.handle);
                (c.set_error_debug)(c.handle, file.as_ptr(), line, func.as_ptr());
                (c.vset_error)(
                    c.handle,
                    err.reason as u32,
                    fmt.as_ptr(),
                    no_args.as_mut_ptr().cast::<c_void>(),
                );
            }
        }
        None => {
            // Here the message is the argument of a "%s" format, printed as it is.
            let msg = cstring_lossy(&err.msg);
            // SAFETY: public libcrypto error functions writing the calling thread's error
            // queue; `file`, `func` and `msg` are NUL-terminated and outlive the calls; the
            // format "%s" reads exactly one argument, `msg`, a C string.
            unsafe {
                openssl_sys::ERR_new();
                openssl_sys::ERR_set_debug(file.as_ptr(), line, func.as_ptr());
                openssl_sys::ERR_set_error(
                    ffi::ERR_LIB_PROV,
                    err.reason as i32,
                    c"%s".as_ptr(),
                    msg.as_ptr() as *const c_char,
                );
            }
        }
    }
}

/// Runs the body of an `extern "C"` entry point: a panic becomes an `Internal` error on the
/// queue; an `Err` is raised; either way the caller gets `on_error`.
pub fn entry<R>(func: &CStr, on_error: R, body: impl FnOnce() -> Result<R>) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            raise(&e, func);
            on_error
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            raise(
                &Error::new(
                    Reason::Internal,
                    format!("panic caught at the C boundary: {what}"),
                ),
                func,
            );
            on_error
        }
    }
}

/// Like [`entry`] for entries that cannot report failure (free functions, getters of
/// static tables): a panic is raised and swallowed.
pub fn entry_void(func: &CStr, body: impl FnOnce()) {
    entry(func, (), || {
        body();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::c_int;
    use std::ptr;

    use super::*;

    /// The message of the newest error on this thread's queue, which is then cleared.
    fn last_message() -> String {
        let mut data: *const c_char = ptr::null();
        let mut flags: c_int = 0;
        // SAFETY: ERR_get_error_all reads this thread's queue; every out pointer is either
        // NULL (not wanted) or a live local; `data` then points at the queue's own string.
        let code = unsafe {
            openssl_sys::ERR_get_error_all(
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                &mut data,
                &mut flags,
            )
        };
        assert_ne!(code, 0, "an error was raised");
        assert!(!data.is_null());
        // SAFETY: a NUL-terminated string owned by the error record, alive until the next
        // queue operation on this thread; copied out at once.
        let s = unsafe { CStr::from_ptr(data) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: clears this thread's queue; no pointer into it is kept.
        unsafe { openssl_sys::ERR_clear_error() };
        s
    }

    #[test]
    fn a_percent_sign_shows_as_itself_without_the_core() {
        // No provider instance is loaded in a unit test: `raise` takes the fallback path.
        assert!(CORE.read().unwrap().is_none());
        raise(
            &Error::new(
                Reason::InvalidParameter,
                "salt of 100% of the digest, %s %d",
            ),
            c"test_raise",
        );
        assert_eq!(last_message(), "salt of 100% of the digest, %s %d");
    }
}
