//! Model configuration: one key table, parsed strictly, shared by the environment
//! (`WD_MODEL_<KEY>`) and the provider's config file (`set(key, value)`).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use wd_core::{Error, Result};

use crate::layout::qm::DoorbellFormat;

/// The QM hardware version the model presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// `hisi_qm_v1`: early parts, doorbell at +0x340 with the v1 word format. Not a target
    /// of the drivers; modelled so the v1 doorbell path can be exercised.
    V1,
    /// `hisi_qm_v2` (Kunpeng 920).
    #[default]
    V2,
    /// `hisi_qm_v3` (Kunpeng 930).
    V3,
}

impl ApiVersion {
    /// The sysfs `api` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "hisi_qm_v1",
            ApiVersion::V2 => "hisi_qm_v2",
            ApiVersion::V3 => "hisi_qm_v3",
        }
    }

    /// The doorbell word format and offset of this version.
    pub fn doorbell(self) -> DoorbellFormat {
        match self {
            ApiVersion::V1 => DoorbellFormat::V1,
            ApiVersion::V2 | ApiVersion::V3 => DoorbellFormat::V2,
        }
    }
}

impl FromStr for ApiVersion {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v1" | "hisi_qm_v1" => Ok(ApiVersion::V1),
            "v2" | "hisi_qm_v2" => Ok(ApiVersion::V2),
            "v3" | "hisi_qm_v3" => Ok(ApiVersion::V3),
            other => Err(format!(
                "{other:?} is not one of v2, v3, hisi_qm_v2, hisi_qm_v3 (or v1)"
            )),
        }
    }
}

/// Fault injection knobs. All off by default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultConfig {
    /// Every Nth request completes with an error status; 0 = never.
    pub error_every: u32,
    /// A random share (0.0 ..= 1.0) of requests completes with an error status.
    pub error_ratio: f64,
    /// Engines take requests but never complete them.
    pub stall: bool,
    /// Engines stall (as `stall`) from the Nth request a device takes on, after completing
    /// the ones before (a device that fails mid-run); 0 = never.
    pub stall_after: u64,
    /// Every Nth SQ doorbell is dropped; 0 = never.
    pub lost_doorbell_every: u32,
    /// Every Nth CQE is written with an out-of-range `sq_head`; 0 = never.
    pub corrupt_cqe_every: u32,
    /// Set the TX-stop word of every queue (as the kernel does on reset).
    pub tx_stop: bool,
    /// Set the RX-stop word of every queue.
    pub rx_stop: bool,
}

/// How long an engine thread keeps looking for the next request after a completion before
/// it blocks. A real engine never has to be woken; a blocked model thread costs the next
/// request's sender a futex wake-up (~10 µs of its CPU on a 2-vCPU VM) and the request
/// ~30 µs. 120 µs catches a caller that comes back after one sleep's wake-up lateness plus
/// its own post-processing (measured with 50 µs under `poll_mode = event`: waking the
/// engine was a quarter of the caller's CPU, by perf). Requests that come rarely shrink
/// the spin (see `device::spin_budget`), so an idle model still spins at most briefly.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(120);

