source .dev/run.sh
cp .dev/carry/bench_base $B/bench_base
step tests
timeout 300 $B/kitty_cuda_gpu_test > $R/kc.log 2>&1; echo "kc default rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc.log | tr '\n' ' ')"
grep -A3 "DecodeStreamBatch" $R/kc.log | head -8
KITTY_ATTN_STREAM=0 timeout 300 $B/kitty_cuda_gpu_test --gtest_filter=*Stream* > $R/kc_s0.log 2>&1; echo "kc stream0 rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc_s0.log | tr '\n' ' ')"
KITTY_ATTN_STREAM=1 timeout 300 $B/kitty_cuda_gpu_test > $R/kc_s1.log 2>&1; echo "kc stream1 rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc_s1.log | tr '\n' ' ')"
for t in cuda_runner_gpu_test engine_gpu_test model_ops_gpu_test; do timeout 300 $B/$t > $R/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$t.log | tr '\n' ' ')"; done
for tool in memcheck racecheck synccheck; do KITTY_ATTN_STREAM=1 timeout 100 compute-sanitizer --tool $tool $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_$tool.log 2>&1; echo "$tool rc=$? $(tail -n 1 $R/san_$tool.log)"; done
grep -E "^\[  FAILED|Failure" $R/*.log | head
step bench
SH="--shape 64x8192 --shape 128x8192 --shape 32x8192 --shape 16x8192 --shape 8x32768 --shape 8x8192 --shape 267x65-8192 --shape 267x4096 --shape 256x2048 --shape 128x4096 --shape 4x8192 --shape 1x8192"
for v in base new new0 base2 new2; do
  case $v in base*) BIN=$B/bench_base; E=;; new0) BIN=$B/kitty_attention_bench; E=0;; new*) BIN=$B/kitty_attention_bench; E=;; esac
  if [ -n "$E" ]; then export KITTY_ATTN_STREAM=$E; fi
  timeout 120 $BIN --no-copy --iters 30 --mode kitty-pro $SH > $R/bench_$v.md 2> $R/bench_$v.err; echo "$v rc=$?"
  unset KITTY_ATTN_STREAM
done
python3 - <<'PY'
rows={}
vs=['base','new','new0','base2','new2']
for v in vs:
    for l in open(f'/tmp/res/r/bench_{v}.md'):
        c=[x.strip() for x in l.split('|')]
        if len(c)>4 and c[1]=='kitty-pro': rows.setdefault(c[2],{})[v]=c[3]+' '+c[6]
print('shape', vs)
for k,d in rows.items(): print(k, [d.get(v) for v in vs])
PY
step done
