#!/usr/bin/env bash
# RSA-2048 sign throughput: the default provider alone vs the wd provider on the device
# model, alternating in one run, with the application thread's CPU time per offloaded
# signature and this machine's floor for any wait.
#
#   bench/provider-speed.sh [SECONDS] [ROUNDS]   (defaults 5 and 3; env ENGINES=1, SPIN_US,
#                                                 ASYNC_JOBS="8 32 64", ASYNC_ENGINES=2,
#                                                 ONLY=sync or ONLY=async for one half,
#                                                 and any WD_* setting, e.g. WD_POLL_MARGIN_US)
#
# Rounds alternate default, wd, default, wd, ... so that both sides see the same drift of a
# shared, noisy machine; the ratio is of the summed signatures, and each round's ratio is
# printed too.
#
# How the CPU time is separated: `openssl speed` signs on its main thread; the device
# model's engine threads live in the same process. Twice inside the sign phase (0.7 s after
# the start and 0.5 s before its end, as the default rounds are sampled), this script samples
# the main thread's own CPU time (/proc/PID/task/PID/schedstat: time on a CPU, in ns; the
# clock ticks of .../stat, utime+stime, where schedstat is missing) and the provider's
# offload counter (the shared-memory counters file in WD_STATS_DIR); the CPU delta over the
# counter delta inside the sign phase is the application thread's CPU per offloaded sign,
# which excludes the engine threads (reported separately, from their own task stats). The
# provider's own figure (CPU inside the offload path, counter offload_cpu_ns, sampled in
# every 8th operation) is printed too. A software sign's cost is its CPU time: the wall
# time per signature of the default provider's one-process rounds, 1/(sign/s), times the
# share of a CPU their thread had in the sign phase (/proc/PID/schedstat). On a loaded
# machine the wall time alone is larger than the CPU cost (both printed), and a percentage
# of it would flatter wd.
#
# The floor (bench/examples/wake_floor.rs): the caller's CPU for one timed sleep and for one
# futex block woken by another thread, on this machine now. A waiter that does not spin
# through the whole operation pays at least the cheaper of the two per operation.
#
# The async case (issue 10), in the same run: one `openssl speed` process with one
# application thread driving `-async_jobs N` (N in ASYNC_JOBS) on ASYNC_ENGINES model
# engines, against the default provider with `-multi 2` (two processes, the machine's two
# cores) and with one process, rounds rotating through all of them; sign/s ratios and the
# application thread's CPU per offloaded sign, sampled as above.
set -euo pipefail
secs="${1:-5}"
rounds="${2:-3}"
[ "$(echo "$secs >= 2" | bc)" = 1 ] || { echo "SECONDS must be at least 2" >&2; exit 2; }
engines="${ENGINES:-1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
moddir="$("$root/provider/install.sh" | tail -1)"
stats_bin="$CARGO_TARGET_DIR/release/wd"
(cd "$root" && cargo build -q --release -p wd-cli --bin wd &&
    cargo build -q --release -p wd-bench --example wake_floor)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tck="$(getconf CLK_TCK)"
if [ -n "${SPIN_US:-}" ]; then export WD_POLL_SPIN_US="$SPIN_US"; fi

signs_per_s() { awk '/^rsa 2048 bits/ {print $6}' "$1"; }

# Runs the default provider's `openssl speed rsa2048` (extra arguments: $2...) with its
# output in $1; prints the share of a CPU its thread had inside the sign phase (sampled from
# 0.5 s after the start to 0.4 s before the phase's end: speed signs first, then verifies).
# The CPU cost of a software sign is that share of its wall time, 1/(sign/s).
default_round() {
    local out="$1"
    shift
    OPENSSL_CONF=/dev/null openssl speed -elapsed -seconds "$secs" "$@" rsa2048 > "$out" 2>/dev/null &
    local pid=$! c0 c1 t0 t1
    sleep 0.5
    c0="$(awk '{ print $1 }' "/proc/$pid/schedstat" 2>/dev/null || echo 0)" t0="$(date +%s%N)"
    sleep "$(echo "$secs - 0.9" | bc -l)"
    c1="$(awk '{ print $1 }' "/proc/$pid/schedstat" 2>/dev/null || echo 0)" t1="$(date +%s%N)"
    wait "$pid" || { echo "openssl speed on the default provider failed" >&2; exit 1; }
    awk -v c="$((c1 - c0))" -v t="$((t1 - t0))" 'BEGIN { s = t > 0 ? c / t : 1; printf "%.4f\n", (s > 0 && s <= 1) ? s : 1 }'
}

