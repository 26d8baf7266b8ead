//! Compression throughput through the ZIP path (driver → ring → device model engine →
//! CQE → driver, stream mode, 8 MiB requests) against the same deflate library (zlib-rs)
//! called directly at the engine's effort, in one run. Also `parallel` (gzip members, all
//! engines busy) and decompression both ways.
//!
//! Input: 32 MiB of this machine's files (/usr/include, /usr/lib), or synthetic text.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hisi_zip::{Format, GzHeader, Offload};
use wd_core::select::{self, Devices};
use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush};

fn corpus(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    for dir in ["/usr/include", "/usr/lib/x86_64-linux-gnu"] {
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut es: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            es.sort();
            for p in es {
                if v.len() >= n {
                    break;
                }
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(b) = std::fs::read(&p) {
                    v.extend_from_slice(&b[..b.len().min(4 << 20)]);
                }
            }
        }
        if v.len() >= n / 2 && dir == "/usr/include" {
            continue;
        }
    }
    let mut x = 1u64;
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(format!("line {} of synthetic text\n", x % 1000).as_bytes());
    }
    v.truncate(n);
    v
}

fn direct_gzip(data: &[u8], level: i32) -> Vec<u8> {
    let mut d = Deflate::new(level, true, 31);
    let mut out = vec![0u8; data.len() + data.len() / 8 + 1024];
    d.compress(data, &mut out, DeflateFlush::Finish).unwrap();
    out.truncate(d.total_out() as usize);
    out
}

fn direct_gunzip(gz: &[u8], n: usize) -> Vec<u8> {
    let mut i = Inflate::new(true, 31);
    let mut out = vec![0u8; n + 1];
    i.decompress(gz, &mut out, InflateFlush::Finish).unwrap();
    out.truncate(i.total_out() as usize);
    out
}

fn bench(c: &mut Criterion) {
    std::env::set_var(
        "WD_MODEL_ENGINES",
        std::env::var("WD_MODEL_ENGINES").unwrap_or("2".into()),
    );
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("WD_MODEL_DIR", dir.path());
    hisi_model::plug();
    select::set_process(Devices::Model);
    select::activate_process().unwrap();
    let level: i32 = std::env::var("WD_MODEL_ZIP_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(hisi_model::zip::DEFAULT_LEVEL as i32);
    let data = corpus(32 << 20);
    let gz = hisi_zip::compress(Format::Gzip, 6, &data).unwrap();
    assert_eq!(
        hisi_zip::decompress(Format::Gzip, &gz).unwrap().len(),
        data.len()
    );

    let mut g = c.benchmark_group("zip-compress");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("zlib-rs direct (engine level)", |b| {
        b.iter(|| direct_gzip(&data, level))
    });
    g.bench_function("zip path (model, one stream)", |b| {
        b.iter(|| hisi_zip::compress(Format::Gzip, 6, &data).unwrap())
    });
    g.bench_function("zip path (model, parallel members)", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(data.len() / 2);
            hisi_zip::parallel::compress_members(
                &data[..],
                &mut out,
                6,
                &GzHeader::default(),
                |_| {},
            )
            .unwrap();
            out
        })
    });
    g.bench_function("software path (zlib-rs -6)", |b| {
        b.iter(|| hisi_zip::compress_with(Format::Gzip, 6, &data, Offload::Never).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("zip-decompress");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("zlib-rs direct", |b| {
        b.iter(|| direct_gunzip(&gz, data.len()))
    });
    g.bench_function("zip path (model)", |b| {
        b.iter(|| hisi_zip::decompress(Format::Gzip, &gz).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
