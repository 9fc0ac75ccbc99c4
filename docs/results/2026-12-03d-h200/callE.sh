source .dev/run.sh
step kitty_cuda
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log | head; grep -B2 -A6 "Failure" $R/kitty_cuda_gpu_test.log | head -20
KITTY_ATTN_FP_PARTS=1 timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test_p1.log 2>&1; echo "kitty_cuda parts1 rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test_p1.log | head
timeout 100 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_memcheck.log 2>&1; echo "memcheck rc=$?"; tail -n 1 $R/san_memcheck.log
timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck.log 2>&1; echo "racecheck rc=$?"; tail -n 1 $R/san_racecheck.log
timeout 100 compute-sanitizer --tool synccheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_synccheck.log 2>&1; echo "synccheck rc=$?"; tail -n 1 $R/san_synccheck.log
step runner
timeout 100 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log | head; grep -B2 -A8 "Failure" $R/cuda_runner_gpu_test.log | head -20
timeout 80 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "^\[  (PASSED|FAILED) " $R/engine_gpu_test.log
step decode
S="--shape 64x8192 --shape 32x8192 --shape 8x32768 --shape 8x8192 --shape 1x8192"
g() { grep "^|" $1 | grep -v "^| mode\|---"; }
for i in 1 2; do
timeout 60 .dev/base/kitty_attention_bench_base --iters 30 --mode kitty-pro --mode auto $S > $R/dec_base$i.md 2>&1; echo "base(79eaa26) rc=$?"; grep copy $R/dec_base$i.md; g $R/dec_base$i.md
timeout 60 .dev/base/kitty_attention_bench_37bd217 --no-copy --iters 30 --mode kitty-pro --mode auto $S > $R/dec_37bd$i.md 2>&1; echo "37bd217 rc=$?"; g $R/dec_37bd$i.md
timeout 60 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro --mode auto $S > $R/dec_new$i.md 2>&1; echo "new rc=$?"; g $R/dec_new$i.md
done
TB="$TB --num-prompts 0 --max-num-seqs 1024"
run q4b_8127_kp 270 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
step done
