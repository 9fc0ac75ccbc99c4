source .dev/run.sh
run q4b_8127_kp 280 --num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
run q4b_8127_auto 250 --num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype auto
step done
