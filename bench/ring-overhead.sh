#!/usr/bin/env bash
# Runs the ring benchmark and prints, from criterion's medians of one run, the time each
# operation spends in the QM ring and the device model beyond the bignum work (goal: at most
# 2 µs), and the throughput with 64 requests in flight on one queue; then the paired
# measurement of bench/examples/ring_paired.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
rm -rf "$target/criterion/rsa1024-public" "$target/criterion/rsa2048-crt" "$target/criterion/rsa1024-public-64-in-flight"
cargo bench -p wd-bench --bench ring -- --noplot "$@" >&2
python3 - "$target/criterion" <<'PY'
import json, sys, os
root = sys.argv[1]
def med(group, name):
    with open(os.path.join(root, group, name, "new", "estimates.json")) as f:
        return json.load(f)["median"]["point_estimate"]  # ns
for g in ("rsa1024-public", "rsa2048-crt"):
    d, r, h = med(g, "direct"), med(g, "ring"), med(g, "ring-hybrid-wait")
    print(f"{g:16s} direct {d/1000:8.2f} us | ring (spin wait) {r/1000:8.2f} us, added {(r-d)/1000:6.2f} us"
          f" | ring (hybrid wait) {h/1000:8.2f} us, added {(h-d)/1000:6.2f} us  (medians)")
t = med("rsa1024-public-64-in-flight", "ring")
print(f"rsa1024-public with 64 in flight on one queue: {1e9/t:,.0f} ops/s ({t/1000:.2f} us per op)")
PY
# The same added time measured paired (ring and direct blocks alternating, so both medians
# come from the same stretch of the machine), five runs per operation.
cargo run -q --release -p wd-bench --example ring_paired
