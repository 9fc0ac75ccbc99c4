source .dev/run.sh
cp .dev/carry/bench_base $B/bench_base
step tests
for t in kitty_cuda_gpu_test; do
  KITTY_ATTN_STREAM=1 timeout 300 $B/$t > $R/${t}_stream.log 2>&1; echo "$t stream rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/${t}_stream.log | tr '\n' ' ')"
  grep -E "^\[  FAILED|Failure|error" $R/${t}_stream.log | head -20
done
step bench
SH="--shape 264x4096 --shape 267x4096 --shape 132x4096 --shape 133x4096 --shape 64x8192 --shape 32x8192 --shape 128x8192 --shape 267x65-8192 --shape 16x8192 --shape 8x32768"
for v in base new new0 base2 new2; do
  case $v in base*) BIN=$B/bench_base; E=;; new0) BIN=$B/kitty_attention_bench; E=0;; new*) BIN=$B/kitty_attention_bench; E=;; esac
  if [ -n "$E" ]; then export KITTY_ATTN_STREAM=$E; fi
  timeout 120 $BIN --no-copy --iters 30 --mode kitty-pro $SH > $R/bench_$v.md 2> $R/bench_$v.err; echo "$v rc=$?"
  unset KITTY_ATTN_STREAM
done
python3 - <<'PY'
import re,glob
rows={}
for v in ['base','new','new0','base2','new2']:
    for l in open(f'/tmp/res/r/bench_{v}.md'):
        c=[x.strip() for x in l.split('|')]
        if len(c)>4 and c[1]=='kitty-pro': rows.setdefault(c[2],{})[v]=c[3]+' ('+c[6]+')'
for k,d in rows.items(): print(k, d)
PY
step tests2
for t in cuda_runner_gpu_test engine_gpu_test; do KITTY_ATTN_STREAM=1 timeout 300 $B/$t > $R/${t}_stream.log 2>&1; echo "$t stream rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/${t}_stream.log | tr '\n' ' ')"; grep -E "^\[  FAILED" $R/${t}_stream.log | head; done
step done
