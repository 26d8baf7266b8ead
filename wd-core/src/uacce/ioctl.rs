//! ioctl numbers and argument layouts of uacce and hisi_qm
//! (docs/hardware-interface.md §1.1, §2), for both kernel numberings wd knows: mainline
//! (also uadk's header, used by openEuler 5.10+ kernels) and the legacy openEuler 4.19 one.
//! Every number is pinned by the tests below.

#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = 8;
const IOC_SIZESHIFT: u32 = 16;
const IOC_DIRSHIFT: u32 = 30;
const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` of asm-generic (arm64, x86-64).
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << IOC_DIRSHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// `_IO(type, nr)`.
pub const fn io(ty: u8, nr: u8) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOR(type, nr, size)`.
pub const fn ior(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}

/// `_IOWR(type, nr, size)`.
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// `_IOC_SIZE(request)`: the argument size a request number carries.
pub const fn ioc_size(request: u32) -> usize {
    ((request >> IOC_SIZESHIFT) & 0x3fff) as usize
}

/// Mainline `UACCE_CMD_START_Q` = `_IO('W', 0)`.
pub const UACCE_CMD_START_Q: u32 = io(b'W', 0);
/// Mainline `UACCE_CMD_PUT_Q` = `_IO('W', 1)`.
pub const UACCE_CMD_PUT_Q: u32 = io(b'W', 1);
/// uadk's (openEuler 5.10+) `UACCE_CMD_GET_SS_DMA` = `_IOR('W', 3, unsigned long)`: in
/// `*arg` a slice index, out `dma | (size >> 16)`; returns the slices left after it.
pub const UADK_CMD_GET_SS_DMA: u32 = ior(b'W', 3, 8);

/// Legacy openEuler `UACCE_CMD_SHARE_SVAS` = `_IO('W', 0)` (the mainline START number!).
pub const OE_CMD_SHARE_SVAS: u32 = io(b'W', 0);
/// Legacy openEuler `UACCE_CMD_START` = `_IO('W', 1)` (the mainline PUT_Q number!).
pub const OE_CMD_START: u32 = io(b'W', 1);
/// Legacy openEuler `UACCE_CMD_GET_SS_DMA` = `_IOR('W', 2, unsigned long)`: out `*arg` the
/// DMA address of the whole (one contiguous) static-share region; returns 0.
pub const OE_CMD_GET_SS_DMA: u32 = ior(b'W', 2, 8);
/// Legacy openEuler `UACCE_CMD_PUT_Q` = `_IO('W', 3)`.
pub const OE_CMD_PUT_Q: u32 = io(b'W', 3);

/// `UACCE_CMD_QM_SET_QP_CTX` = `_IOWR('H', 10, struct hisi_qp_ctx)`.
pub const UACCE_CMD_QM_SET_QP_CTX: u32 = iowr(b'H', 10, HisiQpCtx::SIZE);
/// `UACCE_CMD_QM_SET_QP_INFO` = `_IOWR('H', 11, struct hisi_qp_info)`.
pub const UACCE_CMD_QM_SET_QP_INFO: u32 = iowr(b'H', 11, HisiQpInfo::SIZE);

/// Mainline uacce flag: Shared Virtual Addressing.
pub const UACCE_DEV_SVA: u32 = 1 << 0;
/// Legacy openEuler flags: NOIOMMU, PASID, FAULT_FROM_DEV; SVA = PASID | FAULT_FROM_DEV.
pub const OE_DEV_NOIOMMU: u32 = 1 << 0;
/// Legacy openEuler `UACCE_DEV_PASID`.
pub const OE_DEV_PASID: u32 = 1 << 1;
/// Legacy openEuler `UACCE_DEV_FAULT_FROM_DEV`.
pub const OE_DEV_FAULT_FROM_DEV: u32 = 1 << 2;
/// Legacy openEuler `UACCE_DEV_SVA`.
pub const OE_DEV_SVA: u32 = OE_DEV_PASID | OE_DEV_FAULT_FROM_DEV;

/// Region index of the MMIO (doorbell) region: mmap offset `0 * page`.
pub const UACCE_QFRT_MMIO: u64 = 0;
/// Region index of the device user share (SQ, CQ, status page): mmap offset `1 * page`.
pub const UACCE_QFRT_DUS: u64 = 1;
/// Regions of a mainline queue file (`UACCE_MAX_REGION`); index ≥ this is `EINVAL`.
pub const UACCE_MAX_REGION: u64 = 2;
/// openEuler's static-share region (no-SVA mode): mmap offset `2 * page`, memory the kernel
/// allocates for DMA at mmap time; its device address comes from GET_SS_DMA.
pub const UACCE_QFRT_SS: u64 = 2;
/// GET_SS_DMA counts slice sizes in granules of this many bytes (`UACCE_GRAN_SIZE`).
pub const UACCE_GRAN_SIZE: u64 = 0x10000;
/// `UACCE_GRAN_SHIFT`.
pub const UACCE_GRAN_SHIFT: u32 = 16;
/// `UACCE_GRAN_NUM_MASK`: the granule count in the low bits of a GET_SS_DMA answer.
pub const UACCE_GRAN_NUM_MASK: u64 = 0xfff;

