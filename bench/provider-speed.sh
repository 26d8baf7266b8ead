#!/usr/bin/env bash
# RSA-2048 sign throughput: the default provider alone vs the wd provider on the device
# model, in one run, with the application thread's CPU time per offloaded signature.
#
#   bench/provider-speed.sh [SECONDS]        (default 5; env ENGINES=1, SPIN_US=50)
#
# How the CPU time is separated: `openssl speed` signs on its main thread; the device
# model's engine threads live in the same process. While speed runs, this script samples
# the main thread's own CPU time (/proc/PID/task/PID/stat: utime+stime) and the provider's
# offload counter (the shared-memory counters file in WD_STATS_DIR); the CPU delta over the
# counter delta inside the sign phase is the application thread's CPU per offloaded sign,
# which excludes the engine threads (reported separately, from their own task stats). The
# provider's own figure (CPU inside the offload path, counter offload_cpu_ns) is printed
# too. A software sign costs one core for 1/(default sign/s).
set -euo pipefail
secs="${1:-5}"
engines="${ENGINES:-1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
moddir="$("$root/provider/install.sh" | tail -1)"
stats_bin="$CARGO_TARGET_DIR/release/wd-stats"
(cd "$root" && cargo build -q --release -p wd-provider --bin wd-stats)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tck="$(getconf CLK_TCK)"

signs_per_s() { awk '/^rsa 2048 bits/ {print $6}' "$1"; }

echo "== default provider alone: openssl speed -elapsed -seconds $secs rsa2048"
OPENSSL_CONF=/dev/null openssl speed -elapsed -seconds "$secs" rsa2048 > "$work/default.out" 2>/dev/null
def="$(signs_per_s "$work/default.out")"
grep '^rsa 2048' "$work/default.out"

echo "== wd on the device model ($engines engine thread(s)): same command, OPENSSL_CONF=wd-model.cnf"
mkdir -p "$work/stats"
if [ -n "${SPIN_US:-}" ]; then export WD_POLL_SPIN_US="$SPIN_US"; fi
OPENSSL_MODULES="$moddir" OPENSSL_CONF="$root/openssl.cnf.d/wd-model.cnf" \
    WD_STATS_DIR="$work/stats" WD_MODEL_DIR="$work/model" WD_MODEL_ENGINES="$engines" \
    openssl speed -elapsed -seconds "$secs" rsa2048 > "$work/wd.out" 2>/dev/null &
pid=$!
task_ticks() { # utime+stime of one task, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/task/$1/stat" 2>/dev/null || echo 0
}
: > "$work/samples"
while kill -0 "$pid" 2>/dev/null; do
    main="$(task_ticks "$pid")"
    others=0
    for t in /proc/"$pid"/task/*; do
        tid="${t##*/}"
        [ "$tid" = "$pid" ] && continue
        others=$((others + $(task_ticks "$tid")))
    done
    ops="$("$stats_bin" "$work/stats" --get offload_private 2>/dev/null || echo 0)"
    echo "$(date +%s.%N) $main $others $ops" >> "$work/samples"
    sleep 0.1
done
wait "$pid" || { echo "openssl speed on wd failed" >&2; exit 1; }
wd="$(signs_per_s "$work/wd.out")"
grep '^rsa 2048' "$work/wd.out"
"$stats_bin" "$work/stats" | grep -E 'offload_private|fallback|device_errors|offload_cpu_ns'

# Sign phase: from the first sample with offloads to the last one where the count grew.
read -r first last < <(awk '$4 > 0 && !f { f = NR } $4 > prev { l = NR } { prev = $4 } END { print f, l }' "$work/samples")
awk -v f="$first" -v l="$last" -v tck="$tck" -v def="$def" -v wd="$wd" \
    -v cpu_ns="$("$stats_bin" "$work/stats" --get offload_cpu_ns)" \
    -v total="$("$stats_bin" "$work/stats" --get offload_private)" '
    NR == f { m0 = $2; o0 = $3; n0 = $4 }
    NR == l { m1 = $2; o1 = $3; n1 = $4 }
    END {
        sw_us = 1e6 / def
        ops = n1 - n0
        app_us = ops > 0 ? (m1 - m0) / tck * 1e6 / ops : 0
        eng_us = ops > 0 ? (o1 - o0) / tck * 1e6 / ops : 0
        prov_us = total > 0 ? cpu_ns / total / 1000 : 0
        printf "\nratio (wd / default sign/s):                 %.3f   (goal >= 0.97)\n", wd / def
        printf "software sign (1 core):                      %.1f us\n", sw_us
        printf "app thread CPU per offloaded sign:           %.1f us = %.1f%% of a software sign (goal <= 5%%)  [%d signs sampled]\n", app_us, 100 * app_us / sw_us, ops
        printf "  of which inside the provider offload path: %.1f us (offload_cpu_ns / offload_private)\n", prov_us
        printf "model engine threads CPU per sign:           %.1f us\n", eng_us
    }' "$work/samples"
