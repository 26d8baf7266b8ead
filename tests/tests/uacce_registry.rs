//! The fake-kernel uacce backend in wd-core's registry, as the provider and `wd list` see
//! devices: most free instances first, isolated devices skipped, backend named `uacce`,
//! not a model. (Its own test binary: the registry is process-wide.)

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{key, policy};
use hisi_model::uacce_fake::ModelSide;
use wd_core::uacce::fake::FakeKernel;

#[test]
fn registry_finds_fake_kernel_devices() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/uacce");
    let side = Arc::new(ModelSide::default());
    let kernel = FakeKernel::from_fixture(root.join("isolated"), side.clone()).unwrap();
    wd_core::registry::register(Arc::new(kernel.backend(None)));

    let found = wd_core::registry::find("hisi_hpre", "rsa", &["uacce"]).unwrap();
    let names: Vec<&str> = found.iter().map(|d| d.info().name.as_str()).collect();
    assert_eq!(
        names,
        vec!["hisi_hpre-5"],
        "the isolated hisi_hpre-1 is skipped"
    );
    let d = &found[0];
    assert_eq!(d.backend().name(), "uacce");
    assert!(!d.backend().is_model());
    assert_eq!(d.info().api, "hisi_qm_v2");
    assert_eq!(d.info().flags, 1);
    assert_eq!(d.info().algorithms, vec!["rsa", "dh"]);
    assert_eq!(d.available_instances().unwrap(), 64);
    assert_eq!(
        d.info().dev_path.as_deref(),
        Some(std::path::Path::new("/dev/hisi_hpre-5"))
    );

    let mut q = hisi_hpre::open_queue(d, policy(10_000)).unwrap();
    assert_eq!(d.available_instances().unwrap(), 63);
    let k = key(1024);
    let m = k.message();
    assert_eq!(
        hisi_hpre::rsa(&mut q, &k.public(), &m).unwrap(),
        k.sw_public(&m)
    );
    assert_eq!(side.stats().completed_ok, 1);
    assert!(wd_core::registry::find("hisi_zip", "zlib", &["uacce"]).is_err());
}