/// One GET_SS_DMA answer decoded (docs/hardware-interface.md §3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsDmaAnswer {
    /// uadk's header (openEuler 5.10+): slice `index` starts at device address `dma` and
    /// is `len` bytes; `left` more slices follow it.
    Slice {
        /// Device address of the slice's first byte.
        dma: u64,
        /// Bytes in the slice (a whole number of granules).
        len: u64,
        /// Slices after this one (the ioctl's return value).
        left: u32,
    },
    /// The legacy openEuler answer: the whole region is contiguous at `dma` (no granule
    /// count: the low bits of a page-aligned address are zero).
    Whole {
        /// Device address of the region's first byte.
        dma: u64,
    },
}

impl SsDmaAnswer {
    /// Decodes `*arg` after the ioctl and its return value `ret`. A granule count of zero
    /// means the kernel wrote a plain address: the legacy single-region answer.
    pub fn decode(arg: u64, ret: i32) -> Result<SsDmaAnswer, String> {
        let granules = arg & UACCE_GRAN_NUM_MASK;
        let dma = arg & !UACCE_GRAN_NUM_MASK;
        if ret < 0 {
            return Err(format!("GET_SS_DMA returned {ret}"));
        }
        if granules == 0 {
            if ret != 0 {
                return Err(format!(
                    "GET_SS_DMA answered address {arg:#x} without a size, yet {ret} slices left"
                ));
            }
            return Ok(SsDmaAnswer::Whole { dma: arg });
        }
        Ok(SsDmaAnswer::Slice {
            dma,
            len: granules << UACCE_GRAN_SHIFT,
            left: ret as u32,
        })
    }

    /// What a kernel with uadk's header writes for a slice (`dma | (size >> 16)`).
    pub fn encode_slice(dma: u64, len: u64) -> u64 {
        dma | (len >> UACCE_GRAN_SHIFT)
    }
}

/// The ioctl numbering and flag meanings of a uacce kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Abi {
    /// Mainline (v5.7+), and uadk's header as openEuler 5.10+ kernels ship it:
    /// START_Q `_IO('W',0)`, PUT_Q `_IO('W',1)`, flags bit 0 = SVA.
    Mainline,
    /// The legacy openEuler (4.19) numbering: SHARE_SVAS `_IO('W',0)`, START `_IO('W',1)`,
    /// GET_SS_DMA `_IOR('W',2,..)`, PUT_Q `_IO('W',3)`; flags NOIOMMU=1, PASID=2,
    /// FAULT_FROM_DEV=4, SVA=6.
    OpenEuler,
}

impl Abi {
    /// The START_Q request number.
    pub fn start_q(self) -> u32 {
        match self {
            Abi::Mainline => UACCE_CMD_START_Q,
            Abi::OpenEuler => OE_CMD_START,
        }
    }

    /// The PUT_Q request number.
    pub fn put_q(self) -> u32 {
        match self {
            Abi::Mainline => UACCE_CMD_PUT_Q,
            Abi::OpenEuler => OE_CMD_PUT_Q,
        }
    }

    /// The GET_SS_DMA request number (no-SVA mode).
    pub fn get_ss_dma(self) -> u32 {
        match self {
            Abi::Mainline => UADK_CMD_GET_SS_DMA,
            Abi::OpenEuler => OE_CMD_GET_SS_DMA,
        }
    }

    /// True if `flags` say the device has no IOMMU translation of its own for user memory,
    /// the precondition of no-SVA (static-share) queues: the openEuler 4.19 kernels set
    /// NOIOMMU (bit 0); uadk's header has no such flag, there SVA (bit 0) is simply clear.
    pub fn no_sva_flags(self, flags: u32) -> bool {
        match self {
            Abi::Mainline => flags & UACCE_DEV_SVA == 0,
            Abi::OpenEuler => flags & OE_DEV_NOIOMMU != 0 && !self.has_sva(flags),
        }
    }

    /// True if `flags` (the sysfs attribute) says the device does SVA.
    pub fn has_sva(self, flags: u32) -> bool {
        match self {
            Abi::Mainline => flags & UACCE_DEV_SVA != 0,
            Abi::OpenEuler => flags & OE_DEV_SVA == OE_DEV_SVA,
        }
    }

