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
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "OK \]|FAILED|PASSED|Failure" $R/kitty_cuda_gpu_test.log | head -20
step bench
timeout 150 $B/kitty_attention_bench > $R/attn_v4.md 2>&1; echo "bench rc=$?"; cat $R/attn_v4.md | tail -30
step ab
for v in "KITTY_ATTN_IMPL=v3" "KITTY_ATTN_V4_CTAS=4" "KITTY_ATTN_IMPL=v4"; do
  echo "-- $v"; env $v timeout 60 $B/kitty_attention_bench --no-copy --mode kitty-pro --mode kivi2 --shape 64x8192 --shape 8x32768 --shape 8x8192 2>&1 | grep "^|" | tail -4
done > $R/attn_ab.md; cat $R/attn_ab.md
timeout 100 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; tail -12 $R/sdpa.txt
step sanitizer
for t in memcheck racecheck; do timeout 150 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -3 $R/san_$t.log; done
step other
timeout 100 $B/sampling_gpu_test > $R/sampling_gpu_test.log 2>&1; echo "sampling rc=$?"; tail -3 $R/sampling_gpu_test.log
timeout 120 compute-sanitizer --tool memcheck $B/sampling_gpu_test > $R/san_sampling.log 2>&1; echo "san sampling rc=$?"; tail -3 $R/san_sampling.log
timeout 120 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; tail -5 $R/engine_gpu_test.log
timeout 200 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; tail -3 $R/cuda_runner_gpu_test.log
step done

