# Call 2 (prepared 2026-12-08, not run):
# PyTorch SDPA bf16 vs our decode attention (base 4450bb2 and the
# deferred-PV kernel), alternating twice; qwen3-4b 65/8127 auto at 60 GB (the ratio's other
# half); a kitty-pro step profile at 271 sequences (65/2048); kitty-pro 65/8127 again with
# --cuda_graph_max_batch 512 (vLLM's default capture limit; ours is 256, so the 271-sequence
# steps run eagerly today).
source .dev/run.sh
mkdir -p /tmp/k/var && tar -xJf .dev/carry/var.tar.xz -C /tmp/k
V=/tmp/k/var
step attn
SH="--shape 64x8192 --shape 8x32768 --shape 16x8192"
for i in 1 2; do
  timeout 80 python3 bench/sdpa_peer.py > $R/sdpa_$i.md 2>&1; echo "sdpa $i rc=$?"; grep -E "64x8K|8x32K|16x8K|64 x|8 x 32|16 x" $R/sdpa_$i.md | head -5
  for v in base new; do case $v in base) X=$V/kitty_attention_bench_base;; new) X=$B/kitty_attention_bench;; esac
    timeout 60 $X --iters 30 --mode kitty-pro --mode auto $SH > $R/attn2_${v}_$i.md 2>&1; echo "attn $v $i rc=$?"; grep -E "kitty-pro|auto" $R/attn2_${v}_$i.md | awk -F'|' '{printf "%s %s %s; ", $2, $3, $4}'; echo; done; done
step profile
KITTY_STEP_PROFILE=1 timeout 120 $TB --num-prompts 271 --max-num-seqs 271 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 2048 --kv-cache-dtype kitty-pro > $R/prof_kp.json 2> $R/prof_kp.err; echo "prof rc=$?"
grep -v $'\r' $R/prof_kp.err | tail -30
A="--num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127"
run q4b_8127_auto 250 $A --kv-cache-dtype auto
# the kitty-bench that call 1 used for kitty-pro ("faster on 271x65-8K"): KB=base or new
[ "${KB:-new}" = base ] && TB="$V/kitty-bench_base throughput --device cuda --json"
run q4b_8127_kp_graph512 280 $A --kv-cache-dtype kitty-pro --cuda_graph_max_batch 512
step done
