//! Every configuration key of the provider, in one table, parsed strictly.
//!
//! Keys come from the provider's section of openssl.cnf (through the core's `get_params`)
//! and each can be overridden by an environment variable (`WD_` + the key in upper case;
//! `log_level` is `WD_LOG`). An unknown key in the section, or a bad value from either
//! source, is an error at load time.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use wd_core::select;
pub use wd_core::select::Devices;
use wd_core::wait::WaitMode;

use crate::error::{fail, Reason, Result};

/// What a key of the table is.
#[derive(Debug)]
pub struct KeyDoc {
    /// Key in the provider section.
    pub key: &'static str,
    /// Environment variable overriding it.
    pub env: &'static str,
    /// Default, as written in the config file.
    pub default: &'static str,
    /// One line of documentation, with the accepted values.
    pub doc: &'static str,
}

/// Keys every provider section may carry, consumed by OpenSSL itself.
pub const CORE_KEYS: &[&str] = &["module", "identity", "activate", "soft_load"];

/// The provider's own configuration keys. Besides these, in a build that carries the device
/// model, `model_<key>` for every key of the plugged-in model ([`select::ModelPlug::keys`]:
/// `model_api`, `model_queues`, `model_engines`, `model_latency_us`, `model_error_every`,
/// `model_error_ratio`, `model_stall`, `model_dir`, ...) is passed, without the prefix, to
/// the model when `devices = model` starts it; its environment override is
/// `WD_MODEL_<KEY>`.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc { key: "devices", env: "WD_DEVICES", default: "auto",
        doc: "auto | uacce | vfio | model | none: where queues come from (auto = real HPRE devices if present, else software; vfio = HPRE VFs bound to vfio-pci, brought up by wd; model = the device model, in builds that carry it)" },
    KeyDoc { key: "uacce_abi", env: "WD_UACCE_ABI", default: "",
        doc: "mainline | openeuler | empty: the uacce ioctl numbering, for kernels wd cannot tell (openEuler no-SVA: mainline on 5.10+, openeuler on 4.19); empty = detected, refusing the device when unsure" },
    KeyDoc { key: "fallback", env: "WD_FALLBACK", default: "on",
        doc: "on | off: redo in software what the device cannot do; off = such requests fail" },
    KeyDoc { key: "min_bits", env: "WD_MIN_BITS", default: "1024",
        doc: "smallest RSA modulus (bits) sent to the device; smaller keys run in software" },
    KeyDoc { key: "max_bits", env: "WD_MAX_BITS", default: "4096",
        doc: "largest RSA modulus (bits) sent to the device; larger keys run in software" },
    KeyDoc { key: "offload_public", env: "WD_OFFLOAD_PUBLIC", default: "off",
        doc: "on | off: also send public-key operations (verify, encrypt) to the device (a CPU does e=65537 faster than a round trip)" },
    KeyDoc { key: "timeout_ms", env: "WD_TIMEOUT_MS", default: "5000",
        doc: "longest wait for one device completion before the request is redone in software" },
    KeyDoc { key: "poll_mode", env: "WD_POLL_MODE", default: "hybrid",
        doc: "hybrid | event: how a thread waits for the device: hybrid = sleep most of the expected time, then spin (lower latency); event = block on the queue's completion event at once (less CPU where sleeping is dear, e.g. in a VM; each wait wakes later)" },
    KeyDoc { key: "poll_spin_us", env: "WD_POLL_SPIN_US", default: "50",
        doc: "how long a waiting thread spins past a request's expected completion before blocking (0 = never spin)" },
    KeyDoc { key: "poll_margin_us", env: "WD_POLL_MARGIN_US", default: "25",
        doc: "how long before a request's expected completion a sleeping thread wakes to spin (smaller: less CPU, more wake-up lateness)" },
    KeyDoc { key: "async_coalesce_us", env: "WD_ASYNC_COALESCE_US", default: "10000",
        doc: "inside OpenSSL ASYNC jobs with 6 or more requests on a thread, the longest the thread waits for a batch of completions (a third of its requests, timed from the device's learnt pace, so at most a third of the time its requests wait anyway) instead of waking at each one: fewer wake-ups and poll rounds per request, each request up to this much later (0 = wake at every completion)" },
    KeyDoc { key: "queues", env: "WD_QUEUES", default: "64",
        doc: "most device queues this process opens (one per thread); then software" },
    KeyDoc { key: "log_level", env: "WD_LOG", default: "off",
        doc: "off | error | warn | info | debug: diagnostics on stderr" },
    KeyDoc { key: "stats_dir", env: "WD_STATS_DIR", default: "",
        doc: "directory for per-process counter files <pid>.stats, read by `wd stats` (empty = in memory only)" },
];

