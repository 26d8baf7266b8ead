//! Stock nginx as a test fixture: TLS servers on 127.0.0.1 with RSA certificates, two
//! worker processes, OpenSSL configured only through `OPENSSL_CONF`. The fixture always
//! stops nginx (and every process of its group) when dropped, also when a test panics.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ossl;

/// Which OpenSSL set-up nginx runs with.
#[derive(Debug, Clone)]
pub enum Crypto {
    /// `openssl.cnf.d/wd-model.cnf`: the wd provider on the device model.
    WdModel {
        /// Model queues (available instances) shared by all workers.
        queues: u32,
        /// The provider's `poll_mode` (`WD_POLL_MODE`); None: the configuration's.
        poll_mode: Option<&'static str>,
    },
    /// wd on the uacce backend over the fake kernel of a fixture sysfs tree
    /// (`WD_DEVICES=fake-uacce:<fixture>`), the model as its device side: the kernel's
    /// interface as the workers see it, e.g. openEuler's no-SVA static-share mode.
    WdFakeKernel {
        /// The fixture directory (`tests/fixtures/uacce/<name>`).
        fixture: PathBuf,
        /// The ioctl numbering to use, where the fixture's kernel does not let wd tell it
        /// safely: the provider's `uacce_abi` key in the configuration the server loads
        /// (no `WD_UACCE_ABI` in any environment).
        abi: Option<&'static str>,
    },
    /// The system's OpenSSL with the default provider only.
    Default,
}

impl Crypto {
    /// Sets up a server's environment for this OpenSSL set-up: the configuration, wd's
    /// module directory (`modules`), counters in `stats_dir`, model state in `model_dir`.
    pub fn configure(&self, cmd: &mut Command, modules: &Path, stats_dir: &Path, model_dir: &Path) {
        match self {
            Crypto::WdModel { queues, poll_mode } => {
                cmd.env("OPENSSL_CONF", ossl::cnf("wd-model.cnf"))
                    .env("OPENSSL_MODULES", ossl::modules_dir(modules))
                    .env("WD_STATS_DIR", stats_dir)
                    .env("WD_MODEL_DIR", model_dir)
                    .env("WD_MODEL_QUEUES", queues.to_string());
                if let Some(m) = poll_mode {
                    cmd.env("WD_POLL_MODE", m);
                }
            }
            Crypto::WdFakeKernel { fixture, abi } => {
                let mut conf = ossl::cnf("wd-model.cnf");
                if let Some(abi) = abi {
                    let base = std::fs::read_to_string(&conf).expect("wd-model.cnf");
                    let with =
                        base.replacen("[wd_sect]\n", &format!("[wd_sect]\nuacce_abi = {abi}\n"), 1);
                    assert_ne!(with, base, "wd-model.cnf has a [wd_sect]");
                    conf = model_dir.join("wd-fake-kernel.cnf");
                    std::fs::write(&conf, with).expect("writing the server's openssl.cnf");
                }
                cmd.env("OPENSSL_CONF", conf)
                    .env("OPENSSL_MODULES", ossl::modules_dir(modules))
                    .env("WD_STATS_DIR", stats_dir)
                    .env("WD_DEVICES", format!("fake-uacce:{}", fixture.display()))
                    .env_remove("WD_UACCE_ABI");
            }
            Crypto::Default => {
                cmd.env("OPENSSL_CONF", "/dev/null");
            }
        }
    }
}

/// Finds nginx, installing Debian's package when it is missing and we are root.
pub fn nginx_binary() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let ok = Command::new("sh")
            .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null && (systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true)"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok && Path::new("/usr/sbin/nginx").is_file() {
            return PathBuf::from("/usr/sbin/nginx");
        }
    }
    panic!("nginx is not installed and could not be installed (run scripts/setup.sh as root)");
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A running nginx.
#[derive(Debug)]
pub struct Nginx {
    master: Child,
    /// Its prefix directory (config, logs, certificates, stats, model slots).
    pub dir: PathBuf,
    /// Port of the server with the RSA-2048 certificate.
    pub port: u16,
    /// Ports by certificate size.
    pub ports: Vec<(u32, u16)>,
    /// Where the provider keeps per-process counters.
    pub stats_dir: PathBuf,
    /// The device model's instance-slot directory.
    pub model_dir: PathBuf,
    stopped: bool,
}

