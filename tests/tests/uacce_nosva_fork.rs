//! Fork on a no-SVA uacce queue (the openEuler 5.10 no-SVA fixture): a child never touches
//! its parent's queue nor its static-share region (uacce's VMAs, the SS one included, are
//! VM_DONTCOPY; the fake kernel's region memory is MADV_DONTFORK, so a touch would kill the
//! child); it opens a queue of its own, with a static-share region of its own. Its inherited copy
//! of the descriptor is closed, nothing else: no PUT_Q, no munmap, no access to the
//! mappings (the fake kernel's queue memory is MADV_DONTFORK, as uacce's VMAs are
//! VM_DONTCOPY, so a touch would kill the child). The child then opens a queue of its own.
//! (Its own test binary: forking a process full of test threads is not sound.)

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{key, policy};
use hisi_model::uacce_fake::ModelSide;
use wd_core::uacce::fake::{Call, FakeKernel};
use wd_core::{Backend, Device};

#[test]
fn no_sva_child_closes_the_inherited_descriptor_only_and_opens_its_own_region() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/uacce/openeuler-nosva");
    let side = Arc::new(ModelSide::default());
    let kernel = FakeKernel::from_fixture(fixture, side.clone()).unwrap();
    let backend = Arc::new(kernel.backend(Some(wd_core::uacce::Abi::Mainline)));
    let info = backend
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.name == "hisi_hpre-0")
        .unwrap();
    let device = Device::new(info, backend.clone());
    let mut q = hisi_hpre::open_queue(&device, policy(10_000)).unwrap();
    assert_eq!(q.queue().address_mode(), wd_core::AddressMode::StaticShare);
    let k = key(2048);
    let msg = k.message();
    let c = k.sw_public(&msg);
    assert_eq!(hisi_hpre::rsa(&mut q, &k.crt(), &c).unwrap(), msg);
    let parent_fd = kernel.queues()[0].fd;
    kernel.clear_trace();

    // SAFETY: the child only runs Rust code of this test and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(q);
            let after_drop = kernel.trace();
            let mut ok = after_drop
                == vec![Call::Close {
                    fd: parent_fd,
                    result: Ok(()),
                }];
            if !ok {
                eprintln!("child trace after dropping the parent's queue: {after_drop:?}");
            }
            let mut mine = hisi_hpre::open_queue(&device, policy(10_000)).unwrap();
            // Its own region: mapped (index 2) and read (GET_SS_DMA) in the child.
            ok &= kernel.trace().iter().any(|c| {
                matches!(
                    c,
                    Call::Mmap {
                        offset: 8192,
                        result: Ok(()),
                        ..
                    }
                )
            });
            let m2 = k.message();
            let c2 = k.sw_public(&m2);
            ok &= hisi_hpre::rsa(&mut mine, &k.crt(), &c2).unwrap() == m2;
            drop(mine);
            let v = kernel.violations();
            if !v.is_empty() {
                eprintln!("violations: {v:?}");
                ok = false;
            }
            ok
        }));
        let code = match code {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(_) => 2,
        };
        // SAFETY: leave without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child touched the parent's queue"
    );

    // The parent's queue is untouched and still works.
    assert!(kernel.trace().is_empty());
    assert_eq!(hisi_hpre::rsa(&mut q, &k.crt(), &c).unwrap(), msg);
    drop(q);
    assert!(kernel.queues().is_empty());
}
