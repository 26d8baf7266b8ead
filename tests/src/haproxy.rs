//! Stock HAProxy as a test fixture: one TLS frontend on 127.0.0.1 with an RSA-2048
//! certificate answering every request itself (`http-request return`), optionally with
//! `ssl-mode-async` in its global section, OpenSSL configured only through `OPENSSL_CONF`.
//! The fixture always stops HAProxy when dropped, also when a test panics.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nginx::{free_port, Crypto};
use crate::ossl;

/// Finds haproxy, installing Debian's package when it is missing and we are root.
pub fn haproxy_binary() -> PathBuf {
    let p = Path::new("/usr/sbin/haproxy");
    if p.is_file() {
        return p.to_path_buf();
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let ok = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null && (systemctl disable --now haproxy >/dev/null 2>&1 || service haproxy stop >/dev/null 2>&1 || true)"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok && p.is_file() {
            return p.to_path_buf();
        }
    }
    panic!("haproxy is not installed and could not be installed (run scripts/setup.sh as root)");
}

/// A running HAProxy.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    /// Its directory (config, certificate, stats, model slots).
    pub dir: PathBuf,
    /// The TLS frontend's port.
    pub port: u16,
    /// Where the provider keeps per-process counters.
    pub stats_dir: PathBuf,
}

impl Haproxy {
    /// Starts HAProxy with `threads` threads, `ssl-mode-async` when `async_mode`, and
    /// `crypto`; `env` adds variables (model knobs).
    pub fn start(
        dir: &Path,
        crypto: Crypto,
        async_mode: bool,
        threads: u32,
        env: &[(&str, &str)],
    ) -> Haproxy {
        let haproxy = haproxy_binary();
        let stats_dir = dir.join("stats");
        let model_dir = dir.join("model");
        std::fs::create_dir_all(&stats_dir).unwrap();
        std::fs::create_dir_all(&model_dir).unwrap();
        let (cert, key) = ossl::make_cert(dir, 2048);
        let pem = dir.join("rsa2048.pem");
        let both =
            std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap();
        std::fs::write(&pem, both).unwrap();
        let port = free_port();
        let conf = format!(
            "global\n    {async_line}nbthread {threads}\n    maxconn 4000\n    log stderr local0 warning\n\
             defaults\n    mode http\n    timeout connect 5s\n    timeout client 20s\n    timeout server 20s\n\
             frontend tls\n    bind 127.0.0.1:{port} ssl crt {pem} ssl-min-ver TLSv1.2\n    \
             http-request return status 200 content-type text/plain string \"hello from wd\\n\"\n",
            async_line = if async_mode { "ssl-mode-async\n    " } else { "" },
            pem = pem.display()
        );
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, conf).unwrap();
        let mut cmd = Command::new(&haproxy);
        cmd.arg("-f")
            .arg(&cfg)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("WD_") || k.starts_with("OPENSSL_") {
                cmd.env_remove(&k);
            }
        }
        crypto.configure(&mut cmd, &dir.join("modules"), &stats_dir, &model_dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn haproxy");
        let mut h = Haproxy {
            child,
            dir: dir.to_path_buf(),
            port,
            stats_dir,
        };
        h.wait_ready();
        h
    }

    fn wait_ready(&mut self) {
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("haproxy exited at start ({st}): {err}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "haproxy not ready after 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while HAProxy runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops HAProxy; returns what it wrote to stderr.
    pub fn stop(&mut self) -> String {
        if self.alive() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let t = Instant::now();
            while self.alive() && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.stop();
    }
}
