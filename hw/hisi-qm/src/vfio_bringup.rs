//! The HiSilicon QM brought up from user space over VFIO: wd-core's
//! [`QueueManager`] for the ZIP and HPRE virtual functions (docs/hardware-interface.md
//! §6.5, docs/hardware.md §5 item 16).
//!
//! What a VF's own driver does, and so what this does (Linux `qm.c` `__hisi_qm_start`,
//! `qm_qp_ctx_cfg`, `qm_get_vft_v2`; OP-TEE's poll-only `hisi_qm.c` for the same on a VF
//! without interrupts):
//!
//! 1. read the function's queue range with the mailbox (`SQC_VFT` read); the PF's kernel
//!    driver assigned it (memory init, VFT, AXI user domain, RAS: all PF-only, never done
//!    here — a PF bound to vfio-pci is refused);
//! 2. give the hardware the function's SQC and CQC tables (`SQC_BT`, `CQC_BT`: DMA memory
//!    of one 32-byte context per queue);
//! 3. mask the VF's event and async-event interrupts (BAR2 + 0xc, + 0x4): with no EQC/AEQC
//!    there is no event queue, and completions are found by polling each CQ's phase bit;
//! 4. per queue: its ring memory (SQ, CQ and a status page, laid out as uacce's DUS region
//!    so the unchanged `QmRing` drives it), then its SQC and CQC through the mailbox, each
//!    from a 32-byte staging buffer the hardware reads by DMA.
//!
//! Stopping a queue: `STOP_QP` on v3; v2 has no such command in the public sources (the
//! kernel drains by reading the contexts back), so the ring memory is simply taken out of
//! the IOMMU after the caller's in-flight requests completed.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use wd_core::region::page_size;
use wd_core::vfio::backend::{
    FunctionDma, FunctionKind, ManagedFunction, PciFunction, QueueManager, StartedQueue,
};
use wd_core::{Error, Iova, QueueInfo, QueueRequest, Region, Result};

use crate::cqe::CQE_SIZE;
use crate::doorbell::DoorbellFormat;
use crate::mailbox::{Command, Mailbox, Timeouts};

/// `PCI_VENDOR_ID_HUAWEI`.
pub const VENDOR_HUAWEI: u16 = 0x19e5;
/// Bytes of one SQC or CQC (`struct qm_sqc`, `struct qm_cqc`).
pub const QC_SIZE: usize = 32;
/// The depth wd programs (the kernel's `QM_Q_DEPTH`, v1/v2 default of `QM_QP_DEPTH_CAP`).
pub const DEPTH: u16 = 1024;
/// `QM_VF_AEQ_INT_MASK`.
pub const VF_AEQ_INT_MASK: usize = 0x4;
/// `QM_VF_EQ_INT_MASK`.
pub const VF_EQ_INT_MASK: usize = 0xc;
/// Largest `qc_type` (`alg_type` in the SQC's `w13[11:8]`) the kernel accepts.
pub const MAX_QC_TYPE: u16 = 1;

/// SQC field offsets (`struct qm_sqc`).
pub mod sqc {
    /// `base_l` (u32).
    pub const BASE_L: usize = 4;
    /// `base_h` (u32).
    pub const BASE_H: usize = 8;
    /// `dw3` (u32): see [`super::sqc_dw3`].
    pub const DW3: usize = 12;
    /// `w8` (u16): v2 `rand_qc`, 0.
    pub const W8: usize = 16;
    /// `pasid` (u16).
    pub const PASID: usize = 20;
    /// `w11` (u16): bit 7 PASID enable (SVA only).
    pub const W11: usize = 22;
    /// `cq_num` (u16): the CQ this SQ completes to.
    pub const CQ_NUM: usize = 24;
    /// `w13` (u16): `[3:0]` priority, `[7:4]` orders, `[11:8]` type.
    pub const W13: usize = 26;
}

/// CQC field offsets (`struct qm_cqc`).
pub mod cqc {
    /// `base_l` (u32).
    pub const BASE_L: usize = 4;
    /// `base_h` (u32).
    pub const BASE_H: usize = 8;
    /// `dw3` (u32): see [`super::cqc_dw3`].
    pub const DW3: usize = 12;
    /// `w8` (u16): v2 `rand_qc`, 0.
    pub const W8: usize = 16;
    /// `pasid` (u16).
    pub const PASID: usize = 20;
    /// `w11` (u16): bit 0 PASID enable (SVA only).
    pub const W11: usize = 22;
    /// `dw6` (u32): bit 0 phase, bit 1 flag (completion events to the EQ).
    pub const DW6: usize = 24;
}

