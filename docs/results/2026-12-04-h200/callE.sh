source .dev/run.sh
step sweep
SH="--shape 267x1024 --shape 267x2048 --shape 267x3072 --shape 267x4096 --shape 267x6144 --shape 267x8192 --shape 267x65-8192 --shape 128x4096 --shape 48x8192 --shape 16x8192 --shape 4x8192 --shape 8x32768 --shape 1x8192"
for v in s1 s0 s1b s0b; do
  case $v in s1*) E=1;; s0*) E=0;; esac
  KITTY_ATTN_STREAM=$E timeout 150 $B/kitty_attention_bench --no-copy --iters 20 --mode kitty-pro $SH > $R/sweep_$v.md 2> $R/sweep_$v.err; echo "$v rc=$?"
done
python3 - <<'PY'
rows={}
vs=['s0','s1','s0b','s1b']
for v in vs:
    for l in open(f'/tmp/res/r/sweep_{v}.md'):
        c=[x.strip() for x in l.split('|')]
        if len(c)>4 and c[1]=='kitty-pro': rows.setdefault(c[2],{})[v]=c[3]
print('shape', vs)
for k,d in rows.items(): print(k, [d.get(v) for v in vs])
PY
export KITTY_ATTN_STREAM=1; run q4b_8127_kp_s1 300 --num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro; unset KITTY_ATTN_STREAM
export KITTY_ATTN_STREAM=0; run q4b_8127_kp_s0 300 --num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro; unset KITTY_ATTN_STREAM
step done
