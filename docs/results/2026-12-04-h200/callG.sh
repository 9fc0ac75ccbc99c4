source .dev/run.sh
cp .dev/carry/bench_base $B/bench_base
step tests
timeout 300 $B/kitty_cuda_gpu_test > $R/kc.log 2>&1; echo "kc default rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc.log | tr '\n' ' ')"
KITTY_ATTN_STREAM=1 timeout 300 $B/kitty_cuda_gpu_test > $R/kc_s1.log 2>&1; echo "kc stream1 rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc_s1.log | tr '\n' ' ')"
step bench
SH="--shape 256x2048 --shape 264x2048 --shape 256x4096 --shape 64x8192 --shape 128x8192 --shape 267x65-8192 --shape 267x4096 --shape 16x8192 --shape 8x32768"
for v in base new base2 new2; do
  case $v in base*) BIN=$B/bench_base;; new*) BIN=$B/kitty_attention_bench;; esac
  timeout 120 $BIN --no-copy --iters 30 --mode kitty-pro --mode kivi2 --mode kitty $SH > $R/bench_$v.md 2> $R/bench_$v.err; echo "$v rc=$?"
done
python3 - <<'PY'
rows={}
vs=['base','new','base2','new2']
for v in vs:
    for l in open(f'/tmp/res/r/bench_{v}.md'):
        c=[x.strip() for x in l.split('|')]
        if len(c)>4 and c[1] in ('kitty-pro','kivi2','kitty'): rows.setdefault(c[1]+' '+c[2],{})[v]=c[3]+' '+c[6]
print('shape', vs)
for k,d in rows.items(): print(k, [d.get(v) for v in vs])
PY
step done
