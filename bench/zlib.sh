#!/usr/bin/env bash
# libwdz.so (zlib/, issue 11) against the system zlib, side by side in one run:
#  1. Python's zlib.compress(level 6)/decompress of the ~100 MB corpus of zip-vs-gzip.sh,
#     with and without LD_PRELOAD=libwdz.so (device model, WD_MODEL_ENGINES engines);
#  2. stock nginx (gzip on; gzip_comp_level 6; gzip_types *; 2 workers) serving a page of
#     PAGE_KB KiB to curl (N requests, P in parallel, keep-alive, gzip bodies not decoded):
#     responses/s and the workers' CPU per response, excluding the model's engine threads
#     (wdm-*), with and without the library; every response must be a 200 with a gzip body
#     of the expected size class, and samples are decoded and compared with the page.
#
# Usage: bench/zlib.sh [CORPUS]    Knobs: WD_MODEL_ENGINES (2), WD_MODEL_API (v3), ROUNDS (2 warm
# decompressions after the first), N (2000), P (4), PAGE_KB (256)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
corpus=${1:-/tmp/wd-zip-corpus.tar}
[ -s "$corpus" ] || { echo "no corpus: run bench/zip-vs-gzip.sh once (it builds $corpus)"; exit 2; }
cargo build -q --release -p wd-zlib
lib=$CARGO_TARGET_DIR/release/libwdz.so
engines=${WD_MODEL_ENGINES:-2}
# v3 (Kunpeng 930) has raw-deflate streams, which libwdz's parallel inflate needs; on v2 a
# stream decodes serially (WD_MODEL_API=v2 to see it).
api=${WD_MODEL_API:-v3}
N=${N:-2000} P=${P:-4} PAGE_KB=${PAGE_KB:-256}
tmp=$(mktemp -d)
model_dir=$(mktemp -d)
trap 'for p in $tmp/*/nginx.pid; do [ -s "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; sleep 0.3; rm -rf "$tmp" "$model_dir"' EXIT

echo "== Python zlib, corpus $corpus ($(stat -c %s "$corpus") bytes), $(nproc) cores, model $api with $engines engines"
printf "%-28s %9s %12s %7s %9s %9s\n" "" "comp MB/s" size ratio "dec MB/s" "warm"
python3 bench/zlib_py.py "system zlib 1.2.13" "$corpus"
WD_DEVICES=model WD_MODEL_API=$api WD_MODEL_ENGINES=$engines WD_MODEL_DIR=$model_dir LD_PRELOAD=$lib \
  python3 bench/zlib_py.py "libwdz.so (model $api)" "$corpus"

