//! wd inside OpenSSL ASYNC jobs, in this process, on the device model (issue 10): many
//! RSA-2048 signatures in flight from one thread, each job resumed only when the descriptor
//! wd gave its wait ctx is readable; every signature verified by the default provider;
//! spurious resumes; a wait ctx freed while its job is paused; fork while jobs are paused;
//! callback mode (`ASYNC_WAIT_CTX_set_callback`); and the fibre stacks
//! (libcrypto's 32 KiB, no guard page) filled with a canary and checked afterwards for how
//! deep the whole offload path went.
//!
//! One test in this binary: it installs libcrypto's allocator hooks (which must come before
//! libcrypto's first allocation) and sets the environment.

#![cfg(feature = "model")]

mod common;
use common::*;

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssl_sys as sys;

enum AsyncJob {}
enum WaitCtx {}
type JobFn = unsafe extern "C" fn(*mut c_void) -> c_int;

extern "C" {
    fn CRYPTO_set_mem_functions(
        m: Option<unsafe extern "C" fn(usize, *const c_char, c_int) -> *mut c_void>,
        r: Option<unsafe extern "C" fn(*mut c_void, usize, *const c_char, c_int) -> *mut c_void>,
        f: Option<unsafe extern "C" fn(*mut c_void, *const c_char, c_int)>,
    ) -> c_int;
    fn OSSL_PROVIDER_set_default_search_path(
        ctx: *mut sys::OSSL_LIB_CTX,
        path: *const c_char,
    ) -> c_int;
    fn PEM_read_bio_PrivateKey_ex(
        bio: *mut sys::BIO,
        x: *mut *mut sys::EVP_PKEY,
        cb: *mut c_void,
        u: *mut c_void,
        libctx: *mut sys::OSSL_LIB_CTX,
        propq: *const c_char,
    ) -> *mut sys::EVP_PKEY;
    fn EVP_PKEY_CTX_new_from_pkey(
        libctx: *mut sys::OSSL_LIB_CTX,
        pkey: *mut sys::EVP_PKEY,
        propq: *const c_char,
    ) -> *mut sys::EVP_PKEY_CTX;
    fn ASYNC_WAIT_CTX_new() -> *mut WaitCtx;
    fn ASYNC_WAIT_CTX_free(ctx: *mut WaitCtx);
    fn ASYNC_WAIT_CTX_get_all_fds(ctx: *mut WaitCtx, fd: *mut c_int, numfds: *mut usize) -> c_int;
    fn ASYNC_start_job(
        job: *mut *mut AsyncJob,
        ctx: *mut WaitCtx,
        ret: *mut c_int,
        func: Option<JobFn>,
        args: *mut c_void,
        size: usize,
    ) -> c_int;
    fn ASYNC_cleanup_thread();
    fn ASYNC_WAIT_CTX_set_callback(
        ctx: *mut WaitCtx,
        cb: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
        arg: *mut c_void,
    ) -> c_int;
}

/// Callback-mode wake-ups: one flag per job, set by wd's call of the ctx's callback.
static CALLED: [std::sync::atomic::AtomicBool; 8] =
    [const { std::sync::atomic::AtomicBool::new(false) }; 8];
static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe extern "C" fn wake_cb(arg: *mut c_void) -> c_int {
    CALLED[arg as usize].store(true, std::sync::atomic::Ordering::SeqCst);
    CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    1
}

const ASYNC_ERR: c_int = 0;
const ASYNC_PAUSE: c_int = 2;
const ASYNC_FINISH: c_int = 3;

/// libcrypto 3.0's fibre stack size (crypto/async/arch/async_posix.c, STACKSIZE).
const STACK: usize = 32768;
const CANARY: u8 = 0xA5;

/// Every 32 KiB block libcrypto allocated (fibre stacks), as addresses.
static STACKS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

unsafe extern "C" fn hook_malloc(n: usize, _f: *const c_char, _l: c_int) -> *mut c_void {
    // SAFETY: plain malloc; a block of STACK bytes is filled before anyone uses it.
    unsafe {
        let p = libc::malloc(n);
        if n == STACK && !p.is_null() {
            ptr::write_bytes(p.cast::<u8>(), CANARY, n);
            STACKS.lock().unwrap().push(p as usize);
        }
        p
    }
}

