# Call A: GPU tests of main (fcef3ba; 64b5cdb's kernel refactor had not run on a GPU) and the
# sanitizer smoke; model_ops_gpu_test with the split-K patch; qwen3-4b 65/8127 at 60 GB in
# kitty-pro and auto (the slot sizing changed on 2026-12-07); a kitty-pro step profile at 271
# sequences (65/2048: the non-attention phases do not depend on the context length); gemm_bench
# with and without split-K; the decode-attention bench. Most important first.
source .dev/run.sh
mkdir -p /tmp/k/sk && tar -xJf .dev/carry/sk.tar.xz -C /tmp/k
step tests
timeout 300 $B/kitty_cuda_gpu_test > $R/kc.log 2>&1; echo "kc default rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc.log | tr '\n' ' ')"
KITTY_ATTN_STREAM=1 timeout 300 $B/kitty_cuda_gpu_test > $R/kc_s1.log 2>&1; echo "kc stream1 rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/kc_s1.log | tr '\n' ' ')"
for t in cuda_runner_gpu_test engine_gpu_test model_ops_gpu_test; do timeout 300 $B/$t > $R/$t.log 2>&1; echo "$t rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/$t.log | tr '\n' ' ')"; done
for tool in memcheck racecheck synccheck; do KITTY_ATTN_STREAM=1 timeout 100 compute-sanitizer --tool $tool $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_$tool.log 2>&1; echo "$tool rc=$? $(tail -n 1 $R/san_$tool.log)"; done
timeout 300 /tmp/k/sk/model_ops_gpu_test > $R/model_ops_sk.log 2>&1; echo "model_ops split-K rc=$? $(grep -E '^\[  (PASSED|FAILED)' $R/model_ops_sk.log | tr '\n' ' ')"
grep -E "^\[  FAILED|Failure" $R/*.log | head
A="--num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127"
run q4b_8127_kp 280 $A --kv-cache-dtype kitty-pro
run q4b_8127_auto 250 $A --kv-cache-dtype auto
step profile
KITTY_STEP_PROFILE=1 timeout 120 $TB --num-prompts 271 --max-num-seqs 271 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 2048 --kv-cache-dtype kitty-pro > $R/prof_kp.json 2> $R/prof_kp.err; echo "prof rc=$?"
grep -v $'\r' $R/prof_kp.err | tail -40
step gemm
for v in base sk; do case $v in base*) G=/tmp/k/sk/gemm_bench_base;; *) G=/tmp/k/sk/gemm_bench;; esac
  timeout 90 $G --model qwen3-4b --rows 128 --rows 256 --rows 271 --rows 512 > $R/gemm_$v.md 2> $R/gemm_$v.err; echo "gemm $v rc=$?"; done
step attn
SH="--shape 64x8192 --shape 271x65-8192 --shape 8x32768 --shape 16x8192"
timeout 120 $B/kitty_attention_bench --iters 30 --mode kitty-pro --mode auto $SH > $R/attn.md 2> $R/attn.err; echo "attn rc=$?"
cat $R/attn.md
step done
