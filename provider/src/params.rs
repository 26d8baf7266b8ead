//! OSSL_PARAM arrays as the core hands them over: reading settings from an input array and
//! answering an output array. The raw array is checked once at the boundary (`unsafe fn
//! new`); after that access is safe.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl_sys as sys;

use crate::error::{fail, Error, Reason, Result};
use crate::ffi::{self, OSSL_PARAM};
use crate::ossl::{Bn, BnRef};

/// A NULL-terminated input parameter array.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    ptr: *const OSSL_PARAM,
    _life: std::marker::PhantomData<&'a OSSL_PARAM>,
}

/// One parameter of an [`Input`].
#[derive(Clone, Copy)]
pub struct Param<'a> {
    p: &'a OSSL_PARAM,
}

impl<'a> Input<'a> {
    /// Wraps `ptr` (may be NULL: an empty list).
    ///
    /// # Safety
    /// `ptr` is NULL or points at an OSSL_PARAM array terminated by an entry with a NULL key,
    /// valid for `'a`.
    pub unsafe fn new(ptr: *const OSSL_PARAM) -> Self {
        Input {
            ptr,
            _life: std::marker::PhantomData,
        }
    }

    /// An empty list.
    pub fn empty() -> Self {
        Input {
            ptr: ptr::null(),
            _life: std::marker::PhantomData,
        }
    }

    /// The parameter named `key`, if present.
    pub fn get(&self, key: &CStr) -> Option<Param<'a>> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: non-NULL, so per `new` a terminated array valid for 'a; `key` is
        // NUL-terminated.
        let p = unsafe { sys::OSSL_PARAM_locate_const(self.ptr, key.as_ptr()) };
        // SAFETY: OSSL_PARAM_locate_const gives NULL or an element of that array, valid and
        // unchanged for 'a.
        unsafe { p.as_ref() }.map(|p| Param { p })
    }

    /// Names of all parameters present.
    pub fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.ptr.is_null() {
            return out;
        }
        let mut p = self.ptr;
        // SAFETY: non-NULL, so per `new` an array valid for 'a, read up to its terminator
        // (the entry with a NULL key); every key before it is a NUL-terminated string.
        unsafe {
            while !(*p).key.is_null() {
                out.push(CStr::from_ptr((*p).key).to_string_lossy().into_owned());
                p = p.add(1);
            }
        }
        out
    }
}

impl Param<'_> {
    fn name(&self) -> String {
        // SAFETY: a parameter found by its key has a non-NULL, NUL-terminated key, valid for
        // 'a (`Input::new`).
        unsafe { CStr::from_ptr(self.p.key) }
            .to_string_lossy()
            .into_owned()
    }

    #[track_caller]
    fn bad(&self, want: &str) -> Error {
        Error::new(
            Reason::InvalidParameter,
            format!("parameter {} must be {want}", self.name()),
        )
    }

    /// True if the parameter is a UTF-8 string (or pointer).
    pub fn is_utf8(&self) -> bool {
        matches!(
            self.p.data_type,
            ffi::OSSL_PARAM_UTF8_STRING | ffi::OSSL_PARAM_UTF8_PTR
        )
    }

    /// As a C int.
    pub fn int(&self) -> Result<i32> {
        let mut v: c_int = 0;
        // SAFETY: `self.p` is a parameter of the caller's array, valid for 'a (`Input::new`); `v` is a live local.
        if unsafe { ffi::OSSL_PARAM_get_int(self.p, &mut v) } != 1 {
            return Err(self.bad("an integer"));
        }
        Ok(v)
    }

    /// As an unsigned int.
    pub fn uint(&self) -> Result<u32> {
        let mut v: c_uint = 0;
        // SAFETY: `self.p` is a parameter of the caller's array, valid for 'a (`Input::new`); `v` is a live local.
        if unsafe { ffi::OSSL_PARAM_get_uint(self.p, &mut v) } != 1 {
            return Err(self.bad("an unsigned integer"));
        }
        Ok(v)
    }

    /// As a size_t.
    pub fn size(&self) -> Result<usize> {
        let mut v: usize = 0;
        // SAFETY: `self.p` is a parameter of the caller's array, valid for 'a (`Input::new`); `v` is a live local.
        if unsafe { ffi::OSSL_PARAM_get_size_t(self.p, &mut v) } != 1 {
            return Err(self.bad("an unsigned integer"));
        }
        Ok(v)
    }

    /// As UTF-8 text.
    pub fn utf8(&self) -> Result<String> {
        let mut s: *const c_char = ptr::null();
        // SAFETY: `self.p` is a parameter of the caller's array, valid for 'a (`Input::new`); `s` is a live local that receives a pointer
        // into the parameter's data.
        if unsafe { sys::OSSL_PARAM_get_utf8_string_ptr(self.p, &mut s) } != 1 || s.is_null() {
            return Err(self.bad("a UTF-8 string"));
        }
        // SAFETY: a non-NULL pointer to the parameter's NUL-terminated string, valid for 'a;
        // copied out at once.
        Ok(unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
    }

    /// As bytes (octet string or octet pointer).
    pub fn octets(&self) -> Result<Vec<u8>> {
        let mut p: *const std::ffi::c_void = ptr::null();
        let mut len: usize = 0;
        // SAFETY: `self.p` is a parameter of the caller's array, valid for 'a (`Input::new`); `p` and `len` are live locals that receive
        // a view of its data.
        if unsafe { sys::OSSL_PARAM_get_octet_string_ptr(self.p, &mut p, &mut len) } != 1 {
            return Err(self.bad("an octet string"));
        }
        if len == 0 || p.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: `p` (non-NULL) is the parameter's data, readable for `len` bytes for 'a;
        // copied out at once.
        Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) }.to_vec())
    }

    /// As a bignum.
    pub fn bn(&self) -> Result<Bn> {
        let mut b: *mut sys::BIGNUM = ptr::null_mut();
        // SAFETY: `self.p` is a parameter of the caller's array, valid for 'a (`Input::new`); `b` is a live local, NULL, which asks for a
        // new BIGNUM.
        if unsafe { sys::OSSL_PARAM_get_BN(self.p, &mut b) } != 1 || b.is_null() {
            return Err(self.bad("an unsigned integer (bignum)"));
        }
        // SAFETY: a fresh BIGNUM that OSSL_PARAM_get_BN handed over; `Bn` frees it once.
        Ok(unsafe { Bn::from_ptr(b) })
    }
}

