# Call B (the same warm machine, right after call A): PyTorch SDPA bf16 and our decode attention,
# alternating twice. (sdpa_peer.py ignored the shape arguments and ran its default shapes.)
source .dev/run.sh; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; for i in 1 2; do timeout 80 python3 bench/sdpa_peer.py 64x8192 8x32768 16x8192 2>&1 | tee $OUT/sdpa_$i.md; timeout 60 $B/kitty_attention_bench --iters 30 --mode kitty-pro --mode auto --shape 64x8192 --shape 8x32768 --shape 16x8192 2>&1 | tee $OUT/attn_$i.md; done
