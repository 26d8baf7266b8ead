//! The uacce backend against the fake kernel with a plain-memory device side: bring-up
//! order, the kernel's rules, errno mapping, kernel variants.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::fake::{
    write_kernel_file, Call, FakeKernel, FakeKernelConfig, FixtureDevice, MemorySide, QueueState,
};
use super::ioctl::*;
use super::sys::{IoctlArg, UacceSys};
use super::{Abi, UacceBackend, UacceQueue};
use crate::backend::{Backend, QueueBackend, QueueRequest};
use crate::error::Error;
use crate::region::Region;

struct Fx {
    _dir: tempfile::TempDir,
    kernel: Arc<FakeKernel>,
    side: Arc<MemorySide>,
}

fn fixture(config: FakeKernelConfig, devs: &[FixtureDevice]) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    write_kernel_file(dir.path(), &config).unwrap();
    std::fs::create_dir_all(dir.path().join("sys/class/uacce")).unwrap();
    for d in devs {
        d.write(dir.path(), &config).unwrap();
    }
    let side = Arc::new(MemorySide::default());
    let kernel = FakeKernel::from_fixture(dir.path(), side.clone()).unwrap();
    Fx {
        _dir: dir,
        kernel,
        side,
    }
}

fn hpre() -> Fx {
    fixture(
        FakeKernelConfig::default(),
        &[FixtureDevice::hpre("hisi_hpre-1")],
    )
}

fn open(fx: &Fx, qc_type: u16) -> crate::Result<Box<dyn QueueBackend>> {
    let b = fx.kernel.backend(None);
    let dev = b
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.name == "hisi_hpre-1")
        .expect("device listed");
    b.open_queue(&dev, QueueRequest { qc_type })
}

fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.unwrap_err().raw_os_error().unwrap()
}