/// Configuration of a [`crate::ModelBackend`].
///
/// | key (`set`) | env | default | meaning |
/// |---|---|---|---|
/// | `api` | `WD_MODEL_API` | `v2` | `v2`, `v3`, `hisi_qm_v2`, `hisi_qm_v3` (also `v1`) |
/// | `devices` | `WD_MODEL_DEVICES` | 1 | HPRE devices (`hpre_devices` also accepted) |
/// | `zip_devices` | `WD_MODEL_ZIP_DEVICES` | 1 (0 in `ModelConfig::default()`) | ZIP devices (`hisi_zip-N`, after the HPRE ones) |
/// | `zip_level` | `WD_MODEL_ZIP_LEVEL` | 2 | the ZIP engine's fixed effort (zlib level 1..=9) |
/// | `queues` | `WD_MODEL_QUEUES` | 16 | queues per device (available instances), 1..=1024 |
/// | `engines` | `WD_MODEL_ENGINES` | 1 | engine threads per device, 1..=64 |
/// | `depth` | `WD_MODEL_DEPTH` | 1024 | SQ and CQ depth, 2..=32768 |
/// | `latency_us` | `WD_MODEL_LATENCY_US` | 0 | extra per-request latency, µs |
/// | `spin_us` | `WD_MODEL_SPIN_US` | 120 | engine spin after a completion, µs |
/// | `error_every` | `WD_MODEL_ERROR_EVERY` | 0 | every Nth request fails |
/// | `error_ratio` | `WD_MODEL_ERROR_RATIO` | 0 | random share of failing requests |
/// | `stall` | `WD_MODEL_STALL` | false | requests never complete |
/// | `stall_after` | `WD_MODEL_STALL_AFTER` | 0 | requests from the Nth a device takes on never complete (0 = never) |
/// | `lost_doorbell_every` | `WD_MODEL_LOST_DOORBELL_EVERY` | 0 | drop every Nth SQ doorbell |
/// | `corrupt_cqe_every` | `WD_MODEL_CORRUPT_CQE_EVERY` | 0 | corrupt every Nth CQE |
/// | `tx_stop` | `WD_MODEL_TX_STOP` | false | set TX-stop words |
/// | `rx_stop` | `WD_MODEL_RX_STOP` | false | set RX-stop words |
/// | `dir` | `WD_MODEL_DIR` | `/tmp/wd-model-<uid>` | instance slot files |
///
/// Example: `WD_MODEL_API=v3 WD_MODEL_QUEUES=4 WD_MODEL_ERROR_EVERY=100`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Hardware version presented.
    pub api: ApiVersion,
    /// Number of HPRE devices.
    pub hpre_devices: usize,
    /// Number of ZIP devices.
    pub zip_devices: usize,
    /// The ZIP engine's compression effort (zlib level; hardware has no level field).
    pub zip_level: u32,
    /// Queues per device (available instances).
    pub queues: u32,
    /// Engine threads per device.
    pub engines: usize,
    /// SQ and CQ depth.
    pub depth: u16,
    /// Extra latency added to every request.
    pub latency: Duration,
    /// How long an engine thread spins for more work after a completion before blocking.
    pub spin: Duration,
    /// Fault injection.
    pub faults: FaultConfig,
    /// Where the per-device instance slot files live (shared by all processes).
    pub instance_dir: PathBuf,
}

/// Every configuration key, in the order of the table above.
pub const KEYS: &[&str] = &[
    "api",
    "devices",
    "zip_devices",
    "zip_level",
    "queues",
    "engines",
    "depth",
    "latency_us",
    "spin_us",
    "error_every",
    "error_ratio",
    "stall",
    "stall_after",
    "lost_doorbell_every",
    "corrupt_cqe_every",
    "tx_stop",
    "rx_stop",
    "dir",
];

/// `/tmp/wd-model-<uid>`.
pub fn default_instance_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/wd-model-{}", crate::sys::uid()))
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            api: ApiVersion::V2,
            hpre_devices: 1,
            // None unless asked for in code, so RSA-only users start no ZIP engine threads;
            // the environment (`from_env`) presents one by default.
            zip_devices: 0,
            zip_level: crate::zip::DEFAULT_LEVEL,
            queues: 16,
            engines: 1,
            depth: 1024,
            latency: Duration::ZERO,
            spin: DEFAULT_SPIN,
            faults: FaultConfig::default(),
            instance_dir: default_instance_dir(),
        }
    }
}

fn parse_num<T>(v: &str, lo: T, hi: T) -> std::result::Result<T, String>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = v
        .trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a number"))?;
    if n < lo || n > hi {
        return Err(format!("{n} is outside {lo}..={hi}"));
    }
    Ok(n)
}