unsafe extern "C" fn hook_realloc(
    p: *mut c_void,
    n: usize,
    _f: *const c_char,
    _l: c_int,
) -> *mut c_void {
    // SAFETY: plain realloc of a block from hook_malloc/hook_realloc.
    unsafe { libc::realloc(p, n) }
}

unsafe extern "C" fn hook_free(p: *mut c_void, _f: *const c_char, _l: c_int) {
    STACKS.lock().unwrap().retain(|&s| s != p as usize);
    // SAFETY: a block from hook_malloc/hook_realloc (or null).
    unsafe { libc::free(p) }
}

/// The deepest any recorded stack was used, in bytes (stacks grow down from the top).
fn deepest_stack_use() -> Option<usize> {
    let stacks = STACKS.lock().unwrap();
    stacks
        .iter()
        .map(|&s| {
            // SAFETY: a live STACK-byte block from hook_malloc (not freed: removed then).
            let bytes = unsafe { std::slice::from_raw_parts(s as *const u8, STACK) };
            STACK - bytes.iter().position(|&b| b != CANARY).unwrap_or(STACK)
        })
        .max()
}

/// What one job signs and where it puts the result.
struct Arg {
    ctx: *mut sys::EVP_PKEY_CTX,
    digest: [u8; 32],
    sig: Vec<u8>,
    siglen: usize,
}

unsafe extern "C" fn sign_job(a: *mut c_void) -> c_int {
    // SAFETY: ASYNC_start_job copied the pointer-sized argument we gave: a *mut Arg that
    // lives until the job finished.
    unsafe {
        let arg = &mut **(a as *mut *mut Arg);
        arg.siglen = arg.sig.len();
        sys::EVP_PKEY_sign(
            arg.ctx,
            arg.sig.as_mut_ptr(),
            &mut arg.siglen,
            arg.digest.as_ptr(),
            32,
        )
    }
}

struct Slot {
    job: *mut AsyncJob,
    wctx: *mut WaitCtx,
    arg: Box<Arg>,
    ret: c_int,
    done: bool,
}

/// Starts or resumes `s`'s job once; true once it finished.
unsafe fn step(s: &mut Slot) -> bool {
    let mut argp: *mut Arg = &mut *s.arg;
    // SAFETY: the slot's job (null before the start), its live wait ctx, and a pointer to
    // the boxed argument, copied by libcrypto.
    let r = unsafe {
        ASYNC_start_job(
            &mut s.job,
            s.wctx,
            &mut s.ret,
            Some(sign_job),
            (&mut argp as *mut *mut Arg).cast(),
            std::mem::size_of::<*mut Arg>(),
        )
    };
    match r {
        ASYNC_PAUSE => false,
        ASYNC_FINISH => {
            s.done = true;
            true
        }
        ASYNC_ERR => panic!("ASYNC_start_job failed"),
        other => panic!("ASYNC_start_job: no jobs ({other})"),
    }
}

/// The descriptors of a wait ctx.
unsafe fn fds(w: *mut WaitCtx) -> Vec<c_int> {
    let mut n = 0usize;
    // SAFETY: live wait ctx; a size query, then a buffer of that size.
    unsafe {
        assert_eq!(ASYNC_WAIT_CTX_get_all_fds(w, ptr::null_mut(), &mut n), 1);
        let mut v = vec![-1; n];
        assert_eq!(ASYNC_WAIT_CTX_get_all_fds(w, v.as_mut_ptr(), &mut n), 1);
        v
    }
}

/// Drives `slots` (skipping `skip`) to the end the way `openssl speed` does: poll the
/// descriptors of every paused job and resume those readable; or, when `spurious`, resume
/// every paused job each round whatever its descriptor says.
unsafe fn drive(slots: &mut [Slot], skip: &[usize], spurious: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live: Vec<usize> = (0..slots.len())
            .filter(|i| !slots[*i].done && !skip.contains(i))
            .collect();
        if live.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "jobs still paused after 30 s");
        if spurious {
            for &i in &live {
                // SAFETY: a paused job of ours.
                unsafe { step(&mut slots[i]) };
            }
            continue;
        }
        let mut pfds = Vec::new();
        let mut owner = Vec::new();
        for &i in &live {
            // SAFETY: a live wait ctx.
            let f = unsafe { fds(slots[i].wctx) };
            assert_eq!(
                f.len(),
                1,
                "wd gives a paused job exactly one descriptor: {f:?}"
            );
            pfds.push(libc::pollfd {
                fd: f[0],
                events: libc::POLLIN,
                revents: 0,
            });
            owner.push(i);
        }
        // SAFETY: a valid pollfd array for the call.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as _, 10_000) };
        assert!(r > 0, "no paused job's descriptor became readable in 10 s");
        for (p, &i) in pfds.iter().zip(&owner) {
            if p.revents & libc::POLLIN != 0 {
                // SAFETY: a paused job of ours.
                unsafe { step(&mut slots[i]) };
            }
        }
    }
}

