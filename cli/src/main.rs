//! `wd`: gzip-compatible compression on the ZIP accelerator (`wd zip`), the accelerator
//! devices (`wd list`) and counters (`wd stats`).
//!
//! Devices come from `WD_DEVICES` (`auto`, `uacce`, `model`, `none`; see `wd_core::select`)
//! or `--model`, which starts the device model (knobs `WD_MODEL_*`) in this process. A build
//! without the `model` feature refuses `--model` and `WD_DEVICES=model` with a clear error.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use hisi_zip::{Format, GzHeader, WdDecoder};
use indicatif::{ProgressBar, ProgressStyle};
use wd_core::select::{self, Devices};

mod zlib_stats;

#[derive(Parser, Debug)]
#[command(
    name = "wd",
    version,
    about = "WarpDrive accelerators: compression, devices, counters"
)]
struct Cli {
    /// Use the device model (as WD_DEVICES=model).
    #[arg(long, global = true)]
    model: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Compress or decompress files in gzip format (as gzip does).
    Zip(ZipArgs),
    /// List accelerator devices (real uacce devices and the model).
    List,
    /// Print counters: the wd provider's RSA counters of every process that keeps a
    /// stats file in DIR (default $WD_STATS_DIR), and this process's compression counters.
    Stats {
        /// Directory of `<pid>.stats` files (default: $WD_STATS_DIR).
        dir: Option<PathBuf>,
        /// Also print each process's counters.
        #[arg(long)]
        per_process: bool,
        /// Print only this counter's total (for scripts).
        #[arg(long, value_name = "NAME")]
        get: Option<String>,
    },
}

#[derive(Args, Debug)]
#[allow(clippy::struct_excessive_bools)]
struct ZipArgs {
    /// Decompress.
    #[arg(short = 'd', long = "decompress")]
    decompress: bool,
    /// Keep (do not delete) input files.
    #[arg(short = 'k', long = "keep")]
    keep: bool,
    /// Write to standard output; keep input files.
    #[arg(short = 'c', long = "stdout")]
    stdout: bool,
    /// Overwrite existing output files.
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Print compression counters to stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Never show a progress bar; no warnings (as gzip -q).
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Verbose: also warn about trailing zero padding (as gzip -v).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    #[arg(short = '1', hide = true)]
    l1: bool,
    #[arg(short = '2', hide = true)]
    l2: bool,
    #[arg(short = '3', hide = true)]
    l3: bool,
    #[arg(short = '4', hide = true)]
    l4: bool,
    #[arg(short = '5', hide = true)]
    l5: bool,
    #[arg(short = '6', hide = true)]
    l6: bool,
    #[arg(short = '7', hide = true)]
    l7: bool,
    #[arg(short = '8', hide = true)]
    l8: bool,
    #[arg(short = '9', hide = true)]
    l9: bool,
    /// Files ("-" or none: standard input to standard output). Levels: -1 (fast) .. -9
    /// (best); 1..6 run on the device (its effort is fixed), 7..9 in software.
    files: Vec<PathBuf>,
}

impl ZipArgs {
    fn level(&self) -> u32 {
        let flags = [
            self.l1, self.l2, self.l3, self.l4, self.l5, self.l6, self.l7, self.l8, self.l9,
        ];
        flags
            .iter()
            .rposition(|&f| f)
            .map_or(hisi_zip::DEFAULT_LEVEL, |i| i as u32 + 1)
    }
}

/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN: u64 = 16 << 20;

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "model")]
    hisi_model::plug();
    // The QM bring-up over VFIO, for WD_DEVICES=vfio (and the model's fake-vfio:).
    hisi_qm::vfio_bringup::plug();
    if cli.model {
        select::set_process(Devices::Model);
    }
    // Starts the model now if it was asked for, so that a failure is reported here.
    if let Err(e) = select::activate_process() {
        eprintln!("wd: {e}");
        return ExitCode::from(2);
    }
    match cli.cmd {
        Cmd::Zip(a) => zip(&a),
        Cmd::List => list(),
        Cmd::Stats {
            dir,
            per_process,
            get,
        } => stats(dir, per_process, get.as_deref()),
    }
}