#[test]
fn bring_up_and_teardown_follow_hw_spec_1_4() {
    let fx = hpre();
    let q = open(&fx, 1).unwrap();
    let t = fx.kernel.trace();
    let fd = match &t[0] {
        Call::Open {
            path,
            flags,
            result: Ok(fd),
        } => {
            assert_eq!(path, Path::new("/dev/hisi_hpre-1"));
            assert_eq!(*flags, libc::O_RDWR | libc::O_CLOEXEC);
            *fd
        }
        other => panic!("first call {other:?}"),
    };
    assert_eq!(
        &t[1..],
        &[
            Call::Mmap {
                fd,
                len: 0x15000,
                offset: 4096,
                result: Ok(())
            },
            Call::Mmap {
                fd,
                len: 0x2000,
                offset: 0,
                result: Ok(())
            },
            Call::Ioctl {
                fd,
                request: 0xC004_480A,
                result: Ok(0)
            },
            Call::Ioctl {
                fd,
                request: 0xC010_480B,
                result: Ok(0)
            },
            Call::Ioctl {
                fd,
                request: 0x5700,
                result: Ok(0)
            },
        ]
    );
    let info = q.info();
    assert_eq!(
        (info.qid, info.sqe_size, info.sq_depth, info.cq_depth),
        (0, 64, 1024, 1024)
    );
    assert_eq!(q.dus().len(), 0x15000);
    assert_eq!(q.mmio().len(), 0x2000);
    let mq = &fx.side.queues()[0];
    assert_eq!(
        *mq.started.lock().unwrap(),
        Some(1),
        "qc_type latched at START_Q"
    );
    assert_eq!(fx.kernel.queues()[0].latched_qc_type, Some(1));
    assert_eq!(fx.kernel.available("hisi_hpre-1"), Some(3));

    // The doorbell store reaches the device side through the mapping.
    q.mmio().write_u64(0x1000, 0xabcd);
    assert_eq!(*mq.doorbells.0.lock().unwrap(), vec![(0x1000, 0xabcd)]);
    // SVA: the device address is the virtual address.
    let mem = Region::anonymous(4096).unwrap();
    assert_eq!(q.map_dma(&mem).unwrap().0, mem.as_ptr() as u64);

    fx.kernel.clear_trace();
    q.release().unwrap();
    q.release().unwrap();
    drop(q);
    let t = fx.kernel.trace();
    assert_eq!(
        t,
        vec![
            Call::Ioctl {
                fd,
                request: 0x5701,
                result: Ok(0)
            },
            Call::Munmap {
                fd,
                index: 1,
                len: 0x15000
            },
            Call::Munmap {
                fd,
                index: 0,
                len: 0x2000
            },
            Call::Close { fd, result: Ok(()) },
        ],
        "PUT_Q once, munmap both, close"
    );
    assert!(mq.stopped.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(fx.kernel.available("hisi_hpre-1"), Some(4));
    assert_eq!(fx.kernel.mappings(), 0);
    assert!(fx.kernel.queues().is_empty());
}

#[test]
fn page_size_comes_from_the_seam() {
    let cfg = FakeKernelConfig {
        page_size: 65536,
        ..FakeKernelConfig::default()
    };
    let fx = fixture(cfg, &[FixtureDevice::hpre("hisi_hpre-1")]);
    let q = open(&fx, 0).unwrap();
    let t = fx.kernel.trace();
    assert!(matches!(
        t[1],
        Call::Mmap {
            len: 0x30000,
            offset: 65536,
            result: Ok(()),
            ..
        }
    ));
    assert!(matches!(
        t[2],
        Call::Mmap {
            len: 65536,
            offset: 0,
            result: Ok(()),
            ..
        }
    ));
    assert_eq!(q.dus().len(), 0x30000);
}

#[test]
fn old_kernel_without_set_qp_info_falls_back_to_depth_1024() {
    let cfg = FakeKernelConfig {
        set_qp_info: false,
        ..FakeKernelConfig::default()
    };
    let fx = fixture(cfg, &[FixtureDevice::hpre("hisi_hpre-1")]);
    let q = open(&fx, 0).unwrap();
    let info = q.info();
    assert_eq!(
        (info.sqe_size, info.sq_depth, info.cq_depth),
        (64, 1024, 1024)
    );
    let t = fx.kernel.trace();
    assert!(t.contains(&Call::Ioctl {
        fd: super::fake::FIRST_FD,
        request: UACCE_CMD_QM_SET_QP_INFO,
        result: Err(libc::EINVAL)
    }));
    assert!(matches!(
        t.last(),
        Some(Call::Ioctl {
            request: 0x5700,
            result: Ok(0),
            ..
        })
    ));
}

#[test]
fn no_free_queue_is_typed_and_checked_before_open() {
    let mut d = FixtureDevice::hpre("hisi_hpre-1");
    d.instances = 2;
    let fx = fixture(FakeKernelConfig::default(), &[d]);
    let b = fx.kernel.backend(None);
    let dev = b.devices().unwrap().remove(0);
    let _a = open(&fx, 0).unwrap();
    let _b = open(&fx, 0).unwrap();
    assert_eq!(
        b.available_instances(&dev).unwrap(),
        0,
        "read live through the seam"
    );
    let opens = |k: &FakeKernel| {
        k.trace()
            .iter()
            .filter(|c| matches!(c, Call::Open { .. }))
            .count()
    };
    let before = opens(&fx.kernel);
    let e = open(&fx, 0).unwrap_err();
    assert!(matches!(e, Error::NoFreeQueue(_)), "{e}");
    assert_eq!(opens(&fx.kernel), before, "available_instances 0: no open");
    // The kernel's own EBUSY (a race with another process) maps the same way.
    let e = UacceQueue::open(
        fx.kernel.clone(),
        &dev,
        Abi::Mainline,
        QueueRequest { qc_type: 0 },
        None,
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoFreeQueue(_)), "{e}");
    assert_eq!(e.errno(), libc::EBUSY);
}

