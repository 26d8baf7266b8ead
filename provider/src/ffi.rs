//! The provider ABI of OpenSSL 3 (`<openssl/core.h>`, `<openssl/core_dispatch.h>`): dispatch
//! and algorithm structures, function and operation ids, the core's upcalls; plus the few
//! public libcrypto functions that openssl-sys does not declare. Everything else comes from
//! openssl-sys. Nothing here touches OpenSSL's private structures.

#![allow(non_camel_case_types, non_upper_case_globals, dead_code)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

pub use openssl_sys::{
    BIGNUM, BN_CTX, CONF, EVP_MD, EVP_MD_CTX, EVP_PKEY, EVP_PKEY_CTX, OPENSSL_STACK, OSSL_LIB_CTX,
    OSSL_PARAM, OSSL_PARAM_BLD, OSSL_PROVIDER, RSA,
};

/// `OSSL_CORE_HANDLE`: opaque, owned by the core.
pub type OSSL_CORE_HANDLE = c_void;

/// `OSSL_DISPATCH`: one function of a dispatch table. Tables end with id 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OSSL_DISPATCH {
    pub function_id: c_int,
    pub function: Option<unsafe extern "C" fn()>,
}

/// One entry of a dispatch table: function `$f` under id `$id`, `$t` being the signature
/// the id documents (and `$f`'s own: the transmute checks that the sizes agree, the type
/// annotation that `$f` has it).
macro_rules! dispatch {
    ($id:expr, $f:expr, $t:ty) => {
        $crate::ffi::OSSL_DISPATCH {
            function_id: $id,
            // SAFETY: `$f` coerces to `$t` (checked by the compiler), and the core calls an
            // entry only through the signature its id documents, which is `$t`: the erased
            // pointer is always called back at its own type.
            function: Some(unsafe { std::mem::transmute::<$t, unsafe extern "C" fn()>($f) }),
        }
    };
}
pub(crate) use dispatch;

/// The end of a dispatch table.
pub const END: OSSL_DISPATCH = OSSL_DISPATCH {
    function_id: 0,
    function: None,
};

/// `OSSL_ITEM`.
#[repr(C)]
pub struct OSSL_ITEM {
    pub id: c_uint,
    pub ptr: *const c_void,
}

/// `OSSL_ALGORITHM`.
#[repr(C)]
pub struct OSSL_ALGORITHM {
    pub algorithm_names: *const c_char,
    pub property_definition: *const c_char,
    pub implementation: *const OSSL_DISPATCH,
    pub algorithm_description: *const c_char,
}

/// Wrapper making a static table of raw pointers shareable (the tables are immutable and
/// point only at other statics).
#[repr(transparent)]
pub struct Table<T>(pub T);
// SAFETY: a `Table` wraps C tables (algorithm and reason lists) that are never written after
// they are made and whose pointers refer only to 'static data (C strings, dispatch arrays);
// shared use only reads them.
unsafe impl<T> Sync for Table<T> {}
// SAFETY: the same tables have no tie to the thread that made them: the pointers inside
// refer to 'static data, valid from any thread.
unsafe impl<T> Send for Table<T> {}

// OSSL_PARAM data types.
pub const OSSL_PARAM_INTEGER: c_uint = 1;
pub const OSSL_PARAM_UNSIGNED_INTEGER: c_uint = 2;
pub const OSSL_PARAM_UTF8_STRING: c_uint = 4;
pub const OSSL_PARAM_OCTET_STRING: c_uint = 5;
pub const OSSL_PARAM_UTF8_PTR: c_uint = 6;
pub const OSSL_PARAM_OCTET_PTR: c_uint = 7;

// Core functions handed to the provider.
pub const OSSL_FUNC_CORE_GETTABLE_PARAMS: c_int = 1;
pub const OSSL_FUNC_CORE_GET_PARAMS: c_int = 2;
pub const OSSL_FUNC_CORE_GET_LIBCTX: c_int = 4;
pub const OSSL_FUNC_CORE_NEW_ERROR: c_int = 5;
pub const OSSL_FUNC_CORE_SET_ERROR_DEBUG: c_int = 6;
pub const OSSL_FUNC_CORE_VSET_ERROR: c_int = 7;