    /// The `WD_UACCE_ABI` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Abi::Mainline => "mainline",
            Abi::OpenEuler => "openeuler",
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Abi {
    type Err = String;

    fn from_str(s: &str) -> Result<Abi, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mainline" | "uadk" => Ok(Abi::Mainline),
            "openeuler" | "openeuler-4.19" | "oe" => Ok(Abi::OpenEuler),
            other => Err(format!(
                "WD_UACCE_ABI={other:?}: expected mainline (START_Q=_IO('W',0), also \
                 openEuler 5.10+) or openeuler (legacy 4.19 numbering, START=_IO('W',1))"
            )),
        }
    }
}

/// `struct hisi_qp_ctx` (4 bytes): `id` out (the queue number), `qc_type` in.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HisiQpCtx {
    /// Function-relative queue number (out).
    pub id: u16,
    /// Queue class (in).
    pub qc_type: u16,
}

impl HisiQpCtx {
    /// Bytes of the C struct.
    pub const SIZE: usize = 4;

    /// The struct as the kernel reads it (native byte order).
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..2].copy_from_slice(&self.id.to_ne_bytes());
        b[2..4].copy_from_slice(&self.qc_type.to_ne_bytes());
        b
    }

    /// The struct as the kernel wrote it back.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        HisiQpCtx {
            id: u16::from_ne_bytes([b[0], b[1]]),
            qc_type: u16::from_ne_bytes([b[2], b[3]]),
        }
    }
}

/// `struct hisi_qp_info` (16 bytes), all outputs.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HisiQpInfo {
    /// Bytes per SQE.
    pub sqe_size: u32,
    /// SQ entries.
    pub sq_depth: u16,
    /// CQ entries.
    pub cq_depth: u16,
    /// Reserved.
    pub reserved: u64,
}

impl HisiQpInfo {
    /// Bytes of the C struct.
    pub const SIZE: usize = 16;

    /// The struct in native byte order.
    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..4].copy_from_slice(&self.sqe_size.to_ne_bytes());
        b[4..6].copy_from_slice(&self.sq_depth.to_ne_bytes());
        b[6..8].copy_from_slice(&self.cq_depth.to_ne_bytes());
        b[8..16].copy_from_slice(&self.reserved.to_ne_bytes());
        b
    }

    /// The struct as the kernel wrote it.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        HisiQpInfo {
            sqe_size: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            sq_depth: u16::from_ne_bytes([b[4], b[5]]),
            cq_depth: u16::from_ne_bytes([b[6], b[7]]),
            reserved: u64::from_ne_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        }
    }
}

