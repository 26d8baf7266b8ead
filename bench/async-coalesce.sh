#!/usr/bin/env bash
# Coalesced completions under ASYNC jobs (provider key async_coalesce_us), off against on,
# side by side: `openssl speed -elapsed -async_jobs N -provider wd rsa2048` on the device
# model, runs alternating between WD_ASYNC_COALESCE_US=0 and the given bound, printing per
# run sign/s, the application thread's CPU per offloaded sign, its voluntary context
# switches (sleeps) per sign, the coalesced waits and the times batches were given up
# because they slowed the device; then the summed ratios.
#
#   bench/async-coalesce.sh [SECONDS] [ROUNDS]   (defaults 4 and 3; env ASYNC_JOBS="8 32 64",
#                                                 ENGINES=2, BOUND_US=10000; on a host with
#                                                 an HPRE device CONF=<openssl.cnf loading wd>)
#
# A device with about as many engines as requests, where holding batches back would idle
# engines (docs/hardware.md item 18), on the model: engines that mostly wait, not compute:
#   ENGINES=8 WD_MODEL_LATENCY_US=5000 ASYNC_JOBS=8 bench/async-coalesce.sh
# (sign/s on/off should stay near 1, with batches given up).
#
# The application thread's CPU is sampled from /proc/PID/task/PID/schedstat inside the
# sign phase (0.7 s after the start to 0.5 s before its end) against the provider's
# offload counter read from its stats file at the same moments.
set -euo pipefail
secs="${1:-4}"
rounds="${2:-3}"
[ "$(echo "$secs >= 2" | bc)" = 1 ] || { echo "SECONDS must be at least 2" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
moddir="$("$root/provider/install.sh" | tail -1)"
(cd "$root" && cargo build -q --release -p wd-cli --bin wd)
wd="$CARGO_TARGET_DIR/release/wd"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bound="${BOUND_US:-10000}"

# One run with WD_ASYNC_COALESCE_US=$1 and -async_jobs $2: prints
# "sign/s app_ns signs sleeps coalesced_waits".
run() {
    local st="$work/st.$RANDOM" md="$work/md"
    mkdir -p "$st"
    WD_ASYNC_COALESCE_US="$1" OPENSSL_MODULES="$moddir" \
        OPENSSL_CONF="${CONF:-$root/openssl.cnf.d/wd-model.cnf}" WD_STATS_DIR="$st" \
        WD_MODEL_DIR="$md" WD_MODEL_ENGINES="${ENGINES:-2}" \
        openssl speed -elapsed -seconds "$secs" -async_jobs "$2" rsa2048 > "$st/out" 2>/dev/null &
    local pid=$!
    sleep 0.7
    local c0 n0 v0 c1 n1 v1
    c0="$(awk '{print $1}' "/proc/$pid/task/$pid/schedstat")"
    v0="$(awk '/^voluntary/ {print $2}' "/proc/$pid/task/$pid/status")"
    n0="$("$wd" stats --get offload_private "$st")"
    sleep "$(echo "$secs - 1.2" | bc)"
    c1="$(awk '{print $1}' "/proc/$pid/task/$pid/schedstat")"
    v1="$(awk '/^voluntary/ {print $2}' "/proc/$pid/task/$pid/status")"
    n1="$("$wd" stats --get offload_private "$st")"
    wait "$pid" || { echo "openssl speed failed" >&2; exit 1; }
    [ "$("$wd" stats --get fallback_device_error "$st")" = 0 ] ||
        { echo "device errors in the run:" >&2; "$wd" stats "$st" >&2; exit 1; }
    echo "$(awk '/^rsa 2048 bits/ {print $6}' "$st/out") $((c1 - c0)) $((n1 - n0)) $((v1 - v0)) $("$wd" stats --get async_coalesced_waits "$st") $("$wd" stats --get async_batches_given_up "$st")"
}

echo "== openssl speed -async_jobs N -provider wd rsa2048 (${CONF:-the device model, ${ENGINES:-2} engines}): async_coalesce_us 0 vs $bound, $rounds alternating rounds of $secs s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
for n in ${ASYNC_JOBS:-8 32 64}; do
    declare -A sum=([s0]=0 [s1]=0 [c0]=0 [c1]=0 [n0]=0 [n1]=0 [v0]=0 [v1]=0)
    for r in $(seq "$rounds"); do
        for side in 0 1; do
            b=0; [ "$side" = 1 ] && b="$bound"
            read -r s c k v w g < <(run "$b" "$n")
            printf "N=%-3s coalesce_us=%-5s sign/s %8.1f | app CPU/sign %6.1f us | sleeps/sign %.3f | coalesced waits %s | batches given up %s\n" \
                "$n" "$b" "$s" "$(echo "$c / 1000 / $k" | bc -l)" "$(echo "$v / $k" | bc -l)" "$w" "$g"
            sum[s$side]="$(echo "${sum[s$side]} + $s" | bc -l)"
            sum[c$side]=$((sum[c$side] + c)) sum[n$side]=$((sum[n$side] + k)) sum[v$side]=$((sum[v$side] + v))
        done
    done
    awk -v s0="${sum[s0]}" -v s1="${sum[s1]}" -v c0="${sum[c0]}" -v c1="${sum[c1]}" \
        -v n0="${sum[n0]}" -v n1="${sum[n1]}" -v v0="${sum[v0]}" -v v1="${sum[v1]}" -v n="$n" '
        BEGIN { printf "N=%-3s summed: sign/s on/off %.3f | app CPU/sign %.1f -> %.1f us (%.2fx) | sleeps/sign %.3f -> %.3f\n",
                n, s1 / s0, c0 / 1000 / n0, c1 / 1000 / n1, (c1 / n1) / (c0 / n0), v0 / n0, v1 / n1 }'
done
