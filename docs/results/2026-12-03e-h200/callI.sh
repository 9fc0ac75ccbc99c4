source .dev/run.sh
g() { grep "^| kitty\|^| auto" $1 | awk -F'|' '{printf "%s %s;", $3, $4} END {print ""}'; }
ab() { local n=$1; shift; timeout 60 "$@" > $R/$n.md 2>$R/$n.err; echo "$n rc=$?"; g $R/$n.md; }
BN=$B/kitty_attention_bench; BH=.dev/base/kab_head
M="--shape 267x65-8192 --shape 267x65 --shape 267x1024 --shape 64x8192 --shape 8x8192 --shape 1x8192 --shape 16x4096"
step ab
ab new1 $BN --no-copy --iters 30 --mode kitty-pro $M
ab head1 $BH --no-copy --iters 30 --mode kitty-pro $M
ab new2 $BN --no-copy --iters 30 --mode kitty-pro $M
ab head2 $BH --no-copy --iters 30 --mode kitty-pro $M
ab newk $BN --no-copy --iters 30 --mode kitty --mode kivi2 --shape 267x65-8192 --shape 279x65-8192
ab headk $BH --no-copy --iters 30 --mode kitty --mode kivi2 --shape 267x65-8192 --shape 279x65-8192
step tests
timeout 90 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log
timeout 60 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log
step done
