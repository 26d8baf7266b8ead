//! RSA paddings through libcrypto's public padding functions. Each takes or returns an
//! encoded message of exactly the modulus length `k`.

use std::ffi::c_int;
use std::ptr;

use foreign_types::ForeignTypeRef;

use crate::error::{fail, Error, Reason, Result};
use crate::ffi;
use crate::ossl::{last_error_text, MdRef, RsaRef};

fn int(n: usize) -> Result<c_int> {
    c_int::try_from(n).map_err(|_| Error::new(Reason::WrongInputLength, "input too long"))
}

/// PKCS#1 v1.5 padding by `add` (libcrypto's function for block type 1 or 2) around `data`;
/// `fit` and `block` word the errors.
fn add_pkcs1(
    k: usize,
    data: &[u8],
    add: unsafe extern "C" fn(*mut u8, c_int, *const u8, c_int) -> c_int,
    fit: &str,
    block: &str,
) -> Result<Vec<u8>> {
    if data.len() + 11 > k {
        return fail(
            Reason::DataTooLarge,
            format!(
                "{} bytes do not fit PKCS#1 v1.5 {fit} {k}-byte key",
                data.len()
            ),
        );
    }
    let mut em = vec![0u8; k];
    // SAFETY: `add` is one of libcrypto's RSA_padding_add_PKCS1_type_* functions (the two
    // callers below), which write exactly `k` bytes into `em` (writable for `k`) and read
    // `data.len()` bytes of `data`.
    let r = unsafe { add(em.as_mut_ptr(), int(k)?, data.as_ptr(), int(data.len())?) };
    if r != 1 {
        return fail(
            Reason::Software,
            format!("PKCS#1 {block} padding failed{}", last_error_text()),
        );
    }
    Ok(em)
}

/// EMSA-PKCS1-v1_5 block type 1 around `data` (a DigestInfo or raw data).
pub fn add_type1(k: usize, data: &[u8]) -> Result<Vec<u8>> {
    add_pkcs1(
        k,
        data,
        ffi::RSA_padding_add_PKCS1_type_1,
        "padding of a",
        "type 1",
    )
}

/// Strips block type 1; `None` if `em` is not a valid type 1 block.
pub fn check_type1(em: &[u8]) -> Result<Option<Vec<u8>>> {
    let k = em.len();
    let mut out = vec![0u8; k];
    // SAFETY: `out` is writable for `k` bytes (the most the check writes) and `em` readable
    // for `k`, the lengths passed; the error mark and pop only touch this thread's queue.
    let n = unsafe {
        ffi::ERR_set_mark();
        let n = ffi::RSA_padding_check_PKCS1_type_1(
            out.as_mut_ptr(),
            int(k)?,
            em.as_ptr(),
            int(k)?,
            int(k)?,
        );
        ffi::ERR_pop_to_mark();
        n
    };
    if n < 0 {
        return Ok(None);
    }
    out.truncate(n as usize);
    Ok(Some(out))
}

/// EME-PKCS1-v1_5 (block type 2, random non-zero padding) around `msg`.
pub fn add_type2(k: usize, msg: &[u8]) -> Result<Vec<u8>> {
    add_pkcs1(
        k,
        msg,
        ffi::RSA_padding_add_PKCS1_type_2,
        "encryption with a",
        "type 2",
    )
}

/// Removes block type 2 from a decrypted `em`; `Err(PaddingCheckFailed)` if invalid.
pub fn check_type2(em: &[u8]) -> Result<Vec<u8>> {
    let k = em.len();
    let mut out = vec![0u8; k];
    // SAFETY: `out` is writable for `k` bytes (the most the check writes) and `em` readable
    // for `k`, the lengths passed.
    let n = unsafe {
        openssl_sys::RSA_padding_check_PKCS1_type_2(
            out.as_mut_ptr(),
            int(k)?,
            em.as_ptr(),
            int(k)?,
            int(k)?,
        )
    };
    if n < 0 {
        return fail(
            Reason::PaddingCheckFailed,
            "PKCS#1 v1.5 decryption padding check failed",
        );
    }
    out.truncate(n as usize);
    Ok(out)
}

