//! The model as a binary plugs it into wd-core's device selection ([`wd_core::select`]):
//! `hisi_model::plug()` at the top of a program (or test) that carries the model makes
//! `devices = model` and `WD_DEVICES=fake-uacce:<dir>` work there. Drivers and the provider
//! never name the model; only what plugs it in does.

use std::path::Path;
use std::sync::Arc;

use wd_core::select::{ModelPlug, ModelSettings};
use wd_core::Result;

use crate::config::{ModelConfig, KEYS};

/// The model's defaults overlaid with `settings` (the model's defaults are those of an
/// empty environment: one HPRE and one ZIP device).
fn config(settings: &ModelSettings) -> Result<ModelConfig> {
    let mut cfg = ModelConfig::from_lookup(|_| None)?;
    for (k, v) in settings {
        cfg.set(k, v)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn start(settings: &ModelSettings) -> Result<()> {
    // Registered for the life of the process.
    crate::register(config(settings)?).map(drop)
}

fn fake_uacce(dir: &Path) -> Result<()> {
    let side = Arc::new(crate::uacce_fake::ModelSide::default());
    let kernel = wd_core::uacce::fake::FakeKernel::from_fixture(dir, side)
        .map_err(|e| wd_core::Error::Config(format!("fake kernel over {}: {e}", dir.display())))?;
    // The overrides a real host's uacce backend takes (UacceBackend::from_env).
    // ... or, without the variable, the numbering a configuration gave (`uacce_abi`).
    let abi = match std::env::var("WD_UACCE_ABI") {
        Ok(v) if !v.trim().is_empty() => Some(v.parse().map_err(wd_core::Error::Config)?),
        _ => wd_core::select::uacce_abi(),
    };
    let mut backend = kernel.backend(abi);
    if let Ok(v) = std::env::var("WD_SS_SIZE") {
        if !v.trim().is_empty() {
            backend = backend.with_static_share_size(wd_core::uacce::kernel::parse_ss_size(&v)?);
        }
    }
    wd_core::registry::unregister("uacce");
    wd_core::registry::register(Arc::new(backend));
    Ok(())
}

/// Plugs the model into this process's device selection (idempotent).
pub fn plug() {
    wd_core::select::plug_model(ModelPlug {
        keys: KEYS,
        check: |s| config(s).map(drop),
        start,
        fake_uacce,
    });
    wd_core::select::plug_fake_vfio(crate::vfio_fake::start_fake_vfio);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_without_starting() {
        plug();
        let p = wd_core::select::model_plug().unwrap();
        (p.check)(&[("queues".into(), "4".into())]).unwrap();
        let e = (p.check)(&[("queues".into(), "many".into())]).unwrap_err();
        assert!(e.to_string().contains("queues"), "{e}");
        assert!((p.check)(&[("colour".into(), "red".into())]).is_err());
    }
}
