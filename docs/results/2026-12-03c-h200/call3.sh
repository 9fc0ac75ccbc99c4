source .dev/run.sh
step pbench
P="--prefill 2048x0 --prefill 2048x6144 --prefill 512x8192 --prefill 256x4096 --prefill 128x4096"
timeout 80 .dev/base/kitty_attention_bench_base --no-copy --iters 20 --mode auto --mode kitty-pro $P > $R/bench_prefill_base.md 2>&1; echo "base rc=$?"; grep "^|" $R/bench_prefill_base.md
timeout 80 $B/kitty_attention_bench --no-copy --iters 20 --mode auto --mode kitty-pro $P > $R/bench_prefill.md 2>&1; echo "new rc=$?"; grep "^|" $R/bench_prefill.md
step decode
timeout 80 .dev/base/kitty_attention_bench_base --iters 30 --mode kitty-pro --mode auto --shape 1x8192 --shape 64x8192 --shape 8x32768 > $R/bench_dec_base.md 2>&1; echo "base rc=$?"; grep "^|\|copy" $R/bench_dec_base.md
timeout 80 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro --mode auto --shape 1x8192 --shape 64x8192 --shape 8x32768 > $R/bench_dec.md 2>&1; echo "new rc=$?"; grep "^|" $R/bench_dec.md
step done
