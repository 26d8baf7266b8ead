//! The uacce backend, unmodified, with the unmodified HPRE driver, against the fake kernel
//! (wd_core::uacce::fake) over the fixture sysfs trees of tests/fixtures/uacce, its queues
//! backed by the device model: RSA end to end, every system call checked.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::uacce::{fixture, host, Host};
use common::{key, policy};
use hisi_model::uacce_fake::SideConfig;
use wd_core::backend::QueueRequest;
use wd_core::uacce::fake::{Call, FakeKernel, MemorySide, QueueState};
use wd_core::uacce::ioctl::{self, Abi};
use wd_core::wait::WaitPolicy;
use wd_core::{Backend, Error};

/// RSA of every form and the given sizes on `dev` of fixture `name`, checked against
/// libcrypto; returns the host for more checks.
fn rsa_on(name: &str, dev: &str, sizes: &[u32]) -> Host {
    let h = host(name, SideConfig::default(), None);
    let device = h.device(dev);
    let free = device.available_instances().unwrap();
    {
        let mut q = hisi_hpre::open_queue(&device, policy(10_000)).unwrap();
        assert_eq!(device.available_instances().unwrap(), free - 1);
        for &bits in sizes {
            let k = key(bits);
            let msg = k.message();
            let c = hisi_hpre::rsa(&mut q, &k.public(), &msg).unwrap();
            assert_eq!(c, k.sw_public(&msg), "{name}: {bits}-bit public");
            assert_eq!(hisi_hpre::rsa(&mut q, &k.private(), &c).unwrap(), msg);
            assert_eq!(hisi_hpre::rsa(&mut q, &k.crt(), &c).unwrap(), msg);
        }
    }
    assert_eq!(device.available_instances().unwrap(), free, "queue freed");
    let s = h.side.stats();
    assert_eq!(
        s.completed_ok,
        3 * sizes.len() as u64,
        "{name}: every operation ran on the device"
    );
    assert_eq!(s.completed_error, 0);
    assert!(h.kernel.violations().is_empty());
    assert_eq!(h.kernel.mappings(), 0, "both regions unmapped");
    assert!(h.kernel.queues().is_empty(), "descriptor closed");
    h
}

#[test]
fn kunpeng920_v2_rsa_end_to_end() {
    let h = rsa_on("kunpeng920", "hisi_hpre-1", &[1024, 2048, 4096]);
    assert_eq!(
        h.ioctls(),
        vec![
            ioctl::UACCE_CMD_QM_SET_QP_CTX,
            ioctl::UACCE_CMD_QM_SET_QP_INFO,
            ioctl::UACCE_CMD_START_Q,
            ioctl::UACCE_CMD_PUT_Q
        ]
    );
    let t = h.kernel.trace();
    assert!(matches!(
        t[0],
        Call::Open {
            flags,
            result: Ok(_),
            ..
        } if flags == libc::O_RDWR | libc::O_CLOEXEC
    ));
    assert!(matches!(
        t[1],
        Call::Mmap {
            len: 0x15000,
            offset: 0x1000,
            ..
        }
    ));
    assert!(matches!(
        t[2],
        Call::Mmap {
            len: 0x2000,
            offset: 0,
            ..
        }
    ));
    assert!(matches!(t.last(), Some(Call::Close { result: Ok(()), .. })));
}

#[test]
fn kunpeng930_v3_rsa_end_to_end() {
    rsa_on("kunpeng930-v3", "hisi_hpre-0", &[1024, 3072]);
}

#[test]
fn page_size_64k_host_rsa_end_to_end() {
    let h = rsa_on("pagesize-64k", "hisi_hpre-1", &[2048]);
    let t = h.kernel.trace();
    assert!(matches!(
        t[1],
        Call::Mmap {
            len: 0x30000,
            offset: 0x10000,
            result: Ok(()),
            ..
        }
    ));
    assert!(matches!(
        t[2],
        Call::Mmap {
            len: 0x10000,
            offset: 0,
            result: Ok(()),
            ..
        }
    ));
}

