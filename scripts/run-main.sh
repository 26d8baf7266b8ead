#!/usr/bin/env bash
# The main job: install what is needed, build and install the wd provider, and run
# `openssl speed rsa2048` through it on the HPRE device model (no accelerator needed), then
# show the provider's counters proving the signatures ran on the (model) device.
#
#   scripts/run-main.sh [SECONDS]      (default 3 seconds per speed phase)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3}"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== building and installing the provider (wd.so)" >&2
moddir="$(provider/install.sh | tail -1)"
cargo build -q --release -p wd-cli
target="${CARGO_TARGET_DIR:-target}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export WD_STATS_DIR="$work/stats" WD_MODEL_DIR="$work/model"
mkdir -p "$WD_STATS_DIR" "$WD_MODEL_DIR"

echo "== OPENSSL_CONF=openssl.cnf.d/wd-model.cnf openssl speed -seconds $secs rsa2048" >&2
OPENSSL_MODULES="$moddir" OPENSSL_CONF=openssl.cnf.d/wd-model.cnf \
    openssl speed -seconds "$secs" rsa2048

echo
echo "== wd stats (every process that used the provider)"
"$target/release/wd" stats "$WD_STATS_DIR"
