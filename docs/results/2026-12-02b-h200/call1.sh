source .dev/run.sh
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
grep -E "rel|worst" $R/kitty_cuda_gpu_test.log | tail -5
step bench
timeout 60 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md
timeout 45 $B/kitty_attention_bench_old --no-copy > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^|" $R/attn_old.md
timeout 45 $B/kitty_attention_bench --no-copy > $R/attn2.md 2>&1; echo "new2 rc=$?"; grep "^|" $R/attn2.md
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt
step san
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
step model
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED|SKIPPED" $R/cuda_runner_gpu_test.log | head
step done
