//! Quiet-by-default diagnostics, turned up with `WD_LOG=error|warn|info|debug` or by the
//! provider configuration ([`set_level`]).

use std::sync::atomic::{AtomicU8, Ordering};

/// Log levels, from silent to chatty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Nothing is printed.
    Off = 0,
    /// Errors only.
    Error = 1,
    /// Errors and warnings (fallbacks, device faults).
    Warn = 2,
    /// Plus queue and device life cycle.
    Info = 3,
    /// Everything.
    Debug = 4,
}

impl Level {
    /// Parses `off`, `error`, `warn`, `info`, `debug` (or 0–4).
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "0" => Level::Off,
            "error" | "1" => Level::Error,
            "warn" | "warning" | "2" => Level::Warn,
            "info" | "3" => Level::Info,
            "debug" | "4" => Level::Debug,
            _ => return None,
        })
    }
}

const UNSET: u8 = u8::MAX;
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);

/// Sets the level for the whole process.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// The level in force: what [`set_level`] said, else `WD_LOG`, else off.
pub fn level() -> Level {
    let v = LEVEL.load(Ordering::Relaxed);
    if v != UNSET {
        return match v {
            0 => Level::Off,
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            _ => Level::Debug,
        };
    }
    let l = std::env::var("WD_LOG")
        .ok()
        .and_then(|s| Level::parse(&s))
        .unwrap_or(Level::Off);
    LEVEL.store(l as u8, Ordering::Relaxed);
    l
}

/// True when messages of `l` are printed.
pub fn enabled(l: Level) -> bool {
    l != Level::Off && l <= level()
}

/// Writes one line to stderr and ignores a failure: a closed or full stderr (a daemon's
/// pipe whose reader went away) must not turn a diagnostic into a panic in the middle of
/// a request (`eprintln!` panics when the write fails).
pub fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// Prints a message to stderr when its level is enabled (never panics: [`emit`]).
#[macro_export]
macro_rules! wd_log {
    ($lvl:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$lvl) {
            $crate::log::emit(format_args!("wd[{}] {}: {}", std::process::id(), stringify!($lvl).to_ascii_lowercase(), format_args!($($arg)*)));
        }
    };
}