# One wd round: runs speed in the background and samples its main thread, the other
# threads and the offload counter twice inside the sign phase (0.7 s after the start, when
# the provider and the model are up and signing, and 0.5 s before the phase's end) into
# $work/samples.$1. Twice, like the default provider's rounds: a sampler that ran all
# through wd's rounds would take CPU from them alone (one that forked ~14 processes per
# 0.1 s cost wd a few % of this 2-core machine's throughput).
wd_round() {
    local r="$1" stats="$work/stats.$1"
    mkdir -p "$stats"
    OPENSSL_MODULES="$moddir" OPENSSL_CONF="$root/openssl.cnf.d/wd-model.cnf" \
        WD_STATS_DIR="$stats" WD_MODEL_DIR="$work/model" WD_MODEL_ENGINES="${round_engines:-$engines}" \
        openssl speed -elapsed -seconds "$secs" ${speed_extra:-} rsa2048 > "$work/wd.$r.out" 2>/dev/null &
    local pid=$!
    sample() { # main-thread ns, other threads' ns, offloads
        local t tid v main=0 others=0 tick
        for t in /proc/"$pid"/task/*; do
            tid="${t##*/}"
            # CPU time in ns (schedstat), else user+system clock ticks scaled to ns.
            if ! read -r v _ < "$t/schedstat" 2>/dev/null; then
                read -r tick < "$t/stat" 2>/dev/null || tick=""
                tick="${tick##*) }"
                read -r -a tick <<< "$tick"
                v=$(( (${tick[11]:-0} + ${tick[12]:-0}) * 1000000000 / tck ))
            fi
            if [ "$tid" = "$pid" ]; then main=$v; else others=$((others + v)); fi
        done
        echo "$main $others $("$stats_bin" stats --get offload_private "$stats" 2>/dev/null || echo 0)"
    }
    sleep 0.7
    sample > "$work/samples.$r"
    sleep "$(echo "$secs - 1.2" | bc -l)"
    sample >> "$work/samples.$r"
    wait "$pid" || { echo "openssl speed on wd failed" >&2; exit 1; }
    "$stats_bin" stats "$stats" > "$work/stats.$r.txt"
}

# Sign phase of one wd round: main-thread ns, other-thread ns and signs between the two
# samples (a first sample before any offload would charge start-up to the signs: refused).
sign_phase() {
    awk 'NR == 1 { m = $1; o = $2; n = $3; if (n == 0) bad = 1 }
         NR == 2 { printf "%.0f %.0f %.0f\n", $1 - m, $2 - o, $3 - n }
         END { if (bad) { print "wd had not started signing 0.7 s into the round" > "/dev/stderr"; exit 1 } }' \
        "$work/samples.$1"
}

if [ "${ONLY:-}" != async ]; then
echo "== openssl speed -elapsed -seconds $secs rsa2048: default provider alone vs wd on the device model ($engines engine thread(s)), $rounds alternating rounds"
sum_def=0 sum_wd=0 app_ticks=0 eng_ticks=0 signs=0 def_cpu=0
for r in $(seq 1 "$rounds"); do
    c="$(default_round "$work/def.$r.out")"
    wd_round "$r"
    d="$(signs_per_s "$work/def.$r.out")" w="$(signs_per_s "$work/wd.$r.out")"
    read -r a o n < <(sign_phase "$r")
    app_ticks=$((app_ticks + a)) eng_ticks=$((eng_ticks + o)) signs=$((signs + n))
    def_cpu="$(echo "$def_cpu + $c * 1000000 / $d" | bc -l)"
    sum_def="$(echo "$sum_def + $d" | bc -l)" sum_wd="$(echo "$sum_wd + $w" | bc -l)"
    printf "round %d: default %8.1f sign/s | wd %8.1f sign/s | ratio %.3f\n" "$r" "$d" "$w" "$(echo "$w / $d" | bc -l)"
done
grep -E 'offload_private|fallback|device_errors|offload_cpu_ns' "$work/stats.$rounds.txt"

"$CARGO_TARGET_DIR/release/examples/wake_floor" 250 2000 > "$work/floor"
cpu_of() { sed -n "s/^$1.*caller CPU \([0-9.]*\) us.*/\1/p" "$work/floor"; }
floor_sleep="$(cpu_of 'timed sleep')" floor_futex="$(cpu_of 'futex block')"

