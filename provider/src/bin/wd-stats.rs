//! `wd-stats`: prints the wd provider's counters, summed over every process that kept them
//! in a stats directory (`stats_dir` in openssl.cnf or `WD_STATS_DIR`).
//!
//! Usage: `wd-stats [DIR] [--per-process] [--get NAME]`. DIR defaults to `$WD_STATS_DIR`.
//! `--get NAME` prints only that counter's total (for scripts).

use std::path::PathBuf;
use std::process::ExitCode;

use wd_provider::stats;

fn main() -> ExitCode {
    let mut dir: Option<PathBuf> = None;
    let mut per_process = false;
    let mut get: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--per-process" => per_process = true,
            "--get" => get = args.next(),
            "-h" | "--help" => {
                println!(
                    "usage: wd-stats [DIR] [--per-process] [--get NAME]\n\ncounters: {}",
                    stats::NAMES.join(", ")
                );
                return ExitCode::SUCCESS;
            }
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => {
                eprintln!("wd-stats: unexpected argument {a:?}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(dir) = dir.or_else(|| std::env::var_os("WD_STATS_DIR").map(PathBuf::from)) else {
        eprintln!("wd-stats: no directory: pass one or set WD_STATS_DIR");
        return ExitCode::from(2);
    };
    let (files, totals) = match stats::read_dir(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wd-stats: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    if let Some(name) = get {
        return match stats::get(&totals, &name) {
            Some(v) => {
                println!("{v}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("wd-stats: unknown counter {name:?}");
                ExitCode::from(2)
            }
        };
    }
    if per_process {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths {
                if let Ok((pid, v)) = stats::read_file(&p) {
                    println!("pid {pid}: {}", stats::format(&v));
                }
            }
        }
    }
    println!("processes: {files}");
    for (n, v) in stats::NAMES.iter().zip(&totals) {
        println!("{n:<24} {v}");
    }
    ExitCode::SUCCESS
}
