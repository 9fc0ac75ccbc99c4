source .dev/run.sh
step tests
timeout 100 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "PASSED|FAILED|Failure" $R/kitty_cuda_gpu_test.log | head
for t in memcheck racecheck synccheck; do timeout 100 compute-sanitizer --tool $t $B/kitty_cuda_gpu_test --gtest_filter='*Sanitizer*' > $R/san_$t.log 2>&1; echo "san $t rc=$?"; tail -1 $R/san_$t.log; done
timeout 60 $B/engine_gpu_test > $R/engine_gpu_test.log 2>&1; echo "engine rc=$?"; grep -E "PASSED|FAILED" $R/engine_gpu_test.log
timeout 150 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "PASSED|FAILED" $R/cuda_runner_gpu_test.log | head -3
step bench
timeout 60 $B/kitty_attention_bench > $R/attn.md 2>&1; echo "bench rc=$?"; grep "^|\|copy" $R/attn.md
timeout 45 $B/kitty_attention_bench_old --no-copy > $R/attn_old.md 2>&1; echo "old rc=$?"; grep "^|" $R/attn_old.md | grep "kitty-pro\|kivi2\|auto"
S="--no-copy --mode kitty-pro --mode kivi2"
for v in KITTY_ATTN_FP_WEIGHT=1 KITTY_ATTN_FP_WEIGHT=3 KITTY_ATTN_CTAS_PER_SM=4; do echo "-- $v"; env $v timeout 40 $B/kitty_attention_bench $S 2>&1 | grep "^| k"; done > $R/attn_ab.md; cat $R/attn_ab.md
timeout 60 python3 .dev/sdpa_peer.py > $R/sdpa.txt 2>&1; grep "^|" $R/sdpa.txt
step auto
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
timeout 200 $TB --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype auto > $R/q4b_8127_auto.json 2> $R/q4b_8127_auto.err; echo "auto rc=$?"; tail -c 300 $R/q4b_8127_auto.err | tr '\r' '\n' | tail -2
python3 -c "
import json; d=json.load(open('$R/q4b_8127_auto.json'))
for r in d['throughput']: print({k:r.get(k) for k in ['mode','peak_running','output_tokens_per_s','mean_step_time_s','mean_floor_step_s','floor_ratio','kv_bytes_per_token','num_preemptions']})" || true
step done