# nginx ---------------------------------------------------------------------------------
python3 - "$tmp/www" "$PAGE_KB" <<'PY'
import os, random, sys
d, kb = sys.argv[1], int(sys.argv[2]); os.makedirs(d)
r = random.Random(3); w = [b"<p>", b"nginx ", b"gzip ", b"response ", b"the ", b"engine ", b"</p>\n", b"42 ", b"<div class=x>"]
page = b"".join(r.choice(w) for _ in range(kb * 200))[: kb * 1024]
open(os.path.join(d, "page.html"), "wb").write(page)
PY
start_nginx() { # name port preload
  local d=$tmp/$1; mkdir -p "$d/logs"
  cat > "$d/nginx.conf" <<CONF
$( [ "$(id -u)" = 0 ] && echo "user root;" )
daemon on; master_process on; worker_processes 2; pid $d/nginx.pid; error_log $d/logs/error.log notice;
env WD_DEVICES; env WD_MODEL_API; env WD_MODEL_ENGINES; env WD_MODEL_DIR; env WD_ZLIB_STATS_DIR;
events { worker_connections 512; }
http { access_log off; client_body_temp_path $d/cb; proxy_temp_path $d/px; fastcgi_temp_path $d/fc; uwsgi_temp_path $d/uw; scgi_temp_path $d/sc;
  gzip on; gzip_comp_level 6; gzip_types *; keepalive_requests 100000;
  server { listen 127.0.0.1:$2; root $tmp/www; } }
CONF
  if [ "$3" = 1 ]; then
    LD_PRELOAD=$lib WD_DEVICES=model WD_MODEL_API=$api WD_MODEL_ENGINES=$engines WD_MODEL_DIR=$model_dir WD_ZLIB_STATS_DIR=$d/stats \
      /usr/sbin/nginx -p "$d" -c "$d/nginx.conf"
  else
    /usr/sbin/nginx -p "$d" -c "$d/nginx.conf"
  fi
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$2/" && break; sleep 0.05; done
}
# CPU ticks of the workers' threads, the model's engine threads (wdm-*) left out.
worker_ticks() { # name
  local m; m=$(cat "$tmp/$1/nginx.pid"); local sum=0
  for w in $(pgrep -P "$m"); do
    for t in /proc/$w/task/*; do
      local comm; comm=$(cat "$t/comm" 2>/dev/null || true)
      case "$comm" in wdm-*|wdk-*) continue;; esac
      local s; s=$(sed 's/.*) //' "$t/stat" 2>/dev/null) || continue
      sum=$((sum + $(echo "$s" | awk '{print $12 + $13}')))
    done
  done
  echo $sum
}
engine_ticks() { # name
  local m; m=$(cat "$tmp/$1/nginx.pid"); local sum=0
  for w in $(pgrep -P "$m"); do
    for t in /proc/$w/task/*; do
      case "$(cat "$t/comm" 2>/dev/null)" in wdm-*|wdk-*) ;; *) continue;; esac
      sum=$((sum + $(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')))
    done
  done
  echo $sum
}
hz=$(getconf CLK_TCK)
load() { # name port -> prints a row
  local name=$1 port=$2
  # warm-up (each worker opens its queues / starts its model on first use)
  curl -s -H 'Accept-Encoding: gzip' -o /dev/null -Z --parallel-max "$P" "http://127.0.0.1:$port/page.html?w=[1-40]" 2>/dev/null
  local c0 e0 t0 t1 c1 e1
  c0=$(worker_ticks "$name"); e0=$(engine_ticks "$name"); t0=$(date +%s.%N)
  curl -s --no-progress-meter -H 'Accept-Encoding: gzip' -Z --parallel-max "$P" -w '%{http_code} %{size_download}\n' -o /dev/null \
    "http://127.0.0.1:$port/page.html?r=[1-$N]" > "$tmp/$name.codes" 2>/dev/null
  t1=$(date +%s.%N); c1=$(worker_ticks "$name"); e1=$(engine_ticks "$name")
  local ok bad
  ok=$(awk '$1 == 200 && $2 > 1000 && $2 < '"$((PAGE_KB * 1024 / 2))"' {n++} END {print n+0}' "$tmp/$name.codes")
  bad=$((N - ok))
  for i in 1 2 3; do
    curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/page.html?check=$i" | gzip -dc | cmp -s - "$tmp/www/page.html" || bad=$((bad + 1))
  done
  local secs rps cpu_ms eng_ms
  secs=$(echo "$t1 - $t0" | bc -l); rps=$(echo "$N / $secs" | bc -l)
  cpu_ms=$(echo "($c1 - $c0) * 1000 / $hz / $N" | bc -l); eng_ms=$(echo "($e1 - $e0) * 1000 / $hz / $N" | bc -l)
  printf "%-22s %10.1f %16.3f %16.3f %8d\n" "$name" "$rps" "$cpu_ms" "$eng_ms" "$bad"
  echo "$rps $cpu_ms" > "$tmp/$name.res"
}
start_nginx stock 18080 0
start_nginx wdz 18081 1
echo "== nginx gzip: page $PAGE_KB KiB, $N requests, $P in parallel (keep-alive), 2 workers"
printf "%-22s %10s %16s %16s %8s\n" "" "resp/s" "worker ms/resp" "engines ms/resp" "failed"
load stock 18080
load wdz 18081
read -r rs cs < "$tmp/stock.res"; read -r rw cw < "$tmp/wdz.res"
printf "libwdz vs stock: responses/s %.2fx, worker CPU per response %.0f%% of stock\n" \
  "$(echo "$rw / $rs" | bc -l)" "$(echo "$cw * 100 / $cs" | bc -l)"
grep -h "alert\|emerg\|crit" "$tmp"/*/logs/error.log && echo "(alerts above)" || echo "error logs: no alert"
echo "wdz workers' counters:"; "$CARGO_TARGET_DIR/release/wd" stats "$tmp/wdz/stats" 2>/dev/null | sed -n '/zlib/,/inflate/p' || true
