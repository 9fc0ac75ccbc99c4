source .dev/run.sh
step gemm
timeout 250 $B/gemm_bench --rows 1 --rows 16 --rows 48 --rows 128 --rows 256 --rows 267 --rows 512 --rows 2048 --rows 8192 > $R/gemm_bench.md 2> $R/gemm_bench.err; echo "gemm rc=$?"
grep -E "step total|8192\^3|tuned" $R/gemm_bench.md
step tests
for t in model_ops_gpu_test; do timeout 300 $B/$t > $R/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$t.log | tr '\n' ' ')"; done
step gemm2
timeout 250 $B/gemm_bench --rows 1 --rows 16 --rows 48 --rows 128 --rows 256 --rows 267 --rows 512 --rows 2048 --rows 8192 > $R/gemm_bench2.md 2> $R/gemm_bench2.err; echo "gemm2 rc=$?"
grep -E "step total|8192\^3|tuned" $R/gemm_bench2.md
step done
