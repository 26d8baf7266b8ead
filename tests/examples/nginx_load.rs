//! Full TLS handshakes per second against stock nginx with wd on the device model and the
//! same nginx with the default provider, in one run (rounds alternate between the two so
//! both see the same machine conditions). Bounded: `--rounds R --seconds S` (default 3 × 4 s).
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
    let t1 = tempfile::tempdir().unwrap();
    let t2 = tempfile::tempdir().unwrap();
    let wd = Nginx::start(t1.path(), Crypto::WdModel { queues: 16 }, 2, &[2048]);
    let sw = Nginx::start(t2.path(), Crypto::Default, 2, &[2048]);
    let (mut wd_n, mut wd_t, mut sw_n, mut sw_t, mut failures) = (0u64, 0f64, 0u64, 0f64, 0);
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_wd in order {
            let (n, t, failed) = s_time(if is_wd { wd.port } else { sw.port }, seconds);
            failures += failed as u32;
            if is_wd {
                wd_n += n;
                wd_t += t;
            } else {
                sw_n += n;
                sw_t += t;
            }
        }
    }
    let stats = read_stats(&wd.stats_dir);
    let total = |name: &str| stats.iter().map(|s| s.get(name)).sum::<u64>();
    let (wd_rate, sw_rate) = (wd_n as f64 / wd_t, sw_n as f64 / sw_t);
    println!("nginx 2 workers, RSA-2048, openssl s_time -new, {rounds} rounds x {seconds} s each, alternating");
    println!("  default provider : {sw_n:6} handshakes, {sw_rate:8.1} /s");
    println!("  wd on the model  : {wd_n:6} handshakes, {wd_rate:8.1} /s");
    println!("  ratio wd/default : {:.3}", wd_rate / sw_rate);
    println!(
        "  wd counters      : offload_private={} fallback_no_queue={} fallback_device_error={} device_errors={}",
        total("offload_private"),
        total("fallback_no_queue"),
        total("fallback_device_error"),
        total("device_errors")
    );
    println!("  failed runs      : {failures}");
    drop(wd);
    drop(sw);
    if failures > 0 {
        std::process::exit(1);
    }
}
