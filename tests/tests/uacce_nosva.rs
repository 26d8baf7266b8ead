//! No-SVA uacce queues (openEuler `_noiommu` apis) end to end: the unmodified uacce
//! backend and drivers on the fake kernel over the no-SVA fixtures, the model's device
//! reaching only the queue's static-share region at the "physical" addresses the kernel
//! gave it. Both numberings: uadk's header (openEuler 5.10+, GET_SS_DMA slice by slice) and
//! the legacy openEuler 4.19 one (one address for the whole region).

mod common;

use std::sync::Arc;

use common::uacce::{host, run, zip_sqe};
use common::{key, policy};
use hisi_model::layout::zip::*;
use hisi_model::uacce_fake::{ModelSide, SideConfig};
use hisi_qm::QmRing;
use wd_core::backend::QueueRequest;
use wd_core::uacce::fake::{Call, FakeKernel, SS_DMA_BASE};
use wd_core::uacce::ioctl::{self, Abi};
use wd_core::{AddressMode, Error, Queue, Region};

/// The two no-SVA kernels: fixture, the numbering configured (None: detected), the
/// GET_SS_DMA number that kernel answers.
const KERNELS: [(&str, Option<Abi>, u32); 2] = [
    ("openeuler-nosva", Some(Abi::Mainline), 0x8008_5703),
    ("openeuler-4.19-nosva", None, 0x8008_5702),
];

#[test]
fn rsa_runs_on_the_static_share_region_with_either_numbering() {
    for (name, abi, get_ss_dma) in KERNELS {
        let h = host(name, SideConfig::default(), abi);
        let scan = h.backend.scan().unwrap();
        assert!(
            scan.iter()
                .all(|s| s.mode == Some(AddressMode::StaticShare) && s.refused.is_none()),
            "{name}: {scan:?}"
        );
        let device = h.device("hisi_hpre-0");
        let mut q = hisi_hpre::open_queue(&device, policy(10_000)).unwrap();
        assert_eq!(q.queue().address_mode(), AddressMode::StaticShare);
        for bits in [1024, 2048] {
            let k = key(bits);
            let m = k.message();
            let c = hisi_hpre::rsa(&mut q, &k.public(), &m).unwrap();
            assert_eq!(c, k.sw_public(&m), "{name}: public {bits}");
            assert_eq!(hisi_hpre::rsa(&mut q, &k.private(), &c).unwrap(), m);
            assert_eq!(hisi_hpre::rsa(&mut q, &k.crt(), &c).unwrap(), m);
        }
        let stats = h.side.stats();
        assert!(stats.completed_ok >= 6, "{name}: {stats:?}");
        assert_eq!(stats.address_faults, 0, "{name}");
        let trace = h.kernel.trace();
        // The SS region mapped at index 2 (offset 2 pages) before START.
        let ss_map = trace
            .iter()
            .position(|c| {
                matches!(
                    c,
                    Call::Mmap {
                        offset: 8192,
                        result: Ok(()),
                        ..
                    }
                )
            })
            .unwrap_or_else(|| panic!("{name}: no SS mmap in {trace:?}"));
        let start = abi.unwrap_or(Abi::OpenEuler).start_q();
        let started = trace
            .iter()
            .position(
                |c| matches!(c, Call::Ioctl { request, result: Ok(_), .. } if *request == start),
            )
            .unwrap();
        assert!(ss_map < started, "{name}: SS mapped after START");
        let asked: Vec<u32> = trace
            .iter()
            .filter_map(|c| match c {
                Call::Ioctl {
                    request,
                    result: Ok(_),
                    ..
                } if ioctl::ioc_size(*request) == 8 => Some(*request),
                _ => None,
            })
            .collect();
        assert!(
            !asked.is_empty() && asked.iter().all(|r| *r == get_ss_dma),
            "{name}: GET_SS_DMA numbers {asked:x?}"
        );
        drop(q);
        assert!(h.kernel.queues().is_empty());
        assert_eq!(h.kernel.mappings(), 0, "{name}: every region unmapped");
    }
}

