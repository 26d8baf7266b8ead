#!/usr/bin/env bash
# Runs every check and test of wd: formatting, clippy (warnings are errors), the whole
# workspace's unit and end-to-end tests (device model, provider under the real openssl
# binary, C API from C, nginx), in release mode so the timing-sensitive paths are realistic;
# then the production flavour (scripts/check-production.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --release -- -D warnings
echo "== cargo build"
cargo build --workspace --release --all-targets
echo "== cargo test"
cargo test --workspace --release --no-fail-fast -- --test-threads="${WD_TEST_THREADS:-2}"
echo "== production flavour (no device model, no fake kernel)"
bash scripts/check-production.sh