/// A NULL-terminated output parameter array to answer.
pub struct Output {
    ptr: *mut OSSL_PARAM,
}

/// One requested parameter of an [`Output`].
pub struct Slot {
    p: *mut OSSL_PARAM,
}

thread_local! {
    /// Keeps strings returned through UTF8_PTR parameters alive until the thread's next
    /// answer of the same kind (as libcrypto's own error strings do).
    static PTR_STRINGS: RefCell<Vec<CString>> = const { RefCell::new(Vec::new()) };
}

impl Output {
    /// Wraps `ptr` (may be NULL).
    ///
    /// # Safety
    /// `ptr` is NULL or a writable, terminated OSSL_PARAM array valid for the call.
    pub unsafe fn new(ptr: *mut OSSL_PARAM) -> Self {
        Output { ptr }
    }

    /// The requested parameter `key`, if asked for.
    pub fn slot(&self, key: &CStr) -> Option<Slot> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: non-NULL, so per `new` a writable, terminated array valid for the call;
        // `key` is NUL-terminated.
        let p = unsafe { sys::OSSL_PARAM_locate(self.ptr, key.as_ptr()) };
        (!p.is_null()).then_some(Slot { p })
    }
}

impl Slot {
    fn name(&self) -> String {
        // SAFETY: a parameter found by its key has a non-NULL, NUL-terminated key (a parameter of the caller's writable array, valid for the call (`Output::new`)).
        unsafe { CStr::from_ptr((*self.p).key) }
            .to_string_lossy()
            .into_owned()
    }

    #[track_caller]
    fn done(&self, r: c_int) -> Result<()> {
        if r == 1 {
            Ok(())
        } else {
            fail(
                Reason::InvalidParameter,
                format!(
                    "cannot return parameter {} (wrong type or buffer too small)",
                    self.name()
                ),
            )
        }
    }

