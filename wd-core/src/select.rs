//! Which devices a process uses: the one parser and the one meaning of `WD_DEVICES` (and of
//! the provider's `devices =` key), and the start-up of the device model, once per process.
//!
//! | value | backends searched | meaning |
//! |---|---|---|
//! | `auto` (or empty) | `uacce` | the host's real accelerators if it has any, else software |
//! | `uacce` | `uacce` | the same, said explicitly |
//! | `model` | `model` | the device model, started in this process on first use |
//! | `none` | — | no offload: everything in software |
//! | `fake-uacce:<dir>` | `uacce` | tests only: the uacce backend over a fake kernel whose sysfs tree is `<dir>` |
//! | `vfio` | `vfio` | the host's accelerator functions bound to vfio-pci, brought up by a plugged queue manager ([`crate::vfio::backend`]) |
//! | `fake-vfio:<dir>` | `vfio` | tests only: the VFIO backend over a fake vfio kernel for the functions of the PCI sysfs tree `<dir>`, the model behind each |
//!
//! `auto` never means the model: a production host gets real devices or software, and only
//! a caller that asks for `model` gets simulated hardware.
//!
//! The model is test machinery and is not part of this crate: a binary that carries it plugs
//! it in from the top with [`plug_model`] (`hisi_model::plug()`). In a build without it,
//! selecting `model` or `fake-uacce:` is a clear error, never a silent software run.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};

/// Where queues come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Devices {
    /// The host's real accelerators (uacce) if present, else none. The default.
    #[default]
    Auto,
    /// Only the host's real accelerators (uacce).
    Uacce,
    /// The device model, started inside the process.
    Model,
    /// No offload.
    None,
    /// Tests only: the uacce backend over a fake kernel built from this fixture directory.
    FakeUacce(PathBuf),
    /// The host's accelerator functions bound to vfio-pci.
    Vfio,
    /// Tests only: the VFIO backend over a fake vfio kernel for the functions of this PCI
    /// sysfs tree.
    FakeVfio(PathBuf),
}

/// The accepted spellings, for error messages.
pub const EXPECTED: &str = "auto, uacce, vfio, model or none";

impl Devices {
    /// Parses a `WD_DEVICES` / `devices =` value (keywords case-insensitive, surrounding
    /// space ignored, empty = `auto`).
    pub fn parse(v: &str) -> Result<Devices> {
        let v = v.trim();
        if let Some(dir) = v.strip_prefix("fake-uacce:") {
            if dir.is_empty() {
                return Err(Error::Config(
                    "fake-uacce: needs a fixture directory (fake-uacce:<dir>)".into(),
                ));
            }
            return Ok(Devices::FakeUacce(PathBuf::from(dir)));
        }
        if let Some(dir) = v.strip_prefix("fake-vfio:") {
            if dir.is_empty() {
                return Err(Error::Config(
                    "fake-vfio: needs a PCI sysfs tree (fake-vfio:<dir>)".into(),
                ));
            }
            return Ok(Devices::FakeVfio(PathBuf::from(dir)));
        }
        match v.to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Devices::Auto),
            "uacce" => Ok(Devices::Uacce),
            "vfio" => Ok(Devices::Vfio),
            "model" => Ok(Devices::Model),
            "none" => Ok(Devices::None),
            _ => Err(Error::Config(format!("{v:?}: expected {EXPECTED}"))),
        }
    }

    /// `WD_DEVICES` from the environment (unset = `auto`); a bad value names the variable.
    pub fn from_env() -> Result<Devices> {
        let v = std::env::var("WD_DEVICES").unwrap_or_default();
        Devices::parse(&v).map_err(|e| Error::Config(format!("WD_DEVICES={v:?}: {e}")))
    }

    /// The registry backends whose devices this selection may use (empty: none).
    pub fn backends(&self) -> &'static [&'static str] {
        match self {
            Devices::Auto | Devices::Uacce | Devices::FakeUacce(_) => &["uacce"],
            Devices::Model => &["model"],
            Devices::Vfio | Devices::FakeVfio(_) => &["vfio"],
            Devices::None => &[],
        }
    }

    /// Whether this selection needs the plugged-in model (`model`, `fake-uacce:`,
    /// `fake-vfio:`).
    pub fn needs_model(&self) -> bool {
        matches!(
            self,
            Devices::Model | Devices::FakeUacce(_) | Devices::FakeVfio(_)
        )
    }
}

impl std::fmt::Display for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Devices::Auto => f.write_str("auto"),
            Devices::Uacce => f.write_str("uacce"),
            Devices::Model => f.write_str("model"),
            Devices::None => f.write_str("none"),
            Devices::FakeUacce(d) => write!(f, "fake-uacce:{}", d.display()),
            Devices::Vfio => f.write_str("vfio"),
            Devices::FakeVfio(d) => write!(f, "fake-vfio:{}", d.display()),
        }
    }
}