/// The parsed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Device source.
    pub devices: Devices,
    /// Software fallback allowed.
    pub fallback: bool,
    /// Offloaded modulus range, in bits.
    pub min_bits: u32,
    /// See `min_bits`.
    pub max_bits: u32,
    /// Offload public-key operations too.
    pub offload_public: bool,
    /// Completion timeout.
    pub timeout: Duration,
    /// Hybrid polling or the completion event alone.
    pub poll_mode: WaitMode,
    /// Spin past the expected completion before blocking.
    pub poll_spin: Duration,
    /// Wake this long before the expected completion.
    pub poll_margin: Duration,
    /// Longest coalesced wait of an ASYNC watcher (zero: never coalesce).
    pub async_coalesce: Duration,
    /// Queue pool bound.
    pub queues: usize,
    /// Log level, if set.
    pub log_level: Option<wd_core::log::Level>,
    /// Counter files directory.
    pub stats_dir: Option<PathBuf>,
    /// The uacce ioctl numbering, if configured (given to wd-core at load:
    /// [`select::set_uacce_abi`]).
    pub uacce_abi: Option<wd_core::uacce::Abi>,
    /// Device model settings: (key without `model_`, value), in table order.
    pub model: Vec<(String, String)>,
}

impl Config {
    /// The defaults, from [`KEYS`] (the one place they are written), parsed as a value in
    /// openssl.cnf would be.
    pub fn defaults() -> Result<Config> {
        let mut c = Config {
            devices: Devices::Auto,
            fallback: true,
            min_bits: 0,
            max_bits: 0,
            offload_public: false,
            timeout: Duration::ZERO,
            poll_mode: WaitMode::Hybrid,
            poll_spin: Duration::ZERO,
            poll_margin: Duration::ZERO,
            async_coalesce: Duration::ZERO,
            queues: 0,
            log_level: None,
            stats_dir: None,
            uacce_abi: None,
            model: Vec::new(),
        };
        for k in KEYS {
            c.apply(k.key, "the built-in default", k.default)?;
        }
        Ok(c)
    }
}

fn bad(key: &str, src: &str, value: &str, want: &str) -> crate::error::Error {
    crate::error::Error::new(
        Reason::Config,
        format!("invalid value {value:?} for {key} (from {src}): expected {want}"),
    )
}

fn parse_bool(key: &str, src: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        _ => Err(bad(key, src, v, "on or off")),
    }
}

fn parse_num<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    key: &str,
    src: &str,
    v: &str,
    min: T,
    max: T,
) -> Result<T> {
    match v.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(bad(key, src, v, &format!("an integer from {min} to {max}"))),
    }
}

impl Config {
    /// Builds the configuration from `section` (the provider's config values, by key) and
    /// `env` (environment lookup), env winning.
    pub fn load(
        section: impl Fn(&str) -> Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        let mut c = Config::defaults()?;
        let model: Vec<(String, String)> = model_keys()
            .iter()
            .map(|k| (format!("model_{k}"), select::model_env_var(k)))
            .collect();
        let all = KEYS
            .iter()
            .map(|k| (k.key, k.env))
            .chain(model.iter().map(|(k, e)| (k.as_str(), e.as_str())));
        for (key, var) in all {
            let from_env = env(var);
            let (value, src) = match (&from_env, section(key)) {
                (Some(v), _) => (v.clone(), var),
                (None, Some(v)) => (v, "openssl.cnf"),
                (None, None) => continue,
            };
            c.apply(key, src, &value)?;
        }
        // The selection and the model's values are checked now (load time), not when the
        // model starts: a build without the model refuses `devices = model` here.
        if c.devices.needs_model() || !c.model.is_empty() {
            let plug = select::model_plug().map_err(|_| {
                crate::error::Error::new(
                    Reason::Config,
                    format!("devices = {}: {}", c.devices, select::NO_MODEL),
                )
            })?;
            for (k, v) in &c.model {
                (plug.check)(&[(k.clone(), v.clone())]).map_err(|e| {
                    crate::error::Error::new(Reason::Config, format!("model_{k}: {e}"))
                })?;
            }
            (plug.check)(&c.model).map_err(|e| {
                crate::error::Error::new(Reason::Config, format!("model settings: {e}"))
            })?;
        }
        if c.min_bits > c.max_bits {
            return fail(
                Reason::Config,
                format!(
                    "min_bits ({}) is above max_bits ({})",
                    c.min_bits, c.max_bits
                ),
            );
        }
        Ok(c)
    }