#[test]
fn fake_kernel_enforces_uacce_rules() {
    let fx = hpre();
    let k = &fx.kernel;
    let path = Path::new("/dev/hisi_hpre-1");
    assert_eq!(
        errno_of(k.open(Path::new("/dev/hisi_zip-9"), libc::O_RDWR)),
        libc::ENOENT
    );
    let fd = k.open(path, libc::O_RDWR | libc::O_CLOEXEC).unwrap();
    // Region index ≥ 2, unaligned offset, wrong DUS length, MMIO too long.
    assert_eq!(errno_of(k.mmap(fd, 4096, 2 * 4096)), libc::EINVAL);
    assert_eq!(errno_of(k.mmap(fd, 0x15000, 100)), libc::EINVAL);
    assert_eq!(errno_of(k.mmap(fd, 0x14000, 4096)), libc::EINVAL);
    assert_eq!(errno_of(k.mmap(fd, 0x3000, 0)), libc::EINVAL);
    assert_eq!(errno_of(k.mmap(fd + 99, 0x2000, 0)), libc::EBADF);
    // A shorter MMIO mapping is allowed; a second one of the same region is EEXIST until
    // the first is unmapped.
    let m = k.mmap(fd, 0x1000, 0).unwrap();
    assert_eq!(errno_of(k.mmap(fd, 0x2000, 0)), libc::EEXIST);
    // SAFETY: the mapping was just made by this fake and is not used.
    unsafe { k.munmap(m.addr, m.len).unwrap() };
    let m = k.mmap(fd, 0x2000, 0).unwrap();
    let d = k.mmap(fd, 0x15000, 4096).unwrap();
    assert_eq!(errno_of(k.mmap(fd, 0x15000, 4096)), libc::EEXIST);
    // qc_type above QM_MAX_QC_TYPE; a wrong argument size; unknown request.
    let mut ctx = HisiQpCtx { id: 0, qc_type: 3 }.to_bytes();
    assert_eq!(
        errno_of(k.ioctl(fd, UACCE_CMD_QM_SET_QP_CTX, IoctlArg::Buf(&mut ctx))),
        libc::EINVAL
    );
    assert_eq!(
        errno_of(k.ioctl(fd, UACCE_CMD_QM_SET_QP_CTX, IoctlArg::None)),
        libc::EFAULT
    );
    assert_eq!(errno_of(k.ioctl(fd, 0x5742, IoctlArg::None)), libc::EINVAL);
    // START_Q without SET_QP_CTX latches the default 0, as hisi_qm does; only from INIT.
    k.ioctl(fd, UACCE_CMD_START_Q, IoctlArg::None).unwrap();
    assert_eq!(
        errno_of(k.ioctl(fd, UACCE_CMD_START_Q, IoctlArg::None)),
        libc::EINVAL
    );
    let mut ctx = HisiQpCtx { id: 0, qc_type: 1 }.to_bytes();
    k.ioctl(fd, UACCE_CMD_QM_SET_QP_CTX, IoctlArg::Buf(&mut ctx))
        .unwrap();
    assert_eq!(
        k.queues()[0].latched_qc_type,
        Some(0),
        "SET_QP_CTX after START_Q changes nothing"
    );
    // PUT_Q: zombie; later ioctl and mmap give ENXIO; the instance is free again.
    k.ioctl(fd, UACCE_CMD_PUT_Q, IoctlArg::None).unwrap();
    assert_eq!(k.queues()[0].state, QueueState::Zombie);
    assert_eq!(k.available("hisi_hpre-1"), Some(4));
    assert_eq!(
        errno_of(k.ioctl(fd, UACCE_CMD_START_Q, IoctlArg::None)),
        libc::ENXIO
    );
    // SAFETY: mappings made above, unused.
    unsafe { k.munmap(d.addr, d.len).unwrap() };
    assert_eq!(errno_of(k.mmap(fd, 0x15000, 4096)), libc::ENXIO);
    assert!(!k.poll(fd, Duration::from_millis(1)).unwrap(), "no events");
    // Partial munmap is refused by the fake (a bug in the caller).
    // SAFETY: the fake only looks the range up; it refuses it.
    assert_eq!(errno_of(unsafe { k.munmap(m.addr, 0x1000) }), libc::EINVAL);
    // SAFETY: as above.
    unsafe { k.munmap(m.addr, m.len).unwrap() };
    k.close(fd).unwrap();
    assert_eq!(errno_of(k.close(fd)), libc::EBADF);
    // Read-only descriptors cannot map.
    let ro = k.open(path, libc::O_RDONLY).unwrap();
    assert_eq!(errno_of(k.mmap(ro, 0x2000, 0)), libc::EACCES);
    k.close(ro).unwrap();
    assert!(k.violations().is_empty());
}