    /// True if the caller asked for a UTF-8 string.
    pub fn wants_utf8(&self) -> bool {
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); a read of one field.
        let t = unsafe { (*self.p).data_type };
        matches!(t, ffi::OSSL_PARAM_UTF8_STRING | ffi::OSSL_PARAM_UTF8_PTR)
    }

    /// Answers an integer.
    #[track_caller]
    pub fn int(&self, v: i32) -> Result<()> {
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); the setter writes within its data size.
        self.done(unsafe { ffi::OSSL_PARAM_set_int(self.p, v) })
    }

    /// Answers an unsigned integer.
    #[track_caller]
    pub fn uint(&self, v: u32) -> Result<()> {
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); the setter writes within its data size.
        self.done(unsafe { ffi::OSSL_PARAM_set_uint(self.p, v) })
    }

    /// Answers a size.
    #[track_caller]
    pub fn size(&self, v: usize) -> Result<()> {
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); the setter writes within its data size.
        self.done(unsafe { ffi::OSSL_PARAM_set_size_t(self.p, v) })
    }

    /// Answers text, into the caller's buffer or as a pointer kept alive by us.
    #[track_caller]
    pub fn utf8(&self, s: &str) -> Result<()> {
        let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); a read of one field.
        let t = unsafe { (*self.p).data_type };
        if t == ffi::OSSL_PARAM_UTF8_PTR {
            let r = PTR_STRINGS.with(|v| {
                let mut v = v.borrow_mut();
                if v.len() > 16 {
                    v.remove(0);
                }
                v.push(c);
                let last = v.last().expect("just pushed");
                // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); the pointer stored is
                // to a NUL-terminated string kept in the thread-local list (until 16 more
                // answers of this thread replace it).
                unsafe { ffi::OSSL_PARAM_set_utf8_ptr(self.p, last.as_ptr()) }
            });
            return self.done(r);
        }
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); `c` is NUL-terminated and
        // copied (within the data size) before it is dropped.
        self.done(unsafe { ffi::OSSL_PARAM_set_utf8_string(self.p, c.as_ptr()) })
    }

    /// Answers a static string (pointer or copy).
    #[track_caller]
    pub fn static_utf8(&self, s: &'static CStr) -> Result<()> {
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); a read of one field.
        let t = unsafe { (*self.p).data_type };
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); `s` is 'static and
        // NUL-terminated, so a pointer to it stays valid.
        let r = unsafe {
            if t == ffi::OSSL_PARAM_UTF8_PTR {
                ffi::OSSL_PARAM_set_utf8_ptr(self.p, s.as_ptr())
            } else {
                ffi::OSSL_PARAM_set_utf8_string(self.p, s.as_ptr())
            }
        };
        self.done(r)
    }

    /// Answers bytes (copied into an octet string; octet pointers are not supported for
    /// data we do not keep).
    #[track_caller]
    pub fn octets(&self, v: &[u8]) -> Result<()> {
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); `v` is readable for its
        // length and copied (within the data size).
        self.done(unsafe { ffi::OSSL_PARAM_set_octet_string(self.p, v.as_ptr().cast(), v.len()) })
    }

    /// Answers a bignum.
    #[track_caller]
    pub fn bn(&self, v: &BnRef) -> Result<()> {
        // SAFETY: `self.p` is a parameter of the caller's writable array, valid for the call (`Output::new`); `v` is a valid bignum,
        // only read.
        self.done(unsafe { ffi::OSSL_PARAM_set_BN(self.p, v.as_ptr()) })
    }
}

/// The asking side of a get call (the core's `get_params`, `EVP_PKEY_CTX_get_params`): a
/// terminated list of the parameters wanted, each entry owning the place its answer is
/// written into, read back after [`Request::ask`].
pub struct Request {
    keys: Vec<CString>,
    kinds: Vec<Answer>,
    /// Where UTF8_PTR answers (pointers to the answerer's strings) are written.
    ptrs: Vec<*const c_char>,
    /// Where OCTET_STRING answers are copied.
    bufs: Vec<Vec<u8>>,
    /// The list as last handed out, terminated (its `return_size`s are the answers).
    list: Vec<OSSL_PARAM>,
}

#[derive(Clone, Copy)]
enum Answer {
    Ptr(usize),
    Octets(usize),
}

fn terminator() -> OSSL_PARAM {
    OSSL_PARAM {
        key: ptr::null(),
        data_type: 0,
        data: ptr::null_mut(),
        data_size: 0,
        return_size: 0,
    }
}

impl Request {
    /// An empty list.
    pub fn new() -> Request {
        Request {
            keys: Vec::new(),
            kinds: Vec::new(),
            ptrs: Vec::new(),
            bufs: Vec::new(),
            list: Vec::new(),
        }
    }

    /// Asks for UTF-8 string `key` as a pointer to the answerer's string; returns its index.
    pub fn utf8_ptr(&mut self, key: &str) -> usize {
        self.ptrs.push(ptr::null());
        self.keys.push(CString::new(key).unwrap_or_default());
        self.kinds.push(Answer::Ptr(self.ptrs.len() - 1));
        self.kinds.len() - 1
    }

