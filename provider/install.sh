#!/usr/bin/env bash
# Builds the wd provider (release) and installs it where OpenSSL finds it as `wd.so`.
#
#   provider/install.sh            build, then copy to target/ossl-modules/wd.so (or
#                                  $CARGO_TARGET_DIR/ossl-modules) for OPENSSL_MODULES=...
#   provider/install.sh --system   build the production flavour (no device model, no fake
#                                  kernel: --no-default-features, into $target/production)
#                                  and install it into OpenSSL's MODULESDIR (`openssl version -m`)
#   provider/install.sh --debug    use the debug build (faster to build; for tests)
#
# Prints the module directory on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
profile=release
system=0
for a in "$@"; do
    case "$a" in
        --system) system=1 ;;
        --debug) profile=debug ;;
        *) echo "usage: $0 [--system] [--debug]" >&2; exit 2 ;;
    esac
done
target="${CARGO_TARGET_DIR:-$root/target}"
flags=(-p wd-provider)
[ "$profile" = release ] && flags+=(--release)
if [ "$system" = 1 ]; then
    # What a host with an accelerator runs: without the model (kept apart from the developer
    # build so that neither overwrites the other).
    target="$target/production"
    flags+=(--no-default-features --target-dir "$target")
fi
(cd "$root" && cargo build -q "${flags[@]}")
lib="$target/$profile/libwd_provider.so"
[ -f "$lib" ] || { echo "install.sh: $lib was not built" >&2; exit 1; }
moddir="$target/ossl-modules"
mkdir -p "$moddir"
# Copy (not link) so that a later build of the other profile does not swap it underneath.
cp -f "$lib" "$moddir/wd.so.tmp" && mv -f "$moddir/wd.so.tmp" "$moddir/wd.so"
if [ "$system" = 1 ]; then
    sysdir="$(openssl version -m | sed -E 's/^MODULESDIR: "(.*)"$/\1/')"
    install -D -m 0755 "$lib" "$sysdir/wd.so"
    echo "installed $sysdir/wd.so" >&2
fi
echo "$moddir"
