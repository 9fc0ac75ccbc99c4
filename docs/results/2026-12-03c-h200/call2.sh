source .dev/run.sh
step kitty_cuda
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log | head -20; grep -B2 -A6 "Failure" $R/kitty_cuda_gpu_test.log | head -30
grep -iE "prefill tiles|worst" $R/kitty_cuda_gpu_test.log | tail -12
timeout 100 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_memcheck.log 2>&1; echo "memcheck rc=$?"; tail -n 1 $R/san_memcheck.log
timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck.log 2>&1; echo "racecheck rc=$?"; tail -n 1 $R/san_racecheck.log
timeout 100 compute-sanitizer --tool synccheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_synccheck.log 2>&1; echo "synccheck rc=$?"; tail -n 1 $R/san_synccheck.log
step runner
timeout 100 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log | head; grep -B2 -A8 "Failure" $R/cuda_runner_gpu_test.log | head -20
KITTY_PREFILL_MIN_RUN=1 timeout 100 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test_tiles1.log 2>&1; echo "runner all-tiles rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test_tiles1.log | head; grep -B2 -A8 "Failure" $R/cuda_runner_gpu_test_tiles1.log | head -20
timeout 80 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "^\[  (PASSED|FAILED) " $R/engine_gpu_test.log
step pbench
P="--prefill 2048x0 --prefill 2048x6144 --prefill 512x8192 --prefill 256x4096 --prefill 128x4096"
LD_LIBRARY_PATH=/usr/local/cuda/lib64 timeout 80 .dev/base/kitty_attention_bench_base --no-copy --iters 20 --mode auto --mode kitty-pro $P > $R/bench_prefill_base.md 2>&1; echo "base rc=$?"; grep "^|" $R/bench_prefill_base.md
timeout 80 $B/kitty_attention_bench --no-copy --iters 20 --mode auto --mode kitty-pro $P > $R/bench_prefill.md 2>&1; echo "new rc=$?"; grep "^|" $R/bench_prefill.md
step tput
KITTY_PREFILL_MIN_RUN=256 run pf_l8b 100 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 16 --num-prompts 8 --max-num-seqs 8 --kv-cache-dtype kitty-pro,auto
step done
