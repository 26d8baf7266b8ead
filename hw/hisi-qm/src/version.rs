//! The QM interface version, read from the device's `api` string, and the doorbell format
//! and place it selects (docs/hardware-interface.md §3.4).

#![forbid(unsafe_code)]

use wd_core::{Error, Result};

use crate::doorbell::DoorbellFormat;

/// The interface version of a HiSilicon QM device: the number after `hisi_qm_v` in its
/// `api` string (`hisi_qm_v1`, `hisi_qm_v2`, `hisi_qm_v3`, `hisi_qm_v5`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(u32);

/// What every QM api string starts with.
pub const API_PREFIX: &str = "hisi_qm_v";

/// The suffix openEuler kernels append in no-SVA mode.
pub const NOIOMMU_SUFFIX: &str = "_noiommu";

impl ApiVersion {
    /// Parses an `api` string as uadk does (`hisi_qm_setup_db`): the decimal number after
    /// `hisi_qm_v`. Version 1 has its own doorbell; 2, 3 and any higher number use the v2
    /// doorbell. Surrounding whitespace (the sysfs newline) is ignored.
    ///
    /// A `_noiommu` suffix (openEuler no-SVA mode) names the same version: the ring and the
    /// doorbell do not change; only where DMA memory comes from does, which is the queue's
    /// business (its static-share region). Refused with [`Error::Unsupported`]: a string
    /// that is not a QM api, a version of 0 or none, and any other suffix.
    pub fn parse(api: &str) -> Result<ApiVersion> {
        let api = api.trim();
        let Some(rest) = api.strip_prefix(API_PREFIX) else {
            return Err(Error::Unsupported(format!(
                "api {api:?} is not a HiSilicon QM interface (expected {API_PREFIX}N)"
            )));
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (num, suffix) = rest.split_at(digits);
        let suffix = suffix.strip_suffix(NOIOMMU_SUFFIX).unwrap_or(suffix);
        if !suffix.is_empty() {
            return Err(Error::Unsupported(format!(
                "api {api:?}: unknown suffix {suffix:?} after the version number"
            )));
        }
        match num.parse::<u32>() {
            Ok(0) | Err(_) => Err(Error::Unsupported(format!(
                "api {api:?}: no QM version number after {API_PREFIX}"
            ))),
            Ok(n) => Ok(ApiVersion(n)),
        }
    }

    /// The version number (1, 2, 3, 5...).
    pub fn number(self) -> u32 {
        self.0
    }

    /// The doorbell format (and with it the doorbell offset) of this version.
    pub fn doorbell(self) -> DoorbellFormat {
        if self.0 == 1 {
            DoorbellFormat::V1
        } else {
            DoorbellFormat::V2
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{API_PREFIX}{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported(api: &str) -> String {
        match ApiVersion::parse(api) {
            Err(Error::Unsupported(m)) => m,
            other => panic!("{api:?}: expected Unsupported, got {other:?}"),
        }
    }

    #[test]
    fn known_versions_select_their_doorbell() {
        let v1 = ApiVersion::parse("hisi_qm_v1").unwrap();
        assert_eq!(v1.number(), 1);
        assert_eq!(v1.doorbell(), DoorbellFormat::V1);
        assert_eq!(v1.doorbell().offset(), 0x340);
        for (api, n) in [("hisi_qm_v2", 2), ("hisi_qm_v3\n", 3), ("hisi_qm_v5", 5)] {
            let v = ApiVersion::parse(api).unwrap();
            assert_eq!(v.number(), n);
            assert_eq!(v.doorbell(), DoorbellFormat::V2);
            assert_eq!(v.doorbell().offset(), 0x1000);
        }
        // Unknown higher versions go the v2 way, as in uadk.
        assert_eq!(
            ApiVersion::parse("hisi_qm_v17").unwrap().doorbell(),
            DoorbellFormat::V2
        );
        assert_eq!(
            ApiVersion::parse("hisi_qm_v3").unwrap().to_string(),
            "hisi_qm_v3"
        );
    }

    #[test]
    fn foreign_apis_are_refused_with_a_reason() {
        assert_eq!(
            ApiVersion::parse("hisi_qm_v2_noiommu\n").unwrap().number(),
            2
        );
        assert_eq!(
            ApiVersion::parse("hisi_qm_v1_noiommu").unwrap().doorbell(),
            DoorbellFormat::V1
        );
        assert!(unsupported("hisi_qm_v2_noiommu_x").contains("suffix"));
        assert!(unsupported("hisi_zip_v2").contains("not a HiSilicon QM"));
        assert!(unsupported("").contains("not a HiSilicon QM"));
        assert!(unsupported("hisi_qm_v").contains("no QM version"));
        assert!(unsupported("hisi_qm_v0").contains("no QM version"));
        assert!(unsupported("hisi_qm_vx").contains("suffix"));
        assert!(unsupported("hisi_qm_v3beta").contains("suffix"));
        assert!(unsupported("hisi_qm_v99999999999").contains("no QM version"));
    }
}
