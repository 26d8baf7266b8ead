//! Full TLS handshakes per second against stock nginx with wd on the device model (once
//! with each `poll_mode`: hybrid, the default, and event) and the same nginx with the
//! default provider, in one run (each round visits all three, in a rotating order, so all
//! see the same machine conditions). Bounded: `--rounds R --seconds S` (default 3 × 4 s).
//!
//! `cargo run --release -p wd-tests --example nginx_load -- [--rounds R] [--seconds S]`
//! (or `bench/nginx-handshakes.sh`). Exits non-zero if any handshake failed.

use std::process::Command;
use std::time::Instant;

use wd_tests::nginx::{Crypto, Nginx};
use wd_tests::ossl::read_stats;

/// One bounded `openssl s_time -new` run: (handshakes, wall seconds, failed).
fn s_time(port: u16, seconds: u32) -> (u64, f64, bool) {
    let t = Instant::now();
    let out = Command::new("openssl")
        .env_remove("OPENSSL_CONF")
        .env_remove("OPENSSL_MODULES")
        .args(["s_time", "-new", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-time", &seconds.to_string()])
        .output()
        .expect("run openssl s_time");
    let wall = t.elapsed().as_secs_f64();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let n = text
        .lines()
        .find(|l| l.contains("connections in") && l.contains("real seconds"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let failed = !out.status.success() || text.contains("ERROR") || n == 0;
    if failed {
        eprintln!("s_time on port {port} reported a failure:\n{text}");
    }
    (n, wall, failed)
}

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
            let (n, t, failed) = s_time(sides[i].1.port, seconds);
            failures += failed as u32;
            done[i].0 += n;
            done[i].1 += t;
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
