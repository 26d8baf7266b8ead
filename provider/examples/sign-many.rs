//! Signs N different 32-byte digests (as SHA-256) with one key through whatever libcrypto's default
//! library context is configured with (OPENSSL_CONF), PKCS#1 v1.5, and prints one hex
//! signature per line. Deterministic: the same key and N give the same lines with any
//! correct provider. Used by the fault-injection tests: run once on wd with faults, once on
//! the default provider alone, compare.
//!
//! Usage: sign-many KEY.pem N [pss]
//! With `pss`, each signature is made with PSS and verified in the same process instead
//! (lines print `ok`).

use std::ffi::CString;
use std::process::ExitCode;
use std::ptr;

use openssl_sys as sys;

extern "C" {
    fn ERR_print_errors_fp(fp: *mut libc::FILE);
}

/// Prints (and clears) the thread's OpenSSL error queue on stderr.
fn print_errors() {
    // SAFETY: fdopen of stderr for libcrypto's printer (the FILE is leaked on purpose).
    unsafe {
        let f = libc::fdopen(2, c"w".as_ptr());
        if !f.is_null() {
            ERR_print_errors_fp(f);
            libc::fflush(f);
        }
    }
}

fn die(what: &str) -> ExitCode {
    eprintln!("sign-many: {what} failed");
    print_errors();
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: sign-many KEY.pem N [pss]");
        return ExitCode::from(2);
    }
    let n: u32 = args[2].parse().unwrap_or(1);
    let pss = args.get(3).is_some_and(|a| a == "pss");
    // `fork`: sign once in this process (as nginx's master may), then fork and sign the N
    // in the child, which must open its own queue; the parent waits for it.
    let fork = args.get(3).is_some_and(|a| a == "fork");
    let pem = match std::fs::read(&args[1]) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("sign-many: {}: {e}", args[1]);
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: plain libcrypto calls on objects created here; every pointer is checked.
    unsafe {
        let bio = sys::BIO_new_mem_buf(pem.as_ptr().cast(), pem.len() as i32);
        let pkey = sys::PEM_read_bio_PrivateKey(bio, ptr::null_mut(), None, ptr::null_mut());
        sys::BIO_free_all(bio);
        if pkey.is_null() {
            return die("reading the key");
        }
        let sha256 = CString::new("SHA256").unwrap();
        let md = sys::EVP_MD_fetch(ptr::null_mut(), sha256.as_ptr(), ptr::null());
        if md.is_null() {
            return die("EVP_MD_fetch");
        }
        for i in 0..n {
            if fork && i == 1 {
                use std::io::Write;
                let _ = std::io::stdout().flush();
                let child = libc::fork();
                assert!(child >= 0, "fork failed");
                if child > 0 {
                    let mut status = 0;
                    libc::waitpid(child, &mut status, 0);
                    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                        return die("the forked child");
                    }
                    break;
                }
            }
            // A distinct 32-byte "digest" per i (any 32 bytes do for the signature).
            let digest: [u8; 32] = std::array::from_fn(|j| (i as usize * 31 + j * 7) as u8);
            let ctx = sys::EVP_PKEY_CTX_new(pkey, ptr::null_mut());
            if ctx.is_null() || sys::EVP_PKEY_sign_init(ctx) <= 0 {
                return die("sign init");
            }
            let pad = if pss { 6 } else { 1 };
            if sys::EVP_PKEY_CTX_set_rsa_padding(ctx, pad) <= 0
                || sys::EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0
            {
                return die("sign setup");
            }
            let mut sig = vec![0u8; 2048];
            let mut slen = sig.len();
            if sys::EVP_PKEY_sign(ctx, sig.as_mut_ptr(), &mut slen, digest.as_ptr(), 32) <= 0 {
                return die("EVP_PKEY_sign");
            }
            sig.truncate(slen);
            if pss {
                let v = sys::EVP_PKEY_CTX_new(pkey, ptr::null_mut());
                if v.is_null()
                    || sys::EVP_PKEY_verify_init(v) <= 0
                    || sys::EVP_PKEY_CTX_set_rsa_padding(v, pad) <= 0
                    || sys::EVP_PKEY_CTX_set_signature_md(v, md) <= 0
                    || sys::EVP_PKEY_verify(v, sig.as_ptr(), sig.len(), digest.as_ptr(), 32) != 1
                {
                    return die("PSS verify");
                }
                sys::EVP_PKEY_CTX_free(v);
                println!("ok");
            } else {
                println!(
                    "{}",
                    sig.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
            }
            sys::EVP_PKEY_CTX_free(ctx);
        }
        sys::EVP_MD_free(md);
        sys::EVP_PKEY_free(pkey);
    }
    ExitCode::SUCCESS
}
