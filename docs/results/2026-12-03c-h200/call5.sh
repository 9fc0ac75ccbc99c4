source .dev/run.sh
step kitty_cuda
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log | head -20; grep -B2 -A6 "Failure" $R/kitty_cuda_gpu_test.log | head -30
timeout 100 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_memcheck.log 2>&1; echo "memcheck rc=$?"; tail -n 1 $R/san_memcheck.log
timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck.log 2>&1; echo "racecheck rc=$?"; tail -n 1 $R/san_racecheck.log
step runner
timeout 100 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log | head; grep -B2 -A8 "Failure" $R/cuda_runner_gpu_test.log | head -20
timeout 80 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "^\[  (PASSED|FAILED) " $R/engine_gpu_test.log
step decode
S="--shape 1x8192 --shape 8x8192 --shape 32x8192 --shape 64x8192 --shape 8x32768"
for i in 1 2; do
timeout 80 .dev/base/kitty_attention_bench_base --no-copy --iters 30 --mode kitty-pro --mode auto $S > $R/bench_dec_base$i.md 2>&1; echo "base rc=$?"; grep "^|" $R/bench_dec_base$i.md
timeout 80 $B/kitty_attention_bench --iters 30 --mode kitty-pro --mode auto $S > $R/bench_dec$i.md 2>&1; echo "new rc=$?"; grep "^|\|copy" $R/bench_dec$i.md
done
step done
