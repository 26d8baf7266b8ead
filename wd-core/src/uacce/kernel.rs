//! What the backend must know about the kernel before it opens a queue: whether it speaks
//! the device's `api`, which ioctl numbering is in force (docs/hardware-interface.md §1.1,
//! §7.1), and the engines' SQE sizes for kernels without SET_QP_INFO
//! (hardware-interface §3.2).

#![forbid(unsafe_code)]

use std::path::Path;

use crate::device::DeviceInfo;
use crate::error::{Error, Result};
use crate::uacce::ioctl::Abi;
use crate::uacce::sys::{UacceSys, OSRELEASE};
use crate::uacce::sysfs::read_attr;

/// What every HiSilicon QM api string starts with.
pub const QM_API_PREFIX: &str = "hisi_qm_v";
/// What openEuler appends to the api in no-SVA mode.
pub const NOIOMMU_SUFFIX: &str = "_noiommu";
/// The first mainline kernel with uacce.
pub const FIRST_MAINLINE_UACCE: (u32, u32) = (5, 7);
/// Queue depth of kernels without SET_QP_INFO (`QM_Q_DEPTH`).
pub const LEGACY_DEPTH: u16 = 1024;

/// The QM version number of an api string, or why the device is refused.
pub fn check_api(api: &str) -> Result<u32> {
    let api = api.trim();
    let Some(rest) = api.strip_prefix(QM_API_PREFIX) else {
        return Err(Error::Unsupported(format!(
            "api {api:?} is not a HiSilicon QM interface ({QM_API_PREFIX}N), the only queue \
             protocol wd drives"
        )));
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (num, suffix) = rest.split_at(digits);
    // The no-SVA suffix names the same QM version; whether the device can serve no-SVA
    // queues is decided from its flags (`UacceBackend::refusal`).
    let suffix = suffix.strip_suffix(NOIOMMU_SUFFIX).unwrap_or(suffix);
    if !suffix.is_empty() {
        return Err(Error::Unsupported(format!(
            "api {api:?}: unknown suffix {suffix:?} after the QM version"
        )));
    }
    match num.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Error::Unsupported(format!(
            "api {api:?}: no QM version number after {QM_API_PREFIX}"
        ))),
    }
}

/// True if the api string carries openEuler's no-SVA suffix (`hisi_qm_v2_noiommu`).
pub fn is_no_sva_api(api: &str) -> bool {
    api.trim().ends_with(NOIOMMU_SUFFIX)
}

/// Bytes of static-share memory a no-SVA queue of `driver` maps unless `WD_SS_SIZE` says
/// otherwise: room for the driver's DMA pools as they start plus growth (HPRE: 1024
/// blocks of 4 KiB; ZIP: two 8 MiB I/O blocks, stream contexts and one more I/O chunk).
pub fn default_ss_size(driver: &str) -> usize {
    match driver {
        "hisi_zip" => 48 << 20,
        _ => 4 << 20,
    }
}

/// Parses `WD_SS_SIZE`: bytes, with an optional `K`, `M` or `G` suffix; at least one
/// granule (64 KiB).
pub fn parse_ss_size(v: &str) -> Result<usize> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last() {
        Some((i, 'k' | 'K')) => (&v[..i], 1usize << 10),
        Some((i, 'm' | 'M')) => (&v[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    let n: usize = num
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("WD_SS_SIZE={v:?} is not a size (bytes, K, M, G)")))?;
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| Error::Config(format!("WD_SS_SIZE={v:?} is too large")))?;
    if bytes < crate::uacce::ioctl::UACCE_GRAN_SIZE as usize {
        return Err(Error::Config(format!(
            "WD_SS_SIZE={v:?}: at least 64K (one static-share granule)"
        )));
    }
    Ok(bytes)
}

/// Bytes per SQE of the engine behind a uacce driver name (hardware-interface §3.2), for
/// kernels without SET_QP_INFO.
pub fn engine_sqe_size(driver: &str) -> Option<u32> {
    match driver {
        "hisi_hpre" => Some(64),
        "hisi_zip" | "hisi_sec2" => Some(128),
        _ => None,
    }
}

/// `region_dus_size` the kernel computes for a geometry (hardware-interface §3.3):
/// `PAGE_ALIGN(sqe_size * sq_depth + 16 * cq_depth) + PAGE_SIZE`.
pub fn expected_dus_size(sqe_size: u32, sq_depth: u16, cq_depth: u16, page: usize) -> usize {
    let rings = sqe_size as usize * sq_depth as usize + 16 * cq_depth as usize;
    rings.div_ceil(page) * page + page
}

/// Parses `major.minor` from a kernel release string (`6.6.0-28.oe2403.aarch64`).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The ioctl numbering in force for a device and how it was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiChoice {
    /// The numbering.
    pub abi: Abi,
    /// Why (for the log and `wd list`).
    pub reason: String,
}