fn list() -> ExitCode {
    let devices = wd_core::registry::devices();
    println!(
        "{:<18} {:<8} {:<19} {:>5} {:<22} {:>5} {:>4}  {:<9}",
        "DEVICE", "BACKEND", "API", "FLAGS", "ALGORITHMS", "FREE", "NUMA", "MODE"
    );
    let mut unusable = Vec::new();
    for d in &devices {
        let i = d.info();
        let free = d
            .available_instances()
            .map_or_else(|e| format!("?({e})"), |n| n.to_string());
        let backend = if d.backend().is_model() {
            format!("{}*", d.backend().name())
        } else {
            d.backend().name().to_string()
        };
        // How its queues reach memory (SVA, no-SVA/SS, VFIO, NOIOMMU), or why none opens.
        let mode = match d.backend().verdict(i) {
            Some(Ok(m)) => m.to_string(),
            Some(Err(why)) => {
                unusable.push((i.name.clone(), why));
                "unusable".to_string()
            }
            None if d.backend().is_model() => "IOVA".to_string(),
            None => "-".to_string(),
        };
        println!(
            "{:<18} {:<8} {:<19} {:>5} {:<22} {:>5} {:>4}  {:<9}{}",
            i.name,
            backend,
            i.api,
            i.flags,
            i.algorithms.join(","),
            free,
            i.numa_node,
            mode,
            if i.isolated { "  isolated" } else { "" }
        );
    }
    for b in wd_core::registry::backends() {
        for (name, why) in b.rejected() {
            println!("{name:<18} {:<8} (not offered)", b.name());
            unusable.push((name, why));
        }
    }
    // Accelerators bound to vfio-pci that no selected backend offers (the `vfio` backend
    // lists its own, with the PCI address as their path): their mode, and why unused.
    let vfio_active = wd_core::registry::backends()
        .iter()
        .any(|b| b.name() == "vfio");
    for v in wd_core::vfio::scan::scan_host() {
        let offered = devices
            .iter()
            .any(|d| d.info().dev_path.as_deref() == Some(std::path::Path::new(&v.bdf)));
        if vfio_active || offered {
            continue;
        }
        let name = format!("{}{}", v.engine, if v.vf { "(VF)" } else { "" });
        let mode = v.mode.map_or("?".to_string(), |m| m.to_string());
        println!(
            "{:<18} {:<8} {:<19} {:>5} {:<22} {:>5} {:>4}  {:<9}",
            v.bdf, "vfio", name, "-", "-", "-", "-", mode
        );
        let why = if v.vf && v.engine != "hisi_sec2" {
            "not selected: WD_DEVICES=vfio opens VFs bound to vfio-pci (QM bring-up over \
             VFIO, docs/hardware.md §5 item 16)"
        } else {
            "wd drives only ZIP and HPRE virtual functions over VFIO; bind it to its kernel \
             driver (uacce_mode=1) to use it through uacce"
        };
        unusable.push((
            v.bdf.clone(),
            format!("bound to vfio-pci ({}): {why}", v.group),
        ));
    }
    if devices.is_empty() {
        println!("(no devices; WD_DEVICES=model or --model shows the device model)");
    } else if devices.iter().any(|d| d.backend().is_model()) {
        println!("* device model (hisi_model), not hardware; IOVA: the model's own IOMMU");
    }
    for (name, why) in &unusable {
        println!("{name}: unusable: {why}");
    }
    ExitCode::SUCCESS
}

fn print_zip_stats() {
    let s = hisi_zip::stats();
    eprintln!(
        "compression: offloaded {} | requests {} | device in {} B out {} B | device errors {} | retries {}",
        s.offloaded, s.requests, s.bytes_in, s.bytes_out, s.device_errors, s.retries
    );
    let fb: Vec<String> = hisi_zip::Reason::ALL
        .iter()
        .map(|r| format!("{r} {}", s.fallback(*r)))
        .collect();
    eprintln!("software:    {}", fb.join(" | "));
}

