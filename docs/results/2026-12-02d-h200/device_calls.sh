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


# ---- .dev/call1.sh
source .dev/run.sh
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep -E "rel|worst" $R/kitty_cuda_gpu_test.log | tail -5
step bench
timeout 60 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md
timeout 45 $B/kitty_attention_bench_old --no-copy > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^|" $R/attn_old.md
timeout 45 $B/kitty_attention_bench --no-copy > $R/attn2.md 2>&1; echo "new2 rc=$?"; grep "^|" $R/attn2.md
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt
step san
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
step model
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED|SKIPPED" $R/cuda_runner_gpu_test.log | head
step done

# ---- .dev/call2.sh
source .dev/run.sh
rm -rf /tmp/k/bundle; mkdir -p /tmp/k; tar -xJf .dev/carry/p.tar.xz -C /tmp/k
step ncu
A="$B/kitty_attention_bench --no-copy --iters 3 --mode kitty-pro --shape 64x8192"
M=smsp__inst_executed.sum,smsp__cycles_active.avg,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,smsp__inst_executed_pipe_tensor.sum,smsp__inst_executed_pipe_alu.sum,smsp__inst_executed_pipe_fma.sum,smsp__inst_executed_pipe_lsu.sum,smsp__inst_executed_pipe_xu.sum,smsp__inst_executed_pipe_uniform.sum,smsp__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__average_warp_latency_issue_stalled_barrier.ratio,smsp__average_warp_latency_issue_stalled_long_scoreboard.ratio,smsp__average_warp_latency_issue_stalled_short_scoreboard.ratio,smsp__average_warp_latency_issue_stalled_math_pipe_throttle.ratio,smsp__average_warp_latency_issue_stalled_wait.ratio,smsp__average_warp_latency_issue_stalled_mio_throttle.ratio,smsp__average_warp_latency_issue_stalled_not_selected.ratio,smsp__average_warp_latency_issue_stalled_dispatch_stall.ratio,smsp__average_warp_latency_issue_stalled_lg_throttle.ratio,smsp__average_warp_latency_issue_stalled_selected.ratio,smsp__average_warp_latency_issue_stalled_no_instruction.ratio,smsp__average_warp_latency_issue_stalled_branch_resolving.ratio,smsp__average_warp_latency_issue_stalled_imc_miss.ratio,smsp__average_warp_latency_issue_stalled_misc.ratio
timeout 200 ncu --clock-control none -k regex:KittyAttentionKernelV2 --launch-skip 2 -c 1 --metrics $M $A > $R/ncu_new.txt 2>&1; echo "ncu rc=$?"; grep -v "^==PROF" $R/ncu_new.txt | tail -34
step sass
for f in $B/kitty_attention_bench $B/../lib/*kernels*; do [ -f $f ] && cuobjdump -sass $f 2>/dev/null | awk '/Function : .*KittyAttentionKernelV2I13__nv_bfloat16Li128ELb1ELb1ELi2ELb1E/{p=1;print;next} p&&/Function : /{p=0} p' > $R/v3pack.sass; grep -q HMMA $R/v3pack.sass && break; done
wc -l $R/v3pack.sass
step done

# ---- .dev/call3.sh
source .dev/run.sh
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3
step bench
timeout 60 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md
timeout 45 $B/kitty_attention_bench_old --no-copy > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^|" $R/attn_old.md | grep "kitty-pro\|kivi2\|auto"
S="--no-copy --mode kitty-pro --mode kivi2"
for v in KITTY_ATTN_FP_WEIGHT=1 KITTY_ATTN_FP_WEIGHT=3 KITTY_ATTN_CTAS_PER_SM=4; do echo "-- $v"; env $v timeout 40 $B/kitty_attention_bench $S 2>&1 | grep "^| k"; done > $R/attn_ab.md; cat $R/attn_ab.md
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt
step auto
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
timeout 200 $TB --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype auto > $R/q4b_8127_auto.json 2> $R/q4b_8127_auto.err; echo "auto rc=$?"; tail -c 300 $R/q4b_8127_auto.err | tr '\r' '\n' | tail -2
python3 -c "
import json; d=json.load(open('$R/q4b_8127_auto.json'))
for r in d['throughput']: print({k:r.get(k) for k in ['mode','peak_running','output_tokens_per_s','mean_step_time_s','mean_floor_step_s','floor_ratio','kv_bytes_per_token','num_preemptions']})" || true
step done

# ---- .dev/call4.sh
source .dev/run.sh
rm -rf /tmp/k/bundle; tar -xJf .dev/carry/b.tar.xz -C /tmp/k
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test_w3.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test_w3.log | head
timeout 40 $B/kitty_attention_bench --no-copy --mode kitty-pro --mode kivi2 --mode kitty > $R/attn_w3.md 2>&1; grep "^| k" $R/attn_w3.md
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
run() { local n=$1 t=$2; shift 2; step $n
  timeout $t $TB "$@" > $R/$n.json 2> $R/$n.err; echo "$n rc=$?"; tail -c 300 $R/$n.err | tr '\r' '\n' | tail -2
  python3 -c "
import json; d=json.load(open('$R/$n.json'))
for r in d['throughput']: print({k:r.get(k) for k in ['mode','peak_running','output_tokens_per_s','mean_step_time_s','mean_floor_step_s','floor_ratio','kv_bytes_per_token','num_preemptions']})" || true; }
run q4b_8127_kp 260 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
run q4b_8127_kitty 260 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty
step done

# ---- .dev/call5.sh
source .dev/run.sh
rm -rf /tmp/k/bundle; tar -xJf .dev/carry/b.tar.xz -C /tmp/k
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
run() { local n=$1 t=$2; shift 2; step $n
  timeout $t $TB "$@" > $R/$n.json 2> $R/$n.err; echo "$n rc=$?"; tail -c 200 $R/$n.err | tr '\r' '\n' | tail -1
  python3 -c "
import json; d=json.load(open('$R/$n.json'))
for r in d['throughput']: print({k:r.get(k) for k in ['mode','peak_running','output_tokens_per_s','elapsed_s','mean_step_time_s','mean_floor_step_s','floor_ratio','num_preemptions']})" 2>/dev/null || true; }
run q4b_8127_kp 250 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
run q4b_8127_auto 130 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype auto
step done

