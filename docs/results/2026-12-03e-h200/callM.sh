source .dev/run.sh
step san
timeout 100 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_memcheck.log 2>&1; echo "memcheck rc=$?"; tail -n 1 $R/san_memcheck.log
timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck.log 2>&1; echo "racecheck rc=$?"; tail -n 1 $R/san_racecheck.log
timeout 100 compute-sanitizer --tool synccheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_synccheck.log 2>&1; echo "synccheck rc=$?"; tail -n 1 $R/san_synccheck.log
step tests
timeout 90 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log
KITTY_ATTN_FP_PARTS=1 timeout 90 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test_p1.log 2>&1; echo "kitty_cuda p1 rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test_p1.log
timeout 60 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log
timeout 90 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/engine_gpu_test.log
timeout 60 $B/model_ops_gpu_test > $R/model_ops_gpu_test.log 2>&1; echo "model_ops rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/model_ops_gpu_test.log
step done