#[test]
fn instances_run_out_with_ebusy() {
    let mut d = FixtureDevice::hpre("hisi_hpre-1");
    d.instances = 1;
    let fx = fixture(FakeKernelConfig::default(), &[d]);
    let k = &fx.kernel;
    let path = Path::new("/dev/hisi_hpre-1");
    let a = k.open(path, libc::O_RDWR).unwrap();
    assert_eq!(errno_of(k.open(path, libc::O_RDWR)), libc::EBUSY);
    k.close(a).unwrap();
    let b = k.open(path, libc::O_RDWR).unwrap();
    k.close(b).unwrap();
}

#[test]
fn failure_mid_bring_up_undoes_everything() {
    // A fixture kernel with the legacy numbering, the backend forced to mainline: START_Q
    // (0x5700 = SHARE_SVAS there) fails, and the queue is unmapped and closed.
    let cfg = FakeKernelConfig {
        abi: Abi::OpenEuler,
        ..FakeKernelConfig::default()
    };
    let fx = fixture(cfg, &[FixtureDevice::hpre("hisi_hpre-1")]);
    let b = fx.kernel.backend(Some(Abi::Mainline));
    let dev = b.devices().unwrap().remove(0);
    let e = b.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap_err();
    assert!(e.to_string().contains("UACCE_CMD_START_Q"), "{e}");
    let t = fx.kernel.trace();
    let n = t.len();
    assert!(matches!(t[n - 3], Call::Munmap { index: 0, .. }), "{t:?}");
    assert!(matches!(t[n - 2], Call::Munmap { index: 1, .. }), "{t:?}");
    assert!(
        matches!(t[n - 1], Call::Close { result: Ok(()), .. }),
        "{t:?}"
    );
    assert!(!t.iter().any(|c| matches!(
        c,
        Call::Ioctl {
            request: 0x5701,
            ..
        }
    )));
    assert_eq!(fx.kernel.available("hisi_hpre-1"), Some(4));
}

#[test]
fn openeuler_legacy_kernel_is_detected_and_spoken() {
    let cfg = FakeKernelConfig {
        abi: Abi::OpenEuler,
        osrelease: "4.19.90-2003.4.0.0036.oe1.aarch64".into(),
        ..FakeKernelConfig::default()
    };
    let mut d = FixtureDevice::hpre("hisi_hpre-1");
    d.flags = OE_DEV_SVA;
    d.extra.push(("node_id".into(), "0".into()));
    let fx = fixture(cfg, &[d]);
    let b = fx.kernel.backend(None);
    let dev = b.devices().unwrap().remove(0);
    let choice = b.abi_for(&dev).unwrap();
    assert_eq!(choice.abi, Abi::OpenEuler);
    assert!(choice.reason.contains("4.19"), "{}", choice.reason);
    let q = b.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap();
    drop(q);
    let reqs: Vec<u32> = fx
        .kernel
        .trace()
        .iter()
        .filter_map(|c| match c {
            Call::Ioctl {
                request,
                result: Ok(_),
                ..
            } => Some(*request),
            _ => None,
        })
        .collect();
    assert_eq!(
        reqs,
        vec![
            UACCE_CMD_QM_SET_QP_CTX,
            UACCE_CMD_QM_SET_QP_INFO,
            OE_CMD_START,
            OE_CMD_PUT_Q
        ]
    );
}

