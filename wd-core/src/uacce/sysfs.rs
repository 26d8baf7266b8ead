//! Device discovery from `/sys/class/uacce` (docs/hardware-interface.md §1.2), with the
//! root overridable so tests can use fixture trees. Every read goes through the backend's
//! seam ([`UacceSys`]).

use std::io;
use std::path::{Path, PathBuf};

use crate::device::DeviceInfo;
use crate::error::{Error, Result};
use crate::uacce::sys::{RealSys, UacceSys};

/// The sysfs class directory of uacce on a real host.
pub const DEFAULT_SYSFS_ROOT: &str = "/sys/class/uacce";
/// Where the char devices live on a real host.
pub const DEFAULT_DEV_ROOT: &str = "/dev";

/// Reads attribute `name` of `dir` without its trailing newline; `None` if absent (hidden).
pub fn read_attr(sys: &dyn UacceSys, dir: &Path, name: &str) -> Result<Option<String>> {
    match sys.read_file(&dir.join(name)) {
        Ok(s) => Ok(Some(s.trim_end_matches('\n').to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", dir.join(name).display()), e)),
    }
}

fn parse_num<T: std::str::FromStr>(dir: &Path, name: &str, s: &str) -> Result<T> {
    s.trim().parse::<T>().map_err(|_| {
        Error::Config(format!(
            "{}: attribute {name} is not a number: {s:?}",
            dir.display()
        ))
    })
}

/// Reads one device directory. `dev_root` is where its char device node lives.
pub fn read_device(dir: &Path, dev_root: &Path) -> Result<DeviceInfo> {
    read_device_with(&RealSys, dir, dev_root)
}

/// [`read_device`] through a seam.
pub fn read_device_with(sys: &dyn UacceSys, dir: &Path, dev_root: &Path) -> Result<DeviceInfo> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Config(format!("bad uacce entry {}", dir.display())))?
        .to_string();
    let need = |attr: &str| -> Result<String> {
        read_attr(sys, dir, attr)?
            .ok_or_else(|| Error::Config(format!("{}: missing attribute {attr}", dir.display())))
    };
    let api = need("api")?;
    let flags = parse_num::<u32>(dir, "flags", &need("flags")?)?;
    let algorithms = read_attr(sys, dir, "algorithms")?
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    // Region sizes are hidden when zero.
    let mmio_size = match read_attr(sys, dir, "region_mmio_size")? {
        Some(s) => parse_num::<usize>(dir, "region_mmio_size", &s)?,
        None => 0,
    };
    let dus_size = match read_attr(sys, dir, "region_dus_size")? {
        Some(s) => parse_num::<usize>(dir, "region_dus_size", &s)?,
        None => 0,
    };
    let isolated = match read_attr(sys, dir, "isolate")? {
        Some(s) => parse_num::<u32>(dir, "isolate", &s)? != 0,
        None => false,
    };
    // Mainline: the parent PCI device's numa_node; older variants: node_id. Negative = 0.
    let numa_node = match read_attr(sys, &dir.join("device"), "numa_node")? {
        Some(s) => parse_num::<i32>(dir, "device/numa_node", &s)?,
        None => match read_attr(sys, dir, "node_id")? {
            Some(s) => parse_num::<i32>(dir, "node_id", &s)?,
            None => 0,
        },
    }
    .max(0);
    Ok(DeviceInfo {
        dev_path: Some(dev_root.join(&name)),
        name,
        api,
        algorithms,
        flags,
        numa_node,
        mmio_size,
        dus_size,
        isolated,
    })
}

/// Every device under `root` (an absent root means no uacce devices), sorted by name.
/// Devices whose attributes cannot be read are skipped with a warning.
pub fn discover(root: &Path, dev_root: &Path) -> Result<Vec<DeviceInfo>> {
    discover_with(&RealSys, root, dev_root)
}

/// [`discover`] through a seam.
pub fn discover_with(sys: &dyn UacceSys, root: &Path, dev_root: &Path) -> Result<Vec<DeviceInfo>> {
    let entries = match sys.read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("read {}", root.display()), e)),
    };
    let mut out = Vec::new();
    for path in entries {
        let path: PathBuf = path;
        match read_device_with(sys, &path, dev_root) {
            Ok(d) => out.push(d),
            Err(e) => crate::wd_log!(Warn, "skipping {}: {e}", path.display()),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads `available_instances` of the device `name` under `root`.
pub fn available_instances(root: &Path, name: &str) -> Result<u32> {
    available_instances_with(&RealSys, root, name)
}

/// [`available_instances`] through a seam.
pub fn available_instances_with(sys: &dyn UacceSys, root: &Path, name: &str) -> Result<u32> {
    let dir = root.join(name);
    let s = read_attr(sys, &dir, "available_instances")?
        .ok_or_else(|| Error::DeviceGone(format!("{}: no available_instances", dir.display())))?;
    parse_num(&dir, "available_instances", &s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, name: &str, v: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), v).unwrap();
    }

    #[test]
    fn reads_attributes_of_hw_spec_1_2() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("hisi_hpre-3");
        write(&d, "api", "hisi_qm_v2\n");
        write(&d, "flags", "1\n");
        write(&d, "algorithms", "rsa\ndh\n");
        write(&d, "available_instances", "7\n");
        write(&d, "region_mmio_size", "8192\n");
        write(&d, "region_dus_size", "86016\n");
        write(&d, "isolate", "0\n");
        write(&d.join("device"), "numa_node", "-1\n");
        let z = t.path().join("hisi_zip-0");
        write(&z, "api", "hisi_qm_v3\n");
        write(&z, "flags", "1\n");
        write(&z, "algorithms", "zlib\ngzip\ndeflate\n");
        write(&z, "isolate", "1\n");
        write(&z.join("device"), "numa_node", "1\n");

        let devs = discover(t.path(), Path::new("/dev")).unwrap();
        assert_eq!(devs.len(), 2);
        let h = &devs[0];
        assert_eq!(h.name, "hisi_hpre-3");
        assert_eq!(h.driver(), "hisi_hpre");
        assert_eq!(h.api, "hisi_qm_v2");
        assert_eq!(h.algorithms, vec!["rsa", "dh"]);
        assert_eq!(h.flags, 1);
        assert_eq!(h.numa_node, 0, "negative NUMA node reads as 0");
        assert_eq!(h.mmio_size, 8192);
        assert_eq!(h.dus_size, 86016);
        assert!(!h.isolated);
        assert_eq!(h.dev_path.as_deref(), Some(Path::new("/dev/hisi_hpre-3")));
        assert_eq!(available_instances(t.path(), "hisi_hpre-3").unwrap(), 7);
        let z = &devs[1];
        assert!(z.isolated);
        assert_eq!(z.numa_node, 1);
        assert_eq!(z.mmio_size, 0, "hidden region size reads as 0");
        assert!(z.supports("deflate"));
    }

    #[test]
    fn absent_root_is_no_devices_and_bad_number_is_skipped() {
        let t = tempfile::tempdir().unwrap();
        assert!(discover(&t.path().join("nope"), Path::new("/dev"))
            .unwrap()
            .is_empty());
        let d = t.path().join("hisi_zip-1");
        write(&d, "api", "hisi_qm_v2\n");
        write(&d, "flags", "one\n");
        assert!(read_device(&d, Path::new("/dev")).is_err());
        assert!(discover(t.path(), Path::new("/dev")).unwrap().is_empty());
    }
}