#[test]
fn many_signatures_in_flight_from_one_thread_in_async_jobs() {
    // SAFETY: the first libcrypto call of the process (this binary's only test).
    let hooked =
        unsafe { CRYPTO_set_mem_functions(Some(hook_malloc), Some(hook_realloc), Some(hook_free)) };
    assert_eq!(hooked, 1, "libcrypto allocated before the hooks");
    let w = World::new();
    std::env::set_var("WD_DEVICES", "model");
    std::env::set_var("WD_MODEL_ENGINES", "2");
    // 2 ms per request on top of the computation: a job's request is still in flight when
    // the job pauses, even when this (shared, loaded) machine deschedules the thread
    // between the send and the first look at the ring.
    std::env::set_var("WD_MODEL_LATENCY_US", "2000");
    std::env::set_var("WD_STATS_DIR", w.stats_dir());
    std::env::set_var("WD_MODEL_DIR", w.path("model"));
    let dir = CString::new(modules().to_str().unwrap()).unwrap();
    let pem = std::fs::read(key(2048)).unwrap();

    // SAFETY: public libcrypto API on objects made here, every pointer checked.
    unsafe {
        let lib = sys::OSSL_LIB_CTX_new();
        assert_eq!(OSSL_PROVIDER_set_default_search_path(lib, dir.as_ptr()), 1);
        assert!(
            !sys::OSSL_PROVIDER_load(lib, c"wd".as_ptr()).is_null(),
            "loading wd"
        );
        assert!(!sys::OSSL_PROVIDER_load(lib, c"default".as_ptr()).is_null());
        let bio = sys::BIO_new_mem_buf(pem.as_ptr().cast(), pem.len() as c_int);
        let pkey = PEM_read_bio_PrivateKey_ex(
            bio,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            lib,
            ptr::null(),
        );
        assert!(!pkey.is_null());
        sys::BIO_free_all(bio);
        let sha256 = sys::EVP_MD_fetch(lib, c"SHA256".as_ptr(), ptr::null());

        let new_slot = |i: usize| {
            let ctx = EVP_PKEY_CTX_new_from_pkey(lib, pkey, c"provider=wd".as_ptr());
            assert!(!ctx.is_null());
            assert_eq!(sys::EVP_PKEY_sign_init(ctx), 1);
            assert_eq!(
                sys::EVP_PKEY_CTX_set_rsa_padding(ctx, sys::RSA_PKCS1_PADDING),
                1
            );
            assert_eq!(sys::EVP_PKEY_CTX_set_signature_md(ctx, sha256), 1);
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let wctx = ASYNC_WAIT_CTX_new();
            assert!(!wctx.is_null());
            Slot {
                job: ptr::null_mut(),
                wctx,
                arg: Box::new(Arg {
                    ctx,
                    digest,
                    sig: vec![0; 256],
                    siglen: 0,
                }),
                ret: 0,
                done: false,
            }
        };
        let verify = |s: &Slot| {
            assert_eq!(s.ret, 1, "a job's signature failed");
            let v = EVP_PKEY_CTX_new_from_pkey(lib, pkey, c"provider=default".as_ptr());
            assert_eq!(sys::EVP_PKEY_verify_init(v), 1);
            assert_eq!(
                sys::EVP_PKEY_CTX_set_rsa_padding(v, sys::RSA_PKCS1_PADDING),
                1
            );
            assert_eq!(sys::EVP_PKEY_CTX_set_signature_md(v, sha256), 1);
            let r = sys::EVP_PKEY_verify(
                v,
                s.arg.sig.as_ptr(),
                s.arg.siglen,
                s.arg.digest.as_ptr(),
                32,
            );
            sys::EVP_PKEY_CTX_free(v);
            assert_eq!(
                r, 1,
                "the default provider rejects a signature made in a job"
            );
        };
        let free_slot = |s: Slot| {
            sys::EVP_PKEY_CTX_free(s.arg.ctx);
            ASYNC_WAIT_CTX_free(s.wctx);
        };

        // 1. 32 jobs from one thread, each resumed only when its descriptor is readable.
        let mut slots: Vec<Slot> = (0..32).map(new_slot).collect();
        let mut paused = 0;
        for s in slots.iter_mut() {
            if !step(s) {
                paused += 1;
            }
        }
        assert!(
            paused > 16,
            "only {paused} of 32 jobs paused for the device"
        );
        drive(&mut slots, &[], false);
        slots.iter().for_each(verify);
        let c = w.counters();
        let get = |n: &str| stats::get(&c, n).unwrap();
        assert!(get("async_submitted") >= 32, "{}", stats::format(&c));
        assert!(get("async_pauses") >= 16, "{}", stats::format(&c));
        assert!(get("offload_private") >= 32, "{}", stats::format(&c));
        assert_eq!(w.fallbacks(), 0, "{}", stats::format(&c));
        slots.into_iter().for_each(free_slot);

        // 2. Spurious resumes: every paused job resumed every round.
        let mut slots: Vec<Slot> = (100..108).map(new_slot).collect();
        drive(&mut slots, &[], true);
        slots.iter().for_each(verify);
        slots.into_iter().for_each(free_slot);

        // 3. A wait ctx freed while its job is paused (the job is never resumed): the
        //    others still complete, resumed by their descriptors.
        let mut slots: Vec<Slot> = (200..208).map(new_slot).collect();
        for s in slots.iter_mut() {
            assert!(
                !step(s),
                "job finished without pausing: {}",
                stats::format(&w.counters())
            );
        }
        ASYNC_WAIT_CTX_free(slots[0].wctx);
        slots[0].wctx = ptr::null_mut();
        drive(&mut slots, &[0], false);
        slots[1..].iter().for_each(verify);
        let c = w.counters();
        assert_eq!(w.fallbacks(), 0, "{}", stats::format(&c));
        // Job 0 stays paused and leaks with its argument: libcrypto has no API to free a
        // paused job.
        let abandoned = slots.remove(0);
        std::mem::forget(abandoned);
        slots.into_iter().for_each(|s| {
            sys::EVP_PKEY_CTX_free(s.arg.ctx);
            ASYNC_WAIT_CTX_free(s.wctx);
        });

        // 4. fork() while jobs are paused: the child resumes one inherited job (its request
        //    is not the child's to reap: software), then runs new ASYNC jobs of its own on
        //    its own queue (each paused with its one descriptor, resumed by it, signatures
        //    verified) and a synchronous signature; the parent's paused jobs then complete
        //    from the parent's queue, which the child never touched. The child runs under
        //    a harness timeout (killed and reported if it hangs).
        let mut slots: Vec<Slot> = (300..304).map(new_slot).collect();
        for s in slots.iter_mut() {
            assert!(
                !step(s),
                "job finished without pausing: {}",
                stats::format(&w.counters())
            );
        }
        let before = w.counters();
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // ASYNC jobs of the child's own while the inherited ones are still paused,
                // then again after the first batch's jobs and wait ctxs are gone: each
                // pauses for the child's device with its one descriptor.
                let own_batch = |first: usize| {
                    let mut own: Vec<Slot> = (first..first + 8).map(new_slot).collect();
                    let mut paused = 0;
                    for s in own.iter_mut() {
                        if !step(s) {
                            paused += 1;
                        }
                    }
                    assert!(paused > 0, "no job of the child paused for the device");
                    drive(&mut own, &[], false);
                    own.iter().for_each(verify);
                    own.into_iter().for_each(free_slot);
                };
                own_batch(400);
                let mut inherited = slots.remove(1);
                let t = Instant::now();
                while !step(&mut inherited) {
                    assert!(t.elapsed() < Duration::from_secs(10), "inherited job hangs");
                }
                verify(&inherited);
                // A new job of the child on the inherited wait ctx (which holds the
                // parent's descriptor).
                inherited.job = ptr::null_mut();
                inherited.done = false;
                inherited.arg.digest[8] ^= 1;
                let mut reused = vec![inherited];
                if !step(&mut reused[0]) {
                    drive(&mut reused, &[], false);
                }
                verify(&reused[0]);
                std::mem::forget(reused);
                own_batch(420);
                let c =
                    stats::read_file(&w.stats_dir().join(format!("{}.stats", std::process::id())))
                        .map(|(_, v)| v)
                        .expect("the child's counters");
                assert!(
                    stats::get(&c, "async_submitted").unwrap() >= 16,
                    "the child's jobs did not go to its device in flight: {}",
                    stats::format(&c)
                );
                // A signature of the child's own, outside a job, on the child's queue.
                let mut own = new_slot(400);
                own.arg.siglen = own.arg.sig.len();
                own.ret = sys::EVP_PKEY_sign(
                    own.arg.ctx,
                    own.arg.sig.as_mut_ptr(),
                    &mut own.arg.siglen,
                    own.arg.digest.as_ptr(),
                    32,
                );
                verify(&own);
            }))
            .is_ok();
            libc::_exit(if ok { 0 } else { 1 });
        }
        // The harness's timeout: a child that hangs is killed and reported, never waited
        // for forever.
        let mut status = 0;
        let t = Instant::now();
        loop {
            let r = libc::waitpid(pid, &mut status, libc::WNOHANG);
            assert!(r >= 0, "waitpid failed");
            if r == pid {
                break;
            }
            if t.elapsed() > Duration::from_secs(120) {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
                panic!("the forked child hangs (killed after 120 s)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the forked child failed ({status:#x})"
        );
        let child = stats::read_file(&w.stats_dir().join(format!("{pid}.stats")))
            .map(|(_, v)| v)
            .expect("the child's counters");
        assert!(
            stats::get(&child, "offload_private").unwrap() >= 1,
            "the child did not offload on its own queue: {}",
            stats::format(&child)
        );
        drive(&mut slots, &[], false);
        slots.iter().for_each(verify);
        let after = w.counters();
        let parent_delta = |n: &str| {
            stats::get(&after, n).unwrap()
                - stats::get(&before, n).unwrap()
                - stats::get(&child, n).unwrap()
        };
        assert!(
            parent_delta("offload_private") >= 4,
            "{}",
            stats::format(&after)
        );
        slots.into_iter().for_each(free_slot);

        // 5. Callback mode (ASYNC_WAIT_CTX_set_callback): a job whose completion another
        //    reaps is told through its callback; the application resumes it on the call
        //    (and the watcher through its descriptor, which it still has).
        let mut slots: Vec<Slot> = (500..508).map(new_slot).collect();
        for (i, s) in slots.iter_mut().enumerate() {
            assert_eq!(
                ASYNC_WAIT_CTX_set_callback(s.wctx, Some(wake_cb), i as *mut c_void),
                1
            );
            assert!(!step(s), "job finished without pausing");
        }
        // Let the engines finish all eight before anyone is resumed, so the first job
        // resumed (the watcher) reaps the others' completions and must call their
        // callbacks; resuming while the device still works would let each job reap its own
        // completion, and whether a callback is due would depend on timing.
        std::thread::sleep(Duration::from_secs(1));
        let t = Instant::now();
        while slots.iter().any(|s| !s.done) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "callback-mode jobs hang"
            );
            let mut pfds: Vec<libc::pollfd> = Vec::new();
            let mut owner = Vec::new();
            for (i, s) in slots.iter_mut().enumerate() {
                if s.done {
                    continue;
                }
                if CALLED[i].swap(false, std::sync::atomic::Ordering::SeqCst) {
                    step(s);
                    continue;
                }
                for fd in fds(s.wctx) {
                    pfds.push(libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    owner.push(i);
                }
            }
            libc::poll(pfds.as_mut_ptr(), pfds.len() as _, 5);
            for (p, &i) in pfds.iter().zip(&owner) {
                if p.revents & libc::POLLIN != 0 && !slots[i].done {
                    step(&mut slots[i]);
                }
            }
        }
        slots.iter().for_each(verify);
        assert!(
            CALLS.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "wd never called a job's callback"
        );
        slots.into_iter().for_each(free_slot);

        // 6. The fibre stacks: how deep did the offload path go?
        let deepest = deepest_stack_use().expect("no fibre stack was allocated");
        eprintln!("deepest fibre stack use: {deepest} of {STACK} bytes");
        assert!(
            deepest <= STACK - 8192,
            "the offload path used {deepest} of the fibre's {STACK} bytes (less than 8 KiB left)"
        );
        ASYNC_cleanup_thread();
        sys::EVP_MD_free(sha256);
        sys::EVP_PKEY_free(pkey);
    }
}
