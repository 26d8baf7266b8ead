//! `wd list` shows how each device's queues reach memory (SVA, no-SVA/SS; IOVA on the
//! model) and, for a device no queue can be opened on, why — over the fake uacce kernel's
//! fixtures (`WD_DEVICES=fake-uacce:<dir>`).

use std::path::Path;
use std::process::Command;
use wd_tests::build::wd_command as wd_bin;

fn list(fixture: &str, env: &[(&str, &str)]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/uacce")
        .join(fixture);
    let out = Command::new(wd_bin())
        .arg("list")
        .env("WD_DEVICES", format!("fake-uacce:{}", dir.display()))
        .env_remove("WD_UACCE_ABI")
        .env("WD_PCI_ROOT", "/nonexistent")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

fn row<'a>(s: &'a str, dev: &str) -> &'a str {
    s.lines()
        .find(|l| l.starts_with(dev) && !l.contains("unusable:"))
        .unwrap_or_else(|| panic!("no row for {dev}:\n{s}"))
}

#[test]
fn wd_list_shows_each_devices_mode_and_why_it_is_unusable() {
    let s = list("kunpeng920", &[]);
    assert!(s.contains("MODE"), "{s}");
    assert!(row(&s, "hisi_hpre-1").contains(" SVA"), "{s}");

    let s = list("openeuler-nosva", &[("WD_UACCE_ABI", "mainline")]);
    assert!(row(&s, "hisi_hpre-0").contains("no-SVA/SS"), "{s}");
    assert!(row(&s, "hisi_zip-1").contains("no-SVA/SS"), "{s}");
    assert!(!s.contains("unusable"), "{s}");

    // Legacy openEuler 4.19: detected, no-SVA with the NOIOMMU flag.
    let s = list("openeuler-4.19-nosva", &[]);
    assert!(row(&s, "hisi_hpre-0").contains("no-SVA/SS"), "{s}");

    // Undetectable numbering: unusable, and the line says what to set.
    let s = list("openeuler-nosva", &[]);
    assert!(row(&s, "hisi_hpre-0").contains("unusable"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.starts_with("hisi_hpre-0: unusable:") && l.contains("WD_UACCE_ABI")),
        "{s}"
    );

    // Isolated: unusable with the reason.
    let s = list("isolated", &[]);
    assert!(s.contains("unusable: ") && s.contains("isolated"), "{s}");

    // A ZIP VF bound to vfio-pci in an IOMMU group, an HPRE VF in a noiommu group.
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    for (bdf, id, group) in [
        ("0000:75:00.1", "0xa251", "7"),
        ("0000:79:00.1", "0xa259", "9"),
    ] {
        let d = root.join("devices").join(bdf);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vendor"), "0x19e5\n").unwrap();
        std::fs::write(d.join("device"), format!("{id}\n")).unwrap();
        let drv = root.join("drivers/vfio-pci");
        std::fs::create_dir_all(&drv).unwrap();
        std::os::unix::fs::symlink(&drv, d.join("driver")).unwrap();
        let g = root.join("groups").join(group);
        std::fs::create_dir_all(&g).unwrap();
        std::os::unix::fs::symlink(&g, d.join("iommu_group")).unwrap();
    }
    std::fs::create_dir_all(root.join("dev-vfio")).unwrap();
    std::fs::write(root.join("dev-vfio/noiommu-9"), "").unwrap();
    let pci = root.join("devices").display().to_string();
    let vfio = root.join("dev-vfio").display().to_string();
    let s = list(
        "kunpeng920",
        &[
            ("WD_PCI_ROOT", pci.as_str()),
            ("WD_VFIO_ROOT", vfio.as_str()),
        ],
    );
    let zip = row(&s, "0000:75:00.1");
    assert!(zip.contains("hisi_zip(VF)") && zip.contains("VFIO"), "{s}");
    assert!(row(&s, "0000:79:00.1").contains("NOIOMMU"), "{s}");
    assert!(
        s.lines().any(|l| l.starts_with("0000:75:00.1: unusable:")
            && l.contains("not selected: WD_DEVICES=vfio")),
        "{s}"
    );
}

/// With `WD_DEVICES=fake-vfio:<pci tree>` the VFs are wd devices of the `vfio` backend:
/// each brought up over the fake vfio kernel (its queue count read through the mailbox),
/// shown with its mode; a PF bound to vfio-pci is listed as not offered, with the reason.
#[test]
fn wd_list_shows_vfio_devices_with_their_mode() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    for (bdf, id, group) in [
        ("0000:75:00.1", "0xa251", "7"),
        ("0000:79:00.1", "0xa259", "9"),
        ("0000:79:00.0", "0xa258", "11"),
        ("0000:71:00.1", "0xa256", "12"),
    ] {
        let d = root.join("devices").join(bdf);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vendor"), "0x19e5\n").unwrap();
        std::fs::write(d.join("device"), format!("{id}\n")).unwrap();
        std::fs::write(d.join("revision"), "0x21\n").unwrap();
        let drv = root.join("drivers/vfio-pci");
        std::fs::create_dir_all(&drv).unwrap();
        std::os::unix::fs::symlink(&drv, d.join("driver")).unwrap();
        let g = root.join("groups").join(group);
        std::fs::create_dir_all(&g).unwrap();
        if group == "9" {
            std::fs::write(g.join("name"), "vfio-noiommu\n").unwrap();
        }
        std::os::unix::fs::symlink(&g, d.join("iommu_group")).unwrap();
    }
    let out = Command::new(wd_bin())
        .arg("list")
        .env(
            "WD_DEVICES",
            format!("fake-vfio:{}", root.join("devices").display()),
        )
        .env("WD_PCI_ROOT", "/nonexistent")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 0000:75:00.1 = routing ID 0x7501, 0000:79:00.1 = 0x7901.
    let zip = row(&s, "hisi_zip-29953");
    assert!(zip.contains("vfio") && zip.contains("hisi_qm_v2"), "{s}");
    assert!(zip.contains(" VFIO") && zip.contains(" 16 "), "{s}");
    let hpre = row(&s, "hisi_hpre-30977");
    assert!(hpre.contains("NOIOMMU") && hpre.contains("rsa"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.starts_with("0000:79:00.0: unusable:") && l.contains("physical function")),
        "{s}"
    );
    assert!(
        s.lines()
            .any(|l| l.starts_with("0000:71:00.1: unusable:") && l.contains("no queue manager")),
        "{s}"
    );
}
