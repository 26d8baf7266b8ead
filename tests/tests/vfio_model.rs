//! Queues over VFIO, tested to the system call: wd-core's VFIO backend opens a VF through
//! the fake vfio kernel (container → group → device, BAR2 mmap, MAP_DMA or, NOIOMMU, the
//! fake pagemap), `hisi_qm::vfio_bringup` brings it up through the mailbox (queue range,
//! SQC/CQC tables, per-queue contexts) and the unchanged HPRE driver runs RSA on it, the
//! model's VF reading every context and ring through the function's IOMMU. Mailbox
//! failures come back as clear errors.

mod common;

use std::sync::Arc;

use common::{key, policy};
use hisi_model::vfio_fake::{fake_host, FakeVfioHost};
use hisi_model::ApiVersion;
use wd_core::backend::QueueRequest;
use wd_core::vfio::backend::{Candidate, PciFunction, VfioBackend};
use wd_core::vfio::ioctl::{VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA};
use wd_core::{AddressMode, Backend, Device, Error, Queue};

const HPRE_VF: &str = "0000:79:00.1";

struct Vf {
    fake: FakeVfioHost,
    backend: Arc<VfioBackend>,
}

fn hpre_vf(api: ApiVersion, noiommu: bool, queues: u16) -> Vf {
    hisi_qm::vfio_bringup::plug();
    let fake = fake_host(HPRE_VF, 9, "hisi_hpre", api, noiommu, (32, queues)).unwrap();
    let candidate = Candidate {
        function: PciFunction {
            bdf: HPRE_VF.into(),
            vendor: 0x19e5,
            device: 0xa259,
            revision: if api == ApiVersion::V3 { 0x30 } else { 0x21 },
            vf: true,
        },
        mode: Ok(if noiommu {
            AddressMode::NoIommu
        } else {
            AddressMode::Vfio
        }),
        group_node: Some(fake.kernel.group_path.clone()),
        host: None,
    };
    let backend = Arc::new(VfioBackend::new(fake.host.clone(), vec![candidate]));
    Vf { fake, backend }
}

impl Vf {
    fn device(&self) -> Device {
        let info = self.backend.devices().unwrap().pop().expect("one device");
        Device::new(info, self.backend.clone())
    }
}

fn rsa_sign_end_to_end(api: ApiVersion, noiommu: bool) {
    let vf = hpre_vf(api, noiommu, 4);
    let dev = vf.device();
    assert_eq!(dev.info().driver(), "hisi_hpre");
    assert_eq!(dev.info().api, api.as_str());
    assert_eq!(dev.available_instances().unwrap(), 4, "the VFT's queues");
    let k = key(2048);
    {
        let mut q = hisi_hpre::open_queue(&dev, policy(10_000)).unwrap();
        let mode = if noiommu {
            AddressMode::NoIommu
        } else {
            AddressMode::Vfio
        };
        assert_eq!(q.queue().address_mode(), mode);
        assert_eq!(dev.available_instances().unwrap(), 3);
        for _ in 0..3 {
            let msg = k.message();
            let sig = hisi_hpre::rsa(&mut q, &k.crt(), &msg).unwrap();
            assert_eq!(sig, k.sw_private(&msg), "CRT sign over {mode}");
            let back = hisi_hpre::rsa(&mut q, &k.public(), &sig).unwrap();
            assert_eq!(back, msg, "verify over {mode}");
            assert_eq!(
                hisi_hpre::rsa(&mut q, &k.private(), &sig).unwrap(),
                k.sw_private(&sig)
            );
        }
        let s = vf.fake.model.stats();
        assert!(s.completed_ok >= 9 && s.completed_error == 0, "{s:?}");
        assert_eq!(s.address_faults, 0, "{s:?}");
        assert_eq!(vf.fake.model.running_queues(), 1);
        let mb = vf.fake.model.mailbox_stats();
        // VFT read, SQC_BT, CQC_BT, SQC, CQC.
        assert_eq!((mb.commands, mb.failed, mb.started), (5, 0, 1), "{mb:?}");
    }
    // Released: stopped on the device, ring out of the IOMMU, queue free again.
    assert_eq!(vf.fake.model.running_queues(), 0);
    assert_eq!(dev.available_instances().unwrap(), 4);
    let trace = vf.fake.kernel.trace();
    let maps = trace.iter().filter(|t| t.0 == VFIO_IOMMU_MAP_DMA).count();
    if noiommu {
        // No MAP_DMA on a NOIOMMU container: physical addresses of pinned memory.
        assert_eq!(maps, 0, "{trace:?}");
    } else {
        // Tables, staging buffer, ring, DMA pool chunks: all through MAP_DMA; the ring
        // (and the driver's pool) unmapped at release.
        assert!(maps >= 5, "{trace:?}");
        assert!(trace.iter().any(|t| t.0 == VFIO_IOMMU_UNMAP_DMA));
    }
}