    /// Asks for octet string `key`, copied into a buffer of `cap` bytes; returns its index.
    pub fn octets(&mut self, key: &CStr, cap: usize) -> usize {
        self.bufs.push(vec![0u8; cap]);
        self.keys.push(key.to_owned());
        self.kinds.push(Answer::Octets(self.bufs.len() - 1));
        self.kinds.len() - 1
    }

    /// Hands the terminated list to `get` and returns its answer. The list's pointers are
    /// valid during the call only.
    ///
    /// # Safety
    /// `get` answers the list as a get_params function does: it writes each entry's `data`
    /// only within `data_size` and as `data_type` says, sets `return_size`, and UTF8_PTR
    /// answers point at NUL-terminated strings that live as long as this `Request` is read.
    pub unsafe fn ask<R>(&mut self, get: impl FnOnce(*mut OSSL_PARAM) -> R) -> R {
        let mut list = Vec::with_capacity(self.kinds.len() + 1);
        for (key, kind) in self.keys.iter().zip(&self.kinds) {
            let (data_type, data, data_size): (c_uint, *mut c_void, usize) = match *kind {
                Answer::Ptr(n) => (
                    ffi::OSSL_PARAM_UTF8_PTR,
                    (&mut self.ptrs[n] as *mut *const c_char).cast(),
                    std::mem::size_of::<*const c_char>(),
                ),
                Answer::Octets(n) => (
                    ffi::OSSL_PARAM_OCTET_STRING,
                    self.bufs[n].as_mut_ptr().cast(),
                    self.bufs[n].len(),
                ),
            };
            list.push(OSSL_PARAM {
                key: key.as_ptr(),
                data_type,
                data,
                data_size,
                return_size: UNMODIFIED,
            });
        }
        list.push(terminator());
        self.list = list;
        get(self.list.as_mut_ptr())
    }

    /// Whether entry `i` was answered.
    fn answered(&self, i: usize) -> Option<usize> {
        let n = self.list.get(i)?.return_size;
        (n != UNMODIFIED).then_some(n)
    }

