# Call 2 (prepared 2026-12-08, not run; ~5 min): PyTorch SDPA bf16 vs our decode attention (base
# and the deferred-PV kernel), alternating twice; a kitty-pro step profile at 271 sequences
# (65/2048) and qwen3-4b 65/8127 kitty-pro at 60 GB, both with the kitty-bench call 1 chose
# (KB=new, the default, or KB=base).
source .dev/run.sh
mkdir -p /tmp/k/var && tar -xJf .dev/carry/var.tar.xz -C /tmp/k
V=/tmp/k/var
[ "${KB:-new}" = base ] && TB="$V/kitty-bench_base throughput --device cuda --json"
step attn
SH="--shape 64x8192 --shape 8x32768 --shape 16x8192"
for i in 1 2; do
  timeout 80 python3 bench/sdpa_peer.py > $R/sdpa_$i.md 2>&1; echo "sdpa $i rc=$?"
  for v in base new; do case $v in base) X=$V/kitty_attention_bench_base;; new) X=$B/kitty_attention_bench;; esac
    timeout 60 $X --iters 30 --mode kitty-pro --mode auto $SH > $R/attn2_${v}_$i.md 2>&1; echo "attn $v $i rc=$?"; grep -E "kitty-pro|auto" $R/attn2_${v}_$i.md | awk -F'|' '{printf "%s %s %s; ", $2, $3, $4}'; echo; done; done
step profile
KITTY_STEP_PROFILE=1 timeout 120 $TB --num-prompts 271 --max-num-seqs 271 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 2048 --kv-cache-dtype kitty-pro > $R/prof_kp.json 2> $R/prof_kp.err; echo "prof rc=$?"
grep -v $'\r' $R/prof_kp.err | tail -30
A="--num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127"
run q4b_8127_kp_${KB:-new} 280 $A --kv-cache-dtype kitty-pro
step done