cpu_ns="$(awk '/^ *offload_cpu_ns/ {print $2}' "$work/stats.$rounds.txt")"
total="$(awk '/^ *offload_private/ {print $2}' "$work/stats.$rounds.txt")"
awk -v def="$sum_def" -v wd="$sum_wd" -v rounds="$rounds" -v a="$app_ticks" \
    -v o="$eng_ticks" -v ops="$signs" -v cpu_ns="$cpu_ns" -v total="$total" \
    -v fs="$floor_sleep" -v ff="$floor_futex" -v def_cpu="$def_cpu" '
    BEGIN {
        wall_us = 1e6 / (def / rounds)
        sw_us = def_cpu / rounds
        app_us = ops > 0 ? a / 1000 / ops : 0
        eng_us = ops > 0 ? o / 1000 / ops : 0
        prov_us = total > 0 ? cpu_ns / total / 1000 : 0
        floor = fs < ff ? fs : ff
        printf "\nratio (wd / default sign/s, all rounds):     %.3f   (goal >= 0.97)\n", wd / def
        printf "software sign:                               %.1f us of CPU (%.1f us of wall time per sign)\n", sw_us, wall_us
        printf "app thread CPU per offloaded sign:           %.1f us = %.1f%% of a software sign (goal <= 5%%)  [%d signs sampled]\n", app_us, 100 * app_us / sw_us, ops
        printf "  of which inside the provider offload path: %.1f us (offload_cpu_ns / offload_private, last round)\n", prov_us
        printf "model engine threads CPU per sign:           %.1f us\n", eng_us
        printf "this machine'"'"'s floor for one wait:            timed sleep %.1f us, futex wake-up %.1f us = %.1f%% of a software sign\n", fs, ff, 100 * floor / sw_us
    }'
fi

# == The async case: one thread, many requests in flight.
[ "${ONLY:-}" = sync ] && exit 0
jobs_list="${ASYNC_JOBS:-8 32 64}"
round_engines="${ASYNC_ENGINES:-2}"
echo
echo "== async: one openssl speed process (one application thread) with -async_jobs N on wd ($round_engines model engines) vs the default provider with -multi 2 and with one process, $rounds rotating rounds of $secs s"
multi=0 one=0 one_cpu=0
declare -A async_sum async_app async_eng async_signs
for n in $jobs_list; do async_sum[$n]=0 async_app[$n]=0 async_eng[$n]=0 async_signs[$n]=0; done
for r in $(seq 1 "$rounds"); do
    default_round "$work/multi.$r.out" -multi 2 > /dev/null
    m="$(signs_per_s "$work/multi.$r.out")"
    c="$(default_round "$work/one.$r.out")"
    o1="$(signs_per_s "$work/one.$r.out")"
    one_cpu="$(echo "$one_cpu + $c * 1000000 / $o1" | bc -l)"
    multi="$(echo "$multi + $m" | bc -l)" one="$(echo "$one + $o1" | bc -l)"
    line="$(printf "round %d: default -multi 2 %8.1f | default 1 process %8.1f" "$r" "$m" "$o1")"
    for n in $jobs_list; do
        speed_extra="-async_jobs $n"
        wd_round "a$n.$r"
        w="$(signs_per_s "$work/wd.a$n.$r.out")"
        read -r a o k < <(sign_phase "a$n.$r")
        async_sum[$n]="$(echo "${async_sum[$n]} + $w" | bc -l)"
        async_app[$n]=$((async_app[$n] + a)) async_eng[$n]=$((async_eng[$n] + o))
        async_signs[$n]=$((async_signs[$n] + k))
        if ! grep -Eq '^ *async_submitted +[1-9]' "$work/stats.a$n.$r.txt"; then
            echo "wd -async_jobs $n: no request was sent from a job:" >&2
            cat "$work/stats.a$n.$r.txt" >&2
            exit 1
        fi
        line+="$(printf " | wd -async_jobs %d %8.1f" "$n" "$w")"
    done
    echo "$line"
    speed_extra=""
done
last="${jobs_list##* }"
grep -E 'offload_private|fallback|device_errors|async_' "$work/stats.a$last.$rounds.txt"
awk -v one="$one" -v rounds="$rounds" -v one_cpu="$one_cpu" 'BEGIN {
    printf "software sign (default, one process):  %.1f us of CPU (%.1f us of wall time per sign)\n",
        one_cpu / rounds, 1e6 / (one / rounds) }'
for n in $jobs_list; do
    awk -v multi="$multi" -v one="$one" -v w="${async_sum[$n]}" -v rounds="$rounds" \
        -v a="${async_app[$n]}" -v o="${async_eng[$n]}" -v ops="${async_signs[$n]}" -v n="$n" \
        -v one_cpu="$one_cpu" '
        BEGIN {
            sw_us = one_cpu / rounds
            app_us = ops > 0 ? a / 1000 / ops : 0
            eng_us = ops > 0 ? o / 1000 / ops : 0
            printf "wd -async_jobs %-3d %8.1f sign/s | ratio to default -multi 2: %.3f (goal >= 0.9) | to one process: %.3f | app thread CPU per offloaded sign %.1f us = %.1f%% of a software sign (goal <= 5%%) | model engines %.1f us [%d signs sampled]\n",
                n, w / rounds, w / multi, w / one, app_us, 100 * app_us / sw_us, eng_us, ops
        }'
done
