#!/usr/bin/env bash
# Installs what wd needs to build and test on Debian 12: a C toolchain, pkg-config,
# OpenSSL 3 headers, the openssl CLI, gzip/zlib, nginx, haproxy and curl (used by the tests),
# and a Rust toolchain if none is present.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

for p in build-essential pkg-config libssl-dev openssl zlib1g-dev gzip nginx haproxy curl python3 ca-certificates procps bc; do
    pkg_installed "$p" || need_pkgs+=("$p")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ "${#need_pkgs[@]}" -gt 0 ]; then
    echo "setup: installing ${need_pkgs[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    # Debian starts nginx and haproxy on install; the tests run their own instances.
    $SUDO systemctl disable --now nginx >/dev/null 2>&1 || $SUDO service nginx stop >/dev/null 2>&1 || true
    $SUDO systemctl disable --now haproxy >/dev/null 2>&1 || $SUDO service haproxy stop >/dev/null 2>&1 || true
fi

if ! have cargo; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "setup: no Rust toolchain; installing one with rustup" >&2
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi
for c in clippy rustfmt; do
    if ! cargo "$c" --version >/dev/null 2>&1; then
        rustup component add "$c" >/dev/null 2>&1 || { echo "setup: cargo $c missing" >&2; exit 1; }
    fi
done
