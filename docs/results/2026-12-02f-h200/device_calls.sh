# Device calls of 2026-12-02 13:38-14:25 UTC (H200). run.sh is sourced by each. callE was refused (no machine could be started). callF ran twice: the first try (callF_first_try/) found NaN outputs in the new query-group prefill test (alpha of a column with no visible row yet); fixed, second try callF/.

# ---- .dev/run.sh
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
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
run() { local n=$1 t=$2; shift 2; step $n
  timeout $t $TB "$@" > $R/$n.json 2> $R/$n.err; echo "$n rc=$?"; tail -c 200 $R/$n.err | tr '\r' '\n' | tail -1
  python3 -c "
import json; d=json.load(open('$R/$n.json'))
for r in d['throughput']: print({k:r.get(k) for k in ['mode','peak_running','output_tokens_per_s','elapsed_s','mean_step_time_s','mean_floor_step_s','floor_ratio','num_preemptions']})" 2>/dev/null || true; }


# ---- .dev/callA.sh
source .dev/run.sh
step probe
nvcc -arch=sm_90 -O2 -o /tmp/probe .dev/mma_subnormal_accum_probe.cu > $R/probe_build.txt 2>&1 && /tmp/probe > $R/probe.txt 2>&1; echo "probe rc=$?"; cat $R/probe.txt
step bench
S="--shape 512x1024 --shape 512x2048 --shape 128x1024 --shape 128x2048 --shape 64x8192"
timeout 90 $B/kitty_attention_bench $S --mode kitty-pro --mode auto > $R/attn_short.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn_short.md
for w in 1 6; do KITTY_ATTN_FP_WEIGHT=$w timeout 60 $B/kitty_attention_bench --no-copy --shape 512x1024 --shape 512x2048 --shape 64x8192 --mode kitty-pro > $R/attn_w$w.md 2>&1; echo "w$w"; grep "^| k" $R/attn_w$w.md; done
step profile
export KITTY_STEP_PROFILE=1
run l8b_1024_kp 140 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype kitty-pro
tr '\r' '\n' < $R/l8b_1024_kp.err | grep -A14 'step profile'
run l8b_1024_auto 90 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto
tr '\r' '\n' < $R/l8b_1024_auto.err | grep -A14 'step profile'
step done

# ---- .dev/callB.sh
source .dev/run.sh
step tests
timeout 120 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep "vs exact" $R/kitty_cuda_gpu_test.log | awk '{for(i=1;i<=NF;i++) if($i=="rel-L2") print $(i+1)}' | sort -g | tail -2
timeout 60 $B/model_ops_gpu_test > $R/model_ops_gpu_test.log 2>&1; echo "model_ops rc=$?"; grep -E "PASSED|FAILED|Failure" $R/model_ops_gpu_test.log | head -3
step bench
SH="--shape 512x1024 --shape 512x2048 --shape 128x2048 --shape 64x8192 --shape 8x32768"
timeout 80 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md | grep -v "| 1x8K"
timeout 60 $B/kitty_attention_bench $SH --mode kitty-pro --mode auto --mode kivi2 > $R/attn_short.md 2>&1; echo "short rc=$?"; grep "^| " $R/attn_short.md
timeout 60 $B/kitty_attention_bench_old --no-copy $SH --mode kitty-pro --mode auto --mode kivi2 > $R/attn_short_old.md 2>&1; echo "old rc=$?"; grep "^| " $R/attn_short_old.md
KITTY_ATTN_PREFETCH=0 timeout 60 $B/kitty_attention_bench --no-copy $SH --mode kitty-pro --mode auto > $R/attn_short_nopf.md 2>&1; echo "nopf"; grep "^| " $R/attn_short_nopf.md
for w in 12,12,4 24,8,12 24,12,8 12,8,8 32,12,12 24,8,8; do KITTY_ATTN_WEIGHTS=$w timeout 60 $B/kitty_attention_bench --no-copy --shape 512x1024 --shape 512x2048 --shape 128x2048 --shape 64x8192 --mode kitty-pro > $R/attn_w$w.md 2>&1; echo "w$w"; grep "^| k" $R/attn_w$w.md; done
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt | grep "64x8K\|8x32K"
[ $rc -ne 0 ] && { step done; exit 0; }
step san
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
timeout 60 compute-sanitizer --tool memcheck $B/model_ops_gpu_test > $R/san_model_ops.log 2>&1; echo "san model_ops rc=$?"; tail -1 $R/san_model_ops.log
step model
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3
step done

# ---- .dev/callC.sh
source .dev/run.sh
step tests
timeout 120 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep "vs exact" $R/kitty_cuda_gpu_test.log | awk '{for(i=1;i<=NF;i++) if($i=="rel-L2") print $(i+1)}' | sort -g | tail -2
for t in memcheck racecheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3
[ $rc -ne 0 ] && { step done; exit 0; }
step sweep
SH="--shape 512x1024 --shape 512x2048 --shape 128x2048 --shape 64x8192 --shape 8x32768"
timeout 60 $B/kitty_attention_bench $SH --mode kitty-pro --mode kivi2 --mode auto > $R/attn_short.md 2>&1; echo "short rc=$?"; grep "^|\|copy" $R/attn_short.md
for w in 20,8,8 32,8,8 24,4,8 24,8,4 24,8,12 28,12,10; do KITTY_ATTN_WEIGHTS=$w timeout 60 $B/kitty_attention_bench --no-copy $SH --mode kitty-pro > $R/attn_w$w.md 2>&1; echo "w$w"; grep "^| k" $R/attn_w$w.md; done
export KITTY_STEP_PROFILE=1
run q4b_8127_kp 250 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
tr '\r' '\n' < $R/q4b_8127_kp.err | grep -A14 'decode steps'
run l8b_1024_kp 140 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype kitty-pro
tr '\r' '\n' < $R/l8b_1024_kp.err | grep -A14 'decode steps'
run l8b_1024_auto 90 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto
tr '\r' '\n' < $R/l8b_1024_auto.err | grep -A14 'decode steps'
step done

# ---- .dev/callD.sh
source .dev/run.sh
step tests
timeout 120 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
timeout 100 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_memcheck.log 2>&1; echo "san rc=$?"; tail -1 $R/san_memcheck.log
[ $rc -ne 0 ] && { step done; exit 0; }
step bench
SH="--shape 512x1024 --shape 512x2048 --shape 128x2048 --shape 64x8192 --shape 8x32768"
timeout 60 $B/kitty_attention_bench $SH --mode kitty-pro --mode kivi2 --mode auto > $R/attn_short.md 2>&1; echo "new rc=$?"; grep "^|\|copy" $R/attn_short.md
timeout 60 $B/kitty_attention_bench_old --no-copy $SH --mode kitty-pro --mode kivi2 --mode auto > $R/attn_short_old.md 2>&1; echo "old rc=$?"; grep "^| " $R/attn_short_old.md
W="--shape 267x4096 --shape 267x8192 --shape 48x8192 --shape 32x8192"
timeout 60 $B/kitty_attention_bench --no-copy $W --mode kitty-pro --mode kivi2 > $R/attn_wave.md 2>&1; echo "wave rc=$?"; grep "^| " $R/attn_wave.md; grep "splits" $R/attn_wave.md
KITTY_ATTN_WAVE_PLAN=0 timeout 60 $B/kitty_attention_bench --no-copy $W --mode kitty-pro --mode kivi2 > $R/attn_nowave.md 2>&1; echo "nowave rc=$?"; grep "^| " $R/attn_nowave.md; grep "splits" $R/attn_nowave.md
timeout 60 $B/kitty_attention_bench_old --no-copy $W --mode kitty-pro --mode kivi2 > $R/attn_wave_old.md 2>&1; echo "old rc=$?"; grep "^| " $R/attn_wave_old.md
run q4b_8127_kp 250 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
TB="$TB --max-num-seqs-sweep 64,128"
run q4b_8127_kp_sweep 220 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
step done

# ---- .dev/callE.sh
source .dev/run.sh
TB0="$TB"
TB="$TB0 --max-num-seqs-sweep 16,32"
run q4b_8127_auto_sweep 170 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype auto
TB="$TB0"
run q8b_1024_kp 100 --model synthetic:qwen3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype kitty-pro
run q8b_1024_auto 60 --model synthetic:qwen3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto
run l8b_8192_auto 75 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype auto
run l8b_8192_kp 140 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype kitty-pro
step done

# ---- .dev/callF.sh
source .dev/run.sh
step tests
timeout 150 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep "vs exact" $R/kitty_cuda_gpu_test.log | awk '{for(i=1;i<=NF;i++) if($i=="rel-L2") print $(i+1)}' | sort -g | tail -2
for t in memcheck racecheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3; grep "batch invariance" $R/cuda_runner_gpu_test.log
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
[ $rc -ne 0 ] && { step done; exit 0; }
step bench
SH="--shape 512x1024 --shape 64x8192 --shape 8x32768"
timeout 40 $B/kitty_attention_bench --no-copy $SH --mode kitty-pro --mode auto > $R/attn.md 2>&1; echo "new rc=$?"; grep "^| " $R/attn.md
timeout 40 $B/kitty_attention_bench_old --no-copy $SH --mode kitty-pro --mode auto > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^| " $R/attn_old.md
export KITTY_STEP_PROFILE=1
run l8b_1024_kp 110 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype kitty-pro
tr '\r' '\n' < $R/l8b_1024_kp.err | grep -A5 'prefill steps'
run l8b_1024_auto 60 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto
tr '\r' '\n' < $R/l8b_1024_auto.err | grep -A5 'prefill steps'
run l8b_8192_auto 80 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype auto
tr '\r' '\n' < $R/l8b_8192_auto.err | grep -A5 'prefill steps'
run l8b_8192_kp 115 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype kitty-pro
tr '\r' '\n' < $R/l8b_8192_kp.err | grep -A5 'prefill steps'
step done