/// Settings of the device model: `(key, value)` pairs, keys as in [`ModelPlug::keys`]
/// (without any `model_` / `WD_MODEL_` prefix), applied in order over the model's defaults.
pub type ModelSettings = [(String, String)];

/// The device model as a binary plugs it in (see `hisi_model::plug`).
#[derive(Debug, Clone, Copy)]
pub struct ModelPlug {
    /// The model's setting keys (`api`, `queues`, `engines`, ...).
    pub keys: &'static [&'static str],
    /// Checks settings without starting anything (load-time validation).
    pub check: fn(&ModelSettings) -> Result<()>,
    /// Starts the model with these settings and registers its backend (`model`).
    pub start: fn(&ModelSettings) -> Result<()>,
    /// Replaces the `uacce` backend by one over a fake kernel built from a fixture tree,
    /// the model as its device side.
    pub fake_uacce: fn(&Path) -> Result<()>,
}

static PLUG: OnceLock<ModelPlug> = OnceLock::new();

static FAKE_VFIO: OnceLock<fn(&Path) -> Result<()>> = OnceLock::new();

/// Plugs in what `fake-vfio:<dir>` starts: the VFIO backend over a fake vfio kernel, the
/// model behind each function (`hisi_model::plug()` does it; idempotent).
pub fn plug_fake_vfio(start: fn(&Path) -> Result<()>) {
    let _ = FAKE_VFIO.set(start);
}

/// Plugs the device model in for this process (idempotent: the first plug stays).
pub fn plug_model(plug: ModelPlug) {
    let _ = PLUG.set(plug);
}

/// Why a build has no model to start.
pub const NO_MODEL: &str = "this build of wd carries no device model (it was built without \
                            the `model` feature); use real devices (auto, uacce) or none";

/// The plugged-in model, or why there is none.
pub fn model_plug() -> Result<&'static ModelPlug> {
    PLUG.get().ok_or_else(|| Error::Config(NO_MODEL.into()))
}

/// The model settings given by the environment: `WD_MODEL_<KEY>` for every key of the
/// plugged-in model (none without a model).
pub fn model_settings_from_env() -> Vec<(String, String)> {
    model_settings_from(|var| std::env::var(var).ok())
}

/// [`model_settings_from_env`] over any lookup of variable names.
pub fn model_settings_from(lookup: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let Some(plug) = PLUG.get() else {
        return Vec::new();
    };
    plug.keys
        .iter()
        .filter_map(|k| lookup(&model_env_var(k)).map(|v| (k.to_string(), v)))
        .collect()
}

/// The environment variable of a model key (`queues` → `WD_MODEL_QUEUES`).
pub fn model_env_var(key: &str) -> String {
    format!("WD_MODEL_{}", key.to_ascii_uppercase())
}

/// What this process has started, so that it starts once.
#[derive(Debug, Clone, PartialEq)]
enum Started {
    Model(Vec<(String, String)>),
    FakeUacce(PathBuf),
    FakeVfio(PathBuf),
}

static STARTED: Mutex<Vec<Started>> = Mutex::new(Vec::new());

/// Makes the devices of `devices` reachable through the registry, and returns the backends
/// to search for them. The model starts at most once per process (a forked child keeps the
/// parent's registration and the model rebuilds its device threads there); a second caller
/// asking for the model with other settings gets the running one, with a warning.
pub fn activate(devices: &Devices, model: &ModelSettings) -> Result<&'static [&'static str]> {
    let wanted = match devices {
        Devices::Model => Started::Model(model.to_vec()),
        Devices::FakeUacce(dir) => Started::FakeUacce(dir.clone()),
        Devices::FakeVfio(dir) => Started::FakeVfio(dir.clone()),
        Devices::Vfio => {
            let _g = STARTED.lock().unwrap_or_else(|e| e.into_inner());
            if !crate::registry::backends()
                .iter()
                .any(|b| b.name() == "vfio")
            {
                crate::registry::register(std::sync::Arc::new(
                    crate::vfio::backend::VfioBackend::from_host(),
                ));
            }
            return Ok(devices.backends());
        }
        _ => return Ok(devices.backends()),
    };
    let plug = PLUG
        .get()
        .ok_or_else(|| Error::Config(format!("devices = {devices}: {NO_MODEL}")))?;
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    let same_kind = started
        .iter()
        .find(|s| std::mem::discriminant(*s) == std::mem::discriminant(&wanted));
    match same_kind {
        Some(s) if *s == wanted => {}
        Some(s) => crate::wd_log!(
            Warn,
            "device selection {devices}: the model already runs as {s:?}; using it"
        ),
        None => {
            match &wanted {
                // A test or benchmark may have registered a model backend itself.
                Started::Model(_)
                    if crate::registry::backends()
                        .iter()
                        .any(|b| b.name() == "model") => {}
                Started::Model(settings) => (plug.start)(settings)?,
                Started::FakeUacce(dir) => {
                    crate::wd_log!(Warn, "devices = {devices}: test-only fake kernel");
                    (plug.fake_uacce)(dir)?
                }
                Started::FakeVfio(dir) => {
                    let start = FAKE_VFIO
                        .get()
                        .ok_or_else(|| Error::Config(format!("devices = {devices}: {NO_MODEL}")))?;
                    crate::wd_log!(Warn, "devices = {devices}: test-only fake vfio kernel");
                    start(dir)?
                }
            }
            started.push(wanted);
        }
    }
    Ok(devices.backends())
}