#[test]
fn ambiguous_kernel_is_refused_not_guessed() {
    let cfg = FakeKernelConfig {
        osrelease: "5.10.0-60.18.0.50.oe2203.aarch64".into(),
        ..FakeKernelConfig::default()
    };
    let mut d = FixtureDevice::hpre("hisi_hpre-1");
    d.extra.push(("node_id".into(), "1".into()));
    let fx = fixture(cfg, &[d]);
    let b = fx.kernel.backend(None);
    let dev = b.devices().unwrap().remove(0);
    let e = b.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("WD_UACCE_ABI=mainline"), "{msg}");
    assert!(msg.contains("node_id"), "{msg}");
    assert!(fx.kernel.trace().is_empty(), "no system call on the node");
    let scan = b.scan().unwrap();
    assert!(scan[0].refused.as_deref().unwrap().contains("WD_UACCE_ABI"));
    // Configured: opens with the mainline numbering (what openEuler 5.10+ uses).
    let b = fx.kernel.backend(Some(Abi::Mainline));
    assert_eq!(b.abi_for(&dev).unwrap().reason, "set by WD_UACCE_ABI");
    b.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap();
}

#[test]
fn unknown_api_noiommu_non_sva_and_isolated_are_refused_with_reasons() {
    let mut unknown = FixtureDevice::hpre("hisi_hpre-2");
    unknown.api = "acme_qm_v2".into();
    let mut noiommu = FixtureDevice::hpre("hisi_hpre-3");
    noiommu.api = "hisi_qm_v2_noiommu".into();
    let mut nosva = FixtureDevice::hpre("hisi_hpre-4");
    nosva.flags = 0;
    let mut isolated = FixtureDevice::hpre("hisi_hpre-5");
    isolated.isolate = Some(1);
    let fx = fixture(
        FakeKernelConfig::default(),
        &[unknown, noiommu, nosva, isolated],
    );
    let b = fx.kernel.backend(None);
    let names: Vec<String> = b.devices().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        vec!["hisi_hpre-3", "hisi_hpre-4", "hisi_hpre-5"],
        "unknown apis left out (a no-SVA api is one wd speaks)"
    );
    let scan = b.scan().unwrap();
    let why = |n: &str| {
        scan.iter()
            .find(|s| s.info.name == n)
            .unwrap()
            .refused
            .clone()
            .unwrap()
    };
    assert!(why("hisi_hpre-2").contains("not a HiSilicon QM interface"));
    // The _noiommu suffix on a 5.7+ kernel: the numbering cannot be detected.
    assert!(why("hisi_hpre-3").contains("WD_UACCE_ABI"));
    // Configured, the suffix with SVA flags contradicts itself.
    let configured = fx.kernel.backend(Some(Abi::Mainline)).scan().unwrap();
    let c3 = configured
        .iter()
        .find(|s| s.info.name == "hisi_hpre-3")
        .unwrap();
    assert!(
        c3.refused.as_deref().unwrap().contains("contradictory"),
        "{c3:?}"
    );

    assert!(why("hisi_hpre-4").contains("lack SVA"));
    assert!(why("hisi_hpre-5").contains("isolated"));
    for d in b.devices().unwrap() {
        let e = b.open_queue(&d, QueueRequest { qc_type: 0 }).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
    assert!(fx.kernel.trace().is_empty());
}

