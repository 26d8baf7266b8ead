//! After fork the child builds its own device threads on its next open and never touches
//! the parent's threads or queues. (Its own test binary: forking with other tests running
//! would copy their state mid-flight.)

mod common;

use common::*;
use openssl::rsa::{Padding, Rsa};
use wd_core::Backend;

fn one_op(r: &mut TestRing, kb: &KeyBlocks, rsa: &Rsa<openssl::pkey::Private>) -> bool {
    let key = r.map(kb.public.len());
    key.write(0, &kb.public);
    let inb = r.map(kb.k);
    let msg = message(kb.k, 9);
    inb.write(0, &msg);
    let out = r.map(kb.k);
    let slot = r.submit(&hpre_sqe(0, kb.k, key.iova, inb.iova, out.iova, 1));
    let Some(c) = r.wait_cqe(WAIT) else {
        return false;
    };
    let mut want = vec![0u8; kb.k];
    rsa.public_encrypt(&msg, &mut want, Padding::NONE).unwrap();
    c.sq_head == slot && split_dw0(r.dw0(slot)).1 == 0 && out.read(0, kb.k) == want
}

#[test]
fn forked_child_opens_its_own_queue_and_parent_keeps_working() {
    let rsa = Rsa::generate(1024).unwrap();
    let kb = key_blocks(&rsa);
    let m = model_with(|c| c.queues = 4);
    let mut parent_q = m.open(0);
    assert!(one_op(&mut parent_q, &kb, &rsa));
    assert_eq!(m.backend.available_instances(&m.dev).unwrap(), 3);

    // SAFETY: the child only uses the model and libc, then leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // The inherited queue is the parent's: forget it without touching it.
            let TestRing { q, .. } = parent_q;
            q.abandon();
            std::mem::forget(q);
            let mut mine = m.open(0);
            mine.qid != 0 && one_op(&mut mine, &kb, &rsa)
        }));
        let code = match result {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(_) => 2,
        };
        // SAFETY: ends the child without running the parent's destructors or atexit.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` outlives the call.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert!(libc::WIFEXITED(status), "child status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child failed");
    // The parent's queue and threads were left alone.
    assert!(one_op(&mut parent_q, &kb, &rsa));
    assert_eq!(m.backend.available_instances(&m.dev).unwrap(), 3);
}