// Provider functions.
pub const OSSL_FUNC_PROVIDER_TEARDOWN: c_int = 1024;
pub const OSSL_FUNC_PROVIDER_GETTABLE_PARAMS: c_int = 1025;
pub const OSSL_FUNC_PROVIDER_GET_PARAMS: c_int = 1026;
pub const OSSL_FUNC_PROVIDER_QUERY_OPERATION: c_int = 1027;
pub const OSSL_FUNC_PROVIDER_GET_REASON_STRINGS: c_int = 1029;

// Operations.
pub const OSSL_OP_RAND: c_int = 5;
pub const OSSL_OP_KEYMGMT: c_int = 10;
pub const OSSL_OP_SIGNATURE: c_int = 12;
pub const OSSL_OP_ASYM_CIPHER: c_int = 13;

// Key management.
pub const OSSL_KEYMGMT_SELECT_PRIVATE_KEY: c_int = 0x01;
pub const OSSL_KEYMGMT_SELECT_PUBLIC_KEY: c_int = 0x02;
pub const OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS: c_int = 0x04;
pub const OSSL_KEYMGMT_SELECT_OTHER_PARAMETERS: c_int = 0x80;
pub const OSSL_KEYMGMT_SELECT_KEYPAIR: c_int =
    OSSL_KEYMGMT_SELECT_PRIVATE_KEY | OSSL_KEYMGMT_SELECT_PUBLIC_KEY;

pub const OSSL_FUNC_KEYMGMT_NEW: c_int = 1;
pub const OSSL_FUNC_KEYMGMT_GEN_INIT: c_int = 2;
pub const OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS: c_int = 4;
pub const OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS: c_int = 5;
pub const OSSL_FUNC_KEYMGMT_GEN: c_int = 6;
pub const OSSL_FUNC_KEYMGMT_GEN_CLEANUP: c_int = 7;
pub const OSSL_FUNC_KEYMGMT_FREE: c_int = 10;
pub const OSSL_FUNC_KEYMGMT_GET_PARAMS: c_int = 11;
pub const OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS: c_int = 12;
pub const OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME: c_int = 20;
pub const OSSL_FUNC_KEYMGMT_HAS: c_int = 21;
pub const OSSL_FUNC_KEYMGMT_VALIDATE: c_int = 22;
pub const OSSL_FUNC_KEYMGMT_MATCH: c_int = 23;
pub const OSSL_FUNC_KEYMGMT_IMPORT: c_int = 40;
pub const OSSL_FUNC_KEYMGMT_IMPORT_TYPES: c_int = 41;
pub const OSSL_FUNC_KEYMGMT_EXPORT: c_int = 42;
pub const OSSL_FUNC_KEYMGMT_EXPORT_TYPES: c_int = 43;
pub const OSSL_FUNC_KEYMGMT_DUP: c_int = 44;

// Signature.
pub const OSSL_FUNC_SIGNATURE_NEWCTX: c_int = 1;
pub const OSSL_FUNC_SIGNATURE_SIGN_INIT: c_int = 2;
pub const OSSL_FUNC_SIGNATURE_SIGN: c_int = 3;
pub const OSSL_FUNC_SIGNATURE_VERIFY_INIT: c_int = 4;
pub const OSSL_FUNC_SIGNATURE_VERIFY: c_int = 5;
pub const OSSL_FUNC_SIGNATURE_VERIFY_RECOVER_INIT: c_int = 6;
pub const OSSL_FUNC_SIGNATURE_VERIFY_RECOVER: c_int = 7;
pub const OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT: c_int = 8;
pub const OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE: c_int = 9;
pub const OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL: c_int = 10;
pub const OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT: c_int = 12;
pub const OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE: c_int = 13;
pub const OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL: c_int = 14;
pub const OSSL_FUNC_SIGNATURE_FREECTX: c_int = 16;
pub const OSSL_FUNC_SIGNATURE_DUPCTX: c_int = 17;
pub const OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS: c_int = 18;
pub const OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS: c_int = 19;
pub const OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS: c_int = 20;
pub const OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS: c_int = 21;
pub const OSSL_FUNC_SIGNATURE_GET_CTX_MD_PARAMS: c_int = 22;
pub const OSSL_FUNC_SIGNATURE_GETTABLE_CTX_MD_PARAMS: c_int = 23;
pub const OSSL_FUNC_SIGNATURE_SET_CTX_MD_PARAMS: c_int = 24;
pub const OSSL_FUNC_SIGNATURE_SETTABLE_CTX_MD_PARAMS: c_int = 25;