#[test]
fn device_removal_is_device_gone() {
    let fx = hpre();
    let q = open(&fx, 0).unwrap();
    fx.kernel.remove_device("hisi_hpre-1");
    let fd = fx.kernel.queues()[0].fd;
    assert_eq!(
        errno_of(fx.kernel.ioctl(fd, UACCE_CMD_START_Q, IoctlArg::None)),
        libc::ENXIO
    );
    // PUT_Q on a queue the kernel already took down is not an error.
    q.release().unwrap();
    assert!(matches!(
        q.wait(Duration::from_millis(1)),
        Err(Error::DeviceGone(_))
    ));
    drop(q);
    let b = fx.kernel.backend(None);
    assert!(b.devices().unwrap().is_empty());
    let e = super::queue::errno_error("d", "ioctl", std::io::Error::from_raw_os_error(libc::ENXIO));
    assert!(matches!(e, Error::DeviceGone(_)));
    assert_eq!(e.errno(), libc::ENXIO);
}

#[test]
fn abandon_closes_the_descriptor_only() {
    let fx = hpre();
    let q = open(&fx, 0).unwrap();
    fx.kernel.clear_trace();
    q.abandon();
    let t = fx.kernel.trace();
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(matches!(t[0], Call::Close { result: Ok(()), .. }));
    assert!(matches!(q.wait(Duration::ZERO), Err(Error::DeviceGone(_))));
    assert!(q.release().is_ok());
    assert!(!fx
        .kernel
        .trace()
        .iter()
        .any(|c| matches!(c, Call::Ioctl { .. })));
}

#[test]
fn wait_polls_the_queue_descriptor() {
    let fx = hpre();
    let q = open(&fx, 0).unwrap();
    assert!(!q.wait(Duration::from_millis(1)).unwrap());
    assert_eq!(fx.kernel.polls(), 1);
}

#[test]
fn backend_over_a_missing_root_has_no_devices() {
    let b = UacceBackend::new("/nonexistent/wd/sys", "/nonexistent/wd/dev");
    assert!(b.devices().unwrap().is_empty());
    assert!(b.scan().unwrap().is_empty());
}

/// A no-SVA HPRE device of uadk's header kernels (flags 0, `_noiommu` api).
fn no_sva(config: FakeKernelConfig) -> Fx {
    let mut d = FixtureDevice::hpre("hisi_hpre-1");
    d.api = "hisi_qm_v2_noiommu".into();
    d.flags = if config.abi == Abi::OpenEuler { 1 } else { 0 };
    fixture(config, &[d])
}

#[test]
fn no_sva_bring_up_maps_the_static_share_region_and_reads_its_slices() {
    let fx = no_sva(FakeKernelConfig {
        ss_slice: 1 << 20,
        ..FakeKernelConfig::default()
    });
    let b = fx
        .kernel
        .backend(Some(Abi::Mainline))
        .with_static_share_size(3 << 20);
    let dev = b.devices().unwrap().remove(0);
    let q = b.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap();
    assert_eq!(q.address_mode(), crate::AddressMode::StaticShare);
    let t = fx.kernel.trace();
    let fd = fx.kernel.queues()[0].fd;
    // open, DUS, MMIO, SS (index 2), three GET_SS_DMA answers, SET_QP_CTX, SET_QP_INFO, START.
    assert_eq!(
        t[3],
        Call::Mmap {
            fd,
            len: 3 << 20,
            offset: 2 * 4096,
            result: Ok(())
        }
    );
    let gets: Vec<_> = t[4..7]
        .iter()
        .map(|c| match c {
            Call::Ioctl {
                request, result, ..
            } => (*request, *result),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        gets,
        vec![
            (UADK_CMD_GET_SS_DMA, Ok(2)),
            (UADK_CMD_GET_SS_DMA, Ok(1)),
            (UADK_CMD_GET_SS_DMA, Ok(0))
        ]
    );
    let pieces = fx.side.queues()[0]
        .static_share
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(pieces.len(), 3);
    // Pool memory comes from the region, at the kernel's device addresses.
    let (mem, iova) = q.alloc_dma(1 << 20).unwrap();
    assert_eq!(iova.0, pieces[0].dma);
    let (_, iova2) = q.alloc_dma(4096).unwrap();
    assert_eq!(iova2.0, pieces[1].dma, "the first slice is full");
    assert_eq!(
        q.map_dma(&mem.slice(64, 64).unwrap()).unwrap().0,
        pieces[0].dma + 64
    );
    let e = q.map_dma(&Region::anonymous(4096).unwrap()).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("static-share"), "{e}");
    q.free_dma(&mem, iova).unwrap();
    // The kernel's rules: past the last slice EINVAL.
    let mut arg = 3u64.to_ne_bytes();
    assert_eq!(
        errno_of(
            fx.kernel
                .ioctl(fd, UADK_CMD_GET_SS_DMA, IoctlArg::Buf(&mut arg))
        ),
        libc::EINVAL
    );
    // A second SS mapping on the same queue: EEXIST.
    assert_eq!(
        errno_of(fx.kernel.mmap(fd, 1 << 20, 2 * 4096)),
        libc::EEXIST
    );
    q.release().unwrap();
}

