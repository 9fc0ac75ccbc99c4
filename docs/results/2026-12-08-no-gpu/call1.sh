# Call 1 (prepared 2026-12-08, not run: no GPU was lent; ~5 min): GPU tests of the deferred-PV
# page loop (PV of page pair L-1 inside the k-steps of page L), then the decode-attention bench
# of base (4450bb2) / new (the patch: merged k-steps fully unrolled) / u1 / u2 (unrolled 1, 2),
# alternating twice; runner and engine GPU tests, memcheck and racecheck. Prints which of base
# and new is faster on the long-generation batch (KB for calls 2 and 3). Last, gemm_bench
# --search: a wide sweep of cuBLASLt configurations for qwen3-4b's GEMMs at 271 rows.
source .dev/run.sh
mkdir -p /tmp/k/var && tar -xJf .dev/carry/var.tar.xz -C /tmp/k
V=/tmp/k/var
step tests
timeout 200 $B/kitty_cuda_gpu_test > $R/kc.log 2>&1; echo "kc default rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc.log | tr '\n' ' ')"
KITTY_ATTN_STREAM=1 timeout 200 $B/kitty_cuda_gpu_test > $R/kc_s1.log 2>&1; echo "kc stream1 rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc_s1.log | tr '\n' ' ')"
grep -E "^\[  FAILED|Failure" $R/kc*.log | head
step attn
SH="--shape 64x8192 --shape 271x65-8192 --shape 8x32768 --shape 16x8192"
for i in 1 2; do for v in base new u1 u2; do case $v in base) X=$V/kitty_attention_bench_base;; new) X=$B/kitty_attention_bench;; *) X=$V/kitty_attention_bench_$v;; esac
  timeout 60 $X --iters 30 --mode kitty-pro $SH > $R/attn_${v}_$i.md 2> $R/attn_${v}_$i.err; echo "attn $v $i rc=$?"; grep kitty-pro $R/attn_${v}_$i.md | awk -F'|' '{printf "%s %s; ", $3, $4}'; echo; done; done
python3 - <<PY
def t(v, shape):
  xs=[]
  for i in (1,2):
    for l in open('$R/attn_%s_%d.md'%(v,i)):
      c=[x.strip() for x in l.split('|')]
      if len(c)>3 and c[1]=='kitty-pro' and c[2]==shape: xs.append(float(c[3]))
  return sum(xs)/len(xs) if xs else 1e9
for s in ('64x8K','271x65-8K'): print(s, {v: round(t(v,s),1) for v in ('base','new','u1','u2')})
print('KB=' + ('new' if t('new','271x65-8K') < t('base','271x65-8K') else 'base'))
PY
step tests2
for t in cuda_runner_gpu_test engine_gpu_test; do timeout 200 $B/$t > $R/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$t.log | tr '\n' ' ')"; done
for tool in memcheck racecheck; do KITTY_ATTN_STREAM=1 timeout 100 compute-sanitizer --tool $tool $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_$tool.log 2>&1; echo "$tool rc=$? $(tail -n 1 $R/san_$tool.log)"; done
step gemm
timeout 120 $B/gemm_bench --model qwen3-4b --rows 271 --search > $R/gemm_search.md 2> $R/gemm_search.err; echo "gemm search rc=$?"
cat $R/gemm_search.md
step done