impl Nginx {
    /// Starts nginx with `worker_processes` workers and one TLS server per key size in
    /// `bits` (certificates made in `dir`), with `crypto`.
    pub fn start(dir: &Path, crypto: Crypto, workers: u32, bits: &[u32]) -> Nginx {
        let nginx = nginx_binary();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let stats_dir = dir.join("stats");
        let model_dir = dir.join("model");
        std::fs::create_dir_all(&stats_dir).unwrap();
        std::fs::create_dir_all(&model_dir).unwrap();
        let mut servers = String::new();
        let mut ports = Vec::new();
        for &b in bits {
            let (cert, key) = ossl::make_cert(dir, b);
            let port = free_port();
            ports.push((b, port));
            servers.push_str(&format!(
                "    server {{\n        listen 127.0.0.1:{port} ssl reuseport;\n        ssl_certificate {};\n        ssl_certificate_key {};\n        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_session_cache off;\n        ssl_session_tickets off;\n        location / {{ return 200 \"hello from wd {b}\\n\"; }}\n    }}\n",
                cert.display(),
                key.display()
            ));
        }
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;\n"
        } else {
            ""
        };
        // nginx gives its workers none of its environment but what `env` names: the ioctl
        // numbering comes with the configuration the master loaded (`uacce_abi`), which
        // the workers inherit.
        let conf = format!(
            "{user}daemon off;\nmaster_process on;\nworker_processes {workers};\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log notice;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n    fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n    scgi_temp_path {d}/tmp/scgi;\n    keepalive_timeout 0;\n{servers}}}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();

        let mut cmd = Command::new(&nginx);
        cmd.arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        for v in [
            "OPENSSL_CONF",
            "OPENSSL_MODULES",
            "WD_DEVICES",
            "WD_STATS_DIR",
            "WD_MODEL_DIR",
            "WD_MODEL_QUEUES",
            "WD_LOG",
            "WD_POLL_MODE",
        ] {
            cmd.env_remove(v);
        }
        crypto.configure(&mut cmd, &dir.join("modules"), &stats_dir, &model_dir);
        let master = cmd.spawn().expect("spawn nginx");
        let port = ports
            .iter()
            .find(|(b, _)| *b == 2048)
            .or(ports.first())
            .map(|p| p.1)
            .unwrap_or(0);
        let mut n = Nginx {
            master,
            dir: dir.to_path_buf(),
            port,
            ports,
            stats_dir,
            model_dir,
            stopped: false,
        };
        n.wait_ready(workers as usize);
        n
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, workers: usize) {
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = self.master.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.master.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("nginx exited at start ({st}): {err}\n{}", self.error_log());
            }
            let up = self
                .ports
                .iter()
                .all(|(_, p)| TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up && self.workers().len() == workers {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "nginx not ready after 20 s:\n{}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The master's pid.
    pub fn master_pid(&self) -> u32 {
        self.master.id()
    }

    /// The worker processes now (children of the master).
    pub fn workers(&self) -> BTreeSet<u32> {
        children_of(self.master.id())
    }

    /// `nginx -s reload`: waits until a new set of workers serves.
    pub fn reload(&mut self) {
        let old = self.workers();
        signal(self.master.id(), libc::SIGHUP);
        let t = Instant::now();
        loop {
            let now = self.workers();
            if !now.is_empty() && now.is_disjoint(&old) && now.len() == old.len() {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "reload did not replace workers"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills one worker with SIGKILL and waits until the master has replaced it.
    pub fn kill_worker(&mut self) -> u32 {
        let before = self.workers();
        let victim = *before.iter().next().expect("a worker");
        signal(victim, libc::SIGKILL);
        let t = Instant::now();
        loop {
            let now = self.workers();
            if !now.contains(&victim) && now.len() == before.len() {
                return victim;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "worker not respawned"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops nginx (SIGQUIT, graceful), then makes sure the whole process group is gone.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pgid = self.master.id() as i32;
        signal(self.master.id(), libc::SIGQUIT);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.master.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.master.wait();
        // Workers may outlive the master by a moment.
        let t = Instant::now();
        while group_alive(pgid) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to a process we started.
    unsafe { libc::kill(pid as i32, sig) };
}

fn stat_fields(pid: &str) -> Option<(u32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // state ppid pgrp
    if f.first() == Some(&"Z") {
        return None;
    }
    Some((f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?))
}

/// Live (non-zombie) children of `parent`.
pub fn children_of(parent: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str() else { continue };
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Some((ppid, _)) = stat_fields(pid) {
                if ppid == parent {
                    out.insert(pid.parse().unwrap());
                }
            }
        }
    }
    out
}

fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .and_then(stat_fields)
                    .is_some_and(|(_, g)| g == pgid)
            })
        })
        .unwrap_or(false)
}

/// One HTTPS GET with curl at TLS `version` ("1.2" or "1.3"); returns the body.
pub fn curl(port: u16, version: &str) -> Result<String, String> {
    let mut cmd = Command::new("curl");
    cmd.env_remove("OPENSSL_CONF")
        .env_remove("OPENSSL_MODULES")
        .args(["-sS", "-k", "--max-time", "20"]);
    match version {
        "1.2" => cmd.args(["--tlsv1.2", "--tls-max", "1.2"]),
        _ => cmd.args(["--tlsv1.3"]),
    };
    let out = cmd
        .arg(format!("https://127.0.0.1:{port}/"))
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// One request with `openssl s_client` at TLS `version`; returns its whole output.
pub fn s_client(port: u16, version: &str, extra: &[&str]) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .env_remove("OPENSSL_CONF")
        .env_remove("OPENSSL_MODULES")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(if version == "1.2" {
            "-tls1_2"
        } else {
            "-tls1_3"
        })
        .args(["-brief", "-ign_eof"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("s_client: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}
