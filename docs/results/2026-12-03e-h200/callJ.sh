source .dev/run.sh
g() { grep "^| kitty\|^| auto" $1 | awk -F'|' '{printf "%s %s;", $3, $4} END {print ""}'; }
ab() { local n=$1; shift; timeout 60 "$@" > $R/$n.md 2>$R/$n.err; echo "$n rc=$?"; g $R/$n.md; }
BN=$B/kitty_attention_bench; BH=.dev/base/kab_head; BP=.dev/base/kab_pf; BT=.dev/base/kab_t4
M="--shape 267x65-8192 --shape 267x65 --shape 267x1024 --shape 64x8192 --shape 8x8192 --shape 1x8192 --shape 16x4096"
A="--shape 48x65-8192 --shape 64x8192 --shape 8x8192 --shape 1x8192"
for r in 1 2; do
step round$r
ab full$r $BN --no-copy --iters 30 --mode kitty-pro $M
ab head$r $BH --no-copy --iters 30 --mode kitty-pro $M
ab pf$r $BP --no-copy --iters 30 --mode kitty-pro $M
ab t4$r $BT --no-copy --iters 30 --mode kitty-pro $M
done
ab auto_full $BN --no-copy --iters 30 --mode auto $A
ab auto_head $BH --no-copy --iters 30 --mode auto $A
step tests
timeout 90 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log
timeout 60 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log
step done
