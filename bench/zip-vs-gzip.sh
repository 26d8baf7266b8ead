#!/usr/bin/env bash
# wd zip (ZIP path on the device model) against gzip -6 and gzip -1 on a ~100 MB mixed
# corpus built from files on this machine (headers, docs, /usr/share data, shared
# libraries, executables), side by side in one run. Prints throughput and sizes.
#
# Usage: bench/zip-vs-gzip.sh [CORPUS]   (default: builds /tmp/wd-zip-corpus.tar)
# Knobs: WD_MODEL_ENGINES (default 2 here: the ZIP device's engine cores), WD_MODEL_ZIP_LEVEL.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
corpus=${1:-/tmp/wd-zip-corpus.tar}
if [ ! -s "$corpus" ]; then
  list=$(mktemp)
  pick() { # dir max-bytes find-args...
    local dir=$1 max=$2; shift 2
    find "$dir" -type f -size +1k -size -8M "$@" 2>/dev/null | LC_ALL=C sort |
      while read -r f; do s=$(stat -c %s "$f"); tot=$((${tot:-0} + s)); [ $tot -gt "$max" ] && break; echo "$f"; done \
      || true  # stopping early ends find/sort with SIGPIPE: expected, not a failure
  }
  { pick /usr/include 25000000; pick /usr/share/doc 10000000
    pick /usr/share 15000000 -not -path '*/doc/*'
    pick /usr/lib/x86_64-linux-gnu 35000000 -name '*.so*'; pick /usr/bin 15000000; } > "$list"
  tar cf "$corpus" --no-recursion -T "$list" 2>/dev/null || true
  rm -f "$list"
fi
cargo build -q --release -p wd-cli
wd=$CARGO_TARGET_DIR/release/wd
size=$(stat -c %s "$corpus")
export WD_DEVICES=model WD_MODEL_ENGINES=${WD_MODEL_ENGINES:-2} WD_MODEL_DIR=$(mktemp -d)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$WD_MODEL_DIR"' EXIT
t() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc; }
printf "corpus %s: %d bytes, %d cores, model engines %s\n" "$corpus" "$size" "$(nproc)" "$WD_MODEL_ENGINES"
printf "%-26s %8s %10s %11s %8s\n" tool seconds MB/s size ratio
row() { printf "%-26s %8.3f %10.1f %11d %8.3f\n" "$1" "$2" "$(echo "$size / $2 / 1000000" | bc -l)" "$3" "$(echo "$3 / $size" | bc -l)"; }
g6=$(t sh -c "gzip -6 -c '$corpus' > $tmp/g6.gz"); row "gzip -6" "$g6" "$(stat -c %s $tmp/g6.gz)"
g1=$(t sh -c "gzip -1 -c '$corpus' > $tmp/g1.gz"); row "gzip -1" "$g1" "$(stat -c %s $tmp/g1.gz)"
w=$(t sh -c "'$wd' zip -c '$corpus' > $tmp/w.gz"); row "wd zip (model)" "$w" "$(stat -c %s $tmp/w.gz)"
w1=$(t sh -c "WD_MODEL_ENGINES=1 '$wd' zip -c '$corpus' > $tmp/w1.gz"); row "wd zip (model, 1 engine)" "$w1" "$(stat -c %s $tmp/w1.gz)"
ws=$(t sh -c "WD_DEVICES=none '$wd' zip -c -6 '$corpus' > $tmp/ws.gz"); row "wd zip (software -6)" "$ws" "$(stat -c %s $tmp/ws.gz)"
gzip -dc $tmp/w.gz | cmp - "$corpus"
echo "decompress:"
d1=$(t sh -c "gzip -dc $tmp/g6.gz > /dev/null"); row "gzip -d (gzip -6 file)" "$d1" "$(stat -c %s $tmp/g6.gz)"
d2=$(t sh -c "'$wd' zip -d -c $tmp/g6.gz > /dev/null"); row "wd zip -d (gzip -6 file)" "$d2" "$(stat -c %s $tmp/g6.gz)"
d3=$(t sh -c "'$wd' zip -d -c $tmp/w.gz > /dev/null"); row "wd zip -d (wd file)" "$d3" "$(stat -c %s $tmp/w.gz)"
echo "wd zip vs gzip -6: $(echo "$g6 / $w" | bc -l | cut -c1-5)x throughput, size $(echo "$(stat -c %s $tmp/w.gz) * 100 / $(stat -c %s $tmp/g6.gz) - 100" | bc -l | cut -c1-5)%"
