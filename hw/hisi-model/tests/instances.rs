//! Available instances are shared by every process and backend using one instance
//! directory: a queue holds a `flock`ed slot file while it is open.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hisi_model::{ModelBackend, ModelConfig};
use wd_core::{Backend, Error, QueueRequest};

const HOLD_ENV: &str = "WD_MODEL_TEST_HOLD_DIR";

/// The tests of this file run one at a time: one of them spawns a child process, and
/// between fork and exec a child holds a copy of every descriptor of the parent (close-on-
/// exec ones too), so a slot another test has just released can look taken for a moment.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn opening_takes_an_instance_and_releasing_returns_it() {
    let _serial = serial();
    let m = model_with(|c| c.queues = 3);
    let avail = || m.backend.available_instances(&m.dev).unwrap();
    assert_eq!(avail(), 3);
    let a = m.open(0);
    assert_eq!(avail(), 2);
    let b = m.open(0);
    let c = m.open(0);
    assert_eq!(avail(), 0);
    let mut qids = vec![a.qid, b.qid, c.qid];
    qids.sort();
    assert_eq!(qids, vec![0, 1, 2]);
    let e = m
        .backend
        .open_queue(&m.dev, QueueRequest { qc_type: 0 })
        .unwrap_err();
    assert!(matches!(e, Error::NoFreeQueue(_)), "{e}");
    b.q.release().unwrap();
    assert_eq!(avail(), 1);
    b.q.release().unwrap();
    assert_eq!(avail(), 1);
    drop(a); // drop releases too
    assert_eq!(avail(), 2);
    let d = m.open(0);
    assert!(d.qid == 0 || d.qid == 1);
    drop(b);
    drop(c);
    drop(d);
    assert_eq!(avail(), 3);
}

#[test]
fn two_backends_on_one_directory_share_the_limit() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig {
        queues: 2,
        ..config(&dir)
    };
    let b1 = ModelBackend::new(cfg.clone()).unwrap();
    let b2 = ModelBackend::new(cfg).unwrap();
    let dev = b1.devices().unwrap().remove(0);
    assert_eq!(b2.devices().unwrap()[0], dev);
    let q1 = b1.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap();
    assert_eq!(b2.available_instances(&dev).unwrap(), 1);
    let q2 = b2.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap();
    assert_ne!(q1.info().qid, q2.info().qid);
    assert_eq!(b1.available_instances(&dev).unwrap(), 0);
    assert!(matches!(
        b1.open_queue(&dev, QueueRequest { qc_type: 0 }),
        Err(Error::NoFreeQueue(_))
    ));
    q2.release().unwrap();
    assert_eq!(b1.available_instances(&dev).unwrap(), 1);
    drop(q1);
    assert_eq!(b2.available_instances(&dev).unwrap(), 2);
}

#[test]
fn unknown_device_is_refused() {
    let _serial = serial();
    let m = model();
    let mut other = m.dev.clone();
    other.name = "hisi_hpre-1".into();
    assert!(matches!(
        m.backend.available_instances(&other),
        Err(Error::NoDevice(_))
    ));
    assert!(matches!(
        m.backend.open_queue(&other, QueueRequest { qc_type: 0 }),
        Err(Error::NoDevice(_))
    ));
}

/// Not a test on its own: the child process of `a_killed_process_frees_its_slot`.
#[test]
fn helper_hold_a_slot() {
    let _serial = serial();
    let Ok(dir) = std::env::var(HOLD_ENV) else {
        return;
    };
    let cfg = ModelConfig {
        instance_dir: dir.into(),
        ..ModelConfig::default()
    };
    let b = ModelBackend::new(cfg).unwrap();
    let dev = b.devices().unwrap().remove(0);
    let _q = b.open_queue(&dev, QueueRequest { qc_type: 0 }).unwrap();
    println!("holding a slot");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_process_frees_its_slot() {
    let _serial = serial();
    let m = model();
    let avail = || m.backend.available_instances(&m.dev).unwrap();
    assert_eq!(avail(), 16);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "helper_hold_a_slot",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, m.dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let held = lines.any(|l| l.map(|l| l.contains("holding a slot")).unwrap_or(false));
    assert!(held, "child did not report holding a slot");
    assert_eq!(avail(), 15);
    child.kill().unwrap();
    child.wait().unwrap();
    let t = Instant::now();
    while avail() != 16 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(avail(), 16);
}