// Asymmetric cipher.
pub const OSSL_FUNC_ASYM_CIPHER_NEWCTX: c_int = 1;
pub const OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT: c_int = 2;
pub const OSSL_FUNC_ASYM_CIPHER_ENCRYPT: c_int = 3;
pub const OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT: c_int = 4;
pub const OSSL_FUNC_ASYM_CIPHER_DECRYPT: c_int = 5;
pub const OSSL_FUNC_ASYM_CIPHER_FREECTX: c_int = 6;
pub const OSSL_FUNC_ASYM_CIPHER_DUPCTX: c_int = 7;
pub const OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS: c_int = 8;
pub const OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS: c_int = 9;
pub const OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS: c_int = 10;
pub const OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS: c_int = 11;

// Random generators.
pub const OSSL_FUNC_RAND_NEWCTX: c_int = 1;
pub const OSSL_FUNC_RAND_FREECTX: c_int = 2;
pub const OSSL_FUNC_RAND_INSTANTIATE: c_int = 3;
pub const OSSL_FUNC_RAND_UNINSTANTIATE: c_int = 4;
pub const OSSL_FUNC_RAND_GENERATE: c_int = 5;
pub const OSSL_FUNC_RAND_RESEED: c_int = 6;
pub const OSSL_FUNC_RAND_ENABLE_LOCKING: c_int = 8;
pub const OSSL_FUNC_RAND_LOCK: c_int = 9;
pub const OSSL_FUNC_RAND_UNLOCK: c_int = 10;
pub const OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS: c_int = 12;
pub const OSSL_FUNC_RAND_SETTABLE_CTX_PARAMS: c_int = 13;
pub const OSSL_FUNC_RAND_GET_CTX_PARAMS: c_int = 15;
pub const OSSL_FUNC_RAND_SET_CTX_PARAMS: c_int = 16;
pub const OSSL_FUNC_RAND_VERIFY_ZEROIZATION: c_int = 17;
pub const OSSL_FUNC_RAND_GET_SEED: c_int = 18;
pub const OSSL_FUNC_RAND_CLEAR_SEED: c_int = 19;

/// `EVP_RAND`: opaque.
pub enum EVP_RAND {}
/// `EVP_RAND_CTX`: opaque.
pub enum EVP_RAND_CTX {}

// RSA padding modes (`<openssl/rsa.h>`).
pub const RSA_PKCS1_PADDING: c_int = 1;
pub const RSA_NO_PADDING: c_int = 3;
pub const RSA_PKCS1_OAEP_PADDING: c_int = 4;
pub const RSA_X931_PADDING: c_int = 5;
pub const RSA_PKCS1_PSS_PADDING: c_int = 6;
pub const RSA_PKCS1_WITH_TLS_PADDING: c_int = 7;

// `ERR_LIB_PROV` and `ERR_R_INTERNAL_ERROR`, for errors raised before the core is known.
pub const ERR_LIB_PROV: c_int = 57;

// Upcall signatures.
pub type CoreGetParamsFn = unsafe extern "C" fn(*const OSSL_CORE_HANDLE, *mut OSSL_PARAM) -> c_int;
pub type CoreGetLibctxFn = unsafe extern "C" fn(*const OSSL_CORE_HANDLE) -> *mut c_void;
pub type CoreNewErrorFn = unsafe extern "C" fn(*const OSSL_CORE_HANDLE);
pub type CoreSetErrorDebugFn =
    unsafe extern "C" fn(*const OSSL_CORE_HANDLE, *const c_char, c_int, *const c_char);
/// `core_vset_error(handle, reason, fmt, va_list)`. The `va_list` is declared as a pointer:
/// on every ABI OpenSSL supports it is passed as a pointer (an array type on x86-64 and
/// s390x; a >16-byte struct passed by reference on AArch64), and our formats never contain
/// a conversion, so it is never read. See `error::raise`.
pub type CoreVsetErrorFn =
    unsafe extern "C" fn(*const OSSL_CORE_HANDLE, u32, *const c_char, *mut c_void);

