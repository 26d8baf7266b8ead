//! `wd`: an OpenSSL 3 provider that sends RSA work to HiSilicon HPRE accelerator queues
//! (through wd-core and the hisi-hpre user driver) and falls back to software through a
//! child library context of the application's.
//!
//! Layout, outside in:
//! - `provider`: init, the provider's parameters, the algorithm query (the only module
//!   that names the operations' dispatch tables); `ctx`: the loaded instance (`ProvCtx`).
//! - One directory per operation — `keymgmt`, `signature`, `asym_cipher`, `rand` — with its
//!   logic in `mod.rs` (safe code) and its C entry points and dispatch table in `ffi.rs`;
//!   `outbuf`: the caller's output buffer, shared by signature and asym_cipher. `keymgmt`
//!   serves RSA and RSA-PSS keys (two dispatch tables; an RSA-PSS key's restrictions in
//!   `keymgmt/pss.rs`, enforced by the signature).
//! - `policy`: offload or software, and why (counted); `offload`: the process's HPRE queues
//!   and the device call; `inflight`: requests in flight from OpenSSL ASYNC jobs, routed to
//!   their jobs by tag; `async_job`: the ASYNC C API and the jobs' wait descriptors;
//!   `guard`: the fault-attack guard on device results; `software`: the child library
//!   context and the default provider in it.
//! - `key` (the key material), `padding`, `digestinfo`, `magnitude`; `config`, `stats`.
//! - The C boundary: `ffi` (the provider ABI, `dispatch!`), `ossl` (owned libcrypto
//!   objects, `ParamBld`), `params` (OSSL_PARAM arrays); `error` (reason codes, the raise
//!   helper, the `entry` panic guards). The module exports one symbol, `OSSL_provider_init`.

// Most types here wrap C handles or raw parameter arrays, where a Debug view says nothing.
#![allow(missing_debug_implementations)]

pub mod asym_cipher;
pub mod async_job;
pub mod coalesce;
pub mod config;
pub mod ctx;
pub mod digestinfo;
pub mod error;
pub mod ffi;
pub mod guard;
pub mod inflight;
pub mod key;
pub mod keymgmt;
pub mod magnitude;
pub mod offload;
pub mod ossl;
pub mod outbuf;
pub mod padding;
pub mod params;
pub mod policy;
pub mod provider;
pub mod rand;
pub mod signature;
pub mod software;
pub mod stats;
