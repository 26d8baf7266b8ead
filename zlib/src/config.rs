//! Configuration from the environment, read once per process (the first stream).
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `WD_ZLIB_OFFLOAD` | `auto` | `auto`: streams that qualify go to the ZIP engine when `WD_DEVICES` gives one (wd's device selection: `auto` = the host's real accelerators); `off`: software only |
//! | `WD_ZLIB_MIN_INPUT` | `16384` | bytes a deflate stream must bring (before its first flush) to be offloaded; smaller ones stay in software. `0`: offload every qualifying stream |
//! | `WD_ZLIB_CHUNK` | `1048576` | input bytes per device request (4 KiB .. 8 MiB); also the most input one stream buffers |
//! | `WD_ZLIB_PARALLEL` | `1` | a call bringing at least two chunks compresses up to this many at once, as independent segments on as many engines and threads (`1`: one at a time; on this project's 2-core test machine the model gains nothing from it) |
//! | `WD_ZLIB_INFLATE_LOG` | `64m` | most compressed input an offloaded inflate stream keeps for an exact replay in software (device failure, corrupt data, a call the device path does not do); a stream that outgrows it is replayed into software there. `0`: inflate in software only |
//! | `WD_ZLIB_INFLATE_PARALLEL` | `3` | most segments of one inflate stream decoded ahead at once, each on a fresh device stream and thread of its own, on a v3 device (independent segments, marked by libwdz's deflate: DESIGN.md, "Inflate"); `0`: none, one device stream per stream |
//! | `WD_ZLIB_STATS_DIR` | `$WD_STATS_DIR` | directory of per-process counter files `<pid>.zlib` (read by `wd stats`) |
//!
//! A value that does not parse is reported once on stderr-by-`WD_LOG` and the default is
//! used: a library loaded into an unknown program must not refuse to compress.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// Whether qualifying streams may use the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offload {
    /// The device when there is one.
    Auto,
    /// Software only.
    Off,
}

/// The library's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `WD_ZLIB_OFFLOAD`.
    pub offload: Offload,
    /// `WD_ZLIB_MIN_INPUT`.
    pub min_input: usize,
    /// `WD_ZLIB_CHUNK`.
    pub chunk: usize,
    /// `WD_ZLIB_PARALLEL`.
    pub parallel: usize,
    /// `WD_ZLIB_INFLATE_LOG` (0: no inflate offload).
    pub inflate_log: usize,
    /// `WD_ZLIB_INFLATE_PARALLEL`.
    pub inflate_parallel: usize,
    /// `WD_ZLIB_STATS_DIR` or `WD_STATS_DIR`.
    pub stats_dir: Option<PathBuf>,
}

/// Smallest and largest `WD_ZLIB_CHUNK`.
pub const CHUNK_RANGE: (usize, usize) = (4096, hisi_zip::MAX_REQUEST);

/// Largest `WD_ZLIB_INFLATE_LOG`.
pub const INFLATE_LOG_MAX: usize = 1 << 30;