#[test]
fn old_kernel_without_set_qp_info_rsa_end_to_end() {
    let h = rsa_on("old-kernel", "hisi_hpre-0", &[2048]);
    assert!(h.kernel.trace().contains(&Call::Ioctl {
        fd: wd_core::uacce::fake::FIRST_FD,
        request: ioctl::UACCE_CMD_QM_SET_QP_INFO,
        result: Err(libc::EINVAL),
    }));
}

#[test]
fn openeuler_4_19_numbering_detected_and_rsa_end_to_end() {
    let h = rsa_on("openeuler-4.19", "hisi_hpre-0", &[2048]);
    let dev = h.device("hisi_hpre-0");
    assert_eq!(h.backend.abi_for(dev.info()).unwrap().abi, Abi::OpenEuler);
    assert_eq!(
        h.ioctls(),
        vec![
            ioctl::UACCE_CMD_QM_SET_QP_CTX,
            ioctl::OE_CMD_START,
            ioctl::OE_CMD_PUT_Q
        ]
    );
}

#[test]
fn many_requests_in_flight_and_interrupt_wait() {
    // Latency on the device so completions must be waited for: the wait is poll() on the
    // queue descriptor, answered by the model's completion event.
    let h = host(
        "kunpeng920",
        SideConfig {
            latency: Duration::from_millis(2),
            ..SideConfig::default()
        },
        None,
    );
    let device = h.device("hisi_hpre-3");
    let pol = WaitPolicy {
        spin: Duration::ZERO,
        ..policy(10_000)
    };
    let mut q = hisi_hpre::open_queue(&device, pol).unwrap();
    let k = key(1024);
    let msgs: Vec<Vec<u8>> = (0..24).map(|_| k.message()).collect();
    for (i, m) in msgs.iter().enumerate() {
        let mut job = hisi_hpre::RsaJob::new(q.driver(), &k.public(), m).unwrap();
        job.set_user_data(i as u64);
        q.send(job).map_err(|e| e.error).unwrap();
    }
    for _ in 0..msgs.len() {
        let job = q.recv_sync().unwrap();
        let i = job.user_data() as usize;
        assert_eq!(job.result().unwrap(), k.sw_public(&msgs[i]));
    }
    assert!(h.kernel.polls() > 0, "recv_sync blocked in poll()");
    assert!(h.kernel.violations().is_empty());
}

#[test]
fn queue_classes_are_latched_per_queue() {
    // ZIP compress (0) and decompress (1) queues on the Kunpeng 920 fixture: the kernel
    // latches each queue's qc_type at START_Q. (Plain-memory device side: the model's ZIP
    // engine is not needed to check the bring-up.)
    let side = Arc::new(MemorySide::default());
    let kernel = FakeKernel::from_fixture(fixture("kunpeng920"), side.clone()).unwrap();
    let b = kernel.backend(None);
    let zip = b
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.name == "hisi_zip-2")
        .unwrap();
    assert_eq!(zip.numa_node, 1);
    let c = b.open_queue(&zip, QueueRequest { qc_type: 0 }).unwrap();
    let d = b.open_queue(&zip, QueueRequest { qc_type: 1 }).unwrap();
    assert_eq!(c.info().sqe_size, 128);
    assert_eq!(c.dus().len(), 0x25000);
    assert_ne!(c.info().qid, d.info().qid);
    let latched: Vec<Option<u16>> = kernel.queues().iter().map(|q| q.latched_qc_type).collect();
    assert_eq!(latched, vec![Some(0), Some(1)]);
    let e = b.open_queue(&zip, QueueRequest { qc_type: 3 }).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn isolated_device_is_listed_but_never_opened() {
    let h = host("isolated", SideConfig::default(), None);
    let names: Vec<(String, bool, i32)> = h
        .backend
        .devices()
        .unwrap()
        .into_iter()
        .map(|d| (d.name, d.isolated, d.numa_node))
        .collect();
    assert_eq!(
        names,
        vec![
            ("hisi_hpre-1".to_string(), true, 0),
            ("hisi_hpre-5".to_string(), false, 0)
        ]
    );
    let e = hisi_hpre::open_queue(&h.device("hisi_hpre-1"), policy(1000)).unwrap_err();
    assert!(e.to_string().contains("isolated"), "{e}");
    assert!(h.kernel.trace().is_empty(), "refused before open()");
    let mut q = hisi_hpre::open_queue(&h.device("hisi_hpre-5"), policy(10_000)).unwrap();
    let k = key(1024);
    let m = k.message();
    assert_eq!(
        hisi_hpre::rsa(&mut q, &k.public(), &m).unwrap(),
        k.sw_public(&m)
    );
}