#[test]
fn rsa_sign_over_vfio_type1_v2() {
    rsa_sign_end_to_end(ApiVersion::V2, false);
}

#[test]
fn rsa_sign_over_vfio_type1_v3() {
    rsa_sign_end_to_end(ApiVersion::V3, false);
}

#[test]
fn rsa_sign_over_vfio_noiommu() {
    rsa_sign_end_to_end(ApiVersion::V2, true);
}

#[test]
fn every_queue_of_the_function_then_none() {
    let vf = hpre_vf(ApiVersion::V2, false, 2);
    let dev = vf.device();
    let k = key(1024);
    let mut a = hisi_hpre::open_queue(&dev, policy(10_000)).unwrap();
    let mut b = hisi_hpre::open_queue(&dev, policy(10_000)).unwrap();
    assert_ne!(a.queue().info().qid, b.queue().info().qid);
    let e = Queue::request(&dev, QueueRequest { qc_type: 0 }).unwrap_err();
    assert!(matches!(e, Error::NoFreeQueue(_)), "{e}");
    let msg = k.message();
    let s1 = hisi_hpre::rsa(&mut a, &k.crt(), &msg).unwrap();
    let s2 = hisi_hpre::rsa(&mut b, &k.crt(), &msg).unwrap();
    assert_eq!(s1, s2);
    assert_eq!(vf.fake.model.running_queues(), 2);
}

#[test]
fn a_stuck_mailbox_is_a_timeout_error_not_a_hang() {
    let vf = hpre_vf(ApiVersion::V2, false, 4);
    vf.fake.model.set_mailbox_stuck(true);
    let dev = vf.device();
    let e = Queue::request(&dev, QueueRequest { qc_type: 0 }).unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, Error::Device(_)), "{e:?}");
    assert!(m.contains("mailbox") && m.contains("timed out"), "{m}");
    // Nothing stays open on the fake kernel after the failed bring-up.
    assert_eq!(vf.fake.kernel.open_fds(), 0);
    assert!(vf.fake.kernel.dma_maps().is_empty());
}

#[test]
fn a_context_the_device_refuses_is_a_clear_error() {
    let vf = hpre_vf(ApiVersion::V2, false, 4);
    let dev = vf.device();
    // qc_type 1 is ECC on HPRE: the QM accepts it; 2 is past what the driver programs.
    let e = Queue::request(&dev, QueueRequest { qc_type: 2 }).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    // A ZIP-shaped queue on an HPRE function: the device refuses the SQE size.
    let zip_on_hpre = fake_host(
        "0000:79:00.2",
        10,
        "hisi_zip",
        ApiVersion::V2,
        false,
        (0, 2),
    )
    .unwrap();
    hisi_qm::vfio_bringup::plug();
    let candidate = Candidate {
        function: PciFunction {
            bdf: "0000:79:00.2".into(),
            vendor: 0x19e5,
            device: 0xa259,
            revision: 0x21,
            vf: true,
        },
        mode: Ok(AddressMode::Vfio),
        group_node: Some(zip_on_hpre.kernel.group_path.clone()),
        host: None,
    };
    let backend = Arc::new(VfioBackend::new(zip_on_hpre.host.clone(), vec![candidate]));
    let info = backend.devices().unwrap().pop().unwrap();
    let dev = Device::new(info, backend.clone());
    let e = Queue::request(&dev, QueueRequest { qc_type: 0 }).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("CQC") && m.contains("failed: status 0x1"), "{m}");
    let mb = zip_on_hpre.model.mailbox_stats();
    assert_eq!((mb.failed, mb.started), (1, 0), "{mb:?}");
    // The queue slot is free again and the ring left the IOMMU.
    assert_eq!(dev.available_instances().unwrap(), 2);
    assert_eq!(zip_on_hpre.model.running_queues(), 0);
}

#[test]
fn a_physical_function_is_refused_with_the_reason() {
    hisi_qm::vfio_bringup::plug();
    let fake = fake_host(
        "0000:79:00.0",
        11,
        "hisi_hpre",
        ApiVersion::V2,
        false,
        (0, 4),
    )
    .unwrap();
    let candidate = Candidate {
        function: PciFunction {
            bdf: "0000:79:00.0".into(),
            vendor: 0x19e5,
            device: 0xa258,
            revision: 0x21,
            vf: false,
        },
        mode: Ok(AddressMode::Vfio),
        group_node: Some(fake.kernel.group_path.clone()),
        host: None,
    };
    let backend = Arc::new(VfioBackend::new(fake.host.clone(), vec![candidate]));
    assert!(backend.devices().unwrap().is_empty(), "not offered");
    let rejected = backend.rejected();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].1.contains("physical function"), "{rejected:?}");
    assert!(fake.kernel.trace().is_empty(), "never opened");
}
