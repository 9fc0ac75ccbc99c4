source .dev/run.sh
step kitty_cuda
timeout 300 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |OK \]|FAILED  \]" $R/kitty_cuda_gpu_test.log | head -20; grep -B2 -A6 "Failure" $R/kitty_cuda_gpu_test.log | head -40
KITTY_ATTN_FP_PARTS=1 timeout 150 $B/kitty_cuda_gpu_test --gtest_filter=*Decode* > $R/kitty_cuda_parts1.log 2>&1; echo "kitty_cuda parts=1 rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_parts1.log
step pbench
timeout 150 $B/kitty_attention_bench --iters 20 --mode auto --mode kitty-pro --prefill 2048x0 --prefill 2048x6144 --prefill 512x8192 --prefill 128x4096 --prefill 64x4096 > $R/bench_prefill.md 2> $R/bench_prefill.err; echo "pbench rc=$?"; cat $R/bench_prefill.md; tail -3 $R/bench_prefill.err
timeout 100 python3 .dev/sdpa_peer.py --prefill 2048x0 --prefill 2048x6144 --prefill 512x8192 --prefill 128x4096 --prefill 64x4096 > $R/sdpa_prefill.md 2> $R/sdpa_prefill.err; echo "sdpa rc=$?"; cat $R/sdpa_prefill.md
step dbench
for pp in 1 0; do KITTY_ATTN_FP_PARTS=$pp timeout 100 $B/kitty_attention_bench --iters 30 --no-copy --mode auto --mode kitty-pro --shape 1x256 --shape 1x512 --shape 1x1024 --shape 1x4096 --shape 8x2048 --shape 64x8192 > $R/bench_small_p$pp.md 2> $R/bench_small_p$pp.err; echo "dbench parts=$pp rc=$?"; cat $R/bench_small_p$pp.md | grep "|"; done
step san
timeout 150 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_memcheck.log 2>&1; echo "memcheck rc=$?"; tail -n 2 $R/san_memcheck.log
step race
timeout 200 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck.log 2>&1; echo "racecheck rc=$?"; tail -n 2 $R/san_racecheck.log
step done