    fn apply(&mut self, key: &str, src: &str, v: &str) -> Result<()> {
        match key {
            "devices" => {
                // `fake-uacce:<dir>` (the tests' fake kernel) parses too; like `model`, a
                // build without the model refuses it at load.
                self.devices = Devices::parse(v).map_err(|_| bad(key, src, v, select::EXPECTED))?
            }
            "fallback" => self.fallback = parse_bool(key, src, v)?,
            "min_bits" => self.min_bits = parse_num(key, src, v, 512, 16384)?,
            "max_bits" => self.max_bits = parse_num(key, src, v, 512, 16384)?,
            "offload_public" => self.offload_public = parse_bool(key, src, v)?,
            "timeout_ms" => {
                self.timeout = Duration::from_millis(parse_num(key, src, v, 1u64, 600_000)?)
            }
            "poll_mode" => {
                self.poll_mode = match v.trim().to_ascii_lowercase().as_str() {
                    "hybrid" => WaitMode::Hybrid,
                    "event" => WaitMode::Event,
                    _ => return Err(bad(key, src, v, "hybrid or event")),
                }
            }
            "poll_spin_us" => {
                self.poll_spin = Duration::from_micros(parse_num(key, src, v, 0u64, 100_000)?)
            }
            "poll_margin_us" => {
                self.poll_margin = Duration::from_micros(parse_num(key, src, v, 0u64, 100_000)?)
            }
            "async_coalesce_us" => {
                self.async_coalesce = Duration::from_micros(parse_num(key, src, v, 0u64, 100_000)?)
            }
            "queues" => self.queues = parse_num(key, src, v, 1usize, 4096)?,
            "log_level" => {
                self.log_level = Some(
                    wd_core::log::Level::parse(v)
                        .ok_or_else(|| bad(key, src, v, "off, error, warn, info or debug"))?,
                )
            }
            "stats_dir" => {
                self.stats_dir = if v.trim().is_empty() {
                    None
                } else {
                    Some(PathBuf::from(v.trim()))
                }
            }
            "uacce_abi" => {
                self.uacce_abi = if v.trim().is_empty() {
                    None
                } else {
                    Some(
                        v.parse::<wd_core::uacce::Abi>()
                            .map_err(|_| bad(key, src, v, "mainline, openeuler or empty"))?,
                    )
                }
            }
            k if k.starts_with("model_") => {
                if v.trim().is_empty() {
                    return Err(bad(key, src, v, "a value"));
                }
                self.model
                    .push((k["model_".len()..].to_string(), v.trim().to_string()));
            }
            _ => return fail(Reason::Internal, format!("key {key} has no parser")),
        }
        Ok(())
    }

    /// Checks the keys present in the provider section: every one must be ours or the
    /// core's.
    pub fn check_keys<'a>(present: impl IntoIterator<Item = &'a str>) -> Result<()> {
        for name in present {
            let known = CORE_KEYS.contains(&name)
                || KEYS.iter().any(|k| k.key == name)
                || name
                    .strip_prefix("model_")
                    .is_some_and(|m| model_keys().contains(&m));
            if !known && name.starts_with("model_") && select::model_plug().is_err() {
                return fail(
                    Reason::Config,
                    format!("key {name:?}: {}", select::NO_MODEL),
                );
            }
            if !known {
                let hint = KEYS
                    .iter()
                    .find(|k| similar(k.key, name))
                    .map(|k| format!(" (did you mean {}?)", k.key))
                    .unwrap_or_default();
                return fail(
                    Reason::Config,
                    format!("unknown key {name:?} in the wd provider section{hint}"),
                );
            }
        }
        Ok(())
    }

    /// The configuration as `key = value` lines (for the `status`-style dump and logs).
    pub fn describe(&self) -> String {
        format!(
            "devices={:?} fallback={} bits={}..{} offload_public={} timeout_ms={} poll_mode={:?} queues={}",
            self.devices,
            self.fallback,
            self.min_bits,
            self.max_bits,
            self.offload_public,
            self.timeout.as_millis(),
            self.poll_mode,
            self.queues
        )
    }
}

/// What the documentation says of the `model_<key>` keys.
const MODEL_KEYS_DOC: &str = "device model settings, in builds that carry the model (api, queues, \
                              engines, latency_us, error_every, error_ratio, stall, dir, ...)";