/// `OSSL_PASSPHRASE_CALLBACK`-free export callback: `OSSL_CALLBACK`.
pub type OSSL_CALLBACK = unsafe extern "C" fn(*const OSSL_PARAM, *mut c_void) -> c_int;

/// `CONF_VALUE` (public in `<openssl/conf.h>`).
#[repr(C)]
pub struct CONF_VALUE {
    pub section: *mut c_char,
    pub name: *mut c_char,
    pub value: *mut c_char,
}

/// Opaque `BN_MONT_CTX`.
pub enum BN_MONT_CTX {}

/// Opaque `ASYNC_JOB` (libcrypto's async.h; openssl-sys does not declare the ASYNC API).
pub enum ASYNC_JOB {}
/// Opaque `ASYNC_WAIT_CTX`.
pub enum ASYNC_WAIT_CTX {}
/// The cleanup callback of a wait fd (`ASYNC_WAIT_CTX_set_wait_fd`).
pub type AsyncFdCleanup =
    unsafe extern "C" fn(*mut ASYNC_WAIT_CTX, *const c_void, c_int, *mut c_void);
/// The callback an application may set on a wait ctx (`ASYNC_callback_fn`).
pub type AsyncCallback = unsafe extern "C" fn(*mut c_void) -> c_int;
/// `ASYNC_STATUS_OK`: the job may be resumed.
pub const ASYNC_STATUS_OK: c_int = 2;

