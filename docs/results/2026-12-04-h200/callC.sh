source .dev/run.sh
cp .dev/carry/bench_base $B/bench_base
step tests
KITTY_ATTN_STREAM=1 timeout 300 $B/kitty_cuda_gpu_test > $R/kc_stream.log 2>&1; echo "kc stream rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc_stream.log | tr '\n' ' ')"
timeout 300 $B/kitty_cuda_gpu_test > $R/kc.log 2>&1; echo "kc default rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc.log | tr '\n' ' ')"
grep -E "^\[  FAILED|Failure" $R/kc*.log | head
step bench
SH="--shape 264x4096 --shape 267x4096 --shape 133x4096 --shape 64x8192 --shape 128x8192 --shape 267x65-8192 --shape 32x8192"
for v in base p1 p2 p4 p8 base2 p2b; do
  case $v in base*) BIN=$B/bench_base; E=;; p2b) BIN=$B/kitty_attention_bench; E=2;; p*) BIN=$B/kitty_attention_bench; E=${v#p};; esac
  if [ -n "$E" ]; then export KITTY_ATTN_STREAM_PIECES=$E; fi
  timeout 120 $BIN --no-copy --iters 30 --mode kitty-pro $SH > $R/bench_$v.md 2> $R/bench_$v.err; echo "$v rc=$?"
  unset KITTY_ATTN_STREAM_PIECES
done
python3 - <<'PY'
rows={}
vs=['base','p1','p2','p4','p8','base2','p2b']
for v in vs:
    for l in open(f'/tmp/res/r/bench_{v}.md'):
        c=[x.strip() for x in l.split('|')]
        if len(c)>4 and c[1]=='kitty-pro': rows.setdefault(c[2],{})[v]=c[3]
print('shape', vs)
for k,d in rows.items(): print(k, [d.get(v) for v in vs])
PY
step done
