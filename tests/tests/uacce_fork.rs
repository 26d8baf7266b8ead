//! Fork on the uacce backend, with SVA (Kunpeng 920 fixture) and without (openEuler 5.10
//! no-SVA fixture, static-share region): a child never touches its parent's queue. Its
//! inherited copy of the descriptor is closed, nothing else: no PUT_Q, no munmap, no access
//! to the mappings (uacce's VMAs, the static-share one included, are VM_DONTCOPY; the fake
//! kernel's queue and region memory is MADV_DONTFORK, so a touch would kill the child). The
//! child then opens a queue of its own (and, without SVA, a region of its own).
//! (Its own test binary, one test: forking a process full of test threads is not sound.)

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{key, policy};
use hisi_model::uacce_fake::ModelSide;
use wd_core::uacce::fake::{Call, FakeKernel};
use wd_core::uacce::Abi;
use wd_core::{AddressMode, Backend, Device};
use wd_tests::child::run_in_child;

struct Case {
    fixture: &'static str,
    abi: Option<Abi>,
    device: &'static str,
    mode: AddressMode,
}

#[test]
fn child_closes_the_inherited_descriptor_only_and_opens_its_own() {
    for case in [
        Case {
            fixture: "kunpeng920",
            abi: None,
            device: "hisi_hpre-1",
            mode: AddressMode::Sva,
        },
        Case {
            fixture: "openeuler-nosva",
            abi: Some(Abi::Mainline),
            device: "hisi_hpre-0",
            mode: AddressMode::StaticShare,
        },
    ] {
        check(&case);
    }
}

fn check(case: &Case) {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/uacce")
        .join(case.fixture);
    let side = Arc::new(ModelSide::default());
    let kernel = FakeKernel::from_fixture(fixture, side.clone()).unwrap();
    let backend = Arc::new(kernel.backend(case.abi));
    let info = backend
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.name == case.device)
        .unwrap();
    let device = Device::new(info, backend.clone());
    let mut q = hisi_hpre::open_queue(&device, policy(10_000)).unwrap();
    assert_eq!(q.queue().address_mode(), case.mode, "{}", case.fixture);
    let k = key(2048);
    let msg = k.message();
    let c = k.sw_public(&msg);
    assert_eq!(hisi_hpre::rsa(&mut q, &k.crt(), &c).unwrap(), msg);
    let parent_fd = kernel.queues()[0].fd;
    kernel.clear_trace();

    // The child drops its copy of the queue; the parent keeps its own.
    let mut parents = Some(q);
    let child = run_in_child(|| {
        drop(parents.take());
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
        if case.mode == AddressMode::StaticShare {
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
        }
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
    });
    assert_eq!(
        child,
        Ok(()),
        "{}: child touched the parent's queue",
        case.fixture
    );

    // The parent's queue is untouched and still works.
    let mut q = parents.expect("the parent's queue stays in the parent");
    assert!(kernel.trace().is_empty());
    assert_eq!(hisi_hpre::rsa(&mut q, &k.crt(), &c).unwrap(), msg);
    drop(q);
    assert!(kernel.queues().is_empty());
}
