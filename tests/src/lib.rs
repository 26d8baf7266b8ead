//! Support for wd's end-to-end tests and benchmarks: locating the built provider, running
//! stock nginx as a fixture, reading the provider's per-process counters, test data.
//!
//! The tests themselves live in `tests/tests/*.rs`.

pub mod build;
pub mod child;
pub mod corpus;
pub mod fuzz;
pub mod haproxy;
pub mod nginx;
pub mod ossl;
pub mod pci;
pub mod rng;
pub mod zip_offload;
pub mod zref;