#[test]
fn host_without_devices() {
    let h = host("no-devices", SideConfig::default(), None);
    assert!(h.backend.devices().unwrap().is_empty());
    assert!(h.backend.scan().unwrap().is_empty());
}

#[test]
fn queues_run_out_then_free_again() {
    let h = host("old-kernel", SideConfig::default(), None);
    let device = h.device("hisi_hpre-0");
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(hisi_hpre::open_queue(&device, policy(1000)).unwrap());
    }
    let e = hisi_hpre::open_queue(&device, policy(1000)).unwrap_err();
    assert!(matches!(e, Error::NoFreeQueue(_)), "{e}");
    assert!(e.wants_fallback());
    held.pop();
    let mut q = hisi_hpre::open_queue(&device, policy(10_000)).unwrap();
    let k = key(1024);
    let m = k.message();
    assert_eq!(
        hisi_hpre::rsa(&mut q, &k.public(), &m).unwrap(),
        k.sw_public(&m)
    );
    let qids: std::collections::BTreeSet<u16> = h.kernel.queues().iter().map(|q| q.qid).collect();
    assert_eq!(qids.len(), 8, "distinct queue numbers");
}

#[test]
fn device_removed_under_a_queue() {
    let h = host("kunpeng920", SideConfig::default(), None);
    let device = h.device("hisi_hpre-1");
    let mut q = hisi_hpre::open_queue(&device, policy(300)).unwrap();
    let k = key(1024);
    let m = k.message();
    assert_eq!(
        hisi_hpre::rsa(&mut q, &k.public(), &m).unwrap(),
        k.sw_public(&m)
    );
    h.kernel.remove_device("hisi_hpre-1");
    assert!(h
        .kernel
        .queues()
        .iter()
        .all(|q| q.state == QueueState::Zombie));
    // The device no longer answers: the request is reported, not hung on.
    let e = hisi_hpre::rsa(&mut q, &k.public(), &m).unwrap_err();
    assert!(e.wants_fallback(), "{e}");
    drop(q);
    assert!(h
        .backend
        .devices()
        .unwrap()
        .iter()
        .all(|d| d.name != "hisi_hpre-1"));
    assert!(h.kernel.violations().is_empty());
}

#[test]
fn per_thread_queue_pool_over_uacce() {
    // The provider's way: a bounded pool, one queue per thread, more threads than queues.
    let h = host(
        "kunpeng930-v3",
        SideConfig {
            engines: 2,
            ..SideConfig::default()
        },
        None,
    );
    let device = h.device("hisi_hpre-0");
    let opener_dev = device.clone();
    let pool: Arc<wd_core::pool::QueuePool<hisi_hpre::Hpre>> =
        Arc::new(wd_core::pool::QueuePool::new(
            "hpre",
            3,
            Box::new(move || hisi_hpre::open_queue(&opener_dev, policy(10_000))),
        ));
    let k = key(1024);
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let m = k.message();
                    let c = pool.with(|q| hisi_hpre::rsa(q, &k.public(), &m));
                    match c {
                        Ok(c) => assert_eq!(c, k.sw_public(&m)),
                        Err(e) => assert!(e.wants_fallback(), "{e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(pool.open_queues() <= 3);
    assert!(
        h.kernel.queues().len() <= 3,
        "never more than the pool's bound"
    );
    assert!(h.side.stats().completed_ok > 0);
    assert!(h.kernel.violations().is_empty());
    drop(pool);
    assert!(h.kernel.queues().is_empty(), "every queue released");
    assert_eq!(device.available_instances().unwrap(), 32);
}
