#!/usr/bin/env bash
# Sourced by .dev/callN.sh on the device: unpack the bundle, set paths, helpers.
set -u
mkdir -p /tmp/k && [ -d /tmp/k/bundle ] || tar -xJf .dev/carry/b.tar.xz -C /tmp/k
export LD_LIBRARY_PATH=/tmp/k/bundle/lib:/usr/local/cuda/lib64
export KITTY_TEST_DATA=/tmp/k/data
B=/tmp/k/bundle/bin
R=/tmp/res/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > $R/gpu.txt
date -u >> $R/date.txt
step() { echo "=== $1 $(date -u +%T)"; tar -czf $OUT/r.tgz -C /tmp/res r; }
TB="$B/kitty-bench throughput --device cuda --json"
run() { local n=$1 t=$2; shift 2; step $n
  timeout $t $TB "$@" > $R/$n.json 2> $R/$n.err; echo "$n rc=$?"; tail -c 200 $R/$n.err | tr '\r' '\n' | tail -1
  python3 -c "
import json; d=json.load(open('$R/$n.json'))
for r in d['throughput']: print({k:r.get(k) for k in ['mode','max_num_seqs','peak_running','output_tokens_per_s','total_tokens_per_s','elapsed_s','mean_step_time_s','mean_floor_step_s','floor_ratio','num_preemptions']})" 2>/dev/null || true; }
