//! Stock Debian nginx with `gzip on; gzip_comp_level 6; gzip_types *` under
//! `LD_PRELOAD=libwdz.so` on the device model: large and small responses decompressed by
//! curl and by Python are byte-identical to the files, the workers' counters prove the
//! offload, a reload and a killed worker are survived, and the error log has no alert
//! from the gzip filter (nor any other, except the master's note of the killed worker).

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wdz() -> PathBuf {
    // `cargo test` builds the cdylib next to the test binaries (deps/); `cargo build`
    // puts it one level up.
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let fresh = deps.join("libwdz.so");
    if fresh.is_file() {
        return fresh;
    }
    deps.parent().unwrap().join("libwdz.so")
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Children of `pid` (nginx workers of the master).
fn children(pid: u32) -> BTreeSet<u32> {
    let mut set = BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap_or(0) + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 1 && f[0] != "Z" && f[1].parse::<u32>().ok() == Some(pid) {
            set.insert(p);
        }
    }
    set
}

/// A running nginx, stopped (with its workers) on drop.
struct Nginx {
    master: Child,
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl Nginx {
    fn start(dir: &Path, stats: &Path, preload: bool) -> Nginx {
        let bin = nginx_binary().expect("nginx (scripts/setup.sh installs it)");
        let port = free_port();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;\n"
        } else {
            ""
        };
        let d = dir.display();
        let conf = format!(
            "{user}daemon off;\nmaster_process on;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log notice;\n\
             env WD_DEVICES;\nenv WD_MODEL_ENGINES;\nenv WD_ZLIB_STATS_DIR;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/cb;\n  proxy_temp_path {d}/px;\n  fastcgi_temp_path {d}/fc;\n  uwsgi_temp_path {d}/uw;\n  scgi_temp_path {d}/sc;\n\
               gzip on;\n  gzip_comp_level 6;\n  gzip_types *;\n\
               server {{ listen 127.0.0.1:{port}; root {d}/www; }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut c = Command::new(&bin);
        c.arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf"));
        c.env("WD_DEVICES", "model")
            .env("WD_MODEL_ENGINES", "2")
            .env("WD_ZLIB_STATS_DIR", stats);
        if preload {
            c.env("LD_PRELOAD", wdz());
        }
        let master = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx");
        let mut n = Nginx {
            master,
            dir: dir.to_path_buf(),
            port,
            bin,
        };
        n.wait_workers(2, &BTreeSet::new());
        n
    }

    fn workers(&self) -> BTreeSet<u32> {
        children(self.master.id())
    }

    fn wait_workers(&mut self, n: usize, not: &BTreeSet<u32>) {
        let t = Instant::now();
        loop {
            let w = self.workers();
            let up = TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if up && w.len() == n && w.is_disjoint(not) {
                return;
            }
            if let Ok(Some(st)) = self.master.try_wait() {
                panic!("nginx exited ({st}): {}", self.error_log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "nginx workers not up: {}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    fn reload(&mut self) {
        let old = self.workers();
        let st = Command::new(&self.bin)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-s", "reload"])
            .status()
            .unwrap();
        assert!(st.success());
        self.wait_workers(2, &old);
    }

    fn kill_worker(&mut self) -> u32 {
        let before = self.workers();
        let victim = *before.iter().next().unwrap();
        // SAFETY: kill(2) on a worker pid of our nginx.
        unsafe { libc::kill(victim as i32, libc::SIGKILL) };
        let gone: BTreeSet<u32> = [victim].into();
        self.wait_workers(2, &gone);
        victim
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: signals to our own nginx master.
        unsafe { libc::kill(self.master.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.master.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

/// curl --compressed: the decoded body, and whether the response was gzip.
fn curl(port: u16, path: &str) -> (Vec<u8>, bool) {
    let o = Command::new("curl")
        .args(["-s", "--compressed", "-D", "-", "-o", "/dev/stdout"])
        .arg(format!("http://127.0.0.1:{port}/{path}"))
        .output()
        .expect("curl");
    assert!(o.status.success());
    let i = o.stdout.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&o.stdout[..i]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    (
        o.stdout[i..].to_vec(),
        head.contains("content-encoding: gzip"),
    )
}

/// The raw gzip body (no decoding by curl), decoded by Python's gzip module without our
/// library.
fn python_gunzip(port: u16, path: &str) -> Vec<u8> {
    let raw = Command::new("curl")
        .args(["-s", "-H", "Accept-Encoding: gzip"])
        .arg(format!("http://127.0.0.1:{port}/{path}"))
        .output()
        .unwrap()
        .stdout;
    let mut p = Command::new("python3")
        .args([
            "-c",
            "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    p.stdin.take().unwrap().write_all(&raw).unwrap();
    let o = p.wait_with_output().unwrap();
    assert!(o.status.success(), "python could not gunzip {path}");
    o.stdout
}

/// Sums a counter over every `<pid>.zlib` file whose pid is in `pids`.
fn workers_counter(stats: &Path, pids: &BTreeSet<u32>, idx: usize) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read(stats.join(format!("{p}.zlib"))).ok())
        .map(|f| u64::from_ne_bytes(f[(4 + idx) * 8..(5 + idx) * 8].try_into().unwrap()))
        .sum()
}

fn files(www: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(www).unwrap();
    let mut r = fastrand::Rng::with_seed(9);
    let words = [
        "<p>",
        "nginx ",
        "gzip ",
        "response ",
        "the ",
        "engine ",
        "</p>\n",
        "42 ",
    ];
    let mut text = String::new();
    while text.len() < 3 << 20 {
        text.push_str(words[r.usize(..words.len())]);
    }
    let mut mixed = text.as_bytes()[..1 << 20].to_vec();
    mixed.extend((0..200_000).map(|_| r.u8(..)));
    let out = vec![
        ("big.html".to_string(), text.as_bytes().to_vec()),
        ("mixed.bin".to_string(), mixed),
        ("mid.txt".to_string(), text.as_bytes()[..100_000].to_vec()),
        ("small.txt".to_string(), text.as_bytes()[..2000].to_vec()),
        ("tiny.txt".to_string(), b"hello\n".to_vec()),
    ];
    for (n, d) in &out {
        std::fs::write(www.join(n), d).unwrap();
    }
    out
}

fn check_all(n: &Nginx, files: &[(String, Vec<u8>)]) {
    for (name, data) in files {
        let (body, gz) = curl(n.port, name);
        assert!(
            body == *data,
            "{name}: curl body differs ({} vs {} bytes)",
            body.len(),
            data.len()
        );
        if data.len() > 20 {
            assert!(gz, "{name} was not gzipped");
            assert!(python_gunzip(n.port, name) == *data, "{name}: python");
        }
    }
}

const OFFLOADED: usize = 0;

#[test]
fn stock_nginx_gzip_under_ld_preload() {
    let dir = tempfile::tempdir().unwrap();
    let stats = tempfile::tempdir().unwrap();
    let fs = files(&dir.path().join("www"));
    let mut n = Nginx::start(dir.path(), stats.path(), true);
    let mut all = n.workers();
    for _ in 0..3 {
        check_all(&n, &fs);
    }
    let off = workers_counter(stats.path(), &n.workers(), OFFLOADED);
    assert!(off >= 6, "the workers offloaded {off} responses");

    n.reload();
    all.extend(n.workers());
    check_all(&n, &fs);
    let victim = n.kill_worker();
    all.extend(n.workers());
    for _ in 0..2 {
        check_all(&n, &fs);
    }
    let after = workers_counter(stats.path(), &n.workers(), OFFLOADED);
    assert!(after > 0, "the new workers offload too");
    assert!(workers_counter(stats.path(), &all, OFFLOADED) >= off + after);

    let log = n.error_log();
    eprintln!("offloaded: {off} before the reload, {after} by the current workers\n{log}");
    assert!(!log.contains("failed to use preallocated memory"), "{log}");
    assert!(!log.contains("deflate"), "{log}");
    for line in log.lines() {
        let bad = line.contains("[alert]")
            || line.contains("[emerg]")
            || line.contains("[crit]")
            || line.contains("[error]");
        let expected = line.contains(&format!("process {victim} exited on signal 9"));
        assert!(!bad || expected, "error log: {line}");
    }
}