/// `wd stats`: the provider's counters summed over every process that kept them in `dir`
/// (`stats_dir` in openssl.cnf, or `WD_STATS_DIR`).
fn stats(dir: Option<PathBuf>, per_process: bool, get: Option<&str>) -> ExitCode {
    use wd_provider::stats as ps;
    let Some(dir) = dir.or_else(|| std::env::var_os("WD_STATS_DIR").map(PathBuf::from)) else {
        if get.is_some() {
            eprintln!("wd stats: no stats directory (pass DIR or set WD_STATS_DIR)");
            return ExitCode::from(2);
        }
        println!("RSA (wd provider): no stats directory (pass DIR or set WD_STATS_DIR)");
        println!("compression: counters are per process; `wd zip --stats` prints those of a run");
        return ExitCode::SUCCESS;
    };
    let (files, totals) = match ps::read_dir(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wd stats: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    if let Some(name) = get {
        return match ps::get(&totals, name) {
            Some(v) => {
                println!("{v}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "wd stats: unknown counter {name:?} (counters: {})",
                    ps::NAMES.join(", ")
                );
                ExitCode::from(2)
            }
        };
    }
    println!(
        "RSA (wd provider), {files} process(es) in {}:",
        dir.display()
    );
    for (n, v) in ps::NAMES.iter().zip(&totals) {
        println!("  {n:<24} {v}");
    }
    if per_process {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        for p in paths {
            if let Ok((pid, v)) = ps::read_file(&p) {
                println!("pid {pid}: {}", ps::format(&v));
            }
        }
    }
    if let Ok((n, z)) = zlib_stats::read_dir(&dir) {
        if n > 0 {
            println!("zlib (libwdz.so), {n} process(es):");
            for (name, v) in zlib_stats::NAMES.iter().zip(&z) {
                println!("  {name:<24} {v}");
            }
        }
    }
    println!("compression: counters are per process; `wd zip --stats` prints those of a run");
    ExitCode::SUCCESS
}

fn progress(len: u64, quiet: bool) -> Option<ProgressBar> {
    if quiet || len < PROGRESS_MIN || !io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(len);
    if let Ok(st) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        pb.set_style(st);
    }
    Some(pb)
}

fn zip(a: &ZipArgs) -> ExitCode {
    let start = Instant::now();
    let files: Vec<PathBuf> = if a.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        a.files.clone()
    };
    // gzip's exit statuses: 1 error, 2 warning (an error wins).
    let (mut failed, mut warned) = (false, false);
    for f in &files {
        let r = if a.decompress {
            decompress_one(a, f)
        } else {
            compress_one(a, f).map(|()| false)
        };
        match r {
            Ok(w) => warned |= w,
            Err(e) => {
                eprintln!("wd zip: {}: {e}", f.display());
                failed = true;
            }
        }
    }
    let status = if failed {
        ExitCode::FAILURE
    } else if warned {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    };
    if a.stats {
        print_zip_stats();
        eprintln!("elapsed:     {:.3} s", start.elapsed().as_secs_f64());
    }
    status
}

/// Where output goes: a file made next to the input (removed again on failure), or
/// standard output.
enum Sink {
    File(File, PathBuf),
    Stdout(io::StdoutLock<'static>),
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f, _) => f.write(b),
            Sink::Stdout(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f, _) => f.flush(),
            Sink::Stdout(s) => s.flush(),
        }
    }
}

fn open_sink(a: &ZipArgs, out: Option<PathBuf>) -> io::Result<Sink> {
    match out {
        None => Ok(Sink::Stdout(io::stdout().lock())),
        Some(p) => {
            if p.exists() && !a.force {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists (use -f to overwrite)", p.display()),
                ));
            }
            Ok(Sink::File(File::create(&p)?, p))
        }
    }
}

/// Runs `work`; on failure removes a half-written output file.
fn finish(a: &ZipArgs, input: &Path, sink: Sink, r: io::Result<()>) -> io::Result<()> {
    match (r, sink) {
        (Ok(()), Sink::File(f, _)) => {
            f.sync_all().ok();
            if !a.keep && !a.stdout && input != Path::new("-") {
                std::fs::remove_file(input)?;
            }
            Ok(())
        }
        (Ok(()), Sink::Stdout(mut s)) => s.flush(),
        (Err(e), Sink::File(f, p)) => {
            drop(f);
            let _ = std::fs::remove_file(&p);
            Err(e)
        }
        (Err(e), Sink::Stdout(_)) => Err(e),
    }
}