/// The keys as the Markdown table of `provider/README-snippet.md` (checked by a test).
pub fn markdown_table() -> String {
    let mut out = String::from("| key | env | default | meaning |\n|---|---|---|---|\n");
    for k in KEYS {
        let default = if k.default.is_empty() {
            "unset".to_string()
        } else {
            format!("`{}`", k.default)
        };
        let doc = k.doc.replace('|', "\\|");
        out += &format!("| `{}` | `{}` | {default} | {doc} |\n", k.key, k.env);
    }
    out += &format!("| `model_<key>` | `WD_MODEL_<KEY>` | the model's | {MODEL_KEYS_DOC} |\n");
    out
}

/// The keys as the comment block of `openssl.cnf.d/wd.cnf` (checked by a test): each key
/// with its default and environment variable, then its meaning wrapped to 92 columns.
pub fn cnf_comments() -> String {
    let mut out = String::new();
    let mut entry = |head: String, doc: &str| {
        out += &format!("#   {head}\n");
        let mut line = String::from("#       ");
        for word in doc.split_whitespace() {
            if line.len() + word.len() + 1 > 92 && line.trim_end() != "#" {
                out += line.trim_end();
                out.push('\n');
                line = String::from("#       ");
            }
            line += word;
            line.push(' ');
        }
        out += line.trim_end();
        out.push('\n');
    };
    for k in KEYS {
        let default = if k.default.is_empty() {
            "(unset)"
        } else {
            k.default
        };
        entry(format!("{} = {default}   [{}]", k.key, k.env), k.doc);
    }
    entry(
        "model_<key> = value   [WD_MODEL_<KEY>]".into(),
        MODEL_KEYS_DOC,
    );
    out
}

/// The keys of the plugged-in device model (none in a build without it).
fn model_keys() -> &'static [&'static str] {
    select::model_plug().map_or(&[], |p| p.keys)
}

