//! Idle engine threads use no CPU: they block, they do not spin on idle queues.
//! (Its own test binary, so no other test's threads run meanwhile.)

mod common;

use std::time::Duration;

use common::*;
use openssl::rsa::Rsa;

/// utime + stime in clock ticks of every model engine thread of this process.
fn engine_cpu_ticks() -> (usize, u64) {
    let mut threads = 0;
    let mut ticks = 0;
    for e in std::fs::read_dir("/proc/self/task").unwrap() {
        let p = e.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(p.join("comm")) else {
            continue;
        };
        if !comm.starts_with("wdm-") {
            continue;
        }
        let stat = std::fs::read_to_string(p.join("stat")).unwrap();
        // Fields after the parenthesised comm: state is field 3; utime 14, stime 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        threads += 1;
    }
    (threads, ticks)
}

#[test]
fn idle_engine_threads_use_no_cpu() {
    let m = model_with(|c| {
        c.engines = 2;
        c.hpre_devices = 2;
    });
    let mut r = m.open(0);
    let kb = key_blocks(&Rsa::generate(1024).unwrap());
    let key = r.map(kb.public.len());
    key.write(0, &kb.public);
    let inb = r.map(kb.k);
    inb.write(0, &message(kb.k, 0));
    let out = r.map(kb.k);
    for _ in 0..20 {
        r.submit(&hpre_sqe(0, kb.k, key.iova, inb.iova, out.iova, 1));
        r.wait_cqe(WAIT).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50)); // past the post-completion spin
    let (n0, t0) = engine_cpu_ticks();
    assert_eq!(n0, 4, "2 devices x 2 engine threads");
    std::thread::sleep(Duration::from_millis(200));
    let (n1, t1) = engine_cpu_ticks();
    assert_eq!(n1, 4);
    assert_eq!(t1, t0, "idle engine threads consumed CPU ticks");
    // And they still wake up for work.
    r.submit(&hpre_sqe(0, kb.k, key.iova, inb.iova, out.iova, 1));
    assert!(r.wait_cqe(WAIT).is_some());
    drop(r);
    drop(m);
    assert_eq!(engine_cpu_ticks().0, 0, "threads stop with their backend");
}
