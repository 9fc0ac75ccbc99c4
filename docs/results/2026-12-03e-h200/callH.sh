source .dev/run.sh
g() { grep "^| kitty\|^| auto" $1 | awk -F'|' '{printf "%s %s;", $3, $4} END {print ""}'; }
ab() { local n=$1; shift; timeout 60 "$@" > $R/$n.md 2>$R/$n.err; echo "$n rc=$?"; g $R/$n.md; }
BN=$B/kitty_attention_bench; BH=.dev/base/kab_head; B37=.dev/base/kitty_attention_bench_37bd217
S="--shape 1x8192 --shape 4x8192 --shape 8x8192 --shape 16x4096 --shape 16x8192 --shape 8x32768 --shape 64x8192"
step plan
ab plan_head $BH --no-copy --iters 30 --mode kitty-pro $S
ab plan_37bd $B37 --no-copy --iters 30 --mode kitty-pro $S
step junk
M="--shape 64x8192 --shape 32x8192 --shape 8x32768 --shape 8x8192 --shape 267x65-8192"
ab new1 $BN --no-copy --iters 30 --mode kitty-pro $M
ab head1 $BH --no-copy --iters 30 --mode kitty-pro $M
ab new2 $BN --no-copy --iters 30 --mode kitty-pro $M
ab head2 $BH --no-copy --iters 30 --mode kitty-pro $M
step mixed
ab mixed_auto $BH --iters 30 --mode auto --shape 48x65-8192 --shape 48x8192 --shape 48x4096
for u in 8 16 32; do KITTY_ATTN_SPLIT_UNITS=$u ab mixed_u$u $BH --no-copy --iters 30 --mode kitty-pro --shape 267x65-8192 --shape 128x65-8192 --shape 64x8192; done
ab mixed_def $BH --no-copy --iters 30 --mode kitty-pro --shape 267x65-8192 --shape 128x65-8192 --shape 267x4096 --shape 267x65
step tests
timeout 90 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log
timeout 60 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log
step done