/// `QM_MK_SQC_DW3_V2`: depth − 1 in the low bits, log2(SQE size) at bit 12.
pub fn sqc_dw3(sqe_size: u32, depth: u16) -> u32 {
    u32::from(depth - 1) | (sqe_size.trailing_zeros() << 12)
}

/// `QM_MK_CQC_DW3_V2` with `QM_QC_CQE_SIZE` = 4 (log2 of the 16-byte CQE).
pub fn cqc_dw3(depth: u16) -> u32 {
    u32::from(depth - 1) | (4 << 12)
}

/// `QM_MK_SQC_W13(priority 0, orders 1, alg_type)`.
pub fn sqc_w13(alg_type: u16) -> u16 {
    (1 << 4) | ((alg_type & 0xf) << 8)
}

/// The engines of the functions this manager drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `hisi_zip` (0xa250 PF, 0xa251 VF): 128-byte SQEs.
    Zip,
    /// `hisi_hpre` (0xa258 PF, 0xa259 VF): 64-byte SQEs.
    Hpre,
}

impl Engine {
    /// The engine of a PCI device ID and whether it is a VF.
    pub fn of(device: u16) -> Option<(Engine, bool)> {
        match device {
            0xa250 => Some((Engine::Zip, false)),
            0xa251 => Some((Engine::Zip, true)),
            0xa258 => Some((Engine::Hpre, false)),
            0xa259 => Some((Engine::Hpre, true)),
            _ => None,
        }
    }

    /// Its driver name (the device name stem the user drivers look for).
    pub fn driver(self) -> &'static str {
        match self {
            Engine::Zip => "hisi_zip",
            Engine::Hpre => "hisi_hpre",
        }
    }

    /// Bytes per SQE.
    pub fn sqe_size(self) -> u32 {
        match self {
            Engine::Zip => 128,
            Engine::Hpre => 64,
        }
    }

    fn algorithms(self, version: u32) -> Vec<String> {
        let v: &[&str] = match (self, version) {
            (Engine::Hpre, _) => &["rsa"],
            (Engine::Zip, 3) => &["zlib", "gzip", "deflate"],
            (Engine::Zip, _) => &["zlib", "gzip"],
        };
        v.iter().map(|s| s.to_string()).collect()
    }
}

/// The QM version of a PCI revision ID (`enum qm_hw_ver`): 0x21 v2, 0x30 v3. v1 (0x20) has
/// another context layout and doorbell and is not driven.
pub fn version_of(revision: u8) -> Option<u32> {
    match revision {
        0x21 => Some(2),
        0x30 => Some(3),
        _ => None,
    }
}

fn pf_refusal(engine: Engine) -> String {
    format!(
        "a physical function: its bring-up (memory init, its VFs' queue ranges, AXI user \
         domain, RAS) is the kernel driver's; bind the PF to {} and give vfio-pci one of \
         its VFs",
        engine.driver()
    )
}

fn ring_size(sqe_size: u32, depth: u16) -> usize {
    let page = page_size();
    let rings = sqe_size as usize * usize::from(depth) + CQE_SIZE * usize::from(depth);
    rings.div_ceil(page) * page + page
}

fn page_round(n: usize) -> usize {
    n.div_ceil(page_size()) * page_size()
}

/// The HiSilicon QM as wd-core's VFIO queue manager.
#[derive(Debug, Clone, Copy, Default)]
pub struct QmQueueManager {
    /// Mailbox timeouts (tests shorten them).
    pub timeouts: Option<Timeouts>,
}

/// Plugs the QM into wd-core's VFIO backend (idempotent).
pub fn plug() {
    wd_core::vfio::backend::plug_queue_manager(Arc::new(QmQueueManager::default()));
}