# ---- .dev/call2.sh
source .dev/run.sh
step ncu
A="$B/kitty_attention_bench --no-copy --iters 3 --mode kitty-pro --shape 64x8192"
M=smsp__inst_executed.sum,smsp__cycles_active.avg,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum,smsp__inst_executed_pipe_tensor.sum,launch__registers_per_thread,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__average_warp_latency_issue_stalled_barrier.ratio,smsp__average_warp_latency_issue_stalled_long_scoreboard.ratio,smsp__average_warp_latency_issue_stalled_short_scoreboard.ratio,smsp__average_warp_latency_issue_stalled_math_pipe_throttle.ratio,smsp__average_warp_latency_issue_stalled_wait.ratio,smsp__average_warp_latency_issue_stalled_mio_throttle.ratio,smsp__average_warp_latency_issue_stalled_not_selected.ratio,smsp__average_warp_latency_issue_stalled_dispatch_stall.ratio,smsp__average_warp_latency_issue_stalled_lg_throttle.ratio,smsp__average_warp_latency_issue_stalled_selected.ratio,smsp__average_warp_latency_issue_stalled_no_instruction.ratio,smsp__average_warp_latency_issue_stalled_branch_resolving.ratio,smsp__average_warp_latency_issue_stalled_tex_throttle.ratio,smsp__average_warp_latency_issue_stalled_imc_miss.ratio,smsp__average_warp_latency_issue_stalled_membar.ratio,smsp__average_warp_latency_issue_stalled_sleeping.ratio,smsp__average_warp_latency_issue_stalled_misc.ratio,smsp__average_warp_latency_issue_stalled_drain.ratio
timeout 150 ncu --clock-control none -k regex:KittyAttentionV4 --launch-skip 2 -c 1 --metrics $M $A > $R/ncu_v4.txt 2>&1; echo "ncu v4 rc=$?"; grep -v "^==PROF" $R/ncu_v4.txt | tail -36
KITTY_ATTN_IMPL=v3 timeout 150 ncu --clock-control none -k regex:KittyAttentionKernelV2 --launch-skip 2 -c 1 --metrics $M $A > $R/ncu_v3.txt 2>&1; echo "ncu v3 rc=$?"; grep -v "^==PROF" $R/ncu_v3.txt | tail -36
step sass
cuobjdump -sass -fun regex:KittyAttentionV4KernelI13__nv_bfloat16Lb1ELi3E $B/../lib/libkitty_kernels.so > $R/v4.sass 2>&1 || true
ls $B/../lib | head; wc -l $R/v4.sass
if [ ! -s $R/v4.sass ] || ! grep -q HMMA $R/v4.sass; then for f in $B/kitty_attention_bench $B/../lib/*; do cuobjdump -sass $f 2>/dev/null | awk '/Function : .*KittyAttentionV4KernelI13__nv_bfloat16Lb1ELi3E/{p=1} p&&/Function : /&&!/V4KernelI13__nv_bfloat16Lb1ELi3E/{p=0} p' > $R/v4.sass; grep -q HMMA $R/v4.sass && break; done; fi
wc -l $R/v4.sass
step done

# ---- .dev/call3.sh
source .dev/run.sh
rm -rf /tmp/k/bundle; tar -xJf .dev/carry/b.tar.xz -C /tmp/k
step ab
for v in "KITTY_ATTN_IMPL=v3" "KITTY_ATTN_IMPL=v4" "KITTY_ATTN_V4_CTAS=4"; do
  echo "-- $v"; env $v timeout 60 $B/kitty_attention_bench --no-copy --mode kitty-pro --mode kivi2 --mode kitty --shape 64x8192 --shape 8x32768 --shape 8x8192 --shape 1x8192 2>&1 | grep "^|" | tail -12
done > $R/attn_ab2.md; cat $R/attn_ab2.md
step tests
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "OK \]|FAILED|PASSED|Failure" $R/kitty_cuda_gpu_test.log | head -20
KITTY_ATTN_IMPL=v3 timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test_v3.log 2>&1; echo "kitty_cuda v3 rc=$?"; grep -E "PASSED|FAILED" $R/kitty_cuda_gpu_test_v3.log | head -5
timeout 150 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_racecheck.log 2>&1; echo "race rc=$?"; tail -2 $R/san_racecheck.log
KITTY_ATTN_IMPL=v3 timeout 150 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_racecheck_v3.log 2>&1; echo "race v3 rc=$?"; tail -2 $R/san_racecheck_v3.log
step sass
for f in $B/../lib/libkitty_kernels*.so $B/kitty_attention_bench; do [ -f $f ] && cuobjdump -sass $f 2>/dev/null | grep -q KittyAttentionV4 && { cuobjdump -sass $f > /tmp/all.sass; break; }; done
python3 - > $R/sass_counts.txt <<'PY'
import re,collections
cur=None; C={}
for l in open('/tmp/all.sass'):
    m=re.search(r'Function : (\S+)', l)
    if m: cur=m.group(1); C[cur]=collections.Counter(); continue
    m=re.match(r'\s+/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[0-9T]\s+)?([A-Z0-9_]+)', l)
    if m and cur: C[cur][m.group(1)]+=1
for k,c in C.items():
    if 'Attention' in k and ('bfloat16Lb1' in k or 'bfloat16ELi128ELb1ELb1' in k):
        print(k[:120], sum(c.values()), c.most_common(12))
PY
cat $R/sass_counts.txt
step done

# ---- .dev/call4.sh
source .dev/run.sh
rm -rf /tmp/k/bundle; tar -xJf .dev/carry/b.tar.xz -C /tmp/k
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep PASSED $R/engine_gpu_test.log
step bench
timeout 60 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|" $R/attn.md
KITTY_ATTN_CTAS_PER_SM=2 timeout 40 $B/kitty_attention_bench --no-copy --mode kitty-pro --mode kivi2 > $R/attn_ctas2.md 2>&1; grep "^|" $R/attn_ctas2.md
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt
step kp
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
timeout 330 $TB --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro > $R/q4b_8127_kp.json 2> $R/q4b_8127_kp.err; echo "kp rc=$?"; tail -c 300 $R/q4b_8127_kp.err | tr '\r' '\n' | tail -2
python3 -c "
import json; d=json.load(open('$R/q4b_8127_kp.json'))
for r in d['throughput']: print({k:r.get(k) for k in ['mode','peak_running','output_tokens_per_s','mean_step_time_s','mean_roofline_step_s','mean_floor_step_s','floor_ratio','roofline_ratio']})"
step done

# ---- .dev/call5.sh
source .dev/run.sh
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
run() { local n=$1 t=$2; shift 2; step $n
  timeout $t $TB "$@" > $R/$n.json 2> $R/$n.err; echo "$n rc=$?"; tail -c 300 $R/$n.err | tr '\r' '\n' | tail -2
  python3 -c "
import json; d=json.load(open('$R/$n.json'))
for r in d['throughput']: print({k:r.get(k) for k in ['mode','peak_running','output_tokens_per_s','mean_step_time_s','mean_floor_step_s','floor_ratio','kv_bytes_per_token','num_preemptions']})" || true; }
run q4b_8127_auto 180 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype auto
run q4b_8127_kivi2 340 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kivi2
step done


# ---- .dev/call6.sh (after the device_convert.cuh refactor)
source .dev/run.sh
rm -rf /tmp/k; mkdir -p /tmp/k; tar -xJf .dev/carry/b.tar.xz -C /tmp/k
step tests
timeout 60 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "PASSED|FAILED" $R/kitty_cuda_gpu_test.log
timeout 90 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED|SKIPPED \]" $R/cuda_runner_gpu_test.log | head -4
timeout 40 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
step done
