source .dev/run.sh
step sass
(cuobjdump -sass $B/kitty_attention_bench > /tmp/sass.txt 2>/dev/null; python3 - <<'PY' > $R/spills.txt
import re
cur=None; cnt={}
for line in open('/tmp/sass.txt'):
    m=re.search(r'Function : (\S+)', line)
    if m: cur=m.group(1); cnt[cur]=[0,0,0]; continue
    if cur and 'KittyAttentionKernelV2' in cur:
        if 'STL' in line: cnt[cur][0]+=1
        if 'LDL' in line: cnt[cur][1]+=1
        if re.search(r'/\*[0-9a-f]{4}\*/', line): cnt[cur][2]+=1
for k,v in cnt.items():
    if 'KittyAttentionKernelV2' in k: print(v, k[:160])
PY
xz -c /tmp/sass.txt > $R/sass.txt.xz; cat $R/spills.txt) || true
step kitty_cuda
for v in 0 1 2; do
KITTY_ATTN_VARIANT=$v KITTY_ATTN_FP_PARTS=$([ $v = 0 ] && echo 4 || echo 1) timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test_v$v.log 2>&1; echo "kitty_cuda v$v rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test_v$v.log | head -20; grep -B2 -A6 "Failure" $R/kitty_cuda_gpu_test_v$v.log | head -20
done
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda default rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log | head
timeout 100 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_memcheck.log 2>&1; echo "memcheck rc=$?"; tail -n 1 $R/san_memcheck.log
timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck.log 2>&1; echo "racecheck rc=$?"; tail -n 1 $R/san_racecheck.log
KITTY_ATTN_VARIANT=1 KITTY_ATTN_FP_PARTS=1 timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck_v1.log 2>&1; echo "racecheck v1 rc=$?"; tail -n 1 $R/san_racecheck_v1.log
step decode
S="--shape 64x8192 --shape 32x8192 --shape 8x32768 --shape 8x8192"
g() { grep "^|" $1 | grep -v "^| mode\|---"; }
timeout 60 .dev/base/kitty_attention_bench_base --iters 30 --mode kitty-pro --mode auto $S > $R/dec_base.md 2>&1; echo "base rc=$?"; grep copy $R/dec_base.md; g $R/dec_base.md
timeout 60 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro --mode auto $S > $R/dec_v0.md 2>&1; echo "v0 rc=$?"; g $R/dec_v0.md
for v in 1 2; do for c in 2 4 8 12; do
KITTY_ATTN_VARIANT=$v KITTY_ATTN_CTAS_PER_SM=$c timeout 40 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro $S > $R/dec_v${v}_c$c.md 2>&1; echo "v$v c$c rc=$?"; g $R/dec_v${v}_c$c.md
done; done
timeout 40 .dev/base/kitty_attention_bench_base --no-copy --iters 30 --mode kitty-pro $S > $R/dec_base2.md 2>&1; echo "base2 rc=$?"; g $R/dec_base2.md
step done