impl QueueManager for QmQueueManager {
    fn name(&self) -> &'static str {
        "hisi_qm"
    }

    fn describe(&self, f: &PciFunction) -> Option<std::result::Result<FunctionKind, String>> {
        if f.vendor != VENDOR_HUAWEI {
            return None;
        }
        let (engine, vf) = Engine::of(f.device)?;
        if !vf {
            return Some(Err(pf_refusal(engine)));
        }
        let Some(version) = version_of(f.revision) else {
            return Some(Err(format!(
                "QM revision {:#x} (wd drives v2 0x21 and v3 0x30)",
                f.revision
            )));
        };
        Some(Ok(FunctionKind {
            driver: engine.driver().to_string(),
            api: format!("hisi_qm_v{version}"),
            algorithms: engine.algorithms(version),
            mmio_size: DoorbellFormat::V2.offset() + 8,
            dus_size: ring_size(engine.sqe_size(), DEPTH),
        }))
    }

    fn start(
        &self,
        f: &PciFunction,
        bar: Region,
        dma: Arc<dyn FunctionDma>,
    ) -> Result<Arc<dyn ManagedFunction>> {
        let (engine, vf) = Engine::of(f.device)
            .ok_or_else(|| Error::Unsupported(format!("{}: not a ZIP or HPRE function", f.bdf)))?;
        if !vf {
            return Err(Error::Unsupported(format!(
                "{}: {}",
                f.bdf,
                pf_refusal(engine)
            )));
        }
        let version = version_of(f.revision).ok_or_else(|| {
            Error::Unsupported(format!(
                "{}: QM revision {:#x} (wd drives v2 0x21 and v3 0x30)",
                f.bdf, f.revision
            ))
        })?;
        if bar.len() < DoorbellFormat::V2.offset() + 8 {
            return Err(Error::Unsupported(format!(
                "{}: register BAR of {:#x} bytes has no doorbell at {:#x}",
                f.bdf,
                bar.len(),
                DoorbellFormat::V2.offset()
            )));
        }
        let mailbox = Mailbox::new(bar.clone(), self.timeouts.unwrap_or_default())?;
        let (base, queues) = mailbox.read_vft()?;
        let tables = page_round(QC_SIZE * usize::from(queues));
        let (sqc_bt, sqc_bt_iova) = dma.alloc(tables)?;
        let (cqc_bt, cqc_bt_iova) = dma.alloc(tables)?;
        let (staging, staging_iova) = dma.alloc(page_size())?;
        let func = QmFunction {
            bdf: f.bdf.clone(),
            engine,
            version,
            queues,
            bar: bar.clone(),
            dma,
            mailbox: Mutex::new(mailbox),
            staging: (staging, staging_iova),
            tables: [(sqc_bt, sqc_bt_iova), (cqc_bt, cqc_bt_iova)],
            rings: Mutex::new(HashMap::new()),
        };
        {
            let mb = func.mailbox();
            mb.send(Command::SqcBt, 0, sqc_bt_iova.0, false)?;
            mb.send(Command::CqcBt, 0, cqc_bt_iova.0, false)?;
        }
        bar.write_u32(VF_AEQ_INT_MASK, 1);
        bar.write_u32(VF_EQ_INT_MASK, 1);
        wd_core::wd_log!(
            Debug,
            "hisi_qm: {} v{version} {}: queues {base}..{} (function-relative 0..{queues})",
            f.bdf,
            engine.driver(),
            u32::from(base) + u32::from(queues)
        );
        Ok(Arc::new(func))
    }
}

/// One brought-up function.
struct QmFunction {
    bdf: String,
    engine: Engine,
    version: u32,
    queues: u16,
    bar: Region,
    dma: Arc<dyn FunctionDma>,
    mailbox: Mutex<Mailbox>,
    staging: (Region, Iova),
    tables: [(Region, Iova); 2],
    rings: Mutex<HashMap<u16, (Region, Iova)>>,
}

impl fmt::Debug for QmFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QmFunction")
            .field("bdf", &self.bdf)
            .field("engine", &self.engine)
            .field("version", &self.version)
            .field("queues", &self.queues)
            .finish()
    }
}

impl QmFunction {
    fn mailbox(&self) -> std::sync::MutexGuard<'_, Mailbox> {
        self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one context through the staging buffer (under the mailbox lock).
    fn write_context(&self, cmd: Command, qn: u16, fill: impl Fn(&Region)) -> Result<()> {
        let mb = self.mailbox();
        let (staging, iova) = &self.staging;
        staging.fill(0, QC_SIZE, 0);
        fill(staging);
        wd_core::barrier::mb();
        mb.send(cmd, qn, iova.0, false).map(drop)
    }