#[test]
fn get_ss_dma_is_refused_where_the_kernel_refuses_it() {
    // SVA device: region index 2 does not exist, GET_SS_DMA is EINVAL.
    let fx = hpre();
    let q = open(&fx, 0).unwrap();
    let fd = fx.kernel.queues()[0].fd;
    assert_eq!(
        errno_of(fx.kernel.mmap(fd, 1 << 20, 2 * 4096)),
        libc::EINVAL
    );
    let mut arg = 0u64.to_ne_bytes();
    assert_eq!(
        errno_of(
            fx.kernel
                .ioctl(fd, UADK_CMD_GET_SS_DMA, IoctlArg::Buf(&mut arg))
        ),
        libc::EINVAL
    );
    q.release().unwrap();
    // No-SVA device, region not mapped yet: EINVAL; a size that is not whole granules
    // EINVAL; beyond ss_max ENOMEM, which the backend reports as no free queue.
    let fx = no_sva(FakeKernelConfig::default());
    let raw = fx
        .kernel
        .open(Path::new("/dev/hisi_hpre-1"), libc::O_RDWR)
        .unwrap();
    assert_eq!(
        errno_of(
            fx.kernel
                .ioctl(raw, UADK_CMD_GET_SS_DMA, IoctlArg::Buf(&mut arg))
        ),
        libc::EINVAL
    );
    assert_eq!(errno_of(fx.kernel.mmap(raw, 4096, 2 * 4096)), libc::EINVAL);
    fx.kernel.close(raw).unwrap();
    let b = fx
        .kernel
        .backend(Some(Abi::Mainline))
        .with_static_share_size(1 << 30);
    let dev = b.devices().unwrap().remove(0);
    let e = b.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap_err();
    assert!(matches!(e, Error::NoFreeQueue(_)), "{e}");
    assert!(e.to_string().contains("WD_SS_SIZE"), "{e}");
    assert!(fx.kernel.queues().is_empty(), "the failed open was undone");
}

#[test]
fn legacy_openeuler_no_sva_answers_one_address() {
    let fx = no_sva(FakeKernelConfig {
        osrelease: "4.19.90".into(),
        abi: Abi::OpenEuler,
        set_qp_info: false,
        ..FakeKernelConfig::default()
    });
    let b = fx.kernel.backend(None);
    let dev = b.devices().unwrap().remove(0);
    let q = b.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap();
    let reqs: Vec<u32> = fx
        .kernel
        .trace()
        .iter()
        .filter_map(|c| match c {
            Call::Ioctl {
                request,
                result: Ok(_),
                ..
            } => Some(*request),
            _ => None,
        })
        .collect();
    assert_eq!(
        reqs,
        vec![OE_CMD_GET_SS_DMA, UACCE_CMD_QM_SET_QP_CTX, OE_CMD_START]
    );
    let pieces = fx.side.queues()[0]
        .static_share
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(pieces.len(), 1, "one contiguous region");
    let (_, iova) = q.alloc_dma(4 << 20).unwrap();
    assert_eq!(iova.0, pieces[0].dma);
    q.release().unwrap();
}
