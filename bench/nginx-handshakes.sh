#!/usr/bin/env bash
# Full TLS handshakes per second through stock nginx (2 workers, RSA-2048) with wd on the
# device model, once per poll_mode (hybrid, event), against the default provider, in one
# run. Bounded: 3 rounds x 4 s per side unless --rounds/--seconds say otherwise. Goal: ratio
# >= 0.95 with zero failed handshakes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p wd-provider -p wd-tests --examples >&2
exec cargo run -q --release -p wd-tests --example nginx_load -- "$@"
