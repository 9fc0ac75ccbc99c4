source .dev/run.sh
g() { grep "^| kitty\|^| auto" $1 | awk -F'|' '{printf "%s %s;", $3, $4} END {print ""}'; }
ab() { local n=$1; shift; timeout 60 "$@" > $R/$n.md 2>$R/$n.err; echo "$n rc=$?"; g $R/$n.md; }
M="--shape 64x8192 --shape 32x8192 --shape 8x32768 --shape 8x8192 --shape 267x65-8192"
for r in 1 2; do
step round$r
ab table$r $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro $M
for v in junk uk4 uv4 tuk4; do ab $v$r .dev/base/kab_$v --no-copy --iters 30 --mode kitty-pro $M; done
done
ab kitty_table $B/kitty_attention_bench --no-copy --iters 30 --mode kitty --shape 64x8192 --shape 279x65-8192
ab kitty_junk .dev/base/kab_junk --no-copy --iters 30 --mode kitty --shape 64x8192 --shape 279x65-8192
step tests
timeout 90 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log
timeout 60 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log
step done
