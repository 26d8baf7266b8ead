//! Full TLS handshakes per second against stock nginx with wd on the device model (once
//! with each `poll_mode`: hybrid, the default, and event) and the same nginx with the
//! default provider, in one run (each round visits all three, in a rotating order, so all
//! see the same machine conditions). Bounded: `--rounds R --seconds S` (default 3 × 4 s).
//!
//! `cargo run --release -p wd-tests --example nginx_load -- [--rounds R] [--seconds S]`
//! (or `bench/nginx-handshakes.sh`). Exits non-zero if any handshake failed.

use wd_tests::nginx::{Crypto, Nginx};
use wd_tests::ossl::{read_stats, s_time};

fn main() {
    let mut rounds = 3u32;
    let mut seconds = 4u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse().ok());
        match (a.as_str(), v) {
            ("--rounds", Some(v)) => rounds = v,
            ("--seconds", Some(v)) => seconds = v,
            _ => {
                eprintln!("usage: nginx_load [--rounds R] [--seconds S]");
                std::process::exit(2);
            }
        }
    }
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let wd_model = |poll_mode| Crypto::WdModel {
        queues: 16,
        poll_mode: Some(poll_mode),
    };
    let sides = [
        (
            "default provider",
            Nginx::start(dirs[0].path(), Crypto::Default, 2, &[2048]),
        ),
        (
            "wd, poll_mode=hybrid",
            Nginx::start(dirs[1].path(), wd_model("hybrid"), 2, &[2048]),
        ),
        (
            "wd, poll_mode=event",
            Nginx::start(dirs[2].path(), wd_model("event"), 2, &[2048]),
        ),
    ];
    let mut done = [(0u64, 0f64); 3];
    let mut failures = 0;
    for r in 0..rounds as usize {
        for k in 0..sides.len() {
            let i = (r + k) % sides.len();
            let load = s_time(sides[i].1.port, 1, seconds);
            failures += load.failed_runs;
            done[i].0 += load.handshakes;
            done[i].1 += load.wall;
        }
    }
    let rate = |i: usize| done[i].0 as f64 / done[i].1;
    println!("nginx 2 workers, RSA-2048, openssl s_time -new, {rounds} rounds x {seconds} s each, rotating");
    for (i, (name, side)) in sides.iter().enumerate() {
        print!(
            "  {name:21}: {:6} handshakes, {:8.1} /s",
            done[i].0,
            rate(i)
        );
        if i > 0 {
            let stats = read_stats(&side.stats_dir);
            let total = |name: &str| stats.iter().map(|s| s.get(name)).sum::<u64>();
            print!(
                " | ratio to default {:.3} | offload_private={} fallback_no_queue={} fallback_device_error={} device_errors={}",
                rate(i) / rate(0),
                total("offload_private"),
                total("fallback_no_queue"),
                total("fallback_device_error"),
                total("device_errors")
            );
        }
        println!();
    }
    println!("  failed runs          : {failures}");
    drop(sides);
    if failures > 0 {
        std::process::exit(1);
    }
}