fn open_input(f: &Path) -> io::Result<(Box<dyn Read>, u64, u32)> {
    if f == Path::new("-") {
        return Ok((Box::new(io::stdin().lock()), 0, 0));
    }
    let file = File::open(f)?;
    let md = file.metadata()?;
    if md.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        ));
    }
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as u32);
    Ok((Box::new(file), md.len(), mtime))
}

fn compress_one(a: &ZipArgs, f: &Path) -> io::Result<()> {
    let (input, len, mtime) = open_input(f)?;
    let stdin = f == Path::new("-");
    let out = if a.stdout || stdin {
        None
    } else {
        if f.extension().is_some_and(|e| e == "gz") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "already has .gz suffix",
            ));
        }
        let mut p = f.as_os_str().to_owned();
        p.push(".gz");
        Some(PathBuf::from(p))
    };
    let header = GzHeader {
        mtime,
        name: if stdin {
            None
        } else {
            f.file_name()
                .map(|n| n.to_string_lossy().as_bytes().to_vec())
        },
        os: 3,
        ..GzHeader::default()
    };
    let mut sink = open_sink(a, out)?;
    let pb = progress(len, a.quiet);
    let r = hisi_zip::parallel::compress_members(input, &mut sink, a.level(), &header, |n| {
        if let Some(pb) = &pb {
            pb.set_position(n);
        }
    })
    .map(|_| ());
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let r = r.and_then(|()| sink.flush());
    finish(a, f, sink, r)
}

/// Decompresses one file; `Ok(true)`: done with a warning (gzip's exit status 2).
/// What follows the last member follows gzip(1): zeros are ignored (a warning with -v),
/// other bytes are ignored with a warning, except a single one, which gzip calls an
/// unexpected end of file.
fn decompress_one(a: &ZipArgs, f: &Path) -> io::Result<bool> {
    let (input, len, _) = open_input(f)?;
    let stdin = f == Path::new("-");
    let out = if a.stdout || stdin {
        None
    } else {
        let name = f.to_string_lossy();
        let Some(stem) = name.strip_suffix(".gz").filter(|s| !s.is_empty()) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unknown suffix (expected .gz)",
            ));
        };
        Some(PathBuf::from(stem))
    };
    let mut sink = open_sink(a, out)?;
    let pb = progress(len, a.quiet);
    let counted = Counted {
        inner: input,
        pb: pb.clone(),
        n: 0,
    };
    let mut warned = false;
    let r = (|| -> io::Result<()> {
        let mut d = WdDecoder::new(counted, Format::Gzip)?;
        d.decompressor_mut().ignore_trailing_garbage(true);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = d.read(&mut buf)?;
            if n == 0 {
                break;
            }
            sink.write_all(&buf[..n])?;
        }
        sink.flush()?;
        let (zeros, garbage) = (
            d.decompressor().trailing_zeros(),
            d.decompressor().trailing_garbage(),
        );
        let name = if f == Path::new("-") {
            "stdin".into()
        } else {
            f.display().to_string()
        };
        if zeros + garbage == 1 && garbage == 1 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unexpected end of file",
            ));
        }
        if garbage > 0 {
            warned = true;
            if !a.quiet {
                eprintln!("wd zip: {name}: decompression OK, trailing garbage ignored");
            }
        } else if zeros > 0 && a.verbose {
            warned = true;
            if !a.quiet {
                eprintln!("wd zip: {name}: decompression OK, trailing zero bytes ignored");
            }
        }
        Ok(())
    })();
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    finish(a, f, sink, r).map(|()| warned)
}

/// A reader that moves the progress bar.
struct Counted {
    inner: Box<dyn Read>,
    pb: Option<ProgressBar>,
    n: u64,
}

impl Read for Counted {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.n += n as u64;
        if let Some(pb) = &self.pb {
            pb.set_position(self.n);
        }
        Ok(n)
    }
}