    fn program(&self, qn: u16, qc_type: u16, ring: Iova) -> Result<()> {
        let sqe = self.engine.sqe_size();
        let cq = ring.0 + u64::from(sqe) * u64::from(DEPTH);
        self.write_context(Command::Sqc, qn, |s| {
            s.write_u32(sqc::BASE_L, ring.0 as u32);
            s.write_u32(sqc::BASE_H, (ring.0 >> 32) as u32);
            s.write_u32(sqc::DW3, sqc_dw3(sqe, DEPTH));
            s.write_u16(sqc::W8, 0);
            s.write_u16(sqc::PASID, 0);
            s.write_u16(sqc::W11, 0);
            s.write_u16(sqc::CQ_NUM, qn);
            s.write_u16(sqc::W13, sqc_w13(qc_type));
        })?;
        self.write_context(Command::Cqc, qn, |c| {
            c.write_u32(cqc::BASE_L, cq as u32);
            c.write_u32(cqc::BASE_H, (cq >> 32) as u32);
            c.write_u32(cqc::DW3, cqc_dw3(DEPTH));
            c.write_u16(cqc::W8, 0);
            c.write_u16(cqc::PASID, 0);
            c.write_u16(cqc::W11, 0);
            // Phase 1, no completion events: nothing would take them.
            c.write_u32(cqc::DW6, 1);
        })
    }
}

impl ManagedFunction for QmFunction {
    fn queues(&self) -> u16 {
        self.queues
    }

    fn start_queue(&self, qn: u16, req: QueueRequest) -> Result<StartedQueue> {
        if qn >= self.queues {
            return Err(Error::InvalidArgument(format!(
                "{}: queue {qn} beyond the function's {}",
                self.bdf, self.queues
            )));
        }
        if req.qc_type > MAX_QC_TYPE {
            return Err(Error::InvalidArgument(format!(
                "qc_type {} (the QM takes 0..={MAX_QC_TYPE})",
                req.qc_type
            )));
        }
        let len = ring_size(self.engine.sqe_size(), DEPTH);
        let (ring, iova) = self.dma.alloc(len)?;
        if let Err(e) = self.program(qn, req.qc_type, iova) {
            let _ = self.dma.free(&ring, iova);
            return Err(e);
        }
        self.rings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(qn, (ring.clone(), iova));
        Ok(StartedQueue {
            info: QueueInfo {
                qid: qn,
                sqe_size: self.engine.sqe_size(),
                sq_depth: DEPTH,
                cq_depth: DEPTH,
            },
            mmio: self.bar.clone(),
            dus: ring,
        })
    }

    fn stop_queue(&self, qn: u16) -> Result<()> {
        if self.version >= 3 {
            self.mailbox().send(Command::StopQp, qn, 0, false)?;
        }
        let ring = self
            .rings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&qn);
        match ring {
            Some((r, iova)) => self.dma.free(&r, iova),
            None => Ok(()),
        }
    }
}

impl Drop for QmFunction {
    fn drop(&mut self) {
        let rings: Vec<_> = std::mem::take(self.rings.get_mut().unwrap_or_else(|e| e.into_inner()))
            .into_values()
            .collect();
        for (r, iova) in rings {
            let _ = self.dma.free(&r, iova);
        }
        for (r, iova) in &self.tables {
            let _ = self.dma.free(r, *iova);
        }
        let _ = self.dma.free(&self.staging.0, self.staging.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_words_as_qm_c_builds_them() {
        // HPRE: 64-byte SQEs (log2 6), depth 1024.
        assert_eq!(sqc_dw3(64, 1024), 0x3ff | 6 << 12);
        assert_eq!(sqc_dw3(128, 1024), 0x3ff | 7 << 12);
        assert_eq!(cqc_dw3(1024), 0x3ff | 4 << 12);
        assert_eq!(sqc_w13(0), 0x10);
        assert_eq!(sqc_w13(1), 0x110);
        assert_eq!((sqc::CQ_NUM, sqc::W13, cqc::DW6), (24, 26, 24));
    }

    #[test]
    fn functions_are_told_by_pci_id_and_revision() {
        let qm = QmQueueManager::default();
        let f = |device, revision| PciFunction {
            bdf: "0000:79:00.1".into(),
            vendor: VENDOR_HUAWEI,
            device,
            revision,
            vf: true,
        };
        let k = qm.describe(&f(0xa259, 0x21)).unwrap().unwrap();
        assert_eq!(
            (k.driver.as_str(), k.api.as_str()),
            ("hisi_hpre", "hisi_qm_v2")
        );
        assert_eq!(k.algorithms, vec!["rsa"]);
        let k = qm.describe(&f(0xa251, 0x30)).unwrap().unwrap();
        assert!(k.algorithms.contains(&"deflate".to_string()));
        assert!(qm.describe(&f(0xa256, 0x21)).is_none(), "SEC: no wd driver");
        assert!(qm.describe(&f(0xa259, 0x20)).unwrap().is_err(), "v1");
        let e = qm.describe(&f(0xa258, 0x21)).unwrap().unwrap_err();
        assert!(e.contains("physical function"), "{e}");
    }
}
