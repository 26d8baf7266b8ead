//! `wd`: an OpenSSL 3 provider that sends RSA work to HiSilicon HPRE accelerator queues
//! (through wd-core and the hisi-hpre user driver) and falls back to software through a
//! child library context of the application's.
//!
//! Layout: `provider` (init, configuration, lookup); one file per operation type —
//! `keymgmt`, `signature`, `asym_cipher`, `rand` — each ending in its dispatch table; `offload`
//! (device or software, counted, with the fault-attack guard); `software` (the child
//! library context); `padding`; `key`; `config` and `stats`; `ffi` (the provider ABI);
//! `error` (reason codes and the raise helper). The module exports one symbol,
//! `OSSL_provider_init`.

// Most types here wrap C handles or raw parameter arrays, where a Debug view says nothing.
#![allow(missing_debug_implementations)]

pub mod asym_cipher;
pub mod config;
pub mod ctx;
pub mod digestinfo;
pub mod error;
pub mod ffi;
pub mod guard;
pub mod key;
pub mod keymgmt;
pub mod magnitude;
pub mod offload;
pub mod outbuf;
pub mod ossl;
pub mod padding;
pub mod params;
pub mod policy;
pub mod provider;
pub mod rand;
pub mod signature;
pub mod software;
pub mod stats;