/// Edit distance ≤ 2 (for "did you mean").
fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(sec: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Config> {
        #[cfg(feature = "model")]
        hisi_model::plug();
        let s: HashMap<String, String> = sec
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(|k| s.get(k).cloned(), |k| e.get(k).cloned())
    }

    #[test]
    fn defaults_and_values() {
        let c = load(&[], &[]).unwrap();
        assert_eq!(c.devices, Devices::Auto);
        assert!(c.fallback);
        let c = load(&[("devices", "none"), ("fallback", "off")], &[]).unwrap();
        assert_eq!(c.devices, Devices::None);
        assert!(!c.fallback);
        assert_eq!(c.poll_mode, WaitMode::Hybrid);
        let c = load(&[("poll_mode", "event")], &[]).unwrap();
        assert_eq!(c.poll_mode, WaitMode::Event);
        let c = load(&[("poll_mode", "event")], &[("WD_POLL_MODE", "Hybrid")]).unwrap();
        assert_eq!(c.poll_mode, WaitMode::Hybrid);
        assert_eq!(c.uacce_abi, None);
        let c = load(&[("uacce_abi", "mainline")], &[]).unwrap();
        assert_eq!(c.uacce_abi, Some(wd_core::uacce::Abi::Mainline));
        let c = load(
            &[("uacce_abi", "mainline")],
            &[("WD_UACCE_ABI", "openeuler")],
        )
        .unwrap();
        assert_eq!(c.uacce_abi, Some(wd_core::uacce::Abi::OpenEuler));
        let c = load(&[("devices", "vfio")], &[]).unwrap();
        assert_eq!(c.devices, Devices::Vfio);
    }

    #[cfg(feature = "model")]
    #[test]
    fn model_keys_go_to_the_model_and_are_checked_at_load() {
        let c = load(&[("devices", "model"), ("model_engines", "2")], &[]).unwrap();
        assert_eq!(c.devices, Devices::Model);
        assert_eq!(c.model, vec![("engines".to_string(), "2".to_string())]);
        let c = load(&[], &[("WD_DEVICES", "fake-uacce:/fixture")]).unwrap();
        assert_eq!(c.devices, Devices::FakeUacce("/fixture".into()));
        let c = load(&[("model_engines", "2")], &[("WD_MODEL_ENGINES", "3")]).unwrap();
        assert_eq!(c.model, vec![("engines".to_string(), "3".to_string())]);
        let e = load(&[("model_engines", "lots")], &[]).unwrap_err();
        assert_eq!(e.reason, Reason::Config);
        Config::check_keys(["model_api"]).unwrap();
    }

    #[cfg(not(feature = "model"))]
    #[test]
    fn a_build_without_the_model_refuses_it_at_load() {
        let e = load(&[("devices", "model")], &[]).unwrap_err();
        assert_eq!(e.reason, Reason::Config);
        assert!(e.msg.contains("no device model"), "{e}");
        let e = load(&[], &[("WD_DEVICES", "model")]).unwrap_err();
        assert!(e.msg.contains("no device model"), "{e}");
        let e = load(&[], &[("WD_DEVICES", "fake-uacce:/tmp")]).unwrap_err();
        assert!(e.msg.contains("no device model"), "{e}");
        let e = Config::check_keys(["model_api"]).unwrap_err();
        assert!(e.msg.contains("no device model"), "{e}");
    }

    #[test]
    fn env_wins_and_is_checked() {
        let c = load(&[("fallback", "off")], &[("WD_FALLBACK", "on")]).unwrap();
        assert!(c.fallback);
        let e = load(&[], &[("WD_FALLBACK", "maybe")]).unwrap_err();
        assert!(e.msg.contains("WD_FALLBACK"), "{e}");
    }

    #[test]
    fn bad_values_are_errors() {
        for (k, v) in [
            ("devices", "gpu"),
            ("min_bits", "12"),
            ("timeout_ms", "x"),
            ("log_level", "loud"),
            ("queues", "0"),
            ("poll_mode", "busy"),
            ("uacce_abi", "linux"),
        ] {
            let e = load(&[(k, v)], &[]).unwrap_err();
            assert_eq!(e.reason, Reason::Config);
            assert!(e.msg.contains(k), "{e}");
        }
        assert!(load(&[("min_bits", "4096"), ("max_bits", "2048")], &[]).is_err());
    }

    #[test]
    fn the_defaults_are_those_of_the_table() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.devices, Devices::Auto);
        assert!(c.fallback);
        assert_eq!((c.min_bits, c.max_bits), (1024, 4096));
        assert!(!c.offload_public);
        assert_eq!(c.timeout, Duration::from_millis(5000));
        assert_eq!(c.poll_mode, WaitMode::Hybrid);
        assert_eq!(c.queues, 64);
        assert_eq!(c.stats_dir, None);
        for k in KEYS {
            assert!(k.env.starts_with("WD_"), "{}", k.key);
            assert!(!k.doc.is_empty(), "{}", k.key);
        }
    }

    /// The documentation's copies of the table are generated from [`KEYS`]: between the
    /// markers, provider/README-snippet.md holds [`markdown_table`] and openssl.cnf.d/wd.cnf
    /// holds [`cnf_comments`]. `WD_BLESS=1 cargo test -p wd-provider` rewrites them.
    #[test]
    fn the_documented_keys_are_generated_from_the_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let docs = [
            (
                root.join("provider/README-snippet.md"),
                "<!-- keys: generated from provider/src/config.rs KEYS -->\n",
                "<!-- keys: end -->\n",
                markdown_table(),
            ),
            (
                root.join("openssl.cnf.d/wd.cnf"),
                "# -- keys of [wd_sect]: generated from provider/src/config.rs KEYS --\n",
                "# -- end of keys --\n",
                cnf_comments(),
            ),
        ];
        let bless = std::env::var_os("WD_BLESS").is_some();
        for (path, begin, end, want) in docs {
            let text = std::fs::read_to_string(&path).unwrap();
            let a = text
                .find(begin)
                .unwrap_or_else(|| panic!("{}: no {begin:?}", path.display()));
            let b = text[a..]
                .find(end)
                .map(|i| a + i)
                .unwrap_or_else(|| panic!("{}: no {end:?}", path.display()));
            let have = &text[a + begin.len()..b];
            if have != want {
                if bless {
                    let new = format!("{}{begin}{want}{}", &text[..a], &text[b..]);
                    std::fs::write(&path, new).unwrap();
                } else {
                    panic!(
                        "{} is out of date with config::KEYS (WD_BLESS=1 cargo test -p \
                         wd-provider regenerates it); expected:\n{want}",
                        path.display()
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_keys_are_errors_with_a_hint() {
        Config::check_keys(["module", "activate", "devices"]).unwrap();
        let e = Config::check_keys(["fallbak"]).unwrap_err();
        assert!(e.msg.contains("did you mean fallback"), "{e}");
    }
}
