source .dev/run.sh
step waves
timeout 250 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro --shape 264x4096 --shape 267x4096 --shape 272x4096 --shape 132x4096 --shape 133x4096 --shape 64x8192 --shape 66x8192 --shape 267x65-8192 --shape 267x2048 --shape 264x2048 > $R/waves.md 2> $R/waves.err; echo "rc=$?"
cat $R/waves.md | grep -v "^$" | tail -30
step done