/// The device sees physical addresses: pool blocks carry addresses inside the region
/// (not their virtual addresses), work there, and any other address - a virtual address
/// as SVA would use, an address past the region - faults on the device; sharing memory
/// from outside the region is refused before anything reaches the ring.
#[test]
fn only_static_share_addresses_reach_the_device() {
    for (name, abi, _) in KERNELS {
        let h = host(name, SideConfig::default(), abi);
        let device = h.device("hisi_zip-1");
        let q = Queue::request(&device, QueueRequest { qc_type: 0 }).unwrap();
        assert_eq!(q.address_mode(), AddressMode::StaticShare);
        let foreign = Region::anonymous(4096).unwrap();
        match q.mem_share(&foreign) {
            Err(Error::Unsupported(m)) => assert!(m.contains("static-share"), "{m}"),
            other => panic!("{name}: mem_share of foreign memory gave {other:?}"),
        }
        let pool = q.dma_pool(256 << 10, 3, 3).unwrap();
        let (mut src, dst, ctx) = (
            pool.alloc().unwrap(),
            pool.alloc().unwrap(),
            pool.alloc().unwrap(),
        );
        for b in [&src, &dst, &ctx] {
            assert!(b.iova().0 >= SS_DMA_BASE, "{name}: {b:?}");
        }
        let data: Vec<u8> = (0..100_000u32)
            .map(|i| b"static share "[(i % 13) as usize])
            .collect();
        src.write(0, &data);
        let mut ring = QmRing::new(&q).unwrap();
        let good = [src.iova().0, dst.iova().0, ctx.iova().0];
        let w = run(
            &mut ring,
            &zip_sqe(false, good, REQ_ZLIB, data.len(), 256 << 10, FLUSH_FINISH),
        );
        assert_eq!(w[DW_STATUS] & STATUS_MASK, u32::from(ST_OK), "{name}");
        assert!(w[DW_PRODUCED] > 6 && (w[DW_PRODUCED] as usize) < data.len() / 4);
        let faults = h.side.stats().address_faults;
        // The virtual address of the pool's memory, as an SVA device would take it.
        let va = foreign.as_ptr() as u64;
        let region_end = SS_DMA_BASE + (64 << 20) + (1 << 30);
        for bad in [va, region_end, 0x1000] {
            let w = run(
                &mut ring,
                &zip_sqe(
                    false,
                    [bad, good[1], good[2]],
                    REQ_ZLIB,
                    data.len(),
                    256 << 10,
                    FLUSH_FINISH,
                ),
            );
            assert_ne!(
                w[DW_STATUS] & STATUS_MASK,
                u32::from(ST_OK),
                "{name}: {bad:#x}"
            );
        }
        assert_eq!(h.side.stats().address_faults, faults + 3, "{name}");
    }
}

/// A region of several slices (uadk's header kernels): a ZIP queue's 48 MiB is three
/// 16 MiB slices, non-contiguous on the bus; chunks never straddle two.
#[test]
fn a_region_of_several_slices_is_read_slice_by_slice() {
    let h = host(
        "openeuler-nosva",
        SideConfig::default(),
        Some(Abi::Mainline),
    );
    let device = h.device("hisi_zip-1");
    let q = Queue::request(&device, QueueRequest { qc_type: 1 }).unwrap();
    let gets: Vec<Result<i32, i32>> = h
        .kernel
        .trace()
        .iter()
        .filter_map(|c| match c {
            Call::Ioctl {
                request: 0x8008_5703,
                result,
                ..
            } => Some(*result),
            _ => None,
        })
        .collect();
    assert_eq!(
        gets,
        vec![Ok(2), Ok(1), Ok(0)],
        "slices left after each answer"
    );
    let pool = q.dma_pool(8 << 20, 2, 4).unwrap();
    let a = pool.alloc().unwrap();
    let b = pool.alloc().unwrap();
    // One 16 MiB chunk: both blocks in the first slice.
    assert_eq!(b.iova().0.abs_diff(a.iova().0), 8 << 20);
    let small = q.dma_pool(64 << 10, 4, 4).unwrap();
    let s = small.alloc().unwrap();
    // The next chunk comes from the second slice, past the gap the kernel left.
    assert!(s.iova().0 >= SS_DMA_BASE + (16 << 20) + 0x10000, "{s:?}");
    // The third slice takes one more 16 MiB chunk; then the region is full.
    let c = pool.alloc().unwrap();
    let _d = pool.alloc().unwrap();
    assert!(c.iova().0 >= SS_DMA_BASE + 2 * ((16 << 20) + 0x10000));
    let big = q.dma_pool(8 << 20, 2, 2);
    match big {
        Err(Error::NoFreeQueue(m)) => assert!(m.contains("static-share region full"), "{m}"),
        other => panic!("a full region gave {other:?}"),
    }
}

#[test]
fn contradictory_or_incomplete_no_sva_devices_are_refused_with_the_reason() {
    let t = tempfile::tempdir().unwrap();
    let cfg = wd_core::uacce::fake::FakeKernelConfig {
        osrelease: "5.10.0".into(),
        ..Default::default()
    };
    wd_core::uacce::fake::write_kernel_file(t.path(), &cfg).unwrap();
    let mut d = wd_core::uacce::fake::FixtureDevice::hpre("hisi_hpre-0");
    d.api = "hisi_qm_v2_noiommu".into();
    d.flags = 1; // SVA on uadk's header: contradicts the suffix.
    d.write(t.path(), &cfg).unwrap();
    let mut e = wd_core::uacce::fake::FixtureDevice::hpre("hisi_hpre-1");
    e.flags = 0; // No SVA and no suffix: nothing to run on.
    e.write(t.path(), &cfg).unwrap();
    let side = Arc::new(ModelSide::default());
    let kernel = FakeKernel::from_fixture(t.path(), side).unwrap();
    let scan = kernel.backend(Some(Abi::Mainline)).scan().unwrap();
    let why = |n: &str| {
        scan.iter()
            .find(|s| s.info.name == n)
            .and_then(|s| s.refused.clone())
            .unwrap_or_default()
    };
    assert!(why("hisi_hpre-0").contains("contradictory"), "{scan:?}");
    assert!(
        why("hisi_hpre-1").contains("neither SVA nor the static-share"),
        "{scan:?}"
    );
    assert!(scan.iter().all(|s| s.mode.is_none()));
}