fn parse_bool(v: &str) -> std::result::Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{v:?} is not a boolean (1/0, true/false, yes/no, on/off)"
        )),
    }
}

impl ModelConfig {
    /// Defaults overlaid with the `WD_MODEL_*` environment variables. A variable with a bad
    /// value is an error naming it.
    pub fn from_env() -> Result<ModelConfig> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Defaults overlaid with variables from `lookup` (the environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ModelConfig> {
        let mut cfg = ModelConfig {
            zip_devices: 1,
            ..ModelConfig::default()
        };
        for key in KEYS.iter().chain(["hpre_devices"].iter()) {
            let var = format!("WD_MODEL_{}", key.to_ascii_uppercase());
            if let Some(value) = lookup(&var) {
                cfg.apply(key, &value)
                    .map_err(|why| Error::Config(format!("{var}: invalid value: {why}")))?;
            }
        }
        Ok(cfg)
    }

    /// Sets one key of the table (lower case, no `WD_MODEL_` prefix) from its text form.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.apply(key, value)
            .map_err(|why| Error::Config(format!("model key {key}: invalid value: {why}")))
    }

    fn apply(&mut self, key: &str, v: &str) -> std::result::Result<(), String> {
        match key {
            "api" => self.api = v.parse()?,
            "devices" | "hpre_devices" => self.hpre_devices = parse_num(v, 0, 64)?,
            "zip_devices" => self.zip_devices = parse_num(v, 0, 64)?,
            "zip_level" => self.zip_level = parse_num(v, 1, 9)?,
            "queues" => self.queues = parse_num(v, 1, 1024)?,
            "engines" => self.engines = parse_num(v, 1, 64)?,
            "depth" => self.depth = parse_num(v, 2, 32768)?,
            "latency_us" => self.latency = Duration::from_micros(parse_num(v, 0, 10_000_000)?),
            "spin_us" => self.spin = Duration::from_micros(parse_num(v, 0, 1_000_000)?),
            "error_every" => self.faults.error_every = parse_num(v, 0, u32::MAX)?,
            "error_ratio" => {
                let r: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{v:?} is not a number"))?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("{r} is outside 0.0..=1.0"));
                }
                self.faults.error_ratio = r;
            }
            "stall" => self.faults.stall = parse_bool(v)?,
            "stall_after" => self.faults.stall_after = parse_num(v, 0, u64::MAX)?,
            "lost_doorbell_every" => self.faults.lost_doorbell_every = parse_num(v, 0, u32::MAX)?,
            "corrupt_cqe_every" => self.faults.corrupt_cqe_every = parse_num(v, 0, u32::MAX)?,
            "tx_stop" => self.faults.tx_stop = parse_bool(v)?,
            "rx_stop" => self.faults.rx_stop = parse_bool(v)?,
            "dir" => {
                if v.trim().is_empty() {
                    return Err("empty directory".into());
                }
                self.instance_dir = PathBuf::from(v);
            }
            _ => return Err(format!("unknown key (known: {})", KEYS.join(", "))),
        }
        Ok(())
    }

    /// Checks the values a caller may have set directly on the fields.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(format!("model config: {what}")));
        if self.queues == 0 || self.queues > 1024 {
            return bad("queues must be 1..=1024");
        }
        if self.engines == 0 || self.engines > 64 {
            return bad("engines must be 1..=64");
        }
        if self.depth < 2 || self.depth > 32768 {
            return bad("depth must be 2..=32768");
        }
        let r = self.faults.error_ratio;
        if !(0.0..=1.0).contains(&r) {
            return bad("error_ratio must be within 0.0..=1.0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = ModelConfig::default();
        assert_eq!(c.api, ApiVersion::V2);
        assert_eq!(
            (c.hpre_devices, c.queues, c.engines, c.depth),
            (1, 16, 1, 1024)
        );
        assert_eq!(c.latency, Duration::ZERO);
        assert_eq!(c.spin, DEFAULT_SPIN);
        assert_eq!(DEFAULT_SPIN, Duration::from_micros(120));
        assert_eq!(c.faults, FaultConfig::default());
        assert!(c
            .instance_dir
            .to_string_lossy()
            .starts_with("/tmp/wd-model-"));
        c.validate().unwrap();
    }

    #[test]
    fn env_overlays_every_documented_variable() {
        let c = ModelConfig::from_lookup(env(&[
            ("WD_MODEL_API", "hisi_qm_v3"),
            ("WD_MODEL_QUEUES", "4"),
            ("WD_MODEL_ENGINES", "2"),
            ("WD_MODEL_DEVICES", "3"),
            ("WD_MODEL_LATENCY_US", "250"),
            ("WD_MODEL_ERROR_EVERY", "7"),
            ("WD_MODEL_ERROR_RATIO", "0.25"),
            ("WD_MODEL_STALL", "yes"),
            ("WD_MODEL_DIR", "/tmp/x"),
        ]))
        .unwrap();
        assert_eq!(c.api, ApiVersion::V3);
        assert_eq!((c.queues, c.engines, c.hpre_devices), (4, 2, 3));
        assert_eq!(c.latency, Duration::from_micros(250));
        assert_eq!(c.faults.error_every, 7);
        assert_eq!(c.faults.error_ratio, 0.25);
        assert!(c.faults.stall);
        assert_eq!(c.instance_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        for (var, val) in [
            ("WD_MODEL_QUEUES", "many"),
            ("WD_MODEL_QUEUES", "0"),
            ("WD_MODEL_API", "v9"),
            ("WD_MODEL_ERROR_RATIO", "1.5"),
            ("WD_MODEL_STALL", "perhaps"),
            ("WD_MODEL_ENGINES", "-1"),
        ] {
            let e = ModelConfig::from_lookup(env(&[(var, val)])).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(var), "{msg}");
            assert!(matches!(e, Error::Config(_)));
        }
    }

    #[test]
    fn set_takes_the_same_keys() {
        let mut c = ModelConfig::default();
        c.set("api", "v3").unwrap();
        c.set("queues", "2").unwrap();
        c.set("engines", "3").unwrap();
        c.set("latency_us", "10").unwrap();
        c.set("error_every", "5").unwrap();
        c.set("stall", "1").unwrap();
        c.set("dir", "/tmp/y").unwrap();
        c.set("lost_doorbell_every", "3").unwrap();
        c.set("corrupt_cqe_every", "4").unwrap();
        c.set("tx_stop", "on").unwrap();
        assert_eq!(c.api, ApiVersion::V3);
        assert_eq!((c.queues, c.engines), (2, 3));
        assert_eq!(c.faults.lost_doorbell_every, 3);
        assert_eq!(c.faults.corrupt_cqe_every, 4);
        assert!(c.faults.tx_stop && c.faults.stall);
        let e = c.set("queues", "x").unwrap_err().to_string();
        assert!(e.contains("queues"), "{e}");
        let e = c.set("colour", "blue").unwrap_err().to_string();
        assert!(e.contains("colour") && e.contains("unknown"), "{e}");
        // A failed set leaves the old value.
        assert_eq!(c.queues, 2);
    }

    #[test]
    fn api_strings() {
        assert_eq!(ApiVersion::V2.as_str(), "hisi_qm_v2");
        assert_eq!(ApiVersion::V3.as_str(), "hisi_qm_v3");
        assert_eq!("V2".parse::<ApiVersion>().unwrap(), ApiVersion::V2);
        assert_eq!(ApiVersion::V3.doorbell(), DoorbellFormat::V2);
        assert_eq!(ApiVersion::V1.doorbell(), DoorbellFormat::V1);
    }
}