/// Decides the numbering for `dev` (whose sysfs directory is `dir`): the configured one if
/// any, else detection. Detection never guesses: when the signs are ambiguous the device is
/// refused with a message that says how to configure it.
///
/// Signs of a non-mainline uacce: a `node_id` attribute, flag bits other than bit 0, an
/// api suffix. A kernel older than 5.7 cannot have mainline uacce, so a uacce there is the
/// openEuler 4.19 one. A non-mainline uacce on 5.7+ may be openEuler 5.10+ (mainline
/// numbering, uadk's header) or a backport of the legacy one: refused unless configured.
pub fn choose_abi(
    sys: &dyn UacceSys,
    configured: Option<Abi>,
    dev: &DeviceInfo,
    dir: &Path,
) -> Result<AbiChoice> {
    if let Some(abi) = configured {
        return Ok(AbiChoice {
            abi,
            reason: "set by WD_UACCE_ABI".into(),
        });
    }
    let release = sys
        .read_file(Path::new(OSRELEASE))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let version = kernel_version(&release);
    let mut signs = Vec::new();
    if read_attr(sys, dir, "node_id")?.is_some() {
        signs.push("a node_id attribute".to_string());
    }
    if dev.flags & !1 != 0 {
        signs.push(format!("flags {:#x} beyond bit 0", dev.flags));
    }
    if dev.api.trim().ends_with(NOIOMMU_SUFFIX) {
        signs.push(format!("the {NOIOMMU_SUFFIX} api suffix"));
    }
    let old = matches!(version, Some(v) if v < FIRST_MAINLINE_UACCE);
    let how = "set WD_UACCE_ABI=mainline (mainline and openEuler 5.10+ kernels: \
               START_Q=_IO('W',0), PUT_Q=_IO('W',1)) or WD_UACCE_ABI=openeuler (openEuler \
               4.19: START=_IO('W',1), PUT_Q=_IO('W',3))";
    match (signs.is_empty(), old) {
        (true, false) if version.is_some() => Ok(AbiChoice {
            abi: Abi::Mainline,
            reason: format!("detected: mainline sysfs attributes on kernel {release}"),
        }),
        (false, true) => Ok(AbiChoice {
            abi: Abi::OpenEuler,
            reason: format!(
                "detected: {} on kernel {release}, older than mainline uacce (5.7): the \
                 openEuler 4.19 numbering",
                signs.join(", ")
            ),
        }),
        (true, false) => Err(Error::Unsupported(format!(
            "{}: cannot read the kernel release ({OSRELEASE}) to tell the uacce ioctl \
             numbering; {how}",
            dev.name
        ))),
        (true, true) => Err(Error::Unsupported(format!(
            "{}: uacce on kernel {release}, older than mainline uacce (5.7), without \
             openEuler's sysfs attributes: unknown backport, the ioctl numbering cannot be \
             told; {how}",
            dev.name
        ))),
        (false, false) => Err(Error::Unsupported(format!(
            "{}: non-mainline uacce ({}) on kernel {release}: the ioctl numbering cannot be \
             told apart safely (a wrong guess turns PUT_Q into START); {how}",
            dev.name,
            signs.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_strings() {
        assert_eq!(check_api("hisi_qm_v2\n").unwrap(), 2);
        assert_eq!(check_api("hisi_qm_v3").unwrap(), 3);
        assert_eq!(check_api("hisi_qm_v5").unwrap(), 5);
        assert_eq!(check_api("hisi_qm_v1").unwrap(), 1);
        assert_eq!(check_api("hisi_qm_v2_noiommu\n").unwrap(), 2);
        assert_eq!(check_api("hisi_qm_v3_noiommu").unwrap(), 3);
        assert!(is_no_sva_api("hisi_qm_v2_noiommu\n"));
        assert!(!is_no_sva_api("hisi_qm_v2"));
        assert!(check_api("hisi_qm_v2_noiommux").is_err());
        let e = check_api("acme_dma_v1").unwrap_err().to_string();
        assert!(e.contains("not a HiSilicon QM interface"), "{e}");
        assert!(check_api("hisi_qm_v").is_err());
        assert!(check_api("hisi_qm_v0").is_err());
        assert!(check_api("hisi_qm_v2x")
            .unwrap_err()
            .to_string()
            .contains("suffix"));
    }

    #[test]
    fn dus_sizes_of_hw_spec_3_3() {
        assert_eq!(expected_dus_size(128, 1024, 1024, 4096), 0x25000);
        assert_eq!(expected_dus_size(64, 1024, 1024, 4096), 0x15000);
        assert_eq!(expected_dus_size(128, 1024, 1024, 65536), 0x40000);
        assert_eq!(expected_dus_size(64, 1024, 1024, 65536), 0x30000);
        assert_eq!(engine_sqe_size("hisi_hpre"), Some(64));
        assert_eq!(engine_sqe_size("hisi_zip"), Some(128));
        assert_eq!(engine_sqe_size("acme"), None);
    }

    #[test]
    fn static_share_sizes() {
        assert_eq!(parse_ss_size("64K").unwrap(), 0x10000);
        assert_eq!(parse_ss_size("48M").unwrap(), 48 << 20);
        assert_eq!(parse_ss_size("1048576").unwrap(), 1 << 20);
        assert!(parse_ss_size("4K").is_err());
        assert!(parse_ss_size("lots").is_err());
        assert!(default_ss_size("hisi_zip") > 2 * (8 << 20));
        assert_eq!(default_ss_size("hisi_hpre"), 1024 * 4096);
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(
            kernel_version("6.6.0-28.0.0.34.oe2403.aarch64\n"),
            Some((6, 6))
        );
        assert_eq!(
            kernel_version("4.19.90-2003.4.0.0036.oe1.aarch64"),
            Some((4, 19))
        );
        assert_eq!(kernel_version("5.7"), Some((5, 7)));
        assert_eq!(kernel_version(""), None);
        assert!((4, 19) < FIRST_MAINLINE_UACCE);
        assert!((5, 10) > FIRST_MAINLINE_UACCE);
    }
}
