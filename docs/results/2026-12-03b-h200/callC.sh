source .dev/run.sh
step kitty_cuda
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log | head -20; grep -B2 -A6 "Failure" $R/kitty_cuda_gpu_test.log | head -30
timeout 100 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_memcheck.log 2>&1; echo "memcheck rc=$?"; tail -n 1 $R/san_memcheck.log
timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck.log 2>&1; echo "racecheck rc=$?"; tail -n 1 $R/san_racecheck.log
step runner
timeout 100 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log | head; grep -B2 -A8 "Failure" $R/cuda_runner_gpu_test.log | head -30
KITTY_PREFILL_MIN_RUN=1 timeout 100 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test_tiles1.log 2>&1; echo "runner all-tiles rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test_tiles1.log | head; grep -B2 -A8 "Failure" $R/cuda_runner_gpu_test_tiles1.log | head -30
KITTY_ATTN_FP_PARTS=1 timeout 100 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test_parts1.log 2>&1; echo "runner parts=1 rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test_parts1.log | head
timeout 80 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "^\[  (PASSED|FAILED) " $R/engine_gpu_test.log
timeout 60 $B/model_ops_gpu_test > $R/model_ops_gpu_test.log 2>&1; echo "model_ops rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/model_ops_gpu_test.log; grep -A4 Failure $R/model_ops_gpu_test.log | head
step pbench
timeout 80 $B/kitty_attention_bench --iters 20 --mode auto --mode kitty-pro --prefill 2048x0 --prefill 2048x6144 --prefill 512x8192 --prefill 256x4096 --prefill 128x4096 > $R/bench_prefill.md 2> $R/bench_prefill.err; echo "pbench rc=$?"; cat $R/bench_prefill.md
step tput
for m in 0 256; do KITTY_PREFILL_MIN_RUN=$m run pf_l8b_mr$m 100 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 16 --num-prompts 8 --max-num-seqs 8 --kv-cache-dtype kitty-pro,auto; done
for pp in 1 0; do KITTY_ATTN_FP_PARTS=$pp run q4b_b1_p$pp 60 --model synthetic:qwen3-4b --kv-cache-memory 20000000000 --input-len 128 --output-len 256 --num-prompts 4 --max-num-seqs 1 --kv-cache-dtype kitty-pro,auto; done
step full8192
run l8b_8192_kp 150 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype kitty-pro
run l8b_8192_auto 75 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype auto
step done
