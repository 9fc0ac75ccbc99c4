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
step ncu
A="$B/kitty_attention_bench --no-copy --iters 3 --mode kitty-pro --shape 64x8192"
timeout 240 ncu --clock-control none -k regex:KittyAttentionKernelV2 --launch-skip 2 -c 1 --section SourceCounters --section WarpStateStats --section InstructionStats --section LaunchStats --section Occupancy -o $R/prof $A > $R/ncu_run.txt 2>&1; echo "ncu rc=$?"; tail -3 $R/ncu_run.txt
ncu -i $R/prof.ncu-rep --page source --csv --print-source sass > $R/sass_src.csv 2> $R/sass_src.err; echo "src rc=$? $(wc -l < $R/sass_src.csv)"
ncu -i $R/prof.ncu-rep --page details --print-details all > $R/details.txt 2>&1; echo "det rc=$?"
grep -i -E "stall|warp cycles|executed ipc|issue" $R/details.txt | head -30
step sass
cuobjdump -sass $B/kitty_attention_bench > $R/all.sass 2>/dev/null; echo "sass $(wc -l < $R/all.sass)"
xz -9 $R/all.sass
rm -f $R/prof.ncu-rep.keep
step kitty
run q4b_8127_kitty 320 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty
step done

# ---- .dev/callB.sh
source .dev/run.sh
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep -iE "rel|worst" $R/kitty_cuda_gpu_test.log | tail -8
step bench
timeout 60 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md
timeout 45 $B/kitty_attention_bench_old --no-copy > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^|" $R/attn_old.md | grep "kitty-pro\|kivi2\|auto"
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt | tail -8
[ $rc -ne 0 ] && { step done; exit 0; }
step ncu
A="$B/kitty_attention_bench --no-copy --iters 3 --mode kitty-pro --shape 64x8192"
M=smsp__inst_executed.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed_pipe_tensor.sum,smsp__inst_executed_pipe_alu.sum,smsp__inst_executed_pipe_fma.sum,smsp__inst_executed_pipe_lsu.sum,launch__registers_per_thread,gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__average_warp_latency_issue_stalled_wait.ratio,smsp__average_warp_latency_issue_stalled_long_scoreboard.ratio,smsp__average_warp_latency_issue_stalled_barrier.ratio,smsp__average_warp_latency_issue_stalled_math_pipe_throttle.ratio
timeout 100 ncu --clock-control none -k regex:KittyAttentionKernelV2 --launch-skip 2 -c 1 --metrics $M $A > $R/ncu_new.txt 2>&1; echo "ncu rc=$?"; grep -v "^==PROF" $R/ncu_new.txt | tail -14
step san
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
step model
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED|SKIPPED" $R/cuda_runner_gpu_test.log | head
step done

# ---- .dev/callC.sh
source .dev/run.sh
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep -iE "vs exact" $R/kitty_cuda_gpu_test.log | awk '{for(i=1;i<=NF;i++) if($i=="rel-L2") print $(i+1)}' | sort -g | tail -3
step bench
S="--no-copy --mode kitty-pro --mode kivi2 --mode kitty"
timeout 60 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md | grep "copy\|kitty\|kivi2\|64x8K"
timeout 45 $B/kitty_attention_bench_s1 $S > $R/attn_s1.md 2>&1; echo "s1 rc=$?"; grep "^| k" $R/attn_s1.md
timeout 45 $B/kitty_attention_bench_old $S > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^| k" $R/attn_old.md
[ $rc -ne 0 ] && { step done; exit 0; }
step ncu
A="$B/kitty_attention_bench --no-copy --iters 3 --mode kitty-pro --shape 64x8192"
timeout 120 ncu --clock-control none -k regex:KittyAttentionKernelV2 --launch-skip 2 -c 1 --section SourceCounters --section WarpStateStats -o $R/prof $A > $R/ncu_run.txt 2>&1; echo "ncu rc=$?"
ncu -i $R/prof.ncu-rep --page source --csv --print-source sass > $R/sass_src.csv 2> /dev/null; ncu -i $R/prof.ncu-rep --page details > $R/details.txt 2>&1; rm -f $R/prof.ncu-rep
grep -E "Issued Warp|Stall Wait|Stall Long|Stall Math|Stall Barrier|Duration|Issued Instructions  " $R/details.txt | head
step san
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
step model
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3
run q4b_8127_kp 300 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
step done

# ---- .dev/callD.sh
source .dev/run.sh
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep "vs exact" $R/kitty_cuda_gpu_test.log | grep "new=150" | grep "D=128" | cut -c1-110
step bench
S="--no-copy --mode kitty-pro --mode kivi2 --mode auto"
timeout 60 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md | grep -v "| 1x8K"
timeout 45 $B/kitty_attention_bench_s2 $S > $R/attn_s2.md 2>&1; echo "s2 rc=$?"; grep "^| " $R/attn_s2.md | grep "64x8K\|8x32K"
timeout 45 $B/kitty_attention_bench_old $S > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^| " $R/attn_old.md | grep "64x8K\|8x32K"
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt | grep "64x8K\|8x32K"
[ $rc -ne 0 ] && { step done; exit 0; }
step san
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
step model
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3
run q4b_8127_kp 260 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
run q4b_8127_auto 150 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype auto
step done

# ---- .dev/callE.sh
source .dev/run.sh
run q4b_8127_kivi2 230 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kivi2
run l8b_1024_kp 130 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype kitty-pro
run l8b_1024_auto 80 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto
step done

