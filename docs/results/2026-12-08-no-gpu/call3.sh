# Call 3 (prepared 2026-12-08, not run; ~7 min): qwen3-4b 65/8127 at 60 GB in mode auto (the
# ratio's other half, same machine as call 2 if it is still warm, else rerun call 2's kitty-pro
# here too), and kitty-pro with --cuda_graph_max_batch 512 (vLLM's default capture limit; ours
# is 256, so the 271-sequence steps run eagerly today), with the kitty-bench call 1 chose (KB).
source .dev/run.sh
mkdir -p /tmp/k/var && tar -xJf .dev/carry/var.tar.xz -C /tmp/k
V=/tmp/k/var
[ "${KB:-new}" = base ] && TB="$V/kitty-bench_base throughput --device cuda --json"
A="--num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127"
run q4b_8127_auto 250 $A --kv-cache-dtype auto
run q4b_8127_kp_graph512_${KB:-new} 280 $A --kv-cache-dtype kitty-pro --cuda_graph_max_batch 512
step done