    /// The `i`-th answer, if entry `i` asked for a UTF-8 pointer and got a string.
    pub fn utf8(&self, i: usize) -> Option<String> {
        let Some(Answer::Ptr(n)) = self.kinds.get(i).copied() else {
            return None;
        };
        self.answered(i)?;
        let s = self.ptrs[n];
        // SAFETY: the entry was answered (return_size set), so per `ask`'s contract the slot
        // holds a pointer to a NUL-terminated string that is still alive, or NULL (checked).
        (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
    }

    /// The `i`-th answer, if entry `i` asked for an octet string and the answer fitted.
    pub fn octets_answer(&self, i: usize) -> Option<&[u8]> {
        let Some(Answer::Octets(n)) = self.kinds.get(i).copied() else {
            return None;
        };
        let len = self.answered(i)?;
        self.bufs[n].get(..len)
    }
}

impl Default for Request {
    fn default() -> Self {
        Request::new()
    }
}

/// A static, terminated descriptor list (what `*_gettable_params` / `*_settable_params`
/// return). Built once from (name, type) pairs.
pub struct Descriptors {
    list: Vec<OSSL_PARAM>,
    _names: Vec<&'static CStr>,
}

// SAFETY: the list's pointers are to 'static C strings (and NULL data), valid from any
// thread; the list is owned by the `Descriptors`.
unsafe impl Send for Descriptors {}
// SAFETY: the list is never written after `new`; shared use only reads it (the core reads
// descriptor lists without writing them).
unsafe impl Sync for Descriptors {}

impl Descriptors {
    /// A descriptor list of `(name, type)`.
    pub fn new(items: &[(&'static CStr, c_uint)]) -> Self {
        let mut list: Vec<OSSL_PARAM> = items
            .iter()
            .map(|(k, t)| OSSL_PARAM {
                key: k.as_ptr(),
                data_type: *t,
                data: ptr::null_mut(),
                data_size: 0,
                return_size: usize::MAX,
            })
            .collect();
        list.push(terminator());
        Descriptors {
            list,
            _names: items.iter().map(|(k, _)| *k).collect(),
        }
    }

    /// The C view.
    pub fn as_ptr(&self) -> *const OSSL_PARAM {
        self.list.as_ptr()
    }
}

/// The answer of a `*_gettable_*` / `*_settable_*` entry: a [`Descriptors`] list of the
/// `(name, type)` pairs, built on first use and kept for the life of the process (one list
/// per use of the macro).
macro_rules! descriptors {
    ($($item:expr),* $(,)?) => {{
        static LIST: std::sync::OnceLock<$crate::params::Descriptors> =
            std::sync::OnceLock::new();
        LIST.get_or_init(|| $crate::params::Descriptors::new(&[$($item),*]))
            .as_ptr()
    }};
}
pub(crate) use descriptors;

/// Defines an operation's `get_ctx_params` and `set_ctx_params` entries: each borrows the
/// context with `$ctx` (an `unsafe fn(*mut c_void) -> Result<&mut _>` taking NULL or a live
/// context of the operation) and hands it the caller's parameter array. `$get` and `$set`
/// name the entries in error records.
macro_rules! ctx_params_entries {
    ($ctx:ident, $get:literal, $set:literal) => {
        unsafe extern "C" fn get_ctx_params(
            ctx: *mut std::ffi::c_void,
            out: *mut $crate::ffi::OSSL_PARAM,
        ) -> std::ffi::c_int {
            $crate::error::entry($get, 0, || {
                // SAFETY: the core passes NULL or a live context of this operation (what
                // `$ctx` takes) and the caller's writable, terminated array (or NULL).
                let (c, out) = unsafe { ($ctx(ctx)?, $crate::params::Output::new(out)) };
                c.get_params(&out)?;
                Ok(1)
            })
        }

        unsafe extern "C" fn set_ctx_params(
            ctx: *mut std::ffi::c_void,
            p: *const $crate::ffi::OSSL_PARAM,
        ) -> std::ffi::c_int {
            $crate::error::entry($set, 0, || {
                // SAFETY: the core passes NULL or a live context of this operation (what
                // `$ctx` takes) and the caller's terminated array (or NULL).
                let (c, input) = unsafe { ($ctx(ctx)?, $crate::params::Input::new(p)) };
                c.set_params(input)?;
                Ok(1)
            })
        }
    };
}
pub(crate) use ctx_params_entries;

/// `OSSL_PARAM_UNMODIFIED`: what `return_size` holds before a get.
pub const UNMODIFIED: usize = usize::MAX;

/// Shorthand for the param types.
pub const INT: c_uint = ffi::OSSL_PARAM_INTEGER;
/// Unsigned integer (also bignums).
pub const UINT: c_uint = ffi::OSSL_PARAM_UNSIGNED_INTEGER;
/// UTF-8 string.
pub const UTF8: c_uint = ffi::OSSL_PARAM_UTF8_STRING;
/// Octet string.
pub const OCTETS: c_uint = ffi::OSSL_PARAM_OCTET_STRING;

/// Borrow a foreign `OSSL_PARAM` list made by a builder as an [`Input`].
pub fn input_of(p: &crate::ossl::ParamsRef) -> Input<'_> {
    // SAFETY: a list made by OSSL_PARAM_BLD_to_param is terminated, and `p` keeps it
    // alive and unchanged for the borrow the `Input` carries.
    unsafe { Input::new(p.as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_what_a_get_answered() {
        let mut req = Request::new();
        let name = req.utf8_ptr("name");
        let aid = req.octets(c"algorithm-id", 4);
        let big = req.octets(c"too-big", 2);
        let unasked = req.utf8_ptr("unanswered");
        // SAFETY: the closure answers as a get_params does: through libcrypto's own
        // setters, within each entry's size, with a 'static string for the pointer.
        let r = unsafe {
            req.ask(|list| {
                let p = sys::OSSL_PARAM_locate(list, c"name".as_ptr());
                assert_eq!(ffi::OSSL_PARAM_set_utf8_ptr(p, c"wd".as_ptr()), 1);
                let p = sys::OSSL_PARAM_locate(list, c"algorithm-id".as_ptr());
                assert_eq!(
                    ffi::OSSL_PARAM_set_octet_string(p, [9u8, 8].as_ptr().cast(), 2),
                    1
                );
                // Too long for its buffer: libcrypto says how much it needed.
                let p = sys::OSSL_PARAM_locate(list, c"too-big".as_ptr());
                assert_eq!(
                    ffi::OSSL_PARAM_set_octet_string(p, [1u8; 3].as_ptr().cast(), 3),
                    0
                );
                1
            })
        };
        assert_eq!(r, 1);
        assert_eq!(req.utf8(name).as_deref(), Some("wd"));
        assert_eq!(req.octets_answer(aid), Some(&[9u8, 8][..]));
        assert_eq!(req.octets_answer(big), None);
        assert_eq!(req.utf8(unasked), None);
        // An index of the other kind answers nothing.
        assert_eq!(req.utf8(aid), None);
        assert_eq!(req.octets_answer(name), None);
    }
}