impl Config {
    /// Parses settings with `get` (the environment in production, a table in tests).
    pub fn from(get: impl Fn(&str) -> Option<String>) -> Config {
        let mut c = Config {
            offload: Offload::Auto,
            min_input: 16 * 1024,
            chunk: 1 << 20,
            parallel: 1,
            inflate_log: 64 << 20,
            inflate_parallel: 3,
            stats_dir: None,
        };
        if let Some(v) = get("WD_ZLIB_OFFLOAD") {
            match v.trim() {
                "auto" | "on" | "1" => c.offload = Offload::Auto,
                "off" | "none" | "0" => c.offload = Offload::Off,
                other => bad("WD_ZLIB_OFFLOAD", other, "auto or off"),
            }
        }
        if let Some(v) = get("WD_ZLIB_MIN_INPUT") {
            match parse_size(&v) {
                Some(n) => c.min_input = n,
                None => bad("WD_ZLIB_MIN_INPUT", &v, "a byte count (k/m suffixes)"),
            }
        }
        if let Some(v) = get("WD_ZLIB_CHUNK") {
            match parse_size(&v) {
                Some(n) if (CHUNK_RANGE.0..=CHUNK_RANGE.1).contains(&n) => c.chunk = n,
                _ => bad("WD_ZLIB_CHUNK", &v, "4k..8m"),
            }
        }
        if let Some(v) = get("WD_ZLIB_PARALLEL") {
            match v.trim().parse::<usize>() {
                Ok(n) if (1..=16).contains(&n) => c.parallel = n,
                _ => bad("WD_ZLIB_PARALLEL", &v, "1..16"),
            }
        }
        if let Some(v) = get("WD_ZLIB_INFLATE_LOG") {
            match parse_size(&v) {
                Some(n) if n <= INFLATE_LOG_MAX => c.inflate_log = n,
                _ => bad("WD_ZLIB_INFLATE_LOG", &v, "a byte count up to 1024m"),
            }
        }
        if let Some(v) = get("WD_ZLIB_INFLATE_PARALLEL") {
            match v.trim().parse::<usize>() {
                Ok(n) if n <= 8 => c.inflate_parallel = n,
                _ => bad("WD_ZLIB_INFLATE_PARALLEL", &v, "0..8"),
            }
        }
        c.min_input = c.min_input.min(c.chunk);
        c.stats_dir = get("WD_ZLIB_STATS_DIR")
            .or_else(|| get("WD_STATS_DIR"))
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        c
    }
}

fn bad(key: &str, v: &str, want: &str) {
    wd_core::wd_log!(
        Warn,
        "wdz: invalid value for {key}: {v:?} (want {want}); using the default"
    );
}

/// `123`, `64k`, `1m` (binary units).
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = match s.strip_suffix('k') {
        Some(n) => (n, 1024),
        None => match s.strip_suffix('m') {
            Some(n) => (n, 1 << 20),
            None => (s.as_str(), 1),
        },
    };
    num.parse::<usize>().ok()?.checked_mul(mul)
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The process's settings (read from the environment on first use).
pub fn get() -> &'static Config {
    CONFIG.get_or_init(|| Config::from(|k| std::env::var(k).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Config {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Config::from(|k| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone()))
    }

    #[test]
    fn defaults_and_values() {
        let c = with(&[]);
        assert_eq!(
            (c.offload, c.min_input, c.chunk),
            (Offload::Auto, 16384, 1 << 20)
        );
        assert!(c.stats_dir.is_none());
        assert_eq!(c.inflate_parallel, 3);
        assert_eq!(
            with(&[("WD_ZLIB_INFLATE_PARALLEL", "0")]).inflate_parallel,
            0
        );
        assert_eq!(
            with(&[("WD_ZLIB_INFLATE_PARALLEL", "9")]).inflate_parallel,
            3
        );
        let c = with(&[
            ("WD_ZLIB_OFFLOAD", "off"),
            ("WD_ZLIB_MIN_INPUT", "1k"),
            ("WD_ZLIB_CHUNK", "64k"),
            ("WD_STATS_DIR", "/tmp/x"),
            ("WD_ZLIB_INFLATE_LOG", "0"),
        ]);
        assert_eq!(c.inflate_log, 0);
        assert_eq!(
            (c.offload, c.min_input, c.chunk),
            (Offload::Off, 1024, 65536)
        );
        assert_eq!(c.stats_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn bad_values_keep_defaults() {
        let c = with(&[("WD_ZLIB_OFFLOAD", "maybe"), ("WD_ZLIB_CHUNK", "9m")]);
        assert_eq!((c.offload, c.chunk), (Offload::Auto, 1 << 20));
        // The threshold never exceeds the chunk.
        let c = with(&[("WD_ZLIB_CHUNK", "8k")]);
        assert_eq!(c.min_input, 8192);
    }
}
