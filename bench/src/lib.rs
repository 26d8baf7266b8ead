//! Benchmarks live in benches/ and the scripts beside this crate.
