source .dev/run.sh
TB="$TB --num-prompts 0 --max-num-seqs 1024"
run q4b_8127_kivi2 270 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kivi2
run q4b_8127_kitty 270 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty
step done
