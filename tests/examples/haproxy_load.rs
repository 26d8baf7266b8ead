//! Full TLS handshakes per second through stock HAProxy (one thread, `ssl-mode-async`) with
//! wd on the device model (2 engines) and with the default provider, plus wd without
//! `ssl-mode-async` for reference, in one run: each round visits every side in a rotating
//! order, `--clients C` concurrent `openssl s_time -new` clients for `--seconds S` each.
//! Bounded: `--rounds R` (default 3 × 4 s, 4 clients).
//!
//! `cargo run --release -p wd-tests --example haproxy_load -- [--rounds R] [--seconds S]
//! [--clients C]` (or `bench/haproxy-handshakes.sh`). Exits non-zero if any handshake failed.

use wd_tests::haproxy::Haproxy;
use wd_tests::nginx::Crypto;
use wd_tests::ossl::{read_stats, s_time};

fn main() {
    let (mut rounds, mut seconds, mut clients) = (3u32, 4u32, 4u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse().ok());
        match (a.as_str(), v) {
            ("--rounds", Some(v)) => rounds = v,
            ("--seconds", Some(v)) => seconds = v,
            ("--clients", Some(v)) => clients = v,
            _ => {
                eprintln!("usage: haproxy_load [--rounds R] [--seconds S] [--clients C]");
                std::process::exit(2);
            }
        }
    }
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let wd = Crypto::WdModel {
        queues: 16,
        poll_mode: None,
    };
    let engines = [("WD_MODEL_ENGINES", "2")];
    let mut sides = [
        (
            "default, ssl-mode-async",
            Haproxy::start(dirs[0].path(), Crypto::Default, true, 1, &[]),
        ),
        (
            "wd, ssl-mode-async",
            Haproxy::start(dirs[1].path(), wd.clone(), true, 1, &engines),
        ),
        (
            "wd, synchronous",
            Haproxy::start(dirs[2].path(), wd, false, 1, &engines),
        ),
    ];
    let mut done = [(0u64, 0f64); 3];
    let mut failures = 0;
    for r in 0..rounds as usize {
        for k in 0..sides.len() {
            let i = (r + k) % sides.len();
            let load = s_time(sides[i].1.port, clients, seconds);
            failures += load.failed_runs;
            done[i].0 += load.handshakes;
            done[i].1 += load.wall;
        }
    }
    let rate = |i: usize| done[i].0 as f64 / done[i].1;
    println!(
        "HAProxy 1 thread, RSA-2048, {clients} concurrent openssl s_time -new clients, {rounds} rounds x {seconds} s each, rotating"
    );
    for (i, (name, side)) in sides.iter_mut().enumerate() {
        print!(
            "  {name:24}: {:6} handshakes, {:8.1} /s",
            done[i].0,
            rate(i)
        );
        if i > 0 {
            let stats = read_stats(&side.stats_dir);
            let total = |name: &str| stats.iter().map(|s| s.get(name)).sum::<u64>();
            print!(
                " | ratio to default {:.3} | offload_private={} async_submitted={} async_pauses={} async_coalesced_waits={} fallback_no_queue={} fallback_device_error={}",
                rate(i) / rate(0),
                total("offload_private"),
                total("async_submitted"),
                total("async_pauses"),
                total("async_coalesced_waits"),
                total("fallback_no_queue"),
                total("fallback_device_error")
            );
        }
        println!();
        if !side.alive() {
            println!("  {name}: haproxy died: {}", side.stop());
            failures += 1;
        }
    }
    println!("  failed client runs      : {failures}");
    drop(sides);
    if failures > 0 {
        std::process::exit(1);
    }
}