/// Name of a request number, for logs and the fake kernel's trace.
pub fn name(request: u32, abi: Abi) -> &'static str {
    match (abi, request) {
        (_, UACCE_CMD_QM_SET_QP_CTX) => "UACCE_CMD_QM_SET_QP_CTX",
        (_, UACCE_CMD_QM_SET_QP_INFO) => "UACCE_CMD_QM_SET_QP_INFO",
        (Abi::Mainline, UACCE_CMD_START_Q) => "UACCE_CMD_START_Q",
        (Abi::Mainline, UACCE_CMD_PUT_Q) => "UACCE_CMD_PUT_Q",
        (Abi::OpenEuler, OE_CMD_SHARE_SVAS) => "UACCE_CMD_SHARE_SVAS (openEuler)",
        (Abi::OpenEuler, OE_CMD_START) => "UACCE_CMD_START (openEuler)",
        (Abi::OpenEuler, OE_CMD_PUT_Q) => "UACCE_CMD_PUT_Q (openEuler)",
        (Abi::Mainline, UADK_CMD_GET_SS_DMA) => "UACCE_CMD_GET_SS_DMA",
        (Abi::OpenEuler, OE_CMD_GET_SS_DMA) => "UACCE_CMD_GET_SS_DMA (openEuler)",
        _ => "unknown ioctl",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn mainline_numbers_match_hw_spec() {
        assert_eq!(UACCE_CMD_START_Q, 0x5700);
        assert_eq!(UACCE_CMD_PUT_Q, 0x5701);
        assert_eq!(UACCE_CMD_QM_SET_QP_CTX, 0xC004_480A);
        assert_eq!(UACCE_CMD_QM_SET_QP_INFO, 0xC010_480B);
        assert_eq!(UADK_CMD_GET_SS_DMA, 0x8008_5703);
        assert_eq!(Abi::Mainline.start_q(), 0x5700);
        assert_eq!(Abi::Mainline.put_q(), 0x5701);
        assert_eq!(ioc_size(UACCE_CMD_QM_SET_QP_CTX), 4);
        assert_eq!(ioc_size(UACCE_CMD_QM_SET_QP_INFO), 16);
        assert_eq!(ioc_size(UACCE_CMD_START_Q), 0);
    }

    #[test]
    fn openeuler_numbers_match_hw_spec() {
        assert_eq!(OE_CMD_SHARE_SVAS, 0x5700);
        assert_eq!(OE_CMD_START, 0x5701);
        assert_eq!(OE_CMD_GET_SS_DMA, 0x8008_5702);
        assert_eq!(OE_CMD_PUT_Q, 0x5703);
        assert_eq!(Abi::OpenEuler.start_q(), 0x5701);
        assert_eq!(Abi::OpenEuler.put_q(), 0x5703);
        // The hazard the variants pose: mainline PUT_Q is the openEuler START.
        assert_eq!(Abi::Mainline.put_q(), Abi::OpenEuler.start_q());
    }

    #[test]
    fn flags_per_abi() {
        assert!(Abi::Mainline.has_sva(1));
        assert!(!Abi::Mainline.has_sva(0));
        assert!(Abi::OpenEuler.has_sva(6));
        assert!(Abi::OpenEuler.has_sva(7));
        assert!(!Abi::OpenEuler.has_sva(1), "openEuler bit 0 is NOIOMMU");
        assert!(!Abi::OpenEuler.has_sva(2));
    }

    #[test]
    fn get_ss_dma_per_abi_and_answers() {
        assert_eq!(Abi::Mainline.get_ss_dma(), 0x8008_5703);
        assert_eq!(Abi::OpenEuler.get_ss_dma(), 0x8008_5702);
        assert_eq!(ioc_size(Abi::Mainline.get_ss_dma()), 8);
        assert_eq!(UACCE_QFRT_SS, 2);
        assert_eq!(UACCE_GRAN_SIZE, 1 << UACCE_GRAN_SHIFT);
        // uadk's header: dma | (size >> 16), return = slices left.
        let arg = SsDmaAnswer::encode_slice(0x8000_0000, 0x40_0000);
        assert_eq!(arg, 0x8000_0040);
        assert_eq!(
            SsDmaAnswer::decode(arg, 2),
            Ok(SsDmaAnswer::Slice {
                dma: 0x8000_0000,
                len: 0x40_0000,
                left: 2
            })
        );
        // Legacy: a plain page-aligned address, return 0.
        assert_eq!(
            SsDmaAnswer::decode(0x9000_0000, 0),
            Ok(SsDmaAnswer::Whole { dma: 0x9000_0000 })
        );
        assert!(SsDmaAnswer::decode(0x9000_0000, 3).is_err());
        assert!(SsDmaAnswer::decode(arg, -1).is_err());
        // No-SVA flags.
        assert!(Abi::Mainline.no_sva_flags(0));
        assert!(!Abi::Mainline.no_sva_flags(1));
        assert!(Abi::OpenEuler.no_sva_flags(1));
        assert!(!Abi::OpenEuler.no_sva_flags(0), "neither SVA nor NOIOMMU");
        assert!(!Abi::OpenEuler.no_sva_flags(6));
    }

    #[test]
    fn struct_layouts_match_the_uapi() {
        assert_eq!(size_of::<HisiQpCtx>(), HisiQpCtx::SIZE);
        assert_eq!(offset_of!(HisiQpCtx, id), 0);
        assert_eq!(offset_of!(HisiQpCtx, qc_type), 2);
        assert_eq!(size_of::<HisiQpInfo>(), HisiQpInfo::SIZE);
        assert_eq!(offset_of!(HisiQpInfo, sqe_size), 0);
        assert_eq!(offset_of!(HisiQpInfo, sq_depth), 4);
        assert_eq!(offset_of!(HisiQpInfo, cq_depth), 6);
        assert_eq!(offset_of!(HisiQpInfo, reserved), 8);
        let c = HisiQpCtx {
            id: 0x1234,
            qc_type: 1,
        };
        assert_eq!(HisiQpCtx::from_bytes(&c.to_bytes()), c);
        let i = HisiQpInfo {
            sqe_size: 64,
            sq_depth: 1024,
            cq_depth: 512,
            reserved: 9,
        };
        assert_eq!(HisiQpInfo::from_bytes(&i.to_bytes()), i);
        if cfg!(target_endian = "little") {
            assert_eq!(c.to_bytes(), [0x34, 0x12, 1, 0]);
        }
    }

    #[test]
    fn abi_parses_and_refuses_unknown() {
        assert_eq!("mainline".parse::<Abi>(), Ok(Abi::Mainline));
        assert_eq!(" OpenEuler\n".parse::<Abi>(), Ok(Abi::OpenEuler));
        let e = "debian".parse::<Abi>().unwrap_err();
        assert!(e.contains("expected mainline"), "{e}");
    }
}
