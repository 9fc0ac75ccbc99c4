source .dev/run.sh
step gemm
timeout 200 $B/gemm_bench --rows 1 --rows 16 --rows 48 --rows 128 --rows 256 --rows 267 --rows 512 --rows 2048 --rows 8192 > $R/gemm_bench.md 2> $R/gemm_bench.err; echo "gemm rc=$?"
grep -E "step total|8192\^3|tuned" $R/gemm_bench.md
step tests
for t in model_ops_gpu_test cuda_runner_gpu_test engine_gpu_test; do timeout 300 $B/$t > $R/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$t.log | tr '\n' ' ')"; done
grep -E "Linear:|tuned " $R/model_ops_gpu_test.log
run q4b_8127_kp 300 --num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
step done