static UACCE_ABI: Mutex<Option<crate::uacce::Abi>> = Mutex::new(None);

/// The uacce ioctl numbering a configuration gave (the provider's `uacce_abi` key), for
/// hosts where `WD_UACCE_ABI` is not in the environment (an nginx worker sees only the
/// variables its `env` directives pass). The host's uacce backend is rebuilt with it; the
/// model's fake kernel (`fake-uacce:`) started afterwards takes it too
/// ([`uacce_abi`]). `WD_UACCE_ABI` in the environment wins.
pub fn set_uacce_abi(abi: crate::uacce::Abi) {
    *UACCE_ABI.lock().unwrap_or_else(|e| e.into_inner()) = Some(abi);
    if std::env::var("WD_UACCE_ABI").is_ok_and(|v| !v.trim().is_empty()) {
        return;
    }
    let started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    if started.iter().any(|s| matches!(s, Started::FakeUacce(_))) {
        crate::wd_log!(
            Warn,
            "uacce_abi = {abi}: the fake uacce kernel already runs with its numbering"
        );
        return;
    }
    // Builds the registry (with its host uacce backend) if nothing did yet, then swaps
    // that backend for one with the numbering fixed.
    let _ = crate::registry::backends();
    crate::registry::unregister("uacce");
    crate::registry::register(std::sync::Arc::new(
        crate::uacce::UacceBackend::from_env().with_abi(abi),
    ));
}

/// The numbering [`set_uacce_abi`] set, if any.
pub fn uacce_abi() -> Option<crate::uacce::Abi> {
    *UACCE_ABI.lock().unwrap_or_else(|e| e.into_inner())
}

static PROCESS: Mutex<Option<Devices>> = Mutex::new(None);

/// The selection of this process for consumers without a configuration file of their own
/// (compression, the C API, the `wd` command): [`set_process`]'s, else `WD_DEVICES`.
pub fn process() -> Result<Devices> {
    let mut g = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = g.as_ref() {
        return Ok(d.clone());
    }
    let d = Devices::from_env()?;
    *g = Some(d.clone());
    Ok(d)
}

/// Overrides `WD_DEVICES` for this process (the `wd` command's `--model`, tests).
pub fn set_process(devices: Devices) {
    *PROCESS.lock().unwrap_or_else(|e| e.into_inner()) = Some(devices);
}

/// [`process`]'s selection, activated with the environment's model settings.
pub fn activate_process() -> Result<(Devices, &'static [&'static str])> {
    let d = process()?;
    let backends = activate(&d, &model_settings_from_env())?;
    Ok((d, backends))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_meaning_of_each_value() {
        assert_eq!(Devices::parse("").unwrap(), Devices::Auto);
        assert_eq!(Devices::parse(" Auto ").unwrap(), Devices::Auto);
        assert_eq!(Devices::parse("UACCE").unwrap(), Devices::Uacce);
        assert_eq!(Devices::parse("model").unwrap(), Devices::Model);
        assert_eq!(Devices::parse("none").unwrap(), Devices::None);
        assert_eq!(
            Devices::parse("fake-uacce:/x/y").unwrap(),
            Devices::FakeUacce("/x/y".into())
        );
        assert!(Devices::parse("fake-uacce:").is_err());
        let e = Devices::parse("gpu").unwrap_err().to_string();
        assert!(e.contains("gpu") && e.contains(EXPECTED), "{e}");
        // auto is the host's devices, never the model.
        assert_eq!(Devices::Auto.backends(), &["uacce"]);
        assert_eq!(Devices::Model.backends(), &["model"]);
        assert!(Devices::None.backends().is_empty());
        assert_eq!(Devices::parse("vfio").unwrap().backends(), &["vfio"]);
        assert_eq!(
            Devices::parse("fake-vfio:/p").unwrap(),
            Devices::FakeVfio("/p".into())
        );
        assert!(Devices::parse("fake-vfio:").is_err());
        for v in [
            "auto",
            "uacce",
            "vfio",
            "model",
            "none",
            "fake-uacce:/d",
            "fake-vfio:/p",
        ] {
            assert_eq!(Devices::parse(v).unwrap().to_string(), v);
        }
    }

    #[test]
    fn activation_without_a_model_is_a_clear_error() {
        let e = activate(&Devices::Model, &[]).unwrap_err().to_string();
        assert!(e.contains("no device model"), "{e}");
        assert_eq!(activate(&Devices::Auto, &[]).unwrap(), &["uacce"]);
        assert!(activate(&Devices::None, &[]).unwrap().is_empty());
        assert!(model_settings_from(|_| Some("1".into())).is_empty());
    }
}
