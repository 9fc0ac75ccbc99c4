# Device calls of 2026-12-02 18:55-20:46 UTC (H200). callA: tests of 4792689 + KITTY_ATTN_OCC experiment (dropped); callB: tests and A/B of the kPack column layout.

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
cat $R/gpu.txt
step tests
timeout 150 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep "vs exact" $R/kitty_cuda_gpu_test.log | awk '{for(i=1;i<=NF;i++) if($i=="rel-L2") print $(i+1)}' | sort -g | tail -2
for o in 1 3; do KITTY_ATTN_OCC=$o timeout 150 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test_occ$o.log 2>&1; echo "kitty_cuda occ$o rc=$?"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test_occ$o.log | head -5; done
for t in memcheck racecheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
KITTY_ATTN_OCC=3 timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_racecheck_occ3.log 2>&1; echo "san racecheck occ3 rc=$?"; tail -1 $R/san_racecheck_occ3.log
timeout 60 $B/model_ops_gpu_test > $R/model_ops_gpu_test.log 2>&1; echo "model_ops rc=$?"; grep -E "PASSED|FAILED" $R/model_ops_gpu_test.log | head -3
step bench
SH="--shape 512x1024 --shape 128x2048 --shape 267x4096 --shape 64x8192 --shape 8x32768 --shape 8x8192"
timeout 80 $B/kitty_attention_bench $SH --mode kitty-pro --mode kivi2 --mode kitty --mode auto > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md
for o in 1 3; do KITTY_ATTN_OCC=$o timeout 60 $B/kitty_attention_bench --no-copy $SH --mode kitty-pro --mode kivi2 --mode kitty > $R/attn_occ$o.md 2>&1; echo "occ$o rc=$?"; grep "^| " $R/attn_occ$o.md; done
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt | grep "64x8K\|8x32K"
step sass
cuobjdump -sass $B/kitty_attention_bench > /tmp/sass.txt 2>&1; echo "cuobjdump rc=$?"
python3 - <<'PY' > $R/sass_spills.txt
import re
t=open('/tmp/sass.txt').read()
for blk in re.split(r'\n\s*Function : ', t)[1:]:
    name=blk.split('\n',1)[0]
    if 'KittyAttentionKernelV2' not in name: continue
    n=len(re.findall(r'\bSTL\b|\bLDL\b', blk))
    ins=len(re.findall(r'/\*[0-9a-f]{4}\*/', blk))
    print(name[:160], 'instr', ins, 'STL/LDL', n)
PY
grep -c . $R/sass_spills.txt; head -40 $R/sass_spills.txt
python3 - <<'PY'
import re
t=open('/tmp/sass.txt').read()
out=[b for b in re.split(r'\n\s*Function : ', t)[1:] if '13__nv_bfloat16Li128ELb1ELb1ELi2ELb1' in b.split('\n',1)[0]]
open('/tmp/res/r/sass_kp_bf16.txt','w').write('\n\nFunction : '.join(['']+out))
PY
step model
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3; grep "batch invariance" $R/cuda_runner_gpu_test.log
step done

# ---- .dev/callB.sh
source .dev/run.sh
step tests
timeout 150 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; rc=$?; echo "kitty_cuda rc=$rc"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep "vs exact" $R/kitty_cuda_gpu_test.log | awk '{for(i=1;i<=NF;i++) if($i=="rel-L2") print $(i+1)}' | sort -g | tail -2
for t in memcheck racecheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -n 1 $R/san_$t.log; done
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3; grep "batch invariance" $R/cuda_runner_gpu_test.log
[ $rc -ne 0 ] && { step done; exit 0; }
step bench
SH="--shape 512x1024 --shape 128x2048 --shape 267x4096 --shape 64x8192 --shape 8x32768 --shape 8x8192 --shape 1x8192"
timeout 80 $B/kitty_attention_bench $SH --mode kitty-pro --mode kivi2 --mode kitty > $R/attn.md 2>&1; echo "new rc=$?"; grep "^|\|copy" $R/attn.md
timeout 60 $B/kitty_attention_bench_old --no-copy $SH --mode kitty-pro --mode kivi2 --mode kitty > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^| " $R/attn_old.md
timeout 60 $B/kitty_attention_bench --no-copy $SH --mode kitty-pro > $R/attn_new2.md 2>&1; echo "new2 rc=$?"; grep "^| " $R/attn_new2.md
export KITTY_STEP_PROFILE=1
run q4b_8127_kp 230 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
tr '\r' '\n' < $R/q4b_8127_kp.err | grep -A14 'decode steps'
run q8b_1024_kp 100 --model synthetic:qwen3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype kitty-pro
run q8b_1024_auto 60 --model synthetic:qwen3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto
step done
