#!/usr/bin/env bash
# Full TLS handshakes per second through stock HAProxy (one thread, ssl-mode-async,
# RSA-2048) with wd on the device model (2 engines) against the default provider, and wd
# without ssl-mode-async for reference, in one run, concurrent s_time clients. Bounded:
# 3 rounds x 4 s per side, 4 clients, unless --rounds/--seconds/--clients say otherwise.
# Goal (issue 10): ratio >= 1.0 with zero failed handshakes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p wd-provider -p wd-tests --examples >&2
exec cargo run -q --release -p wd-tests --example haproxy_load -- "$@"
