//! The built provider and OpenSSL configuration for tests.

use std::path::{Path, PathBuf};

/// The repository root (the workspace this crate is in).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `libwd_provider.so` as cargo built it for the running test's profile.
pub fn provider_so() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let mut dirs = Vec::new();
    let mut d = exe.parent();
    while let Some(p) = d {
        dirs.push(p.to_path_buf());
        if p.file_name()
            .is_some_and(|n| n == "release" || n == "debug")
        {
            dirs.push(p.join("deps"));
            break;
        }
        d = p.parent();
    }
    for dir in &dirs {
        let so = dir.join("libwd_provider.so");
        if so.is_file() {
            return so;
        }
    }
    panic!(
        "libwd_provider.so not found near {} (searched {:?}): build it with `cargo build --release -p wd-provider`",
        exe.display(),
        dirs
    );
}

/// Makes `dir/wd.so` point at the built provider; returns `dir` for `OPENSSL_MODULES`.
pub fn modules_dir(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("modules dir");
    let link = dir.join("wd.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(provider_so(), &link).expect("symlink wd.so");
    dir.to_path_buf()
}

/// `openssl.cnf.d/<name>` of the repository.
pub fn cnf(name: &str) -> PathBuf {
    repo_root().join("openssl.cnf.d").join(name)
}

/// A self-signed RSA certificate and key for `localhost`, made with the default provider.
pub fn make_cert(dir: &Path, bits: u32) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("rsa{bits}.crt"));
    let key = dir.join(format!("rsa{bits}.key"));
    let out = std::process::Command::new("openssl")
        .env_remove("OPENSSL_CONF")
        .env_remove("OPENSSL_MODULES")
        .args(["req", "-x509", "-newkey"])
        .arg(format!("rsa:{bits}"))
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl req");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// Counter values of one process's stats file, by the provider's names.
#[derive(Debug, Clone)]
pub struct ProcessStats {
    /// The process.
    pub pid: u32,
    /// Values in `wd_provider::stats::NAMES` order.
    pub values: Vec<u64>,
}

impl ProcessStats {
    /// The named counter (0 if unknown).
    pub fn get(&self, name: &str) -> u64 {
        wd_provider::stats::get(&self.values, name).unwrap_or(0)
    }
}

/// Every process's counters in a stats directory.
pub fn read_stats(dir: &Path) -> Vec<ProcessStats> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "stats") {
                if let Ok((pid, values)) = wd_provider::stats::read_file(&p) {
                    out.push(ProcessStats { pid, values });
                }
            }
        }
    }
    out.sort_by_key(|s| s.pid);
    out
}

/// What a set of concurrent `openssl s_time -new` runs against one port did.
#[derive(Debug, Default, Clone, Copy)]
pub struct HandshakeLoad {
    /// Full handshakes the runs reported.
    pub handshakes: u64,
    /// Wall seconds from the first start to the last end.
    pub wall: f64,
    /// Runs that failed (exit status, an `ERROR` line, or no count); each is printed.
    pub failed_runs: u32,
}

/// `clients` concurrent, bounded `openssl s_time -new` runs of `seconds` each against
/// 127.0.0.1:`port`, with the system's OpenSSL configuration (the client side never loads
/// wd).
pub fn s_time(port: u16, clients: u32, seconds: u32) -> HandshakeLoad {
    let t = std::time::Instant::now();
    let runs: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                std::process::Command::new("openssl")
                    .env_remove("OPENSSL_CONF")
                    .env_remove("OPENSSL_MODULES")
                    .args(["s_time", "-new", "-connect"])
                    .arg(format!("127.0.0.1:{port}"))
                    .args(["-time", &seconds.to_string()])
                    .output()
            })
        })
        .collect();
    let mut load = HandshakeLoad::default();
    for run in runs {
        let (ok, text) = match run.join() {
            Ok(Ok(out)) => (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            ),
            Ok(Err(e)) => (false, format!("cannot run openssl s_time: {e}")),
            Err(_) => (false, "the s_time thread panicked".to_string()),
        };
        let n: u64 = text
            .lines()
            .find(|l| l.contains("connections in") && l.contains("real seconds"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        if !ok || text.contains("ERROR") || n == 0 {
            eprintln!("s_time on port {port} reported a failure:\n{text}");
            load.failed_runs += 1;
        }
        load.handshakes += n;
    }
    load.wall = t.elapsed().as_secs_f64();
    load
}