/// EME-OAEP around `msg`.
pub fn add_oaep(k: usize, msg: &[u8], label: &[u8], md: &MdRef, mgf1: &MdRef) -> Result<Vec<u8>> {
    let h = md.size();
    if msg.len() + 2 * h + 2 > k {
        return fail(
            Reason::DataTooLarge,
            format!(
                "{} bytes do not fit OAEP with a {h}-byte digest and a {k}-byte key",
                msg.len()
            ),
        );
    }
    let mut em = vec![0u8; k];
    // SAFETY: `em` is writable for `k` bytes, the length passed; `msg` and `label` are
    // readable for the lengths passed (an empty label as NULL, length 0); two valid digests.
    let r = unsafe {
        ffi::RSA_padding_add_PKCS1_OAEP_mgf1(
            em.as_mut_ptr(),
            int(k)?,
            msg.as_ptr(),
            int(msg.len())?,
            if label.is_empty() {
                ptr::null()
            } else {
                label.as_ptr()
            },
            int(label.len())?,
            md.as_ptr(),
            mgf1.as_ptr(),
        )
    };
    if r != 1 {
        return fail(
            Reason::Software,
            format!("OAEP padding failed{}", last_error_text()),
        );
    }
    Ok(em)
}

/// Removes OAEP from a decrypted `em`; `Err(PaddingCheckFailed)` if invalid.
pub fn check_oaep(em: &[u8], label: &[u8], md: &MdRef, mgf1: &MdRef) -> Result<Vec<u8>> {
    let k = em.len();
    let mut out = vec![0u8; k];
    // SAFETY: `out` is writable for `k` bytes (the most the check writes) and `em` readable
    // for `k`; `label` readable for its length (NULL when empty); two valid digests.
    let n = unsafe {
        ffi::RSA_padding_check_PKCS1_OAEP_mgf1(
            out.as_mut_ptr(),
            int(k)?,
            em.as_ptr(),
            int(k)?,
            int(k)?,
            if label.is_empty() {
                ptr::null()
            } else {
                label.as_ptr()
            },
            int(label.len())?,
            md.as_ptr(),
            mgf1.as_ptr(),
        )
    };
    if n < 0 {
        return fail(
            Reason::PaddingCheckFailed,
            "OAEP decryption padding check failed",
        );
    }
    out.truncate(n as usize);
    Ok(out)
}

/// PSS takes a digest of exactly `md`'s size.
fn pss_digest_len(mhash: &[u8], md: &MdRef) -> Result<()> {
    if mhash.len() != md.size() {
        return fail(
            Reason::WrongInputLength,
            format!(
                "PSS needs a {}-byte digest, got {} bytes",
                md.size(),
                mhash.len()
            ),
        );
    }
    Ok(())
}

/// EMSA-PSS of `mhash` with salt length `slen` (≥ 0, or libcrypto's -1 digest / -3 max).
pub fn add_pss(
    rsa: &RsaRef,
    k: usize,
    mhash: &[u8],
    md: &MdRef,
    mgf1: &MdRef,
    slen: c_int,
) -> Result<Vec<u8>> {
    pss_digest_len(mhash, md)?;
    if k != rsa.size() {
        return fail(Reason::Internal, "PSS block length is not the key's");
    }
    let mut em = vec![0u8; k];
    // SAFETY: `em` is writable for `k` = RSA_size(rsa) bytes, what the encoding writes;
    // `mhash` holds exactly `md`'s size (checked above); valid key and digests.
    let r = unsafe {
        ffi::RSA_padding_add_PKCS1_PSS_mgf1(
            rsa.as_ptr(),
            em.as_mut_ptr(),
            mhash.as_ptr(),
            md.as_ptr(),
            mgf1.as_ptr(),
            slen,
        )
    };
    if r != 1 {
        return fail(
            Reason::InvalidParameter,
            format!("PSS encoding failed{}", last_error_text()),
        );
    }
    Ok(em)
}

/// EMSA-PSS verification of `em` against `mhash` (`slen` ≥ 0, or -1 digest, -2 auto, -3 max).
pub fn verify_pss(
    rsa: &RsaRef,
    mhash: &[u8],
    md: &MdRef,
    mgf1: &MdRef,
    em: &[u8],
    slen: c_int,
) -> Result<bool> {
    pss_digest_len(mhash, md)?;
    if em.len() != rsa.size() {
        return fail(Reason::Internal, "PSS block length is not the key's");
    }
    // SAFETY: `em` holds RSA_size(rsa) bytes (checked), what the verification reads;
    // `mhash` holds exactly `md`'s size (checked above); valid key and digests. The error
    // mark and pop only touch this thread's queue (a failed check's errors are dropped, we
    // raise our own).
    let r = unsafe {
        ffi::ERR_set_mark();
        let r = ffi::RSA_verify_PKCS1_PSS_mgf1(
            rsa.as_ptr(),
            mhash.as_ptr(),
            md.as_ptr(),
            mgf1.as_ptr(),
            em.as_ptr(),
            slen,
        );
        ffi::ERR_pop_to_mark();
        r
    };
    Ok(r == 1)
}
