# Call 1 (prepared 2026-12-08, not run: no GPU was lent):
# GPU tests of the deferred-PV page loop (PV of page pair L-1 inside the
# k-steps of page L); A/B decode attention bench base (4450bb2) / new (merged K loop unroll 1) /
# v2 (unroll 2), alternating twice; then qwen3-4b 65/8127 kitty-pro at 60 GB with the faster of
# base and new.
source .dev/run.sh
mkdir -p /tmp/k/var && tar -xJf .dev/carry/var.tar.xz -C /tmp/k
V=/tmp/k/var
step tests
timeout 200 $B/kitty_cuda_gpu_test > $R/kc.log 2>&1; echo "kc default rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc.log | tr '\n' ' ')"
KITTY_ATTN_STREAM=1 timeout 200 $B/kitty_cuda_gpu_test > $R/kc_s1.log 2>&1; echo "kc stream1 rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc_s1.log | tr '\n' ' ')"
KITTY_ATTN_STREAM=0 timeout 200 $B/kitty_cuda_gpu_test > $R/kc_s0.log 2>&1; echo "kc stream0 rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc_s0.log | tr '\n' ' ')"
grep -E "^\[  FAILED|Failure" $R/kc*.log | head
step attn
SH="--shape 64x8192 --shape 271x65-8192 --shape 8x32768 --shape 16x8192 --shape 256x2048"
for i in 1 2; do for v in base new v2; do case $v in base) X=$V/kitty_attention_bench_base;; new) X=$B/kitty_attention_bench;; v2) X=$V/kitty_attention_bench_v2;; esac
  timeout 60 $X --iters 30 --mode kitty-pro $SH > $R/attn_${v}_$i.md 2> $R/attn_${v}_$i.err; echo "attn $v $i rc=$?"; grep kitty-pro $R/attn_${v}_$i.md | awk -F'|' '{printf "%s %s; ", $3, $4}'; echo; done; done
step tests2
for t in cuda_runner_gpu_test engine_gpu_test; do timeout 200 $B/$t > $R/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$t.log | tr '\n' ' ')"; done
for tool in memcheck racecheck; do KITTY_ATTN_STREAM=1 timeout 100 compute-sanitizer --tool $tool $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_$tool.log 2>&1; echo "$tool rc=$? $(tail -n 1 $R/san_$tool.log)"; done
FAST=$(python3 - <<PY
import re
def t(v):
  xs=[]
  for i in (1,2):
    for l in open('$R/attn_%s_%d.md'%(v,i)):
      c=[x.strip() for x in l.split('|')]
      if len(c)>3 and c[1]=='kitty-pro' and c[2]=='271x65-8K': xs.append(float(c[3]))
  return sum(xs)/len(xs) if xs else 1e9
print('new' if t('new') < t('base') else 'base')
PY
)
echo "faster on 271x65-8K: $FAST"
[ "$FAST" = base ] && TB="$V/kitty-bench_base throughput --device cuda --json"
A="--num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127"
run q4b_8127_kp_$FAST 280 $A --kv-cache-dtype kitty-pro
step done
