#!/usr/bin/env bash
# The production flavour: wd.so, libwd.so and the wd command built without the device model
# and the fake kernel (`--no-default-features`, as `provider/install.sh --system` builds).
# Checks that
#   1. no production crate depends on hisi-model (cargo tree) and no driver crate does at all;
#   2. no production artifact contains a symbol of the model or of the fake kernel, while the
#      default (developer) build's wd.so does contain them (so the check can fail);
#   3. the provider's tests that need no device pass against the production wd.so;
#   4. the production artifacts refuse the model with a clear error.
# Run by scripts/test.sh; builds into target/production (or $CARGO_TARGET_DIR/production).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
base="${CARGO_TARGET_DIR:-$PWD/target}"
prod="$base/production"
fail() { echo "check-production: FAIL: $*" >&2; exit 1; }

# Model and fake-kernel symbols, demangled: the model crate, the fake uacce kernel of wd-core
# and the model's device side of it, the fake VFIO kernel and pagemap.
pattern='hisi_model::|wd_core::uacce::fake::|wd_core::vfio::fake::|FakeKernel|ModelSide|FakeVfio|FakePhys|StaticShareDma'

echo "== production: dependency graph"
for p in wd-provider wd-capi wd-cli; do
    if cargo tree -q -p "$p" --no-default-features -e normal,build | grep -q 'hisi-model'; then
        fail "$p (production) depends on hisi-model"
    fi
done
for p in hisi-qm hisi-hpre hisi-zip; do
    if cargo tree -q -p "$p" -e normal,build,dev | grep -q 'hisi-model'; then
        fail "driver crate $p depends on hisi-model"
    fi
done
echo "ok: no production crate and no driver crate depends on the model"

echo "== production: clippy and build (--no-default-features)"
cargo clippy -q --release --target-dir "$prod" --no-default-features \
    -p wd-provider -p wd-capi -p wd-cli --all-targets -- -D warnings
cargo build -q --release --target-dir "$prod" --no-default-features \
    -p wd-provider -p wd-capi -p wd-cli
rel="$prod/release"
for a in "$rel/libwd_provider.so" "$rel/libwd.so" "$rel/wd"; do
    [ -f "$a" ] || fail "$a was not built"
    n="$(nm -C "$a" 2>/dev/null | grep -cE "$pattern" || true)"
    [ "$n" = 0 ] || fail "$a contains $n model/fake-kernel symbols: $(nm -C "$a" | grep -E "$pattern" | head -3)"
    echo "ok: $(basename "$a"): no model or fake-kernel symbols ($(nm "$a" | wc -l) symbols)"
done

# The same check on the developer build must find the model, or the check proves nothing.
cargo build -q --release -p wd-provider --lib
dev_syms="$(nm -C "$base/release/libwd_provider.so" | grep -cE "$pattern" || true)"
[ "$dev_syms" -gt 0 ] || fail "the developer wd.so has no model symbols: the pattern is wrong"
echo "ok: control: the developer wd.so has $dev_syms model symbols"

echo "== production: the model is refused with a clear error"
out="$(WD_DEVICES=model "$rel/wd" list 2>&1 || true)"
grep -q "no device model" <<<"$out" || fail "wd list with WD_DEVICES=model said: $out"
echo "ok: wd: $(head -1 <<<"$out")"

echo "== production: provider tests that need no device, against the production wd.so"
cargo test -q --release --target-dir "$prod" --no-default-features -p wd-provider \
    -- --test-threads="${WD_TEST_THREADS:-2}"
echo "check-production: all checks passed"
