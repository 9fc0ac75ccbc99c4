source .dev/run.sh
TB="$TB --num-prompts 0 --max-num-seqs 1024"
step sdpa
P="--prefill 2048x0 --prefill 2048x6144 --prefill 512x8192 --prefill 256x4096 --prefill 128x4096"
timeout 60 $B/kitty_attention_bench --no-copy --iters 20 --mode auto --mode kitty-pro $P > $R/bench_prefill.md 2>&1; echo "new rc=$?"; grep "^|" $R/bench_prefill.md
timeout 100 python3 bench/sdpa_peer.py $P > $R/sdpa_prefill.md 2> $R/sdpa_prefill.err; echo "sdpa rc=$?"; cat $R/sdpa_prefill.md
run l8b_8192_kp 200 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype kitty-pro
run l8b_8192_auto 80 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype auto
run l8b_1024_kp 110 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype kitty-pro
run l8b_1024_auto 60 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto
step done