extern "C" {
    pub fn ASYNC_get_current_job() -> *mut ASYNC_JOB;
    pub fn ASYNC_get_wait_ctx(job: *mut ASYNC_JOB) -> *mut ASYNC_WAIT_CTX;
    pub fn ASYNC_pause_job() -> c_int;
    pub fn ASYNC_WAIT_CTX_set_wait_fd(
        ctx: *mut ASYNC_WAIT_CTX,
        key: *const c_void,
        fd: c_int,
        custom_data: *mut c_void,
        cleanup: Option<AsyncFdCleanup>,
    ) -> c_int;
    pub fn ASYNC_WAIT_CTX_get_fd(
        ctx: *mut ASYNC_WAIT_CTX,
        key: *const c_void,
        fd: *mut c_int,
        custom_data: *mut *mut c_void,
    ) -> c_int;
    pub fn ASYNC_WAIT_CTX_clear_fd(ctx: *mut ASYNC_WAIT_CTX, key: *const c_void) -> c_int;
    pub fn ASYNC_WAIT_CTX_get_callback(
        ctx: *mut ASYNC_WAIT_CTX,
        callback: *mut Option<AsyncCallback>,
        callback_arg: *mut *mut c_void,
    ) -> c_int;
    pub fn ASYNC_WAIT_CTX_set_status(ctx: *mut ASYNC_WAIT_CTX, status: c_int) -> c_int;

    pub fn OSSL_LIB_CTX_new_child(
        handle: *const OSSL_CORE_HANDLE,
        in_: *const OSSL_DISPATCH,
    ) -> *mut OSSL_LIB_CTX;
    pub fn OSSL_PROVIDER_available(ctx: *mut OSSL_LIB_CTX, name: *const c_char) -> c_int;

    pub fn OSSL_PARAM_get_int(p: *const OSSL_PARAM, val: *mut c_int) -> c_int;
    pub fn OSSL_PARAM_get_uint(p: *const OSSL_PARAM, val: *mut c_uint) -> c_int;
    pub fn OSSL_PARAM_get_size_t(p: *const OSSL_PARAM, val: *mut usize) -> c_int;
    pub fn OSSL_PARAM_set_int(p: *mut OSSL_PARAM, val: c_int) -> c_int;
    pub fn OSSL_PARAM_set_uint(p: *mut OSSL_PARAM, val: c_uint) -> c_int;
    pub fn OSSL_PARAM_set_size_t(p: *mut OSSL_PARAM, val: usize) -> c_int;
    pub fn OSSL_PARAM_set_utf8_string(p: *mut OSSL_PARAM, val: *const c_char) -> c_int;
    pub fn OSSL_PARAM_set_utf8_ptr(p: *mut OSSL_PARAM, val: *const c_char) -> c_int;
    pub fn OSSL_PARAM_set_octet_string(p: *mut OSSL_PARAM, val: *const c_void, len: usize)
        -> c_int;
    pub fn OSSL_PARAM_set_octet_ptr(p: *mut OSSL_PARAM, val: *const c_void, len: usize) -> c_int;
    pub fn OSSL_PARAM_set_BN(p: *mut OSSL_PARAM, val: *const BIGNUM) -> c_int;

    pub fn RSA_padding_add_PKCS1_type_1(to: *mut u8, tlen: c_int, f: *const u8, fl: c_int)
        -> c_int;
    pub fn RSA_padding_check_PKCS1_type_1(
        to: *mut u8,
        tlen: c_int,
        f: *const u8,
        fl: c_int,
        rsa_len: c_int,
    ) -> c_int;
    pub fn RSA_padding_add_PKCS1_type_2(to: *mut u8, tlen: c_int, f: *const u8, fl: c_int)
        -> c_int;
    pub fn RSA_padding_add_PKCS1_OAEP_mgf1(
        to: *mut u8,
        tlen: c_int,
        from: *const u8,
        flen: c_int,
        param: *const u8,
        plen: c_int,
        md: *const EVP_MD,
        mgf1md: *const EVP_MD,
    ) -> c_int;
    pub fn RSA_padding_check_PKCS1_OAEP_mgf1(
        to: *mut u8,
        tlen: c_int,
        from: *const u8,
        flen: c_int,
        num: c_int,
        param: *const u8,
        plen: c_int,
        md: *const EVP_MD,
        mgf1md: *const EVP_MD,
    ) -> c_int;
    pub fn RSA_padding_add_PKCS1_PSS_mgf1(
        rsa: *mut RSA,
        em: *mut u8,
        mhash: *const u8,
        hash: *const EVP_MD,
        mgf1hash: *const EVP_MD,
        slen: c_int,
    ) -> c_int;
    pub fn RSA_verify_PKCS1_PSS_mgf1(
        rsa: *mut RSA,
        mhash: *const u8,
        hash: *const EVP_MD,
        mgf1hash: *const EVP_MD,
        em: *const u8,
        slen: c_int,
    ) -> c_int;

    pub fn BN_mod_exp_mont(
        r: *mut BIGNUM,
        a: *const BIGNUM,
        p: *const BIGNUM,
        m: *const BIGNUM,
        ctx: *mut BN_CTX,
        m_ctx: *mut BN_MONT_CTX,
    ) -> c_int;
    pub fn BN_MONT_CTX_new() -> *mut BN_MONT_CTX;
    pub fn BN_MONT_CTX_set(mont: *mut BN_MONT_CTX, m: *const BIGNUM, ctx: *mut BN_CTX) -> c_int;
    pub fn BN_MONT_CTX_free(mont: *mut BN_MONT_CTX);
    pub fn BN_mod_mul_montgomery(
        r: *mut BIGNUM,
        a: *const BIGNUM,
        b: *const BIGNUM,
        mont: *mut BN_MONT_CTX,
        ctx: *mut BN_CTX,
    ) -> c_int;
    pub fn BN_dup(a: *const BIGNUM) -> *mut BIGNUM;
    pub fn BN_from_montgomery(
        r: *mut BIGNUM,
        a: *const BIGNUM,
        mont: *mut BN_MONT_CTX,
        ctx: *mut BN_CTX,
    ) -> c_int;
    pub fn BN_security_bits(l: c_int, n: c_int) -> c_int;

    pub fn EVP_PKEY_private_check(ctx: *mut EVP_PKEY_CTX) -> c_int;
    pub fn EVP_PKEY_pairwise_check(ctx: *mut EVP_PKEY_CTX) -> c_int;
    pub fn EVP_PKEY_CTX_new_from_pkey(
        libctx: *mut OSSL_LIB_CTX,
        pkey: *mut EVP_PKEY,
        propquery: *const c_char,
    ) -> *mut EVP_PKEY_CTX;

    pub fn EVP_DigestInit_ex2(
        ctx: *mut EVP_MD_CTX,
        t: *const EVP_MD,
        params: *const OSSL_PARAM,
    ) -> c_int;
    pub fn EVP_MD_CTX_set_params(ctx: *mut EVP_MD_CTX, params: *const OSSL_PARAM) -> c_int;
    pub fn EVP_MD_CTX_get_params(ctx: *mut EVP_MD_CTX, params: *mut OSSL_PARAM) -> c_int;
    pub fn EVP_MD_gettable_ctx_params(md: *const EVP_MD) -> *const OSSL_PARAM;
    pub fn EVP_MD_settable_ctx_params(md: *const EVP_MD) -> *const OSSL_PARAM;

    pub fn NCONF_load(conf: *mut CONF, file: *const c_char, eline: *mut libc::c_long) -> c_int;
    pub fn NCONF_get_string(
        conf: *const CONF,
        group: *const c_char,
        name: *const c_char,
    ) -> *mut c_char;
    pub fn NCONF_get_section(conf: *const CONF, section: *const c_char) -> *mut OPENSSL_STACK;
    pub fn CONF_get1_default_config_file() -> *mut c_char;

    pub fn EVP_RAND_fetch(
        libctx: *mut OSSL_LIB_CTX,
        algorithm: *const c_char,
        properties: *const c_char,
    ) -> *mut EVP_RAND;
    pub fn EVP_RAND_free(rand: *mut EVP_RAND);
    pub fn EVP_RAND_CTX_new(rand: *mut EVP_RAND, parent: *mut EVP_RAND_CTX) -> *mut EVP_RAND_CTX;
    pub fn EVP_RAND_CTX_free(ctx: *mut EVP_RAND_CTX);
    pub fn EVP_RAND_CTX_get_params(ctx: *mut EVP_RAND_CTX, params: *mut OSSL_PARAM) -> c_int;
    pub fn EVP_RAND_CTX_set_params(ctx: *mut EVP_RAND_CTX, params: *const OSSL_PARAM) -> c_int;
    pub fn EVP_RAND_gettable_ctx_params(rand: *const EVP_RAND) -> *const OSSL_PARAM;
    pub fn EVP_RAND_settable_ctx_params(rand: *const EVP_RAND) -> *const OSSL_PARAM;
    pub fn EVP_RAND_instantiate(
        ctx: *mut EVP_RAND_CTX,
        strength: c_uint,
        prediction_resistance: c_int,
        pstr: *const u8,
        pstr_len: usize,
        params: *const OSSL_PARAM,
    ) -> c_int;
    pub fn EVP_RAND_uninstantiate(ctx: *mut EVP_RAND_CTX) -> c_int;
    pub fn EVP_RAND_generate(
        ctx: *mut EVP_RAND_CTX,
        out: *mut u8,
        outlen: usize,
        strength: c_uint,
        prediction_resistance: c_int,
        addin: *const u8,
        addin_len: usize,
    ) -> c_int;
    pub fn EVP_RAND_reseed(
        ctx: *mut EVP_RAND_CTX,
        prediction_resistance: c_int,
        ent: *const u8,
        ent_len: usize,
        addin: *const u8,
        addin_len: usize,
    ) -> c_int;
    pub fn EVP_RAND_enable_locking(ctx: *mut EVP_RAND_CTX) -> c_int;
    pub fn EVP_RAND_verify_zeroization(ctx: *mut EVP_RAND_CTX) -> c_int;

    pub fn OPENSSL_cleanse(ptr: *mut c_void, len: usize);
    pub fn CRYPTO_free(ptr: *mut c_void, file: *const c_char, line: c_int);
    pub fn ERR_peek_last_error() -> c_ulong;
    pub fn ERR_set_mark() -> c_int;
    pub fn ERR_pop_to_mark() -> c_int;
    pub fn ERR_error_string_n(e: c_ulong, buf: *mut c_char, len: usize);
    pub fn EVP_MD_up_ref(md: *mut EVP_MD) -> c_int;
}

/// A view of the caller's bytes (NULL or zero length is an empty slice).
///
/// # Safety
/// `p` is NULL, or `len` is 0, or `p` is readable for `len` bytes that nothing writes for
/// `'a`.
pub unsafe fn bytes<'a>(p: *const std::ffi::c_uchar, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-NULL and `len` > 0, so per the contract readable for `len` bytes and
        // unchanged for 'a (a `u8` needs no alignment).
        unsafe { std::slice::from_raw_parts(p, len) }
    }
}
